"""Database plumbing shared by every store: engine creation and schema migration.

The embedded default is SQLite in WAL mode with ``synchronous=FULL`` (a committed
audit entry survives a crash) and a busy timeout so several processes can share the
file; production is PostgreSQL through psycopg 3. The schema is owned by Alembic
(``migrations/``); nothing calls ``create_all``.
"""

from __future__ import annotations

import importlib.resources
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from common.errors import ConfigError

MIGRATIONS = Path(str(importlib.resources.files("migrations")))
"""The Alembic scripts, shipped as the ``migrations`` package (versions as its data)."""


def normalize_url(url: str) -> str:
    """Use psycopg 3 for ``postgresql://`` URLs."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def is_sqlite(engine_or_url: Engine | str) -> bool:
    if isinstance(engine_or_url, str):
        return engine_or_url.startswith("sqlite")
    # The dialect name, not str(engine.url): rendering a URL costs more than a query.
    return engine_or_url.dialect.name == "sqlite"


def make_engine(url: str, *, pool_size: int = 5) -> Engine:
    url = normalize_url(url)
    try:
        parsed = make_url(url)
    except Exception as e:  # sqlalchemy raises ArgumentError for unparseable URLs
        raise ConfigError(f"database.url is not a database URL: {e}") from e
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, future=True
        )

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            # pysqlite's own transaction handling defers BEGIN; we issue BEGIN
            # ourselves (IMMEDIATE where a write lock is needed), see ``begin``.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
            conn.exec_driver_sql(f"BEGIN {mode}")

        return engine
    if parsed.get_backend_name() == "postgresql":
        # No pool_pre_ping: it costs a round trip on every checkout (several per
        # request). A connection found dead (server restarted) raises a disconnect
        # error; SQLAlchemy then invalidates the whole pool, so only requests in
        # flight at the restart fail (503, see gateway.errors), the next ones reconnect.
        return create_engine(url, pool_size=pool_size, max_overflow=10, future=True)
    raise ConfigError(f"database.url: unsupported database {parsed.get_backend_name()!r}")


@contextmanager
def write_connection(engine: Engine) -> Iterator[Connection]:
    """A connection in a write transaction that takes the write lock up front on SQLite
    (``BEGIN IMMEDIATE``). A deferred transaction that reads and then writes fails at
    once with "database is locked" when another connection committed in between (WAL
    cannot upgrade a stale snapshot, and the busy timeout does not apply)."""
    with engine.connect().execution_options(sqlite_begin="IMMEDIATE") as conn, conn.begin():
        yield conn


@contextmanager
def write_session(engine: Engine) -> Iterator[Session]:
    """A session whose transaction takes the write lock up front on SQLite
    (``BEGIN IMMEDIATE``), so read-modify-write sequences cannot deadlock-upgrade."""
    conn = engine.connect().execution_options(sqlite_begin="IMMEDIATE")
    try:
        with Session(bind=conn) as session, session.begin():
            yield session
    finally:
        conn.close()


@contextmanager
def read_connection(engine: Engine) -> Iterator[Connection]:
    """A connection for reads. On PostgreSQL in autocommit: each statement is its own
    snapshot and costs one round trip (no BEGIN, no ROLLBACK at return). Use a
    transaction where several reads must agree with each other."""
    with engine.connect() as conn:
        if not is_sqlite(engine):
            conn.execution_options(isolation_level="AUTOCOMMIT")
        yield conn


@contextmanager
def read_session(engine: Engine) -> Iterator[Session]:
    """A session for reads (autocommit on PostgreSQL, see ``read_connection``)."""
    with read_connection(engine) as conn, Session(bind=conn) as session:
        yield session


def migration_config(url: str) -> Any:
    """The Alembic configuration for ``url`` (``alembic.ini`` holds the same for the
    ``alembic`` command)."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", normalize_url(url).replace("%", "%%"))
    return cfg


def migrate(url: str, revision: str = "head") -> None:
    """Bring the schema at ``url`` to ``revision`` with Alembic."""
    from alembic import command

    command.upgrade(migration_config(url), revision)
