"""Server-side sessions of people and the sign-in throttle (owned by the registry)

Revision ID: 0006_person_sessions
Revises: 0005_training
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_person_sessions"
down_revision = "0005_training"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "person_sessions",
        sa.Column("id_hash", sa.String(64), primary_key=True),
        sa.Column("login", sa.String(100), sa.ForeignKey("users.login"), nullable=False),
        sa.Column("csrf", sa.String(64), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("last_seen_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_person_sessions_login", "person_sessions", ["login"])
    op.create_index("ix_person_sessions_expires", "person_sessions", ["expires_at"])
    op.create_table(
        "sign_in_failures",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("last_failure_at", sa.Float, nullable=False),
        sa.Column("blocked_until", sa.Float, nullable=False),
    )
    op.create_index("ix_sign_in_failures_last", "sign_in_failures", ["last_failure_at"])


def downgrade() -> None:
    op.drop_index("ix_sign_in_failures_last", table_name="sign_in_failures")
    op.drop_table("sign_in_failures")
    op.drop_index("ix_person_sessions_expires", table_name="person_sessions")
    op.drop_index("ix_person_sessions_login", table_name="person_sessions")
    op.drop_table("person_sessions")
