"""audit log tables (owned by the audit package)

Revision ID: 0002_audit
Revises: 0001_foundation
"""

revision = "0002_audit"
down_revision = "0001_foundation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
