"""Monthly grading over the records store, and the grades kept per month (tables of
migration 0010_grades). The only module of ``grading`` that touches a database; the rules
are in the pure core (``grading.engine``).

Invariants:
- a month is computed once: its run row and every enterprise's grade commit in one
  transaction, and a month already computed is refused (history is never rewritten);
- a month after the current one is refused, as is anything not ``YYYY-MM``;
- the inputs are the store's current values when the run is made (the grading day is
  the month's last day, or today for the current month);
- stored rows hold the method's outputs (letters, ranks, grade), never input values;
- a granted repair (casework ``repairs``, record ``public_credit.dishonesty_records``)
  decided by the grading day reads the records it covers as repaired (⑨);
- the run, its grades and one ``whitelist.published`` event per active institution
  (naming the month and the count of enterprises listed, never a grade) commit
  together;
- an enterprise's opt-in to be recommended (``grade_optins``) is its own choice, kept
  with the time and the person who made it; the whitelist lists only opted-in
  enterprises graded 高级 or 一级.
"""

from __future__ import annotations

import calendar
import hashlib
import json
import multiprocessing
import re
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import msgspec
import numpy as np
import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from casework import store as casework_store
from common.db import is_sqlite, make_engine, read_connection
from common.errors import Conflict, InvalidInput, NotFound
from common.settings import Settings
from common.workdays import china_date
from consent import store as consent_store
from grading.engine import FIRST, HIGH, Grades, grade
from grading.explain import explain_stored
from grading.inputs import FEATURES, population
from grading.population import mark_repaired
from records.catalog import Catalog
from records.store import record_import_features, record_imports

metadata = sa.MetaData()
RANKED_INDICATORS = (1, 2, 12)

grade_runs = sa.Table(
    "grade_runs",
    metadata,
    sa.Column("month", sa.String(7), primary_key=True),
    sa.Column("as_of", sa.String(10), nullable=False),
    sa.Column("enterprises", sa.Integer, nullable=False),
    sa.Column("counts", sa.Text, nullable=False),
    sa.Column("config_sha256", sa.String(64), nullable=False),
    sa.Column("computed_at", sa.BigInteger, nullable=False),
    sa.Column("computed_by", sa.String(120), nullable=False),
)

grades = sa.Table(
    "grades",
    metadata,
    sa.Column("month", sa.String(7), primary_key=True),
    sa.Column("uscc", sa.String(18), primary_key=True),
    sa.Column("grade", sa.SmallInteger, nullable=False),
    sa.Column("method", sa.SmallInteger, nullable=False),
    sa.Column("letters", sa.String(12), nullable=False),
    sa.Column("score", sa.Float, nullable=True),
    sa.Column("indicator_grade", sa.SmallInteger, nullable=False),
    sa.Column("direct_grade", sa.SmallInteger, nullable=False),
    sa.Column("cap", sa.SmallInteger, nullable=False),
    sa.Column("bonus", sa.Float, nullable=False),
    *(
        sa.Column(f"{name}_{k}", kind, nullable=name == "value")
        for k in RANKED_INDICATORS
        for name, kind in (
            ("rank", sa.Integer),
            ("size", sa.Integer),
            ("level", sa.SmallInteger),
            ("value", sa.Float),
        )
    ),
)
COLUMNS = tuple(c.name for c in grades.columns)

# An enterprise's choice to be recommended to institutions (migration 0012_grade_optin):
# the current choice, when and by whom it was made.
grade_optins = sa.Table(
    "grade_optins",
    metadata,
    sa.Column("uscc", sa.String(18), primary_key=True),
    sa.Column("recommended", sa.Boolean, nullable=False),
    sa.Column("changed_at", sa.BigInteger, nullable=False),
    sa.Column("changed_by", sa.String(120), nullable=False),
)

DISHONESTY_RECORDS = "public_credit.dishonesty_records"
EVENT_WHITELIST = "whitelist.published"
WHITELIST_GRADES = (HIGH, FIRST)

_MONTH = re.compile(r"(\d{4})-(0[1-9]|1[0-2])")
_PARSE_CHUNK = 25_000
_WRITE_CHUNK = 25_000
_decode = msgspec.json.Decoder(list[list[Any]]).decode


class MonthAlreadyGraded(Conflict):
    code = "grades_already_computed"


class GradesNotComputed(NotFound):
    code = "grades_not_computed"


@dataclass(frozen=True)
class Run:
    month: str
    as_of: date
    enterprises: int
    counts: dict[str, int]
    computed_at: int


def grading_day(month: str, today: date) -> date:
    """The day a month is graded on: its last day, or ``today`` for the current month.
    Raises InvalidInput (``invalid_month``, ``month_in_future``)."""
    m = _MONTH.fullmatch(month) if isinstance(month, str) else None
    if m is None:
        raise InvalidInput("month: YYYY-MM is required", code="invalid_month", field="month")
    year, number = int(m.group(1)), int(m.group(2))
    if year < 2000:
        raise InvalidInput("month: before 2000", code="invalid_month", field="month")
    if (year, number) > (today.year, today.month):
        raise InvalidInput("month: it has not begun yet", code="month_in_future", field="month")
    last = date(year, number, calendar.monthrange(year, number)[1])
    return min(last, today)


def current_columns(
    engine: Engine,
    catalog: Catalog,
    features: tuple[str, ...] = FEATURES,
    *,
    workers: int = 2,
    parallel_from: int = 200_000,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Every enterprise with a registration status, and the current value of each of
    ``features`` aligned to them: the newest loaded import holding a feature for an
    enterprise gives its value. Numbers and booleans come as float64 (NaN missing;
    true 1.0), dates as datetime64[D] (NaT missing), the rest as object arrays (None
    missing).

    Imports are parsed by ``workers`` processes when the city has at least
    ``parallel_from`` enterprises (parsing is CPU-bound; the answer is the same), and
    applied one at a time, newest first, so memory stays near the columns' size."""
    wanted = set(features)
    if not is_sqlite(engine):
        _analyze_rows(engine)
    with read_connection(engine) as conn:
        ids = conn.execute(
            sa.select(record_import_features.c.import_id)
            .where(record_import_features.c.feature.in_(sorted(wanted)))
            .distinct()
        ).scalars()
        imports = sorted((int(i) for i in ids), reverse=True)
        order = {
            int(i): tuple(json.loads(f))
            for i, f in conn.execute(
                sa.select(record_imports.c.id, record_imports.c.features).where(
                    record_imports.c.id.in_(imports)
                )
            )
        }
        # The population: enterprises with a registration status (one in no register
        # has none and is not graded).
        registers = [i for i in imports if "registration.status" in order[i]]
        codes: set[str] = set()
        for i in registers:
            codes.update(_codes(conn, i))
    uscc = np.array(sorted(codes), dtype=object)
    n = len(uscc)
    kinds: dict[str, str] = {
        f: str(catalog.rule(f).spec.type) for f in wanted if f in catalog.features
    }
    jobs = [(i, [(j, f, kinds[f]) for j, f in enumerate(order[i]) if f in kinds]) for i in imports]
    _READER.update(
        url=engine.url.render_as_string(hide_password=False),
        population=uscc.astype("S18"),
    )
    columns: dict[str, np.ndarray] = {}
    filled: dict[str, np.ndarray] = {}
    try:
        if workers > 1 and n >= parallel_from and len(jobs) > 1:
            context = multiprocessing.get_context("fork")
            with context.Pool(workers) as pool:
                parsed: Iterable[list[tuple[str, np.ndarray, np.ndarray]]] = pool.imap(
                    _read_import, jobs
                )
                for found in parsed:
                    _apply(found, columns, filled, kinds, n)
        else:
            _READER["engine"] = engine
            for job in jobs:
                _apply(_read_import(job), columns, filled, kinds, n)
    finally:
        _READER.clear()
    return uscc, columns


def _analyze_rows(engine: Engine) -> None:
    """Fresh planner statistics for ``record_rows`` (PostgreSQL): right after a large
    import, before autovacuum got to it, the planner thinks an import has a few rows and
    sorts the whole import for every chunk instead of walking the primary key. A role
    that does not own the table gets a warning, not an error, and the old statistics."""
    with read_connection(engine) as conn:
        conn.exec_driver_sql("ANALYZE record_rows")


# What an import reader needs, set before the worker processes fork (so they inherit
# it instead of receiving a million codes each): the database URL and the population.
_READER: dict[str, Any] = {}


def _read_import(
    job: tuple[int, list[tuple[int, str, str]]],
) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """One import's wanted features: ``(feature, positions, values)`` per feature, the
    positions in the population (rows of enterprises outside it dropped). Every feature
    of one import shares one positions array (sent once to the reading process)."""
    import_id, picks = job
    population: np.ndarray = _READER["population"]
    engine = _READER.get("engine")
    own = engine is None
    if engine is None:
        engine = make_engine(_READER["url"])
    wheres: list[np.ndarray] = []
    parts: dict[str, list[np.ndarray]] = {f: [] for _, f, _ in picks}
    try:
        with read_connection(engine) as conn:
            for rows_codes, values in _rows(conn, import_id):
                where = _positions(population, rows_codes)
                known = where >= 0
                everyone = bool(known.all())
                wheres.append(where if everyone else where[known])
                for j, fid, kind in picks:
                    column = _typed(kind, [row[j] for row in values])
                    parts[fid].append(column if everyone else column[known])
    finally:
        if own:
            engine.dispose()
    if not wheres:
        return []
    shared = np.concatenate(wheres)
    return [(fid, shared, np.concatenate(chunks)) for fid, chunks in parts.items() if chunks]


def _positions(population: np.ndarray, codes: list[str]) -> np.ndarray:
    """Where each code is in the population (sorted, fixed-width bytes), -1 when absent:
    one vectorized binary search per chunk instead of a dictionary lookup per code."""
    if not codes:
        return np.zeros(0, dtype=np.int64)
    wanted = np.array(codes, dtype=population.dtype)
    where = np.searchsorted(population, wanted)
    inside = where < len(population)
    found = np.zeros(len(wanted), dtype=bool)
    found[inside] = population[where[inside]] == wanted[inside]
    return np.where(found, where, -1).astype(np.int64)


def _apply(
    found: list[tuple[str, np.ndarray, np.ndarray]],
    columns: dict[str, np.ndarray],
    filled: dict[str, np.ndarray],
    kinds: dict[str, str],
    n: int,
) -> None:
    """Fill what an import holds where no newer import already did."""
    for fid, where, values in found:
        if fid not in columns:
            columns[fid] = _empty(kinds[fid], n)
            filled[fid] = np.zeros(n, dtype=bool)
        take = ~filled[fid][where]
        columns[fid][where[take]] = values[take]
        filled[fid][where[take]] = True


def _empty(kind: str, n: int) -> np.ndarray:
    if kind in ("integer", "amount", "number", "boolean"):
        return np.full(n, np.nan)
    if kind == "date":
        return np.full(n, np.datetime64("NaT"), dtype="datetime64[D]")
    return np.full(n, None, dtype=object)


def _typed(kind: str, values: list[Any]) -> np.ndarray:
    """A chunk of one column's stored values (a loaded import has no empty cell) in
    the column's array type."""
    if kind in ("integer", "amount", "number", "boolean"):
        return np.array(values, dtype=np.float64)
    if kind == "date":
        return np.array(values, dtype="datetime64[D]")
    # Enums and codes repeat: one string object per distinct value.
    seen: dict[str, str] = {}
    out = np.empty(len(values), dtype=object)
    out[:] = [seen.setdefault(v, v) for v in values]
    return out


# One chunk of an import in two strings: its codes and its JSON rows, aligned (both
# aggregates read the same ordered rows), so no Python object is made per row.
_SQLITE_CHUNK = (
    "SELECT group_concat(uscc, ','), group_concat(values_json, ','), max(uscc) FROM "
    "(SELECT uscc, values_json FROM record_rows WHERE import_id = ? AND uscc > ? "
    "ORDER BY uscc LIMIT ?)"
)
# The same on PostgreSQL: each chunk an index range scan of the primary key (import_id,
# uscc) from the last code read, aggregated on the server. Both aggregates of the one
# aggregate node read the same input rows in the same order, so codes and rows stay
# aligned; the keyset needs only max(uscc), whatever that order.
_POSTGRES_CHUNK = (
    "SELECT string_agg(uscc, ','), string_agg(values_json, ','), "
    "max(uscc) FROM (SELECT uscc, values_json FROM record_rows WHERE import_id = %s "
    "AND uscc > %s ORDER BY uscc LIMIT %s) AS chunk"
)


def _codes(conn: sa.Connection, import_id: int) -> list[str]:
    """Every enterprise of one import, in one string from the database."""
    raw: Any = conn.connection.driver_connection
    marker = "?" if is_sqlite(conn.engine) else "%s"
    cursor = raw.cursor()
    try:
        aggregate = "group_concat(uscc, ',')" if marker == "?" else "string_agg(uscc, ',')"
        cursor.execute(
            f"SELECT {aggregate} FROM record_rows WHERE import_id = {marker}",  # noqa: S608 - fixed text, the value is bound
            (import_id,),
        )
        (joined,) = cursor.fetchone()
    finally:
        cursor.close()
    return joined.split(",") if joined else []


def _rows(conn: sa.Connection, import_id: int) -> Iterator[tuple[list[str], list[list[Any]]]]:
    """One import's enterprises and their parsed rows, chunk by chunk."""
    raw: Any = conn.connection.driver_connection
    # Two strings per chunk from the database, not a Python tuple per row: at a million
    # enterprises, fetching rows one by one cost more than parsing them.
    query = _SQLITE_CHUNK if is_sqlite(conn.engine) else _POSTGRES_CHUNK
    prepare: dict[str, Any] = {} if is_sqlite(conn.engine) else {"prepare": False}
    cursor = raw.cursor()
    last = ""
    try:
        while True:
            # Not prepared: a generic plan would not know how few rows an import has.
            cursor.execute(query, (import_id, last, _PARSE_CHUNK), **prepare)
            codes, texts, last = cursor.fetchone()
            if codes is None:
                return
            yield codes.split(","), _decode("[" + texts + "]")
    finally:
        cursor.close()


def config_digest(settings: Settings) -> str:
    """SHA-256 of the grading section: which rules a stored month was computed with."""
    text = json.dumps(settings.config.grading.model_dump(mode="json"), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def compute(
    engine: Engine, settings: Settings, month: str, *, today: date, now: int, actor: str
) -> Run:
    """Grade everyone for ``month`` and keep it; refused when the month is stored."""
    as_of = grading_day(month, today)
    if get_run(engine, month) is not None:
        raise MonthAlreadyGraded(f"grades for {month} are already stored and are never rewritten")
    uscc, columns = current_columns(engine, Catalog(settings.config))
    apply_repairs(engine, uscc, columns, as_of)
    result = grade(population(uscc, columns, as_of), as_of, settings.config.grading)
    counts = result.counts()
    run = {
        "month": month,
        "as_of": as_of.isoformat(),
        "enterprises": len(uscc),
        "counts": json.dumps(counts, ensure_ascii=False),
        "config_sha256": config_digest(settings),
        "computed_at": now,
        "computed_by": actor[:120],
    }
    try:
        with (
            engine.connect().execution_options(sqlite_begin="IMMEDIATE") as conn,
            conn.begin(),
        ):
            conn.execute(grade_runs.insert().values(**run))
            for start in range(0, len(uscc), _WRITE_CHUNK):
                part = slice(start, start + _WRITE_CHUNK)
                _bulk_insert(conn, _stored_columns(month, uscc, result, part))
            _publish_whitelist(conn, month, now)
    except IntegrityError as e:
        raise MonthAlreadyGraded(
            f"grades for {month} were stored meanwhile and are never rewritten"
        ) from e
    return Run(month, as_of, len(uscc), counts, now)


def _stored_columns(month: str, uscc: np.ndarray, g: Grades, part: slice) -> list[list[Any]]:
    """The values of :data:`COLUMNS` for the enterprises of ``part``, one list per
    column (a part at a time: a million rows would hold a gigabyte)."""
    n = len(uscc[part])
    symbols = np.frombuffer(b"-ABC", dtype=np.uint8)
    letters = np.ascontiguousarray(symbols[g.letters.letters[part]]).view("S12").ravel()

    def floats(x: np.ndarray) -> list[float | None]:
        return [None if v != v else v for v in x[part].tolist()]  # NaN: NULL

    columns: list[list[Any]] = [
        [month] * n,
        uscc[part].tolist(),
        g.grade[part].tolist(),
        g.method[part].tolist(),
        letters.astype("U12").tolist(),
        floats(g.score),
        g.indicator[part].tolist(),
        g.direct[part].tolist(),
        g.cap[part].tolist(),
        g.bonus[part].tolist(),
    ]
    for ranked, value in zip(g.letters.ranked, g.letters.values, strict=True):
        columns += [
            ranked.rank[part].tolist(),
            ranked.size[part].tolist(),
            ranked.level[part].tolist(),
            floats(np.round(value, 6)),
        ]
    return columns


_SQLITE_INSERT = (
    f"INSERT INTO grades ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"  # noqa: S608 - fixed column names
)
_POSTGRES_COPY = f"COPY grades ({', '.join(COLUMNS)}) FROM STDIN"


def _bulk_insert(conn: sa.Connection, columns: list[list[Any]]) -> None:
    """Every row in the connection's transaction, through the driver's bulk path
    (executemany on SQLite, COPY on PostgreSQL): a city is a million rows."""
    if not columns or not columns[0]:
        return
    raw: Any = conn.connection.driver_connection
    if is_sqlite(conn.engine):
        cursor = raw.cursor()
        try:
            cursor.executemany(_SQLITE_INSERT, zip(*columns, strict=True))
        finally:
            cursor.close()
        return
    with raw.cursor() as cursor, cursor.copy(_POSTGRES_COPY) as copy:
        copy.write(_copy_text(columns))


def _copy_text(columns: list[list[Any]]) -> str:
    """COPY's text format of the rows, built column by column: no value needs escaping
    (codes, letters, numbers), None is \\N; ``str`` is mapped over a column at a time
    instead of being called from Python for each of a million rows' 26 values."""
    texts: list[list[str]] = []
    for column in columns:
        text = list(map(str, column))
        if None in column:
            text = ["\\N" if v is None else t for v, t in zip(column, text, strict=True)]
        texts.append(text)
    return "\n".join(map("\t".join, zip(*texts, strict=True))) + "\n"


def get_run(engine: Engine, month: str) -> Run | None:
    with read_connection(engine) as conn:
        row = conn.execute(sa.select(grade_runs).where(grade_runs.c.month == month)).first()
    if row is None:
        return None
    return Run(
        row.month,
        date.fromisoformat(row.as_of),
        row.enterprises,
        json.loads(row.counts),
        row.computed_at,
    )


def latest_month(engine: Engine) -> str | None:
    with read_connection(engine) as conn:
        found = conn.execute(sa.select(sa.func.max(grade_runs.c.month))).scalar()
    return str(found) if found is not None else None


def explain(engine: Engine, uscc: str, month: str | None) -> dict[str, Any]:
    """The stored grade of ``uscc`` for ``month`` (default: the newest month) with
    every indicator's letter and why. Raises GradesNotComputed or NotFound."""
    chosen = chosen_month(engine, month)
    with read_connection(engine) as conn:
        row = conn.execute(
            sa.select(grades).where(grades.c.month == chosen, grades.c.uscc == uscc)
        ).first()
    if row is None:
        raise NotFound(f"{uscc} was not graded for {chosen}", code="enterprise_not_graded")
    m = row._mapping
    detail = {
        "i": m["indicator_grade"],
        "d": m["direct_grade"],
        "c": m["cap"],
        "b": m["bonus"],
        "r": [
            [m[f"rank_{k}"], m[f"size_{k}"], m[f"level_{k}"], m[f"value_{k}"]]
            for k in RANKED_INDICATORS
        ],
    }
    return explain_stored(uscc, chosen, row.grade, row.method, row.letters, row.score, detail)


def apply_repairs(
    engine: Engine, uscc: np.ndarray, columns: dict[str, np.ndarray], as_of: date
) -> int:
    """Read the dishonesty records of each enterprise with a granted repair decided by
    ``as_of`` (China Standard Time) as repaired up to the day of its latest such repair
    (``grading.population.mark_repaired``); ``uscc`` is sorted. Returns how many
    enterprises' records changed. The department's cell is left as it is in the store:
    the repair is the casework decision, read here (casework/repairs.py)."""
    cells = columns.get(DISHONESTY_RECORDS)
    if cells is None or len(uscc) == 0:
        return 0
    r = casework_store.repairs
    with read_connection(engine) as conn:
        decided = conn.execute(
            sa.select(r.c.enterprise, r.c.decided_at).where(
                r.c.record == DISHONESTY_RECORDS,
                r.c.status == "repaired",
                r.c.decided_at.is_not(None),
            )
        ).all()
    latest: dict[str, date] = {}
    for enterprise, decided_at in decided:
        day = china_date(int(decided_at))
        if day <= as_of and day > latest.get(enterprise, date.min):
            latest[enterprise] = day
    changed = 0
    for enterprise, day in latest.items():
        i = int(np.searchsorted(uscc, enterprise))
        if i < len(uscc) and uscc[i] == enterprise and cells[i] is not None:
            cells[i] = mark_repaired(cells[i], day)
            changed += 1
    return changed


def _whitelist_query(month: str) -> sa.Select[Any]:
    return (
        sa.select(grades.c.uscc, grades.c.grade)
        .join(grade_optins, grade_optins.c.uscc == grades.c.uscc)
        .where(
            grades.c.month == month,
            grades.c.grade.in_(WHITELIST_GRADES),
            grade_optins.c.recommended.is_(True),
        )
        .order_by(grades.c.uscc)
    )


def _publish_whitelist(conn: sa.Connection, month: str, now: int) -> None:
    """One ``whitelist.published`` event per active institution, in the run's
    transaction: the month and how many enterprises the whitelist lists, nothing
    about any one of them."""
    count = conn.execute(
        sa.select(sa.func.count()).select_from(_whitelist_query(month).subquery())
    ).scalar_one()
    for institution in consent_store.active_institution_ids(conn):
        event_id = "evt_" + uuid.uuid4().hex
        payload = json.dumps(
            {
                "event_id": event_id,
                "at": now,
                "type": EVENT_WHITELIST,
                "month": month,
                "count": int(count),
            },
            sort_keys=True,
        )
        consent_store.enqueue_event(
            conn, institution_id=institution, event_id=event_id, payload=payload, now=now
        )


def whitelist(engine: Engine, month: str) -> list[tuple[str, int]]:
    """``(uscc, grade)`` of every enterprise graded 高级 or 一级 for ``month`` that is
    opted in to be recommended now, by USCC. The month must be computed
    (:func:`chosen_month`)."""
    with read_connection(engine) as conn:
        return [(str(u), int(g)) for u, g in conn.execute(_whitelist_query(month))]


@dataclass(frozen=True)
class Recommendation:
    """An enterprise's choice to be recommended (on the whitelist) and when it made it."""

    uscc: str
    recommended: bool
    changed_at: int
    changed_by: str


def recommendation(engine: Engine, uscc: str) -> Recommendation | None:
    """The enterprise's current choice; None: never made (not recommended)."""
    with read_connection(engine) as conn:
        row = conn.execute(sa.select(grade_optins).where(grade_optins.c.uscc == uscc)).first()
    if row is None:
        return None
    return Recommendation(row.uscc, bool(row.recommended), int(row.changed_at), row.changed_by)


def set_recommendation(
    engine: Engine, uscc: str, recommended: bool, *, now: int, actor: str
) -> Recommendation:
    """Keep the enterprise's choice (replacing the previous one) with its time."""
    values = {"recommended": recommended, "changed_at": now, "changed_by": actor[:120]}
    for _ in range(2):  # an insert racing ours: the second round updates its row
        try:
            with engine.begin() as conn:
                done = conn.execute(
                    grade_optins.update().where(grade_optins.c.uscc == uscc).values(**values)
                ).rowcount
                if not done:
                    conn.execute(grade_optins.insert().values(uscc=uscc, **values))
            break
        except IntegrityError:
            continue
    return Recommendation(uscc, recommended, now, actor[:120])


def chosen_month(engine: Engine, month: str | None) -> str:
    """The month a question is about: ``month`` (its shape checked: InvalidInput
    ``invalid_month``) or the newest computed one; raises GradesNotComputed (with the
    command that computes it) when it was not computed."""
    if month is not None:
        grading_day(month, date.max)  # the shape only: a future month is simply absent
    chosen = month or latest_month(engine)  # the newest month is computed by definition
    if chosen is None or (month is not None and not _is_computed(engine, month)):
        raise GradesNotComputed(
            f"no grades for {chosen or 'any month'} yet: run `xinyi grades compute"
            + (f" --month {chosen}`" if chosen else "`"),
            month=chosen,
        )
    return chosen


# Months known to be computed, per database: a computed month is never rewritten nor
# removed, so once seen it needs no query again (the grade API asks on every request).
_COMPUTED: set[tuple[str, str]] = set()


def _is_computed(engine: Engine, month: str) -> bool:
    key = (engine.url.render_as_string(hide_password=True), month)
    if key in _COMPUTED:
        return True
    with read_connection(engine) as conn:
        found = conn.execute(
            sa.select(grade_runs.c.month).where(grade_runs.c.month == month)
        ).first()
    if found is not None:
        _COMPUTED.add(key)
    return found is not None


@dataclass(frozen=True)
class StoredGrade:
    """What an institution may learn of a stored grade: letters, never values."""

    uscc: str
    month: str
    grade: int
    method: int
    letters: str


_NEWEST = sa.select(sa.func.max(grade_runs.c.month).label("month")).subquery()
_GRADE_COLUMNS = (grades.c.grade, grades.c.method, grades.c.letters)
_GRADE_IN_MONTH = sa.select(grades.c.month, *_GRADE_COLUMNS).where(
    grades.c.month == sa.bindparam("month"), grades.c.uscc == sa.bindparam("uscc")
)
_GRADE_IN_NEWEST = (
    sa.select(_NEWEST.c.month, *_GRADE_COLUMNS)
    .select_from(_NEWEST)
    .outerjoin(
        grades, sa.and_(grades.c.month == _NEWEST.c.month, grades.c.uscc == sa.bindparam("uscc"))
    )
)


def month_and_grade(engine: Engine, uscc: str, month: str | None) -> tuple[str, StoredGrade | None]:
    """:func:`chosen_month` and the stored grade of ``uscc`` that month (None: not
    graded then), in one query when ``month`` is None (the grade API's hot path: the
    newest month and the grade together). Raises as :func:`chosen_month` does. The
    caller decides when to reveal whether the enterprise was graded."""
    if month is not None:
        chosen = chosen_month(engine, month)
        with read_connection(engine) as conn:
            row = conn.execute(_GRADE_IN_MONTH, {"month": chosen, "uscc": uscc}).first()
    else:
        with read_connection(engine) as conn:
            row = conn.execute(_GRADE_IN_NEWEST, {"uscc": uscc}).first()
        if row is None or row.month is None:
            return chosen_month(engine, None), None  # raises GradesNotComputed
        chosen = str(row.month)
    if row is None or row.grade is None:
        return chosen, None
    return chosen, StoredGrade(uscc, chosen, int(row.grade), int(row.method), str(row.letters))


def stored_grade(engine: Engine, uscc: str, month: str) -> StoredGrade:
    """The stored grade of ``uscc`` for a computed ``month``; NotFound
    ``enterprise_not_graded`` when it was not graded that month."""
    with read_connection(engine) as conn:
        row = conn.execute(
            sa.select(grades.c.grade, grades.c.method, grades.c.letters).where(
                grades.c.month == month, grades.c.uscc == uscc
            )
        ).first()
    if row is None:
        raise NotFound(f"{uscc} was not graded for {month}", code="enterprise_not_graded")
    return StoredGrade(uscc, month, int(row.grade), int(row.method), str(row.letters))
