"""The pure index comparison of ``audit verify``: entry bytes against the index columns
and department rows read with them."""

from __future__ import annotations

import json

from audit.verify import IndexCheck, compare_index, departments_named, parse_index_fields


def _raw(time: int, institution: str | None, departments: list[str]) -> bytes:
    fields = {
        "time": time,
        "institution": institution,
        "enterprise": "E",
        "departments": departments,
    }
    return json.dumps(fields).encode()


def _check(
    start: int,
    raws: list[bytes],
    columns: list[tuple[object, ...]],
    filed: dict[str, list[int]],
) -> IndexCheck:
    parsed, unreadable = parse_index_fields(raws, start)
    assert unreadable is None
    rows = [(raw, *c) for raw, c in zip(raws, columns, strict=True)]
    return compare_index(start, parsed, rows, departments_named(start, parsed), filed)


def test_matching_columns_and_rows_pass_and_count_the_departments() -> None:
    check = _check(
        10,
        [_raw(5, "bank_a", ["court", "tax"])],
        [(5, "bank_a", "E")],
        {"court": [10], "tax": [10]},
    )
    assert check.problems == [] and check.departments_named == 2


def test_a_column_of_another_type_or_value_is_named() -> None:
    check = _check(
        0, [_raw(5, "bank_a", []), _raw(6, None, [])], [(5, "bank_a", "E"), ("6", None, "F")], {}
    )
    assert [(p.index, p.message) for p in check.problems] == [
        (1, "entry 1: index column 'time', 'enterprise' of audit_entries differs from the entry")
    ]


def test_a_null_column_differs_from_a_named_institution() -> None:
    check = _check(0, [_raw(5, "bank_a", [])], [(5, None, "E")], {})
    assert [p.index for p in check.problems] == [0]


def test_the_first_missing_department_is_named_and_duplicates_count_once() -> None:
    check = _check(
        7,
        [_raw(1, "b", ["tax", "tax"]), _raw(2, "b", ["court"]), _raw(3, "b", ["tax"])],
        [(1, "b", "E"), (2, "b", "E"), (3, "b", "E")],
        {"tax": [7, 9]},
    )
    assert [(p.index, p.message) for p in check.problems] == [
        (8, "entry 8: audit_entry_departments lacks its department 'court'")
    ]
    assert check.departments_named == 3


def test_a_row_moved_to_another_entry_of_the_chunk_is_a_missing_row() -> None:
    check = _check(
        0,
        [_raw(1, "b", ["tax"]), _raw(2, "b", [])],
        [(1, "b", "E"), (2, "b", "E")],
        {"tax": [1]},
    )
    assert [p.index for p in check.problems] == [0]


def test_bytes_without_the_index_fields_are_named_at_their_index() -> None:
    raws = [_raw(1, "b", []), b'{"time": "soon", "departments": []}', b"not json"]
    parsed, unreadable = parse_index_fields(raws, 3)
    assert len(parsed) == 1
    assert unreadable is not None and unreadable.index == 4
