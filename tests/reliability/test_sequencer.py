"""Exactly one audit sequencer at a time, and another takes over when it dies.

The leader is whoever holds the log lock (the ``audit_state`` row: ``SELECT ... FOR
UPDATE`` on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite). A process takes the lock,
integrates a batch without committing and is killed with SIGKILL while holding it.
Meanwhile a request in another process waits for its entries' indices and cannot get
them (the lock is held: no second sequencer); once the leader is dead the database
releases the lock, the waiting process integrates, and every entry gets exactly one
index: contiguous, none lost (the dead leader's batch rolled back), none duplicated.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

from audit.note import Ed25519Signer
from audit.service import AuditLog
from common.db import make_engine, write_session
from common.settings import Settings
from tests.audit.conftest import make_entry

ROOT = Path(__file__).resolve().parents[2]
ENTRIES = 20
TAKEOVER_SECONDS = 10.0

LEADER = """
import sys, time
from common.db import make_engine
from audit import store
engine = make_engine(sys.argv[1])
with store.locked(engine, 30) as (conn, state):
    batch = store.integrate(conn, state, 8, time.time())
    print("holding", batch.count if batch else 0, flush=True)
    time.sleep(120)
"""


def test_a_killed_leader_is_replaced_within_seconds_with_no_index_lost_or_doubled(
    database_url: str, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(database_url=database_url, audit={"batch_max": 64})
    engine = make_engine(database_url)
    log = AuditLog(engine, settings, Ed25519Signer.generate(settings.config.audit.origin))
    queue_ids = []
    for i in range(ENTRIES):
        with write_session(engine) as s:
            queue_ids.append(log.enqueue(s, make_entry(i, request_id=f"seq-{i}")))
    leader = subprocess.Popen(
        [sys.executable, "-c", LEADER, database_url],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert leader.stdout is not None
        assert leader.stdout.readline().split() == ["holding", "8"]
        indices: dict[int, int] = {}
        errors: list[BaseException] = []

        def waiter() -> None:
            try:
                for qid in queue_ids:
                    indices[qid] = log.await_index(qid, 30.0)
            except BaseException as e:  # reported by the test thread
                errors.append(e)

        thread = threading.Thread(target=waiter, daemon=True)
        thread.start()
        thread.join(timeout=1.0)
        assert thread.is_alive() and not indices, "nobody sequences while the leader holds it"
        os.kill(leader.pid, signal.SIGKILL)
        killed = time.monotonic()
        thread.join(timeout=TAKEOVER_SECONDS + 30)
        took = time.monotonic() - killed
    finally:
        if leader.poll() is None:
            leader.kill()
        leader.wait(timeout=30)
    assert not errors, errors
    assert took < TAKEOVER_SECONDS, f"the takeover took {took:.1f} s"
    assert sorted(indices.values()) == list(range(ENTRIES))
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT idx, queue_id FROM audit_entries ORDER BY idx")).all()
        waiting = conn.execute(sa.text("SELECT count(*) FROM audit_queue")).scalar()
    assert [int(i) for i, _ in rows] == list(range(ENTRIES))
    assert {int(q): int(i) for i, q in rows} == indices
    assert waiting == 0
    report = log.verify()
    assert report.ok
    engine.dispose()


def test_a_process_learns_the_indices_another_sequenced_in_one_read(
    database_url: str, make_settings: Callable[..., Settings]
) -> None:
    """Two gateway processes (two AuditLogs on one database): when one integrates the
    other's entries, the other learns their indices from one read per batch; each
    waiting request then finds its index without a query of its own."""
    settings = make_settings(database_url=database_url)
    engine = make_engine(database_url)
    signer = Ed25519Signer.generate(settings.config.audit.origin)
    a, b = AuditLog(engine, settings, signer), AuditLog(engine, settings, signer)
    b.integrate()  # b has looked once (an empty log)
    queued = []
    for i in range(5):
        with write_session(engine) as s:
            queued.append(b.enqueue(s, make_entry(i, request_id=f"b-{i}")))
    assert a.integrate() is not None  # a sequences b's entries
    assert b.integrate() is None  # nothing left; b catches up
    lookups = 0
    original = b._lookup

    def counting(queue_id: int) -> int | None:
        nonlocal lookups
        lookups += 1
        return original(queue_id)

    b._lookup = counting  # type: ignore[method-assign]
    assert [b.await_index(q, 5.0) for q in queued] == list(range(5))
    assert lookups == 0
    engine.dispose()
