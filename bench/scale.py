"""Scale check on PostgreSQL: a province-sized store and audit log.

``python -m bench scale`` writes ``bench/results/scale.json``:

- ``data``: a synthetic city of ``enterprises`` (default 1,000,000) with every
  department's data loaded through the import path (``records.service.import_csv``),
  then ``report`` and ``verify`` requests through the whole gateway request path
  in-process (authentication, the consent check and its use, the audit entry and its
  index, the department data read; no sockets), one after another: p50/p99 in ms, and
  the department data read alone;
- ``audit``: the audit log grown to ``log_entries`` (default 10,000,000) through the
  sequencer's own code path, then inclusion and consistency proofs as the API computes
  them: p50/p99 in ms, right after the build and after a ``VACUUM`` of the audit
  tables (the state of a log that grew at request rates) [target: inclusion p99 ≤ 2 ms].

The full sizes take long (tens of minutes; several GB in PostgreSQL): ``python -m
bench.scale --quick`` runs the same at 20,000 enterprises and 200,000 entries. The
machine is shared: ``load_average`` is recorded with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ENTERPRISES = 1_000_000
LOG_ENTRIES = 10_000_000
QUICK_ENTERPRISES = 20_000
QUICK_LOG_ENTRIES = 200_000
GRANTS = 200
REQUESTS = 1000
TARGETS = {"inclusion_proof_p99_ms": 2.0}


def _ms(samples: Sequence[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50": round(statistics.median(ordered) * 1e3, 3),
        "p99": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1e3, 3),
    }


def _load_city(env: dict[str, str], enterprises: int) -> dict[str, Any]:
    from common.db import make_engine, migrate
    from common.settings import load_settings
    from keys import KeyRing
    from records import synth
    from records.catalog import Catalog
    from records.service import import_csv

    settings = load_settings(env=env)
    migrate(settings.database_url)
    KeyRing(settings).ensure_all()
    catalog = Catalog(settings.config)
    folder = Path(env["XINYI_HOME"]) / "city"
    t0 = time.perf_counter()
    city = synth.generate(catalog, enterprises, 2024)
    synth.write(city, folder)
    generated = time.perf_counter() - t0
    del city
    engine = make_engine(settings.database_url)
    imported: dict[str, float] = {}
    for department in catalog.departments:
        path = folder / f"{department}.csv"
        if not path.exists():
            continue
        t = time.perf_counter()
        import_csv(
            engine, catalog, department, path.read_bytes(), file_name=path.name, actor="scale"
        )
        imported[department] = round(time.perf_counter() - t, 1)
        path.unlink()
    engine.dispose()
    return {"generate_seconds": round(generated, 1), "import_seconds": imported}


def _requests(env: dict[str, str]) -> dict[str, Any]:
    """report and verify through the request path, in-process, one after another."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from bank.profile import public_jwk
    from bench.load import GRANT_CATEGORIES, VERIFY_ASKS
    from common.settings import load_settings
    from gateway import create_app
    from gateway.auth import issue_access_token
    from gateway.enforce import ConsentAudit
    from records import store as records

    settings = load_settings(env=env)
    app = create_app(settings, background=False)
    svc = app.extensions["xinyi"]
    try:
        key = Ed25519PrivateKey.generate()
        svc.registry.add_institution("scale_bank", name="规模测试银行", jwk=public_jwk(key))
        rng = random.Random(5)
        everyone = records.enterprises(svc.engine, "tax")
        usccs = rng.sample(everyone, min(GRANTS, len(everyone)))
        del everyone
        grants: list[tuple[str, str]] = []
        with app.test_request_context():
            hook = ConsentAudit(svc)
            for u in usccs:
                body = {
                    "enterprise": u,
                    "purpose": "working_capital_loan",
                    "ops": ["report", "verify"],
                    "categories": GRANT_CATEGORIES,
                    "duration_days": 30,
                    "max_uses": 200,
                }
                row = svc.consent.request("scale_bank", body, audit=hook)
                row = svc.consent.act(row.id, "approve", u, audit=hook)
                grants.append((u, str(row.grant_jwt)))
            token, _ = issue_access_token("scale_bank")
        client = app.test_client()
        headers = {"Authorization": f"Bearer {token}"}
        report, verify, reads = [], [], []
        errors: dict[str, int] = {}
        for i in range(REQUESTS):
            u, g = grants[i % len(grants)]
            t = time.perf_counter()
            resp = client.get(f"/v1/enterprises/{u}/report?grant={g}", headers=headers)
            report.append(time.perf_counter() - t)
            if resp.status_code != 200:
                errors[f"report {resp.status_code}"] = (
                    errors.get(f"report {resp.status_code}", 0) + 1
                )
            feature, op, value = VERIFY_ASKS[i % len(VERIFY_ASKS)]
            body = {"grant": g, "feature": feature, "op": op, "value": value}
            t = time.perf_counter()
            resp = client.post("/v1/verify", json=body, headers=headers)
            verify.append(time.perf_counter() - t)
            if resp.status_code not in (200, 404):  # 404 no_data: the city has gaps
                errors[f"verify {resp.status_code}"] = (
                    errors.get(f"verify {resp.status_code}", 0) + 1
                )
            t = time.perf_counter()
            records.current_values(svc.engine, u, [f for f, _, _ in VERIFY_ASKS])
            reads.append(time.perf_counter() - t)
        return {
            "requests_each": REQUESTS,
            "grants": len(grants),
            "report_ms": _ms(report),
            "verify_ms": _ms(verify),
            "data_read_ms": _ms(reads),
            "errors": errors,
        }
    finally:
        svc.stop()
        svc.engine.dispose()


def _audit(env: dict[str, str], log_entries: int) -> dict[str, Any]:
    from audit.note import Ed25519Signer
    from audit.service import AuditLog
    from bench.audit import _proofs, _sequence
    from common.db import make_engine
    from common.settings import load_settings

    settings = load_settings(env=env, overrides={"audit": {"batch_max": 16384}})
    engine = make_engine(settings.database_url)
    log = AuditLog(engine, settings, Ed25519Signer.generate(settings.config.audit.origin))
    rng = random.Random(9)
    t = time.perf_counter()
    rate = _sequence(log, log_entries, rng)
    built = time.perf_counter() - t
    # Right after a burst of millions of inserts, autovacuum is still busy with the
    # fresh tables and every first read of a page sets its hint bits: that is the
    # figure of a log just built. A log that grew at request rates is in the state a
    # VACUUM leaves; the target is measured there.
    fresh = _proofs(log, rng, n=2000)
    t = time.perf_counter()
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        for table in ("audit_entries", "audit_entry_departments", "audit_tree"):
            conn.exec_driver_sql(f"VACUUM (ANALYZE) {table}")
    vacuumed = time.perf_counter() - t
    figures = _proofs(log, rng, n=2000)
    engine.dispose()
    return {
        "build_seconds": round(built, 1),
        "sequencer_appends_per_s": round(rate),
        "right_after_build": {k: v for k, v in fresh.items() if k.endswith("_ms")},
        "vacuum_seconds": round(vacuumed, 1),
        **figures,
    }


def run(
    *,
    enterprises: int | None = None,
    log_entries: int | None = None,
    quick: bool | None = None,
) -> dict[str, Any]:
    """The scale check; ``XINYI_BENCH_SCALE_QUICK=1`` makes ``make bench`` quick."""
    from bench.common import fresh_pg_schema, pg_url

    if quick is None:
        quick = os.environ.get("XINYI_BENCH_SCALE_QUICK") == "1"
    enterprises = enterprises or (QUICK_ENTERPRISES if quick else ENTERPRISES)
    log_entries = log_entries or (QUICK_LOG_ENTRIES if quick else LOG_ENTRIES)
    url = pg_url()
    if url is None:
        return {"skipped": "no PostgreSQL answers (set XINYI_TEST_DATABASE_URL)"}
    home = Path(tempfile.mkdtemp(prefix="xinyi-scale-"))
    out: dict[str, Any] = {
        "command": "python -m bench scale" + (" (quick)" if quick else ""),
        "database": "postgresql",
        "enterprises": enterprises,
        "log_entries": log_entries,
        "cpu_count": os.cpu_count(),
        "targets": TARGETS,
        "load_average_at_start": round(os.getloadavg()[0], 2),
    }
    try:
        with fresh_pg_schema(url) as schema_url:
            env = {
                **os.environ,
                "XINYI_HOME": str(home),
                "XINYI_DATABASE_URL": schema_url,
                "XINYI_KEY_PASSPHRASE": "scale bench passphrase, not a secret",
                "XINYI_SECRET_KEY": "scale bench session secret",
            }
            out["data"] = _load_city(env, enterprises)
            out["data"].update(_requests(env))
            out["audit"] = _audit(env, log_entries)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    out["load_average_at_end"] = round(os.getloadavg()[0], 2)
    out["met"] = {
        "inclusion_proof_p99_ms": out["audit"]["inclusion_ms"]["p99"]
        <= TARGETS["inclusion_proof_p99_ms"]
    }
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.scale", description="Scale check on PostgreSQL (long)."
    )
    parser.add_argument("--enterprises", type=int, default=None, help=f"default {ENTERPRISES:,}")
    parser.add_argument("--log-entries", type=int, default=None, help=f"default {LOG_ENTRIES:,}")
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"{QUICK_ENTERPRISES:,} enterprises and {QUICK_LOG_ENTRIES:,} entries",
    )
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = parser.parse_args(argv)
    figures = run(enterprises=args.enterprises, log_entries=args.log_entries, quick=args.quick)
    text = json.dumps(figures, indent=2, ensure_ascii=False)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
