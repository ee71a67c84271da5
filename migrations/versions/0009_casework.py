"""Objections and credit-repair applications (owned by the casework package)

Revision ID: 0009_casework
Revises: 0008_audit_openings
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_casework"
down_revision = "0008_audit_openings"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "objections",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("enterprise", sa.String(18), nullable=False),
        sa.Column("feature", sa.String(100), nullable=False),
        sa.Column("department", sa.String(48), nullable=False),
        sa.Column("claim", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("filed_at", sa.BigInteger, nullable=False),
        sa.Column("filed_by", sa.String(120), nullable=False),
        sa.Column("due", sa.String(10), nullable=False),
        # "uscc|feature" while open, NULL once decided: one open objection per pair.
        sa.Column("open_key", sa.String(120), unique=True),
        sa.Column("decided_at", sa.BigInteger),
        sa.Column("decided_by", sa.String(120)),
        sa.Column("reason", sa.Text),
        sa.Column("import_id", sa.Integer),
        sa.Column("version", sa.Integer),
    )
    op.create_index("ix_objections_enterprise", "objections", ["enterprise", "status"])
    op.create_index("ix_objections_department", "objections", ["department", "status", "due"])
    op.create_table(
        "repairs",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("enterprise", sa.String(18), nullable=False),
        sa.Column("record", sa.String(100), nullable=False),
        sa.Column("department", sa.String(48), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("filed_at", sa.BigInteger, nullable=False),
        sa.Column("filed_by", sa.String(120), nullable=False),
        sa.Column("due", sa.String(10), nullable=False),
        # "uscc|record" while open, NULL once decided: one open application per pair.
        sa.Column("open_key", sa.String(120), unique=True),
        sa.Column("decided_at", sa.BigInteger),
        sa.Column("decided_by", sa.String(120)),
        sa.Column("decision_reason", sa.Text),
    )
    op.create_index("ix_repairs_enterprise", "repairs", ["enterprise", "status"])
    op.create_index("ix_repairs_department", "repairs", ["department", "status", "due"])


def downgrade() -> None:
    op.drop_index("ix_repairs_department", table_name="repairs")
    op.drop_index("ix_repairs_enterprise", table_name="repairs")
    op.drop_table("repairs")
    op.drop_index("ix_objections_department", table_name="objections")
    op.drop_index("ix_objections_enterprise", table_name="objections")
    op.drop_table("objections")
