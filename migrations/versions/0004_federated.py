"""HE contexts and joint models (owned by the federated package; training sessions
follow in 0005)

Revision ID: 0004_federated
Revises: 0003_records
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_federated"
down_revision = "0003_records"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "he_contexts",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column(
            "institution_id", sa.String(64), sa.ForeignKey("institutions.id"), nullable=False
        ),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("params", sa.Text, nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("institution_id", "digest", name="uq_he_contexts_institution_digest"),
    )
    op.create_table(
        "joint_models",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("definition", sa.Text, nullable=False),
        sa.Column("registered_by", sa.String(200), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("joint_models")
    op.drop_table("he_contexts")
