"""The audit log service: enqueue, sequence, checkpoint, query, prove, cosign.

Invariants:
- ``enqueue`` writes the salted, canonical entry in the caller's transaction, so the
  access and its entry commit together or not at all;
- ``await_index`` returns only once the entry has its final index; whoever needs an
  index and finds no sequencer at work integrates the pending batch itself (in-process
  threads coordinate on a condition, processes on the database lock), so one process
  or many need no extra daemon;
- a checkpoint is signed only under the log lock, only for a size larger than the last
  signed one, with the root read back from the stored tree and checked against the
  state row (a mismatch refuses to sign);
- a cosignature is stored only when it verifies under a key registered for a
  department and names a checkpoint the log signed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from audit import entry as entries
from audit import merkle, store
from audit.checkpoint import (
    Checkpoint,
    CheckpointSigner,
    SignedCheckpoint,
    open_checkpoint,
    sign_checkpoint,
    signer_verifier,
)
from audit.errors import (
    AuditUnavailable,
    CheckpointNotFound,
    EntryNotFound,
    LogInconsistent,
    NoteInvalid,
    SignatureInvalid,
    WitnessUnknown,
)
from audit.note import ALG_COSIGNATURE_V1, Verifier, b64, cosignature_time, parse_note
from audit.store import Viewer
from audit.verify import CHUNK_LEVEL, Report, verify_log
from common.db import read_connection, write_session
from common.errors import ConfigError, Conflict, InvalidInput
from common.logging import get_logger
from common.settings import Settings

log = get_logger("audit")

MAX_PAGE = 1000
MAX_LEAVES = 65536
RECENT_MAX = 100_000
CATCH_UP_MAX = 4096  # a larger gap is left to per-request lookups
__all__ = ["AuditLog", "CheckpointSigner", "EntryView", "Viewer"]


@dataclass(frozen=True)
class EntryView:
    index: int
    entry: dict[str, Any]
    leaf_hash: bytes

    def as_json(self) -> dict[str, Any]:
        return {"index": self.index, "entry": self.entry, "leaf_hash": b64(self.leaf_hash)}


def _view(
    index: int,
    raw: bytes,
    opening: bytes | None,
    viewer: Viewer,
    category_departments: Mapping[str, str],
) -> EntryView:
    # The leaf hash is recomputed from the stored bytes: what a caller can check is
    # what is stored, and a tampered row fails its inclusion proof. A department sees
    # only its own part of the entry (``audit.entry``).
    department = viewer.id if viewer.kind == "department" else None
    shown = entries.view(
        raw, opening, department=department, category_departments=category_departments
    )
    return EntryView(index, shown, merkle.leaf_hash(raw))


def _concerns(entry: Mapping[str, Any], viewer: Viewer) -> bool:
    """Whether the entry itself (not its index columns) gives ``viewer`` sight of it."""
    if viewer.kind == "operator":
        return True
    if viewer.kind == "enterprise":
        return entry.get("enterprise") == viewer.id
    if viewer.kind == "institution":
        return entry.get("institution") == viewer.id
    if viewer.kind == "department":
        departments = entry.get("departments")
        return isinstance(departments, list) and viewer.id in departments
    return False


class AuditLog:
    """The append-only Merkle audit log over one database."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        signer: CheckpointSigner,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.signer = signer
        self.config = settings.config.audit
        self.origin = self.config.origin
        # The catalog's category -> department: how an entry is split into parts.
        self.category_departments = {
            name: category.department for name, category in settings.config.categories.items()
        }
        if signer.name != self.origin:
            raise ConfigError(
                f"the checkpoint key is named {signer.name!r}, the log origin is {self.origin!r}"
            )
        self._clock = clock
        self._cond = threading.Condition()
        self._integrating = False
        self._recent: dict[int, int] = {}  # queue id -> index, of batches integrated here
        # The right frontier after this process's last batch; reused when the state row
        # (read under the lock) still has that size and root.
        self._frontier: tuple[int, tuple[bytes, ...]] = (-1, ())
        # The log size up to which this process knows every entry's queue id (-1: none).
        self._known_size = -1

    # Writing ---------------------------------------------------------------------------

    def enqueue(self, session: Session, entry: Mapping[str, Any]) -> int:
        """Queue one entry in the caller's transaction; returns its queue id."""
        sealed = entries.seal(entry, self.category_departments)
        try:
            return store.enqueue(session, sealed.committed, self._clock(), sealed.opening)
        except SQLAlchemyError as e:
            raise AuditUnavailable("the audit log cannot record this request") from e

    def await_index(self, queue_id: int, timeout: float) -> int:
        """The final log index of a committed queued entry, integrating if need be."""
        deadline = time.monotonic() + timeout
        try:
            while True:
                index = self._recent.get(queue_id)
                if index is not None:
                    return index
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AuditUnavailable("the audit log did not integrate the entry in time")
                if self._integrate_or_wait(remaining) is not None:
                    continue  # this thread integrated a batch: ours, or ahead of ours
                index = self._recent.get(queue_id)
                if index is None:
                    # Another process may have integrated it; or it never committed.
                    index = self._lookup(queue_id)
                if index is not None:
                    return index
        except SQLAlchemyError as e:
            raise AuditUnavailable("the audit log cannot integrate the entry") from e

    def _lookup(self, queue_id: int) -> int | None:
        """The entry's index from the database; None while it waits in the queue."""
        with read_connection(self.engine) as s:
            index = store.index_of(s, queue_id)
            if index is None and not store.is_queued(s, queue_id):
                # Integrated between the two reads (a read sees each commit whole).
                index = store.index_of(s, queue_id)
                if index is None:
                    raise AuditUnavailable(f"queued entry {queue_id} does not exist")
        return index

    def _integrate_or_wait(self, timeout: float) -> store.Batch | None:
        """Integrate one batch, or wait for the thread of this process doing so."""
        with self._cond:
            if self._integrating:
                self._cond.wait(timeout)
                return None
            self._integrating = True
        try:
            return self.integrate(timeout)
        finally:
            with self._cond:
                self._integrating = False
                self._cond.notify_all()

    def integrate(self, timeout: float | None = None) -> store.Batch | None:
        """One sequencing step: take the log lock and integrate up to ``batch_max``
        queued entries. Returns what was integrated (None when the queue was empty)."""
        wait = self.config.integrate_wait_seconds if timeout is None else timeout
        with store.locked(self.engine, wait) as (conn, state):
            size, frontier = self._frontier
            batch = store.integrate(
                conn,
                state,
                self.config.batch_max,
                self._clock(),
                frontier if size == state.size else None,
            )
        self._catch_up(state.size)
        if batch is not None:
            self._frontier = (batch.size, batch.frontier)
            self._known_size = max(self._known_size, batch.size)
            # Committed: remember the indices so waiting threads need no query.
            if len(self._recent) > RECENT_MAX:
                self._recent.clear()
            self._recent.update(
                zip(batch.queue_ids, range(batch.first_index, batch.size), strict=True)
            )
            log.debug("audit_batch_integrated", count=batch.count, size=batch.size)
        return batch

    def _catch_up(self, size: int) -> None:
        """Learn the indices other processes gave since this one last looked (up to the
        ``size`` read under the lock): one query per batch, instead of one per waiting
        request whose entry another process integrated."""
        known, self._known_size = self._known_size, max(self._known_size, size)
        if known < 0 or not 0 < size - known <= CATCH_UP_MAX:
            return
        with read_connection(self.engine) as s:
            found = store.indices_between(s, known, size)
        if len(self._recent) > RECENT_MAX:
            self._recent.clear()
        self._recent.update(found)

    def integrate_pending(self, max_batches: int = 64) -> int:
        """Integrate until the queue is empty (at most ``max_batches`` batches)."""
        total = 0
        for _ in range(max_batches):
            batch = self._integrate_or_wait(self.config.integrate_wait_seconds)
            if batch is None:
                with read_connection(self.engine) as s:
                    if store.queue_status(s)[0] == 0:
                        break
                continue
            total += batch.count
        return total

    def background_step(self) -> None:
        """Integrate what is pending, then sign a checkpoint if the tree grew and the
        last one is at least ``checkpoint_interval_seconds`` old."""
        self.integrate_pending()
        self.checkpoint()

    # Checkpoints -----------------------------------------------------------------------

    def verifier(self) -> Verifier:
        """The current checkpoint key."""
        return signer_verifier(self.signer)

    def log_keys(self) -> list[Verifier]:
        """Every checkpoint key of this log, current first (old checkpoints stay
        verifiable after a rotation when the signer lists ``verifier_keys``)."""
        listed = getattr(self.signer, "verifier_keys", None)
        keys = [self.verifier()]
        if callable(listed):
            keys += [Verifier(self.origin, pk) for pk in listed() if pk != keys[0].public_key]
        return keys

    def vkey(self) -> str:
        return self.verifier().vkey

    def checkpoint(self, *, force: bool = False) -> SignedCheckpoint | None:
        """Sign and store a checkpoint of the current tree when it grew (and, unless
        ``force``, the last checkpoint is old enough). Returns the new one or None."""
        now = self._clock()
        with read_connection(self.engine) as s:
            latest = store.latest_checkpoint(s)
            size = store.read_state(s).size
        if latest is not None and (
            size <= latest.size
            or (not force and now - latest.created_at < self.config.checkpoint_interval_seconds)
        ):
            return None
        with store.locked(self.engine, self.config.integrate_wait_seconds) as (conn, state):
            latest = store.latest_checkpoint(conn)
            if latest is not None and state.size <= latest.size:
                return None
            root = merkle.root_at(state.size, store.node_reader(conn))
            if root != state.root:
                log.error("audit_state_root_mismatch", size=state.size)
                raise LogInconsistent(
                    f"the stored tree of size {state.size} does not have the state's root"
                )
            signed = sign_checkpoint(Checkpoint(self.origin, state.size, root), self.signer)
            store.insert_checkpoint(
                conn, store.StoredCheckpoint(state.size, root, signed.text(), now)
            )
        log.info("audit_checkpoint_signed", size=state.size)
        return signed

    def latest_checkpoint(self) -> SignedCheckpoint:
        """The newest signed checkpoint with the cosignatures it has (one is signed
        now if the log never signed any)."""
        with read_connection(self.engine) as s:
            latest = store.latest_checkpoint(s)
        if latest is None:
            self.checkpoint(force=True)
        return self.checkpoint_at(None)

    def checkpoint_at(self, size: int | None) -> SignedCheckpoint:
        """A stored checkpoint (the newest when ``size`` is None) with its cosignatures."""
        with read_connection(self.engine) as s:
            stored = store.latest_checkpoint(s) if size is None else store.checkpoint_at(s, size)
            if stored is None:
                raise CheckpointNotFound(f"the log signed no checkpoint of size {size}")
            lines = store.cosignature_lines(s, stored.size)
        signed = open_checkpoint(stored.note, self.log_keys())
        extra = "".join(lines)
        if not extra:
            return signed
        return signed.with_signatures(parse_note(signed.note.text + "\n" + extra).signatures)

    # Witnesses -------------------------------------------------------------------------

    def register_witness(self, department: str, vkey: str) -> Verifier:
        """Register a department's cosigning key (a tlog-cosignature/v1 vkey)."""
        verifier = Verifier.from_vkey(vkey)
        if verifier.alg != ALG_COSIGNATURE_V1:
            raise NoteInvalid("a witness key is an Ed25519 cosignature/v1 vkey (type 0x04)")
        with write_session(self.engine) as s:
            known = store.find_witness(s, verifier.name, verifier.key_id.hex())
            if known is not None and known["department"] != department:
                raise Conflict(
                    f"that witness key is registered for department {known['department']!r}",
                    code="witness_registered",
                )
            if known is None:
                store.insert_witness(
                    s,
                    name=verifier.name,
                    key_id=verifier.key_id.hex(),
                    department=department,
                    vkey=verifier.vkey,
                    now=self._clock(),
                )
        log.info("audit_witness_registered", department=department, witness=verifier.name)
        return verifier

    def witnesses(self) -> list[dict[str, Any]]:
        with read_connection(self.engine) as s:
            return [
                {"department": w["department"], "name": w["name"], "vkey": w["vkey"]}
                for w in store.list_witnesses(s)
            ]

    def add_cosignature(self, size: int, line: str) -> str:
        """Store a witness's cosignature of the checkpoint of ``size``; returns the
        department of the witness."""
        sig = parse_note("x\n\n" + line.rstrip("\n") + "\n").signatures
        if len(sig) != 1:
            raise NoteInvalid("send one cosignature line")
        cosig = sig[0]
        with read_connection(self.engine) as s:
            stored = store.checkpoint_at(s, size)
            witness = store.find_witness(s, cosig.name, cosig.key_id.hex())
        if stored is None:
            raise CheckpointNotFound(f"the log signed no checkpoint of size {size}")
        if witness is None:
            raise WitnessUnknown(f"no department registered the witness key {cosig.name!r}")
        verifier = Verifier.from_vkey(str(witness["vkey"]))
        text = parse_note(stored.note).text
        if not verifier.verify(text, cosig):
            raise SignatureInvalid("the cosignature does not verify for that checkpoint")
        timestamp = cosignature_time(cosig)
        try:
            with write_session(self.engine) as s:
                if not store.has_cosignature(s, size, cosig.name, cosig.key_id.hex()):
                    store.insert_cosignature(
                        s,
                        size=size,
                        witness=cosig.name,
                        key_id=cosig.key_id.hex(),
                        line=cosig.line(),
                        timestamp=timestamp,
                        now=self._clock(),
                    )
        except IntegrityError:
            pass  # the same witness cosigned the same size concurrently: keep the first
        department = str(witness["department"])
        log.info("audit_cosignature_stored", size=size, department=department)
        return department

    # Queries and proofs ----------------------------------------------------------------

    def size(self) -> int:
        with read_connection(self.engine) as s:
            return store.read_state(s).size

    def entries(
        self, viewer: Viewer, after: int, limit: int, *, before: int | None = None
    ) -> tuple[list[EntryView], int | None]:
        """Entries visible to ``viewer`` after index ``after`` (or, given ``before``,
        before it, newest first); ``next`` is the cursor for the following page (None
        when this page is the last)."""
        limit = max(1, min(limit, MAX_PAGE))
        with read_connection(self.engine) as s:
            rows = store.list_entries(s, viewer, after, limit, before=before)
        views = [_view(i, raw, o, viewer, self.category_departments) for i, raw, o in rows]
        # The index columns chose the rows; the hashed entry decides who sees it (an
        # edited index column never shows an entry to someone it does not concern).
        shown = [v for v in views if _concerns(v.entry, viewer)]
        return shown, (rows[-1][0] if len(rows) == limit else None)

    def entry(self, viewer: Viewer, index: int) -> EntryView:
        with read_connection(self.engine) as s:
            found = store.get_entry(s, viewer, index)
        view = None if found is None else _view(index, *found, viewer, self.category_departments)
        if view is None or not _concerns(view.entry, viewer):
            raise EntryNotFound(f"no audit entry {index} visible to you")
        return view

    def inclusion_proof(
        self, viewer: Viewer, index: int, size: int | None
    ) -> tuple[int, list[bytes]]:
        """(size, proof) for an entry the viewer may see; ``size`` defaults to the
        newest checkpoint's."""
        with read_connection(self.engine) as s:
            visible, log_size, checkpoint_size = store.proof_context(s, viewer, index)
            if not visible:
                raise EntryNotFound(f"no audit entry {index} visible to you")
            if size is None:
                size = log_size if checkpoint_size is None else checkpoint_size
            elif not 0 <= size <= log_size:
                raise InvalidInput(
                    f"the log has {log_size} entries; size {size} is out of range",
                    code="audit_bad_size",
                )
            if not 0 <= index < size:
                raise InvalidInput(
                    f"entry {index} is not in the tree of size {size}", code="audit_bad_size"
                )
            return size, merkle.inclusion_proof(index, size, store.node_reader(s))

    def consistency_proof(self, first: int, second: int) -> list[bytes]:
        with read_connection(self.engine) as s:
            self._check_size(s, second)
            if not 0 <= first <= second:
                raise InvalidInput("0 <= first <= second is required", code="audit_bad_size")
            return merkle.consistency_proof(first, second, store.node_reader(s))

    def leaf_hashes(self, start: int, end: int) -> list[bytes]:
        """Leaf hashes of entries [start, end), recomputed from the stored bytes."""
        with read_connection(self.engine) as s:
            self._check_size(s, end)
            if not 0 <= start <= end or end - start > MAX_LEAVES:
                raise InvalidInput(
                    f"0 <= start <= end, at most {MAX_LEAVES} leaves", code="audit_bad_size"
                )
            rows = store.entry_range(s, start, end)
        for expected, (index, _) in zip(range(start, end), rows, strict=False):
            if index != expected:
                raise LogInconsistent(f"entry {expected} is missing from the store")
        if len(rows) != end - start:
            raise LogInconsistent(f"entry {start + len(rows)} is missing from the store")
        return [merkle.leaf_hash(raw) for _, raw in rows]

    @staticmethod
    def _check_size(s: store.Executor, size: int) -> None:
        current = store.read_state(s).size
        if not 0 <= size <= current:
            raise InvalidInput(
                f"the log has {current} entries; size {size} is out of range",
                code="audit_bad_size",
            )

    def verify(
        self,
        *,
        external: str | None = None,
        log_keys: Sequence[Verifier] | None = None,
        chunk_level: int = CHUNK_LEVEL,
    ) -> Report:
        """Verify the whole stored log (see ``audit.verify``) against ``log_keys``
        (default: this log's key) and an optional external checkpoint."""
        with store.StoredLog.open(self.engine) as source:
            return verify_log(
                source, log_keys or self.log_keys(), external=external, chunk_level=chunk_level
            )

    # Monitoring ------------------------------------------------------------------------

    def status(self) -> dict[str, float | int | None]:
        now = self._clock()
        with read_connection(self.engine) as s:
            depth, oldest = store.queue_status(s)
            size = store.read_state(s).size
            latest = store.latest_checkpoint(s)
        return {
            "queue_depth": depth,
            "queue_lag_seconds": 0.0 if oldest is None else max(now - oldest, 0.0),
            "log_size": size,
            "checkpoint_age_seconds": None if latest is None else max(now - latest.created_at, 0.0),
        }
