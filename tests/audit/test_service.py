"""The audit log over a real database (SQLite and PostgreSQL): sequencing, queries,
proofs, checkpoints, cosignatures, monitoring, and fail-closed behaviour."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from audit import entry as entries
from audit import merkle, store
from audit.checkpoint import open_checkpoint
from audit.errors import (
    AuditUnavailable,
    CheckpointNotFound,
    EntryInvalid,
    EntryNotFound,
    SignatureInvalid,
    WitnessUnknown,
)
from audit.note import ALG_COSIGNATURE_V1, Ed25519Signer, Verifier, parse_note
from audit.service import AuditLog
from audit.store import Viewer
from common.canonical import canonical_json
from common.db import is_sqlite, write_session
from common.errors import Conflict, InvalidInput
from tests.audit.conftest import ENTERPRISE, OTHER_ENTERPRISE, Clock, make_entry

OPERATOR = Viewer("operator", "ops")


def test_entries_get_contiguous_indices_without_a_background_sequencer(
    append: Callable[..., list[int]], audit_log: AuditLog
) -> None:
    # batch_max is 16 in these tests, so 40 entries take several batches.
    assert append(40) == list(range(40))
    assert audit_log.size() == 40
    assert audit_log.status()["queue_depth"] == 0


def test_an_entry_is_salted_canonical_json_and_its_leaf_hash_is_recomputable(
    append: Callable[..., list[int]], audit_log: AuditLog
) -> None:
    first, second = append(2, request_id="same-request")
    a, b = audit_log.entry(OPERATOR, first), audit_log.entry(OPERATOR, second)
    assert a.entry["request_id"] == b.entry["request_id"] == "same-request"
    assert len(a.entry["salt"]) == 32 and a.entry["salt"] != b.entry["salt"]
    assert a.leaf_hash != b.leaf_hash
    # Format 2: the view opens the parts; their commitments rebuild the hashed entry.
    assert a.entry["v"] == 2
    assert a.leaf_hash == merkle.leaf_hash(canonical_json(entries.committed_from_view(a.entry)))


BAD_FIELDS: list[dict[str, object]] = [
    {"value": 123456},  # a raw value never rides along
    {"salt": "chosen"},  # the log picks the salt
    {"time": "yesterday"},
    {"time": True},
    {"departments": "tax"},
    {"features": ["tax.paid_12m", 5]},
    {"decision": ""},
]


def test_entries_of_the_wrong_shape_are_refused(audit_log: AuditLog, engine: Engine) -> None:
    missing = make_entry()
    del missing["operation"]
    for bad in [*({**make_entry(), **fields} for fields in BAD_FIELDS), missing]:
        with pytest.raises(EntryInvalid), write_session(engine) as s:
            audit_log.enqueue(s, bad)
    assert audit_log.status()["queue_depth"] == 0


def test_the_entry_commits_with_the_callers_transaction(
    audit_log: AuditLog, engine: Engine
) -> None:
    def request_failing_after_logging() -> None:
        with write_session(engine) as s:
            audit_log.enqueue(s, make_entry())
            raise RuntimeError("the request failed after logging")

    with pytest.raises(RuntimeError):
        request_failing_after_logging()
    assert audit_log.status()["queue_depth"] == 0


def test_each_viewer_sees_only_its_own_rows_with_index_cursors(
    append: Callable[..., list[int]], audit_log: AuditLog
) -> None:
    append(3)  # bank_a, ENTERPRISE, tax
    append(2, institution="bank_b", enterprise=OTHER_ENTERPRISE, departments=["utilities"])
    append(1, departments=["tax", "social_security"])

    def indexes(viewer: Viewer, after: int = -1, limit: int = 100) -> list[int]:
        return [v.index for v in audit_log.entries(viewer, after, limit)[0]]

    assert indexes(Viewer("department", "tax")) == [0, 1, 2, 5]
    assert indexes(Viewer("department", "social_security")) == [5]
    assert indexes(Viewer("department", "utilities")) == [3, 4]
    assert indexes(Viewer("enterprise", ENTERPRISE)) == [0, 1, 2, 5]
    assert indexes(Viewer("institution", "bank_b")) == [3, 4]
    assert indexes(Viewer("department", "court")) == []
    page, nxt = audit_log.entries(Viewer("department", "tax"), -1, 2)
    assert [v.index for v in page] == [0, 1] and nxt == 1
    page, nxt = audit_log.entries(Viewer("department", "tax"), 1, 2)
    assert [v.index for v in page] == [2, 5] and nxt == 5
    assert audit_log.entries(Viewer("department", "tax"), 5, 2) == ([], None)
    # Newest first, from an exclusive upper bound (the consoles' pages).
    page, nxt = audit_log.entries(Viewer("department", "tax"), -1, 3, before=2**63 - 1)
    assert [v.index for v in page] == [5, 2, 1] and nxt == 1
    page, nxt = audit_log.entries(Viewer("department", "tax"), -1, 3, before=nxt)
    assert [v.index for v in page] == [0] and nxt is None
    page, _ = audit_log.entries(Viewer("enterprise", ENTERPRISE), -1, 2, before=5)
    assert [v.index for v in page] == [2, 1]
    with pytest.raises(EntryNotFound):
        audit_log.entry(Viewer("department", "utilities"), 0)
    with pytest.raises(EntryNotFound):
        audit_log.inclusion_proof(Viewer("institution", "bank_b"), 0, None)
    assert audit_log.entry(Viewer("department", "utilities"), 3).entry["institution"] == "bank_b"


def test_proofs_verify_against_signed_checkpoints(
    append: Callable[..., list[int]], audit_log: AuditLog, clock: Clock
) -> None:
    append(13)
    first = audit_log.checkpoint(force=True)
    assert first is not None
    append(22)
    clock.t += 10
    second = audit_log.checkpoint()
    assert second is not None and second.checkpoint.size == 35
    log_key = Verifier.from_vkey(audit_log.vkey())
    opened = open_checkpoint(audit_log.latest_checkpoint().text(), [log_key]).checkpoint
    assert opened == second.checkpoint
    for index in (0, 12, 13, 34):
        size, proof = audit_log.inclusion_proof(OPERATOR, index, None)
        assert size == 35
        leaf = audit_log.entry(OPERATOR, index).leaf_hash
        assert merkle.verify_inclusion(index, size, leaf, proof, opened.root)
    size, proof = audit_log.inclusion_proof(OPERATOR, 5, 13)
    leaf = audit_log.entry(OPERATOR, 5).leaf_hash
    assert merkle.verify_inclusion(5, 13, leaf, proof, first.checkpoint.root)
    proof = audit_log.consistency_proof(13, 35)
    assert merkle.verify_consistency(13, 35, first.checkpoint.root, opened.root, proof)
    with pytest.raises(InvalidInput):
        audit_log.consistency_proof(13, 36)
    with pytest.raises(InvalidInput):
        audit_log.inclusion_proof(OPERATOR, 20, 13)


def test_checkpoints_are_signed_only_when_the_tree_grew_and_the_interval_passed(
    append: Callable[..., list[int]], audit_log: AuditLog, clock: Clock
) -> None:
    empty = audit_log.latest_checkpoint()
    assert empty.checkpoint.size == 0 and empty.checkpoint.root == merkle.EMPTY_ROOT
    assert audit_log.checkpoint() is None  # nothing new
    append(3)
    assert audit_log.checkpoint() is None  # too soon after the last one
    clock.t += audit_log.config.checkpoint_interval_seconds
    assert audit_log.checkpoint() is not None
    clock.t += 100
    assert audit_log.checkpoint() is None  # the tree did not grow
    status = audit_log.status()
    assert status["log_size"] == 3 and status["checkpoint_age_seconds"] == 100
    assert audit_log.checkpoint_at(0).checkpoint.size == 0
    with pytest.raises(CheckpointNotFound):
        audit_log.checkpoint_at(2)


def test_background_step_integrates_queued_entries_and_checkpoints(
    audit_log: AuditLog, engine: Engine, clock: Clock
) -> None:
    with write_session(engine) as s:
        for i in range(20):
            audit_log.enqueue(s, make_entry(i))
    clock.t += 7
    status = audit_log.status()
    assert status["queue_depth"] == 20 and status["queue_lag_seconds"] == 7
    audit_log.background_step()
    assert audit_log.status()["queue_depth"] == 0
    assert audit_log.latest_checkpoint().checkpoint.size == 20


def test_cosignatures_from_registered_witnesses_are_served_with_the_checkpoint(
    append: Callable[..., list[int]], audit_log: AuditLog
) -> None:
    append(4)
    cp = audit_log.checkpoint(force=True)
    assert cp is not None
    witness = Ed25519Signer.generate("xinyi-witness/tax")
    line = witness.cosign(cp.note.text, 1_800_000_100).line()
    with pytest.raises(WitnessUnknown):
        audit_log.add_cosignature(4, line)
    audit_log.register_witness("tax", witness.verifier(ALG_COSIGNATURE_V1).vkey)
    audit_log.register_witness("tax", witness.verifier(ALG_COSIGNATURE_V1).vkey)  # idempotent
    with pytest.raises(Conflict):
        audit_log.register_witness("court", witness.verifier(ALG_COSIGNATURE_V1).vkey)
    assert audit_log.add_cosignature(4, line) == "tax"
    assert audit_log.add_cosignature(4, line) == "tax"  # idempotent
    served = parse_note(audit_log.latest_checkpoint().text())
    assert [s.name for s in served.signatures] == [audit_log.origin, "xinyi-witness/tax"]
    assert witness.verifier(ALG_COSIGNATURE_V1).verify(served.text, served.signatures[1])
    forged = witness.cosign(cp.note.text.replace("\n4\n", "\n5\n"), 1_800_000_100).line()
    with pytest.raises(SignatureInvalid):
        audit_log.add_cosignature(4, forged)
    with pytest.raises(CheckpointNotFound):
        audit_log.add_cosignature(3, line)
    with pytest.raises(InvalidInput):
        audit_log.register_witness("tax", witness.verifier().vkey)  # a note key, not 0x04


def test_await_index_fails_closed_when_the_log_lock_is_held(
    audit_log: AuditLog, engine: Engine
) -> None:
    with write_session(engine) as s:
        qid = audit_log.enqueue(s, make_entry())
    held, release = threading.Event(), threading.Event()

    def hold_lock() -> None:
        with store.locked(engine, 5.0):
            held.set()
            release.wait(10)

    t = threading.Thread(target=hold_lock)
    t.start()
    try:
        assert held.wait(5)
        with pytest.raises(AuditUnavailable) as e:
            audit_log.await_index(qid, 0.3)
        assert e.value.code == "audit_unavailable"
    finally:
        release.set()
        t.join()
    assert audit_log.await_index(qid, 5.0) == 0


def test_await_index_of_an_entry_never_committed_fails(audit_log: AuditLog) -> None:
    with pytest.raises(AuditUnavailable):
        audit_log.await_index(987654, 1.0)


def test_enqueue_fails_closed_when_the_store_refuses_writes(
    audit_log: AuditLog, engine: Engine
) -> None:
    with engine.begin() as conn:
        if is_sqlite(engine):
            conn.execute(
                sa.text(
                    "CREATE TRIGGER refuse BEFORE INSERT ON audit_queue "
                    "BEGIN SELECT RAISE(ABORT, 'disk full'); END"
                )
            )
        else:
            conn.execute(
                sa.text(
                    "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
                    "$$ BEGIN RAISE EXCEPTION 'disk full'; END $$"
                )
            )
            conn.execute(
                sa.text(
                    "CREATE TRIGGER refuse BEFORE INSERT ON audit_queue "
                    "FOR EACH ROW EXECUTE FUNCTION refuse()"
                )
            )
    with pytest.raises(AuditUnavailable) as e, write_session(engine) as s:
        audit_log.enqueue(s, make_entry())
    assert e.value.code == "audit_unavailable"


def test_integration_is_serialized_between_threads(audit_log: AuditLog, engine: Engine) -> None:
    results: list[int] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        for i in range(n):
            with write_session(engine) as s:
                qid = audit_log.enqueue(s, make_entry(i))
            index = audit_log.await_index(qid, 10.0)
            with lock:
                results.append(index)

    threads = [threading.Thread(target=worker, args=(15,)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == list(range(60))
    report = audit_log.verify()
    assert report.ok, report.problems
