"""The financing loop: products, applications, outcomes, repayment reports and financing
needs (owned by the financing package)

Revision ID: 0014_financing
Revises: 0013_signup
"""

import sqlalchemy as sa
from alembic import op

revision = "0014_financing"
down_revision = "0013_signup"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "financing_products",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("institution", sa.String(64), nullable=False),
        sa.Column("name", sa.String(500), nullable=False),
        sa.Column("kind", sa.String(48), nullable=False),
        sa.Column("amount_min", sa.BigInteger, nullable=False),
        sa.Column("amount_max", sa.BigInteger, nullable=False),
        sa.Column("rate_min", sa.Float, nullable=False),
        sa.Column("rate_max", sa.Float, nullable=False),
        sa.Column("term_months_max", sa.Integer, nullable=False),
        sa.Column("purpose", sa.String(48), nullable=False),
        sa.Column("ops", sa.Text, nullable=False),
        sa.Column("categories", sa.Text, nullable=False),
        sa.Column("min_grade", sa.String(8)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("withdrawn_at", sa.BigInteger),
    )
    op.create_index("ix_financing_products_institution", "financing_products", ["institution"])
    op.create_index("ix_financing_products_status_kind", "financing_products", ["status", "kind"])
    op.create_table(
        "financing_applications",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("product", sa.String(40), nullable=False),
        sa.Column("institution", sa.String(64), nullable=False),
        sa.Column("enterprise", sa.String(18), nullable=False),
        # USCC digits 3-8: the statistics group by it.
        sa.Column("region", sa.String(6), nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("term_months", sa.Integer, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("consent", sa.String(40), nullable=False, unique=True),
        sa.Column("need", sa.String(40)),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("created_by", sa.String(120), nullable=False),
        sa.Column("submitted_at", sa.BigInteger),
        sa.Column("closed_at", sa.BigInteger),
    )
    op.create_index(
        "ix_financing_applications_institution",
        "financing_applications",
        ["institution", "created_at"],
    )
    op.create_index(
        "ix_financing_applications_enterprise",
        "financing_applications",
        ["enterprise", "created_at"],
    )
    op.create_index(
        "ix_financing_applications_created", "financing_applications", ["created_at", "region"]
    )
    op.create_table(
        "financing_outcomes",
        sa.Column("application", sa.String(40), primary_key=True),
        sa.Column("institution", sa.String(64), nullable=False),
        sa.Column("enterprise", sa.String(18), nullable=False),
        sa.Column("region", sa.String(6), nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(48)),
        sa.Column("credit_line", sa.BigInteger),
        sa.Column("disbursed", sa.BigInteger),
        sa.Column("rate", sa.Float),
        sa.Column("term_months", sa.Integer),
        sa.Column("credit_loan", sa.Boolean, nullable=False),
        sa.Column("first_loan", sa.Boolean, nullable=False),
        sa.Column("decided_at", sa.BigInteger, nullable=False),
        sa.Column("decided_by", sa.String(120), nullable=False),
    )
    op.create_index("ix_financing_outcomes_decided", "financing_outcomes", ["decided_at", "region"])
    op.create_table(
        "financing_repayments",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("application", sa.String(40), nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("reported_at", sa.BigInteger, nullable=False),
        sa.Column("reported_by", sa.String(120), nullable=False),
    )
    op.create_index("ix_financing_repayments_application", "financing_repayments", ["application"])
    op.create_table(
        "financing_needs",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("enterprise", sa.String(18), nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("term_months", sa.Integer, nullable=False),
        sa.Column("use", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("created_by", sa.String(120), nullable=False),
        sa.Column("closed_at", sa.BigInteger),
    )
    op.create_index("ix_financing_needs_enterprise", "financing_needs", ["enterprise"])
    op.create_index("ix_financing_needs_status", "financing_needs", ["status", "created_at"])
    # The month's statistics count distinct enterprises among the accounts and the
    # approved consents: these covering indexes, in byte order on PostgreSQL (cheap
    # comparisons), let them group by USCC with an index-only scan (bench/platform.py).
    pg = op.get_bind().dialect.name == "postgresql"
    uscc = sa.text('uscc COLLATE "C"') if pg else "uscc"
    enterprise = sa.text('enterprise COLLATE "C"') if pg else "enterprise"
    op.create_index(
        "ix_users_enterprise_uscc",
        "users",
        [uscc, "created_at", "real_name_at"],
        postgresql_where=sa.text("role = 'enterprise'"),
        sqlite_where=sa.text("role = 'enterprise'"),
    )
    op.create_index(
        "ix_consents_approved_enterprise",
        "consents",
        [enterprise, "decided_at"],
        postgresql_where=sa.text("not_before IS NOT NULL"),
        sqlite_where=sa.text("not_before IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_consents_approved_enterprise", table_name="consents")
    op.drop_index("ix_users_enterprise_uscc", table_name="users")
    for table in (
        "financing_needs",
        "financing_repayments",
        "financing_outcomes",
        "financing_applications",
        "financing_products",
    ):
        op.drop_table(table)
