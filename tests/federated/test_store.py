"""federated.store: contexts per institution, append-only model versions (SQLite and
PostgreSQL)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from common.errors import InvalidInput
from common.settings import Settings
from federated import he
from federated import store as fstore
from federated.models import InvalidModel, JointModel


def _institution(engine: Engine, institution_id: str) -> None:
    now = int(time.time())
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO institutions (id, name, jwk, status, created_at, status_changed_at)"
                " VALUES (:id, :id, '{}', 'active', :now, :now)"
            ),
            {"id": institution_id, "now": now},
        )


def test_a_context_belongs_to_its_institution(engine: Engine) -> None:
    _institution(engine, "bank_a")
    _institution(engine, "bank_b")
    data = b"public context bytes" * 1000
    cid, created = fstore.register_context(engine, "bank_a", data, he.DEFAULT_PARAMS)
    assert created and cid.startswith("ctx_")
    again, created_again = fstore.register_context(engine, "bank_a", data, he.DEFAULT_PARAMS)
    assert (again, created_again) == (cid, False)
    stored = fstore.get_context(engine, cid, "bank_a")
    assert stored.data == data and stored.params == he.DEFAULT_PARAMS
    with pytest.raises(fstore.ContextNotFound):
        fstore.get_context(engine, cid, "bank_b")
    other, _ = fstore.register_context(engine, "bank_b", data, he.DEFAULT_PARAMS)
    assert other != cid
    assert [c["id"] for c in fstore.list_contexts(engine, "bank_a")] == [cid]


def test_models_are_versioned_and_never_changed(
    engine: Engine, make_model: Callable[..., JointModel]
) -> None:
    first = fstore.register_model(engine, make_model(seed=1), "operator:test")
    assert (first.version, first.registered_by) == (1, "operator:test")
    assert first.created_at is not None
    same = fstore.register_model(engine, make_model(seed=1), "training:s1")
    assert same.version == 1 and same.registered_by == "operator:test"
    second = fstore.register_model(engine, make_model(seed=2), "training:s1")
    assert second.version == 2
    assert fstore.get_model(engine, "sme-risk").version == 2
    old = fstore.get_model(engine, "sme-risk", 1)
    assert old.gateway_weights == first.gateway_weights
    assert old.ref == "sme-risk@1"
    assert fstore.newest_version(engine, "sme-risk") == 2
    assert fstore.newest_version(engine, "nope") is None


def test_list_shows_the_newest_version_of_each_model(
    engine: Engine, make_model: Callable[..., JointModel]
) -> None:
    fstore.register_model(engine, make_model(seed=1), "operator:test")
    fstore.register_model(engine, make_model(seed=2), "operator:test")
    fstore.register_model(engine, replace(make_model(seed=3), id="other"), "operator:test")
    assert [(m.id, m.version) for m in fstore.list_models(engine)] == [
        ("other", 1),
        ("sme-risk", 2),
    ]


def test_unknown_models_are_not_found(engine: Engine) -> None:
    with pytest.raises(fstore.ModelNotFound) as e:
        fstore.get_model(engine, "nope")
    assert e.value.code == "model_not_found"


def test_the_catalog_is_checked_when_given(
    engine: Engine, make_model: Callable[..., JointModel], make_settings: Callable[..., Settings]
) -> None:
    catalog = make_settings().config.categories
    bad = replace(make_model(), gateway_features=("tax.nope", "tax.paid_12m", "tax.arrears"))
    with pytest.raises(InvalidModel):
        fstore.register_model(engine, bad, "training:s1", catalog=catalog)
    assert fstore.list_models(engine) == []
    ok = fstore.register_model(engine, make_model(), "training:s1", catalog=catalog)
    assert ok.version == 1


# Governance: owners, review, the distinct-model cap (issue 12) ---------------------------


def test_only_the_owner_adds_versions_and_an_institution_registers_pending(
    engine: Engine, make_model: Callable[..., JointModel]
) -> None:
    own = replace(make_model(seed=1), id="bank_a/risk")
    first = fstore.register_model(engine, own, "training:s1", owner="bank_a")
    assert (first.ref, first.status, first.owner) == ("bank_a/risk@1", "pending", "bank_a")
    for owner, model_id in (("bank_b", "bank_a/risk"), ("bank_b", "risk"), ("bank_a", "risk")):
        with pytest.raises(fstore.ModelNotOwned):
            fstore.register_model(
                engine, replace(make_model(seed=2), id=model_id), "training:s2", owner=owner
            )
    with pytest.raises(InvalidInput):  # only the operator registers approved
        fstore.register_model(engine, own, "training:s1", owner="bank_a", status="approved")
    assert fstore.newest_version(engine, "bank_a/risk") == 1
    assert fstore.newest_version(engine, "risk") is None
    # The operator may add a version to any id.
    second = fstore.register_model(engine, replace(own, intercept=0.5), "operator:import")
    assert (second.version, second.status) == (2, "approved")


def test_a_pending_version_is_reviewed_once_and_only_approved_ones_serve(
    engine: Engine, make_model: Callable[..., JointModel]
) -> None:
    own = replace(make_model(seed=1), id="bank_a/risk")
    fstore.register_model(engine, own, "training:s1", owner="bank_a")
    with pytest.raises(fstore.ModelNotApproved):
        fstore.get_model(engine, "bank_a/risk", approved=True)
    with pytest.raises(fstore.ModelNotApproved):
        fstore.get_model(engine, "bank_a/risk", 1, approved=True)
    assert fstore.list_models(engine) == []
    assert [r.model.status for r in fstore.list_versions(engine)] == ["pending"]
    logged: list[tuple[str, str]] = []
    approved = fstore.review_model(
        engine,
        "bank_a/risk",
        1,
        approve=True,
        reviewer="operator:ops",
        audit=lambda _s, m, status: logged.append((m.ref, status)),
    )
    assert approved.approved and logged == [("bank_a/risk@1", "approved")]
    with pytest.raises(fstore.ModelAlreadyReviewed):
        fstore.review_model(
            engine, "bank_a/risk", 1, approve=False, reviewer="x", audit=lambda *_: None
        )
    assert fstore.get_model(engine, "bank_a/risk", approved=True).version == 1
    # A newer pending version does not replace the approved one for unpinned references.
    fstore.register_model(engine, replace(own, intercept=0.7), "training:s2", owner="bank_a")
    assert fstore.get_model(engine, "bank_a/risk", approved=True).version == 1
    assert [m.ref for m in fstore.list_models(engine)] == ["bank_a/risk@1"]
    (record,) = [r for r in fstore.list_versions(engine) if r.model.version == 1]
    assert record.reviewed_by == "operator:ops" and record.reviewed_at is not None


def test_the_model_cap_counts_distinct_models_per_enterprise_across_grants(
    engine: Engine,
) -> None:
    from common.db import write_session

    def take(model: str, grant: str = "g1", enterprise: str = "E1", now: int = 1000) -> bool:
        with write_session(engine) as s:
            return fstore.take_model_use(
                s,
                institution="bank_a",
                enterprise=enterprise,
                grant_id=grant,
                model_ref=model,
                since=now - 100,
                cap=2,
                now=now,
            )

    assert take("m@1") and take("m@2") and take("m@1")
    assert not take("m@3")
    assert not take("m@3", grant="g2")  # another grant, same period
    assert take("m@3", enterprise="E2")  # another enterprise
    assert take("m@3", now=1200)  # the earlier uses are out of the period
    assert take("m@2", now=1200)
    assert not take("m@1", now=1200)  # used under this grant, but before the period
