"""Grant verifications per second on one core, status lookup and use count included.

Each check is what a data request pays for consent: signature (EdDSA), claims, the
stored status read and the atomic use increment. Two figures:

- ``durable_each``: every check in its own write transaction, committed durably (the
  commit's fsync bounds the wall rate; a real request shares that commit with its
  audit entry);
- ``in_transaction``: checks inside open write transactions of ``BATCH`` checks each
  (as a batch score runs them), so the figure is the check itself, not the fsync; the
  grant's signature verified once and then remembered (grants are immutable);
- ``in_transaction_signature_not_cached``: the same with the EdDSA verification paid
  on every check (a grant seen for the first time).

Runs on SQLite (the embedded default) and on PostgreSQL when
``XINYI_TEST_DATABASE_URL`` is set or a local server answers.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.common import pg_url
from common.db import make_engine, migrate, write_session
from common.settings import load_settings
from consent.service import ConsentService
from keys import KeyRing
from keys.jwk import public_jwk
from registry import Registry

ENTERPRISE = "91330100716105852F"
SECONDS = 5.0
BATCH = 100


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
    args: dict[str, Any] = {
        "grant": grant,
        "institution": "bench_bank",
        "enterprise": ENTERPRISE,
        "op": "verify",
        "categories": ["tax"],
    }
    for _ in range(200):  # warm up
        svc.check_standalone(**args)
    out = {"durable_each": _rate(lambda: svc.check_standalone(**args))}

    def batch() -> int:
        with write_session(engine) as s:
            for _ in range(BATCH):
                svc.check(s, **args)
        return BATCH

    out["in_transaction"] = {"checks_per_transaction": BATCH, **_rate(batch)}

    def batch_first_use() -> int:
        with write_session(engine) as s:
            for _ in range(BATCH):
                svc._verified.clear()  # as if each grant were seen for the first time
                svc.check(s, **args)
        return BATCH

    out["in_transaction_signature_not_cached"] = {
        "checks_per_transaction": BATCH,
        **_rate(batch_first_use),
    }
    engine.dispose()
    return out


def _rate(step: Callable[[], object]) -> dict[str, Any]:
    """Run ``step`` (which returns how many checks it made, or None for one) for
    ``SECONDS``."""
    n = 0
    cpu0, t0 = time.process_time(), time.perf_counter()
    while time.perf_counter() - t0 < SECONDS:
        done = step()
        n += done if isinstance(done, int) else 1
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
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
