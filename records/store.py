"""Department data persistence: imports (versioned snapshots), rows, rejects, and the
reads other packages use (tables created by migration 0003).

Invariants:
- a loaded import is one snapshot: its history row, its feature list and all its rows
  commit in one transaction, or nothing does; rows are never updated or deleted, so
  every older snapshot stays for audit;
- the snapshot ``version`` counts a department's loaded imports (1, 2, …); it is unique
  per department, so two racing imports cannot take the same number;
- a rejected import is recorded too (status ``rejected``, no rows, its reject count and
  its value-free reasons), so a department sees every attempt;
- the *current* value of a feature for an enterprise is the one in the newest loaded
  import that has that feature for that enterprise (an enterprise or a column left out
  of a re-import keeps its earlier value).

Reads for models: :func:`feature_matrix` returns numbers for many enterprises at once
(see :func:`records.catalog.encode` for how enums, booleans and dates become numbers).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from operator import itemgetter
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from common.db import read_connection
from common.errors import Conflict, InvalidInput
from common.settings import Settings
from records.catalog import Catalog, Value, encode, parse_column
from records.importer import Checked, Reject

metadata = sa.MetaData()

record_imports = sa.Table(
    "record_imports",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("department", sa.String(48), nullable=False),
    sa.Column("version", sa.Integer),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("file_name", sa.String(255), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("row_count", sa.Integer, nullable=False),
    sa.Column("features", sa.Text, nullable=False),
    sa.Column("reject_count", sa.Integer, nullable=False),
    sa.Column("bad_rows", sa.Integer, nullable=False),
    sa.Column("imported_at", sa.BigInteger, nullable=False),
    sa.Column("imported_by", sa.String(120), nullable=False),
)

record_import_features = sa.Table(
    "record_import_features",
    metadata,
    sa.Column("feature", sa.String(100), primary_key=True),
    sa.Column("import_id", sa.Integer, primary_key=True),
)

record_rows = sa.Table(
    "record_rows",
    metadata,
    sa.Column("import_id", sa.Integer, primary_key=True),
    sa.Column("uscc", sa.String(18), primary_key=True),
    sa.Column("values_json", sa.Text, nullable=False),
)

record_rejects = sa.Table(
    "record_rejects",
    metadata,
    sa.Column("import_id", sa.Integer, primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True),
    sa.Column("line", sa.Integer, nullable=False),
    sa.Column("column_name", sa.String(120), nullable=False),
    sa.Column("code", sa.String(40), nullable=False),
    sa.Column("reason", sa.String(300), nullable=False),
)

# Rejects kept in the database per refused import (the CLI's rejects file has them all).
MAX_STORED_REJECTS = 100_000
INSERT_CHUNK = 50_000
SQLITE_IMPORT_CACHE_KIB = 131_072
_IN_CHUNK = 500


class ConcurrentImport(Conflict):
    code = "concurrent_import"


@dataclass(frozen=True)
class ImportRecord:
    """One import attempt of a department file."""

    id: int
    department: str
    version: int | None
    status: str  # "loaded" | "rejected"
    file_name: str
    sha256: str
    row_count: int
    features: tuple[str, ...]
    reject_count: int
    bad_rows: int
    imported_at: int
    imported_by: str

    @classmethod
    def from_mapping(cls, m: Any) -> ImportRecord:
        d = dict(m)
        d["features"] = tuple(json.loads(d["features"]))
        return cls(**d)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "department": self.department,
            "version": self.version,
            "status": self.status,
            "file_name": self.file_name,
            "sha256": self.sha256,
            "rows": self.row_count,
            "features": list(self.features),
            "reject_count": self.reject_count,
            "bad_rows": self.bad_rows,
            "imported_at": self.imported_at,
            "imported_by": self.imported_by,
        }


def _history_row(
    checked: Checked, *, status: str, version: int | None, file_name: str, actor: str, now: int
) -> dict[str, Any]:
    return {
        "department": checked.department,
        "version": version,
        "status": status,
        "file_name": file_name[-255:],
        "sha256": checked.sha256,
        "row_count": checked.row_count,
        "features": json.dumps(list(checked.features)),
        "reject_count": len(checked.rejects),
        "bad_rows": checked.bad_rows,
        "imported_at": now,
        "imported_by": actor[:120],
    }


def save_rejected(
    engine: Engine, checked: Checked, *, file_name: str, actor: str, now: int
) -> ImportRecord:
    """Record a refused import and (up to MAX_STORED_REJECTS of) its reasons."""
    assert checked.rejects, "only a file with problems is recorded as rejected"
    with engine.connect() as conn, conn.begin():
        values = _history_row(
            checked, status="rejected", version=None, file_name=file_name, actor=actor, now=now
        )
        import_id = int(
            conn.execute(
                record_imports.insert().values(**values).returning(record_imports.c.id)
            ).scalar_one()
        )
        kept = checked.rejects[:MAX_STORED_REJECTS]
        conn.execute(
            record_rejects.insert(),
            [
                {
                    "import_id": import_id,
                    "seq": i,
                    "line": r.line,
                    "column_name": r.column[:120],
                    "code": r.code,
                    "reason": r.reason[:300],
                }
                for i, r in enumerate(kept)
            ],
        )
    found = get_import(engine, import_id)
    assert found is not None
    return found


def save_loaded(
    engine: Engine,
    checked: Checked,
    *,
    file_name: str,
    actor: str,
    now: int,
    progress: Callable[[int], None] | None = None,
) -> ImportRecord:
    """Store a clean file as the department's next snapshot, in one transaction.
    ``progress(rows_written)`` is called after each bulk chunk."""
    assert checked.ok, "a file with problems is never loaded"
    try:
        with engine.connect() as conn:
            conn.execution_options(sqlite_begin="IMMEDIATE")
            with conn.begin():
                import_id, _version = save_snapshot(
                    conn, checked, file_name=file_name, actor=actor, now=now, progress=progress
                )
    except IntegrityError as e:
        raise ConcurrentImport(
            f"another import of {checked.department} committed meanwhile; import again"
        ) from e
    found = get_import(engine, import_id)
    assert found is not None
    return found


def save_snapshot(
    conn: sa.Connection,
    checked: Checked,
    *,
    file_name: str,
    actor: str,
    now: int,
    progress: Callable[[int], None] | None = None,
) -> tuple[int, int]:
    """Store a clean file as the department's next snapshot inside the caller's
    transaction (which must hold the write lock on SQLite); returns the import id and
    the snapshot version. A
    caller that commits more in the same transaction (an objection's correction and its
    events) uses this; ``save_loaded`` wraps it in a transaction of its own."""
    assert checked.ok, "a file with problems is never loaded"
    rows = sorted(checked.rows, key=itemgetter(0))  # key order: the B-tree is appended to
    latest = conn.execute(
        sa.select(sa.func.max(record_imports.c.version)).where(
            record_imports.c.department == checked.department
        )
    ).scalar()
    version = int(latest or 0) + 1
    values = _history_row(
        checked, status="loaded", version=version, file_name=file_name, actor=actor, now=now
    )
    import_id = int(
        conn.execute(
            record_imports.insert().values(**values).returning(record_imports.c.id)
        ).scalar_one()
    )
    conn.execute(
        record_import_features.insert(),
        [{"feature": f, "import_id": import_id} for f in checked.features],
    )
    _bulk_rows(conn, import_id, rows, progress)
    return import_id, version


def _bulk_rows(
    conn: sa.Connection,
    import_id: int,
    rows: Sequence[tuple[str, str]],
    progress: Callable[[int], None] | None,
) -> None:
    """Bulk insertion straight through the driver: executemany on SQLite, COPY on
    PostgreSQL (no per-row ORM objects, no per-row statements)."""
    raw: Any = conn.connection.driver_connection
    dialect = conn.dialect.name
    cursor = raw.cursor()
    if dialect == "sqlite":  # room for the B-tree pages a big snapshot touches
        cursor.execute(f"PRAGMA cache_size = -{SQLITE_IMPORT_CACHE_KIB}")
    try:
        for start in range(0, len(rows), INSERT_CHUNK):
            chunk = rows[start : start + INSERT_CHUNK]
            if dialect == "postgresql":
                # COPY text format: tab-separated, backslash is the escape character.
                # USCCs are alphanumeric and the JSON holds no raw tab or newline (JSON
                # escapes them), so only backslashes need doubling.
                prefix = f"{import_id}\t"
                text = "".join(
                    [
                        prefix + code + "\t" + values.replace("\\", "\\\\") + "\n"
                        for code, values in chunk
                    ]
                )
                with cursor.copy(
                    "COPY record_rows (import_id, uscc, values_json) FROM STDIN"
                ) as copy:
                    copy.write(text.encode("utf-8"))
            else:
                cursor.executemany(
                    "INSERT INTO record_rows (import_id, uscc, values_json) VALUES (?, ?, ?)",
                    [(import_id, code, values) for code, values in chunk],
                )
            if progress is not None:
                progress(min(start + INSERT_CHUNK, len(rows)))
    finally:
        if dialect == "sqlite":
            cursor.execute("PRAGMA cache_size = -2000")  # SQLite's default again
        cursor.close()


# History -----------------------------------------------------------------------------


def get_import(engine: Engine, import_id: int) -> ImportRecord | None:
    with engine.connect() as conn:
        m = (
            conn.execute(sa.select(record_imports).where(record_imports.c.id == import_id))
            .mappings()
            .first()
        )
    return ImportRecord.from_mapping(m) if m else None


def import_history(engine: Engine, department: str, *, limit: int = 200) -> list[ImportRecord]:
    """A department's import attempts, newest first."""
    q = (
        sa.select(record_imports)
        .where(record_imports.c.department == department)
        .order_by(record_imports.c.id.desc())
        .limit(limit)
    )
    with engine.connect() as conn:
        return [ImportRecord.from_mapping(m) for m in conn.execute(q).mappings()]


def import_rejects(engine: Engine, import_id: int) -> list[Reject]:
    """The stored reasons of a refused import, in file order."""
    q = (
        sa.select(
            record_rejects.c.line,
            record_rejects.c.column_name,
            record_rejects.c.code,
            record_rejects.c.reason,
        )
        .where(record_rejects.c.import_id == import_id)
        .order_by(record_rejects.c.seq)
    )
    with engine.connect() as conn:
        return [Reject(*r) for r in conn.execute(q)]


# Current values ------------------------------------------------------------------------


def _imports_with(conn: sa.Connection, feature_ids: Iterable[str]) -> list[int]:
    """Loaded imports holding any of ``feature_ids``, newest first."""
    q = (
        sa.select(record_import_features.c.import_id)
        .where(record_import_features.c.feature.in_(sorted(set(feature_ids))))
        .distinct()
    )
    return sorted((int(i) for i in conn.execute(q).scalars()), reverse=True)


def _features_of(conn: sa.Connection, import_ids: Sequence[int]) -> dict[int, tuple[str, ...]]:
    """Each import's column order (its rows are JSON arrays in that order)."""
    if not import_ids:
        return {}
    q = sa.select(record_imports.c.id, record_imports.c.features).where(
        record_imports.c.id.in_(sorted(set(import_ids)))
    )
    return {int(i): tuple(json.loads(f)) for i, f in conn.execute(q)}


_CURRENT_VALUES = (
    sa.select(record_imports.c.features, record_rows.c.values_json)
    .join(record_imports, record_imports.c.id == record_rows.c.import_id)
    .where(
        record_rows.c.uscc == sa.bindparam("uscc"),
        record_rows.c.import_id.in_(
            sa.select(record_import_features.c.import_id)
            .where(record_import_features.c.feature.in_(sa.bindparam("features", expanding=True)))
            .scalar_subquery()
        ),
    )
    .order_by(record_rows.c.import_id.desc())
)


def current_values(engine: Engine, uscc: str, feature_ids: Sequence[str]) -> dict[str, Value]:
    """The current value of each of ``feature_ids`` for one enterprise; a feature the
    gateway holds no value for is absent from the result."""
    wanted = set(feature_ids)
    out: dict[str, Value] = {}
    if not wanted:
        return out
    # One round trip, one statement compiled once: the hot path of report and verify.
    with read_connection(engine) as conn:
        rows = conn.execute(_CURRENT_VALUES, {"uscc": uscc, "features": sorted(wanted)}).all()
    for features, values_json in rows:
        for fid, value in zip(json.loads(features), json.loads(values_json), strict=True):
            if fid in wanted and fid not in out:
                out[fid] = value
        if len(out) == len(wanted):
            break
    return out


def enterprises(engine: Engine, department: str | None = None) -> list[str]:
    """Every enterprise with a loaded row (of ``department`` when given), sorted."""
    q = sa.select(record_rows.c.uscc).distinct().order_by(record_rows.c.uscc)
    if department is not None:
        q = q.join(record_imports, record_imports.c.id == record_rows.c.import_id).where(
            record_imports.c.department == department, record_imports.c.status == "loaded"
        )
    with engine.connect() as conn:
        return [str(u) for u in conn.execute(q).scalars()]


def population_matrix(
    engine: Engine,
    catalog: Catalog | Settings,
    columns: Sequence[str],
    *,
    as_of: date | None = None,
) -> np.ndarray:
    """The encoded ``columns`` of every enterprise the store holds a row about (NaN where
    it has no current value): the population a joint model's gateway standardization is
    fitted on, so that no bank-chosen set of rows fixes it (issue 12)."""
    _, matrix = feature_matrix(engine, catalog, enterprises(engine), columns, as_of=as_of)
    return matrix


def feature_matrix(
    engine: Engine,
    catalog: Catalog | Settings,
    usccs: Sequence[str],
    columns: Sequence[str],
    *,
    as_of: date | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Model inputs for many enterprises: ``(present, X)``, both of shape
    ``(len(usccs), len(columns))``; ``present[i, j]`` says whether enterprise i has a
    current value for column j, and ``X[i, j]`` is its encoding (NaN when absent).

    A column is ``category.feature``, ``log1p(category.feature)`` or
    ``category.feature=VALUE`` (an indicator for an enum or boolean); encodings are
    those of :func:`records.catalog.encode`. Dates encode as years until ``as_of``
    (default: today; pass a fixed date for reproducible training)."""
    cat = catalog if isinstance(catalog, Catalog) else Catalog(catalog.config)
    parsed = [parse_column(cat, c) for c in columns]
    rules = [cat.rule(c.feature) for c in parsed]
    as_of = as_of or date.today()
    n, k = len(usccs), len(parsed)
    position = {u: i for i, u in enumerate(usccs)}
    if len(position) != n:
        raise InvalidInput("usccs must not repeat", code="duplicate_uscc")
    needed = {c.feature for c in parsed}
    raw: list[dict[str, Value]] = [{} for _ in range(n)]
    with engine.connect() as conn:
        imports = _imports_with(conn, needed)
        order = _features_of(conn, imports)
        for import_id in imports:
            # Positions of the wanted features in this import's rows.
            picks = [(j, f) for j, f in enumerate(order[import_id]) if f in needed]
            for code, values_json in _rows_of(conn, import_id, usccs):
                i = position.get(code)
                if i is None:
                    continue
                have = raw[i]
                if len(have) == len(needed):
                    continue
                values = json.loads(values_json)
                for j, fid in picks:
                    if fid not in have:
                        have[fid] = values[j]
    present = np.zeros((n, k), dtype=bool)
    matrix = np.full((n, k), np.nan, dtype=np.float64)
    for i, have in enumerate(raw):
        for j, (column, rule) in enumerate(zip(parsed, rules, strict=True)):
            value = have.get(column.feature)
            if value is not None:
                present[i, j] = True
                matrix[i, j] = encode(rule, column, value, as_of)
    return present, matrix


def _rows_of(
    conn: sa.Connection, import_id: int, usccs: Sequence[str]
) -> Iterable[tuple[str, str]]:
    base = sa.select(record_rows.c.uscc, record_rows.c.values_json).where(
        record_rows.c.import_id == import_id
    )
    if len(usccs) > 20 * _IN_CHUNK:  # many enterprises: one scan of the snapshot is cheaper
        for code, values_json in conn.execute(base):
            yield str(code), str(values_json)
        return
    for start in range(0, len(usccs), _IN_CHUNK):
        chunk = list(usccs[start : start + _IN_CHUNK])
        for code, values_json in conn.execute(base.where(record_rows.c.uscc.in_(chunk))):
            yield str(code), str(values_json)


# Changes (--- alerts ---) ---------------------------------------------------------------


@dataclass(frozen=True)
class Changes:
    """What one import changed for some enterprises: for each watched feature the
    import holds, aligned with ``usccs``, the value before the import (None: none) and
    the value it brought."""

    usccs: list[str]
    old: dict[str, list[Value | None]]
    new: dict[str, list[Value]]


def changes(
    conn: sa.Connection, import_id: int, features: Sequence[str], usccs: Sequence[str]
) -> Changes:
    """Old and new values of ``features`` for those of ``usccs`` that import
    ``import_id`` holds. Reads only those enterprises' rows (by primary key, in chunks),
    so its cost follows the number of enterprises asked about, never the import's size.
    The value before is the newest earlier loaded import holding the feature for the
    enterprise (the store's rule for a current value)."""
    own = _features_of(conn, [import_id]).get(import_id, ())
    watched = [f for f in features if f in own]
    out = Changes([], {f: [] for f in watched}, {f: [] for f in watched})
    if not watched or not usccs:
        return out
    earlier = [i for i in _imports_with(conn, watched) if i < import_id]
    layouts = _features_of(conn, earlier)
    at = {f: own.index(f) for f in watched}
    for start in range(0, len(usccs), _IN_CHUNK):
        chunk = sorted(set(usccs[start : start + _IN_CHUNK]))
        fresh = conn.execute(
            sa.select(record_rows.c.uscc, record_rows.c.values_json).where(
                record_rows.c.import_id == import_id, record_rows.c.uscc.in_(chunk)
            )
        ).all()
        if not fresh:
            continue
        present = [str(u) for u, _ in fresh]
        before: dict[tuple[str, str], Value] = {}
        if earlier:
            rows = conn.execute(
                sa.select(record_rows.c.import_id, record_rows.c.uscc, record_rows.c.values_json)
                .where(record_rows.c.import_id.in_(earlier), record_rows.c.uscc.in_(present))
                .order_by(record_rows.c.import_id.desc())
            )
            for iid, code, values_json in rows:
                values = json.loads(values_json)
                for f, v in zip(layouts[int(iid)], values, strict=True):
                    if f in at:
                        before.setdefault((str(code), f), v)
        for code, values_json in fresh:
            values = json.loads(values_json)
            out.usccs.append(str(code))
            for f in watched:
                out.new[f].append(values[at[f]])
                out.old[f].append(before.get((str(code), f)))
    return out


def loaded_after(conn: sa.Connection, after_id: int, limit: int = 100) -> list[ImportRecord]:
    """Loaded imports (snapshots) with ``id > after_id``, oldest first."""
    q = (
        sa.select(record_imports)
        .where(record_imports.c.id > after_id, record_imports.c.status == "loaded")
        .order_by(record_imports.c.id)
        .limit(limit)
    )
    return [ImportRecord.from_mapping(m) for m in conn.execute(q).mappings()]


def last_import_id(conn: sa.Connection) -> int:
    return int(conn.execute(sa.select(sa.func.max(record_imports.c.id))).scalar() or 0)
