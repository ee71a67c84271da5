"""Four processes appending at once (SQLite file and PostgreSQL) get contiguous,
distinct indices, and the root the sequencers built equals the root recomputed from
the stored entries."""

from __future__ import annotations

import multiprocessing
from multiprocessing.synchronize import Barrier
from pathlib import Path

from sqlalchemy import Engine

from audit import merkle, store
from audit.note import Ed25519Signer
from audit.service import AuditLog
from common.db import make_engine, read_session, write_session
from common.settings import Settings, load_settings
from tests.audit.conftest import make_entry

PROCESSES = 4
PER_PROCESS = 30


def _settings(url: str, home: str) -> Settings:
    env = {"XINYI_HOME": home, "XINYI_DATABASE_URL": url}
    return load_settings(env=env, overrides={"audit": {"batch_max": 8}})


def append_in_process(url: str, home: str, worker: int, start: Barrier) -> list[tuple[int, int]]:
    """One gateway worker: enqueue and await, no background thread."""
    settings = _settings(url, home)
    engine = make_engine(url)
    log = AuditLog(engine, settings, Ed25519Signer.generate(settings.config.audit.origin))
    start.wait(30)
    out = []
    for i in range(PER_PROCESS):
        with write_session(engine) as s:
            qid = log.enqueue(s, make_entry(i, request_id=f"w{worker}-{i}"))
        out.append((qid, log.await_index(qid, 30.0)))
    engine.dispose()
    return out


def test_four_processes_append_with_contiguous_indices(
    database_url: str, engine: Engine, tmp_path: Path
) -> None:
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager:
        start = manager.Barrier(PROCESSES)
        with ctx.Pool(PROCESSES) as pool:
            results = pool.starmap(
                append_in_process,
                [(database_url, str(tmp_path), w, start) for w in range(PROCESSES)],
            )
    pairs = [p for worker in results for p in worker]
    indices = sorted(index for _, index in pairs)
    assert indices == list(range(PROCESSES * PER_PROCESS))
    with read_session(engine) as s:
        state = store.read_state(s)
        rows = store.entry_range(s, 0, state.size)
        assert all(store.index_of(s, qid) == index for qid, index in pairs)
    assert state.size == len(rows) == PROCESSES * PER_PROCESS
    recomputed = merkle.root_from_leaves([merkle.leaf_hash(raw) for _, raw in rows])
    assert recomputed == state.root
    settings = _settings(database_url, str(tmp_path))
    log = AuditLog(engine, settings, Ed25519Signer.generate(settings.config.audit.origin))
    report = log.verify()
    assert report.ok and report.root == recomputed
