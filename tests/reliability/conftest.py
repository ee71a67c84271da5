"""A real gateway (``xinyi serve``, 2 gunicorn workers) under traffic and faults, and
the checks every fault must leave true.

``live`` starts a prepared instance (bank, department data, grants, enterprise users)
with ``bench.load``'s setup on the test's backend; traffic comes from client threads
over loopback HTTP. ``Live.check`` states what must hold after any fault:

- every response that said 200 has its audit entry: the entry at its ``audit_index``
  carries its request id and says ``allowed``;
- no index was lost or given twice (contiguous indices, each queued entry integrated
  once) and ``xinyi audit verify`` passes;
- no grant use was lost or double-counted: each consent's ``uses`` equals the number of
  ``allowed`` data entries under its grant.
"""

from __future__ import annotations

import http.client
import http.server
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from audit import entry as audit_entry
from bench.load import BANK_ID, Server, World, fetch_token, instance_env, prepare
from common.db import make_engine
from registry import Registry
from tests.live import free_port, xinyi

PASSWORD = "reliability password"
DATA_OPERATIONS = ("report", "verify", "score")
LIVE_CONFIG: dict[str, Any] = {
    "audit": {"checkpoint_interval_seconds": 0.5},
    "consent": {
        "default_verify_budget": 100,
        "webhook_backoff_seconds": 0.2,
        "webhook_lease_seconds": 3,
        "webhook_timeout_seconds": 1,
        # The test's receiver listens on loopback (UNSAFE outside tests).
        "unsafe_webhook_private_addresses": True,
    },
    "limits": {"requests_per_minute": 10**6},
}


@dataclass
class Outcome:
    """One request as the client saw it."""

    request_id: str
    path: str
    status: int
    body: dict[str, Any]
    sent: float
    answered: float
    server_request_id: str = ""  # the gateway's own id (X-Request-Id of the answer)

    @property
    def audit_index(self) -> int | None:
        index = self.body.get("audit_index")
        return index if isinstance(index, int) else None


@dataclass
class Live:
    server: Server
    world: World
    engine: Engine
    env: dict[str, str]
    token: str = ""
    outcomes: list[Outcome] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def base(self) -> str:
        return self.server.base

    # Requests -------------------------------------------------------------------------
    def send(
        self,
        conn: http.client.HTTPConnection,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Outcome:
        """One request on a kept-alive connection; status 0 when the connection failed
        (a killed worker, a refused connect)."""
        rid = "rel-" + uuid.uuid4().hex[:24]
        all_headers = {
            "X-Request-Id": rid,
            "Authorization": f"Bearer {self.token}",
            "Content-Type": "application/json",
            **(headers or {}),
        }
        data = json.dumps(body).encode() if body is not None else None
        sent = time.monotonic()
        try:
            conn.request(method, path, body=data, headers=all_headers)
            resp = conn.getresponse()
            raw = resp.read()
            status = resp.status
            server_id = resp.getheader("X-Request-Id") or ""
        except (OSError, http.client.HTTPException):
            conn.close()
            status, raw, server_id = 0, b"", ""
        try:
            parsed = json.loads(raw) if raw[:1] == b"{" else {}
        except ValueError:
            parsed = {}
        out = Outcome(rid, path, status, parsed, sent, time.monotonic(), server_id)
        with self._lock:
            self.outcomes.append(out)
        return out

    def connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=30)

    def verify_body(self, k: int, grant: str | None = None) -> dict[str, Any]:
        g, feature, op, value = self.world.verify_asks[k % len(self.world.verify_asks)]
        return {"grant": grant or g, "feature": feature, "op": op, "value": value}

    def report_path(self, k: int) -> str:
        i = k % len(self.world.usccs)
        return f"/v1/enterprises/{self.world.usccs[i]}/report?grant={self.world.grants[i]}"

    def hammer(self, stop: threading.Event, threads: int = 4) -> list[threading.Thread]:
        """Client threads sending verify and report requests until ``stop`` is set."""

        def loop(t: int) -> None:
            conn = self.connection()
            k = t
            while not stop.is_set():
                if k % 3:
                    self.send(conn, "POST", "/v1/verify", self.verify_body(k))
                else:
                    self.send(conn, "GET", self.report_path(k))
                k += threads
            conn.close()

        pool = [threading.Thread(target=loop, args=(t,), daemon=True) for t in range(threads)]
        for t in pool:
            t.start()
        return pool

    def person(self, uscc: str) -> httpx.Client:
        """The enterprise ``uscc`` signed in (session cookie and CSRF header)."""
        client = httpx.Client(base_url=self.base, timeout=30)
        resp = client.post("/v1/session", json={"login": login_of(uscc), "password": PASSWORD})
        assert resp.status_code == 200, resp.text
        client.headers["X-CSRF-Token"] = resp.json()["csrf_token"]
        return client

    @contextmanager
    def signed_in(self, uscc: str) -> Iterator[httpx.Client]:
        client = self.person(uscc)
        try:
            yield client
        finally:
            client.close()

    # Checks ---------------------------------------------------------------------------
    def wait_until(self, what: Callable[[], bool], seconds: float, why: str) -> None:
        deadline = time.monotonic() + seconds
        while not what():
            if time.monotonic() > deadline:
                raise AssertionError(f"not within {seconds} s: {why}")
            time.sleep(0.1)

    def queue_depth(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT count(*) FROM audit_queue")).scalar() or 0)

    def check(self) -> dict[str, int]:
        """The invariants of every fault (see the module docstring); returns counts."""
        self.engine.dispose()  # the test's own pooled connections may predate the fault
        self.wait_until(lambda: self.queue_depth() == 0, 30, "the audit queue drains")
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT e.idx, e.queue_id, e.entry, o.opening FROM audit_entries e "
                    "LEFT JOIN audit_openings o ON o.queue_id = e.queue_id"
                )
            ).all()
            consents = conn.execute(sa.text("SELECT id, uses FROM consents")).all()
        # Every entry as the operator sees it: parts and grant ids opened.
        entries = {
            int(i): audit_entry.view(bytes(e), None if o is None else bytes(o))
            for i, _, e, o in rows
        }
        assert sorted(entries) == list(range(len(entries))), "indices are contiguous from 0"
        queue_ids = [int(q) for _, q, _, _ in rows]
        assert len(set(queue_ids)) == len(queue_ids), "no queued entry was integrated twice"
        ok = [o for o in self.outcomes if o.status == 200 and o.audit_index is not None]
        for o in ok:
            entry = entries.get(o.audit_index)  # type: ignore[arg-type]
            assert entry is not None, f"{o.request_id}: said 200, entry {o.audit_index} missing"
            # The gateway's id names the entry; the caller's is kept apart, untrusted.
            assert entry["request_id"] == o.server_request_id, f"{o.request_id}: another entry"
            assert entry["client_request_id"] == o.request_id, f"{o.request_id}: not its label"
            assert entry["decision"] == "allowed"
        allowed: dict[str, int] = {}
        for entry in entries.values():
            if entry.get("operation") in DATA_OPERATIONS and entry.get("decision") == "allowed":
                gid = entry.get("grant_id")
                if gid:
                    allowed[gid] = allowed.get(gid, 0) + 1
        for consent_id, uses in consents:
            assert uses == allowed.get(consent_id, 0), f"{consent_id}: uses vs allowed entries"
        xinyi(self.env, "audit", "verify")  # raises with its output unless it passes
        return {"entries": len(entries), "served": len(ok)}


def login_of(uscc: str) -> str:
    return f"ent-{uscc.lower()}"


@pytest.fixture
def live_factory(
    tmp_path: Path,
) -> Iterator[Callable[..., Live]]:
    """Start prepared gateways with 2 workers: ``live_factory(database_url, users=3)``;
    all are stopped at the end of the test."""
    started: list[Live] = []

    def factory(database_url: str, *, users: int = 3) -> Live:
        home = Path(tempfile.mkdtemp(prefix="xinyi-live-", dir=tmp_path))
        port = free_port()
        env = instance_env(home, database_url, port, **LIVE_CONFIG)
        world = prepare(env, enterprises=12, max_uses=200, score=False)
        engine = make_engine(database_url)
        registry = Registry(engine)
        for uscc in world.usccs[:users]:
            registry.add_user(login=login_of(uscc), password=PASSWORD, role="enterprise", uscc=uscc)
        server = Server(env, port, 2)
        live = Live(server, world, engine, env)
        started.append(live)
        server.start()
        live.token = fetch_token(world, server.base)
        return live

    yield factory
    for live in started:
        live.server.stop()
        live.engine.dispose()


# Webhook receiver -----------------------------------------------------------------------


class Receiver:
    """A local webhook receiver that can be down (port closed) and up again."""

    def __init__(self) -> None:
        self.port = free_port()
        self.events: list[tuple[str, str]] = []  # (event id header, JWT body)
        self._server: http.server.ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def up(self) -> None:
        events = self.events

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                events.append((self.headers.get("X-Xinyi-Event-Id", ""), body.decode()))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def down(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.down()


# A private PostgreSQL cluster --------------------------------------------------------------


def _pg_bin() -> Path | None:
    for version in ("17", "16", "15", "14", "13"):
        path = Path(f"/usr/lib/postgresql/{version}/bin")
        if (path / "initdb").exists():
            return path
    return None


@dataclass
class PrivateCluster:
    """A PostgreSQL cluster of this test alone, so restarting it disturbs no other test
    (pytest -n 2 runs other database tests against the shared server meanwhile)."""

    bin: Path
    folder: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def pg_ctl(self, *args: str, timeout: float = 60) -> None:
        # The server's output goes to its log file: a pipe would be inherited by the
        # postmaster and never reach end of file.
        log = str(self.folder / "server.log")
        cmd = [str(self.bin / "pg_ctl"), "-D", str(self.folder / "data"), "-w", "-l", log, *args]
        subprocess.run(
            _as_postgres(cmd),
            check=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=timeout,
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1"
        self.pg_ctl("-o", options, "start")

    def restart(self) -> None:
        self.pg_ctl("-m", "fast", "restart")

    def running(self) -> bool:
        cmd = [str(self.bin / "pg_ctl"), "-D", str(self.folder / "data"), "status"]
        return subprocess.run(_as_postgres(cmd), capture_output=True).returncode == 0


def _as_postgres(cmd: list[str]) -> list[str]:
    # initdb and the server refuse to run as root.
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@pytest.fixture
def private_pg() -> Iterator[PrivateCluster]:
    """A fresh cluster on a free port; stopped and removed afterwards, whatever happens."""
    bin_dir = _pg_bin()
    if bin_dir is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI must run the PostgreSQL restart test: no initdb found")
        pytest.skip("PostgreSQL server binaries are not installed")
    folder = Path(tempfile.mkdtemp(prefix="xinyi-pg-"))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    cluster = PrivateCluster(bin_dir, folder, free_port())
    subprocess.run(
        _as_postgres(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(folder / "data"),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
            ]
        ),
        check=True,
        capture_output=True,
        timeout=120,
    )
    try:
        cluster.start()
        yield cluster
    finally:
        if cluster.running():
            cmd = [str(bin_dir / "pg_ctl"), "-D", str(folder / "data"), "-m", "immediate", "stop"]
            subprocess.run(_as_postgres(cmd), capture_output=True, timeout=60)
        shutil.rmtree(folder, ignore_errors=True)


__all__ = ["BANK_ID", "Live", "Outcome", "PrivateCluster", "Receiver"]
