"""The pure financing core: product ranges, the application state machine and outcome
rules, and the statistics arithmetic (no Flask, no SQL)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.errors import InvalidInput
from common.settings import load_settings
from financing import statistics
from financing.applications import Application, check_terms, decide
from financing.errors import (
    ApplicationDecided,
    ApplicationNotSubmitted,
    InvalidApplication,
    InvalidOutcome,
    InvalidProduct,
)
from financing.products import Product, grades_at_least, new_product

CONFIG = load_settings(env={}).config
FIELDS: dict[str, Any] = {
    "name": " 税易贷 ",
    "kind": "credit",
    "amount_min": 100,
    "amount_max": 1000,
    "rate_min": 3.0,
    "rate_max": 5.0,
    "term_months_max": 12,
    "purpose": "working_capital_loan",
    "ops": ["report", "report"],
    "categories": ["tax"],
}


def product(**kw: Any) -> Product:
    return new_product(CONFIG, product_id="p", institution="b", fields={**FIELDS, **kw}, now=0)


def application(status: str = "submitted", submitted_at: int | None = 1) -> Application:
    return Application("a", "p", "b", "9" * 18, 500, 6, status, "c", 0, "e", None, submitted_at)  # type: ignore[arg-type]


def test_a_product_is_trimmed_deduplicated_and_checked() -> None:
    p = product()
    assert p.name == "税易贷" and p.ops == ("report",) and p.status == "active"
    with pytest.raises(InvalidProduct):
        product(name="a\x00b")
    with pytest.raises(InvalidProduct):
        product(ops=["train"])  # not a working-capital purpose's op


def test_grades_at_least() -> None:
    assert grades_at_least("一级") == ("一级", "备选")
    with pytest.raises(InvalidProduct):
        grades_at_least("特级")


@given(st.integers(-10, 2000), st.integers(-2, 20))
def test_terms_inside_the_product_only(amount: int, term: int) -> None:
    p = product()
    inside = 100 <= amount <= 1000 and 1 <= term <= 12
    if inside:
        check_terms(p, amount, term)
    else:
        with pytest.raises(InvalidApplication):
            check_terms(p, amount, term)


def test_outcomes_follow_the_state_machine() -> None:
    p = product()
    ok = {
        "decision": "approved",
        "credit_line": 500,
        "disbursed": 400,
        "rate": 4.0,
        "term_months": 6,
        "credit_loan": True,
        "first_loan": False,
    }
    with pytest.raises(ApplicationNotSubmitted):
        decide(CONFIG, application("awaiting_consent", None), p, ok, by="x", now=1)
    with pytest.raises(ApplicationNotSubmitted):  # withdrawn before the consent
        decide(CONFIG, application("withdrawn", None), p, ok, by="x", now=1)
    with pytest.raises(ApplicationDecided):
        decide(CONFIG, application("withdrawn", 5), p, ok, by="x", now=1)
    with pytest.raises(ApplicationDecided):
        decide(CONFIG, application("approved"), p, ok, by="x", now=1)
    outcome = decide(CONFIG, application(), p, ok, by="x", now=7)
    assert outcome.decision == "approved" and outcome.disbursed == 400 and outcome.decided_at == 7
    for bad in (
        {"rate": 6.0},
        {"disbursed": 600},
        {"term_months": 13},
        {"credit_line": 0},
        {"reason": "other"},
        {"rate": None},
    ):
        with pytest.raises(InvalidOutcome):
            decide(CONFIG, application(), p, {**ok, **bad}, by="x", now=1)
    declined = decide(
        CONFIG, application(), p, {"decision": "declined", "reason": "other"}, by="x", now=1
    )
    assert declined.credit_line is None and not declined.credit_loan


def test_months_are_china_standard_time() -> None:
    m = statistics.month("2026-12")
    assert (
        datetime.fromtimestamp(m.start, statistics.CHINA).isoformat() == "2026-12-01T00:00:00+08:00"
    )
    assert (
        datetime.fromtimestamp(m.end, statistics.CHINA).isoformat() == "2027-01-01T00:00:00+08:00"
    )
    assert statistics.month_of(m.start) == "2026-12" and statistics.month_of(m.end - 1) == "2026-12"
    assert statistics.month_of(m.end) == "2027-01"
    for bad in ("2026-13", "2026-1", "26-01", "2026-00", "0000-01", "9999-12", "1969-12"):
        with pytest.raises(InvalidInput):
            statistics.month(bad)


def test_figures_weight_the_rate_by_the_amount_disbursed() -> None:
    sums = {
        "registered": 5,
        "market_entities": 10,
        "disbursed": 300,
        "rate_weight": 3 * 100 + 4 * 200,
        "credit_loan_disbursed": 100,
        "approved": 2,
    }
    fig = statistics.figures(sums, {"registered": 0.5})
    assert fig["weighted_rate"] == round(1100 / 300, 4)
    assert fig["shares"]["registered"] == 0.5 and fig["credit_loan_share"] == round(1 / 3, 6)
    empty = statistics.figures({}, {})
    assert empty["weighted_rate"] is None and empty["shares"]["registered"] is None


@given(
    st.lists(st.dictionaries(st.sampled_from(statistics.SUMS), st.integers(0, 10**9)), max_size=5)
)
def test_merged_regions_add_up(groups: list[dict[str, int]]) -> None:
    total = statistics.merge({str(i): g for i, g in enumerate(groups)})
    for key in statistics.SUMS:
        assert total[key] == sum(g.get(key, 0) for g in groups)
