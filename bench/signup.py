"""Enterprise sign-ups per second per core: ``POST /v1/enterprises/register`` through the
whole gateway (JSON parse, limits, USCC and id checks, the keyed-hash real-name match
against the registration record, one Argon2id hash, the account and administrator rows
in one transaction), in one process and thread, so ``per_core`` = sign-ups / CPU
seconds of this process. Target (issue 16): ≥ 20 per second per core.

Also: one Argon2id hash alone, and how long ``import registry`` takes in a fresh
interpreter (it made a full-cost dummy hash at import before; now it is lazy).

Runs on SQLite, and on PostgreSQL when ``XINYI_TEST_DATABASE_URL`` is set or a local
server answers. ``signup_figures(database_url, home)`` is what ``bench platform`` calls.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import fresh_pg_schema, pg_url
from common import uscc as uscc_rules
from common.db import migrate
from common.settings import load_settings

SECONDS = 5.0
REGISTERED = 2_000


def _usccs(n: int) -> list[str]:
    return [uscc_rules.complete(f"91320281MA{k:07d}") for k in range(n)]


def signup_figures(database_url: str, home: Path, seconds: float = SECONDS) -> dict[str, Any]:
    """Sign-ups for ``seconds`` against a fresh instance at ``database_url``."""
    from gateway import create_app
    from records import identity
    from records import store as records
    from records.importer import Checked
    from records.pseudonyms import legal_rep_id_hash

    settings = load_settings(
        env={
            "XINYI_HOME": str(home),
            "XINYI_KEY_PASSPHRASE": "bench-passphrase",
            "XINYI_SECRET_KEY": "bench-secret",
            "XINYI_DATABASE_URL": database_url,
        },
        overrides={"accounts": {"sign_up_per_minute": 10**9}},
    )
    migrate(database_url)
    app = create_app(settings, background=False)
    svc = app.extensions["xinyi"]
    key = svc.identity_key()
    codes = _usccs(REGISTERED)
    body17 = "32028119800101123"
    raw_id = body17 + identity.resident_id_check(body17)
    rows = [(u, f'["张三", "{legal_rep_id_hash(key, raw_id)}"]') for u in codes]
    records.save_loaded(
        svc.engine,
        Checked(
            "market_regulation",
            (identity.NAME_FEATURE, identity.ID_FEATURE),
            rows,
            [],
            len(rows),
            "bench",
        ),
        file_name="registration.csv",
        actor="bench",
        now=int(time.time()),
    )
    client = app.test_client()
    done = real = 0
    wall0, cpu0 = time.perf_counter(), time.process_time()
    while time.perf_counter() - wall0 < seconds and done < len(codes):
        resp = client.post(
            "/v1/enterprises/register",
            json={
                "uscc": codes[done],
                "login": f"bench-{done}",
                "password": "bench password 123",
                "legal_representative": "张三",
                # Every other one mistyped: both outcomes are measured.
                "legal_representative_id": raw_id if done % 2 == 0 else "110105194912310021",
            },
        )
        if done % 2 == 1 and resp.status_code == 400:
            resp = client.post(
                "/v1/enterprises/register",
                json={
                    "uscc": codes[done],
                    "login": f"bench-{done}",
                    "password": "bench password 123",
                    "legal_representative": "李四",
                    "legal_representative_id": raw_id,
                },
            )
        assert resp.status_code == 201, resp.get_json()
        real += bool(resp.get_json()["real_name"])
        done += 1
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    svc.stop()
    svc.engine.dispose()
    return {
        "signups": done,
        "real_named": real,
        "per_second_wall": round(done / wall, 1),
        "per_core": round(done / cpu, 1),
        "ms_each_cpu": round(1000 * cpu / done, 2),
        "target_per_core": 20,
        "meets_target": done / cpu >= 20,
    }


def argon2_ms() -> float:
    import registry

    n = 20
    t0 = time.process_time()
    for k in range(n):
        registry._hasher.hash(f"password {k}")
    return round(1000 * (time.process_time() - t0) / n, 2)


_IMPORT = (
    "import sqlalchemy, sqlmodel, argon2, common.settings, common.webhook_address\n"
    "import time\n"
    "t = time.perf_counter()\n"
    "import registry\n"
    "print(time.perf_counter() - t)\n"
)


def import_seconds() -> float:
    """The registry's own import (its dependencies loaded first) in a fresh
    interpreter, median of five: what every CLI command pays for it."""
    runs = []
    for _ in range(5):
        done = subprocess.run(
            [sys.executable, "-c", _IMPORT],
            check=True,
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
        )
        runs.append(float(done.stdout.strip()))
    return round(sorted(runs)[2], 3)


def run() -> dict[str, Any]:
    out: dict[str, Any] = {
        "argon2id": {"time_cost": 2, "memory_kib": 19_456, "parallelism": 1},
        "argon2_hash_ms_cpu": argon2_ms(),
        "import_registry_seconds": import_seconds(),
        "load_average": os.getloadavg()[0],
    }
    with tempfile.TemporaryDirectory() as tmp:
        out["sqlite"] = signup_figures(f"sqlite:///{tmp}/bench.db", Path(tmp) / "home")
    url = pg_url()
    if url:
        with tempfile.TemporaryDirectory() as tmp, fresh_pg_schema(url) as schema_url:
            out["postgresql"] = signup_figures(schema_url, Path(tmp) / "home")
    return out


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
