"""Grant verifications per second on one core, status lookup and use count included.

Each check is what a data request pays for consent: signature (EdDSA), claims, the
stored status read and the atomic use increment, in its own write transaction. Runs on
SQLite (the embedded default) and on PostgreSQL when ``XINYI_TEST_DATABASE_URL`` is
set or a local server answers.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.common import pg_url
from common.db import make_engine, migrate
from common.settings import load_settings
from consent.service import ConsentService
from keys import KeyRing
from keys.jwk import public_jwk
from registry import Registry

ENTERPRISE = "91330100716105852F"
SECONDS = 5.0


def _measure(database_url: str, home: Path) -> dict[str, Any]:
    settings = load_settings(
        env={
            "XINYI_HOME": str(home),
            "XINYI_KEY_PASSPHRASE": "bench-passphrase",
            "XINYI_DATABASE_URL": database_url,
        },
        overrides={"purposes": {"working_capital_loan": {"max_uses": 10**9}}},
    )
    migrate(database_url)
    engine = make_engine(database_url)
    ring = KeyRing(settings)
    ring.ensure_all()
    Registry(engine).add_institution(
        "bench_bank", name="bench", jwk=public_jwk(Ed25519PrivateKey.generate().public_key())
    )
    svc = ConsentService(settings=settings, engine=engine, keys=ring)
    body = {
        "enterprise": ENTERPRISE,
        "purpose": "working_capital_loan",
        "ops": ["verify"],
        "categories": ["tax"],
        "duration_days": 30,
        "max_uses": 10**9,
    }
    cid = svc.request("bench_bank", body).id
    grant = svc.act(cid, "approve", ENTERPRISE).grant_jwt
    args = {
        "grant": grant,
        "institution": "bench_bank",
        "enterprise": ENTERPRISE,
        "op": "verify",
        "categories": ["tax"],
    }
    for _ in range(200):  # warm up
        svc.check_standalone(**args)
    n = 0
    cpu0, t0 = time.process_time(), time.perf_counter()
    while time.perf_counter() - t0 < SECONDS:
        svc.check_standalone(**args)
        n += 1
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    engine.dispose()
    return {
        "checks": n,
        "per_second_wall": round(n / wall),
        "per_second_per_core_cpu": round(n / cpu),
        "mean_ms": round(wall / n * 1000, 3),
    }


def run() -> dict[str, Any]:
    out: dict[str, Any] = {"target_per_second_sqlite": 5000}
    with tempfile.TemporaryDirectory() as tmp:
        out["sqlite"] = _measure(f"sqlite:///{tmp}/bench.db", Path(tmp) / "home")
        url = pg_url()
        if url:
            from bench.common import fresh_pg_schema

            with fresh_pg_schema(url) as schema_url:
                out["postgresql"] = _measure(schema_url, Path(tmp) / "home_pg")
    out["cores"] = os.cpu_count()
    return out
