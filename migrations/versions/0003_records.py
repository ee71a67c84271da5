"""department data tables (owned by the records package)

Every department import is recorded (loaded or rejected); a loaded import is one
versioned snapshot whose rows are never updated or deleted. ``record_rows`` holds one
row per enterprise and import with the row's values as canonical JSON keyed by
feature id; it is keyed by (import, uscc) and stored WITHOUT ROWID on SQLite so that a
bulk load appends to one B-tree.

Revision ID: 0003_records
Revises: 0002_audit
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_records"
down_revision = "0002_audit"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "record_imports",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("department", sa.String(48), nullable=False),
        sa.Column("version", sa.Integer, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("file_name", sa.String(255), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("row_count", sa.Integer, nullable=False),
        sa.Column("features", sa.Text, nullable=False),
        sa.Column("reject_count", sa.Integer, nullable=False),
        sa.Column("bad_rows", sa.Integer, nullable=False),
        sa.Column("imported_at", sa.BigInteger, nullable=False),
        sa.Column("imported_by", sa.String(120), nullable=False),
        sa.UniqueConstraint("department", "version", name="uq_record_imports_version"),
    )
    op.create_index("ix_record_imports_department", "record_imports", ["department", "id"])
    op.create_table(
        "record_import_features",
        sa.Column("feature", sa.String(100), primary_key=True),
        sa.Column("import_id", sa.Integer, sa.ForeignKey("record_imports.id"), primary_key=True),
    )
    op.create_table(
        "record_rows",
        sa.Column("import_id", sa.Integer, sa.ForeignKey("record_imports.id"), primary_key=True),
        sa.Column("uscc", sa.String(18), primary_key=True),
        sa.Column("values_json", sa.Text, nullable=False),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "record_rejects",
        sa.Column("import_id", sa.Integer, sa.ForeignKey("record_imports.id"), primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True),
        sa.Column("line", sa.Integer, nullable=False),
        sa.Column("column_name", sa.String(120), nullable=False),
        sa.Column("code", sa.String(40), nullable=False),
        sa.Column("reason", sa.String(300), nullable=False),
    )


def downgrade() -> None:
    for table in ("record_rejects", "record_rows", "record_import_features", "record_imports"):
        op.drop_table(table)
