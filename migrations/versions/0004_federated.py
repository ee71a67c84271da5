"""HE contexts, joint models, training sessions (owned by the federated package)

Revision ID: 0004_federated
Revises: 0003_records
"""

revision = "0004_federated"
down_revision = "0003_records"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
