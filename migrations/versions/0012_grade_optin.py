"""Enterprises' opt-in to be recommended on the monthly whitelist (owned by grading)

Revision ID: 0012_grade_optin
Revises: 0011_accounts
"""

import sqlalchemy as sa
from alembic import op

revision = "0012_grade_optin"
down_revision = "0011_accounts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "grade_optins",
        sa.Column("uscc", sa.String(18), primary_key=True),
        sa.Column("recommended", sa.Boolean, nullable=False),
        sa.Column("changed_at", sa.BigInteger, nullable=False),
        sa.Column("changed_by", sa.String(120), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("grade_optins")
