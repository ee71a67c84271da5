"""Full verification of a stored log against its entries and signed checkpoints.

What is checked, in one pass over the entries in index order:
- every index below the log size has an entry, and no entry lies beyond it;
- each entry's canonical bytes hash to the leaf stored in the tree (a changed or
  swapped entry fails here, at its own index);
- every stored complete subtree equals the hash recomputed from the entries below it
  (proofs are served from those nodes);
- the root recomputed at every checkpoint size equals the checkpoint's root, each
  checkpoint note carries a valid signature of a log key and agrees with its row, and
  consecutive checkpoints are consistent (RFC 9162 proof from the stored tree);
- an external checkpoint (kept outside the database, e.g. by a witness) has a valid
  signature, is not beyond the log, and matches the recomputed root at its size.

The first bad index is the smallest index at which an entry or node stops matching;
when only a checkpoint root disagrees it is the first index not covered by an
earlier checkpoint that matched.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from audit import merkle
from audit.checkpoint import Checkpoint, open_checkpoint
from audit.errors import NoteInvalid, SignatureInvalid
from audit.note import Verifier, parse_note
from audit.store import LogState, StoredCheckpoint

CHUNK_LEVEL = 14
CHUNK = 1 << CHUNK_LEVEL
_sha256 = hashlib.sha256


class LogSource(Protocol):
    """A consistent read-only view of one stored log."""

    def state(self) -> LogState: ...

    def entry_count(self) -> tuple[int, int | None]: ...

    def entry_range(self, start: int, end: int) -> list[tuple[int, bytes]]: ...

    def node_range(self, level: int, start: int, end: int) -> list[tuple[int, bytes]]: ...

    def entry_bytes(self, start: int, end: int) -> list[bytes]: ...

    def hashes(self, level: int, start: int, end: int) -> list[bytes]: ...

    def read_nodes(self, ids: Sequence[merkle.NodeId]) -> dict[merkle.NodeId, bytes]: ...

    def checkpoints(self) -> Iterable[StoredCheckpoint]: ...


@dataclass(frozen=True)
class Problem:
    index: int | None  # first index affected, when one can be named
    message: str


@dataclass
class Report:
    size: int = 0
    entries_checked: int = 0
    nodes_checked: int = 0
    checkpoints_checked: int = 0
    root: bytes = merkle.EMPTY_ROOT
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first_bad_index(self) -> int | None:
        indexes = [p.index for p in self.problems if p.index is not None]
        return min(indexes) if indexes else None


def _first_difference(computed: list[bytes], stored: list[tuple[int, bytes]], start: int) -> int:
    """The first index (from ``start``) where stored hashes differ from computed ones."""
    for offset, h in enumerate(computed):
        if offset >= len(stored):
            return start + offset
        index, stored_hash = stored[offset]
        if index != start + offset or stored_hash != h:
            return start + offset
    return start + len(computed)


class _Pass:
    """The single pass over entries and nodes, chunk by chunk."""

    def __init__(self, source: LogSource, size: int, roots: dict[int, bytes], report: Report):
        self.source = source
        self.size = size
        self.roots = roots  # checkpoint size -> signed root, checked as the pass goes
        self.report = report
        self.upper: list[tuple[int, bytes]] = []  # frontier above the chunk level
        self.computed_roots: dict[int, bytes] = {}

    def fail(self, index: int | None, message: str) -> None:
        self.report.problems.append(Problem(index, message))

    def run(self) -> bool:
        """False when it had to stop at a bad entry or node."""
        for start in range(0, self.size, CHUNK):
            if not self._chunk(start, min(start + CHUNK, self.size)):
                return False
        return True

    def _chunk(self, start: int, end: int) -> bool:
        raws = self.source.entry_bytes(start, end)
        if len(raws) != end - start:
            # Indices are unique, so a full count means none is missing: find the gap.
            rows = self.source.entry_range(start, end)
            missing = next(
                (start + k for k, (index, _) in enumerate(rows) if index != start + k),
                start + len(rows),
            )
            self.fail(missing, f"entry {missing} is missing")
            return False
        leaves = [_sha256(b"\x00" + raw).digest() for raw in raws]
        levels = [leaves]
        while len(levels[-1]) > 1:
            below = levels[-1]
            levels.append(
                [
                    _sha256(b"\x01" + left + right).digest()
                    for left, right in zip(below[0::2], below[1::2], strict=False)
                ]
            )
        for level, computed in enumerate(levels):
            first = start >> level
            stored_hashes = self.source.hashes(level, first, first + len(computed))
            if b"".join(stored_hashes) != b"".join(computed):
                stored = self.source.node_range(level, first, first + len(computed))
                bad = _first_difference(computed, stored, first)
                if level == 0:
                    self.fail(bad, f"entry {bad}: its bytes do not hash to the leaf in the tree")
                else:
                    self.fail(
                        bad << level,
                        f"tree node (level {level}, index {bad}) does not match the entries "
                        f"{bad << level}..{((bad + 1) << level) - 1} below it",
                    )
                return False
            self.report.nodes_checked += len(computed)
        self.report.entries_checked += len(raws)
        for size in sorted(s for s in self.roots if start < s <= end and s < start + CHUNK):
            self._root_at(size, start, levels, self.upper)
        if end - start == CHUNK:
            if not self._push(levels[CHUNK_LEVEL][0], start):
                return False
            if end in self.roots:
                self._root_at(end, end, [], self.upper)
        return True

    def _push(self, chunk_root: bytes, start: int) -> bool:
        level, h, index = CHUNK_LEVEL, chunk_root, start >> CHUNK_LEVEL
        while self.upper and self.upper[-1][0] == level:
            _, left = self.upper.pop()
            h = _sha256(b"\x01" + left + h).digest()
            level += 1
            index >>= 1
            stored = self.source.read_nodes([(level, index)]).get((level, index))
            if stored != h:
                self.fail(
                    index << level,
                    f"tree node (level {level}, index {index}) does not match the entries below it",
                )
                return False
            self.report.nodes_checked += 1
        self.upper.append((level, h))
        return True

    def _root_at(
        self, size: int, start: int, levels: list[list[bytes]], upper: list[tuple[int, bytes]]
    ) -> None:
        parts: list[bytes] = [h for _, h in upper]
        for level, index in merkle.subtrees(start, size):
            parts.append(levels[level][index - (start >> level)])
        self.computed_roots[size] = merkle.fold(parts)


def verify_log(
    source: LogSource,
    log_keys: Sequence[Verifier],
    *,
    external: str | None = None,
) -> Report:
    """Verify everything stored about one log; never raises on a bad log."""
    report = Report()
    state = source.state()
    report.size = state.size
    count, highest = source.entry_count()
    if highest is not None and highest >= state.size:
        report.problems.append(
            Problem(state.size, f"entries exist beyond the log size {state.size}")
        )

    signed: dict[int, bytes] = {}
    previous: StoredCheckpoint | None = None
    for stored in source.checkpoints():
        report.checkpoints_checked += 1
        where = f"checkpoint of size {stored.size}"
        try:
            cp = open_checkpoint(stored.note, log_keys).checkpoint
        except (NoteInvalid, SignatureInvalid) as e:
            report.problems.append(Problem(None, f"{where}: {e.message}"))
            previous = None
            continue
        if (cp.size, cp.root) != (stored.size, stored.root):
            report.problems.append(Problem(None, f"{where}: its note and its row disagree"))
            continue
        if cp.size > state.size:
            report.problems.append(
                Problem(state.size, f"{where} is beyond the log size {state.size}: rolled back")
            )
            continue
        signed[cp.size] = cp.root
        if previous is not None:
            proof = merkle.consistency_proof(previous.size, cp.size, source.read_nodes)
            if not merkle.verify_consistency(previous.size, cp.size, previous.root, cp.root, proof):
                report.problems.append(
                    Problem(
                        previous.size,
                        f"checkpoints of size {previous.size} and {cp.size} are not consistent",
                    )
                )
        previous = stored

    outside: Checkpoint | None = None
    if external is not None:
        try:
            outside = open_checkpoint(_checkpoint_text(external), log_keys).checkpoint
        except (NoteInvalid, SignatureInvalid) as e:
            report.problems.append(Problem(None, f"external checkpoint: {e.message}"))
        else:
            if outside.size > state.size:
                report.problems.append(
                    Problem(
                        state.size,
                        f"the log has {state.size} entries but an external checkpoint "
                        f"signed {outside.size}: rolled back",
                    )
                )
                outside = None

    wanted = dict(signed)
    wanted[state.size] = state.root
    if outside is not None:
        wanted.setdefault(outside.size, outside.root)
    walk = _Pass(source, state.size, wanted, report)
    complete = walk.run()
    if complete:
        report.root = walk.computed_roots.get(state.size, merkle.EMPTY_ROOT)
        expected = [(size, root, f"checkpoint of size {size}") for size, root in signed.items()]
        expected.append((state.size, state.root, "the log state"))
        if outside is not None:
            expected.append((outside.size, outside.root, "the external checkpoint"))
        good = sorted(
            s for s, r, _ in expected if walk.computed_roots.get(s, merkle.EMPTY_ROOT) == r
        )
        for size, root, what in expected:
            if walk.computed_roots.get(size, merkle.EMPTY_ROOT) != root:
                covered = max((s for s in good if s < size), default=0)
                report.problems.append(
                    Problem(
                        covered,
                        f"{what}: the root recomputed from the entries differs; "
                        f"the bad entry lies in {covered}..{size - 1}",
                    )
                )
    if count != state.size and complete:
        report.problems.append(
            Problem(state.size, f"{count} entries are stored for a log of size {state.size}")
        )
    return report


def _checkpoint_text(external: str) -> str:
    """A checkpoint note, or a witness state file that holds one."""
    stripped = external.lstrip()
    if stripped.startswith("{"):
        try:
            value = json.loads(stripped)
        except ValueError as e:
            raise NoteInvalid("the checkpoint file is neither a note nor a witness state") from e
        if not isinstance(value, dict) or not isinstance(value.get("checkpoint"), str):
            raise NoteInvalid("the witness state file has no checkpoint")
        return str(value["checkpoint"])
    parse_note(external)
    return external
