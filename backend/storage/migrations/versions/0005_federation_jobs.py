"""the aggregator's batch jobs: routing reason and the current run per federated job

Unused by the backend: one migration chain serves both applications' databases.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "federation_jobs",
        sa.Column("job_key", sa.String(255), primary_key=True),
        sa.Column("user_id", sa.String(64), sa.ForeignKey("users.user_id", ondelete="CASCADE"), nullable=False),
        sa.Column("backend_id", sa.String(64), nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("run", sa.Integer, nullable=False),
        sa.Column("run_started", sa.DateTime(timezone=True), nullable=True),
        sa.Column("charged_run", sa.Integer, nullable=True),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_federation_jobs_user", "federation_jobs", ["user_id", "created"])


def downgrade() -> None:
    op.drop_table("federation_jobs")
