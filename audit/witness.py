"""A department's witness: what it remembers and what it checks (pure).

Invariants:
- the state (kept in a file by the department) holds the log's verifier key, the last
  checkpoint the witness cosigned, and the right frontier of every leaf it audited, so
  it never needs the log's word for what it saw before;
- a new checkpoint is accepted only if its signature verifies under the pinned key, it
  is not smaller than the last one (rollback), has the same root at the same size
  (fork), has a valid RFC 9162 consistency proof from the last one, and the leaf hashes
  the log serves for the new entries extend the audited frontier to exactly its root;
- a refused checkpoint leaves the state unchanged;
- the pinned log key changes only through a key transition statement signed by the
  pinned key itself and by the new key (``audit.checkpoint.KeyTransition``); the old key
  is then trusted only for checkpoints smaller than or equal to the transition's size,
  the new one only from that size on. An unsigned or otherwise signed key change is
  refused, never applied.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from audit import merkle
from audit.checkpoint import (
    Checkpoint,
    KeyTransition,
    SignedCheckpoint,
    open_checkpoint,
    open_transition,
)
from audit.errors import LogInconsistent, NoteInvalid, SignatureInvalid
from audit.note import Ed25519Signer, Verifier, b64, parse_note, unb64

STATE_VERSION = 1


@dataclass(frozen=True)
class WitnessState:
    log_vkey: str
    size: int = 0
    root: bytes = merkle.EMPTY_ROOT
    frontier: tuple[bytes, ...] = ()
    checkpoint: str | None = None  # the last cosigned checkpoint note
    cosigned_at: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def log_key(self) -> Verifier:
        return Verifier.from_vkey(self.log_vkey)

    def to_json(self) -> str:
        return json.dumps(
            {
                "version": STATE_VERSION,
                "log_vkey": self.log_vkey,
                "size": self.size,
                "root": b64(self.root),
                "frontier": [b64(h) for h in self.frontier],
                "checkpoint": self.checkpoint,
                "cosigned_at": self.cosigned_at,
                **self.extra,
            },
            indent=2,
            ensure_ascii=False,
        )

    @classmethod
    def from_json(cls, text: str) -> WitnessState:
        try:
            raw = json.loads(text)
        except ValueError as e:
            raise NoteInvalid("the witness state file is not JSON") from e
        if not isinstance(raw, dict) or raw.get("version") != STATE_VERSION:
            raise NoteInvalid(f"the witness state file is not version {STATE_VERSION}")
        try:
            known = {"version", "log_vkey", "size", "root", "frontier", "checkpoint", "cosigned_at"}
            state = cls(
                log_vkey=str(raw["log_vkey"]),
                size=int(raw["size"]),
                root=unb64(str(raw["root"]), "the state root"),
                frontier=tuple(unb64(str(h), "a frontier hash") for h in raw["frontier"]),
                checkpoint=raw.get("checkpoint"),
                cosigned_at=raw.get("cosigned_at"),
                extra={k: v for k, v in raw.items() if k not in known},
            )
        except (KeyError, TypeError, ValueError) as e:
            raise NoteInvalid(f"the witness state file is incomplete: {e}") from e
        state.log_key  # noqa: B018 -- validates the pinned vkey now, not at first use
        if len(state.frontier) != len(merkle.subtrees(0, state.size)):
            raise NoteInvalid("the witness state's frontier does not fit its size")
        if merkle.fold(list(state.frontier)) != state.root:
            raise NoteInvalid("the witness state's frontier does not hash to its root")
        return state


def log_keys_for(state: WitnessState, size: int) -> list[Verifier]:
    """The log keys this witness trusts for a checkpoint of ``size`` entries: the pinned
    key (from the size its transition named), and each key it replaced up to the size
    it was replaced at."""
    keys = []
    if size >= int(state.extra.get("log_key_from_size", 0)):
        keys.append(state.log_key)
    for retired in state.extra.get("retired_log_keys", []):
        if size <= int(retired["until_size"]):
            keys.append(Verifier.from_vkey(str(retired["vkey"])))
    return keys


def accept_transition(state: WitnessState, statement: str | bytes) -> WitnessState:
    """The state after following a key transition away from the pinned key (see the
    module invariants); raises SignatureInvalid for any other key change."""
    transition: KeyTransition = open_transition(statement, state.log_key)
    retired = [
        *state.extra.get("retired_log_keys", []),
        {"vkey": state.log_vkey, "until_size": transition.from_size},
    ]
    extra = {**state.extra, "retired_log_keys": retired}
    extra["log_key_from_size"] = transition.from_size
    return WitnessState(
        log_vkey=transition.new_vkey,
        size=state.size,
        root=state.root,
        frontier=state.frontier,
        checkpoint=state.checkpoint,
        cosigned_at=state.cosigned_at,
        extra=extra,
    )


def follow_transitions(state: WitnessState, statements: Sequence[str]) -> WitnessState:
    """Apply, in chain order, every statement that moves on from the pinned key (a
    witness offline across two rotations needs both); statements that do not start
    from the pinned key are ignored, a bad signature on one that does is refused."""
    pending = list(statements)
    while True:
        for text in pending:
            try:
                old = KeyTransition.parse(parse_note(text).text).old_vkey
            except NoteInvalid:
                continue
            if Verifier.from_vkey(old) == state.log_key:
                state = accept_transition(state, text)
                pending.remove(text)
                break
        else:
            return state


def open_new(state: WitnessState, note: str | bytes) -> SignedCheckpoint:
    """Check the log's signature and refuse rollbacks and same-size forks."""
    size = Checkpoint.parse(parse_note(note).text).size
    signed = open_checkpoint(note, log_keys_for(state, size))
    new = signed.checkpoint
    if new.size < state.size:
        raise LogInconsistent(
            f"rollback: the log now claims {new.size} entries, "
            f"but this witness cosigned {state.size}"
        )
    if new.size == state.size and new.root != state.root:
        raise LogInconsistent(
            f"fork: two different roots for size {new.size} "
            f"({b64(state.root)} cosigned, {b64(new.root)} now)"
        )
    return signed


def check_consistency(
    state: WitnessState, signed: SignedCheckpoint, proof: Sequence[bytes]
) -> None:
    new = signed.checkpoint
    if state.size == 0 or new.size == state.size:
        return
    if not merkle.verify_consistency(state.size, new.size, state.root, new.root, proof):
        raise LogInconsistent(
            f"fork: the checkpoint of size {new.size} is not consistent with the one of "
            f"size {state.size} this witness cosigned"
        )


def audit_leaves(
    state: WitnessState, signed: SignedCheckpoint, leaves: Sequence[bytes]
) -> tuple[bytes, ...]:
    """Extend the audited frontier by the leaf hashes of entries [state.size, new size);
    they must give exactly the signed root. Returns the new frontier."""
    new = signed.checkpoint
    if len(leaves) != new.size - state.size:
        raise LogInconsistent(
            f"the log served {len(leaves)} leaf hashes for entries {state.size}..{new.size - 1}"
        )
    _, frontier = merkle.append_leaves(state.size, list(state.frontier), leaves)
    if merkle.fold(frontier) != new.root:
        raise LogInconsistent(
            f"the entries {state.size}..{new.size - 1} the log serves do not hash to the "
            f"root it signed for size {new.size}: an entry was changed, removed or reordered"
        )
    return tuple(frontier)


def audit_all_leaves(
    state: WitnessState, signed: SignedCheckpoint, leaves: Sequence[bytes]
) -> tuple[bytes, ...]:
    """Re-audit every entry from index 0: the prefix must still give the root this
    witness cosigned, the whole the new signed root."""
    new = signed.checkpoint
    if len(leaves) != new.size:
        raise LogInconsistent(f"the log served {len(leaves)} leaf hashes for {new.size} entries")
    _, old = merkle.append_leaves(0, [], leaves[: state.size])
    if merkle.fold(old) != state.root:
        raise LogInconsistent(
            f"the entries 0..{state.size - 1} no longer hash to the root this witness "
            f"cosigned for size {state.size}: history was rewritten"
        )
    _, frontier = merkle.append_leaves(state.size, old, leaves[state.size :])
    if merkle.fold(frontier) != new.root:
        raise LogInconsistent(
            f"the entries {state.size}..{new.size - 1} the log serves do not hash to the "
            f"root it signed for size {new.size}"
        )
    return tuple(frontier)


def advance(
    state: WitnessState, signed: SignedCheckpoint, frontier: tuple[bytes, ...], now: int
) -> WitnessState:
    """The state after cosigning ``signed`` at ``now``."""
    return WitnessState(
        log_vkey=state.log_vkey,
        size=signed.checkpoint.size,
        root=signed.checkpoint.root,
        frontier=frontier,
        checkpoint=signed.note.render(),
        cosigned_at=now,
        extra=state.extra,
    )


class LogClient(Protocol):
    """What a witness asks of the log (over HTTP in ``xinyi audit witness``)."""

    def checkpoint(self) -> str: ...

    def consistency(self, first: int, second: int) -> list[bytes]: ...

    def leaves(self, start: int, end: int) -> list[bytes]: ...

    def cosign(self, size: int, line: str) -> None: ...


def run(
    state: WitnessState,
    log: LogClient,
    signer: Ed25519Signer,
    now: int,
    *,
    full: bool = False,
    page: int = 65536,
    transitions: Callable[[], Sequence[str]] | None = None,
) -> WitnessState:
    """One witness round: check the newest checkpoint against ``state`` and cosign it.
    Raises LogInconsistent (or SignatureInvalid) and leaves ``state`` as it was when
    the log misbehaves; returns the new state otherwise. When the checkpoint is not
    signed by a trusted key, the log's signed key transitions (``transitions``) are
    followed first, if they start from the pinned key."""
    note = log.checkpoint()
    try:
        signed = open_new(state, note)
    except SignatureInvalid:
        if transitions is None:
            raise
        moved = follow_transitions(state, transitions())
        if moved.log_vkey == state.log_vkey:
            raise
        state = moved
        signed = open_new(state, note)
    new = signed.checkpoint
    if 0 < state.size < new.size:
        check_consistency(state, signed, log.consistency(state.size, new.size))
    start = 0 if full else state.size
    leaves: list[bytes] = []
    for begin in range(start, new.size, page):
        leaves.extend(log.leaves(begin, min(begin + page, new.size)))
    if full:
        frontier = audit_all_leaves(state, signed, leaves)
    else:
        frontier = audit_leaves(state, signed, leaves)
    log.cosign(new.size, signer.cosign(signed.note.text, now).line())
    return advance(state, signed, frontier, now)
