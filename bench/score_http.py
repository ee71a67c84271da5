"""HTTP throughput of ``POST /v1/score`` on gunicorn (2 workers, consent and audit
included), against the same route computing in plaintext.

The plaintext route (``/bench/score-plain``) exists only in this harness: it is a
blueprint added to the app by ``bench_app()`` for the benchmark server, never part of the
product API. It does everything the HE route does (authentication, the grant check and
its use, the audit entry and its index, the department data read) except the HE work:
the bank's standardized features arrive in clear and the logit goes back in clear.

Setup happens in-process on a fresh instance (SQLite by default, PostgreSQL with
``XINYI_BENCH_DATABASE_URL``); the load is several client threads sending pre-built
bodies, so the client's own CPU use stays small (the machine has 2 cores).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import yaml

from bench.score_model import BANK_FEATURES, bench_model
from tests.live import free_port

ENTERPRISES = 40
SECONDS = 10.0
WARMUP = 2.0
THREADS = 8
BANK_ID = "bench_bank"


def bench_app(settings: Any = None, *, background: bool = True) -> Any:
    """The gunicorn app of the benchmark: the product app plus the plaintext route."""
    from flask import Blueprint

    from consent.errors import ConsentRefused
    from gateway import create_app
    from gateway.api import score as score_api
    from gateway.auth import authenticated, current_principal
    from gateway.contract import json_body
    from gateway.enforce import enforce_each
    from gateway.services import services

    bp = Blueprint("bench_plain", __name__)

    @bp.post("/bench/score-plain")
    @authenticated("institution")
    def score_plain() -> dict[str, Any]:
        body = json_body()
        svc = services()
        model = score_api._model(svc, body.get("model"))
        z_b = np.asarray(body["features"], dtype=np.float64)
        (access,) = enforce_each(
            current_principal(), [score_api._score_request(model, body.get("grant"))]
        )
        if isinstance(access, ConsentRefused):
            raise access
        assert access.enterprise is not None
        values = score_api.gateway_values(svc, [access.enterprise], model)[0]
        logit = model.gateway_share(values) + float(np.dot(model.bank_weights, z_b))
        return {"logit": logit, "audit_index": access.finish()}

    app = create_app(settings, background=background)
    app.register_blueprint(bp)
    return app


def cpu_per_request(
    settings: Any, token: str, he_bodies: list[bytes], plain_bodies: list[bytes], n: int = 120
) -> dict[str, Any]:
    """Server-side cost of one request, in-process and sequential (one thread, the WSGI
    app without sockets): CPU ms per request for both routes, and the throughput two
    otherwise idle cores would give. Less sensitive to other load than the HTTP run."""
    app = bench_app(settings, background=False)
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    out: dict[str, Any] = {}
    try:
        for name, path, bodies in (
            ("he", "/v1/score", he_bodies),
            ("plaintext", "/bench/score-plain", plain_bodies),
        ):
            for body in bodies[:10]:  # warm caches (model, context, weights)
                client.post(path, data=body, headers=headers)
            cpu0, wall0 = time.process_time(), time.perf_counter()
            ok = 0
            for i in range(n):
                resp = client.post(path, data=bodies[(i + 10) % len(bodies)], headers=headers)
                ok += resp.status_code == 200
            cpu = (time.process_time() - cpu0) / n
            wall = (time.perf_counter() - wall0) / n
            out[name] = {
                "ok": ok,
                "cpu_ms_per_request": round(cpu * 1e3, 2),
                "wall_ms_per_request": round(wall * 1e3, 2),
                "two_core_capacity_per_second": round(2 / cpu, 1) if cpu else None,
            }
    finally:
        app.extensions["xinyi"].stop()
    out["cpu_ratio_he_to_plaintext"] = round(
        out["he"]["cpu_ms_per_request"] / out["plaintext"]["cpu_ms_per_request"], 2
    )
    return out


def _instance(tmp: Path, port: int) -> dict[str, str]:
    from common.settings import DEFAULT_CONFIG

    config = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    config["server"].update({"port": port, "public_url": f"http://127.0.0.1:{port}"})
    config["limits"]["requests_per_minute"] = 10**6
    (tmp / "config.yaml").write_text(yaml.safe_dump(config, allow_unicode=True), "utf-8")
    env = {
        **os.environ,
        "XINYI_HOME": str(tmp / "instance"),
        "XINYI_CONFIG": str(tmp / "config.yaml"),
        "XINYI_KEY_PASSPHRASE": "bench passphrase, not a secret",
        "XINYI_SECRET_KEY": "bench session secret",
    }
    if os.environ.get("XINYI_BENCH_DATABASE_URL"):
        env["XINYI_DATABASE_URL"] = os.environ["XINYI_BENCH_DATABASE_URL"]
    return env


def _prepare(env: dict[str, str]) -> tuple[Any, Any]:
    """Schema, keys, the bank, department data, the model; returns (settings, bank key)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from bank.profile import public_jwk
    from common.db import make_engine, migrate
    from common.settings import load_settings
    from federated import store as fstore
    from keys import KeyRing
    from records import synth
    from records.catalog import Catalog
    from records.service import import_csv
    from registry import Registry

    settings = load_settings(env=env)
    migrate(settings.database_url)
    KeyRing(settings).ensure_all()
    engine = make_engine(settings.database_url)
    key = Ed25519PrivateKey.generate()
    Registry(engine).add_institution(BANK_ID, name="Bench Bank", jwk=public_jwk(key))
    catalog = Catalog(settings.config)
    city = synth.generate(catalog, max(200, ENTERPRISES), 7)
    folder = Path(env["XINYI_HOME"]) / "city"
    synth.write(city, folder)
    for department in catalog.departments:
        path = folder / f"{department}.csv"
        if path.exists():
            import_csv(
                engine, catalog, department, path.read_bytes(), file_name=path.name, actor="bench"
            )
    fstore.register_model(
        engine, bench_model(), "operator:bench", catalog=settings.config.categories
    )
    engine.dispose()
    return settings, key


def _grants(settings: Any, client: Any, model: Any, usccs: list[str]) -> list[str]:
    from gateway import create_app
    from gateway.enforce import ConsentAudit

    consent_ids = [
        str(
            client.request_consent(
                u,
                purpose="working_capital_loan",
                ops=["score"],
                categories=list(model.gateway_categories),
                duration_days=30,
                max_uses=settings.config.purposes["working_capital_loan"].max_uses,
            )["id"]
        )
        for u in usccs
    ]
    app = create_app(settings, background=False)
    svc = app.extensions["xinyi"]
    grants = []
    try:
        with app.test_request_context():
            for cid, u in zip(consent_ids, usccs, strict=True):
                row = svc.consent.act(cid, "approve", u, audit=ConsentAudit(svc))
                grants.append(str(row.grant_jwt))
    finally:
        svc.stop()
    return grants


def _load(base: str, token: str, path: str, bodies: list[bytes]) -> dict[str, Any]:
    """THREADS clients posting pre-built bodies: WARMUP seconds, then SECONDS counted."""
    stop = threading.Event()
    counting = threading.Event()
    latencies: list[float] = []
    errors: dict[str, int] = {}
    lock = threading.Lock()

    def worker(offset: int) -> None:
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        with httpx.Client(base_url=base, timeout=30) as http:
            i = offset
            while not stop.is_set():
                body = bodies[i % len(bodies)]
                i += THREADS
                t0 = time.perf_counter()
                resp = http.post(path, content=body, headers=headers)
                dt = time.perf_counter() - t0
                if not counting.is_set():
                    continue
                with lock:
                    if resp.status_code == 200:
                        latencies.append(dt)
                    else:
                        code = str(resp.json().get("error", resp.status_code))
                        errors[code] = errors.get(code, 0) + 1

    threads = [threading.Thread(target=worker, args=(t,), daemon=True) for t in range(THREADS)]
    for t in threads:
        t.start()
    time.sleep(WARMUP)
    counting.set()
    started = time.perf_counter()
    time.sleep(SECONDS)
    counting.clear()
    elapsed = time.perf_counter() - started
    stop.set()
    for t in threads:
        t.join(timeout=30)
    ordered = sorted(latencies)
    return {
        "per_second": round(len(latencies) / elapsed, 1),
        "ok": len(latencies),
        "errors": errors,
        "latency_ms_p50": round(statistics.median(ordered) * 1e3, 1) if ordered else None,
        "latency_ms_p99": round(ordered[int(0.99 * (len(ordered) - 1))] * 1e3, 1)
        if ordered
        else None,
    }


def _batch_http(
    client: Any, secret: Any, context_id: str, ref: str, grants: list[str], n: int = 400
) -> dict[str, Any]:
    """One batch request of n enterprises through the SDK: every enterprise checked
    and logged on its own, so consent and audit dominate."""
    from bank.scoring import Score, Scorer

    scorer = Scorer(client, secret, context_id)
    info = scorer.model(ref)
    rows = np.random.default_rng(9).normal(0, 1, (n, len(info.bank_features)))
    started = time.perf_counter()
    results = scorer.score_batch(info, [grants[i % len(grants)] for i in range(n)], rows)
    elapsed = time.perf_counter() - started
    return {
        "enterprises": n,
        "seconds": round(elapsed, 2),
        "enterprises_per_second": round(n / elapsed, 1),
        "scored": sum(isinstance(r, Score) for r in results),
    }


def run() -> dict[str, Any]:
    from bank.client import GatewayClient
    from common.db import make_engine
    from federated import he
    from records import store as records

    tmp = Path(tempfile.mkdtemp(prefix="xinyi-bench-score-"))
    port = free_port()
    env = _instance(tmp, port)
    server: subprocess.Popen[bytes] | None = None
    try:
        settings, key = _prepare(env)
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--workers",
                "2",
                "--worker-class",
                "gthread",
                "--threads",
                "4",
                "--bind",
                f"127.0.0.1:{port}",
                "--log-level",
                "warning",
                "bench.score_http:bench_app()",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        deadline = time.time() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.time() > deadline or server.poll() is not None:
                raise RuntimeError("the benchmark server did not start")
            time.sleep(0.3)
        client = GatewayClient(base, BANK_ID, key)
        secret = he.SecretContext.generate(he.DEFAULT_PARAMS)
        context_id = client.register_context(secret.public_bytes())
        model = bench_model()
        engine = make_engine(settings.database_url)
        usccs = records.enterprises(engine, "tax")[:ENTERPRISES]
        engine.dispose()
        grants = _grants(settings, client, model, usccs)
        rng = np.random.default_rng(5)
        ref = f"{model.id}@1"  # the SDK pins the version it read from GET /v1/models
        he_bodies: list[bytes] = []
        plain_bodies: list[bytes] = []
        for i in range(4 * ENTERPRISES):
            z = np.clip(rng.normal(0, 1.5, BANK_FEATURES), -5, 5)
            grant = grants[i % len(grants)]
            data = he.encrypt_seeded(secret, z)
            he_bodies.append(
                json.dumps(
                    {
                        "grant": grant,
                        "model": ref,
                        "context": context_id,
                        "ciphertext": base64.b64encode(data).decode(),
                    }
                ).encode()
            )
            plain_bodies.append(
                json.dumps({"grant": grant, "model": ref, "features": z.tolist()}).encode()
            )
        token = client.token()
        he_run = _load(base, token, "/v1/score", he_bodies)
        plain_run = _load(base, token, "/bench/score-plain", plain_bodies)
        ratio = plain_run["per_second"] / he_run["per_second"] if he_run["per_second"] else None
        in_process = cpu_per_request(settings, token, he_bodies, plain_bodies)
        batch = _batch_http(client, secret, context_id, ref, grants)
        return {
            "load_average_1m": round(os.getloadavg()[0], 2),
            "workers": 2,
            "threads_per_worker": 4,
            "client_threads": THREADS,
            "seconds": SECONDS,
            "database": "postgresql" if "postgresql" in settings.database_url else "sqlite",
            "request_body_bytes": len(he_bodies[0]),
            "scores_per_second": he_run["per_second"],
            "he": he_run,
            "plaintext": plain_run,
            "ratio_he_to_plaintext": round(ratio, 2) if ratio else None,
            "in_process": in_process,
            "batch": batch,
        }
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
        shutil.rmtree(tmp, ignore_errors=True)
