"""Shared by the benchmarks: where PostgreSQL is, and a throwaway schema in it."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import text

from common.db import make_engine, normalize_url

LOCAL_PG = "postgresql://postgres@127.0.0.1:5432/test"


def pg_url() -> str | None:
    """``XINYI_TEST_DATABASE_URL``, else the local server when it answers, else None."""
    url = os.environ.get("XINYI_TEST_DATABASE_URL")
    if url:
        return url
    try:
        import psycopg

        psycopg.connect(LOCAL_PG, connect_timeout=2).close()
    except Exception:  # any failure means: no PostgreSQL to measure on
        return None
    return LOCAL_PG


@contextmanager
def fresh_pg_schema(url: str) -> Iterator[str]:
    """A URL whose search_path is a new, empty schema; dropped afterwards."""
    schema = "bench_" + uuid.uuid4().hex[:10]
    admin = make_engine(url)
    with admin.begin() as c:
        c.execute(text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in url else "?"
    try:
        yield normalize_url(url) + f"{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as c:
            c.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()
