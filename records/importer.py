"""Checking a department's CSV against the catalog, all or nothing. Pure: bytes in,
a verdict out; no database.

The format (CONTRACT.md "Catalog"): UTF-8 (a byte-order mark is tolerated), a header
row with a ``uscc`` column plus any of the department's feature ids
(``category.feature``) as columns, one row per enterprise. Cells are stripped of
surrounding spaces; an empty line is skipped.

Invariants:
- every problem is reported, each as (line, column, code, reason) with the physical
  line number of the row (the header is line 1) and a stable ``code``
  (:data:`REJECT_CODES`); a file with any problem yields no rows at all;
- a reason never contains a cell's value (it may be non-public): it says "the value";
- rows come out as ``(uscc, values_json)``: a JSON array of the row's parsed values in
  the order of ``Checked.features``, ready for bulk insertion.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from common import uscc as uscc_rules
from records.catalog import Catalog, CellProblem, cell_parser, column_checker

UTF8_BOM = "\ufeff"
USCC_COLUMN = "uscc"

# Every reason an import can be refused for; clients may rely on these codes.
REJECT_CODES: tuple[str, ...] = (
    "empty_file",  # no header at all
    "no_rows",  # a header but no data row
    "not_utf8",  # bytes that are not UTF-8
    "bad_csv",  # the CSV itself cannot be parsed (broken quoting, over-long field)
    "missing_uscc_column",
    "no_feature_columns",  # only a uscc column: nothing to load
    "duplicate_column",
    "unknown_column",  # not a feature id of the catalog
    "other_department_column",  # a feature of another department
    "ragged_row",  # a row whose number of fields differs from the header's
    "invalid_uscc",  # GB 32100 shape or check digit
    "duplicate_uscc",  # the same enterprise twice in one file
    "missing_value",
    "wrong_type",
    "negative_amount",
    "out_of_range",
    "bad_date",
    "unknown_value",  # an enum value the catalog does not list
    "too_long",
    # grades: a column kept only as a keyed hash, loaded without the key (nothing stored).
    "unkeyed_identifier",
)

_SURROGATE = re.compile("[\udc80-\udcff]")
# What a column name looks like (``uscc``, ``category.feature``); others are not echoed.
_NAME = re.compile(r"[a-z][a-z0-9_]{0,47}(?:\.[a-z][a-z0-9_]{0,47})?")
# Rows are checked in blocks, column by column: a clean column costs a few C-level
# passes instead of one Python call per cell.
BLOCK_ROWS = 10_000


@dataclass(frozen=True)
class Reject:
    """One problem: where it is and why, never what the value was."""

    line: int
    column: str
    code: str
    reason: str


@dataclass
class Checked:
    """The verdict on one file. ``rows`` is empty unless the file is clean."""

    department: str
    features: tuple[str, ...]
    rows: list[tuple[str, str]]
    rejects: list[Reject]
    row_count: int
    sha256: str
    bad_rows: int = 0
    _bad_lines: set[int] = field(default_factory=set, repr=False)

    @property
    def ok(self) -> bool:
        return not self.rejects

    def reject(self, line: int, column: str, code: str, reason: str) -> None:
        self.rejects.append(Reject(line, column, code, reason))
        if line > 1 and line not in self._bad_lines:
            self._bad_lines.add(line)
            self.bad_rows += 1


def rejects_csv(rejects: list[Reject]) -> str:
    """The rejects as CSV text: ``line,column,code,reason``."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(("line", "column", "code", "reason"))
    writer.writerows((r.line, r.column, r.code, r.reason) for r in rejects)
    return out.getvalue()


def check(
    catalog: Catalog,
    department: str,
    data: bytes,
    *,
    progress: Callable[[int], None] | None = None,
    keyed: Mapping[str, Callable[[str], str]] | None = None,
) -> Checked:
    """Check one CSV file of ``department``. ``progress(rows_done)`` is called after
    every block of rows (for a progress bar). ``keyed`` maps each keyed-hash feature
    (``keyed_hash`` in the catalog) to the function that turns a raw cell into what is
    stored; a file with such a column and no function for it is refused
    (``unkeyed_identifier``): the raw value is never stored."""
    result = Checked(
        department=department,
        features=(),
        rows=[],
        rejects=[],
        row_count=0,
        sha256=hashlib.sha256(data).hexdigest(),
    )
    try:
        text = data.decode("utf-8")
        suspect = False
    except UnicodeDecodeError:
        # Keep going to report every other problem too; rows holding undecodable
        # bytes are found by their escaped surrogates.
        text = data.decode("utf-8", "surrogateescape")
        suspect = True
    if text.startswith(UTF8_BOM):
        text = text[1:]
    del data
    reader = csv.reader(io.StringIO(text, newline=""), strict=True, skipinitialspace=True)
    try:
        header = next(reader, None)
        while header is not None and not header:  # leading blank lines
            header = next(reader, None)
    except csv.Error as e:
        result.reject(reader.line_num or 1, "", "bad_csv", f"the header cannot be parsed: {e}")
        return result
    if header is None:
        result.reject(1, "", "empty_file", "the file is empty: a header row is required")
        return result
    header_line = reader.line_num
    columns = _check_header(catalog, department, header, header_line, suspect, result, keyed or {})
    uscc_at = columns.uscc_index
    width = len(header)
    parsers = columns.parsers
    codes: list[str] = []
    lines: list[int] = []
    bodies: list[str] = []
    block: list[list[str]] = []
    block_lines: list[int] = []
    reject = result.reject

    def flush() -> None:
        """Check a block of rows column by column (see ``column_checker``)."""
        if not block:
            return
        cells = list(zip(*block, strict=True))
        fragments: list[list[str]] = []
        for index, name, parse, check_column in parsers:
            column = list(map(str.strip, cells[index]))
            checked = check_column(column)
            if checked is None:  # some cell is bad: find and name each one
                checked = []
                for text, line in zip(column, block_lines, strict=True):
                    try:
                        checked.append(parse(text))
                    except CellProblem as e:
                        reject(line, name, e.code, e.reason)
            fragments.append(checked)
        if uscc_at is not None:
            codes.extend(map(str.strip, cells[uscc_at]))
            lines.extend(block_lines)
            if not result.rejects:
                bodies.extend(["[" + ",".join(t) + "]" for t in zip(*fragments, strict=True)])
        block.clear()
        block_lines.clear()

    count = 0
    try:
        for row in reader:
            if not row:
                continue
            count += 1
            if len(row) != width:
                reject(
                    reader.line_num,
                    "",
                    "ragged_row",
                    f"the row has {len(row)} fields, the header has {width}",
                )
                continue
            if suspect and _SURROGATE.search("".join(row)):
                for name, cell in zip(header, row, strict=True):
                    if _SURROGATE.search(cell):
                        reject(reader.line_num, name.strip(), "not_utf8", "the value is not UTF-8")
                continue
            block.append(row)
            block_lines.append(reader.line_num)
            if len(block) == BLOCK_ROWS:
                flush()
                if progress is not None:
                    progress(count)
    except csv.Error as e:
        reject(reader.line_num, "", "bad_csv", f"the CSV cannot be parsed from here on: {e}")
    flush()
    result.row_count = count
    _check_usccs(codes, lines, result)
    if count == 0 and not result.rejects:
        reject(header_line, "", "no_rows", "the file has a header but no rows")
    if progress is not None:
        progress(count)
    if result.rejects:
        result.rejects.sort(key=lambda r: r.line)  # stable: a row's problems keep their order
    else:
        result.rows = list(zip(codes, bodies, strict=True))
    return result


def _check_usccs(codes: list[str], lines: list[int], result: Checked) -> None:
    """Check digit and shape of every code at once, then duplicates; the reason for a
    bad code comes from :func:`common.uscc.problem`."""
    valid = valid_usccs(codes)
    if valid.all() and len(set(codes)) == len(codes):
        return  # the common case, without a Python loop over the codes
    seen: dict[str, int] = {}
    for i in np.flatnonzero(~valid).tolist():
        why = uscc_rules.problem(codes[i]) or "not a valid USCC"
        result.reject(lines[i], USCC_COLUMN, "invalid_uscc", f"invalid USCC: {why}")
    for code, line, ok in zip(codes, lines, valid.tolist(), strict=True):
        if not ok:
            continue
        first = seen.setdefault(code, line)
        if first != line:
            result.reject(
                line, USCC_COLUMN, "duplicate_uscc", f"the same USCC is already on line {first}"
            )


# Lookup tables for :func:`valid_usccs`, built from common.uscc's definitions.
_CHAR_VALUE = np.full(256, -1, dtype=np.int8)
for _i, _c in enumerate(uscc_rules.ALPHABET):
    _CHAR_VALUE[ord(_c)] = _i
_IS_DIGIT = np.zeros(256, dtype=bool)
_IS_DIGIT[ord("0") : ord("9") + 1] = True
_AUTHORITY_TYPE = np.zeros((256, 256), dtype=bool)
for _authority, _types in uscc_rules.AUTHORITY_TYPES.items():
    for _t in _types:
        _AUTHORITY_TYPE[ord(_authority), ord(_t)] = True
_WEIGHTS = np.array(uscc_rules.WEIGHTS, dtype=np.int32)


def valid_usccs(codes: list[str]) -> np.ndarray:
    """``common.uscc.is_valid`` for many codes at once (vectorized: an import checks a
    million codes in well under a second). Agrees with it on every input."""
    n = len(codes)
    if n == 0:
        return np.zeros(0, dtype=bool)
    blob = "".join(codes)
    if len(blob) == 18 * n and blob.isascii() and set(map(len, codes)) == {18}:
        fits = np.ones(n, dtype=bool)  # the common case: no per-code Python work
    else:
        fits = np.fromiter((len(c) == 18 and c.isascii() for c in codes), dtype=bool, count=n)
        filler = "0" * 18
        blob = "".join(c if ok else filler for c, ok in zip(codes, fits.tolist(), strict=True))
    chars = np.frombuffer(blob.encode("ascii"), dtype=np.uint8).reshape(n, 18)
    values = _CHAR_VALUE[chars]
    ok = fits & (values >= 0).all(axis=1) & _IS_DIGIT[chars[:, 2:8]].all(axis=1)
    ok &= _AUTHORITY_TYPE[chars[:, 0], chars[:, 1]]
    expected = (31 - (values[:, :17].astype(np.int32) @ _WEIGHTS) % 31) % 31
    ok &= values[:, 17] == expected
    result: np.ndarray = ok
    return result


@dataclass
class _Columns:
    uscc_index: int | None
    # (column index, feature id, cell checker, column checker); checkers return JSON
    parsers: list[tuple[int, str, Callable[[str], str], Callable[[list[str]], list[str] | None]]]


def _keyed_parser(
    parse: Callable[[str], str], transform: Callable[[str], str]
) -> Callable[[str], str]:
    """The cell parser of a keyed-hash column: the raw value is hashed first (an empty
    cell is left to the parser: ``missing_value``)."""

    def keyed(text: str) -> str:
        return parse(transform(text) if text else text)

    return keyed


def _cell_by_cell(column: list[str]) -> list[str] | None:
    """No column-wise shortcut: every cell goes through its parser."""
    return None


def _check_header(
    catalog: Catalog,
    department: str,
    header: list[str],
    line: int,
    suspect: bool,
    result: Checked,
    keyed: Mapping[str, Callable[[str], str]],
) -> _Columns:
    names = [h.strip() for h in header]
    own = catalog.department_features(department)
    columns = _Columns(uscc_index=None, parsers=[])
    seen: set[str] = set()
    features: list[str] = []
    for index, name in enumerate(names):
        shown = name if not (suspect and _SURROGATE.search(name)) else f"column {index + 1}"
        if shown != name:
            result.reject(line, shown, "not_utf8", "the column name is not UTF-8")
            continue
        if not _NAME.fullmatch(name):
            # Not even shaped like a column name: maybe a data row where the header
            # should be. Name the position, never the text (it may be a value).
            result.reject(
                line,
                f"column {index + 1}",
                "unknown_column",
                "the column name is not a feature id (is the header row missing?)",
            )
            continue
        if name in seen:
            result.reject(line, name, "duplicate_column", "the column appears twice")
            continue
        seen.add(name)
        if name == USCC_COLUMN:
            columns.uscc_index = index
        elif name in own:
            features.append(name)
            spec = own[name].spec
            if spec.keyed_hash:
                transform = keyed.get(name)
                if transform is None:
                    result.reject(
                        line,
                        name,
                        "unkeyed_identifier",
                        "the column is kept only as a keyed hash and no key was given",
                    )
                    continue
                columns.parsers.append(
                    (index, name, _keyed_parser(cell_parser(spec), transform), _cell_by_cell)
                )
                continue
            columns.parsers.append((index, name, cell_parser(spec), column_checker(spec)))
        elif name in catalog.features:
            other = catalog.features[name].department
            result.reject(
                line,
                name,
                "other_department_column",
                f"the column belongs to department {other!r}, not {department!r}",
            )
        else:
            result.reject(
                line,
                name,
                "unknown_column",
                "not a feature id of this department in the catalog "
                f"(known: {', '.join(sorted(own))})",
            )
    if columns.uscc_index is None:
        result.reject(line, USCC_COLUMN, "missing_uscc_column", "the header has no 'uscc' column")
    if not features and not result.rejects:
        result.reject(
            line, "", "no_feature_columns", "the header names no feature of this department"
        )
    result.features = tuple(features)
    return columns
