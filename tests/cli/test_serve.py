"""``xinyi serve`` as an operator runs it: a reload (SIGHUP) re-reads config.yaml and
replaces every worker with one running fresh code, while requests keep being answered;
a second ``xinyi serve`` on the same instance folder refuses to start and leaves the
first one's metrics alone."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bank.client import GatewayClient
from bench.load import Server
from keys.jwk import public_jwk
from tests import live

SCRAPE = "serve test scraper"


def _token_lifetime(client: GatewayClient) -> int:
    claims = jwt.decode(client.token(fresh=True), options={"verify_signature": False})
    return int(claims["exp"]) - int(claims["iat"])


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[tuple[Server, dict[str, str], GatewayClient]]:
    home = tmp_path / "home"
    port = live.free_port()
    env = {**live.env_for(home, f"sqlite:///{home / 'xinyi.db'}"), "XINYI_METRICS_TOKEN": SCRAPE}
    live.xinyi(env, "init")
    key = Ed25519PrivateKey.generate()
    jwk_file = tmp_path / "bank.jwk"
    jwk_file.write_text(json.dumps(public_jwk(key.public_key())))
    live.xinyi(
        env, "admin", "add-institution", "hz_bank", "--name", "杭州银行", "--jwk", str(jwk_file)
    )
    server = Server(env, port, 2)
    server.start()
    client = GatewayClient(server.base, "hz_bank", key)
    yield server, env, client
    server.stop()


def test_a_reload_rereads_the_config_and_drops_no_request(
    gateway: tuple[Server, dict[str, str], GatewayClient],
) -> None:
    server, env, client = gateway
    assert _token_lifetime(client) == 300
    old_workers = set(server.worker_pids())
    assert len(old_workers) == 2
    config = Path(env["XINYI_CONFIG"])
    text = config.read_text(encoding="utf-8")
    assert "access_token_seconds: 300" in text
    config.write_text(text.replace("access_token_seconds: 300", "access_token_seconds: 120"))

    failures: list[str] = []
    answered = 0
    stop = threading.Event()

    def traffic() -> None:
        nonlocal answered
        with httpx.Client(base_url=server.base, timeout=30) as http:
            while not stop.is_set():
                try:
                    resp = http.get("/v1/catalog", headers={"Authorization": f"Bearer {token}"})
                except httpx.HTTPError as e:
                    failures.append(f"{type(e).__name__}: {e}")
                    continue
                if resp.status_code != 200:
                    failures.append(f"HTTP {resp.status_code}")
                answered += 1

    token = client.token(fresh=True)
    threads = [threading.Thread(target=traffic) for _ in range(3)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    assert server.proc is not None
    os.kill(server.proc.pid, signal.SIGHUP)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        now = set(server.worker_pids())
        if len(now) == 2 and not now & old_workers:
            break
        time.sleep(0.2)
    else:
        pytest.fail("the old workers were not replaced")
    while not server.ready() and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)
    stop.set()
    for t in threads:
        t.join()
    assert not failures, failures[:5]
    assert answered > 20
    assert _token_lifetime(client) == 120

    # A reload with a config.yaml that no longer validates keeps the last valid one.
    config.write_text(text.replace("access_token_seconds: 300", "access_token_seconds: 5"))
    replaced = set(server.worker_pids())
    os.kill(server.proc.pid, signal.SIGHUP)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        now = set(server.worker_pids())
        if len(now) == 2 and not now & replaced:
            break
        time.sleep(0.2)
    else:
        pytest.fail("the workers were not replaced")
    while not server.ready() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert server.proc.poll() is None
    assert _token_lifetime(client) == 120
    log = (Path(env["XINYI_HOME"]) / "serve.log").read_text()
    assert "config_reload_refused" in log and "access_token_seconds" in log


def test_a_second_serve_on_the_same_instance_refuses_and_keeps_the_metrics(
    gateway: tuple[Server, dict[str, str], GatewayClient],
) -> None:
    server, env, client = gateway
    client.token(fresh=True)
    metrics = Path(env["XINYI_HOME"]) / "metrics"
    before = sorted(p.name for p in metrics.glob("*.db"))
    assert before
    port = live.free_port()
    out = subprocess.run(
        [*live.XINYI, "serve", "--port", str(port)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=live.ROOT,
    )
    assert out.returncode == 2
    assert "another `xinyi serve`" in out.stderr and "Traceback" not in out.stderr
    assert set(before) <= {p.name for p in metrics.glob("*.db")}
    scraped = httpx.get(server.base + "/metrics", headers={"Authorization": f"Bearer {SCRAPE}"})
    assert 'route="/oauth/token"' in scraped.text


def test_a_new_worker_imports_the_project_afresh() -> None:
    """What each worker does before loading the app: none of the arbiter's project
    modules survive (a reload after an upgrade used to refresh the gateway package only,
    so old and new code ran together), and libraries stay loaded."""
    import sys

    import common.settings as before
    from cli.server import forget_project_modules

    saved = dict(sys.modules)
    try:
        forget_project_modules()
        left = [m for m in sys.modules if m.split(".")[0] in ("common", "keys", "audit", "cli")]
        assert left == [] and "click" in sys.modules
        import common.settings as after

        assert after is not before
    finally:
        sys.modules.clear()
        sys.modules.update(saved)
