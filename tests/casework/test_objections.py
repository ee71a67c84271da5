"""The objection lifecycle as pure rules: filing, due date, who decides, overdue."""

from datetime import date

import pytest

from casework import objections as core
from casework.errors import InvalidObjection, NotOwningDepartment, ObjectionNotOpen
from common.workdays import UnknownCalendarYear, WorkCalendar

CAL = WorkCalendar()
# 2026-09-30 10:00 China Standard Time (the eve of the National Day holiday).
EVE_2026 = 1790733600
USCC = "91330100MA27XK3B1X"


def _file(
    claim: str = "The paid tax is too low: we paid in June", now: int = EVE_2026
) -> core.Objection:
    return core.file(
        id="obj_1",
        enterprise=USCC,
        feature="tax.paid_12m",
        department="tax",
        claim=claim,
        filed_by="enterprise:acme",
        now=now,
        calendar=CAL,
        working_days=2,
        max_claim_chars=100,
    )


def test_a_filing_is_open_and_due_two_working_days_later() -> None:
    o = _file()
    assert o.status == "open" and o.resolution is None
    assert o.due == date(2026, 10, 9)  # Oct 1–7 are holidays
    assert not o.overdue(date(2026, 10, 9))
    assert o.overdue(date(2026, 10, 10))


def test_a_filing_after_office_hours_counts_like_any_other_that_day() -> None:
    late = _file(now=EVE_2026 + 12 * 3600)  # 22:00 the same evening
    assert late.due == date(2026, 10, 9)
    # 2026-09-30 16:30 UTC is 00:30 on Oct 1 in Beijing: a holiday, so the count is
    # Oct 8, Oct 9 as well.
    assert _file(now=EVE_2026 + 14 * 3600 + 1800).due == date(2026, 10, 9)


@pytest.mark.parametrize("claim", ["", "   ", "x" * 101, "bad\x00byte"])
def test_a_bad_claim_is_refused(claim: str) -> None:
    with pytest.raises(InvalidObjection) as e:
        _file(claim)
    assert e.value.details["field"] == "claim"


def test_a_filing_in_an_unknown_year_is_refused() -> None:
    with pytest.raises(UnknownCalendarYear):
        _file(now=1950000000)  # 2031


def test_the_owning_department_corrects_with_a_value() -> None:
    o = _file()
    r = core.decide(
        o,
        department="tax",
        decision="corrected",
        reason="re-checked",
        has_value=True,
        by="department:tax1",
        now=EVE_2026 + 3600,
    )
    done = core.resolved(o, r)
    assert done.status == "corrected" and done.resolution == r
    assert not done.overdue(date(2027, 1, 1))  # decided in time stays in time
    with pytest.raises(ObjectionNotOpen):
        core.decide(
            done,
            department="tax",
            decision="rejected",
            reason="again",
            has_value=False,
            by="department:tax1",
            now=EVE_2026 + 7200,
        )


def test_the_owning_department_rejects_with_a_reason() -> None:
    o = _file()
    r = core.decide(
        o,
        department="tax",
        decision="rejected",
        reason="the return was filed late",
        has_value=False,
        by="department:tax1",
        now=EVE_2026,
    )
    assert core.resolved(o, r).status == "rejected"
    assert core.resolved(o, r).as_json(date(2026, 10, 1))["resolution"]["reason"] == (
        "the return was filed late"
    )


def test_a_decision_after_the_due_date_stays_flagged_overdue() -> None:
    o = _file()
    late = EVE_2026 + 11 * 86400  # Oct 11
    r = core.decide(
        o,
        department="tax",
        decision="rejected",
        reason="late",
        has_value=False,
        by="department:tax1",
        now=late,
    )
    assert core.resolved(o, r).overdue(date(2026, 10, 11))


@pytest.mark.parametrize("department", ["social_security", None])
def test_another_department_or_nobody_cannot_decide(department: str | None) -> None:
    with pytest.raises(NotOwningDepartment):
        core.decide(
            _file(),
            department=department,
            decision="rejected",
            reason="no",
            has_value=False,
            by="x",
            now=EVE_2026,
        )


@pytest.mark.parametrize(
    ("decision", "reason", "has_value", "field"),
    [
        ("accepted", "ok", False, "decision"),
        ("corrected", "ok", False, "value"),
        ("rejected", "ok", True, "value"),
        ("rejected", " ", False, "reason"),
    ],
)
def test_malformed_decisions_are_refused(
    decision: str, reason: str, has_value: bool, field: str
) -> None:
    with pytest.raises(InvalidObjection) as e:
        core.decide(
            _file(),
            department="tax",
            decision=decision,
            reason=reason,
            has_value=has_value,
            by="x",
            now=EVE_2026,
        )
    assert e.value.details["field"] == field
