"""The schema comes from Alembic alone: from an empty database and from every earlier
revision it reaches the same head on both backends, data written under an old
revision survives the upgrade, and every revision downgrades cleanly."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect

from common.db import MIGRATIONS, make_engine, migrate, normalize_url
from tests.conftest import BACKENDS, PG_URL, _pg_schema_url


def _script() -> ScriptDirectory:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(cfg)


REVISIONS = [r.revision for r in reversed(list(_script().walk_revisions()))]  # oldest first


def test_the_revisions_form_one_line() -> None:
    script = _script()
    assert len(script.get_heads()) == 1
    assert script.get_base() == REVISIONS[0] and script.get_current_head() == REVISIONS[-1]


def downgrade(url: str, revision: str) -> None:
    from alembic import command

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", normalize_url(url).replace("%", "%%"))
    command.downgrade(cfg, revision)


@pytest.fixture(params=BACKENDS)
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], str]]:
    """Factory of empty databases (SQLite files or fresh PostgreSQL schemas)."""
    schemas: list[str] = []
    admin: Engine | None = None
    if request.param == "postgresql":
        if not PG_URL:
            if os.environ.get("CI") == "true":
                pytest.fail("CI must exercise PostgreSQL: XINYI_TEST_DATABASE_URL is not set")
            pytest.skip("XINYI_TEST_DATABASE_URL not set")
        admin = make_engine(PG_URL)

    def factory() -> str:
        if admin is None:
            return f"sqlite:///{tmp_path / f'm{uuid.uuid4().hex[:8]}.db'}"
        schema = "m_" + uuid.uuid4().hex[:12]
        with admin.begin() as conn:
            conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
        schemas.append(schema)
        return _pg_schema_url(schema)

    yield factory
    if admin is not None:
        with admin.begin() as conn:
            for schema in schemas:
                conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def schema_of(url: str) -> dict[str, Any]:
    """Tables with their columns (name, type, nullability), indexes and unique keys."""
    engine = make_engine(url)
    try:
        insp = inspect(engine)
        out: dict[str, Any] = {}
        for table in sorted(insp.get_table_names()):
            out[table] = {
                "columns": [
                    (c["name"], str(c["type"]), c["nullable"]) for c in insp.get_columns(table)
                ],
                "primary_key": insp.get_pk_constraint(table)["constrained_columns"],
                "indexes": sorted(
                    (i["name"] or "", tuple(i["column_names"]), bool(i["unique"]))
                    for i in insp.get_indexes(table)
                ),
                "unique": sorted(
                    tuple(u["column_names"]) for u in insp.get_unique_constraints(table)
                ),
            }
        return out
    finally:
        engine.dispose()


def version_of(url: str) -> str | None:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    finally:
        engine.dispose()


def test_an_empty_database_reaches_head(empty_database: Callable[[], str]) -> None:
    url = empty_database()
    migrate(url)
    assert version_of(url) == REVISIONS[-1]
    tables = set(schema_of(url))
    assert {"institutions", "consents", "webhook_outbox", "audit_entries", "audit_state"} <= tables


@pytest.mark.parametrize("start", REVISIONS[:-1])
def test_every_earlier_revision_upgrades_to_the_same_head(
    empty_database: Callable[[], str], start: str
) -> None:
    direct = empty_database()
    migrate(direct)
    stepped = empty_database()
    migrate(stepped, start)
    assert version_of(stepped) == start
    # A row written under the old schema survives the upgrade.
    engine = make_engine(stepped)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO institutions (id, name, jwk, status, created_at, status_changed_at) "
                "VALUES ('old_bank', '老银行', '{}', 'active', 1, 1)"
            )
        )
    engine.dispose()
    migrate(stepped)
    assert version_of(stepped) == REVISIONS[-1]
    assert schema_of(stepped) == schema_of(direct)
    engine = make_engine(stepped)
    with engine.connect() as conn:
        name = conn.execute(sa.text("SELECT name FROM institutions WHERE id = 'old_bank'")).scalar()
    engine.dispose()
    assert name == "老银行"


def test_every_revision_downgrades_and_upgrades_again(empty_database: Callable[[], str]) -> None:
    url = empty_database()
    migrate(url)
    at_head = schema_of(url)
    for revision in reversed(REVISIONS[:-1]):
        downgrade(url, revision)
        assert version_of(url) == revision
    downgrade(url, "base")
    assert set(schema_of(url)) <= {"alembic_version"}
    migrate(url)
    assert schema_of(url) == at_head


def test_signup_migration_keeps_operator_made_enterprise_accounts_authorizing(
    empty_database: Callable[[], str],
) -> None:
    """0013_signup: enterprise accounts made before sign-up were checked offline by the
    operator (real-named), and the oldest of each USCC becomes its administrator."""
    url = empty_database()
    migrate(url, "0011_accounts")
    engine = make_engine(url)
    insert = sa.text(
        "INSERT INTO users (login, role, password_hash, uscc, department_id, created_at, "
        "disabled) VALUES (:login, :role, 'x', :uscc, NULL, :at, false)"
    )
    with engine.begin() as conn:
        for login, role, uscc, at in [
            ("first", "enterprise", "91330100716105852F", 10),
            ("second", "enterprise", "91330100716105852F", 20),
            ("other", "enterprise", "9144030071526726XG", 30),
            ("op", "operator", None, 5),
        ]:
            conn.execute(insert, {"login": login, "role": role, "uscc": uscc, "at": at})
    engine.dispose()
    migrate(url)
    engine = make_engine(url)
    with engine.connect() as conn:
        real: dict[str, int | None] = {
            str(r[0]): r[1] for r in conn.execute(sa.text("SELECT login, real_name_at FROM users"))
        }
        admins: dict[str, str] = {
            str(r[0]): str(r[1])
            for r in conn.execute(sa.text("SELECT uscc, login FROM enterprise_admins"))
        }
    engine.dispose()
    assert real == {"first": 10, "second": 20, "other": 30, "op": None}
    assert admins == {"91330100716105852F": "first", "9144030071526726XG": "other"}
