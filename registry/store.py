"""Registry persistence: institutions, departments, users and the client assertions
already used (tables of migration 0001)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import SQLModel

metadata = SQLModel.metadata

institutions = sa.Table(
    "institutions",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("jwk", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("webhook_url", sa.String(500)),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("status_changed_at", sa.BigInteger, nullable=False),
    extend_existing=True,
)

departments = sa.Table(
    "departments",
    metadata,
    sa.Column("id", sa.String(48), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("status_changed_at", sa.BigInteger, nullable=False),
    extend_existing=True,
)

users = sa.Table(
    "users",
    metadata,
    sa.Column("login", sa.String(100), primary_key=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("password_hash", sa.String(200), nullable=False),
    sa.Column("uscc", sa.String(18)),
    sa.Column("department_id", sa.String(48)),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("disabled", sa.Boolean, nullable=False),
    sa.Column("real_name_at", sa.BigInteger),
    sa.Column("institution_id", sa.String(64)),
    extend_existing=True,
)

used_assertions = sa.Table(
    "used_assertions",
    metadata,
    sa.Column("jti", sa.String(200), primary_key=True),
    sa.Column("expires_at", sa.BigInteger, nullable=False, index=True),
    extend_existing=True,
)

# Sessions of people and the sign-in throttle (migration 0006_person_sessions).
person_sessions = sa.Table(
    "person_sessions",
    metadata,
    # SHA-256 (hex) of the random id in the cookie: the table alone opens no session.
    sa.Column("id_hash", sa.String(64), primary_key=True),
    sa.Column("login", sa.String(100), sa.ForeignKey("users.login"), nullable=False),
    sa.Column("csrf", sa.String(64), nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("last_seen_at", sa.BigInteger, nullable=False),
    sa.Column("expires_at", sa.BigInteger, nullable=False),
    extend_existing=True,
)

sign_in_failures = sa.Table(
    "sign_in_failures",
    metadata,
    # HMAC-SHA-256 (hex) of "login" or "address" and the value, keyed by a server secret.
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("failures", sa.Integer, nullable=False),
    sa.Column("last_failure_at", sa.Float, nullable=False),
    sa.Column("blocked_until", sa.Float, nullable=False),
    extend_existing=True,
)

# Enterprise sign-up (migration 0013_signup). One administrator per USCC: the primary
# key makes a second self sign-up for the same USCC fail in the database, on every
# worker and backend at once.
enterprise_admins = sa.Table(
    "enterprise_admins",
    metadata,
    sa.Column("uscc", sa.String(18), primary_key=True),
    sa.Column("login", sa.String(100), sa.ForeignKey("users.login"), nullable=False, unique=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    # Real-name checks tried (at sign-up and after): bounded, since each answers
    # whether a guessed id is the legal representative's.
    sa.Column("real_name_attempts", sa.Integer, nullable=False),
    sa.Column("last_attempt_at", sa.BigInteger),
    extend_existing=True,
)

# Invitations of colleagues by an enterprise's administrator: single use, expiring.
invitations = sa.Table(
    "invitations",
    metadata,
    # SHA-256 (hex) of the random token in the link: the table alone accepts nothing.
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("uscc", sa.String(18), nullable=False, index=True),
    sa.Column("invited_by", sa.String(100), sa.ForeignKey("users.login"), nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("expires_at", sa.BigInteger, nullable=False),
    sa.Column("used_at", sa.BigInteger),
    sa.Column("used_by", sa.String(100)),
    extend_existing=True,
)
