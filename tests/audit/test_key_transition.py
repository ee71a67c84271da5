"""A witness follows a checkpoint-key rotation only through a transition statement
signed by the key it pinned (and by the new key), and never an unsigned or otherwise
signed key change; witnessing continues with no edit of its state."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import Engine

from audit.checkpoint import Checkpoint, KeyTransition, sign_checkpoint, sign_transition
from audit.errors import NoteInvalid, SignatureInvalid
from audit.note import ALG_COSIGNATURE_V1, Ed25519Signer, Note, parse_note
from audit.service import AuditLog
from audit.witness import WitnessState, accept_transition, run
from common.settings import Settings
from tests.audit.conftest import Clock, InProcessLog

NOW = 1_800_000_000


@pytest.fixture
def witness(audit_log: AuditLog) -> Ed25519Signer:
    signer = Ed25519Signer.generate("xinyi-witness/tax")
    audit_log.register_witness("tax", signer.verifier(ALG_COSIGNATURE_V1).vkey)
    return signer


def transition(old: Ed25519Signer, new: Ed25519Signer, size: int, *signers: Ed25519Signer) -> str:
    statement = KeyTransition(old.name, old.verifier().vkey, new.verifier().vkey, size)
    if not signers:
        return sign_transition(statement, old, new)
    text = statement.body()
    return Note(text, tuple(s.sign_note(text) for s in signers)).render()


@pytest.fixture
def rotated(
    engine: Engine,
    audit_settings: Settings,
    audit_log: AuditLog,
    log_signer: Ed25519Signer,
    append: Callable[..., list[int]],
    witness: Ed25519Signer,
    clock: Clock,
) -> tuple[WitnessState, AuditLog, Ed25519Signer, str]:
    """The witness cosigned 20 entries under the old key; the log then rotated its key
    at size 20 and grew to 30 under the new one."""
    append(20)
    audit_log.checkpoint(force=True)
    state = run(WitnessState(log_vkey=audit_log.vkey()), InProcessLog(audit_log), witness, NOW)
    assert state.size == 20
    new_key = Ed25519Signer.generate(log_signer.name)
    statement = transition(log_signer, new_key, 20)
    rotated_log = AuditLog(engine, audit_settings, new_key, clock=clock)
    append(10)
    clock.t += 10
    assert rotated_log.checkpoint(force=True) is not None
    return state, rotated_log, new_key, statement


def test_the_old_key_refuses_the_new_checkpoints_without_a_statement(
    rotated: tuple[WitnessState, AuditLog, Ed25519Signer, str], witness: Ed25519Signer
) -> None:
    state, log, _, _ = rotated
    with pytest.raises(SignatureInvalid):
        run(state, InProcessLog(log), witness, NOW + 60)
    with pytest.raises(SignatureInvalid):
        run(state, InProcessLog(log), witness, NOW + 60, transitions=list)


def test_a_signed_transition_is_followed_and_witnessing_continues(
    rotated: tuple[WitnessState, AuditLog, Ed25519Signer, str],
    witness: Ed25519Signer,
    append: Callable[..., list[int]],
    clock: Clock,
) -> None:
    state, log, new_key, statement = rotated
    after = run(state, InProcessLog(log), witness, NOW + 60, transitions=lambda: [statement])
    assert after.size == 30 and after.log_vkey == new_key.verifier().vkey
    # The state file round-trips, and the next rounds need nothing more.
    again = WitnessState.from_json(after.to_json())
    append(5)
    clock.t += 10
    log.checkpoint(force=True)
    assert run(again, InProcessLog(log), witness, NOW + 120).size == 35
    # The same by hand (--accept-transition): the statement is checked at once.
    by_hand = accept_transition(state, statement)
    assert run(by_hand, InProcessLog(log), witness, NOW + 180).size == 35


def test_unsigned_and_wrongly_signed_key_changes_are_refused(
    rotated: tuple[WitnessState, AuditLog, Ed25519Signer, str],
    log_signer: Ed25519Signer,
    witness: Ed25519Signer,
) -> None:
    state, log, new_key, _ = rotated
    intruder = Ed25519Signer.generate(log_signer.name)
    bad = {
        "unsigned": KeyTransition(
            log_signer.name, log_signer.verifier().vkey, new_key.verifier().vkey, 20
        ).body(),
        "only the new key": transition(log_signer, new_key, 20, new_key),
        "only the old key": transition(log_signer, new_key, 20, log_signer),
        "another key as the old one": transition(intruder, new_key, 20),
        "claims the pinned key, signed by another": transition(
            log_signer, new_key, 20, intruder, new_key
        ),
    }
    for text in bad.values():
        with pytest.raises((SignatureInvalid, NoteInvalid)):
            accept_transition(state, text)
        with pytest.raises((SignatureInvalid, NoteInvalid)):
            run(state, InProcessLog(log), witness, NOW + 60, transitions=[text].copy)


def test_each_key_is_trusted_only_on_its_side_of_the_transition_size(
    rotated: tuple[WitnessState, AuditLog, Ed25519Signer, str],
    log_signer: Ed25519Signer,
    witness: Ed25519Signer,
) -> None:
    state, log, new_key, statement = rotated
    moved = accept_transition(state, statement)
    latest = log.latest_checkpoint().checkpoint

    class Serving(InProcessLog):
        note = ""

        def checkpoint(self) -> str:
            return self.note

    served = Serving(log)
    # The old key signing past the transition (a stolen old key) is refused.
    served.note = sign_checkpoint(latest, log_signer).text()
    with pytest.raises(SignatureInvalid):
        run(moved, served, witness, NOW + 60)
    # The new key signing below the transition size is refused too.
    early = Ed25519Signer.generate(log_signer.name)
    chained = accept_transition(moved, transition(new_key, early, 40))
    served.note = sign_checkpoint(latest, early).text()
    with pytest.raises(SignatureInvalid):
        run(chained, served, witness, NOW + 60)
    # A checkpoint that is not new (nothing grew) still verifies under the old key.
    served.note = sign_checkpoint(Checkpoint(latest.origin, 20, state.root), log_signer).text()
    assert run(moved, served, witness, NOW + 60).size == 20


def test_a_chain_of_rotations_is_followed_in_order(
    rotated: tuple[WitnessState, AuditLog, Ed25519Signer, str],
    engine: Engine,
    audit_settings: Settings,
    append: Callable[..., list[int]],
    witness: Ed25519Signer,
    clock: Clock,
) -> None:
    state, _, new_key, statement = rotated
    third = Ed25519Signer.generate(new_key.name)
    second = transition(new_key, third, 30)
    log3 = AuditLog(engine, audit_settings, third, clock=clock)
    append(3)
    clock.t += 10
    log3.checkpoint(force=True)
    after = run(
        state, InProcessLog(log3), witness, NOW + 60, transitions=lambda: [second, statement]
    )
    assert after.size == 33 and after.log_vkey == third.verifier().vkey
    assert parse_note(second).text.startswith("xinyi-log-key-transition/v1\n")
