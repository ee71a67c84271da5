"""`xinyi audit verify`, `witness-key`, `add-witness` and `witness` as an operator and a
department run them: exit 0 when the log holds, 1 naming what broke."""

from __future__ import annotations

import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy import Engine

from audit.service import AuditLog
from cli import main
from common.db import make_engine, write_session
from common.settings import load_settings
from keys import KeyRing
from tests.audit.conftest import allow_rewrites, make_entry


@pytest.fixture
def env(tmp_path: Path, database_url: str) -> dict[str, str]:
    return {
        "XINYI_HOME": str(tmp_path / "home"),
        "XINYI_KEY_PASSPHRASE": "cli-test-passphrase",
        "XINYI_DATABASE_URL": database_url,
    }


def xinyi(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), env=env)
    return result.exit_code, result.output


@pytest.fixture
def instance(env: dict[str, str]) -> Iterator[tuple[AuditLog, Engine]]:
    """An initialised instance whose log holds 10 entries and a checkpoint."""
    assert xinyi(env, "init")[0] == 0
    settings = load_settings(env=env)
    engine = make_engine(settings.database_url)
    log = AuditLog(engine, settings, KeyRing(settings).checkpoint_signer())
    append(log, engine, 10)
    log.checkpoint(force=True)
    yield log, engine
    engine.dispose()


def append(log: AuditLog, engine: Engine, n: int) -> None:
    with write_session(engine) as s:
        qids = [log.enqueue(s, make_entry(i)) for i in range(n)]
    for q in qids:
        log.await_index(q, 5.0)


def test_verify_passes_on_an_intact_log_and_names_the_first_bad_index(
    env: dict[str, str], instance: tuple[AuditLog, Engine], tmp_path: Path
) -> None:
    log, engine = instance
    saved = tmp_path / "checkpoint.txt"
    saved.write_text(log.latest_checkpoint().text())
    code, out = xinyi(env, "audit", "verify", "--checkpoint", str(saved))
    assert code == 0, out
    assert "OK" in out and "checked 10 entries" in out
    allow_rewrites(engine, "audit_entries")
    with engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE audit_entries SET entry = CAST(:e AS BLOB) WHERE idx = 3")
            if engine.dialect.name == "sqlite"
            else sa.text("UPDATE audit_entries SET entry = convert_to(:e, 'UTF8') WHERE idx = 3"),
            {"e": '{"forged":true}'},
        )
    code, out = xinyi(env, "audit", "verify")
    assert code == 1
    assert "first bad index: 3" in out


def test_verify_refuses_an_outside_checkpoint_the_log_key_did_not_sign(
    env: dict[str, str], instance: tuple[AuditLog, Engine], tmp_path: Path
) -> None:
    log, _ = instance
    forged = tmp_path / "forged.txt"
    forged.write_text(log.latest_checkpoint().text().replace("\n10\n", "\n11\n"))
    code, out = xinyi(env, "audit", "verify", "--checkpoint", str(forged))
    assert code == 1 and "external checkpoint" in out


def test_a_witness_key_is_created_once_and_registered(
    env: dict[str, str], instance: tuple[AuditLog, Engine], tmp_path: Path
) -> None:
    key = tmp_path / "tax.key"
    code, out = xinyi(env, "audit", "witness-key", "--department", "tax", "--key", str(key))
    assert code == 0
    vkey = out.strip().splitlines()[-1]
    assert vkey.startswith("xinyi-witness/tax+")
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    again = xinyi(env, "audit", "witness-key", "--department", "tax", "--key", str(key))[1]
    assert again.strip().splitlines()[-1] == vkey
    code, out = xinyi(env, "audit", "add-witness", "tax", vkey)
    assert code == 0 and "registered" in out
    log, _ = instance
    assert log.witnesses()[0]["vkey"] == vkey


def test_the_witness_command_cosigns_and_refuses_a_tampered_log(
    env: dict[str, str],
    instance: tuple[AuditLog, Engine],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from werkzeug.serving import make_server

    monkeypatch.chdir(tmp_path)  # the default key path is relative
    from gateway import create_app

    log, engine = instance
    key, state = tmp_path / "tax.key", tmp_path / "tax.json"
    vkey = xinyi(env, "audit", "witness-key", "--department", "tax", "--key", str(key))[1]
    log.register_witness("tax", vkey.strip().splitlines()[-1])
    app = create_app(load_settings(env=env), background=False)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}"
    args = ("audit", "witness", "--gateway", url, "--department", "tax", "--state", str(state))
    try:
        code, out = xinyi(env, *args, "--key", str(key))
        assert code == 0, out
        assert "cosigned the checkpoint of size 10" in out
        assert "trusting the log key on first use" in out
        append(log, engine, 5)
        log.checkpoint(force=True)
        allow_rewrites(engine, "audit_entries")
        with engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM audit_entries WHERE idx = 12"))
        before = state.read_text()
        code, out = xinyi(env, *args, "--key", str(key))
        assert code == 1
        assert "REFUSED" in out and "entry 12 is missing" in out
        assert state.read_text() == before
        code, out = xinyi(env, *args)  # default key path: ./witness-tax.key, absent here
        assert code == 2 and "witness-key" in out
    finally:
        server.shutdown()
        app.extensions["xinyi"].engine.dispose()


def test_writer_role_grants_insert_and_select_only(
    env: dict[str, str], instance: tuple[AuditLog, Engine]
) -> None:
    _, engine = instance
    if engine.dialect.name != "postgresql":
        code, out = xinyi(env, "audit", "writer-role")
        assert code == 2 and "not_postgresql" in out
        return
    with engine.begin() as conn:
        conn.execute(sa.text("REVOKE ALL ON audit_entries FROM xinyi_audit"))
    code, out = xinyi(env, "audit", "writer-role")
    assert code == 0, out
    with engine.connect() as conn:
        granted = {
            p: conn.execute(
                sa.text("SELECT has_table_privilege('xinyi_audit', 'audit_entries', :p)"),
                {"p": p},
            ).scalar()
            for p in ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE")
        }
    assert granted == {
        "SELECT": True,
        "INSERT": True,
        "UPDATE": False,
        "DELETE": False,
        "TRUNCATE": False,
    }


def test_a_log_key_rotation_is_followed_by_the_witness_without_editing_its_state(
    env: dict[str, str],
    instance: tuple[AuditLog, Engine],
    tmp_path: Path,
) -> None:
    from werkzeug.serving import make_server

    from gateway import create_app

    log, engine = instance
    key, state = tmp_path / "tax.key", tmp_path / "tax.json"
    vkey = xinyi(env, "audit", "witness-key", "--department", "tax", "--key", str(key))[1]
    log.register_witness("tax", vkey.strip().splitlines()[-1])
    old_vkey = log.vkey()
    app = create_app(load_settings(env=env), background=False)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}"
    args = ("audit", "witness", "--gateway", url, "--department", "tax", "--state", str(state))
    try:
        code, out = xinyi(env, *args, "--key", str(key), "--log-vkey", old_vkey)
        assert code == 0, out
        statement = tmp_path / "transition.note"
        code, out = xinyi(env, "audit", "rotate-log-key", "--out", str(statement))
        assert code == 0, out
        assert "from log size 10" in out
        new_vkey = out.split("new log vkey: ")[1].split()[0]
        assert new_vkey != old_vkey
        append(log, engine, 5)
        signed = log.checkpoint(force=True)
        assert signed is not None and log.vkey() == new_vkey
        # An unsigned key change handed to the witness is refused, its state untouched.
        before = state.read_text()
        unsigned = tmp_path / "unsigned.note"
        unsigned.write_text(statement.read_text().split("\n\n")[0] + "\n\n— forged\n")
        code, out = xinyi(env, *args, "--key", str(key), "--accept-transition", str(unsigned))
        assert code != 0 and state.read_text() == before
        # Pinning the new key by hand is refused: only a signed transition moves it.
        code, out = xinyi(env, *args, "--key", str(key), "--log-vkey", new_vkey)
        assert code == 1 and "key transition" in out
        # The witness finds the signed statement at the gateway and carries on.
        code, out = xinyi(env, *args, "--key", str(key))
        assert code == 0, out
        assert "cosigned the checkpoint of size 15" in out
        assert new_vkey in state.read_text()
        # The whole log still verifies, old checkpoints under the old key.
        code, out = xinyi(env, "audit", "verify")
        assert code == 0, out
    finally:
        server.shutdown()
        app.extensions["xinyi"].engine.dispose()


def test_a_restore_older_than_the_witness_names_the_missing_entries(
    env: dict[str, str], instance: tuple[AuditLog, Engine], tmp_path: Path
) -> None:
    """The witness cosigned 10 entries; the "restored" log holds 6: verify says entries
    are missing from index 6 on, not that index 6 is bad."""
    from audit import merkle, store

    log, engine = instance
    saved = tmp_path / "witness-checkpoint.txt"
    saved.write_text(log.latest_checkpoint().text())
    for table in ("audit_entries", "audit_checkpoints", "audit_entry_departments"):
        allow_rewrites(engine, table)
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM audit_checkpoints"))
        conn.execute(sa.text("DELETE FROM audit_entries WHERE idx >= 6"))
        conn.execute(sa.text("DELETE FROM audit_entry_departments WHERE idx >= 6"))
        root6 = merkle.root_at(6, store.node_reader(conn))
        conn.execute(
            sa.text("UPDATE audit_state SET size = 6, root = :r WHERE id = 1"), {"r": root6}
        )
    code, out = xinyi(env, "audit", "verify", "--checkpoint", str(saved))
    assert code == 1, out
    assert "entries are missing from index 6 on" in out and "first bad index" not in out
    assert "restore a newer backup" in out
