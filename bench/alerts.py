"""Risk-alert benchmark: change detection after a big import, and how soon alerts reach a
live receiver.

A tax file of ``XINYI_BENCH_ALERTS_ROWS`` enterprises (default 1M) is imported on SQLite
(snapshot v1, arrears 0 everywhere); ``XINYI_BENCH_ALERTS_MONITORED`` of them (default
10,000) are monitored by ``XINYI_BENCH_ALERTS_BANKS`` banks (default 20) through active
``monitor`` grants; then snapshot v2 raises the arrears of 1% of the city, among them
``XINYI_BENCH_ALERTS_FIRING`` monitored enterprises (default 200) past the 10万
threshold. The gateway's risk-alert loop (``Services.alerts_step``: sweep, publish,
deliver) runs as a worker runs it, every ``alerts.publish_interval_seconds``, against a
live loopback HTTP receiver per bank.

Figures: the import of v2 itself; the sweep's time on it (the change detection the
import costs, target ≤ 30 s); and for each alert the time from the import's commit to
its arrival at the receiver (target p99 ≤ 5 s).

Run: ``python -m bench alerts`` (writes bench/results/alerts.json).
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jwt
import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from audit.service import AuditLog
from common.db import make_engine, migrate
from common.logging import configure
from common.settings import load_settings
from common.webhook_address import WebhookPolicy
from consent import store as consent_store
from consent.outbox import OutboxDelivery
from gateway import alerts
from keys import KeyRing
from keys.jwk import public_jwk
from records import synth
from records.catalog import Catalog
from records.service import import_csv
from registry import Registry

TARGET_DETECTION_SECONDS = 30.0
TARGET_P99_SECONDS = 5.0


class Receivers:
    """One loopback webhook endpoint per bank; records when each alert arrived."""

    def __init__(self, banks: list[str]) -> None:
        self.arrivals: dict[str, float] = {}  # event id -> arrival (monotonic)
        self.lock = threading.Lock()
        self.servers: dict[str, ThreadingHTTPServer] = {}
        receivers = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                now = time.monotonic()
                claims = jwt.decode(body, options={"verify_signature": False})
                if claims.get("type") == alerts.EVENT_ALERT:
                    with receivers.lock:
                        receivers.arrivals.setdefault(claims["event_id"], now)
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        for bank in banks:
            server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
            threading.Thread(target=server.serve_forever, daemon=True).start()
            self.servers[bank] = server

    def url(self, bank: str) -> str:
        return f"http://127.0.0.1:{self.servers[bank].server_address[1]}/hook"

    def close(self) -> None:
        for server in self.servers.values():
            server.shutdown()
            server.server_close()


def _tax_csv(codes: list[str], arrears: np.ndarray) -> bytes:
    lines = ["uscc,tax.paid_12m,tax.arrears"]
    lines += [f"{c},1000000,{a:.2f}" for c, a in zip(codes, arrears.tolist(), strict=True)]
    return ("\n".join(lines) + "\n").encode()


def run() -> dict[str, Any]:
    rows = int(os.environ.get("XINYI_BENCH_ALERTS_ROWS", "1000000"))
    monitored = int(os.environ.get("XINYI_BENCH_ALERTS_MONITORED", "10000"))
    banks = int(os.environ.get("XINYI_BENCH_ALERTS_BANKS", "20"))
    firing = int(os.environ.get("XINYI_BENCH_ALERTS_FIRING", "200"))
    configure(level="ERROR")  # one UNSAFE loopback warning per delivery would drown this
    figures: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores (shared)",
        "load_average_at_start": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
        "backend": "sqlite (WAL, synchronous=FULL)",
        "rows": rows,
        "monitored_enterprises": monitored,
        "banks": banks,
        "target_detection_seconds": TARGET_DETECTION_SECONDS,
        "target_p99_seconds": TARGET_P99_SECONDS,
    }
    with tempfile.TemporaryDirectory(prefix="xinyi-bench-alerts-") as tmp:
        figures.update(_run(Path(tmp), rows, monitored, banks, firing))
    return figures


def _run(tmp: Path, rows: int, monitored: int, banks: int, firing: int) -> dict[str, Any]:
    settings = load_settings(
        env={"XINYI_HOME": str(tmp), "XINYI_KEY_PASSPHRASE": "bench-alerts"},
        overrides={
            "database": {"url": f"sqlite:///{tmp / 'alerts.db'}"},
            "consent": {"unsafe_webhook_private_addresses": True, "webhook_require_https": False},
        },
    )
    migrate(settings.database_url)
    engine = make_engine(settings.database_url)
    ring = KeyRing(settings)
    ring.ensure_all()
    audit = AuditLog(engine, settings, ring.checkpoint_signer())
    loopback = WebhookPolicy(require_https=False, unsafe_allow_private=True)
    outbox = OutboxDelivery(
        settings=settings, engine=engine, keys=ring, client=httpx.Client(), policy=loopback
    )
    catalog = Catalog(settings.config)
    out: dict[str, Any] = {}

    started = time.perf_counter()
    rng = np.random.default_rng(7)
    codes = sorted(synth._usccs(rng, rows).tolist())
    out["setup_usccs_seconds"] = round(time.perf_counter() - started, 1)
    v1 = _tax_csv(codes, np.zeros(rows))
    t0 = time.perf_counter()
    import_csv(engine, catalog, "tax", v1, file_name="v1.csv", actor="bench")
    out["import_v1_seconds"] = round(time.perf_counter() - t0, 1)
    del v1

    bank_ids = [f"bank_{i:02d}" for i in range(banks)]
    receivers = Receivers(bank_ids)
    registry = Registry(engine)
    key = dict(public_jwk(Ed25519PrivateKey.generate().public_key()))
    for bank in bank_ids:
        registry.add_institution(bank, name=bank, jwk=key)
    with engine.begin() as conn:
        for bank in bank_ids:
            conn.execute(
                consent_store._institutions.update()
                .where(consent_store._institutions.c.id == bank)
                .values(webhook_url=receivers.url(bank))
            )
    watched = rng.choice(rows, size=monitored, replace=False)
    now = int(time.time())
    grants = [
        {
            "id": f"cst_bench{i:08d}",
            "institution_id": bank_ids[i % banks],
            "enterprise": codes[int(w)],
            "purpose": "post_loan_monitoring",
            "ops": json.dumps(["monitor"]),
            "categories": json.dumps(["tax"]),
            "duration_days": 365,
            "max_uses": 1,
            "uses": 0,
            "status": "active",
            "letter": "bench",
            "letter_hash": "bench",
            "created_at": now - 60,
            "decided_at": now - 60,
            "not_before": now - 60,
            "expires_at": now + 365 * 86400,
            "pending_until": now,
            "grant_jwt": None,
            "status_changed_at": now - 60,
        }
        for i, w in enumerate(watched.tolist())
    ]
    with engine.begin() as conn:
        conn.execute(consent_store.consents.insert(), grants)
    # The first sweep looks at v1 (nothing changed for anyone yet): not timed.
    alerts.sweep(engine, settings, audit)

    # v2: 1% of the city in arrears, among them `firing` monitored ones past 10万.
    arrears = np.zeros(rows)
    changed = rng.choice(rows, size=rows // 100, replace=False)
    arrears[changed] = rng.uniform(1, 90_000, size=len(changed))
    fire = watched[:firing]
    arrears[fire] = rng.uniform(100_000, 900_000, size=len(fire))
    v2 = _tax_csv(codes, arrears)

    stop = threading.Event()
    loop_errors: list[str] = []
    sweeps: list[tuple[float, int]] = []  # (seconds, alerts recorded) of each sweep

    def worker_loop() -> None:  # what Services.alerts_step does in every worker
        interval = settings.config.alerts.publish_interval_seconds
        while not stop.is_set():
            try:
                t = time.perf_counter()
                count = alerts.sweep(engine, settings, audit)
                sweeps.append((time.perf_counter() - t, count))
                if alerts.publish(engine, audit):
                    outbox.deliver_due(limit=10_000)
            except Exception as e:
                loop_errors.append(f"{type(e).__name__}: {e}")
            stop.wait(interval)

    # The loop runs all along, as in a worker: the import commits at some point of its
    # period, and the figures include the wait for its next tick.
    loop = threading.Thread(target=worker_loop, daemon=True)
    loop.start()
    t0 = time.perf_counter()
    import_csv(engine, catalog, "tax", v2, file_name="v2.csv", actor="bench")
    import_seconds = time.perf_counter() - t0
    committed = time.monotonic()
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        with receivers.lock:
            if len(receivers.arrivals) >= firing:
                break
        time.sleep(0.05)
    time.sleep(2 * settings.config.alerts.publish_interval_seconds)  # none more, none twice
    stop.set()
    loop.join(timeout=30)
    receivers.close()
    engine.dispose()
    detecting = [seconds for seconds, count in sweeps if count]
    detection = max(detecting) if detecting else float("nan")
    recorded = sum(count for _, count in sweeps)
    latencies = np.array(sorted(a - committed for a in receivers.arrivals.values()))
    out.update(
        {
            "import_v2_seconds": round(import_seconds, 1),
            "import_v2_rows_per_second": round(rows / import_seconds),
            "detection_seconds": round(detection, 3),
            "detection_share_of_import": round(detection / import_seconds, 4),
            "alerts_recorded": recorded,
            "alerts_expected": firing,
            "alerts_delivered": len(latencies),
            "loop_errors": loop_errors[:5],
        }
    )
    if len(latencies):
        out["delivery_seconds_after_commit"] = {
            "note": "commit to arrival, detection included",
            "p50": round(float(np.percentile(latencies, 50)), 3),
            "p99": round(float(np.percentile(latencies, 99)), 3),
            "max": round(float(latencies[-1]), 3),
        }
    out["meets_targets"] = bool(
        detection <= TARGET_DETECTION_SECONDS
        and len(latencies) == recorded == firing
        and len(latencies)
        and float(np.percentile(latencies, 99)) <= TARGET_P99_SECONDS
    )
    return out
