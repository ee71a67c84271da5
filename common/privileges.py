"""What the gateway's database login may do (PostgreSQL), in one place: the role set-up
(``xinyi db roles``) grants exactly this, and ``/readyz`` checks it.

Two NOLOGIN roles carry the privileges, the gateway's login is a member of both:

- ``xinyi_audit`` (migration 0002, ``audit.store.grant_writer_role``): INSERT and
  SELECT on the append-only audit tables, DELETE on the queue, UPDATE on the state row;
- ``xinyi_app``: what requests, the web pages and the background loops do on every
  other table. No TRUNCATE, no DDL, no ownership: the schema owner runs migrations.
"""

from __future__ import annotations

from collections.abc import Mapping

import sqlalchemy as sa
from sqlalchemy import Connection

from common.errors import InvalidInput

APP_ROLE = "xinyi_app"
AUDIT_ROLE = "xinyi_audit"

_RW = ("SELECT", "INSERT", "UPDATE")

# table -> privileges a request (or a background loop) needs; reads include the pages.
APP_TABLES: Mapping[str, tuple[str, ...]] = {
    "institutions": _RW,
    "departments": _RW,
    "users": _RW,
    "consents": _RW,
    "consent_events": ("SELECT", "INSERT"),  # history: never rewritten
    "verify_budgets": _RW,  # INSERT ... ON CONFLICT DO UPDATE
    "webhook_outbox": _RW,
    "used_assertions": ("SELECT", "INSERT", "DELETE"),  # expired jtis are purged
    "record_imports": _RW,
    "record_import_features": _RW,
    "record_rows": _RW,
    "record_rejects": _RW,
    "he_contexts": _RW,
    "joint_models": _RW,
    "training_sessions": _RW,
    # Which models scored which enterprise, for the per-grant cap on distinct models.
    "score_model_uses": _RW,
    # People's sessions and sign-in throttling: expired and ended rows are deleted.
    "person_sessions": (*_RW, "DELETE"),
    "sign_in_failures": (*_RW, "DELETE"),
    # Credit grades by month: history, never rewritten.
    "grade_runs": ("SELECT", "INSERT"),
    "grades": ("SELECT", "INSERT"),
    # The enterprise's choice to be recommended (whitelist): its current row is updated.
    "grade_optins": _RW,
    # Objections and credit repair: decided by a conditional UPDATE, never deleted.
    "objections": _RW,
    "repairs": _RW,
    # --- alerts ---: published by a conditional UPDATE, never deleted; sweeps marked once.
    "risk_alerts": _RW,
    "alert_swept_imports": ("SELECT", "INSERT"),
    "alert_swept_months": ("SELECT", "INSERT"),
    # Objection attachments: written with the filing, never changed.
    "objection_attachments": ("SELECT", "INSERT"),
    # The financing loop: state changes are conditional UPDATEs, rows never deleted.
    "financing_products": _RW,
    "financing_applications": _RW,
    "financing_outcomes": ("SELECT", "INSERT"),  # recorded once
    "financing_repayments": ("SELECT", "INSERT"),  # history of reports
    "financing_needs": _RW,
    # Enterprise sign-up: a displaced unverified administrator is deleted; invitations
    # are marked used, never deleted.
    "enterprise_admins": (*_RW, "DELETE"),
    "invitations": _RW,
    # Nodes (issue 18): peers change status, the outbox is marked delivered; the
    # inbox, forwarded objections and relayed consents are written once.
    "node_identity": ("SELECT", "INSERT"),
    "node_peers": _RW,
    "node_outbox": _RW,
    "node_inbox": ("SELECT", "INSERT"),
    "node_child_statistics": _RW,
    "node_forwarded_objections": ("SELECT", "INSERT"),
    "node_relayed_consents": ("SELECT", "INSERT"),
}

AUDIT_TABLES: Mapping[str, tuple[str, ...]] = {
    "audit_entries": ("SELECT", "INSERT"),
    "audit_openings": ("SELECT", "INSERT"),  # each entry's parts, written with its queue row
    "audit_entry_departments": ("SELECT", "INSERT"),
    "audit_tree": ("SELECT", "INSERT"),
    "audit_checkpoints": ("SELECT", "INSERT"),
    "audit_cosignatures": ("SELECT", "INSERT"),
    "audit_witnesses": ("SELECT", "INSERT"),
    "audit_queue": ("SELECT", "INSERT", "DELETE"),
    "audit_state": ("SELECT", "UPDATE"),
}

REQUIRED: Mapping[str, tuple[str, ...]] = {**APP_TABLES, **AUDIT_TABLES}


def _quote(conn: Connection, name: str) -> str:
    return conn.dialect.identifier_preparer.quote(name)


def ensure_role(conn: Connection, role: str) -> None:
    """Create a NOLOGIN role unless it exists (roles are cluster-wide; a concurrent
    creator is tolerated)."""
    conn.execute(
        sa.text(
            "DO $$ BEGIN "
            f"IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN "
            f"CREATE ROLE {role} NOLOGIN; END IF; "
            "EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
        )
    )


def grant_app_role(conn: Connection) -> None:
    """Create ``xinyi_app`` and grant it exactly ``APP_TABLES`` in the current schema
    (and the sequences of those tables' ids); revokes anything more it had there."""
    ensure_role(conn, APP_ROLE)
    schema = _quote(conn, str(conn.execute(sa.text("SELECT current_schema()")).scalar()))
    conn.execute(sa.text(f"GRANT USAGE ON SCHEMA {schema} TO {APP_ROLE}"))
    for table, privileges in APP_TABLES.items():
        name = _quote(conn, table)
        conn.execute(sa.text(f"REVOKE ALL ON {name} FROM {APP_ROLE}"))
        conn.execute(sa.text(f"GRANT {', '.join(privileges)} ON {name} TO {APP_ROLE}"))
    # The sequences behind those tables' serial ids (an INSERT takes the next value).
    sequences = conn.execute(
        sa.text(
            "SELECT s.relname FROM pg_class s "
            "JOIN pg_depend d ON d.objid = s.oid AND d.deptype IN ('a', 'i') "
            "JOIN pg_class t ON t.oid = d.refobjid "
            "WHERE s.relkind = 'S' AND t.relname = ANY(:tables) "
            "AND t.relnamespace = current_schema()::regnamespace"
        ),
        {"tables": list(APP_TABLES)},
    ).scalars()
    for sequence in sequences:
        conn.execute(
            sa.text(f"GRANT USAGE, SELECT ON SEQUENCE {_quote(conn, sequence)} TO {APP_ROLE}")
        )


def grant_to_login(conn: Connection, login: str) -> None:
    """Make ``login`` a member of both roles (it inherits their privileges)."""
    exists = conn.execute(
        sa.text("SELECT rolcanlogin FROM pg_roles WHERE rolname = :r"), {"r": login}
    ).scalar()
    if exists is None:
        raise InvalidInput(
            f"no role {login!r}: create the login first (CREATE ROLE {login} LOGIN "
            "PASSWORD '…'), then run this again",
            code="login_missing",
        )
    name = _quote(conn, login)
    conn.execute(sa.text(f"GRANT {APP_ROLE}, {AUDIT_ROLE} TO {name}"))


def missing_privileges(conn: Connection) -> list[str]:
    """``table:PRIVILEGE`` pairs the current login lacks (PostgreSQL; the tables of the
    current schema). A table that does not exist is reported as ``table:missing``."""
    existing = set(
        conn.execute(
            sa.text(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
                "AND tablename = ANY(:names)"
            ),
            {"names": list(REQUIRED)},
        ).scalars()
    )
    missing = [f"{t}:missing" for t in REQUIRED if t not in existing]
    pairs = [(t, p) for t, privs in REQUIRED.items() if t in existing for p in privs]
    if pairs:
        values = ", ".join(f"(:t{i}, :p{i})" for i in range(len(pairs)))
        params = {f"t{i}": t for i, (t, _) in enumerate(pairs)}
        params |= {f"p{i}": p for i, (_, p) in enumerate(pairs)}
        rows = conn.execute(
            sa.text(
                f"SELECT t, p FROM (VALUES {values}) AS v(t, p) "  # noqa: S608 -- placeholders only
                "WHERE NOT has_table_privilege(current_user, "
                "quote_ident(current_schema()) || '.' || quote_ident(t), p)"
            ),
            params,
        )
        missing += [f"{t}:{p}" for t, p in rows]
    return missing
