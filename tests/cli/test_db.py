"""`xinyi db upgrade|downgrade|current` (and alembic.ini) on SQLite and PostgreSQL, and
admin commands that refuse to create an instance implicitly."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from click.testing import CliRunner

from cli import main
from tests.conftest import PG_URL
from tests.live import ROOT

HEAD = ScriptDirectory.from_config(Config(str(ROOT / "alembic.ini"))).get_current_head()


@pytest.fixture
def env(tmp_path: Path, database_url: str) -> dict[str, str]:
    return {
        "XINYI_HOME": str(tmp_path / "home"),
        "XINYI_KEY_PASSPHRASE": "cli-test-passphrase",
        "XINYI_DATABASE_URL": database_url,
    }


def xinyi(env: Mapping[str, str | None], *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), env=dict(env))
    return result.exit_code, result.output


def test_alembic_ini_names_the_migrations() -> None:
    """`alembic -c alembic.ini` sees the revisions `xinyi init` applies."""
    from common.db import MIGRATIONS

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    assert HEAD is not None and ScriptDirectory.from_config(cfg).get_current_head() == HEAD


def test_the_schema_goes_down_and_up_again(env: dict[str, str]) -> None:
    assert xinyi(env, "init")[0] == 0
    code, out = xinyi(env, "db", "current")
    assert code == 0 and f"schema at {HEAD}" in out
    code, out = xinyi(env, "db", "downgrade", "0003_records")
    assert code == 0, out
    assert "schema at 0003_records" in xinyi(env, "db", "current")[1]
    code, out = xinyi(env, "db", "upgrade", "0004_federated")
    assert code == 0 and "schema at 0004_federated" in out
    code, out = xinyi(env, "db", "upgrade")
    assert code == 0 and f"schema at {HEAD}" in out
    code, out = xinyi(env, "db", "downgrade", "no_such_revision")
    assert code == 2 and "bad_revision" in out and "Traceback" not in out
    assert f"schema at {HEAD}" in xinyi(env, "db", "current")[1]


@pytest.mark.parametrize(
    "args",
    [
        ("keys", "rotate", "grants"),
        ("keys", "list"),
        ("admin", "add-department", "tax", "--name", "税务局"),
        ("audit", "rotate-log-key"),
        ("db", "upgrade"),
        ("serve",),
    ],
)
def test_admin_commands_refuse_to_create_an_instance(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...]
) -> None:
    """With XINYI_HOME unset, `xinyi keys rotate` used to make ./instance/keys with a
    generated passphrase and report success while the real keys stayed as they were."""
    monkeypatch.chdir(tmp_path)
    env: dict[str, str | None] = {
        "XINYI_HOME": None,
        "XINYI_KEY_PASSPHRASE": None,
        "XINYI_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
    }
    code, out = xinyi(env, *args)
    assert code == 2, out
    assert "instance_missing" in out and "XINYI_HOME is not set" in out and "xinyi init" in out
    assert os.listdir(tmp_path) == []
    env["XINYI_HOME"] = str(tmp_path / "elsewhere")
    code, out = xinyi(env, *args)
    assert code == 2 and f"XINYI_HOME={tmp_path / 'elsewhere'}" in out
    assert os.listdir(tmp_path) == []


def test_a_missing_passphrase_is_refused_not_generated(env: dict[str, str]) -> None:
    assert xinyi(env, "init")[0] == 0
    code, out = xinyi({**env, "XINYI_KEY_PASSPHRASE": ""}, "keys", "rotate", "tokens")
    assert code == 2 and "XINYI_KEY_PASSPHRASE is not set" in out
    assert not (Path(env["XINYI_HOME"]) / "UNSAFE-dev-key-passphrase").exists()


def test_add_department_refuses_ids_outside_the_catalog(env: dict[str, str]) -> None:
    assert xinyi(env, "init")[0] == 0
    code, out = xinyi(env, "admin", "add-department", "taxx", "--name", "税务")
    assert code == 2 and "unknown_department" in out and "tax" in out
    assert xinyi(env, "admin", "add-department", "tax", "--name", "税务局")[0] == 0


def test_a_missing_config_names_xinyi_config(env: dict[str, str], tmp_path: Path) -> None:
    code, out = xinyi({**env, "XINYI_CONFIG": str(tmp_path / "nope.yaml")}, "keys", "list")
    assert code == 2 and "XINYI_CONFIG" in out and "nope.yaml" in out


def test_a_database_that_is_down_or_missing_is_one_line_at_init(env: dict[str, str]) -> None:
    urls = ["postgresql://postgres@127.0.0.1:1/xinyi"]  # nothing listens on port 1
    if PG_URL:
        urls.append(PG_URL.rsplit("/", 1)[0] + "/no_such_database_xinyi")
    for url in urls:
        code, out = xinyi({**env, "XINYI_DATABASE_URL": url}, "init")
        assert code == 2, out
        assert "Traceback" not in out and len(out.strip().splitlines()) <= 3, out
        assert "database_unavailable" in out and "XINYI_DATABASE_URL" in out


def test_the_checkpoint_key_rotates_only_with_a_transition(env: dict[str, str]) -> None:
    assert xinyi(env, "init")[0] == 0
    code, out = xinyi(env, "keys", "rotate", "checkpoints")
    assert code == 2 and "xinyi audit rotate-log-key" in out
