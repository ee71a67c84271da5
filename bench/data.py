"""Department data benchmark.

1. Import: a synthetic city of ``XINYI_BENCH_IMPORT_ROWS`` enterprises (default 1M);
   its tax file and its market-regulation file (the widest, with Chinese names) are
   imported end to end on SQLite (read, check every cell, bulk insert, commit), then the
   tax file again as snapshot v2. Target: ≥ 50,000 rows/s.
2. Verify: ``POST /v1/verify`` end to end over HTTP against ``xinyi serve`` with 2
   gunicorn workers, consent check and audit entry included, from
   ``XINYI_BENCH_VERIFY_THREADS`` client threads (default 8); on SQLite, and on
   PostgreSQL too when one answers (``bench.common.pg_url``).

Run: ``python -m bench data`` (writes bench/results/data.json).
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from common.db import make_engine, migrate
from common.settings import DEFAULT_CONFIG, load_settings
from records import synth
from records.catalog import Catalog
from records.service import import_csv


def run() -> dict[str, Any]:
    rows = int(os.environ.get("XINYI_BENCH_IMPORT_ROWS", "1000000"))
    figures: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores (shared)",
        "load_average_at_start": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
    }
    with tempfile.TemporaryDirectory(prefix="xinyi-bench-data-") as tmp:
        figures["import"] = bench_import(Path(tmp), rows)
        figures["verify"] = {"sqlite": bench_verify(Path(tmp) / "sqlite", None)}
        pg = _pg_url()
        if pg is not None:
            from bench.common import fresh_pg_schema

            with fresh_pg_schema(pg) as url:
                figures["verify"]["postgresql"] = bench_verify(Path(tmp) / "pg", url)
    return figures


def _pg_url() -> str | None:
    try:
        from bench.common import pg_url
    except ImportError:
        return None
    return pg_url()


def bench_import(tmp: Path, enterprises: int) -> dict[str, Any]:
    catalog = Catalog(load_settings(env={}).config)
    started = time.perf_counter()
    city = synth.generate(catalog, enterprises, seed=1)
    synth.write(city, tmp / "city")
    synth_seconds = time.perf_counter() - started
    url = f"sqlite:///{tmp / 'import.db'}"
    migrate(url)
    engine = make_engine(url)
    out: dict[str, Any] = {
        "backend": "sqlite (WAL, synchronous=FULL)",
        "enterprises": enterprises,
        "synth_seconds": round(synth_seconds, 1),
        "target_rows_per_second": 50_000,
    }
    try:
        for label, department in (
            ("tax", "tax"),
            ("market_regulation", "market_regulation"),
            ("tax_reimport_v2", "tax"),
        ):
            path = tmp / "city" / f"{department}.csv"
            t0, c0 = time.perf_counter(), time.process_time()
            data = path.read_bytes()  # reading the file is part of the import
            record = import_csv(
                engine, catalog, department, data, file_name=path.name, actor="bench"
            )
            seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
            out[label] = {
                "rows": record.row_count,
                "columns": len(record.features) + 1,
                "megabytes": round(len(data) / 1e6, 1),
                "seconds": round(seconds, 2),
                "rows_per_second": round(record.row_count / seconds),
                # CPU time of this process: less sensitive to a shared machine's load.
                "rows_per_cpu_second": round(record.row_count / cpu),
                "snapshot_version": record.version,
            }
    finally:
        engine.dispose()
    return out


def bench_verify(tmp: Path, database_url: str | None) -> dict[str, Any]:
    """Needs the whole gateway (keys, registry, audit) and the test helpers."""
    try:
        from tests.live import free_port, serving
    except ImportError as e:  # pragma: no cover - only without the test helpers
        return {"skipped": f"tests.live not importable: {e}"}
    threads = int(os.environ.get("XINYI_BENCH_VERIFY_THREADS", "8"))
    enterprises = int(os.environ.get("XINYI_BENCH_VERIFY_ENTERPRISES", "20"))
    home = tmp / "serve"
    home.mkdir(parents=True)
    port = free_port()
    # A verification budget of 100 per grant and feature (the most config allows) so
    # each grant carries 200 verifications: 100 on each of two features.
    config = DEFAULT_CONFIG.read_text(encoding="utf-8")
    # ``xinyi serve --port`` derives the public URL from the port it serves on.
    for old, new in (("default_verify_budget: 5", "default_verify_budget: 100"),):
        assert old in config, old
        config = config.replace(old, new)
    (home / "config.yaml").write_text(config, encoding="utf-8")
    url = database_url or f"sqlite:///{home / 'xinyi.db'}"
    with serving(home, url, port=port) as (base, env):
        plan = _prepare(home, base, env, enterprises)
        figures = _hammer(base, plan, threads)
    per_worker = yaml.safe_load(config)["server"]["threads"]
    figures["server"] = f"xinyi serve, 2 gunicorn workers (gthread, {per_worker} threads)"
    figures["database"] = "postgresql" if database_url else "sqlite (WAL, synchronous=FULL)"
    return figures


def _prepare(home: Path, base: str, env: dict[str, str], enterprises: int) -> dict[str, Any]:
    import httpx
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from jwt.algorithms import OKPAlgorithm

    from bank.client import GatewayClient
    from tests.live import xinyi

    catalog = Catalog(load_settings(env={}).config)
    city = synth.generate(catalog, max(enterprises * 2, 100), seed=2)
    synth.write(city, home / "city")
    xinyi(env, "data", "import", "tax", str(home / "city" / "tax.csv"))
    codes = city.tables["tax"].columns["uscc"].tolist()[:enterprises]
    key = Ed25519PrivateKey.generate()
    jwk_path = home / "bank.jwk"
    jwk_path.write_text(OKPAlgorithm.to_jwk(key.public_key()), encoding="utf-8")
    xinyi(
        env, "admin", "add-institution", "bench_bank", "--name", "基准银行", "--jwk", str(jwk_path)
    )
    http = httpx.Client(base_url=base, timeout=30)
    token = GatewayClient(base, "bench_bank", key, http=http).token()
    bank = {"Authorization": f"Bearer {token}"}
    grants = []
    for i, code in enumerate(codes):
        login = f"ent{i}"
        xinyi(
            env, "admin", "add-user", "--role", "enterprise", "--login", login,
            "--password-stdin", "--uscc", code, stdin="bench password 123\n",
        )  # fmt: skip
        asked = http.post(
            "/v1/consents",
            headers=bank,
            json={
                "enterprise": code,
                "purpose": "working_capital_loan",
                "ops": ["verify"],
                "categories": ["tax"],
                "duration_days": 30,
                "max_uses": 200,
            },
        )
        asked.raise_for_status()
        person = httpx.Client(base_url=base, timeout=30)
        session = person.post(
            "/v1/session", json={"login": login, "password": "bench password 123"}
        )
        session.raise_for_status()
        approved = person.post(
            f"/v1/consents/{asked.json()['id']}/approve",
            headers={"X-CSRF-Token": session.json()["csrf_token"]},
        )
        approved.raise_for_status()
        grants.append(approved.json()["grant"])
    return {"token": token, "grants": grants}


def _hammer(base: str, plan: dict[str, Any], threads: int) -> dict[str, Any]:
    import httpx

    work = [
        {"grant": g, "feature": feature, "op": ">=", "value": 1_000_000}
        for g in plan["grants"]
        for feature in ("tax.paid_12m", "tax.revenue_12m")
        for _ in range(100)
    ]
    latencies: list[float] = []
    failures: dict[str, int] = {}
    lock = threading.Lock()
    cursor = iter(range(len(work)))

    def worker() -> None:
        client = httpx.Client(
            base_url=base, timeout=30, headers={"Authorization": f"Bearer {plan['token']}"}
        )
        while True:
            with lock:
                i = next(cursor, None)
            if i is None:
                break
            t0 = time.perf_counter()
            resp = client.post("/v1/verify", json=work[i])
            took = time.perf_counter() - t0
            with lock:
                if resp.status_code == 200:
                    latencies.append(took)
                else:
                    code = str(resp.json().get("error", resp.status_code))
                    failures[code] = failures.get(code, 0) + 1
        client.close()

    started = time.perf_counter()
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    seconds = time.perf_counter() - started
    lat = np.array(latencies) * 1000
    return {
        "client_threads": threads,
        "requests": len(work),
        "ok": len(latencies),
        "failures": failures,
        "seconds": round(seconds, 2),
        "requests_per_second": round(len(latencies) / seconds, 1),
        "latency_ms": {
            "p50": round(float(np.percentile(lat, 50)), 1) if len(lat) else None,
            "p99": round(float(np.percentile(lat, 99)), 1) if len(lat) else None,
        },
        "includes": "token check, consent check + use + budget, audit entry integrated",
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2, ensure_ascii=False))
