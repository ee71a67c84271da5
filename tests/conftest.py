"""Shared fixtures.

Database tests run on SQLite always and on PostgreSQL too when
``XINYI_TEST_DATABASE_URL`` is set (``make test`` sets it when a server answers; in CI
a missing server is a failure, not a skip). Each PostgreSQL test gets its own schema.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from argon2 import PasswordHasher
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, text

from common.db import make_engine, migrate, normalize_url
from common.settings import Settings, load_settings
from gateway import create_app
from tests.answers import check_answers

PG_URL = os.environ.get("XINYI_TEST_DATABASE_URL")
BACKENDS = ["sqlite", "postgresql"]


def _pg_schema_url(schema: str) -> str:
    assert PG_URL
    sep = "&" if "?" in PG_URL else "?"
    return normalize_url(PG_URL) + f"{sep}options=-csearch_path%3D{schema}"


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database: SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'xinyi.db'}"
        migrate(url)
        yield url
        return
    if not PG_URL:
        if os.environ.get("CI") == "true":
            pytest.fail("CI must exercise PostgreSQL: XINYI_TEST_DATABASE_URL is not set")
        pytest.skip("XINYI_TEST_DATABASE_URL not set")
    schema = "t_" + uuid.uuid4().hex[:12]
    admin = make_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    url = _pg_schema_url(schema)
    try:
        migrate(url)
        yield url
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    eng = make_engine(database_url)
    yield eng
    eng.dispose()


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    """Factory: settings with home in tmp_path; keyword overrides are deep-merged into
    config.yaml (``make_settings(database_url=..., audit={"batch_max": 8})``)."""

    def factory(database_url: str | None = None, **overrides: Any) -> Settings:
        env = {
            "XINYI_HOME": str(tmp_path / "instance"),
            "XINYI_KEY_PASSPHRASE": "test-passphrase-not-secret",
            "XINYI_SECRET_KEY": "test-session-secret",
        }
        if database_url:
            env["XINYI_DATABASE_URL"] = database_url
        return load_settings(env=env, overrides=overrides or None)

    return factory


@pytest.fixture(autouse=True)
def _structlog_as_it_was() -> Iterator[None]:
    """A test that configures logging (the demo sets its own level and stream) leaves
    the next one the configuration it found: ``capture_logs`` sees nothing behind a
    logger that filters below WARNING."""
    before = structlog.get_config()
    yield
    structlog.configure(**before)


@pytest.fixture(autouse=True)
def _cheap_key_kdf(monkeypatch: pytest.MonkeyPatch) -> None:
    """scrypt for key files at its lowest cost in-process (the files record their
    cost, so the code path is the same): 2^16 costs half a second per key folder."""
    monkeypatch.setattr("keys.store.SCRYPT_LOG_N", 10)


@pytest.fixture(autouse=True)
def _cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2id with its lowest cost: the same code path, a fraction of the time (each
    signed-in person costs a hash and a verification; the tests sign in many)."""
    monkeypatch.setattr(
        "registry._hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )


@pytest.fixture
def settings(database_url: str, make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(database_url=database_url)


@pytest.fixture
def app(settings: Settings) -> Iterator[Flask]:
    """The gateway over a migrated database, without background threads (tests drive
    the sequencer and the outbox themselves)."""
    app = create_app(settings, background=False)
    app.config["TESTING"] = True
    mismatches = check_answers(app)
    yield app
    app.extensions["xinyi"].stop()
    app.extensions["xinyi"].engine.dispose()
    assert not mismatches, "answers that differ from their declared model:\n" + "\n".join(
        mismatches
    )


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()
