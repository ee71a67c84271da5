"""Risk alerts (owned by the alerts package) and objection attachments (owned by
casework)

Revision ID: 0015_alerts
Revises: 0014_financing
"""

import sqlalchemy as sa
from alembic import op

revision = "0015_alerts"
down_revision = "0014_financing"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "risk_alerts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        # The place among published alerts (GET /v1/alerts?after=); NULL until then.
        sa.Column("seq", sa.Integer, unique=True),
        sa.Column("institution_id", sa.String(64), nullable=False),
        sa.Column("enterprise", sa.String(18), nullable=False),
        sa.Column("grant_id", sa.String(40), nullable=False),
        sa.Column("kind", sa.String(48), nullable=False),
        sa.Column("feature", sa.String(100)),
        sa.Column("from_band", sa.String(40)),
        sa.Column("to_band", sa.String(40), nullable=False),
        sa.Column("source", sa.String(48), nullable=False),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.Column("audit_queue_id", sa.BigInteger, nullable=False),
        sa.Column("audit_index", sa.BigInteger),
        sa.Column("event_id", sa.String(40)),
        sa.UniqueConstraint(
            "institution_id", "enterprise", "kind", "source", name="uq_risk_alerts_once"
        ),
    )
    op.create_index("ix_risk_alerts_institution", "risk_alerts", ["institution_id", "seq"])
    op.create_index("ix_risk_alerts_enterprise", "risk_alerts", ["enterprise", "seq"])
    op.create_table(
        "alert_swept_imports",
        sa.Column("import_id", sa.Integer, primary_key=True),
        sa.Column("swept_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "alert_swept_months",
        sa.Column("month", sa.String(7), primary_key=True),
        sa.Column("swept_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "objection_attachments",
        sa.Column("objection_id", sa.String(40), primary_key=True),
        sa.Column("file_name", sa.String(255), nullable=False),
        sa.Column("content_type", sa.String(64), nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("objection_attachments")
    op.drop_table("alert_swept_months")
    op.drop_table("alert_swept_imports")
    op.drop_index("ix_risk_alerts_enterprise", table_name="risk_alerts")
    op.drop_index("ix_risk_alerts_institution", table_name="risk_alerts")
    op.drop_table("risk_alerts")
