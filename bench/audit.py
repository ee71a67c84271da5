"""Audit log benchmark (`python -m bench audit`).

Figures, per backend (SQLite file always; PostgreSQL when ``XINYI_TEST_DATABASE_URL``
is set or a server answers at 127.0.0.1:5432):
- ``sequencer_appends_per_s``: durable appends through the sequencer: what it integrates
  from a full queue with the configured ``batch_max`` (2048), each batch one durable
  transaction (SQLite ``synchronous=FULL``). This is the figure the targets name;
- ``request_appends_per_s``: end to end as gateway requests make them: 4 threads, each
  entry enqueued in its own committed transaction, then awaited until it has its index
  (whoever waits integrates the pending batch). Bounded by one durable commit per
  request, which the design requires (the entry commits with the consent use);
- ``inclusion_ms`` / ``consistency_ms``: p50/p99 of a proof as the API computes it
  (visibility check, checkpoint lookup, O(log n) node reads) at ``proof_log_size``;
- ``verify_per_s``: full verification (every entry rehashed, every stored node and
  checkpoint checked).

The log for proofs and verification is built through the same sequencer code path
(``store.integrate``) from bulk-filled queues. Environment knobs:
``XINYI_BENCH_AUDIT_SIZE`` (SQLite log size, default 1,000,000) and
``XINYI_BENCH_AUDIT_PG_SIZE`` (default 150,000). ``load_average`` is recorded because
the machine is shared: figures taken under load are indicative.
"""

from __future__ import annotations

import os
import random
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import text

from audit import entry as entries
from audit import merkle, store
from audit.note import Ed25519Signer
from audit.service import AuditLog
from audit.store import Viewer
from common.db import make_engine, migrate, normalize_url, write_session
from common.settings import load_settings

PG_DEFAULT = "postgresql://postgres@127.0.0.1:5432/test"
DEPARTMENTS = ("tax", "social_security", "housing_fund", "utilities", "court")
OPERATIONS = ("report", "verify", "score")
FILL = 100_000


def _entry(i: int, rng: random.Random) -> dict[str, Any]:
    departments = sorted(set(rng.sample(DEPARTMENTS, rng.randint(1, 2))))
    return {
        "request_id": f"bench-{i:09d}",
        "time": 1_800_000_000 + i // 100,
        "institution": f"bank_{rng.randint(1, 20):02d}",
        "enterprise": f"9133{rng.randint(0, 10**13):013d}X",
        "departments": departments,
        "categories": departments,
        "features": [f"{d}.feature_{rng.randint(1, 4)}" for d in departments],
        "operation": rng.choice(OPERATIONS),
        "grant_id": uuid.UUID(int=rng.getrandbits(128)).hex,
        "model_id": None,
        "decision": "allowed",
    }


def _percentiles(samples: list[float]) -> dict[str, float]:
    samples = sorted(samples)
    q = statistics.quantiles(samples, n=100, method="inclusive")
    return {"p50": round(q[49] * 1000, 3), "p99": round(q[98] * 1000, 3)}


def _fill_queue(log: AuditLog, start: int, n: int, rng: random.Random) -> None:
    # The committed entries only: the sequencer never reads the openings.
    rows = [
        {
            "entry": entries.seal(_entry(start + i, rng), log.category_departments).committed,
            "enqueued_at": 0.0,
        }
        for i in range(n)
    ]
    with log.engine.begin() as conn:
        conn.execute(store.queue.insert(), rows)


def _appends(log: AuditLog, seconds: float, threads: int = 4) -> float:
    done = [0] * threads
    stop = time.monotonic() + seconds

    def worker(k: int) -> None:
        rng = random.Random(k)
        i = 0
        while time.monotonic() < stop:
            with write_session(log.engine) as s:
                qid = log.enqueue(s, _entry(k * 10**7 + i, rng))
            log.await_index(qid, 30.0)
            i += 1
        done[k] = i

    started = time.monotonic()
    pool = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return sum(done) / (time.monotonic() - started)


def _sequence(log: AuditLog, target: int, rng: random.Random) -> float:
    """Grow the log to ``target`` entries through the sequencer; integration rate."""
    integrating = 0.0
    integrated = 0
    while (size := log.size()) < target:
        n = min(FILL, target - size)
        _fill_queue(log, size, n, rng)
        t = time.perf_counter()
        integrated += log.integrate_pending(max_batches=10**6)
        integrating += time.perf_counter() - t
    return integrated / integrating if integrating else 0.0


def _proofs(log: AuditLog, rng: random.Random, n: int = 2000) -> dict[str, Any]:
    size = log.size()
    cp = log.checkpoint(force=True) or log.latest_checkpoint()
    root = cp.checkpoint.root
    viewer = Viewer("operator", "bench")
    inclusion, consistency = [], []
    for _ in range(n):
        index = rng.randrange(size)
        t = time.perf_counter()
        _, proof = log.inclusion_proof(viewer, index, None)
        inclusion.append(time.perf_counter() - t)
        if len(inclusion) <= 20:
            leaf = log.entry(viewer, index).leaf_hash
            assert merkle.verify_inclusion(index, size, leaf, proof, root)
    for _ in range(n):
        first = rng.randrange(1, size)
        t = time.perf_counter()
        proof = log.consistency_proof(first, size)
        consistency.append(time.perf_counter() - t)
        if len(consistency) <= 20:
            with log.engine.connect() as conn:
                old_root = merkle.root_at(first, store.node_reader(conn))
            assert merkle.verify_consistency(first, size, old_root, root, proof)
    return {
        "proof_log_size": size,
        "inclusion_ms": _percentiles(inclusion),
        "consistency_ms": _percentiles(consistency),
    }


def _backend(url: str, home: Path, size: int, append_seconds: float) -> dict[str, Any]:
    migrate(url)
    settings = load_settings(
        env={"XINYI_HOME": str(home), "XINYI_DATABASE_URL": url},
        overrides={"audit": {"batch_max": 2048}},
    )
    engine = make_engine(url)
    log = AuditLog(engine, settings, Ed25519Signer.generate(settings.config.audit.origin))
    rng = random.Random(2026)
    try:
        out: dict[str, Any] = {
            "sequencer_appends_per_s": round(_sequence(log, FILL, rng)),
            "request_appends_per_s": round(_appends(log, append_seconds)),
        }
        # Grow the log for the proof and verification figures with bigger batches.
        builder = AuditLog(
            engine,
            load_settings(
                env={"XINYI_HOME": str(home), "XINYI_DATABASE_URL": url},
                overrides={"audit": {"batch_max": 16384}},
            ),
            log.signer,
        )
        out["build_appends_per_s_batch_16384"] = round(_sequence(builder, size, rng))
        out.update(_proofs(log, rng))
        t = time.perf_counter()
        report = log.verify()
        seconds = time.perf_counter() - t
        assert report.ok, report.problems[:3]
        out["verify_per_s"] = round(report.entries_checked / seconds)
        out["verify_seconds"] = round(seconds, 1)
        return out
    finally:
        engine.dispose()


def _postgres_url() -> str | None:
    url = os.environ.get("XINYI_TEST_DATABASE_URL") or PG_DEFAULT
    try:
        engine = make_engine(url)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception:  # no server: the PostgreSQL figures are simply absent
        return None
    return url


def run() -> dict[str, Any]:
    size = int(os.environ.get("XINYI_BENCH_AUDIT_SIZE", "1000000"))
    pg_size = int(os.environ.get("XINYI_BENCH_AUDIT_PG_SIZE", "150000"))
    out: dict[str, Any] = {
        "targets": {
            "sequencer_appends_per_s": {"sqlite": 5000, "postgresql": 3000},
            "proof_p99_ms": 2.0,
            "verify_per_s": 200000,
        },
        "cores": os.cpu_count(),
        "load_average_at_start": round(os.getloadavg()[0], 2),
    }
    with tempfile.TemporaryDirectory(prefix="xinyi-bench-audit-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'audit.db'}"
        out["sqlite"] = _backend(url, Path(tmp), size, append_seconds=3.0)
    pg = _postgres_url()
    if pg is None:
        out["postgresql"] = "no server reachable"
        out["load_average_at_end"] = round(os.getloadavg()[0], 2)
        return out
    schema = "bench_audit_" + uuid.uuid4().hex[:8]
    admin = make_engine(pg)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in pg else "?"
    try:
        with tempfile.TemporaryDirectory(prefix="xinyi-bench-audit-") as tmp:
            schema_url = normalize_url(pg) + f"{sep}options=-csearch_path%3D{schema}"
            out["postgresql"] = _backend(schema_url, Path(tmp), pg_size, append_seconds=3.0)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()
    out["load_average_at_end"] = round(os.getloadavg()[0], 2)
    return out
