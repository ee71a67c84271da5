"""Inputs of a grading run: dishonesty records counted on the grading day, statements
that do not add up refused, catalog features read into a population."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from grading.errors import InvalidDishonestyRecords, StatementsInconsistent
from grading.population import (
    Statements,
    check_statements,
    dishonesty_counts,
    parse_dishonesty,
    section_of,
    usable_statements,
)

DAY = date(2025, 6, 30)


def test_items_parse_with_their_repair_status() -> None:
    assert parse_dishonesty("none") == []
    assert parse_dishonesty("2024-01-02:open;2020-05-06:repaired") == [
        (date(2024, 1, 2), False),
        (date(2020, 5, 6), True),
    ]


@pytest.mark.parametrize(
    "cell", ["", "2024-01-02", "2024-01-02:fixed", "2024-13-02:open", "24-01-02:open", "x;y"]
)
def test_malformed_items_are_refused_without_echoing_the_cell(cell: str) -> None:
    with pytest.raises(InvalidDishonestyRecords) as e:
        parse_dishonesty(cell)
    assert e.value.code == "invalid_dishonesty_records"
    assert cell == "" or cell not in e.value.message


def test_windows_are_counted_on_the_grading_day() -> None:
    cells = [
        "2023-07-01:open",  # within two years (the day after the cut)
        "2023-06-30:open",  # exactly two years back: outside
        "2024-01-01:repaired",  # repaired: never open
        "2022-07-01:open;2022-06-30:open",  # within three years, then not
        "2025-07-01:open",  # after the grading day: did not exist yet
        None,  # no row at the credit office
    ]
    total, open_24m, within_36m = dishonesty_counts(cells, DAY)
    assert total.tolist() == [1, 1, 1, 2, 0, 0]
    assert open_24m.tolist() == [1, 0, 0, 0, 0, 0]
    assert within_36m.tolist() == [1, 1, 1, 1, 0, 0]


def test_sections_of_divisions() -> None:
    got = section_of(np.array([1, 5, 6, 13, 43, 44, 70, 96, 0]))
    assert ["ABCDEFGHIJKLMNOPQRST"[s] if s >= 0 else "?" for s in got] == list("AABCCDKS?")


GOOD = {
    "total_assets": 1000.0,
    "current_assets": 600.0,
    "total_liabilities": 400.0,
    "current_liabilities": 300.0,
    "equity": 600.0,
    "revenue": 900.0,
    "revenue_prev": 800.0,
    "net_profit": -20.0,
}


def test_statements_that_add_up_pass() -> None:
    check_statements(GOOD, 1.0)
    check_statements({**GOOD, "equity": 600.9}, 1.0)  # within the tolerance


@pytest.mark.parametrize(
    ("change", "rule"),
    [
        ({"equity": 500.0}, "unbalanced"),
        ({"current_assets": 1200.0}, "current_assets_exceed_total"),
        ({"current_liabilities": 450.0}, "current_liabilities_exceed_total"),
        ({"revenue": -1.0}, "negative_amount"),
    ],
)
def test_statements_that_do_not_add_up_are_refused(change: dict[str, float], rule: str) -> None:
    with pytest.raises(StatementsInconsistent) as e:
        check_statements({**GOOD, **change}, 1.0)
    assert e.value.code == "statements_inconsistent" and e.value.details["rule"] == rule
    assert "do not add up" in e.value.message
    assert "500" not in e.value.message and "1200" not in e.value.message


def test_incomplete_statements_are_refused() -> None:
    partial = {k: v for k, v in GOOD.items() if k != "net_profit"}
    with pytest.raises(StatementsInconsistent, match="net_profit"):
        check_statements(partial, 1.0)


def test_only_complete_balanced_filings_are_used() -> None:
    rows = [GOOD, {**GOOD, "equity": 1.0}, {k: float("nan") for k in GOOD}]
    s = Statements(**{k: np.array([r[k] for r in rows]) for k in GOOD})
    assert usable_statements(s, 1.0).tolist() == [True, False, False]
