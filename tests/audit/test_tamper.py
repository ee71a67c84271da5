"""Tampering with the stored log is refused by the database, and when someone bypasses
that (dropping the triggers, as an operator with database access could), it is caught
by verification (naming the first bad index) and by a department's witness."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from audit import merkle, store
from audit.checkpoint import Checkpoint, sign_checkpoint
from audit.errors import EntryNotFound, LogInconsistent, SignatureInvalid
from audit.note import ALG_COSIGNATURE_V1, Ed25519Signer, b64
from audit.service import AuditLog
from audit.witness import WitnessState, run
from tests.audit.conftest import (
    ENTERPRISE,
    OTHER_ENTERPRISE,
    Clock,
    InProcessLog,
    allow_rewrites,
)

APPEND_ONLY = {  # table -> a WHERE clause naming an existing row
    "audit_entries": "idx = 1",
    "audit_entry_departments": "idx = 1",
    "audit_tree": "node = 1",
    "audit_checkpoints": "size = 20",
    "audit_cosignatures": "size = 40",
    "audit_openings": "queue_id = (SELECT min(queue_id) FROM audit_openings)",
}


@pytest.fixture
def grown(append: Callable[..., list[int]], audit_log: AuditLog, clock: Clock) -> AuditLog:
    """A log of 40 entries with checkpoints at 20 and 40."""
    append(20)
    audit_log.checkpoint(force=True)
    append(20)
    clock.t += 10
    audit_log.checkpoint()
    return audit_log


@pytest.fixture
def witness(grown: AuditLog) -> tuple[Ed25519Signer, WitnessState]:
    """A tax witness that cosigned the log at size 40."""
    signer = Ed25519Signer.generate("xinyi-witness/tax")
    grown.register_witness("tax", signer.verifier(ALG_COSIGNATURE_V1).vkey)
    state = run(WitnessState(log_vkey=grown.vkey()), InProcessLog(grown), signer, 1_800_000_000)
    assert state.size == 40
    return signer, state


def test_update_and_delete_are_refused_by_the_database(
    witness: tuple[Ed25519Signer, WitnessState], grown: AuditLog, engine: Engine
) -> None:
    for table, row in APPEND_ONLY.items():
        refused_to_rewrite(engine, table, row)
    assert grown.verify().ok


def refused_to_rewrite(engine: Engine, table: str, row: str) -> None:
    column = {
        "audit_entries": "time",
        "audit_entry_departments": "department",
        "audit_tree": "hash",
        "audit_checkpoints": "note",
        "audit_cosignatures": "signature",
        "audit_openings": "opening",
    }[table]
    value = {"time": 1, "department": "court", "hash": b"x" * 32, "opening": b"{}"}.get(
        column, "forged"
    )
    for statement, params in (
        (f"UPDATE {table} SET {column} = :v WHERE {row}", {"v": value}),
        (f"DELETE FROM {table} WHERE {row}", {}),
        (f"DELETE FROM {table}", {}),
    ):
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(sa.text(statement), params)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # roles: PostgreSQL only
def test_postgresql_role_may_only_insert_and_select(grown: AuditLog, engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("SET LOCAL ROLE xinyi_audit"))
        assert conn.execute(sa.text("SELECT count(*) FROM audit_entries")).scalar() == 40
        conn.execute(sa.text("INSERT INTO audit_queue (entry, enqueued_at) VALUES ('\\x7b7d', 0)"))
    allow_rewrites(engine, "audit_entries")  # the role is refused even without triggers

    def as_role(statement: str) -> None:
        with engine.begin() as conn:
            conn.execute(sa.text("SET LOCAL ROLE xinyi_audit"))
            conn.execute(sa.text(statement))

    for statement in (
        "UPDATE audit_entries SET time = 1",
        "DELETE FROM audit_entries",
        "TRUNCATE audit_entries",
        "UPDATE audit_tree SET hash = hash",
        "DELETE FROM audit_checkpoints",
    ):
        with pytest.raises(DBAPIError, match="permission denied"):
            as_role(statement)


def test_an_untampered_log_verifies(grown: AuditLog) -> None:
    report = grown.verify()
    assert report.ok, report.problems
    assert (report.size, report.entries_checked, report.checkpoints_checked) == (40, 40, 2)
    assert report.root == grown.latest_checkpoint().checkpoint.root


def test_a_changed_entry_is_named_by_verify_and_caught_by_the_witness(
    witness: tuple[Ed25519Signer, WitnessState],
    grown: AuditLog,
    engine: Engine,
    append: Callable[..., list[int]],
    clock: Clock,
) -> None:
    signer, state = witness
    append(5)
    clock.t += 10
    grown.checkpoint()
    allow_rewrites(engine, "audit_entries")
    with engine.begin() as conn:
        raw = conn.execute(sa.text("SELECT entry FROM audit_entries WHERE idx = 42")).scalar()
        forged = bytes(raw or b"").replace(b'"allowed"', b'"grant_revoked"')
        conn.execute(sa.text("UPDATE audit_entries SET entry = :e WHERE idx = 42"), {"e": forged})
    report = grown.verify()
    assert not report.ok and report.first_bad_index == 42
    assert "entry 42" in report.problems[0].message
    with pytest.raises(LogInconsistent, match="do not hash to the root"):
        run(state, InProcessLog(grown), signer, 1_800_000_100)


def test_a_changed_old_entry_is_caught_by_a_full_witness_audit(
    witness: tuple[Ed25519Signer, WitnessState], grown: AuditLog, engine: Engine
) -> None:
    signer, state = witness
    allow_rewrites(engine, "audit_entries")
    with engine.begin() as conn:
        raw = conn.execute(sa.text("SELECT entry FROM audit_entries WHERE idx = 7")).scalar()
        conn.execute(
            sa.text("UPDATE audit_entries SET entry = :e WHERE idx = 7"),
            {"e": bytes(raw or b"").replace(b"bank_a", b"bank_z")},
        )
    assert grown.verify().first_bad_index == 7
    with pytest.raises(LogInconsistent, match="history was rewritten"):
        run(state, InProcessLog(grown), signer, 1_800_000_100, full=True)


def test_a_deleted_entry_is_named_by_verify_and_caught_by_the_witness(
    witness: tuple[Ed25519Signer, WitnessState],
    grown: AuditLog,
    engine: Engine,
    append: Callable[..., list[int]],
    clock: Clock,
) -> None:
    signer, state = witness
    append(5)
    clock.t += 10
    grown.checkpoint()
    allow_rewrites(engine, "audit_entries")
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM audit_entries WHERE idx = 41"))
    report = grown.verify()
    assert report.first_bad_index == 41
    assert "entry 41 is missing" in report.problems[0].message
    with pytest.raises(LogInconsistent, match="entry 41 is missing"):
        run(state, InProcessLog(grown), signer, 1_800_000_100)


def test_swapped_entries_are_named_by_verify_and_caught_by_the_witness(
    witness: tuple[Ed25519Signer, WitnessState],
    grown: AuditLog,
    engine: Engine,
    append: Callable[..., list[int]],
    clock: Clock,
) -> None:
    signer, state = witness
    append(6)
    clock.t += 10
    grown.checkpoint()
    allow_rewrites(engine, "audit_entries")
    with engine.begin() as conn:
        a = conn.execute(sa.text("SELECT entry FROM audit_entries WHERE idx = 43")).scalar()
        b = conn.execute(sa.text("SELECT entry FROM audit_entries WHERE idx = 45")).scalar()
        conn.execute(sa.text("UPDATE audit_entries SET entry = :e WHERE idx = 43"), {"e": b})
        conn.execute(sa.text("UPDATE audit_entries SET entry = :e WHERE idx = 45"), {"e": a})
    assert grown.verify().first_bad_index == 43
    with pytest.raises(LogInconsistent):
        run(state, InProcessLog(grown), signer, 1_800_000_100)


def test_a_rewritten_checkpoint_is_caught_by_verify_and_by_the_witness(
    witness: tuple[Ed25519Signer, WitnessState],
    grown: AuditLog,
    engine: Engine,
    append: Callable[..., list[int]],
    clock: Clock,
) -> None:
    signer, state = witness
    append(4)
    clock.t += 10
    latest = grown.checkpoint()
    assert latest is not None
    allow_rewrites(engine, "audit_checkpoints")
    forged_root = b"\x07" * 32
    text = latest.text().replace(b64(latest.checkpoint.root), b64(forged_root))
    with engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE audit_checkpoints SET note = :n, root = :r WHERE size = 44"),
            {"n": text, "r": forged_root},
        )
    report = grown.verify()
    assert any("checkpoint of size 44" in p.message for p in report.problems)
    with pytest.raises(SignatureInvalid):
        run(state, InProcessLog(grown), signer, 1_800_000_100)


def test_a_re_signed_fork_is_caught_by_verify_and_by_the_witness(
    witness: tuple[Ed25519Signer, WitnessState],
    grown: AuditLog,
    engine: Engine,
    log_signer: Ed25519Signer,
) -> None:
    """Even the holder of the log key cannot rewrite history unnoticed."""
    signer, state = witness
    allow_rewrites(engine, "audit_checkpoints")
    fork = sign_checkpoint(Checkpoint(grown.origin, 40, b"\x05" * 32), log_signer)
    with engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE audit_checkpoints SET note = :n, root = :r WHERE size = 40"),
            {"n": fork.text(), "r": b"\x05" * 32},
        )
    report = grown.verify()
    assert report.first_bad_index == 20  # checkpoint 20 still matches: the change is after it
    with pytest.raises(LogInconsistent, match="fork"):
        run(state, InProcessLog(grown), signer, 1_800_000_100)


def test_a_rollback_is_caught_by_verify_with_an_external_checkpoint_and_by_the_witness(
    witness: tuple[Ed25519Signer, WitnessState], grown: AuditLog, engine: Engine
) -> None:
    signer, state = witness
    for table in (
        "audit_entries",
        "audit_checkpoints",
        "audit_cosignatures",
        "audit_entry_departments",
    ):
        allow_rewrites(engine, table)
    # Roll the whole log back to 20 entries, consistently.
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM audit_cosignatures WHERE size > 20"))
        conn.execute(sa.text("DELETE FROM audit_checkpoints WHERE size > 20"))
        conn.execute(sa.text("DELETE FROM audit_entries WHERE idx >= 20"))
        conn.execute(sa.text("DELETE FROM audit_entry_departments WHERE idx >= 20"))
        root20 = merkle.root_at(20, store.node_reader(conn))
        conn.execute(
            sa.text("UPDATE audit_state SET size = 20, root = :r WHERE id = 1"), {"r": root20}
        )
    assert grown.verify().ok  # internally consistent...
    report = grown.verify(external=state.to_json())  # ...but not with what a witness kept
    assert not report.ok and report.first_bad_index == 20
    assert "entries 20..39 are missing" in report.problems[0].message
    assert report.missing_from == 20
    with pytest.raises(LogInconsistent, match="rollback"):
        run(state, InProcessLog(grown), signer, 1_800_000_100)


def test_a_witness_refuses_a_checkpoint_from_another_key(
    witness: tuple[Ed25519Signer, WitnessState], grown: AuditLog
) -> None:
    signer, state = witness
    impostor = Ed25519Signer.generate(grown.origin)
    fake = sign_checkpoint(Checkpoint(grown.origin, 50, b"\x01" * 32), impostor)

    class Impostor(InProcessLog):
        def checkpoint(self) -> str:
            return fake.text()

    with pytest.raises(SignatureInvalid):
        run(state, Impostor(grown), signer, 1_800_000_100)


@pytest.mark.parametrize("chunk_level", [0, 2, 3, 14])
def test_verification_reads_in_any_chunk_size_and_checks_every_node(
    grown: AuditLog, chunk_level: int
) -> None:
    report = grown.verify(chunk_level=chunk_level)
    assert report.ok, report.problems
    # 40 leaves have 40 + 20 + 10 + 5 + 2 + 1 complete subtrees, each checked once.
    assert report.nodes_checked == 78
    assert report.root == grown.latest_checkpoint().checkpoint.root


@pytest.mark.parametrize("chunk_level", [2, 14])
def test_a_rewritten_tree_node_is_named_by_the_first_leaf_it_covers(
    grown: AuditLog, engine: Engine, chunk_level: int
) -> None:
    allow_rewrites(engine, "audit_tree")
    with engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE audit_tree SET hash = :h WHERE node = :n"),
            {"h": b"\x09" * 32, "n": store.node_key(4, 1)},
        )
    report = grown.verify(chunk_level=chunk_level)
    assert report.first_bad_index == 16
    assert "tree node (level 4, index 1)" in report.problems[0].message


def test_a_changed_entry_is_named_whatever_the_chunk_size(grown: AuditLog, engine: Engine) -> None:
    allow_rewrites(engine, "audit_entries")
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM audit_entries WHERE idx = 29"))
    for chunk_level in (0, 2, 14):
        assert grown.verify(chunk_level=chunk_level).first_bad_index == 29


# Index columns: who sees an entry is decided by them, so verify checks them too ------------


def _viewer_indices(log: AuditLog, kind: str, viewer: str) -> list[int]:
    views, _ = log.entries(store.Viewer(kind, viewer), -1, 1000)
    return [v.index for v in views]


def test_an_edited_enterprise_column_fails_verify_and_shows_no_one_the_entry(
    grown: AuditLog, engine: Engine
) -> None:
    """An insider moves entry 7 to another enterprise's index: no hashed byte changes,
    the entry vanishes from its enterprise's view. verify names index 7 and the column;
    the other enterprise is not shown an entry its canonical bytes do not give it."""
    before = _viewer_indices(grown, "enterprise", ENTERPRISE)
    assert 7 in before
    allow_rewrites(engine, "audit_entries")
    with engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE audit_entries SET enterprise = :e WHERE idx = 7"),
            {"e": OTHER_ENTERPRISE},
        )
    report = grown.verify()
    assert not report.ok
    assert report.first_bad_index == 7
    assert any("'enterprise'" in p.message and p.index == 7 for p in report.problems)
    assert 7 not in _viewer_indices(grown, "enterprise", OTHER_ENTERPRISE)
    with pytest.raises(EntryNotFound):
        grown.entry(store.Viewer("enterprise", OTHER_ENTERPRISE), 7)
    # What the enterprise is shown is only ever what the canonical entries give it.
    assert set(_viewer_indices(grown, "enterprise", ENTERPRISE)) <= set(before)


@pytest.mark.parametrize(
    ("column", "value"),
    [("institution", "bank_z"), ("time", 1), ("institution", None), ("enterprise", None)],
)
def test_every_index_column_is_checked(
    grown: AuditLog, engine: Engine, column: str, value: object
) -> None:
    allow_rewrites(engine, "audit_entries")
    with engine.begin() as conn:
        conn.execute(
            sa.text(f"UPDATE audit_entries SET {column} = :v WHERE idx = 23"), {"v": value}
        )
    report = grown.verify()
    assert report.first_bad_index == 23, report.problems
    assert f"'{column}'" in report.problems[0].message


def test_edited_department_rows_fail_verify(grown: AuditLog, engine: Engine) -> None:
    allow_rewrites(engine, "audit_entry_departments")
    with engine.begin() as conn:  # entry 12's department row now points at another one
        conn.execute(
            sa.text("UPDATE audit_entry_departments SET department = 'court' WHERE idx = 12")
        )
    report = grown.verify()
    assert report.first_bad_index == 12
    messages = " ".join(p.message for p in report.problems)
    assert "lacks its department 'tax'" in messages and "'court'" in messages
    assert 12 not in _viewer_indices(grown, "department", "court")


def test_a_deleted_or_added_department_row_fails_verify(grown: AuditLog, engine: Engine) -> None:
    allow_rewrites(engine, "audit_entry_departments")
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM audit_entry_departments WHERE idx = 30"))
    assert grown.verify().first_bad_index == 30
    with engine.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO audit_entry_departments (department, idx) VALUES ('tax', 30)")
        )
        conn.execute(
            sa.text("INSERT INTO audit_entry_departments (department, idx) VALUES ('court', 5)")
        )
    report = grown.verify()
    assert report.first_bad_index == 5
    assert "'court'" in report.problems[0].message
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM audit_entry_departments WHERE department = 'court'"))
        conn.execute(
            sa.text("INSERT INTO audit_entry_departments (department, idx) VALUES ('tax', 999)")
        )
    assert grown.verify().first_bad_index == 999


@pytest.mark.parametrize("chunk_level", [0, 2, 3, 14])
def test_index_tampering_is_named_whatever_the_chunk_size(
    grown: AuditLog, engine: Engine, chunk_level: int
) -> None:
    """The index is checked chunk by chunk from the rows the hashing reads: a column edit
    and a department row moved to another entry (the row count unchanged) are named at
    their own index in every chunk, not only in the first."""
    allow_rewrites(engine, "audit_entries")
    allow_rewrites(engine, "audit_entry_departments")
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE audit_entries SET institution = 'bank_z' WHERE idx = 23"))
        conn.execute(sa.text("DELETE FROM audit_entry_departments WHERE idx = 30"))
        conn.execute(
            sa.text("INSERT INTO audit_entry_departments (department, idx) VALUES ('court', 31)")
        )
    report = grown.verify(chunk_level=chunk_level)
    assert report.first_bad_index == 23, report.problems
    named = {(p.index, p.message) for p in report.problems}
    assert (
        23,
        "entry 23: index column 'institution' of audit_entries differs from the entry",
    ) in named
    assert (30, "entry 30: audit_entry_departments lacks its department 'tax'") in named
    assert any(i == 31 and "'court'" in m for i, m in named)
