"""Load harness: a real gateway (``xinyi serve``, gunicorn) under mixed HTTP traffic.

``python -m bench load`` (via ``run()``) writes ``bench/results/load.json``: on
PostgreSQL (``XINYI_TEST_DATABASE_URL`` or the local server; SQLite when none answers)
with 2 gunicorn workers it runs, one after the other,

- ``verify``: ``POST /v1/verify`` at a fixed rate of 300/s [target: keeps the rate,
  p99 ≤ 100 ms, zero errors];
- ``score``: ``POST /v1/score`` (HE, ~150 KB bodies) at 150/s [same targets];
- ``mixed``: token, consent, report, verify, score and audit queries at a fixed rate;
- ``verify_max`` / ``score_max``: closed loop, as fast as the server answers (capacity).

``python -m bench.load --help`` runs one phase with any rate, duration, mix and worker
count. Traffic goes only to 127.0.0.1; every phase is bounded in seconds and requests.

Open loop: request *k* is due at ``start + k / rate`` and its latency is measured from
that time, not from when a client thread got round to sending it, so a server that
falls behind shows it in p99 instead of silently slowing the client (no coordinated
omission). A phase that cannot keep its rate reports ``achieved_per_second`` below the
rate.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bank.client import GatewayClient
from tests.live import ROOT, XINYI, free_port

RESULTS = ROOT / "bench" / "results"
BANK_ID = "load_bank"
OPERATIONS = ("token", "consent", "report", "verify", "score", "audit", "grade")
DEFAULT_MIX = "verify=4,score=2,report=2,audit=2,consent=1,token=1"
# (feature, op, value) asked by verify traffic; the grants cover these categories.
VERIFY_ASKS = (
    ("tax.paid_12m", ">=", 100000),
    ("tax.revenue_12m", ">=", 1000000),
    ("social_security.insured_employees", ">=", 10),
    ("housing_fund.contributors", ">=", 5),
    ("utilities.power_kwh_12m", ">=", 10000),
)
GRANT_CATEGORIES = ["tax", "social_security", "housing_fund", "utilities"]


# The instance -----------------------------------------------------------------------------


def instance_env(home: Path, database_url: str, port: int, **config: Any) -> dict[str, str]:
    """Environment of a gateway instance in ``home`` (config.yaml written there, with
    ``config`` deep-merged: ``limits={"requests_per_minute": 10}``)."""
    from common.settings import DEFAULT_CONFIG, _deep_merge

    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    home.chmod(0o700)  # `xinyi serve` refuses a home that others can read
    raw = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    raw["server"].update(port=port, public_url=f"http://127.0.0.1:{port}")
    raw = _deep_merge(raw, config)
    (home / "config.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True), "utf-8")
    return {
        **os.environ,
        "XINYI_HOME": str(home),
        "XINYI_CONFIG": str(home / "config.yaml"),
        "XINYI_DATABASE_URL": database_url,
        "XINYI_KEY_PASSPHRASE": "load-test passphrase, not a secret",
        "XINYI_SECRET_KEY": "load-test session secret",
        "XINYI_METRICS_TOKEN": "load-test metrics token",
        "PYTHONPATH": str(ROOT),
    }


@dataclass
class Server:
    """``xinyi serve`` in its own process group."""

    env: dict[str, str]
    port: int
    workers: int
    proc: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> None:
        log = open(Path(self.env["XINYI_HOME"]) / "serve.log", "ab")  # noqa: SIM115 -- kept open for the child
        self.proc = subprocess.Popen(
            [*XINYI, "serve", "--port", str(self.port), "--workers", str(self.workers)],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while not self.ready():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                tail = (Path(self.env["XINYI_HOME"]) / "serve.log").read_text()[-3000:]
                self.stop()
                raise RuntimeError(f"the gateway did not start:\n{tail}")
            time.sleep(0.2)

    def ready(self) -> bool:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
            conn.request("GET", "/readyz")
            ok = conn.getresponse().status == 200
            conn.close()
            return ok
        except OSError:
            return False

    def worker_pids(self) -> list[int]:
        """The gunicorn workers (children of the arbiter)."""
        assert self.proc is not None
        path = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        return [int(p) for p in path.read_text().split()] if path.exists() else []

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


@dataclass
class World:
    """What the traffic needs: the bank, its key, grants, HE material."""

    key: Any
    usccs: list[str]
    consent_ids: list[str]
    grants: list[str]
    verify_asks: list[tuple[str, str, str, Any]]  # (grant, feature, op, value)
    model_ref: str | None = None
    context_id: str | None = None
    ciphertexts: list[bytes] = field(default_factory=list)
    grade_grants: list[str] = field(default_factory=list)  # op grade, one per enterprise


def prepare(
    env: dict[str, str],
    *,
    enterprises: int = 100,
    max_uses: int = 200,
    score: bool = True,
    grades: bool = False,
) -> World:
    """In-process setup of a fresh instance: schema, keys, the bank, department data of
    a synthetic city, the joint model, and one approved grant per enterprise (with
    ``grades``: this month's grades computed and one grant for op grade each too)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from bank.profile import public_jwk
    from bench.score_model import bench_model
    from common.db import make_engine, migrate
    from common.settings import load_settings
    from federated import store as fstore
    from gateway import create_app
    from gateway.enforce import ConsentAudit
    from keys import KeyRing
    from records import store as records
    from records import synth
    from records.catalog import Catalog
    from records.service import import_csv
    from registry import Registry

    settings = load_settings(env=env)
    migrate(settings.database_url)
    KeyRing(settings).ensure_all()
    engine = make_engine(settings.database_url)
    key = Ed25519PrivateKey.generate()
    Registry(engine).add_institution(BANK_ID, name="压测银行", jwk=public_jwk(key))
    catalog = Catalog(settings.config)
    city = synth.generate(catalog, max(enterprises, 50), 11)
    folder = Path(env["XINYI_HOME"]) / "city"
    synth.write(city, folder)
    for department in catalog.departments:
        path = folder / f"{department}.csv"
        if path.exists():
            import_csv(
                engine, catalog, department, path.read_bytes(), file_name=path.name, actor="load"
            )
    model_ref = None
    if score:
        model = fstore.register_model(
            engine, bench_model(), "operator:load", catalog=settings.config.categories
        )
        model_ref = f"{model.id}@{model.version}"
    usccs = records.enterprises(engine, "tax")[:enterprises]
    grade_categories: list[str] = []
    if grades:
        from common.workdays import china_date
        from gateway.grades import grade_categories as categories_of_grades
        from grading import service as grading

        today = china_date(time.time())
        grading.compute(
            engine, settings, today.strftime("%Y-%m"), today=today, now=int(time.time()),
            actor="load",
        )  # fmt: skip
        grade_categories = categories_of_grades(settings.config)[0]
    grade_grants: list[str] = []
    asks: list[tuple[str, str, str, Any]] = []
    app = create_app(settings, background=False)
    svc = app.extensions["xinyi"]
    consent_ids, grants = [], []
    try:
        with app.test_request_context():
            hook = ConsentAudit(svc)
            for u in usccs:
                body = {
                    "enterprise": u,
                    "purpose": "working_capital_loan",
                    "ops": ["report", "verify", "score"],
                    "categories": GRANT_CATEGORIES,
                    "duration_days": 30,
                    "max_uses": max_uses,
                }
                row = svc.consent.request(BANK_ID, body, audit=hook)
                row = svc.consent.act(row.id, "approve", u, audit=hook)
                consent_ids.append(row.id)
                grants.append(str(row.grant_jwt))
                if grades:
                    body = {**body, "ops": ["grade"], "categories": grade_categories}
                    graded = svc.consent.request(BANK_ID, body, audit=hook)
                    graded = svc.consent.act(graded.id, "approve", u, audit=hook)
                    grade_grants.append(str(graded.grant_jwt))
                held = records.current_values(engine, u, [f for f, _, _ in VERIFY_ASKS])
                asks += [(str(row.grant_jwt), f, op, v) for f, op, v in VERIFY_ASKS if f in held]
            svc.audit.integrate_pending()
    finally:
        svc.stop()
        app.extensions["xinyi"].engine.dispose()
        engine.dispose()
    return World(
        key, usccs, consent_ids, grants, asks, model_ref=model_ref, grade_grants=grade_grants
    )


def add_score_material(world: World, base: str, n: int = 24) -> None:
    """Register the bank's CKKS context over HTTP and encrypt ``n`` requests' features."""
    import numpy as np

    from bench.score_model import BANK_FEATURES
    from federated import he

    client = GatewayClient(base, BANK_ID, world.key)
    secret = he.SecretContext.generate(he.DEFAULT_PARAMS)
    world.context_id = client.register_context(secret.public_bytes())
    client.close()
    rng = np.random.default_rng(3)
    world.ciphertexts = [
        he.encrypt_seeded(secret, np.clip(rng.normal(0, 1.5, BANK_FEATURES), -5, 5))
        for _ in range(n)
    ]


def fetch_token(world: World, base: str) -> str:
    client = GatewayClient(base, BANK_ID, world.key)
    try:
        return client.token()
    finally:
        client.close()


# Traffic ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    op: str
    method: str
    path: str
    body: bytes | None = None
    content_type: str = "application/json"
    auth: bool = True


class Traffic:
    """Builds the k-th request of an operation; bodies are prepared ahead where costly."""

    def __init__(self, world: World, base: str, token: str) -> None:
        self.world = world
        self.base = base
        self.token = token
        # Signs the client assertions of the token traffic (its own HTTP client unused).
        self._client = GatewayClient(base, BANK_ID, world.key)
        self._counter = 0
        self._lock = threading.Lock()
        self._scores = [
            json.dumps(
                {
                    "grant": world.grants[i % len(world.grants)],
                    "model": world.model_ref,
                    "context": world.context_id,
                    "ciphertext": base64.b64encode(ct).decode(),
                }
            ).encode()
            for i, ct in enumerate(world.ciphertexts * 4)
        ]
        self._verifies = [
            json.dumps({"grant": g, "feature": f, "op": op, "value": v}).encode()
            for g, f, op, v in world.verify_asks
        ]
        self.audit_indexes: list[int] = []

    def _next(self) -> int:
        with self._lock:
            self._counter += 1
            return self._counter

    def build(self, op: str) -> Request:
        k = self._next()
        w = self.world
        if op == "verify":
            return Request(op, "POST", "/v1/verify", self._verifies[k % len(self._verifies)])
        if op == "score":
            return Request(op, "POST", "/v1/score", self._scores[k % len(self._scores)])
        if op == "report":
            i = k % len(w.usccs)
            return Request(op, "GET", f"/v1/enterprises/{w.usccs[i]}/report?grant={w.grants[i]}")
        if op == "grade":
            i = k % len(w.grade_grants)
            path = f"/v1/enterprises/{w.usccs[i]}/grade?grant={w.grade_grants[i]}"
            return Request(op, "GET", path)
        if op == "consent":
            body = {
                "enterprise": w.usccs[k % len(w.usccs)],
                "purpose": "credit_line_review",
                "ops": ["verify"],
                "categories": ["tax"],
                "duration_days": 30,
                "max_uses": 10,
            }
            return Request(op, "POST", "/v1/consents", json.dumps(body).encode())
        if op == "token":
            form = (
                "grant_type=client_credentials&client_assertion_type="
                "urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer"
                f"&client_assertion={self._client.client_assertion()}"
            )
            return Request(
                op,
                "POST",
                "/oauth/token",
                form.encode(),
                "application/x-www-form-urlencoded",
                auth=False,
            )
        if op == "audit":
            known = self.audit_indexes
            if known and k % 2:
                index = known[k % len(known)]
                # At the tree size just past the entry: the newest checkpoint (the
                # default size) may not cover an entry this fresh yet.
                path = f"/v1/audit/proof/inclusion?index={index}&size={index + 1}"
                return Request(op, "GET", path)
            return Request(op, "GET", f"/v1/audit/entries?after={max(0, k * 7 % 500)}&limit=20")
        raise ValueError(f"unknown operation {op!r}")


def parse_mix(text: str) -> list[tuple[str, int]]:
    """``verify=4,score=1`` → [(verify, 4), (score, 1)]."""
    out = []
    for part in text.split(","):
        name, _, weight = part.strip().partition("=")
        if name not in OPERATIONS:
            raise ValueError(f"unknown operation {name!r}; one of {OPERATIONS}")
        out.append((name, int(weight or 1)))
    if not out or sum(w for _, w in out) <= 0:
        raise ValueError("the mix is empty")
    return out


def _schedule(mix: Sequence[tuple[str, int]]) -> list[str]:
    """A deterministic interleaving of the mix's operations in their proportions."""
    total = sum(w for _, w in mix)
    credit = {op: 0.0 for op, _ in mix}
    out = []
    for _ in range(total):
        for op, w in mix:
            credit[op] += w / total
        op = max(credit, key=lambda o: credit[o])
        credit[op] -= 1
        out.append(op)
    return out


@dataclass
class Outcome:
    op: str
    latency: float
    status: int
    code: str | None
    audit_index: int | None
    request_id: str


def drive(
    port: int,
    traffic: Traffic,
    mix: Sequence[tuple[str, int]],
    *,
    rate: float | None,
    seconds: float,
    max_requests: int,
    threads: int = 16,
) -> tuple[list[Outcome], float]:
    """Send traffic for at most ``seconds`` and ``max_requests``: at ``rate`` requests a
    second (open loop), or closed loop (each thread sends as soon as it has an answer)
    when ``rate`` is None. Returns the outcomes and the elapsed seconds."""
    order = _schedule(mix)
    outcomes: list[Outcome] = []
    lock = threading.Lock()
    due: queue.Queue[tuple[int, float] | None] = queue.Queue()
    start = time.perf_counter()
    stop_at = start + seconds

    def send(conn: http.client.HTTPConnection, k: int, scheduled: float) -> None:
        req = traffic.build(order[k % len(order)])
        rid = f"load-{uuid.uuid4().hex[:20]}"
        headers = {"X-Request-Id": rid, "Content-Type": req.content_type}
        if req.auth:
            headers["Authorization"] = f"Bearer {traffic.token}"
        try:
            conn.request(req.method, req.path, body=req.body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            status = resp.status
        except (OSError, http.client.HTTPException):
            conn.close()
            status, data = 0, b""
        latency = time.perf_counter() - scheduled
        code, index = None, None
        if data[:1] == b"{":
            try:
                answer = json.loads(data)
            except ValueError:
                answer = {}
            code = answer.get("error") if status >= 400 else None
            raw_index = answer.get("audit_index")
            index = raw_index if isinstance(raw_index, int) else None
        elif status == 0:
            code = "connection_failed"
        out = Outcome(req.op, latency, status, code, index, rid)
        with lock:
            outcomes.append(out)
            if index is not None and status == 200 and len(traffic.audit_indexes) < 5000:
                traffic.audit_indexes.append(index)

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            while True:
                if rate is None:
                    with lock:
                        k = len(outcomes) + inflight[0]
                        if k >= max_requests or time.perf_counter() >= stop_at:
                            return
                        inflight[0] += 1
                    now = time.perf_counter()
                    send(conn, k, now)
                    with lock:
                        inflight[0] -= 1
                    continue
                item = due.get()
                if item is None:
                    return
                k, scheduled = item
                wait = scheduled - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
                send(conn, k, scheduled)
        finally:
            conn.close()

    inflight = [0]
    pool = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    for t in pool:
        t.start()
    if rate is not None:
        total = min(max_requests, int(seconds * rate))
        for k in range(total):
            scheduled = start + k / rate
            # Feed the queue a little ahead of time, never far (bounded memory).
            while scheduled - time.perf_counter() > 0.05:
                time.sleep(0.01)
            due.put((k, scheduled))
        for _ in pool:
            due.put(None)
    deadline = stop_at + 35
    for t in pool:
        t.join(timeout=max(0.1, deadline - time.perf_counter()))
    elapsed = time.perf_counter() - start
    with lock:
        return list(outcomes), elapsed


def summarize(outcomes: Sequence[Outcome], elapsed: float, rate: float | None) -> dict[str, Any]:
    def pct(values: list[float], q: float) -> float | None:
        if not values:
            return None
        values = sorted(values)
        return round(values[min(len(values) - 1, int(q * len(values)))] * 1e3, 1)

    ok = [o for o in outcomes if o.status in (200, 201)]
    errors: dict[str, int] = {}
    for o in outcomes:
        if o.status not in (200, 201):
            key = f"{o.status} {o.code}"
            errors[key] = errors.get(key, 0) + 1
    by_op: dict[str, Any] = {}
    for op in sorted({o.op for o in outcomes}):
        mine = [o for o in outcomes if o.op == op]
        lat = [o.latency for o in mine if o.status in (200, 201)]
        by_op[op] = {
            "requests": len(mine),
            "ok": len(lat),
            "p50_ms": pct(lat, 0.5),
            "p99_ms": pct(lat, 0.99),
        }
    latencies = [o.latency for o in ok]
    return {
        "rate_per_second": rate,
        "seconds": round(elapsed, 2),
        "requests": len(outcomes),
        "ok": len(ok),
        "achieved_per_second": round(len(ok) / elapsed, 1) if elapsed else 0.0,
        "p50_ms": pct(latencies, 0.5),
        "p99_ms": pct(latencies, 0.99),
        "max_ms": pct(latencies, 1.0),
        "errors": errors,
        "by_operation": by_op,
    }


# Running ------------------------------------------------------------------------------------


@contextmanager
def database(kind: str) -> Iterator[str]:
    """A fresh database: ``sqlite`` (a file), ``postgresql`` (a new schema on the local
    server or ``XINYI_TEST_DATABASE_URL``) or a URL used as it is."""
    from bench.common import fresh_pg_schema, pg_url

    if kind == "sqlite":
        folder = Path(tempfile.mkdtemp(prefix="xinyi-load-db-"))
        try:
            yield f"sqlite:///{folder / 'xinyi.db'}"
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return
    if kind == "postgresql":
        url = pg_url()
        if url is None:
            raise RuntimeError("no PostgreSQL answers (set XINYI_TEST_DATABASE_URL)")
        with fresh_pg_schema(url) as schema_url:
            yield schema_url
        return
    yield kind


@contextmanager
def gateway(
    database_url: str,
    *,
    workers: int,
    enterprises: int,
    score: bool,
    grades: bool = False,
    **config: Any,
) -> Iterator[tuple[Server, World, str]]:
    """A prepared instance served by ``xinyi serve``: (server, world, access token)."""
    home = Path(tempfile.mkdtemp(prefix="xinyi-load-"))
    port = free_port()
    config.setdefault("limits", {}).setdefault("requests_per_minute", 10**7)
    config.setdefault("consent", {}).setdefault("default_verify_budget", 100)
    env = instance_env(home, database_url, port, **config)
    server = Server(env, port, workers)
    try:
        world = prepare(env, enterprises=enterprises, score=score, grades=grades)
        server.start()
        if score:
            add_score_material(world, server.base)
        yield server, world, fetch_token(world, server.base)
    finally:
        server.stop()
        shutil.rmtree(home, ignore_errors=True)


def phase(
    server: Server,
    world: World,
    token: str,
    mix: str,
    *,
    rate: float | None,
    seconds: float,
    max_requests: int,
    threads: int,
    warmup: float = 2.0,
) -> dict[str, Any]:
    traffic = Traffic(world, server.base, token)
    parsed = parse_mix(mix)
    if warmup > 0:
        drive(
            server.port, traffic, parsed, rate=None, seconds=warmup, max_requests=10**6, threads=4
        )
    load0 = os.getloadavg()[0]
    cpu0 = _cpu_seconds(server)
    outcomes, elapsed = drive(
        server.port,
        traffic,
        parsed,
        rate=rate,
        seconds=seconds,
        max_requests=max_requests,
        threads=threads,
    )
    figures = summarize(outcomes, elapsed, rate)
    figures["mix"] = mix
    figures["client_threads"] = threads
    figures["server_cpu_seconds"] = round(_cpu_seconds(server) - cpu0, 2)
    figures["load_average_1m"] = [round(load0, 2), round(os.getloadavg()[0], 2)]
    return figures


def _cpu_seconds(server: Server) -> float:
    """User + system CPU of the gunicorn workers (the arbiter idles)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in server.worker_pids():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


TARGETS = {"verify_per_second": 300, "score_per_second": 150, "p99_ms": 100}


def run(
    *,
    database_kind: str = "postgresql",
    workers: int = 2,
    seconds: float = 15.0,
    enterprises: int = 300,
) -> dict[str, Any]:
    """The benchmark of ``make bench``: fixed-rate verify and score at the targets,
    a mixed phase, and closed-loop capacity (enough grants that no phase runs out of
    uses)."""
    from bench.common import pg_url

    if database_kind == "postgresql" and pg_url() is None:
        database_kind = "sqlite"
    out: dict[str, Any] = {
        "command": "python -m bench load",
        "database": database_kind,
        "workers": workers,
        "cpu_count": os.cpu_count(),
        "targets": TARGETS,
        "load_average_at_start": round(os.getloadavg()[0], 2),
    }
    with ExitStack() as stack:
        url = stack.enter_context(database(database_kind))
        server, world, token = stack.enter_context(
            gateway(url, workers=workers, enterprises=enterprises, score=True)
        )
        for name, mix, rate, threads in (
            ("verify", "verify=1", 300.0, 24),
            ("score", "score=1", 150.0, 24),
            ("mixed", DEFAULT_MIX, 200.0, 24),
            ("verify_max", "verify=1", None, 8),
            ("score_max", "score=1", None, 8),
        ):
            out[name] = phase(
                server,
                world,
                token,
                mix,
                rate=rate,
                seconds=seconds,
                max_requests=100_000,
                threads=threads,
            )
    out["load_average_at_end"] = round(os.getloadavg()[0], 2)
    out["met"] = {
        "verify": _met(out["verify"], TARGETS["verify_per_second"]),
        "score": _met(out["score"], TARGETS["score_per_second"]),
    }
    return out


def _met(figures: dict[str, Any], rate: float) -> bool:
    return bool(
        figures["achieved_per_second"] >= rate * 0.98
        and (figures["p99_ms"] or 1e9) <= TARGETS["p99_ms"]
        and not figures["errors"]
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.load",
        description="Mixed HTTP load against a fresh gateway on 127.0.0.1 (xinyi serve).",
    )
    parser.add_argument("--rate", type=float, default=200.0, help="requests/s; 0 = closed loop")
    parser.add_argument("--duration", type=float, default=15.0, help="seconds of load")
    parser.add_argument("--requests", type=int, default=100_000, help="at most this many")
    parser.add_argument("--mix", default=DEFAULT_MIX, help=f"op=weight,… of {OPERATIONS}")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=24, help="client threads")
    parser.add_argument("--enterprises", type=int, default=100, help="grants to spread load on")
    parser.add_argument(
        "--database", default="postgresql", help="sqlite, postgresql (local server) or a URL"
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="write the figures here (default: stdout only)"
    )
    parser.add_argument("--all", action="store_true", help="the `make bench` phases (load.json)")
    args = parser.parse_args(argv)
    if args.all:
        figures = run(database_kind=args.database, workers=args.workers, seconds=args.duration)
    else:
        mix = parse_mix(args.mix)
        with ExitStack() as stack:
            url = stack.enter_context(database(args.database))
            server, world, token = stack.enter_context(
                gateway(
                    url,
                    workers=args.workers,
                    enterprises=args.enterprises,
                    score=any(op == "score" for op, _ in mix),
                )
            )
            figures = phase(
                server,
                world,
                token,
                args.mix,
                rate=args.rate or None,
                seconds=args.duration,
                max_requests=args.requests,
                threads=args.threads,
            )
            figures.update(workers=args.workers, database=args.database.split("@")[-1])
    text = json.dumps(figures, indent=2, ensure_ascii=False)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
