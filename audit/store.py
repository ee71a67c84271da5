"""Audit persistence: queue, entries, tree, checkpoints (tables of migration 0002).

Invariants:
- the log lock is the single ``audit_state`` row: ``SELECT ... FOR UPDATE`` on
  PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite. Whoever holds it is the only sequencer
  across processes and hosts; the next index is the ``size`` it reads there (never a
  database sequence, which can have gaps);
- a batch moves queue rows into ``audit_entries`` with contiguous indices, stores every
  newly completed subtree in ``audit_tree`` (computed in Python from the right
  frontier), and advances the state row, all in that one locked transaction;
- ``audit_tree`` holds every complete subtree at key ``level * 2**48 + index``
  (leaves at level 0), so a proof reads O(log n) rows by primary key;
- entries, the tree and checkpoints are only ever inserted (triggers refuse UPDATE
  and DELETE).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session

from audit import entry as audit_entry
from audit import merkle
from common.db import is_sqlite

metadata = sa.MetaData()
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

state = sa.Table(
    "audit_state",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("root", sa.LargeBinary, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)
queue = sa.Table(
    "audit_queue",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("entry", sa.LargeBinary, nullable=False),
    sa.Column("enqueued_at", sa.Float, nullable=False),
)
entries = sa.Table(
    "audit_entries",
    metadata,
    sa.Column("idx", ID, primary_key=True, autoincrement=False),
    sa.Column("queue_id", sa.BigInteger, nullable=False),
    sa.Column("entry", sa.LargeBinary, nullable=False),
    sa.Column("time", sa.BigInteger, nullable=False),
    sa.Column("institution", sa.String(200)),
    sa.Column("enterprise", sa.String(200)),
)
openings = sa.Table(
    "audit_openings",
    metadata,
    sa.Column("queue_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("opening", sa.LargeBinary, nullable=False),
)
entry_departments = sa.Table(
    "audit_entry_departments",
    metadata,
    sa.Column("department", sa.String(200), primary_key=True),
    sa.Column("idx", sa.BigInteger, primary_key=True),
)
tree = sa.Table(
    "audit_tree",
    metadata,
    sa.Column("node", ID, primary_key=True, autoincrement=False),
    sa.Column("hash", sa.LargeBinary, nullable=False),
)
checkpoints = sa.Table(
    "audit_checkpoints",
    metadata,
    sa.Column("size", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("root", sa.LargeBinary, nullable=False),
    sa.Column("note", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)
cosignatures = sa.Table(
    "audit_cosignatures",
    metadata,
    sa.Column("size", sa.BigInteger, primary_key=True),
    sa.Column("witness", sa.String(200), primary_key=True),
    sa.Column("key_id", sa.String(8), primary_key=True),
    sa.Column("signature", sa.Text, nullable=False),
    sa.Column("timestamp", sa.BigInteger, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)
witnesses = sa.Table(
    "audit_witnesses",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("key_id", sa.String(8), primary_key=True),
    sa.Column("department", sa.String(48), nullable=False),
    sa.Column("vkey", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

Executor = Connection | Session
LEVEL_SHIFT = 48
DEFAULT_BUSY_MS = 30000  # common.db's busy timeout, restored after a bounded wait


def node_key(level: int, index: int) -> int:
    return (level << LEVEL_SHIFT) | index


@dataclass(frozen=True)
class LogState:
    size: int
    root: bytes


@dataclass(frozen=True)
class Batch:
    """What one sequencing step integrated."""

    first_index: int
    count: int
    size: int
    root: bytes
    queue_ids: tuple[int, ...] = ()  # in log order: queue_ids[k] got first_index + k
    frontier: tuple[bytes, ...] = ()  # right frontier of the tree of ``size``


@contextmanager
def raw_cursor(conn: Connection) -> Iterator[Any]:
    """A DBAPI cursor on the connection's current transaction, for the hot paths where
    SQLAlchemy's per-statement and per-row work costs more than the database. Driver
    errors come out as SQLAlchemy's, like everywhere else."""
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        yield cursor
    except conn.dialect.loaded_dbapi.Error as e:
        raise sa.exc.DBAPIError.instance(
            None, None, e, conn.dialect.loaded_dbapi.Error, dialect=conn.dialect
        ) from e
    finally:
        cursor.close()


# The lock --------------------------------------------------------------------------------


# Two statements in one round trip (simple query protocol: no parameters possible).
_LOCK_PG = (
    "SELECT set_config('lock_timeout', 'WAITms', true); "
    "SELECT size, root FROM audit_state WHERE id = 1 FOR UPDATE"
)
_STATE = sa.select(state.c.size, state.c.root).where(state.c.id == 1).with_for_update()


@contextmanager
def locked(engine: Engine, timeout: float) -> Iterator[tuple[Connection, LogState]]:
    """A transaction holding the log lock, waiting at most ``timeout`` seconds for it.
    Raises sqlalchemy's OperationalError when the lock cannot be had in time."""
    conn = engine.connect()
    on_sqlite = is_sqlite(engine)
    wait_ms = max(int(timeout * 1000), 1)
    try:
        if on_sqlite:
            # The wait for BEGIN IMMEDIATE is SQLite's busy timeout: bound it.
            conn.connection.driver_connection.execute(f"PRAGMA busy_timeout = {wait_ms}")  # type: ignore[union-attr]
            conn.execution_options(sqlite_begin="IMMEDIATE")
        with conn.begin():
            if on_sqlite:
                row = conn.execute(_STATE).one()
            else:
                # One round trip: bound the wait, then take the row lock.
                with raw_cursor(conn) as cursor:
                    cursor.execute(_LOCK_PG.replace("WAIT", str(int(wait_ms))))
                    cursor.nextset()
                    row = cursor.fetchone()
            yield conn, LogState(int(row[0]), bytes(row[1]))
    finally:
        if on_sqlite and not conn.invalidated:
            conn.connection.driver_connection.execute(  # type: ignore[union-attr]
                f"PRAGMA busy_timeout = {DEFAULT_BUSY_MS}"
            )
        conn.close()


# Queue and sequencing --------------------------------------------------------------------


_ENQUEUE_SQL = {
    "sqlite": "INSERT INTO audit_queue (entry, enqueued_at) VALUES (?, ?)",
    "postgresql": "INSERT INTO audit_queue (entry, enqueued_at) VALUES (%s, %s) RETURNING id",
}
_OPENING_SQL = {
    "sqlite": "INSERT INTO audit_openings (queue_id, opening) VALUES (?, ?)",
    "postgresql": "INSERT INTO audit_openings (queue_id, opening) VALUES (%s, %s)",
}


def enqueue(ex: Executor, entry: bytes, now: float, opening: bytes | None = None) -> int:
    """Queue the committed entry and keep its opening, in the caller's transaction.
    Every request pays for this: two statements straight on the DBAPI cursor."""
    conn = ex.connection() if isinstance(ex, Session) else ex  # same transaction, less overhead
    dialect = "postgresql" if conn.dialect.name == "postgresql" else "sqlite"
    with raw_cursor(conn) as cursor:
        cursor.execute(_ENQUEUE_SQL[dialect], (entry, now))
        queue_id = int(cursor.fetchone()[0] if dialect == "postgresql" else cursor.lastrowid)
        if opening is not None:
            cursor.execute(_OPENING_SQL[dialect], (queue_id, opening))
    return queue_id


def read_state(ex: Executor) -> LogState:
    row = ex.execute(sa.select(state.c.size, state.c.root).where(state.c.id == 1)).one()
    return LogState(int(row.size), bytes(row.root))


def read_nodes(ex: Executor, ids: Sequence[merkle.NodeId]) -> dict[merkle.NodeId, bytes]:
    """Hashes of the complete subtrees ``ids`` (those that are stored), in one query
    straight on the DBAPI cursor: every proof and every batch pays for this one."""
    if not ids:
        return {}
    by_key = {node_key(level, index): (level, index) for level, index in ids}
    conn = ex.connection() if isinstance(ex, Session) else ex
    with raw_cursor(conn) as cursor:
        if conn.dialect.name == "postgresql":
            sql = "SELECT node, hash FROM audit_tree WHERE node = ANY(%s)"
            cursor.execute(sql, (list(by_key),), binary=True)
        else:
            marks = ", ".join("?" * len(by_key))
            sql = f"SELECT node, hash FROM audit_tree WHERE node IN ({marks})"  # noqa: S608 -- placeholders only
            cursor.execute(sql, tuple(by_key))
        return {by_key[node]: bytes(h) for node, h in cursor.fetchall()}


def node_reader(ex: Executor) -> merkle.NodeReader:
    return lambda ids: read_nodes(ex, ids)


def _insert_many(conn: Connection, table: str, columns: Sequence[str], rows: list[Any]) -> None:
    """SQLite: insert many positional rows with one DBAPI executemany (SQLAlchemy's
    per-row parameter processing costs more than the insert at batch sizes of thousands;
    PostgreSQL writes a batch with ``_WRITE_BATCH_PG``)."""
    marks = ", ".join("?" for _ in columns)
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"  # noqa: S608 -- constant names
    conn.exec_driver_sql(sql, rows)


_ENTRY_COLUMNS = ("idx", "queue_id", "entry", "time", "institution", "enterprise")
_DEPARTMENT_COLUMNS = ("department", "idx")
_TREE_COLUMNS = ("node", "hash")
_PENDING = sa.select(queue.c.id, queue.c.entry).order_by(queue.c.id).limit(sa.bindparam("n"))
_DEQUEUE = queue.delete().where(queue.c.id.in_(sa.bindparam("ids", expanding=True)))


_WRITE_BATCH_PG = """
WITH e AS (
    INSERT INTO audit_entries (idx, queue_id, entry, time, institution, enterprise)
    SELECT * FROM unnest(%b::bigint[], %b::bigint[], %b::bytea[], %b::bigint[],
                         %b::text[], %b::text[])
), d AS (
    INSERT INTO audit_entry_departments (department, idx)
    SELECT * FROM unnest(%b::text[], %b::bigint[])
), t AS (
    INSERT INTO audit_tree (node, hash) SELECT * FROM unnest(%b::bigint[], %b::bytea[])
), q AS (
    DELETE FROM audit_queue WHERE id = ANY(%b::bigint[])
)
UPDATE audit_state SET size = %b::bigint, root = %b::bytea, updated_at = %b::float8
WHERE id = 1
"""


def _columns(rows: list[tuple[Any, ...]], width: int) -> list[list[Any]]:
    return [list(col) for col in zip(*rows, strict=True)] if rows else [[] for _ in range(width)]


def _write_batch_pg(
    conn: Connection,
    entry_rows: list[tuple[Any, ...]],
    department_rows: list[tuple[Any, ...]],
    nodes: list[tuple[int, bytes]],
    ids: list[int],
    size: int,
    root: bytes,
    now: float,
) -> None:
    """PostgreSQL: the whole batch in one statement (data-modifying CTEs), binary
    arrays: one round trip instead of five, each parameter sent once."""
    params = [
        *_columns(entry_rows, 6),
        *_columns(department_rows, 2),
        *_columns(nodes, 2),
        ids,
        size,
        root,
        now,
    ]
    with raw_cursor(conn) as cursor:
        cursor.execute(_WRITE_BATCH_PG, params)


def integrate(
    conn: Connection,
    log: LogState,
    batch_max: int,
    now: float,
    frontier: Sequence[bytes] | None = None,
) -> Batch | None:
    """Integrate up to ``batch_max`` queued entries; call inside ``locked``.

    ``frontier`` may carry the right frontier this process computed for exactly
    ``log`` (same size and root, read under the lock); otherwise it is read."""
    pending = conn.execute(_PENDING, {"n": batch_max}).all()
    if not pending:
        return None
    if frontier is None or merkle.fold(frontier) != log.root:
        frontier_ids = merkle.subtrees(0, log.size)
        found = read_nodes(conn, frontier_ids)
        frontier = [found[n] for n in frontier_ids]
    raws = [bytes(entry) for _, entry in pending]
    created, new_frontier = merkle.append_leaves(
        log.size, frontier, [merkle.leaf_hash(raw) for raw in raws]
    )
    entry_rows: list[tuple[Any, ...]] = []
    department_rows: list[tuple[Any, ...]] = []
    for index, (queue_id, _), raw in zip(
        range(log.size, log.size + len(raws)), pending, raws, strict=True
    ):
        fields = json.loads(raw)
        entry_rows.append(
            (
                index,
                queue_id,
                raw,
                fields["time"],
                fields.get("institution"),
                fields.get("enterprise"),
            )
        )
        department_rows.extend((d, index) for d in fields["departments"])
    nodes = [(node_key(lvl, i), h) for lvl, i, h in created]
    ids = [queue_id for queue_id, _ in pending]
    size = log.size + len(pending)
    root = merkle.fold(new_frontier)
    if conn.dialect.name == "postgresql":
        _write_batch_pg(conn, entry_rows, department_rows, nodes, ids, size, root, now)
    else:
        _insert_many(conn, "audit_entries", _ENTRY_COLUMNS, entry_rows)
        if department_rows:
            _insert_many(conn, "audit_entry_departments", _DEPARTMENT_COLUMNS, department_rows)
        _insert_many(conn, "audit_tree", _TREE_COLUMNS, nodes)
        conn.execute(_DEQUEUE, {"ids": ids})
        conn.execute(
            state.update().where(state.c.id == 1).values(size=size, root=root, updated_at=now)
        )
    return Batch(
        first_index=log.size,
        count=len(pending),
        size=size,
        root=root,
        queue_ids=tuple(ids),
        frontier=tuple(new_frontier),
    )


_INDICES_BETWEEN = sa.select(entries.c.queue_id, entries.c.idx).where(
    entries.c.idx >= sa.bindparam("start"), entries.c.idx < sa.bindparam("end")
)


def indices_between(ex: Executor, start: int, end: int) -> dict[int, int]:
    """queue id -> index of the entries with start <= index < end."""
    rows = ex.execute(_INDICES_BETWEEN, {"start": start, "end": end})
    return {int(q): int(i) for q, i in rows}


def index_of(ex: Executor, queue_id: int) -> int | None:
    value = ex.execute(sa.select(entries.c.idx).where(entries.c.queue_id == queue_id)).scalar()
    return None if value is None else int(value)


def is_queued(ex: Executor, queue_id: int) -> bool:
    return ex.execute(sa.select(queue.c.id).where(queue.c.id == queue_id)).first() is not None


def queue_status(ex: Executor) -> tuple[int, float | None]:
    """(entries waiting, enqueue time of the oldest)."""
    row = ex.execute(sa.select(sa.func.count(), sa.func.min(queue.c.enqueued_at))).one()
    return int(row[0]), None if row[1] is None else float(row[1])


# Entries -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Viewer:
    """Who asks: ``department``, ``enterprise``, ``institution`` or ``operator`` (all)."""

    kind: str
    id: str


def _visible(query: sa.Select[Any], kind: str) -> sa.Select[Any]:
    """``query`` restricted to what a viewer of ``kind`` may see; the viewer's id is
    the bound parameter ``viewer`` (so a statement is built once per kind)."""
    viewer = sa.bindparam("viewer", type_=sa.String)
    if kind == "operator":
        return query
    if kind == "enterprise":
        return query.where(entries.c.enterprise == viewer)
    if kind == "institution":
        return query.where(entries.c.institution == viewer)
    if kind == "department":
        return query.where(
            sa.exists().where(
                entry_departments.c.department == viewer,
                entry_departments.c.idx == entries.c.idx,
            )
        )
    return query.where(sa.false())


_WITH_OPENING = entries.outerjoin(openings, openings.c.queue_id == entries.c.queue_id)


def list_entries(
    ex: Executor, viewer: Viewer, after: int, limit: int, *, before: int | None = None
) -> list[tuple[int, bytes, bytes | None]]:
    """Entries the viewer may see with index > ``after``, in index order; or, given
    ``before``, those with index < ``before``, newest first (``after`` ignored); each
    with its opening (None for format 1 entries)."""
    query: sa.Select[Any]
    columns = (entries.c.idx, entries.c.entry, openings.c.opening)
    if viewer.kind == "department":
        # Walk the department index, then fetch the entries by primary key.
        idx = entry_departments.c.idx
        query = (
            sa.select(*columns)
            .select_from(
                entry_departments.join(entries, entries.c.idx == idx).outerjoin(
                    openings, openings.c.queue_id == entries.c.queue_id
                )
            )
            .where(entry_departments.c.department == viewer.id)
        )
    else:
        idx = entries.c.idx
        query = _visible(sa.select(*columns).select_from(_WITH_OPENING), viewer.kind)
    if before is None:
        bound, order = idx > after, idx.asc()
    else:
        bound, order = idx < before, idx.desc()
    rows = ex.execute(query.where(bound).order_by(order).limit(limit), {"viewer": viewer.id})
    return [(int(i), bytes(e), None if o is None else bytes(o)) for i, e, o in rows]


def get_entry(ex: Executor, viewer: Viewer, index: int) -> tuple[bytes, bytes | None] | None:
    """The entry ``index`` and its opening, when the viewer may see it."""
    query = _visible(
        sa.select(entries.c.entry, openings.c.opening)
        .select_from(_WITH_OPENING)
        .where(entries.c.idx == index),
        viewer.kind,
    )
    row = ex.execute(query, {"viewer": viewer.id}).first()
    if row is None:
        return None
    return bytes(row[0]), None if row[1] is None else bytes(row[1])


def institutions_answered(ex: Executor, enterprise: str, feature: str, since: int) -> set[str]:
    """Institutions whose allowed requests about ``enterprise`` used ``feature``
    (``category.feature``, as the entry's ``features`` lists it) at or after ``since``
    (UNIX seconds of the entry's ``time``): who received an answer built on its value."""
    rows = ex.execute(
        sa.select(entries.c.institution, entries.c.entry, openings.c.opening)
        .select_from(_WITH_OPENING)
        .where(
            entries.c.enterprise == enterprise,
            entries.c.time >= since,
            entries.c.institution.is_not(None),
        )
    )
    out: set[str] = set()
    for institution, raw, opening in rows:
        if institution in out:
            continue
        # Format 2 entries keep their features in the opening (format 1 in the entry).
        shown = audit_entry.view(bytes(raw), None if opening is None else bytes(opening))
        if shown.get("decision") == "allowed" and feature in (shown.get("features") or ()):
            out.add(str(institution))
    return out


def departments_under_grant(
    ex: Executor, institution: str, enterprise: str, grant_id: str
) -> set[str]:
    """Departments whose data an allowed request of ``institution`` about ``enterprise``
    under the grant ``grant_id`` touched (the financing loop's 成效, JY 三(二)2)."""
    rows = ex.execute(
        sa.select(entries.c.entry, openings.c.opening)
        .select_from(_WITH_OPENING)
        .where(entries.c.enterprise == enterprise, entries.c.institution == institution)
    )
    out: set[str] = set()
    for raw, opening in rows:
        shown = audit_entry.view(bytes(raw), None if opening is None else bytes(opening))
        if shown.get("decision") == "allowed" and shown.get("grant_id") == grant_id:
            if str(shown.get("operation", "")).startswith("consent."):
                continue  # the consent decision itself used no data
            out.update(str(d) for d in shown.get("departments") or ())
    return out


def _proof_context_statement(kind: str) -> sa.Select[Any]:
    query = sa.select(entries.c.idx).where(entries.c.idx == sa.bindparam("idx", type_=ID))
    return sa.select(
        _visible(query, kind).exists(),
        sa.select(state.c.size).where(state.c.id == 1).scalar_subquery(),
        sa.select(sa.func.max(checkpoints.c.size)).scalar_subquery(),
    )


# Built once per viewer kind: every proof pays for this statement, and building it per
# call cost more than running it.
_PROOF_CONTEXT = {
    kind: _proof_context_statement(kind)
    for kind in ("operator", "enterprise", "institution", "department", "none")
}


def proof_context(ex: Executor, viewer: Viewer, index: int) -> tuple[bool, int, int | None]:
    """In one round trip: may ``viewer`` see entry ``index``, the log size, and the
    newest checkpoint's size."""
    stmt = _PROOF_CONTEXT.get(viewer.kind, _PROOF_CONTEXT["none"])
    row = ex.execute(stmt, {"idx": index, "viewer": viewer.id}).one()
    return bool(row[0]), int(row[1]), None if row[2] is None else int(row[2])


_ENTRY_RANGE = (
    sa.select(entries.c.idx, entries.c.entry)
    .where(entries.c.idx >= sa.bindparam("start"), entries.c.idx < sa.bindparam("end"))
    .order_by(entries.c.idx)
)
_NODE_RANGE = (
    sa.select(tree.c.node, tree.c.hash)
    .where(tree.c.node >= sa.bindparam("start"), tree.c.node < sa.bindparam("end"))
    .order_by(tree.c.node)
)


def entry_range(ex: Executor, start: int, end: int) -> list[tuple[int, bytes]]:
    """Stored entries with start <= index < end, in index order (gaps show as gaps)."""
    rows = ex.execute(_ENTRY_RANGE, {"start": start, "end": end}).all()
    return [(i, e) for i, e in rows]


def node_range(ex: Executor, level: int, start: int, end: int) -> list[tuple[int, bytes]]:
    """Stored nodes of one level with start <= index < end, in index order."""
    rows = ex.execute(
        _NODE_RANGE, {"start": node_key(level, start), "end": node_key(level, end)}
    ).all()
    mask = (1 << LEVEL_SHIFT) - 1
    return [(n & mask, h) for n, h in rows]


def _scan(conn: Connection, sql: str, params: tuple[Any, ...]) -> list[Any]:
    """The first column of every row (see ``_rows``)."""
    return [row[0] for row in _rows(conn, sql, params)]


def _rows(conn: Connection, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    """Every row, straight from the DBAPI cursor (binary results on PostgreSQL): for
    scans of thousands of rows, where SQLAlchemy's Row objects and psycopg's hex decoding
    of bytea would cost more than the hashing."""
    with raw_cursor(conn) as cursor:
        if conn.dialect.name == "postgresql":
            cursor.execute(sql.replace("?", "%s"), params, binary=True)
        else:
            cursor.execute(sql, params)
        rows: list[tuple[Any, ...]] = cursor.fetchall()
        return rows


def indexed_entries(conn: Connection, start: int, end: int) -> list[tuple[Any, ...]]:
    """(entry bytes, time, institution, enterprise) of entries start <= index < end, in
    index order: the hashed bytes and the index columns read by the same statement, so
    the verifier compares exactly what it hashes with what decides visibility."""
    sql = (
        "SELECT entry, time, institution, enterprise FROM audit_entries "
        "WHERE idx >= ? AND idx < ? ORDER BY idx"
    )
    return _rows(conn, sql, (start, end))  # bytes from both drivers


def hashes(conn: Connection, level: int, start: int, end: int) -> list[bytes]:
    """Stored hashes of one level's nodes start <= index < end, in index order."""
    sql = "SELECT hash FROM audit_tree WHERE node >= ? AND node < ? ORDER BY node"
    return _scan(conn, sql, (node_key(level, start), node_key(level, end)))


def count_entries(ex: Executor) -> tuple[int, int | None]:
    """(rows in audit_entries, highest index)."""
    row = ex.execute(sa.select(sa.func.count(), sa.func.max(entries.c.idx))).one()
    return int(row[0]), None if row[1] is None else int(row[1])


# Checkpoints and witnesses -----------------------------------------------------------------


@dataclass(frozen=True)
class StoredCheckpoint:
    size: int
    root: bytes
    note: str
    created_at: float


def _checkpoint(row: Any) -> StoredCheckpoint:
    return StoredCheckpoint(int(row.size), bytes(row.root), str(row.note), float(row.created_at))


def latest_checkpoint(ex: Executor) -> StoredCheckpoint | None:
    row = ex.execute(sa.select(checkpoints).order_by(checkpoints.c.size.desc()).limit(1)).first()
    return None if row is None else _checkpoint(row)


def checkpoint_at(ex: Executor, size: int) -> StoredCheckpoint | None:
    row = ex.execute(sa.select(checkpoints).where(checkpoints.c.size == size)).first()
    return None if row is None else _checkpoint(row)


def all_checkpoints(ex: Executor) -> Iterator[StoredCheckpoint]:
    for row in ex.execute(sa.select(checkpoints).order_by(checkpoints.c.size)):
        yield _checkpoint(row)


def insert_checkpoint(ex: Executor, cp: StoredCheckpoint) -> None:
    ex.execute(
        checkpoints.insert().values(
            size=cp.size, root=cp.root, note=cp.note, created_at=cp.created_at
        )
    )


def cosignature_lines(ex: Executor, size: int) -> list[str]:
    query = (
        sa.select(cosignatures.c.signature)
        .where(cosignatures.c.size == size)
        .order_by(cosignatures.c.witness, cosignatures.c.key_id)
    )
    return [str(s) for s in ex.execute(query).scalars()]


def has_cosignature(ex: Executor, size: int, witness: str, key_id: str) -> bool:
    query = sa.select(cosignatures.c.size).where(
        cosignatures.c.size == size,
        cosignatures.c.witness == witness,
        cosignatures.c.key_id == key_id,
    )
    return ex.execute(query).first() is not None


def insert_cosignature(
    ex: Executor, *, size: int, witness: str, key_id: str, line: str, timestamp: int, now: float
) -> None:
    ex.execute(
        cosignatures.insert().values(
            size=size,
            witness=witness,
            key_id=key_id,
            signature=line,
            timestamp=timestamp,
            created_at=now,
        )
    )


def find_witness(ex: Executor, name: str, key_id: str) -> Mapping[str, Any] | None:
    row = ex.execute(
        sa.select(witnesses).where(witnesses.c.name == name, witnesses.c.key_id == key_id)
    ).first()
    return None if row is None else dict(row._mapping)


def insert_witness(
    ex: Executor, *, name: str, key_id: str, department: str, vkey: str, now: float
) -> None:
    ex.execute(
        witnesses.insert().values(
            name=name, key_id=key_id, department=department, vkey=vkey, created_at=now
        )
    )


def latest_cosignature_of(ex: Executor, department: str) -> Mapping[str, Any] | None:
    """The cosignature of the largest checkpoint by any witness key of ``department``,
    with that key's vkey: ``{size, witness, signature, vkey}``."""
    row = ex.execute(
        sa.select(
            cosignatures.c.size, cosignatures.c.witness, cosignatures.c.signature, witnesses.c.vkey
        )
        .select_from(
            cosignatures.join(
                witnesses,
                sa.and_(
                    cosignatures.c.witness == witnesses.c.name,
                    cosignatures.c.key_id == witnesses.c.key_id,
                ),
            )
        )
        .where(witnesses.c.department == department)
        .order_by(cosignatures.c.size.desc())
        .limit(1)
    ).first()
    return None if row is None else dict(row._mapping)


def list_witnesses(ex: Executor) -> list[Mapping[str, Any]]:
    query = sa.select(witnesses).order_by(witnesses.c.department, witnesses.c.name)
    return [dict(row._mapping) for row in ex.execute(query)]


class StoredLog:
    """A read-only, consistent view of the stored log (``verify.LogSource``) over one
    connection inside one read transaction (REPEATABLE READ on PostgreSQL; SQLite
    reads from one WAL snapshot)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    @classmethod
    @contextmanager
    def open(cls, engine: Engine) -> Iterator[StoredLog]:
        with engine.connect() as conn:
            if not is_sqlite(engine):
                conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                yield cls(conn)

    def state(self) -> LogState:
        return read_state(self.conn)

    def entry_count(self) -> tuple[int, int | None]:
        return count_entries(self.conn)

    def entry_range(self, start: int, end: int) -> list[tuple[int, bytes]]:
        return entry_range(self.conn, start, end)

    def node_range(self, level: int, start: int, end: int) -> list[tuple[int, bytes]]:
        return node_range(self.conn, level, start, end)

    def indexed_entries(self, start: int, end: int) -> list[tuple[Any, ...]]:
        return indexed_entries(self.conn, start, end)

    def hashes(self, level: int, start: int, end: int) -> list[bytes]:
        return hashes(self.conn, level, start, end)

    def read_nodes(self, ids: Sequence[merkle.NodeId]) -> dict[merkle.NodeId, bytes]:
        return read_nodes(self.conn, ids)

    def checkpoints(self) -> list[StoredCheckpoint]:
        return list(all_checkpoints(self.conn))

    def department_row_count(self) -> int:
        return department_row_count(self.conn)

    def department_indices(self, department: str, start: int, end: int) -> list[int]:
        return department_indices(self.conn, department, start, end)

    def first_stray_department(self) -> tuple[int, str] | None:
        return first_stray_department(self.conn)


WRITER_ROLE = "xinyi_audit"
_APPEND_ONLY = (
    "audit_entries",
    "audit_openings",
    "audit_entry_departments",
    "audit_tree",
    "audit_checkpoints",
    "audit_cosignatures",
    "audit_witnesses",
)


def grant_writer_role(conn: Connection) -> None:
    """PostgreSQL: create (if missing) the NOLOGIN role that may only INSERT and SELECT
    the append-only tables, and grant it exactly that in the current schema. The same
    as migration 0002 does when the migrating user may create roles; idempotent."""
    conn.execute(
        sa.text(
            f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{WRITER_ROLE}') "
            f"THEN CREATE ROLE {WRITER_ROLE} NOLOGIN; END IF; END $$"
        )
    )
    schema = conn.execute(sa.text("SELECT current_schema()")).scalar()
    statements = [
        f'GRANT USAGE ON SCHEMA "{schema}" TO {WRITER_ROLE}',
        f"GRANT SELECT, INSERT ON {', '.join(_APPEND_ONLY)} TO {WRITER_ROLE}",
        f"GRANT SELECT, INSERT, DELETE ON audit_queue TO {WRITER_ROLE}",
        f"GRANT SELECT, UPDATE ON audit_state TO {WRITER_ROLE}",
        f"GRANT USAGE ON SEQUENCE audit_queue_id_seq TO {WRITER_ROLE}",
    ]
    for statement in statements:
        conn.execute(sa.text(statement))


# Index columns against the canonical entries (``audit verify``) ----------------------------
#
# Every column and table that indexes entries (who may see an entry is decided by them)
# is compared with the hashed entry bytes. The verifier parses the bytes itself and
# compares them with the columns read by the same range query (``indexed_entries``) and
# with the rows of each department the chunk names (``department_indices``: a
# primary-key range). Only the search for a stray department row, run when the row
# count says there is one, extracts JSON in SQL.

_ENTRY_JSON = {
    "sqlite": "CAST(e.entry AS TEXT)",
    "postgresql": "convert_from(e.entry, 'UTF8')::jsonb",
}
_STRAY_DEPARTMENT_SQL = {
    "sqlite": (
        "SELECT x.idx, x.department FROM audit_entry_departments x WHERE NOT EXISTS ("
        "SELECT 1 FROM audit_entries e, json_each({j}, '$.departments') d "
        "WHERE e.idx = x.idx AND d.value = x.department) ORDER BY x.idx LIMIT 1"
    ),
    "postgresql": (
        "SELECT x.idx, x.department FROM audit_entry_departments x WHERE NOT EXISTS ("
        "SELECT 1 FROM audit_entries e "
        "CROSS JOIN LATERAL jsonb_array_elements_text({j} -> 'departments') AS d(value) "
        "WHERE e.idx = x.idx AND d.value = x.department) ORDER BY x.idx LIMIT 1"
    ),
}


class IndexUnreadable(Exception):
    """The database could not read an entry's bytes as JSON while checking the index."""


def _first_row(conn: Connection, sql: dict[str, str], params: tuple[int, ...]) -> Any:
    dialect = "postgresql" if conn.dialect.name == "postgresql" else "sqlite"
    statement = sql[dialect].format(j=_ENTRY_JSON[dialect])
    try:
        with conn.begin_nested(), raw_cursor(conn) as cursor:
            cursor.execute(statement, params)
            return cursor.fetchone()
    except sa.exc.DBAPIError as e:
        raise IndexUnreadable(str(e.orig)[:200]) from e


def department_row_count(conn: Connection) -> int:
    with raw_cursor(conn) as cursor:
        cursor.execute("SELECT count(*) FROM audit_entry_departments")
        return int(cursor.fetchone()[0])


def department_indices(conn: Connection, department: str, start: int, end: int) -> list[int]:
    """The indices start <= index < end that ``audit_entry_departments`` files under
    ``department``, ascending (a primary-key range)."""
    sql = (
        "SELECT idx FROM audit_entry_departments "
        "WHERE department = ? AND idx >= ? AND idx < ? ORDER BY idx"
    )
    return _scan(conn, sql, (department, start, end))


def first_stray_department(conn: Connection) -> tuple[int, str] | None:
    """The first ``audit_entry_departments`` row whose entry does not name it (or that
    has no entry at all)."""
    row = _first_row(conn, _STRAY_DEPARTMENT_SQL, ())
    return None if row is None else (int(row[0]), str(row[1]))
