"""The audit demo steps run against a live gateway and tell the story they claim."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
import pytest

from audit.service import AuditLog
from cli import demo_audit
from cli.demo import Story
from common.db import make_engine, write_session
from common.settings import load_settings
from keys import KeyRing
from tests.audit.conftest import make_entry


def test_the_audit_demo_steps_show_a_verified_cosigned_log(
    tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from werkzeug.serving import make_server

    from common.db import migrate
    from gateway import create_app

    env = {
        "XINYI_HOME": str(tmp_path / "home"),
        "XINYI_KEY_PASSPHRASE": "demo-test-passphrase",
        "XINYI_DATABASE_URL": database_url,
    }
    settings = load_settings(env=env)
    migrate(settings.database_url)
    KeyRing(settings).ensure_all()
    engine = make_engine(settings.database_url)
    log = AuditLog(engine, settings, KeyRing(settings).checkpoint_signer())
    with write_session(engine) as s:
        for i in range(12):
            log.enqueue(s, make_entry(i, departments=["tax"] if i % 3 else ["utilities"]))
    app = create_app(settings, background=False)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"
    settings.home.mkdir(parents=True, exist_ok=True)
    story = Story(
        settings=settings, base=base, http=httpx.Client(base_url=base), home=settings.home
    )
    try:
        for run in demo_audit.STEPS:
            run(story)
    finally:
        server.shutdown()
        engine.dispose()
        app.extensions["xinyi"].engine.dispose()
    out = capsys.readouterr().out
    assert "8 entries touch tax data" in out
    assert "verified (" in out
    assert "cosigned size 12" in out
    assert "cosigned by: tax" in out
    assert "xinyi audit verify: OK, 12 entries" in out
