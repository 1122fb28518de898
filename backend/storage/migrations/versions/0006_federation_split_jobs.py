"""the aggregator's split batch jobs: the user's job, its graphs and the state of its parts

Unused by the backend: one migration chain serves both applications' databases.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05
"""
import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "federation_split_jobs",
        sa.Column("record_id", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.String(64), sa.ForeignKey("users.user_id", ondelete="CASCADE"), nullable=False),
        sa.Column("fields", sa.JSON, nullable=False),
        sa.Column("split", sa.JSON, nullable=False),
        sa.Column("state", sa.JSON, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_federation_split_jobs_user", "federation_split_jobs", ["user_id", "created"])


def downgrade() -> None:
    op.drop_table("federation_split_jobs")
