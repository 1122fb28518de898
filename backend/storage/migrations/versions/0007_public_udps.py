"""published user-defined processes: a public flag, indexed for the public catalogue

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


def downgrade() -> None:
    op.drop_index("ix_user_defined_processes_public", "user_defined_processes")
    with op.batch_alter_table("user_defined_processes") as batch:
        batch.drop_column("public")
