"""Checking department files: every error class is reported with line, column and a
stable code; a file with any problem yields no rows."""

from __future__ import annotations

import csv
import io
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common import uscc
from records.catalog import Catalog
from records.importer import REJECT_CODES, Checked, check, rejects_csv, valid_usccs
from tests.records.conftest import A, B, C, D, csv_bytes

TAX = ("uscc", "tax.paid_12m", "tax.revenue_12m", "tax.credit_rating", "tax.arrears")


def problems(result: Checked) -> list[tuple[int, str, str]]:
    return [(r.line, r.column, r.code) for r in result.rejects]


def test_a_clean_file_yields_one_row_per_enterprise(catalog: Catalog) -> None:
    data = csv_bytes(TAX, (A, "1234.5", "100000", "A", "0"), (B, "7", "80", "M", "3.25"))
    result = check(catalog, "tax", data)
    assert result.ok and result.row_count == 2
    assert result.features == TAX[1:]
    rows = dict(result.rows)
    assert json.loads(rows[A]) == [1234.5, 100000, "A", 0]
    assert json.loads(rows[B]) == [7, 80, "M", 3.25]


def test_a_subset_of_columns_in_any_order_is_fine(catalog: Catalog) -> None:
    data = csv_bytes(("tax.credit_rating", "uscc"), ("B", A))
    result = check(catalog, "tax", data)
    assert result.ok and result.features == ("tax.credit_rating",)
    assert result.rows == [(A, '["B"]')]


def test_bom_crlf_spaces_quotes_and_blank_lines_are_tolerated(catalog: Catalog) -> None:
    text = (
        "\ufeffuscc , registration.name,registration.size\r\n"
        f'{A}, "杭州华信贸易有限公司, 分公司",micro \r\n'
        "\r\n"
        f'{B},"say ""hi""",small\r\n'
    )
    result = check(catalog, "market_regulation", text.encode("utf-8"))
    assert result.ok, result.rejects
    assert json.loads(dict(result.rows)[A]) == ["杭州华信贸易有限公司, 分公司", "micro"]
    assert json.loads(dict(result.rows)[B]) == ['say "hi"', "small"]


def test_control_characters_in_text_are_refused(catalog: Catalog) -> None:
    header = ("uscc", "registration.name")
    data = csv_bytes(header, (A, '"two\nlines"'), (B, "nul\x00byte"))
    result = check(catalog, "market_regulation", data)
    assert problems(result) == [
        (3, "registration.name", "wrong_type"),
        (4, "registration.name", "wrong_type"),
    ]


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        # wrong types, negative amounts, out of range, unknown enum values
        ([(A, "abc", "1", "A", "0")], [(2, "tax.paid_12m", "wrong_type")]),
        ([(A, "-100", "1", "A", "0")], [(2, "tax.paid_12m", "negative_amount")]),
        ([(A, "1", "1", "AA", "0")], [(2, "tax.credit_rating", "unknown_value")]),
        ([(A, "", "1", "A", "0")], [(2, "tax.paid_12m", "missing_value")]),
        # bad check digit
        ([(A[:-1] + ("0" if A[-1] != "0" else "1"), "1", "1", "A", "0")],
         [(2, "uscc", "invalid_uscc")]),
        ([("not-a-code", "1", "1", "A", "0")], [(2, "uscc", "invalid_uscc")]),
        # duplicates within the file: the second one is reported, pointing at the first
        ([(A, "1", "1", "A", "0"), (B, "1", "1", "A", "0"), (A, "2", "2", "B", "0")],
         [(4, "uscc", "duplicate_uscc")]),
        # ragged rows
        ([(A, "1", "1", "A"), (B, "1", "1", "A", "0", "9")],
         [(2, "", "ragged_row"), (3, "", "ragged_row")]),
    ],
)  # fmt: skip
def test_each_bad_row_is_reported_and_nothing_is_loaded(
    catalog: Catalog, rows: list[tuple[str, ...]], expected: list[tuple[int, str, str]]
) -> None:
    good = (C, "5", "5", "B", "0")
    result = check(catalog, "tax", csv_bytes(TAX, good, *rows))
    shifted = [(line + 1, col, code) for line, col, code in expected]
    assert problems(result) == shifted
    assert result.rows == [] and not result.ok


def test_every_problem_of_every_row_is_reported_in_line_order(catalog: Catalog) -> None:
    data = csv_bytes(
        TAX,
        ("bad", "-1", "x", "Z", "0"),
        (A, "1", "1", "A", "0"),
        (A, "1", "1", "A", "-2"),
        (B, "1", "1", "A", "1.234"),
    )
    result = check(catalog, "tax", data)
    assert problems(result) == [
        (2, "tax.paid_12m", "negative_amount"),
        (2, "tax.revenue_12m", "wrong_type"),
        (2, "tax.credit_rating", "unknown_value"),
        (2, "uscc", "invalid_uscc"),
        (4, "tax.arrears", "negative_amount"),
        (4, "uscc", "duplicate_uscc"),
        (5, "tax.arrears", "wrong_type"),
    ]
    assert result.bad_rows == 3 and result.row_count == 4


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (("uscc", "tax.paid_12m", "tax.bogus"), [(1, "tax.bogus", "unknown_column")]),
        (("uscc", "tax.paid_12m", "salary"), [(1, "salary", "unknown_column")]),
        (("uscc", "tax.paid_12m", "utilities.power_kwh_12m"),
         [(1, "utilities.power_kwh_12m", "other_department_column")]),
        (("uscc", "tax.paid_12m", "tax.paid_12m"), [(1, "tax.paid_12m", "duplicate_column")]),
        (("id", "tax.paid_12m", "tax.arrears"),
         [(1, "id", "unknown_column"), (1, "uscc", "missing_uscc_column")]),
        (("uscc",), [(1, "", "no_feature_columns")]),
        (("uscc", "tax.paid_12m", "Tax Paid"), [(1, "column 3", "unknown_column")]),
    ],
)  # fmt: skip
def test_header_problems_refuse_the_file(
    catalog: Catalog, header: tuple[str, ...], expected: list[tuple[int, str, str]]
) -> None:
    row = [A] + ["1"] * (len(header) - 1)
    result = check(catalog, "tax", csv_bytes(header, row))
    assert problems(result) == expected
    assert result.rows == []


def test_an_empty_file_and_a_header_only_file_are_refused(catalog: Catalog) -> None:
    assert problems(check(catalog, "tax", b"")) == [(1, "", "empty_file")]
    assert problems(check(catalog, "tax", b"\n\n")) == [(1, "", "empty_file")]
    assert problems(check(catalog, "tax", csv_bytes(TAX))) == [(1, "", "no_rows")]


def test_bytes_that_are_not_utf8_are_reported_where_they_are(catalog: Catalog) -> None:
    good = f"{A},1,1,A,0\n".encode()
    gbk = f"{B},".encode() + "杭州".encode("gbk") + b",1,A,0\n"
    data = (",".join(TAX) + "\n").encode() + good + gbk + f"{C},-1,1,A,0\n".encode()
    result = check(catalog, "tax", data)
    assert problems(result) == [
        (3, "tax.paid_12m", "not_utf8"),
        (4, "tax.paid_12m", "negative_amount"),
    ]


def test_broken_quoting_stops_parsing_with_bad_csv(catalog: Catalog) -> None:
    data = csv_bytes(TAX, (A, "1", "1", "A", "0"), (B, '"1"2', "1", "A", "0"))
    result = check(catalog, "tax", data)
    assert problems(result) == [(3, "", "bad_csv")]
    assert result.rows == []


def test_reasons_never_contain_the_values(catalog: Catalog) -> None:
    canary = "987654321.77"
    data = csv_bytes(TAX, (A, f"-{canary}", canary + "x", "Q" + canary, canary + "5"))
    result = check(catalog, "tax", data)
    assert len(result.rejects) == 4
    assert canary not in rejects_csv(result.rejects)


def test_every_reported_code_is_documented(catalog: Catalog) -> None:
    data = csv_bytes(
        ("uscc", "tax.paid_12m", "tax.x", "utilities.late_payments_12m"),
        ("bad", "-1", "", ""),
        (A, "1", "", "", "extra"),
    )
    result = check(catalog, "tax", data)
    assert {r.code for r in result.rejects} <= set(REJECT_CODES)


def test_rejects_csv_lists_line_column_code_and_reason(catalog: Catalog) -> None:
    result = check(catalog, "tax", csv_bytes(TAX, (A, "-1", "1", "A", "0")))
    rows = list(csv.reader(io.StringIO(rejects_csv(result.rejects))))
    assert rows == [
        ["line", "column", "code", "reason"],
        ["2", "tax.paid_12m", "negative_amount", "amounts cannot be negative"],
    ]


def test_progress_is_reported_up_to_the_row_count(catalog: Catalog) -> None:
    seen: list[int] = []
    rows = [(uscc.complete(f"9133010{i:010d}"), "1", "1", "A", "0") for i in range(25_000)]
    result = check(catalog, "tax", csv_bytes(TAX, *rows), progress=seen.append)
    assert result.ok
    assert seen == [10_000, 20_000, 25_000]


# The vectorized check agrees with common.uscc ------------------------------------------

_ALPHABET = uscc.ALPHABET + "IOZSV" + "a-*é"
codes = st.one_of(
    st.builds(
        lambda a, t, div, org: uscc.complete(a + t + div + org),
        st.sampled_from(sorted(uscc.AUTHORITY_TYPES)),
        st.sampled_from("123459"),
        st.text("0123456789", min_size=6, max_size=6),
        st.text(uscc.ALPHABET, min_size=9, max_size=9),
    ),
    st.text(_ALPHABET, min_size=17, max_size=19),
    st.text(max_size=20),
)


@given(st.lists(codes, max_size=30), st.data())
def test_vectorized_check_agrees_with_common_uscc(batch: list[str], data: st.DataObject) -> None:
    # Flip one character of some valid codes so near misses are common.
    mutated = []
    for code in batch:
        if len(code) == 18 and data.draw(st.booleans()):
            i = data.draw(st.integers(0, 17))
            code = code[:i] + data.draw(st.sampled_from(_ALPHABET)) + code[i + 1 :]
        mutated.append(code)
    assert valid_usccs(mutated).tolist() == [uscc.is_valid(c) for c in mutated]


def test_known_codes(catalog: Catalog) -> None:
    assert valid_usccs([A, B, C, D, "91330100716105852F", "91330100716105852G"]).tolist() == [
        True, True, True, True, True, False,
    ]  # fmt: skip


def test_a_missing_header_row_never_echoes_the_data_it_holds(catalog: Catalog) -> None:
    data = csv_bytes((A, "7391562.83", "48213977.41"), (B, "1", "2"))
    result = check(catalog, "tax", data)
    assert problems(result) == [
        (1, "column 1", "unknown_column"),
        (1, "column 2", "unknown_column"),
        (1, "column 3", "unknown_column"),
        (1, "uscc", "missing_uscc_column"),
    ]
    text = rejects_csv(result.rejects)
    assert "7391562" not in text and A not in text and "is the header row missing" in text
