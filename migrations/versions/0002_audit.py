"""audit log tables (owned by the audit package)

Append-only by construction: UPDATE and DELETE (and TRUNCATE on PostgreSQL) on the
entries, their department index, the tree and the checkpoints are refused by
triggers on both SQLite and PostgreSQL, whoever the user is. The queue (rows leave it
when they are integrated) and the single log-state row are the only mutable parts.

On PostgreSQL this revision also creates, when it does not exist and the migrating
user may create roles, the NOLOGIN role ``xinyi_audit``: it may only INSERT and SELECT
the append-only tables (plus take entries off the queue and move the log state).
Grant it to the gateway's login role and give that login no other privilege on the
audit tables: ``GRANT xinyi_audit TO <gateway login>``.

Revision ID: 0002_audit
Revises: 0001_foundation
"""

import hashlib

import sqlalchemy as sa
from alembic import op

revision = "0002_audit"
down_revision = "0001_foundation"
branch_labels = None
depends_on = None

# BIGINT on PostgreSQL; INTEGER (the rowid alias) on SQLite.
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
APPEND_ONLY = (
    "audit_entries",
    "audit_entry_departments",
    "audit_tree",
    "audit_checkpoints",
    "audit_cosignatures",
)
ROLE = "xinyi_audit"


def upgrade() -> None:
    op.create_table(
        "audit_state",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("root", sa.LargeBinary(32), nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.CheckConstraint("id = 1", name="ck_audit_state_single_row"),
    )
    op.bulk_insert(
        sa.table(
            "audit_state",
            sa.column("id", sa.Integer),
            sa.column("size", sa.BigInteger),
            sa.column("root", sa.LargeBinary),
            sa.column("updated_at", sa.Float),
        ),
        [{"id": 1, "size": 0, "root": hashlib.sha256(b"").digest(), "updated_at": 0.0}],
    )
    op.create_table(
        "audit_queue",
        sa.Column("id", ID, sa.Identity(), primary_key=True),
        sa.Column("entry", sa.LargeBinary, nullable=False),
        sa.Column("enqueued_at", sa.Float, nullable=False),
        # Queue ids are never reused (they name an entry until it has its index).
        sqlite_autoincrement=True,
    )
    op.create_table(
        "audit_entries",
        sa.Column("idx", ID, primary_key=True, autoincrement=False),
        sa.Column("queue_id", sa.BigInteger, nullable=False, unique=True),
        sa.Column("entry", sa.LargeBinary, nullable=False),
        sa.Column("time", sa.BigInteger, nullable=False),
        sa.Column("institution", sa.String(200), nullable=True),
        sa.Column("enterprise", sa.String(200), nullable=True),
    )
    op.create_index("ix_audit_entries_enterprise", "audit_entries", ["enterprise", "idx"])
    op.create_index("ix_audit_entries_institution", "audit_entries", ["institution", "idx"])
    op.create_table(
        "audit_entry_departments",
        sa.Column("department", sa.String(200), primary_key=True),
        sa.Column("idx", sa.BigInteger, primary_key=True),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "audit_tree",
        # node = level * 2**48 + index: every complete subtree, leaves at level 0.
        sa.Column("node", ID, primary_key=True, autoincrement=False),
        sa.Column("hash", sa.LargeBinary(32), nullable=False),
    )
    op.create_table(
        "audit_checkpoints",
        sa.Column("size", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("root", sa.LargeBinary(32), nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "audit_cosignatures",
        sa.Column("size", sa.BigInteger, sa.ForeignKey("audit_checkpoints.size"), primary_key=True),
        sa.Column("witness", sa.String(200), primary_key=True),
        sa.Column("key_id", sa.String(8), primary_key=True),
        sa.Column("signature", sa.Text, nullable=False),
        sa.Column("timestamp", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "audit_witnesses",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("key_id", sa.String(8), primary_key=True),
        sa.Column("department", sa.String(48), nullable=False, index=True),
        sa.Column("vkey", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_triggers()
    else:
        _postgresql_triggers()
        _postgresql_role()


def _sqlite_triggers() -> None:
    for table in APPEND_ONLY:
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: {action} refused'); END"
            )


def _postgresql_triggers() -> None:
    op.execute(
        """
        CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END $$
        """
    )
    for table in APPEND_ONLY:
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION audit_append_only()"
        )
        op.execute(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only()"
        )


def _postgresql_role() -> None:
    # Roles are cluster-wide: create once, tolerate a concurrent creator, and skip
    # (with a notice) when the migrating user may not create roles.
    op.execute(
        f"""
        DO $$
        BEGIN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{ROLE}') THEN
                CREATE ROLE {ROLE} NOLOGIN;
            END IF;
        EXCEPTION
            WHEN duplicate_object OR unique_violation THEN NULL;
            WHEN insufficient_privilege THEN
                RAISE NOTICE 'cannot create role {ROLE}; create it as documented';
        END $$
        """
    )
    tables = ", ".join((*APPEND_ONLY, "audit_witnesses"))
    op.execute(
        f"""
        DO $$
        BEGIN
            IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{ROLE}') THEN
                EXECUTE format('GRANT USAGE ON SCHEMA %I TO {ROLE}', current_schema());
                GRANT SELECT, INSERT ON {tables} TO {ROLE};
                GRANT SELECT, INSERT, DELETE ON audit_queue TO {ROLE};
                GRANT SELECT, UPDATE ON audit_state TO {ROLE};
                GRANT USAGE ON SEQUENCE audit_queue_id_seq TO {ROLE};
            END IF;
        END $$
        """
    )


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        op.execute(
            f"""
            DO $$
            BEGIN
                IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{ROLE}') THEN
                    EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA %I FROM {ROLE}',
                                   current_schema());
                    EXECUTE format('REVOKE ALL ON ALL SEQUENCES IN SCHEMA %I FROM {ROLE}',
                                   current_schema());
                    EXECUTE format('REVOKE USAGE ON SCHEMA %I FROM {ROLE}', current_schema());
                END IF;
            END $$
            """  # noqa: S608 -- a constant role name, no input
        )
    for table in (
        "audit_witnesses",
        "audit_cosignatures",
        "audit_checkpoints",
        "audit_tree",
        "audit_entry_departments",
        "audit_entries",
        "audit_queue",
        "audit_state",
    ):
        op.drop_table(table)
    if bind.dialect.name != "sqlite":
        op.execute("DROP FUNCTION IF EXISTS audit_append_only()")
