"""A department's witness status, as its console shows it.

What the page states, and how it knows:
- the last checkpoint a witness key of the department cosigned: the newest stored
  cosignature of one of its registered witness keys, re-verified here against that key
  and the stored checkpoint note (so a row edited after the fact does not count);
- the log's current checkpoint, its signature checked with the log's key;
- a FAILURE when the current checkpoint does not extend the last cosigned one: smaller
  (rollback), or no valid RFC 9162 consistency proof from the stored tree between the
  two roots (the log was rewritten or forked), or a cosignature or checkpoint that no
  longer verifies.

The witness itself runs at the department (``xinyi audit witness``) and keeps its own
state; this page is the gateway's view of the same facts, recomputed on each visit.
"""

from __future__ import annotations

from dataclasses import dataclass

from audit import merkle
from audit import store as audit_store
from audit.checkpoint import Checkpoint, open_checkpoint
from audit.note import Verifier, b64, cosignature_time, parse_note
from common.db import read_session
from common.errors import Error
from gateway.services import Services


@dataclass(frozen=True)
class CheckpointView:
    size: int
    root: str  # base64
    at: float
    note: str


@dataclass(frozen=True)
class Cosigned:
    witness: str
    size: int
    root: str  # base64
    at: int  # the cosignature's own timestamp (Unix seconds)


@dataclass(frozen=True)
class Failure:
    size: int
    detail: str


@dataclass(frozen=True)
class WitnessStatus:
    last: Cosigned | None
    current: CheckpointView | None
    failures: tuple[Failure, ...]

    @property
    def behind(self) -> int:
        if self.last is None or self.current is None:
            return 0
        return max(self.current.size - self.last.size, 0)


def for_department(svc: Services, department: str) -> WitnessStatus:
    with read_session(svc.engine) as s:
        row = audit_store.latest_cosignature_of(s, department)
        latest = audit_store.latest_checkpoint(s)
        cosigned_note = audit_store.checkpoint_at(s, int(row["size"])) if row is not None else None

    failures: list[Failure] = []
    current: CheckpointView | None = None
    current_root: bytes | None = None
    if latest is not None:
        current = CheckpointView(latest.size, b64(latest.root), latest.created_at, latest.note)
        try:
            opened = open_checkpoint(latest.note, [svc.audit.verifier()])
            current_root = opened.checkpoint.root
            if opened.checkpoint.size != latest.size or current_root != latest.root:
                failures.append(Failure(latest.size, "the stored checkpoint row and note differ"))
        except Error as e:
            failures.append(Failure(latest.size, f"current checkpoint: {e.code}"))

    if row is None:
        return WitnessStatus(None, current, tuple(failures))

    size = int(row["size"])
    if cosigned_note is None:
        failures.append(Failure(size, "the checkpoint the department cosigned is gone"))
        return WitnessStatus(None, current, tuple(failures))
    note = parse_note(cosigned_note.note)
    sig = parse_note("x\n\n" + str(row["signature"]).rstrip("\n") + "\n").signatures[0]
    cosigned = Checkpoint.parse(note.text)
    last = Cosigned(str(row["witness"]), size, b64(cosigned.root), cosignature_time(sig))
    if not Verifier.from_vkey(str(row["vkey"])).verify(note.text, sig):
        failures.append(Failure(size, "the stored cosignature does not verify"))
    if current is not None and current_root is not None:
        if current.size < size:
            failures.append(Failure(current.size, f"rollback: {current.size} < {size}"))
        else:
            try:
                proof = svc.audit.consistency_proof(size, current.size)
            except Error as e:
                failures.append(Failure(current.size, f"consistency proof: {e.code}"))
            else:
                if not merkle.verify_consistency(
                    size, current.size, cosigned.root, current_root, proof
                ):
                    failures.append(
                        Failure(current.size, f"no consistency from {size} to {current.size}")
                    )
    return WitnessStatus(last, current, tuple(failures))
