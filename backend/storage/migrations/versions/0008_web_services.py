"""secondary web services (/services): an XYZ tile service per row

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05
"""
import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "web_services",
        sa.Column("service_id", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.String(64), sa.ForeignKey("users.user_id", ondelete="CASCADE"), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("process", sa.JSON, nullable=False),
        sa.Column("configuration", sa.JSON, nullable=False),
        sa.Column("title", sa.Text),
        sa.Column("description", sa.Text),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("plan", sa.String(64)),
        sa.Column("budget", sa.Float),
        sa.Column("costs", sa.Float, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_web_services_user", "web_services", ["user_id", "created"])


def downgrade() -> None:
    op.drop_index("ix_web_services_user", "web_services")
    op.drop_table("web_services")
