"""Federated training sessions (owned by the federated package)

Revision ID: 0005_training
Revises: 0004_federated
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_training"
down_revision = "0004_federated"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "training_sessions",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column(
            "institution_id", sa.String(64), sa.ForeignKey("institutions.id"), nullable=False
        ),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("plan", sa.Text, nullable=False),
        sa.Column("gateway_columns", sa.Text, nullable=False),
        sa.Column("bank_features", sa.Text, nullable=False),
        sa.Column("enterprises", sa.Text, nullable=False),
        sa.Column("refused", sa.Text, nullable=False),
        sa.Column("standardization", sa.Text, nullable=False),
        sa.Column("features", sa.LargeBinary, nullable=False),
        sa.Column("bank_context", sa.LargeBinary, nullable=False),
        sa.Column("gateway_secret", sa.LargeBinary, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("next_epoch", sa.Integer, nullable=False),
        sa.Column("next_batch", sa.Integer, nullable=False),
        sa.Column("model_id", sa.String(64), nullable=True),
        sa.Column("model_version", sa.Integer, nullable=True),
        sa.Column("gateway_half", sa.Text, nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )
    op.create_index(
        "ix_training_sessions_institution", "training_sessions", ["institution_id", "created_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_training_sessions_institution", table_name="training_sessions")
    op.drop_table("training_sessions")
