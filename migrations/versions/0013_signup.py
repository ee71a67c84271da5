"""Enterprise sign-up: one administrator per USCC and the invitations of colleagues
(owned by the registry); enterprise accounts created by the operator before sign-up
existed count as verified offline

Revision ID: 0013_signup
Revises: 0012_grade_optin
"""

import sqlalchemy as sa
from alembic import op

revision = "0013_signup"
# 0011_accounts as given; chained after 0012_grade_optin once h-grades was merged in.
down_revision = "0012_grade_optin"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "enterprise_admins",
        sa.Column("uscc", sa.String(18), primary_key=True),
        sa.Column(
            "login", sa.String(100), sa.ForeignKey("users.login"), nullable=False, unique=True
        ),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("real_name_attempts", sa.Integer, nullable=False),
        sa.Column("last_attempt_at", sa.BigInteger),
    )
    op.create_table(
        "invitations",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("uscc", sa.String(18), nullable=False),
        sa.Column("invited_by", sa.String(100), sa.ForeignKey("users.login"), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
        sa.Column("used_at", sa.BigInteger),
        sa.Column("used_by", sa.String(100)),
    )
    op.create_index("ix_invitations_uscc", "invitations", ["uscc"])
    # Accounts the operator created (``xinyi admin add-user``) were checked offline:
    # they keep authorizing after this upgrade.
    op.execute(
        "UPDATE users SET real_name_at = created_at "
        "WHERE role = 'enterprise' AND real_name_at IS NULL"
    )
    # The oldest account of each USCC is its administrator (it may invite colleagues).
    op.execute(
        "INSERT INTO enterprise_admins (uscc, login, created_at, real_name_attempts) "
        "SELECT u.uscc, MIN(u.login), MIN(u.created_at), 0 FROM users u "
        "WHERE u.role = 'enterprise' AND u.uscc IS NOT NULL "
        "AND u.created_at = (SELECT MIN(v.created_at) FROM users v "
        "WHERE v.role = 'enterprise' AND v.uscc = u.uscc) "
        "GROUP BY u.uscc"
    )


def downgrade() -> None:
    op.drop_index("ix_invitations_uscc", table_name="invitations")
    op.drop_table("invitations")
    op.drop_table("enterprise_admins")
