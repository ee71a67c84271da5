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
  signature, is not beyond the log, and matches the recomputed root at its size;
- every column and table that indexes entries, and so decides who sees an entry
  (``audit_entries.time``, ``.institution``, ``.enterprise`` and the rows of
  ``audit_entry_departments``), agrees with the hashed entry: an insider who edits an
  index column hides an entry from the enterprise or department it concerns without
  touching a hashed byte, and verification names the first such index and column.

The first bad index is the smallest index at which an entry or node stops matching;
when only a checkpoint root disagrees it is the first index not covered by an
earlier checkpoint that matched.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import queue
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

from audit import merkle
from audit.checkpoint import Checkpoint, open_checkpoint
from audit.errors import NoteInvalid, SignatureInvalid
from audit.note import Verifier, parse_note
from audit.store import INDEX_COLUMNS, IndexUnreadable, LogState, StoredCheckpoint

CHUNK_LEVEL = 14  # chunks of 16384 leaves: one range read per level per chunk
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

    def first_index_mismatch(self, start: int, end: int) -> tuple[int | None, int]: ...

    def department_row_count(self) -> int: ...

    def first_missing_department(self, start: int, end: int) -> tuple[int, str] | None: ...

    def first_stray_department(self) -> tuple[int, str] | None: ...

    def index_columns(self, index: int) -> dict[str, Any] | None: ...


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
    # Set when an external checkpoint is larger than the log: entries from this index
    # on were logged and witnessed but are not here (a restore older than the witness).
    missing_from: int | None = None
    witnessed_size: int | None = None

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


@dataclass
class _Chunk:
    """Everything stored about one chunk of leaves, read ahead of the hashing."""

    start: int
    end: int
    raws: list[bytes]
    levels: list[list[bytes]]  # stored hashes of the complete nodes inside the chunk
    upper: dict[merkle.NodeId, bytes]  # stored nodes that complete at the chunk's end
    # The first index whose index columns, and the first (index, department) whose
    # department row, disagree with the entry bytes; or why they could not be read.
    bad_columns: int | None = None
    departments_named: int = 0
    missing_department: tuple[int, str] | None = None
    index_error: str | None = None


def _level_counts(n: int) -> list[int]:
    """How many complete nodes of each level lie in an aligned chunk of n leaves."""
    counts = [n]
    while counts[-1] > 1:
        counts.append(counts[-1] // 2)
    return counts


def _merged_at(end: int, chunk_level: int) -> list[merkle.NodeId]:
    """The nodes above the chunk level that complete when leaf ``end - 1`` arrives."""
    out = []
    level = chunk_level + 1
    while end % (1 << level) == 0:
        out.append((level, (end >> level) - 1))
        level += 1
    return out


class _Reader(threading.Thread):
    """Reads chunk after chunk into a short queue, so database reads (which release the
    GIL) overlap the hashing of the previous chunk."""

    def __init__(self, source: LogSource, size: int, chunk_level: int) -> None:
        super().__init__(name="audit-verify-reader", daemon=True)
        self.source, self.size, self.chunk_level = source, size, chunk_level
        self.chunks: queue.Queue[_Chunk | BaseException | None] = queue.Queue(maxsize=2)
        self.stopping = threading.Event()

    def run(self) -> None:
        try:
            chunk = 1 << self.chunk_level
            for start in range(0, self.size, chunk):
                if self.stopping.is_set():
                    return
                end = min(start + chunk, self.size)
                raws = self.source.entry_bytes(start, end)
                levels = [
                    self.source.hashes(level, start >> level, (start >> level) + count)
                    for level, count in enumerate(_level_counts(end - start))
                ]
                upper = (
                    self.source.read_nodes(_merged_at(end, self.chunk_level))
                    if end - start == chunk
                    else {}
                )
                found = _Chunk(start, end, raws, levels, upper)
                try:
                    found.bad_columns, found.departments_named = self.source.first_index_mismatch(
                        start, end
                    )
                    found.missing_department = self.source.first_missing_department(start, end)
                except IndexUnreadable as e:
                    found.index_error = str(e)
                self.chunks.put(found)
            self.chunks.put(None)
        except BaseException as e:  # handed to the verifying thread, which re-raises it
            self.chunks.put(e)

    def stop(self) -> None:
        """Stop reading and wait, so the source may be used again by the caller."""
        self.stopping.set()
        while self.is_alive():
            with contextlib.suppress(queue.Empty):
                self.chunks.get(timeout=0.05)
        self.join()


class _Pass:
    """The single pass over entries and nodes, chunk by chunk."""

    def __init__(
        self,
        source: LogSource,
        size: int,
        roots: dict[int, bytes],
        report: Report,
        chunk_level: int = CHUNK_LEVEL,
    ):
        self.source = source
        self.chunk_level = chunk_level
        self.chunk = 1 << chunk_level
        self.size = size
        self.roots = roots  # checkpoint size -> signed root, checked as the pass goes
        self.report = report
        self.upper: list[tuple[int, bytes]] = []  # frontier above the chunk level
        self.computed_roots: dict[int, bytes] = {}
        self.index_problems: list[Problem] = []
        self.bad_columns: list[tuple[int, bytes]] = []  # (index, entry bytes), to name
        self.departments_named = 0  # by the entries checked, to count department rows

    def fail(self, index: int | None, message: str) -> None:
        self.report.problems.append(Problem(index, message))

    def run(self) -> bool:
        """False when it had to stop at a bad entry or node."""
        reader = _Reader(self.source, self.size, self.chunk_level)
        reader.start()
        try:
            while True:
                chunk = reader.chunks.get()
                if chunk is None:
                    return True
                if isinstance(chunk, BaseException):
                    raise chunk
                bad = self._chunk(chunk)
                if bad is not None:
                    reader.stop()  # the diagnosis below reads the source itself
                    bad()
                    return False
        finally:
            reader.stop()

    def _chunk(self, chunk: _Chunk) -> Callable[[], None] | None:
        """Check one chunk; on a problem, return what diagnoses it (run once the reader
        has stopped)."""
        start, end, raws = chunk.start, chunk.end, chunk.raws
        if len(raws) != end - start:
            return partial(self._missing_entry, start, end)
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
            if b"".join(chunk.levels[level]) != b"".join(computed):
                return partial(self._bad_node, level, start >> level, computed)
            self.report.nodes_checked += len(computed)
        self.report.entries_checked += len(raws)
        self._index(chunk)
        for size in sorted(s for s in self.roots if start < s <= end and s < start + self.chunk):
            self._root_at(size, start, levels)
        if end - start == self.chunk:
            bad = self._push(levels[self.chunk_level][0], start, chunk.upper)
            if bad is not None:
                return partial(
                    self.fail,
                    bad[1] << bad[0],
                    f"tree node (level {bad[0]}, index {bad[1]}) does not match the entries "
                    "below it",
                )
            if end in self.roots:
                self._root_at(end, end, [])
        return None

    def _index(self, chunk: _Chunk) -> None:
        """Record the chunk's first index-column or department-row mismatch (the entry
        bytes are intact: they hashed to the stored tree)."""
        if chunk.index_error is not None:
            self.index_problems.append(
                Problem(
                    chunk.start,
                    f"entries {chunk.start}..{chunk.end - 1}: the index "
                    f"could not be checked: {chunk.index_error}",
                )
            )
            return
        self.departments_named += chunk.departments_named
        if chunk.bad_columns is not None:
            # Named once the reader has stopped (it owns the connection until then).
            self.bad_columns.append(
                (chunk.bad_columns, chunk.raws[chunk.bad_columns - chunk.start])
            )
        if chunk.missing_department is not None:
            index, department = chunk.missing_department
            self.index_problems.append(
                Problem(
                    index,
                    f"entry {index}: audit_entry_departments lacks its department {department!r}",
                )
            )

    def name_bad_columns(self) -> None:
        """Turn the chunks' first column mismatches into problems naming the columns
        (after the pass: this reads the source)."""
        for index, raw in self.bad_columns:
            fields = json.loads(raw)
            stored = self.source.index_columns(index) or {}
            differ = [c for c in INDEX_COLUMNS if stored.get(c) != fields.get(c)]
            named = ", ".join(repr(c) for c in differ) or "(type)"
            self.index_problems.append(
                Problem(
                    index,
                    f"entry {index}: index column {named} of audit_entries differs from the entry",
                )
            )
        self.bad_columns.clear()

    def _missing_entry(self, start: int, end: int) -> None:
        # Indices are unique, so only a short count means a gap: find it.
        rows = self.source.entry_range(start, end)
        missing = next(
            (start + k for k, (index, _) in enumerate(rows) if index != start + k),
            start + len(rows),
        )
        self.fail(missing, f"entry {missing} is missing")

    def _bad_node(self, level: int, first: int, computed: list[bytes]) -> None:
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

    def _push(
        self, chunk_root: bytes, start: int, stored: dict[merkle.NodeId, bytes]
    ) -> merkle.NodeId | None:
        """Add a chunk root to the upper frontier; the first merged node that differs
        from the stored one, if any."""
        level, h, index = self.chunk_level, chunk_root, start >> self.chunk_level
        while self.upper and self.upper[-1][0] == level:
            _, left = self.upper.pop()
            h = _sha256(b"\x01" + left + h).digest()
            level += 1
            index >>= 1
            if stored.get((level, index)) != h:
                return (level, index)
            self.report.nodes_checked += 1
        self.upper.append((level, h))
        return None

    def _root_at(self, size: int, start: int, levels: list[list[bytes]]) -> None:
        parts: list[bytes] = [h for _, h in self.upper]
        for level, index in merkle.subtrees(start, size):
            parts.append(levels[level][index - (start >> level)])
        self.computed_roots[size] = merkle.fold(parts)


def verify_log(
    source: LogSource,
    log_keys: Sequence[Verifier],
    *,
    external: str | None = None,
    chunk_level: int = CHUNK_LEVEL,
) -> Report:
    """Verify everything stored about one log; never raises on a bad log.
    ``chunk_level`` sets the read unit (2**chunk_level leaves); tests make it small."""
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
                report.missing_from = state.size
                report.witnessed_size = outside.size
                report.problems.append(
                    Problem(
                        state.size,
                        f"entries {state.size}..{outside.size - 1} are missing: the log has "
                        f"{state.size} entries but the external checkpoint was signed at "
                        f"size {outside.size}",
                    )
                )
                outside = None

    wanted = dict(signed)
    wanted[state.size] = state.root
    if outside is not None:
        wanted.setdefault(outside.size, outside.root)
    walk = _Pass(source, state.size, wanted, report, chunk_level)
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
    # Chunks that hashed correctly had their index checked, whether or not a later one
    # stopped the pass.
    walk.name_bad_columns()
    report.problems.extend(walk.index_problems)
    try:
        # Each entry names distinct departments and has a row for each (checked per
        # chunk), so equal counts leave no room for a stray row: only a difference pays
        # for the search that names it.
        rows = source.department_row_count()
        counted = complete and walk.departments_named == rows and not walk.index_problems
        stray = None if counted else source.first_stray_department()
    except IndexUnreadable as e:
        report.problems.append(Problem(None, f"department index not checked: {e}"))
    else:
        if stray is not None:
            index, department = stray
            report.problems.append(
                Problem(
                    index,
                    f"entry {index}: audit_entry_departments names department "
                    f"{department!r}, which the entry does not",
                )
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
