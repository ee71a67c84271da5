"""Objections in the database: one open per enterprise and feature, one decision."""

from datetime import date

import pytest
from sqlalchemy import Engine

from casework import objections as core
from casework import store
from casework.errors import ObjectionAlreadyOpen, ObjectionNotOpen
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
