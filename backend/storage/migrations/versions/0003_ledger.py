"""credit accounts, the ledger, and the ledger ref of a job's hold

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("user_id", sa.String(64), sa.ForeignKey("users.user_id", ondelete="CASCADE"), primary_key=True),
        sa.Column("balance", sa.BigInteger, nullable=False),
        sa.Column("updated", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("balance >= 0", name="ck_accounts_balance_not_negative"),
    )
    op.create_table(
        "ledger",
        sa.Column("entry_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.String(64), sa.ForeignKey("users.user_id", ondelete="CASCADE"), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("ref", sa.String(128)),
        sa.Column("note", sa.Text),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("user_id", "ref", "kind", name="uq_ledger_ref_kind"),
    )
    op.create_index("ix_ledger_user", "ledger", ["user_id", "entry_id"])
    op.add_column("jobs", sa.Column("billing_ref", sa.String(128)))


def downgrade() -> None:
    op.drop_column("jobs", "billing_ref")
    op.drop_table("ledger")
    op.drop_table("accounts")
