"""the aggregator's tables: runtime-registered backends, per-backend attribution of charges

Unused by the backend: one migration chain serves both applications' databases.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "federation_backends",
        sa.Column("backend_id", sa.String(64), primary_key=True),
        sa.Column("config", sa.JSON, nullable=False),
        sa.Column("registered", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "federation_charges",
        sa.Column("entry_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.String(64), sa.ForeignKey("users.user_id", ondelete="CASCADE"), nullable=False),
        sa.Column("backend_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("ref", sa.String(255), nullable=False),
        sa.Column("ledger_ref", sa.String(128), nullable=False),
        sa.Column("reported", sa.BigInteger, nullable=False),
        sa.Column("charged", sa.BigInteger, nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("user_id", "ledger_ref", name="uq_federation_charges_ref"),
    )
    op.create_index("ix_federation_charges_backend", "federation_charges", ["backend_id", "created"])


def downgrade() -> None:
    op.drop_table("federation_charges")
    op.drop_table("federation_backends")
