"""Foundation: institutions, departments, users, consents, webhook outbox.

Revision ID: 0001_foundation
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001_foundation"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "institutions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("jwk", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="active"),
        sa.Column("webhook_url", sa.String(500), nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("status_changed_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "departments",
        sa.Column("id", sa.String(48), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="active"),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("status_changed_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "users",
        sa.Column("login", sa.String(100), primary_key=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.String(200), nullable=False),
        sa.Column("uscc", sa.String(18), nullable=True, index=True),
        sa.Column("department_id", sa.String(48), sa.ForeignKey("departments.id"), nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.create_table(
        "consents",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column(
            "institution_id", sa.String(64), sa.ForeignKey("institutions.id"), nullable=False
        ),
        sa.Column("enterprise", sa.String(18), nullable=False),
        sa.Column("purpose", sa.String(48), nullable=False),
        sa.Column("ops", sa.Text, nullable=False),
        sa.Column("categories", sa.Text, nullable=False),
        sa.Column("duration_days", sa.Integer, nullable=False),
        sa.Column("max_uses", sa.Integer, nullable=False),
        sa.Column("uses", sa.Integer, nullable=False, server_default="0"),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("letter", sa.Text, nullable=False),
        sa.Column("letter_hash", sa.String(80), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("decided_at", sa.BigInteger, nullable=True),
        sa.Column("not_before", sa.BigInteger, nullable=True),
        sa.Column("expires_at", sa.BigInteger, nullable=True),
        sa.Column("pending_until", sa.BigInteger, nullable=False),
        sa.Column("grant_jwt", sa.Text, nullable=True),
        sa.Column("status_changed_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_consents_enterprise_status", "consents", ["enterprise", "status"])
    op.create_index("ix_consents_institution_status", "consents", ["institution_id", "status"])
    op.create_table(
        "consent_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "consent_id", sa.String(40), sa.ForeignKey("consents.id"), nullable=False, index=True
        ),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.Column("from_status", sa.String(16), nullable=True),
        sa.Column("to_status", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
    )
    op.create_table(
        "verify_budgets",
        sa.Column("consent_id", sa.String(40), sa.ForeignKey("consents.id"), primary_key=True),
        sa.Column("feature", sa.String(100), primary_key=True),
        sa.Column("used", sa.Integer, nullable=False, server_default="0"),
    )
    op.create_table(
        "used_assertions",
        sa.Column("jti", sa.String(200), primary_key=True),
        sa.Column("expires_at", sa.BigInteger, nullable=False, index=True),
    )
    op.create_table(
        "webhook_outbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "institution_id", sa.String(64), sa.ForeignKey("institutions.id"), nullable=False
        ),
        sa.Column("event_id", sa.String(40), nullable=False, unique=True),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.Float, nullable=False),
        sa.Column("delivered_at", sa.BigInteger, nullable=True),
        sa.Column("last_error", sa.String(500), nullable=True),
    )
    op.create_index("ix_outbox_due", "webhook_outbox", ["delivered_at", "next_attempt_at"])


def downgrade() -> None:
    for table in (
        "webhook_outbox",
        "used_assertions",
        "verify_budgets",
        "consent_events",
        "consents",
        "users",
        "departments",
        "institutions",
    ):
        op.drop_table(table)
