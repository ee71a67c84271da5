"""Accounts for the platform services: when an enterprise account's real name was
verified, and which institution a staff account works for (owned by the registry)

Revision ID: 0011_accounts
Revises: 0010_grades
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_accounts"
down_revision = "0010_grades"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # NULL: not verified. Statistics count real-name enterprises as of a month's end.
    op.add_column("users", sa.Column("real_name_at", sa.BigInteger, nullable=True))
    # Set only for role ``institution`` (staff of a bank's console).
    op.add_column("users", sa.Column("institution_id", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users") as b:
        b.drop_column("institution_id")
        b.drop_column("real_name_at")
