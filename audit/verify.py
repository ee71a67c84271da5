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
  The verifier parses the entry bytes it hashes and compares them with the columns
  read by the same range query, and with the department rows of that range.

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
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from operator import attrgetter, itemgetter
from typing import Any, Protocol

import msgspec

from audit import merkle
from audit.checkpoint import Checkpoint, open_checkpoint
from audit.errors import NoteInvalid, SignatureInvalid
from audit.note import Verifier, parse_note
from audit.store import IndexUnreadable, LogState, StoredCheckpoint

CHUNK_LEVEL = 14  # chunks of 16384 leaves: one range read per level per chunk
_sha256 = hashlib.sha256


class LogSource(Protocol):
    """A consistent read-only view of one stored log."""

    def state(self) -> LogState: ...

    def entry_count(self) -> tuple[int, int | None]: ...

    def entry_range(self, start: int, end: int) -> list[tuple[int, bytes]]: ...

    def node_range(self, level: int, start: int, end: int) -> list[tuple[int, bytes]]: ...

    def indexed_entries(self, start: int, end: int) -> list[tuple[Any, ...]]:
        """(entry bytes, time, institution, enterprise) per entry, in index order."""
        ...

    def hashes(self, level: int, start: int, end: int) -> list[bytes]: ...

    def read_nodes(self, ids: Sequence[merkle.NodeId]) -> dict[merkle.NodeId, bytes]: ...

    def checkpoints(self) -> Iterable[StoredCheckpoint]: ...

    def department_row_count(self) -> int: ...

    def department_indices(self, department: str, start: int, end: int) -> list[int]: ...

    def first_stray_department(self) -> tuple[int, str] | None: ...


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


class IndexFields(msgspec.Struct, gc=False):
    """The fields of an entry that its index columns and department rows repeat.
    (Untracked by the garbage collector, as it holds no containers but a tuple of
    strings: tens of thousands are alive per chunk, and tracking them doubled the
    parsing time.)"""

    time: int
    departments: tuple[str, ...]
    institution: str | None = None
    enterprise: str | None = None


_decode_index_fields = msgspec.json.Decoder(IndexFields).decode
INDEX_COLUMNS = ("time", "institution", "enterprise")


@dataclass
class IndexCheck:
    problems: list[Problem]
    departments_named: int  # distinct departments per entry, summed over the checked ones


def parse_index_fields(
    raws: Sequence[bytes], start: int
) -> tuple[list[IndexFields], Problem | None]:
    """The index fields of each entry (``start`` is the first one's index); stops at the
    first entry whose bytes do not hold them."""
    try:
        return [_decode_index_fields(raw) for raw in raws], None
    except msgspec.DecodeError:  # also the ValidationError of a wrong field type
        pass
    parsed: list[IndexFields] = []
    for k, raw in enumerate(raws):
        try:
            parsed.append(_decode_index_fields(raw))
        except msgspec.DecodeError as e:
            return parsed, Problem(
                start + k, f"entry {start + k}: its index fields cannot be read: {e}"
            )
    return parsed, None  # pragma: no cover - the batch decode failed on some entry


def departments_named(start: int, parsed: Sequence[IndexFields]) -> dict[str, list[int]]:
    """For each department the entries ``start``, ``start + 1``, ... name, the indices
    of the entries that name it, ascending (twice if an entry names it twice)."""
    named: dict[str, list[int]] = defaultdict(list)
    for index, fields in enumerate(parsed, start):
        for department in fields.departments:
            named[department].append(index)
    return named


_columns_of_entry = attrgetter(*INDEX_COLUMNS)
_columns_of_row = itemgetter(1, 2, 3)
_entry_of_row = itemgetter(0)


def compare_index(
    start: int,
    parsed: Sequence[IndexFields],
    rows: Sequence[Sequence[Any]],
    named: Mapping[str, Sequence[int]],
    filed: Mapping[str, Sequence[int]],
) -> IndexCheck:
    """Compare entries ``start``, ``start + 1``, ... (their parsed bytes) with their
    stored ``rows`` (entry bytes, time, institution, enterprise), and the indices each
    department is ``named`` by (``departments_named``) with those ``audit_entry_departments``
    files it under (ascending): the first index whose columns differ (naming the columns)
    and the first department an entry names that has no row. Stray rows are counted,
    not searched, here (see ``verify_log``)."""
    problems: list[Problem] = []
    wanted = list(map(_columns_of_entry, parsed))
    stored = list(map(_columns_of_row, rows[: len(wanted)]))
    if wanted != stored:  # compared in C; the loop below runs only on a mismatch
        k = next(k for k, (w, s) in enumerate(zip(wanted, stored, strict=True)) if w != s)
        differ = ", ".join(
            repr(name)
            for name, w, s in zip(INDEX_COLUMNS, wanted[k], stored[k], strict=True)
            if w != s
        )
        problems.append(
            Problem(
                start + k,
                f"entry {start + k}: index column {differ} of audit_entries differs from the entry",
            )
        )
    missing: list[tuple[int, str]] = []
    count = 0
    for department, indices in named.items():
        rows_of = filed.get(department, ())
        count += len(indices)
        if indices == rows_of:
            continue
        # A missing or stray row, or an entry naming the department twice (counted once).
        count -= len(indices) - len(set(indices))
        present = set(rows_of)
        first = next((i for i in indices if i not in present), None)
        if first is not None:
            missing.append((first, department))
    if missing:
        index, department = min(missing)
        problems.append(
            Problem(
                index,
                f"entry {index}: audit_entry_departments lacks its department {department!r}",
            )
        )
    return IndexCheck(problems, count)


@dataclass
class _Chunk:
    """Everything stored about one chunk of leaves, read ahead of the hashing."""

    start: int
    end: int
    raws: list[bytes]
    levels: list[list[bytes]]  # stored hashes of the complete nodes inside the chunk
    upper: dict[merkle.NodeId, bytes]  # stored nodes that complete at the chunk's end
    # Where the index columns and department rows disagree with the entry bytes (the
    # first of each kind), and how many departments the entries name.
    index: IndexCheck = field(default_factory=lambda: IndexCheck([], 0))


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
                rows = self.source.indexed_entries(start, end)
                raws = list(map(_entry_of_row, rows))
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
                if len(rows) == end - start:  # else the pass stops at the gap
                    found.index = self._index(start, end, raws, rows)
                self.chunks.put(found)
            self.chunks.put(None)
        except BaseException as e:  # handed to the verifying thread, which re-raises it
            self.chunks.put(e)

    def _index(
        self, start: int, end: int, raws: list[bytes], rows: list[tuple[Any, ...]]
    ) -> IndexCheck:
        """Check the index of entries start..end-1 against their bytes and columns."""
        parsed, unreadable = parse_index_fields(raws, start)
        named = departments_named(start, parsed)
        filed = {d: self.source.department_indices(d, start, end) for d in sorted(named)}
        check = compare_index(start, parsed, rows, named, filed)
        if unreadable is not None:
            check.problems.append(unreadable)
        return check

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
        """Record the chunk's first index-column and department-row mismatches (the entry
        bytes are intact: they hashed to the stored tree)."""
        self.departments_named += chunk.index.departments_named
        self.index_problems.extend(chunk.index.problems)

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
