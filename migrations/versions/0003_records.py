"""department data tables (owned by the records package)

Revision ID: 0003_records
Revises: 0002_audit
"""

revision = "0003_records"
down_revision = "0002_audit"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
