"""audit entry openings: each department's part of an entry, kept beside the entry

Entries of format 2 hash a salted commitment per department (and one for the grant and
model ids) instead of the parts themselves; the openings (the parts and their salts)
are kept here, keyed by the entry's queue id, written in the same transaction as the
queued entry. A viewer is given the openings it may see and recomputes the leaf hash
(see ``audit/entry.py`` and ``docs/audit.md``). Append-only like the entries.

Revision ID: 0008_audit_openings
Revises: 0007_model_governance
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_audit_openings"
down_revision = "0007_model_governance"
branch_labels = None
depends_on = None

TABLE = "audit_openings"
ROLE = "xinyi_audit"


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("queue_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("opening", sa.LargeBinary, nullable=False),
    )
    if op.get_bind().dialect.name == "sqlite":
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {TABLE}_no_{action.lower()} BEFORE {action} ON {TABLE} "
                f"BEGIN SELECT RAISE(ABORT, '{TABLE} is append-only: {action} refused'); END"
            )
        return
    op.execute(
        f"CREATE TRIGGER {TABLE}_append_only BEFORE UPDATE OR DELETE ON {TABLE} "
        "FOR EACH ROW EXECUTE FUNCTION audit_append_only()"
    )
    op.execute(
        f"CREATE TRIGGER {TABLE}_no_truncate BEFORE TRUNCATE ON {TABLE} "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only()"
    )
    op.execute(
        f"""
        DO $$
        BEGIN
            IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{ROLE}') THEN
                GRANT SELECT, INSERT ON {TABLE} TO {ROLE};
            END IF;
        END $$
        """
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.execute(
            f"""
            DO $$
            BEGIN
                IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{ROLE}') THEN
                    REVOKE ALL ON {TABLE} FROM {ROLE};
                END IF;
            END $$
            """  # noqa: S608 -- constant table and role names, no input
        )
    op.drop_table(TABLE)
