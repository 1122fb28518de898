"""removed OIDC identities: their tokens are refused instead of making a new account

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""
import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "removed_identities",
        sa.Column("oidc_provider", sa.String(64), primary_key=True),
        sa.Column("oidc_subject", sa.String(255), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("removed", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_removed_identities_name", "removed_identities", ["name"])


def downgrade() -> None:
    op.drop_index("ix_removed_identities_name", "removed_identities")
    op.drop_table("removed_identities")
