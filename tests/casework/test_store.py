"""Objections in the database: one open per enterprise and feature, one decision."""

from datetime import date

import pytest
from sqlalchemy import Engine

from casework import objections as core
from casework import repairs, store
from casework.errors import (
    ObjectionAlreadyOpen,
    ObjectionNotOpen,
    RepairAlreadyOpen,
    RepairNotOpen,
)
from common.db import read_session, write_session
from common.workdays import WorkCalendar

NOW = 1790733600  # 2026-09-30 10:00 CST
A = "91330100MA27XK3B1X"
B = "91330106MA2H0YQ57X"


def _objection(oid: str, enterprise: str = A, feature: str = "tax.paid_12m") -> core.Objection:
    return core.file(
        id=oid,
        enterprise=enterprise,
        feature=feature,
        department=feature.split(".")[0],
        claim="wrong",
        filed_by="enterprise:x",
        now=NOW,
        calendar=WorkCalendar(),
        working_days=2,
        max_claim_chars=100,
    )


def test_one_open_objection_per_enterprise_and_feature(engine: Engine) -> None:
    with write_session(engine) as s:
        store.insert(s, _objection("obj_1"))
        store.insert(s, _objection("obj_2", feature="tax.arrears"))
        store.insert(s, _objection("obj_3", enterprise=B))
    with pytest.raises(ObjectionAlreadyOpen), write_session(engine) as s:
        store.insert(s, _objection("obj_4"))
    # Once decided, a new objection about the same feature may be filed.
    first = _objection("obj_1")
    r = core.decide(
        first,
        department="tax",
        decision="rejected",
        reason="no",
        has_value=False,
        by="department:t",
        now=NOW + 60,
    )
    with write_session(engine) as s:
        store.record_resolution(s, "obj_1", r)
        store.insert(s, _objection("obj_5"))
    with pytest.raises(ObjectionNotOpen), write_session(engine) as s:
        store.record_resolution(s, "obj_1", r)
    with read_session(engine) as s:
        got = store.get(s, "obj_1")
        assert got is not None and got.status == "rejected" and got.resolution == r
        assert got.due == date(2026, 10, 9)
        assert [o.id for o in store.listing(s, enterprise=A)] == ["obj_1", "obj_2", "obj_5"]
        assert [o.id for o in store.listing(s, enterprise=A, status="open")] == ["obj_2", "obj_5"]
        assert {o.id for o in store.listing(s, department="tax")} == {
            "obj_1",
            "obj_2",
            "obj_3",
            "obj_5",
        }
        assert store.get(s, "obj_missing") is None


def test_disputed_names_open_objections_among_the_features_asked(engine: Engine) -> None:
    with write_session(engine) as s:
        store.insert(s, _objection("obj_1"))
        store.insert(s, _objection("obj_2", feature="tax.arrears"))
        store.insert(
            s, _objection("obj_3", enterprise=B, feature="social_security.months_in_arrears_12m")
        )
    with read_session(engine) as s:
        assert store.disputed(s, [A], ["tax.paid_12m", "tax.arrears", "x.y"]) == {
            A: ["tax.arrears", "tax.paid_12m"]
        }
        assert store.disputed(s, [A, B], ["social_security.months_in_arrears_12m"]) == {
            B: ["social_security.months_in_arrears_12m"]
        }
        assert store.disputed(s, [B], ["tax.paid_12m"]) == {}
        assert store.disputed(s, [], ["tax.paid_12m"]) == {}


def _repair(rid: str, record: str = "admin_penalty.dishonest") -> repairs.Repair:
    return repairs.file(
        id=rid,
        enterprise=A,
        record=record,
        department="market_regulation",
        reason="the penalty was paid and the deadline served",
        filed_by="enterprise:x",
        now=NOW,
        calendar=WorkCalendar(),
        working_days=5,
        max_reason_chars=200,
    )


def test_repairs_one_open_per_record_decided_once(engine: Engine) -> None:
    with write_session(engine) as s:
        store.insert_repair(s, _repair("rep_1"))
        store.insert_repair(s, _repair("rep_2", "admin_penalty.penalties_36m"))
    with pytest.raises(RepairAlreadyOpen), write_session(engine) as s:
        store.insert_repair(s, _repair("rep_3"))
    first = _repair("rep_1")
    r = repairs.decide(
        first,
        department="market_regulation",
        decision="repaired",
        reason="conditions met",
        by="department:m",
        now=NOW + 60,
    )
    with write_session(engine) as s:
        store.record_repair_resolution(s, "rep_1", r)
    with pytest.raises(RepairNotOpen), write_session(engine) as s:
        store.record_repair_resolution(s, "rep_1", r)
    with read_session(engine) as s:
        got = store.get_repair(s, "rep_1")
        assert got is not None and got.status == "repaired" and got.resolution == r
        assert got.due == date(2026, 10, 13)  # Oct 8, 9, 10 (调休 Saturday), 12, 13
        assert store.repaired(s, A, ["admin_penalty.dishonest", "admin_penalty.penalties_36m"]) == [
            "admin_penalty.dishonest"
        ]
        assert store.repaired(s, B, ["admin_penalty.dishonest"]) == []
        assert [x.id for x in store.list_repairs(s, department="market_regulation")] == [
            "rep_1",
            "rep_2",
        ]
        assert [x.id for x in store.list_repairs(s, status="open")] == ["rep_2"]


def test_overdue_objections_are_the_open_ones_past_their_due_date(engine: Engine) -> None:
    # Filed 2026-09-30: due 2026-10-09 (the National Day holidays lie between).
    with write_session(engine) as s:
        store.insert(s, _objection("obj_1"))
        store.insert(s, _objection("obj_2", feature="tax.arrears"))
        store.insert(s, _objection("obj_3", enterprise=B))
    decided = core.decide(
        _objection("obj_2", feature="tax.arrears"),
        department="tax",
        decision="rejected",
        reason="no",
        has_value=False,
        by="department:t",
        now=NOW + 60,
    )
    with write_session(engine) as s:
        store.record_resolution(s, "obj_2", decided)
    with read_session(engine) as s:
        assert store.overdue_objections(s, date(2026, 10, 9)) == []  # due today: not yet
        late = store.overdue_objections(s, date(2026, 10, 10))
    assert [(o.id, o.due) for o in late] == [
        ("obj_1", date(2026, 10, 9)),
        ("obj_3", date(2026, 10, 9)),
    ]
