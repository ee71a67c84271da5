"""The financing loop over HTTP (CONTRACT v2 "Financing"): products, applications that
create an ordinary consent, outcomes by the product's institution only, needs, and the
month's statistics against an independent recount. Every refusal stores nothing."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openpyxl
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient

from cli import main
from cli.stats import SUMMARY_ROWS
from common.db import read_session
from consent import store as consent_store
from financing import store as fin
from financing.statistics import month as month_interval
from financing.statistics import month_of
from registry.store import users
from tests.gateway.conftest import ENTERPRISE, OTHER_ENTERPRISE, Bank
from tests.gateway.test_data_api import load

PRODUCT: dict[str, Any] = {
    "name": "税易贷",
    "kind": "credit",
    "amount_min": 100_000,
    "amount_max": 3_000_000,
    "rate_min": 3.45,
    "rate_max": 4.8,
    "term_months_max": 36,
    "purpose": "working_capital_loan",
    "ops": ["report", "verify"],
    "categories": ["tax", "social_security"],
}
APPROVED: dict[str, Any] = {
    "decision": "approved",
    "credit_line": 1_000_000,
    "disbursed": 800_000,
    "rate": 3.85,
    "term_months": 12,
    "credit_loan": True,
    "first_loan": True,
}


def real_name(app: Flask, uscc: str, verified: bool = True) -> None:
    """What sign-up does once the legal representative matched (or, with ``verified``
    False, an account that never showed it: the state of a fresh self sign-up)."""
    with app.extensions["xinyi"].engine.begin() as c:
        c.execute(
            users.update()
            .where(users.c.uscc == uscc, users.c.role == "enterprise")
            .values(real_name_at=int(time.time()) if verified else None)
        )


def counts(app: Flask) -> tuple[int, int, int]:
    """(consents, applications, outbox events): what a refusal must leave untouched."""
    with read_session(app.extensions["xinyi"].engine) as s:
        return (
            s.execute(sa.select(sa.func.count()).select_from(consent_store.consents)).scalar_one(),
            s.execute(sa.select(sa.func.count()).select_from(fin.applications)).scalar_one(),
            s.execute(
                sa.select(sa.func.count()).select_from(consent_store.webhook_outbox)
            ).scalar_one(),
        )


@pytest.fixture
def bank(make_bank: Callable[..., Bank]) -> Bank:
    return make_bank("demo_bank")


@pytest.fixture
def enterprise(app: Flask, make_person: Callable[..., FlaskClient]) -> FlaskClient:
    person = make_person("enterprise", ENTERPRISE)
    real_name(app, ENTERPRISE)
    return person


@pytest.fixture
def product(bank: Bank, client: FlaskClient) -> str:
    resp = bank.post(client, "/v1/products", PRODUCT)
    assert resp.status_code == 201, resp.get_json()
    return str(resp.get_json()["id"])


def apply(person: FlaskClient, product: str, **kw: Any) -> Any:
    return person.post(
        "/v1/applications", json={"product": product, "amount": 500_000, "term_months": 12, **kw}
    )


def submitted(person: FlaskClient, product: str) -> dict[str, Any]:
    resp = apply(person, product)
    assert resp.status_code == 201, resp.get_json()
    opened = resp.get_json()
    resp = person.post(f"/v1/consents/{opened['consent']['id']}/approve")
    assert resp.status_code == 200, resp.get_json()
    return opened  # type: ignore[no-any-return]


# Products -------------------------------------------------------------------------------


def test_products_are_public_filtered_and_withdrawn_ones_disappear(
    bank: Bank, client: FlaskClient, make_bank: Callable[..., Bank]
) -> None:
    cheap = bank.post(client, "/v1/products", {**PRODUCT, "name": "A", "min_grade": "一级"})
    other = make_bank("other_bank")
    big = other.post(
        client,
        "/v1/products",
        {
            **PRODUCT,
            "name": "B",
            "kind": "guarantee",
            "amount_min": 5_000_000,
            "amount_max": 50_000_000,
            "rate_min": 5.0,
            "rate_max": 6.0,
            "term_months_max": 60,
        },
    )
    assert cheap.status_code == big.status_code == 201

    def names(q: str) -> list[str]:
        return [p["name"] for p in client.get(f"/v1/products{q}").get_json()["products"]]

    assert names("") == ["A", "B"]  # public: no authentication
    assert names("?kind=guarantee") == ["B"]
    assert names("?amount=200000") == ["A"]
    assert names("?amount=10000000") == ["B"]
    assert names("?term=48") == ["B"]
    assert names("?rate=4") == ["A"]
    assert names("?grade=备选") == ["B"]  # A needs at least 一级
    assert names("?grade=高级") == ["A", "B"]
    assert client.get("/v1/products?amount=1e3").status_code == 400
    assert names("?limit=1") == ["A"] and names("?limit=1&offset=1") == ["B"]
    assert client.get("/v1/products?limit=201").status_code == 400
    resp = bank.post(client, f"/v1/products/{cheap.get_json()['id']}/withdraw")
    assert resp.status_code == 200 and resp.get_json()["status"] == "withdrawn"
    assert names("") == ["B"]
    # Another institution's product is not even named to it.
    assert other.post(client, f"/v1/products/{cheap.get_json()['id']}/withdraw").status_code == 404


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"amount_min": 0}, "amount_min"),
        ({"amount_min": 5_000_000}, "amount_min"),
        ({"rate_max": 3.0}, "rate_min"),
        ({"rate_max": 99.0}, "rate_max"),
        ({"term_months_max": 0}, "term_months_max"),
        ({"kind": "magic"}, "kind"),
        ({"purpose": "joint_model_training"}, "ops"),
        ({"categories": ["nope"]}, "categories"),
        ({"categories": ["legal_representative_credit"]}, "categories"),
        ({"min_grade": "特级"}, "min_grade"),
    ],
)
def test_a_product_out_of_range_is_refused_and_not_stored(
    bank: Bank, client: FlaskClient, change: dict[str, Any], field: str
) -> None:
    resp = bank.post(client, "/v1/products", {**PRODUCT, **change})
    assert resp.status_code == 400, resp.get_json()
    assert resp.get_json()["error"] == "invalid_product"
    assert resp.get_json().get("field") == field
    assert client.get("/v1/products").get_json()["products"] == []


def test_only_an_institution_publishes(client: FlaskClient, enterprise: FlaskClient) -> None:
    assert enterprise.post("/v1/products", json=PRODUCT).status_code == 403
    assert client.post("/v1/products", json=PRODUCT).status_code == 401


# Applications ---------------------------------------------------------------------------


def test_applying_without_real_name_is_refused_and_nothing_is_stored(
    app: Flask, product: str, make_person: Callable[..., FlaskClient]
) -> None:
    person = make_person("enterprise", OTHER_ENTERPRISE)
    real_name(app, OTHER_ENTERPRISE, verified=False)
    before = counts(app)
    resp = apply(person, product)
    assert resp.status_code == 403
    assert resp.get_json()["error"] == "real_name_required"
    assert counts(app) == before


@pytest.mark.parametrize(
    "terms", [{"amount": 99_999}, {"amount": 3_000_001}, {"term_months": 37}, {"term_months": 0}]
)
def test_amounts_or_terms_outside_the_product_are_refused_and_nothing_is_stored(
    app: Flask, product: str, enterprise: FlaskClient, terms: dict[str, int]
) -> None:
    before = counts(app)
    resp = apply(enterprise, product, **terms)
    assert resp.status_code == 400, resp.get_json()
    assert resp.get_json()["error"] == "invalid_application"
    assert counts(app) == before


def test_a_withdrawn_product_takes_no_application_but_past_ones_keep_it(
    app: Flask, bank: Bank, client: FlaskClient, product: str, enterprise: FlaskClient
) -> None:
    first = apply(enterprise, product).get_json()
    bank.post(client, f"/v1/products/{product}/withdraw")
    before = counts(app)
    resp = apply(enterprise, product)
    assert resp.status_code == 409 and resp.get_json()["error"] == "product_withdrawn"
    assert counts(app) == before
    mine = enterprise.get("/v1/applications").get_json()["applications"]
    assert [a["product"] for a in mine] == [product] and mine[0]["id"] == first["id"]


def test_the_loop_apply_approve_consent_decide(
    app: Flask,
    bank: Bank,
    client: FlaskClient,
    product: str,
    enterprise: FlaskClient,
    make_bank: Callable[..., Bank],
) -> None:
    resp = apply(enterprise, product)
    assert resp.status_code == 201, resp.get_json()
    opened = resp.get_json()
    assert opened["status"] == "awaiting_consent"
    consent = opened["consent"]
    # An ordinary consent: the product's institution, purpose, ops and categories.
    assert consent["status"] == "pending" and consent["institution"] == "demo_bank"
    assert consent["purpose"] == "working_capital_loan"
    assert consent["ops"] == ["report", "verify"] and consent["categories"] == PRODUCT["categories"]
    assert "税" in consent["letter"] or consent["letter"]
    app_id = opened["id"]

    # Decided before the enterprise approved: 409, nothing stored.
    resp = bank.post(client, f"/v1/applications/{app_id}/outcome", APPROVED)
    assert resp.status_code == 409 and resp.get_json()["error"] == "application_not_submitted"

    resp = enterprise.post(f"/v1/consents/{consent['id']}/approve")
    assert resp.status_code == 200
    listed = bank.get(client, "/v1/applications").get_json()["applications"]
    assert [(a["id"], a["status"]) for a in listed] == [(app_id, "submitted")]
    # The institution is told by signed webhook application.submitted.
    with read_session(app.extensions["xinyi"].engine) as s:
        payloads = [
            json.loads(p)
            for p in s.execute(
                sa.select(consent_store.webhook_outbox.c.payload).where(
                    consent_store.webhook_outbox.c.institution_id == "demo_bank"
                )
            ).scalars()
        ]
    submitted_events = [p for p in payloads if p.get("type") == "application.submitted"]
    assert len(submitted_events) == 1
    assert submitted_events[0]["application"] == app_id
    assert submitted_events[0]["enterprise"] == ENTERPRISE

    # Another institution: 403, and it does not see the application at all.
    other = make_bank("other_bank")
    resp = other.post(client, f"/v1/applications/{app_id}/outcome", APPROVED)
    assert resp.status_code == 403 and resp.get_json()["error"] == "not_product_institution"
    assert other.get(client, "/v1/applications").get_json()["applications"] == []
    assert enterprise.post(f"/v1/applications/{app_id}/outcome", json=APPROVED).status_code == 403

    # Out of the product's rate range: 400, nothing recorded.
    resp = bank.post(client, f"/v1/applications/{app_id}/outcome", {**APPROVED, "rate": 9.0})
    assert resp.status_code == 400 and resp.get_json()["error"] == "invalid_outcome"
    resp = bank.post(
        client, f"/v1/applications/{app_id}/outcome", {**APPROVED, "disbursed": 2_000_000}
    )
    assert resp.status_code == 400
    assert bank.get(client, f"/v1/applications/{app_id}").get_json()["status"] == "submitted"

    resp = bank.post(client, f"/v1/applications/{app_id}/outcome", APPROVED)
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["status"] == "approved"
    mine = enterprise.get("/v1/applications").get_json()["applications"]
    assert mine[0]["status"] == "approved"
    assert mine[0]["outcome"]["credit_line"] == 1_000_000
    assert mine[0]["outcome"]["first_loan"] is True

    again = bank.post(client, f"/v1/applications/{app_id}/outcome", APPROVED)
    assert again.status_code == 409 and again.get_json()["error"] == "application_decided"
    assert enterprise.post(f"/v1/applications/{app_id}/withdraw").status_code == 409

    resp = bank.post(client, f"/v1/applications/{app_id}/repayment", {"status": "overdue"})
    assert resp.status_code == 200 and resp.get_json()["outcome"]["repayment"] == "overdue"
    resp = bank.post(client, f"/v1/applications/{app_id}/repayment", {"status": "lost"})
    assert resp.status_code == 400


def test_a_decline_names_a_standard_reason_and_no_figures(
    bank: Bank, client: FlaskClient, product: str, enterprise: FlaskClient
) -> None:
    app_id = submitted(enterprise, product)["id"]
    url = f"/v1/applications/{app_id}/outcome"
    assert (
        bank.post(client, url, {"decision": "declined", "reason": "bad vibes"}).status_code == 400
    )
    resp = bank.post(client, url, {"decision": "declined", "reason": "other", "credit_line": 5})
    assert resp.status_code == 400
    resp = bank.post(client, url, {"decision": "declined", "reason": "insufficient_credit"})
    assert resp.status_code == 200 and resp.get_json()["status"] == "declined"
    assert resp.get_json()["outcome"]["reason"] == "insufficient_credit"


def test_rejecting_the_consent_withdraws_and_the_enterprise_may_withdraw(
    bank: Bank, client: FlaskClient, product: str, enterprise: FlaskClient
) -> None:
    first = apply(enterprise, product).get_json()
    enterprise.post(f"/v1/consents/{first['consent']['id']}/reject")
    second = apply(enterprise, product).get_json()
    assert enterprise.post(f"/v1/applications/{second['id']}/withdraw").status_code == 200
    statuses = {
        a["id"]: a["status"]
        for a in bank.get(client, "/v1/applications").get_json()["applications"]
    }
    assert statuses == {first["id"]: "withdrawn", second["id"]: "withdrawn"}
    resp = bank.post(client, f"/v1/applications/{second['id']}/outcome", APPROVED)
    assert resp.status_code == 409 and resp.get_json()["error"] == "application_not_submitted"


# Financing needs ---------------------------------------------------------------------


def test_a_need_answered_with_a_product_awaits_the_enterprise_consent(
    app: Flask, bank: Bank, client: FlaskClient, product: str, enterprise: FlaskClient
) -> None:
    resp = enterprise.post("/v1/needs", json={"amount": 600_000, "term_months": 12, "use": "备货"})
    assert resp.status_code == 201, resp.get_json()
    need = resp.get_json()["id"]
    assert [n["id"] for n in bank.get(client, "/v1/needs").get_json()["needs"]] == [need]
    too_big = enterprise.post(
        "/v1/needs", json={"amount": 9_000_000, "term_months": 12, "use": "x"}
    )
    before = counts(app)
    resp = bank.post(client, f"/v1/needs/{too_big.get_json()['id']}/answer", {"product": product})
    assert resp.status_code == 400 and counts(app) == before  # outside the product's range
    resp = bank.post(client, f"/v1/needs/{need}/answer", {"product": product})
    assert resp.status_code == 201, resp.get_json()
    assert resp.get_json()["status"] == "awaiting_consent"
    assert resp.get_json()["application"]["need"] == need
    again = bank.post(client, f"/v1/needs/{need}/answer", {"product": product})
    assert again.status_code == 409 and again.get_json()["error"] == "need_closed"
    mine = enterprise.get("/v1/applications").get_json()["applications"]
    assert [a["amount"] for a in mine] == [600_000]


# Statistics ----------------------------------------------------------------------------


def recount(app: Flask, month: str, region: str | None = None) -> dict[str, Any]:
    """The month's figures recounted row by row in Python, from the raw tables (of one
    region, USCC digits 3-8, when given)."""
    engine = app.extensions["xinyi"].engine
    with engine.connect() as c:
        people = list(c.execute(sa.select(users)).mappings())
        consents = list(c.execute(sa.select(consent_store.consents)).mappings())
        apps = list(c.execute(sa.select(fin.applications)).mappings())
        outs = list(c.execute(sa.select(fin.outcomes)).mappings())
        imports = {r["id"]: r for r in c.execute(sa.select(fin.record_imports)).mappings()}
        features = list(c.execute(sa.select(fin.record_import_features)).mappings())
        rows = list(c.execute(sa.select(fin.record_rows)).mappings())

    def here(uscc: str | None) -> bool:
        return uscc is not None and (region is None or uscc[2:8] == region)

    ents = [u for u in people if u["role"] == "enterprise" and here(u["uscc"])]
    consents = [c for c in consents if here(c["enterprise"])]
    apps = [a for a in apps if here(a["enterprise"])]
    outs = [o for o in outs if here(o["enterprise"])]

    def in_month(t: int | None) -> bool:
        return t is not None and month_of(t) == month

    def by_end(t: int | None) -> bool:
        return t is not None and month_of(t) <= month

    registration = {
        f["import_id"]
        for f in features
        if f["feature"].startswith("registration.")
        and imports[f["import_id"]]["status"] == "loaded"
        and by_end(imports[f["import_id"]]["imported_at"])
    }
    ok = [o for o in outs if o["decision"] == "approved" and in_month(o["decided_at"])]
    disbursed = sum(o["disbursed"] for o in ok)
    return {
        "registered": len({u["uscc"] for u in ents if by_end(u["created_at"])}),
        "real_name": len({u["uscc"] for u in ents if by_end(u["real_name_at"])}),
        "authorizing": len(
            {c["enterprise"] for c in consents if c["not_before"] and by_end(c["decided_at"])}
        ),
        "market_entities": len(
            {r["uscc"] for r in rows if r["import_id"] in registration and here(r["uscc"])}
        ),
        "applications": sum(1 for a in apps if in_month(a["created_at"])),
        "approved": len(ok),
        "credit_lines": sum(o["credit_line"] for o in ok),
        "disbursed": disbursed,
        "credit_loan_disbursed": sum(o["disbursed"] for o in ok if o["credit_loan"]),
        "first_loans": len({o["enterprise"] for o in ok if o["first_loan"]}),
        "weighted_rate": (
            round(sum(o["rate"] * o["disbursed"] for o in ok) / disbursed, 4) if disbursed else None
        ),
    }


def test_statistics_match_an_independent_recount_and_are_operator_only(
    app: Flask,
    bank: Bank,
    client: FlaskClient,
    product: str,
    enterprise: FlaskClient,
    make_person: Callable[..., FlaskClient],
    tmp_path: Path,
) -> None:
    load(
        app,
        "market_regulation",
        (
            "uscc,registration.industry,registration.size\n"
            f"{ENTERPRISE},F,small\n{OTHER_ENTERPRISE},C,micro\n"
        ),
    )
    other = make_person("enterprise", OTHER_ENTERPRISE)
    real_name(app, OTHER_ENTERPRISE)
    decisions = [
        (enterprise, APPROVED),
        (
            enterprise,
            {
                **APPROVED,
                "disbursed": 300_000,
                "rate": 4.5,
                "credit_loan": False,
                "first_loan": False,
            },
        ),
        (other, {**APPROVED, "credit_line": 2_000_000, "disbursed": 2_000_000, "rate": 3.5}),
        (other, {"decision": "declined", "reason": "other"}),
    ]
    for person, outcome in decisions:
        app_id = submitted(person, product)["id"]
        resp = bank.post(client, f"/v1/applications/{app_id}/outcome", outcome)
        assert resp.status_code == 200, resp.get_json()
    apply(enterprise, product)  # still awaiting consent: counted as filed, not approved
    month = month_of(time.time())
    operator = make_person("operator")
    resp = operator.get(f"/v1/statistics?month={month}")
    assert resp.status_code == 200, resp.get_json()
    stats = resp.get_json()
    expected = recount(app, month)
    assert {k: stats[k] for k in expected} == expected
    assert expected["approved"] == 3 and expected["disbursed"] == 3_100_000
    assert stats["market_entities"] == 2
    assert stats["shares"]["registered"] == 1.0
    assert stats["credit_loan_share"] == round(2_800_000 / 3_100_000, 6)
    # By region: each region recounts, and the regions add up to the total.
    assert stats["by_region"]
    for r in stats["by_region"]:
        mine = recount(app, month, r["region"])
        assert {k: r[k] for k in mine} == mine, r["region"]
    assert sum(r["disbursed"] for r in stats["by_region"]) == stats["disbursed"]
    region = ENTERPRISE[2:8]
    one = operator.get(f"/v1/statistics?month={month}&region={region}").get_json()
    assert [r["region"] for r in one["by_region"]] == [region]
    assert one["disbursed"] == 1_100_000
    assert [i["institution"] for i in stats["by_institution"]] == ["demo_bank"]
    # Per institution, the enterprises that approved a consent for it in the month.
    with app.extensions["xinyi"].engine.connect() as c:
        approved_consents = list(c.execute(sa.select(consent_store.consents)).mappings())
    authorized = {
        row["enterprise"]
        for row in approved_consents
        if row["institution_id"] == "demo_bank"
        and row["not_before"]
        and month_of(row["decided_at"]) == month
    }
    assert stats["by_institution"][0]["authorized_in_month"] == len(authorized) == 2
    assert bank.get(client, "/v1/statistics?month=2020-01").status_code == 403
    assert operator.get("/v1/statistics?month=2020-01").get_json()["by_institution"] == []
    # A past month has no flow.
    assert operator.get("/v1/statistics?month=2020-01").get_json()["approved"] == 0
    assert operator.get("/v1/statistics?month=2020-13").status_code == 400
    # Statistics are the operator's: a bank or an enterprise is refused.
    assert bank.get(client, f"/v1/statistics?month={month}").status_code == 403
    assert enterprise.get(f"/v1/statistics?month={month}").status_code == 403

    # The exported workbook opens with openpyxl and shows the API's figures.
    out = tmp_path / "report.xlsx"
    settings = app.extensions["xinyi"].settings
    env = {
        "XINYI_HOME": str(settings.home),
        "XINYI_DATABASE_URL": settings.database_url,
        "XINYI_KEY_PASSPHRASE": "test-passphrase-not-secret",
    }
    result = CliRunner().invoke(
        main, ["stats", "export", "--month", month, "--out", str(out)], env=env
    )
    assert result.exit_code == 0, result.output
    book = openpyxl.load_workbook(out)
    assert book.sheetnames == [
        "汇总 Summary",
        "按地区 By region",
        "按机构 By institution",
        "成效 Efficacy",
        "督查表 附件3",
    ]
    summary = {row[0]: row[1] for row in book["汇总 Summary"].iter_rows(values_only=True)}
    by_label = dict(SUMMARY_ROWS)
    for key in (
        "registered",
        "approved",
        "credit_lines",
        "disbursed",
        "first_loans",
        "credit_loan_disbursed",
        "weighted_rate",
    ):
        assert summary[by_label[key]] == stats[key], key
    rows = list(book["按地区 By region"].iter_rows(values_only=True))
    assert [r[0] for r in rows[1:]] == [r["region"] for r in stats["by_region"]]
    institutions = list(book["按机构 By institution"].iter_rows(values_only=True))
    assert institutions[1][0] == "demo_bank"
    assert institutions[1][4] == stats["by_institution"][0]["disbursed"]
    assert institutions[0][-1] == "authorized_in_month" and institutions[1][-1] == 2
    assert book["督查表 附件3"]["C1"].value == "推进企业注册、认证、查询数量"


def test_a_record_stamped_at_the_month_end_belongs_to_the_next_month_only(
    app: Flask, make_person: Callable[..., FlaskClient]
) -> None:
    """The one boundary rule (docs/financing.md): a stock figure counts ``t < end``."""
    load(app, "market_regulation", f"uscc,registration.industry\n{ENTERPRISE},F\n")
    make_person("enterprise", ENTERPRISE)
    operator = make_person("operator")
    end = month_interval("2026-01").end
    engine = app.extensions["xinyi"].engine

    def stamp(at: int) -> None:
        with engine.begin() as c:
            c.execute(
                users.update()
                .where(users.c.uscc == ENTERPRISE)
                .values(created_at=at, real_name_at=at)
            )
            c.execute(fin.record_imports.update().values(imported_at=at))

    def stock(month: str) -> list[int]:
        got = operator.get(f"/v1/statistics?month={month}").get_json()
        return [got[k] for k in ("registered", "real_name", "market_entities")]

    stamp(end)
    assert stock("2026-01") == [0, 0, 0]
    assert stock("2026-02") == [1, 1, 1]
    stamp(end - 1)
    assert stock("2026-01") == [1, 1, 1]
    # The operator's stats page shows the same figures (here: this month's).
    page = operator.get("/operator/").get_data(as_text=True)
    assert 'id="registered">1<' in page and 'id="market-entities">1<' in page


def test_efficacy_counts_the_loans_whose_decisions_used_a_department_data(
    app: Flask,
    bank: Bank,
    client: FlaskClient,
    product: str,
    enterprise: FlaskClient,
    make_person: Callable[..., FlaskClient],
) -> None:
    used = submitted(enterprise, product)
    unused = submitted(enterprise, product)
    grant = bank.get(client, f"/v1/consents/{used['consent']['id']}").get_json()["grant"]
    resp = bank.get(client, f"/v1/enterprises/{ENTERPRISE}/report?grant={grant}")
    assert resp.status_code == 200, resp.get_json()
    for opened in (used, unused):
        resp = bank.post(client, f"/v1/applications/{opened['id']}/outcome", APPROVED)
        assert resp.status_code == 200
    month = month_of(time.time())
    operator = make_person("operator")
    found = operator.get(f"/v1/statistics/efficacy?month={month}").get_json()["departments"]
    # Only the loan decided after reading the report under its grant counts, for every
    # department the report touched (the banded ones and the public ones).
    assert found["tax"] == found["social_security"] == {"loans": 1, "disbursed": 800_000}
    assert "market_regulation" in found  # public registration data served with it
    assert all(v == {"loans": 1, "disbursed": 800_000} for v in found.values())
    assert "housing_fund" not in found
    tax = make_person("department", department="tax")
    mine = tax.get(f"/v1/statistics/efficacy?month={month}").get_json()["departments"]
    assert mine == {"tax": {"loans": 1, "disbursed": 800_000}}
