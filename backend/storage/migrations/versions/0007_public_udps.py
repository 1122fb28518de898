"""published user-defined processes: a public flag, indexed for the public catalogue, and the costs of
recent runs that called one (its cost hint)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05
"""
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("user_defined_processes") as batch:
        batch.add_column(sa.Column("public", sa.Boolean, nullable=False, server_default=sa.false()))
    op.create_index("ix_user_defined_processes_public", "user_defined_processes", ["public"])
    op.create_table(
        "public_udp_runs",
        sa.Column("run_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("owner_id", sa.String(64), nullable=False),
        sa.Column("process_id", sa.String(255), nullable=False),
        sa.Column("costs", sa.Float, nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_public_udp_runs_process", "public_udp_runs", ["owner_id", "process_id", "created"])


def downgrade() -> None:
    op.drop_table("public_udp_runs")
    op.drop_index("ix_user_defined_processes_public", "user_defined_processes")
    with op.batch_alter_table("user_defined_processes") as batch:
        batch.drop_column("public")
