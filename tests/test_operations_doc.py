"""docs/operations.md is executed: its ``sh ops-test`` blocks run in order, as one
shell script, on PostgreSQL (a database of its own) in a temporary instance, with the
gateway serving as the least-privilege login the document sets up. A documented step
that stops working fails here, so the operator's guide cannot drift from the code."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import stat
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from common.db import make_engine
from tests.conftest import PG_URL
from tests.live import ROOT, env_for, free_port

DOC = ROOT / "docs" / "operations.md"
BLOCK = re.compile(r"^( *)```sh ops-test\n(.*?)^\1```", re.MULTILINE | re.DOTALL)


def blocks(text: str) -> list[str]:
    return [textwrap.dedent(m.group(2)) for m in BLOCK.finditer(text)]


def test_the_document_marks_its_runnable_blocks() -> None:
    found = blocks(DOC.read_text(encoding="utf-8"))
    assert len(found) >= 15
    joined = "\n".join(found)
    for step in (
        "xinyi init",
        "xinyi db roles",
        "xinyi serve",
        "xinyi admin add-institution",
        "xinyi audit add-witness",
        "xinyi audit witness",
        "pg_dump",
        "xinyi audit rotate-log-key",
        "xinyi keys change-passphrase",
        "xinyi db upgrade",
        "kill -HUP",
    ):
        assert step in joined, step


@pytest.fixture
def database() -> Iterator[str]:
    """A database of its own (pg_dump dumps a whole database) and the gateway login."""
    if not PG_URL:
        if os.environ.get("CI") == "true":
            pytest.fail("CI must exercise PostgreSQL: XINYI_TEST_DATABASE_URL is not set")
        pytest.skip("XINYI_TEST_DATABASE_URL not set")
    name = "ops_doc_" + uuid.uuid4().hex[:10]
    admin = make_engine(PG_URL)
    with admin.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
        # Roles are cluster-wide: the DBA's `CREATE ROLE xinyi_gateway LOGIN` of section 1.
        conn.execute(
            sa.text(
                "DO $$ BEGIN CREATE ROLE xinyi_gateway LOGIN; "
                "EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
            )
        )
    try:
        yield PG_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


def test_the_operators_guide_runs_as_written(database: str, tmp_path: Path) -> None:
    port = free_port()
    home = tmp_path / "home"
    env = env_for(home, database)
    config = Path(env["XINYI_CONFIG"])
    config.write_text(config.read_text(encoding="utf-8").replace("port: 8600", f"port: {port}"))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    xinyi = bin_dir / "xinyi"
    xinyi.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m cli "$@"\n')
    xinyi.chmod(0o755)
    env.update(
        PATH=f"{bin_dir}:{env['PATH']}",
        XINYI_GATEWAY_DATABASE_URL=database.replace("//postgres@", "//xinyi_gateway@"),
        NEW_KEY_PASSPHRASE="a new passphrase for the keys",
        PYTHONPATH=str(ROOT),
    )
    script = ["set -euo pipefail"]
    for n, block in enumerate(blocks(DOC.read_text(encoding="utf-8")), 1):
        script += [f"echo '--- block {n}' >&2", block.replace("8600", str(port))]
    work = tmp_path / "operator"
    work.mkdir()
    log = tmp_path / "operator.log"
    with log.open("w") as sink:
        proc = subprocess.Popen(
            ["bash", "-c", "\n".join(script)],
            cwd=work,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        try:
            proc.wait(timeout=240)
        except subprocess.TimeoutExpired:
            pass
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)  # and the gateway started in the background
            proc.wait(timeout=30)
    out = log.read_text(encoding="utf-8", errors="replace")
    blocks_run = re.findall(r"^--- block \d+$", out, re.MULTILINE)
    assert proc.returncode == 0, f"failed in {blocks_run[-1:]}:\n{out[-6000:]}"
    # Backups are readable by their owner only.
    dumps = sorted(work.glob("xinyi-*"))
    assert {p.suffix for p in dumps} == {".dump", ".sql", ".tgz"}, dumps
    for dump in dumps:
        assert stat.S_IMODE(dump.stat().st_mode) == 0o600, dump
    # The witness followed the log key rotation by itself.
    state = json.loads((work / "tax-witness.json").read_text(encoding="utf-8"))
    assert state["size"] >= 2 and state["retired_log_keys"], state
    assert "xinyi-log-key-transition/v1" in (work / "log-key-transition.note").read_text()
    assert "OK: the log is intact" in out
