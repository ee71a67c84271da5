"""Credit repair as pure rules: due in 5 working days, decided once by the department
that supplies the record."""

from datetime import date

import pytest

from casework import repairs
from casework.errors import InvalidObjection, NotOwningDepartment, RepairNotOpen
from common.workdays import WorkCalendar

FRIDAY = 1749175200  # 2025-06-06 10:00 CST


def _file(reason: str = "the fine was paid on time") -> repairs.Repair:
    return repairs.file(
        id="rep_1",
        enterprise="91330100MA27XK3B1X",
        record="admin_penalty.dishonest",
        department="market_regulation",
        reason=reason,
        filed_by="enterprise:x",
        now=FRIDAY,
        calendar=WorkCalendar(),
        working_days=5,
        max_reason_chars=50,
    )


def test_an_application_is_due_five_working_days_later() -> None:
    r = _file()
    # Mon 9 … Fri 13 June 2025.
    assert r.status == "open" and r.due == date(2025, 6, 13)
    assert r.overdue(date(2025, 6, 14)) and not r.overdue(date(2025, 6, 13))


@pytest.mark.parametrize("decision", ["repaired", "rejected"])
def test_the_owning_department_decides_once(decision: str) -> None:
    r = _file()
    res = repairs.decide(
        r,
        department="market_regulation",
        decision=decision,
        reason="checked",
        by="department:m",
        now=FRIDAY + 60,
    )
    done = repairs.resolved(r, res)
    assert (
        done.status == decision
        and done.as_json(date(2025, 6, 7))["resolution"]["reason"] == "checked"
    )
    with pytest.raises(RepairNotOpen):
        repairs.decide(
            done,
            department="market_regulation",
            decision="rejected",
            reason="again",
            by="x",
            now=FRIDAY + 120,
        )


def test_others_cannot_decide_and_bad_decisions_are_refused() -> None:
    with pytest.raises(NotOwningDepartment):
        repairs.decide(
            _file(), department="tax", decision="repaired", reason="x", by="x", now=FRIDAY
        )
    with pytest.raises(InvalidObjection):
        repairs.decide(
            _file(),
            department="market_regulation",
            decision="corrected",
            reason="x",
            by="x",
            now=FRIDAY,
        )
    with pytest.raises(InvalidObjection):
        _file("x" * 51)
