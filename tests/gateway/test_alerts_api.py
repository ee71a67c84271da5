"""Risk alerts (CONTRACT v2): only for enterprises under an active monitor grant, only to
the institution holding it, only while it is active; each one an access in the audit
log that the enterprise sees; kinds and bands, never values; pulled from
GET /v1/alerts and pushed as signed risk.alert events."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

import httpx
import jwt
import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from alerts import store as alert_store
from common.db import write_session
from common.webhook_address import WebhookPolicy
from consent import store as consent_store
from consent.outbox import EVENTS_PURPOSE
from gateway import alerts
from grading.service import grade_runs, grades
from tests.gateway.conftest import ENTERPRISE, OTHER_ENTERPRISE, Bank
from tests.gateway.test_data_api import load

MONITORED = ["tax", "social_security", "judicial", "admin_penalty", "registration"]


def monitor_grant(
    bank: Bank,
    client: FlaskClient,
    person: FlaskClient,
    *,
    enterprise: str = ENTERPRISE,
    categories: list[str] | None = None,
    purpose: str = "post_loan_monitoring",
    ops: list[str] | None = None,
) -> str:
    """The bank asks to monitor, the enterprise approves: the consent id."""
    body = {
        "enterprise": enterprise,
        "purpose": purpose,
        "ops": ops or ["monitor"],
        "categories": categories or MONITORED,
        "duration_days": 30,
        "max_uses": 1,
    }
    resp = bank.post(client, "/v1/consents", body)
    assert resp.status_code == 201, resp.get_json()
    cid = str(resp.get_json()["id"])
    resp = person.post(f"/v1/consents/{cid}/approve")
    assert resp.status_code == 200, resp.get_json()
    return cid


def tax(arrears: dict[str, float]) -> str:
    rows = "".join(f"{u},1000000,{a}\n" for u, a in arrears.items())
    return "uscc,tax.paid_12m,tax.arrears\n" + rows


def step(app: Flask) -> int:
    """What the background loop does: sweep, then publish; the alerts published."""
    svc = app.extensions["xinyi"]
    alerts.sweep(svc.engine, svc.settings, svc.audit)
    return alerts.publish(svc.engine, svc.audit)


def pulled(bank: Bank, client: FlaskClient, after: int = 0) -> dict[str, Any]:
    resp = bank.get(client, f"/v1/alerts?after={after}")
    assert resp.status_code == 200, resp.get_json()
    return dict(resp.get_json())


@pytest.fixture
def enterprise(make_person: Callable[..., FlaskClient]) -> FlaskClient:
    return make_person("enterprise", ENTERPRISE)


@pytest.fixture
def other(make_person: Callable[..., FlaskClient]) -> FlaskClient:
    return make_person("enterprise", OTHER_ENTERPRISE)


def test_an_arrears_crossing_reaches_the_monitoring_bank_only_as_bands(
    app: Flask,
    client: FlaskClient,
    make_bank: Callable[..., Bank],
    enterprise: FlaskClient,
    other: FlaskClient,
) -> None:
    load(app, "tax", tax({ENTERPRISE: 0, OTHER_ENTERPRISE: 0}))
    watcher = make_bank("bank_watch")
    lender = make_bank("bank_lend")  # a report/verify grant only: no monitoring
    elsewhere = make_bank("bank_else")  # monitors the other enterprise only
    monitor_grant(watcher, client, enterprise)
    monitor_grant(
        lender,
        client,
        enterprise,
        purpose="working_capital_loan",
        ops=["report", "verify"],
        categories=["tax"],
    )
    monitor_grant(elsewhere, client, other, enterprise=OTHER_ENTERPRISE, categories=["judicial"])
    assert step(app) == 0  # the first import, before any grant: nothing
    load(app, "tax", tax({ENTERPRISE: 234567.5, OTHER_ENTERPRISE: 876543.21}))
    assert step(app) == 1
    page = pulled(watcher, client)
    (alert,) = page["alerts"]
    assert alert == {
        "id": 1,
        "enterprise": ENTERPRISE,
        "kind": "tax_arrears",
        "from": "<1",
        "to": "10万–100万",
        "at": alert["at"],
        "audit_index": alert["audit_index"],
    }
    assert page["next"] == 1
    assert pulled(watcher, client, after=1) == {"alerts": [], "next": 1}
    text = json.dumps(page)
    assert "234567" not in text and "876543" not in text
    # Another institution's grant, a grant without monitor, another enterprise: nothing.
    assert pulled(lender, client)["alerts"] == []
    assert pulled(elsewhere, client)["alerts"] == []  # its grant lacks the tax category
    # Another import at the same band crosses nothing: no second alert.
    load(app, "tax", tax({ENTERPRISE: 300000}))
    assert step(app) == 0

    # The alert is an access the enterprise sees, by the bank, under its grant.
    resp = enterprise.get("/v1/audit/entries?limit=100")
    assert resp.status_code == 200, resp.get_json()
    (entry,) = [
        e for e in resp.get_json()["entries"] if e["entry"]["operation"] == alerts.OPERATION
    ]
    assert entry["index"] == alert["audit_index"]
    assert entry["entry"]["institution"] == "bank_watch"
    assert entry["entry"]["features"] == ["tax.arrears"]
    assert entry["entry"]["decision"] == "allowed"
    page_html = enterprise.get("/enterprise/accesses").get_data(as_text=True)
    assert "风险预警" in page_html and "bank_watch" in page_html

    # Pushed as a signed risk.alert event naming the same alert.
    svc = app.extensions["xinyi"]
    svc.registry.set_webhook("bank_watch", "https://bank-watch.example/hook")
    seen: list[tuple[str, str]] = []

    def receive(request: httpx.Request) -> httpx.Response:
        seen.append((request.headers["Idempotency-Key"], request.content.decode()))
        return httpx.Response(204)

    outbox = dataclasses.replace(
        svc.outbox,
        client=httpx.Client(transport=httpx.MockTransport(receive)),
        policy=WebhookPolicy(resolver=lambda host, port: ["93.184.216.34"]),
    )
    outbox.deliver_due()
    events = []
    for key, token in seen:
        signing = svc.keys.public_key(jwt.get_unverified_header(token)["kid"], EVENTS_PURPOSE)
        claims = jwt.decode(token, signing, algorithms=["EdDSA"], audience="bank_watch")
        assert claims["event_id"] == key
        if claims["type"] == alerts.EVENT_ALERT:
            events.append(claims)
    (event,) = events
    assert {k: event[k] for k in ("id", "enterprise", "kind", "from", "to", "audit_index")} == {
        k: alert[k] for k in ("id", "enterprise", "kind", "from", "to", "audit_index")
    }


def _set_status(app: Flask, cid: str, **values: Any) -> None:
    with write_session(app.extensions["xinyi"].engine) as s:
        s.execute(
            consent_store.consents.update()
            .where(consent_store.consents.c.id == cid)
            .values(**values)
        )


def test_alerts_only_while_the_grant_is_active(
    app: Flask, client: FlaskClient, make_bank: Callable[..., Bank], enterprise: FlaskClient
) -> None:
    load(app, "court", f"uscc,judicial.enforcement_cases\n{ENTERPRISE},0\n")
    bank = make_bank("bank_watch")
    cid = monitor_grant(bank, client, enterprise)
    step(app)

    def cases(n: int) -> int:
        load(app, "court", f"uscc,judicial.enforcement_cases\n{ENTERPRISE},{n}\n")
        return step(app)

    assert enterprise.post(f"/v1/consents/{cid}/pause").status_code == 200
    assert cases(1) == 0  # paused: the change is not an alert, not even later
    assert enterprise.post(f"/v1/consents/{cid}/resume").status_code == 200
    assert step(app) == 0
    assert cases(3) == 1
    (alert,) = pulled(bank, client)["alerts"]
    assert (alert["kind"], alert["from"], alert["to"]) == ("enforcement_case", "1–2", "3–5")
    # Expired (its period over): nothing.
    _set_status(app, cid, expires_at=1)
    assert cases(4) == 0
    _set_status(app, cid, expires_at=2**40)
    assert cases(5) == 1
    assert enterprise.post(f"/v1/consents/{cid}/revoke").status_code == 200
    assert cases(7) == 0
    assert [a["to"] for a in pulled(bank, client)["alerts"]] == ["3–5", "3–5"]
    # A suspended institution is alerted of nothing either.
    cid2 = monitor_grant(bank, client, enterprise)
    assert cases(8) == 1
    app.extensions["xinyi"].registry.suspend_institution("bank_watch")
    assert cases(9) == 0
    assert cid2


def test_every_rule_kind_fires_on_its_change_and_never_twice(
    app: Flask, client: FlaskClient, make_bank: Callable[..., Bank], enterprise: FlaskClient
) -> None:
    reg = "uscc,registration.status,admin_penalty.dishonest\n"
    load(app, "market_regulation", reg + f"{ENTERPRISE},active,false\n")
    load(
        app,
        "social_security",
        f"uscc,social_security.months_in_arrears_12m\n{ENTERPRISE},0\n",
    )
    bank = make_bank("bank_watch")
    monitor_grant(bank, client, enterprise)
    step(app)
    load(app, "market_regulation", reg + f"{ENTERPRISE},revoked,true\n")
    load(app, "social_security", f"uscc,social_security.months_in_arrears_12m\n{ENTERPRISE},4\n")
    assert step(app) == 3
    got = {(a["kind"], a["from"], a["to"]) for a in pulled(bank, client)["alerts"]}
    assert got == {
        ("deregistration", "active", "revoked"),
        ("dishonesty", "false", "true"),
        ("social_security_arrears", "0", "3–5"),
    }
    # Sweeping again finds nothing new: each import is looked at once.
    assert step(app) == 0
    svc = app.extensions["xinyi"]
    with svc.engine.connect() as conn:
        assert (
            conn.execute(sa.select(sa.func.count()).select_from(alert_store.risk_alerts)).scalar()
            == 3
        )


def _graded(app: Flask, month: str, at: int, grade: dict[str, int]) -> None:
    """A month's grades as grading.service stores them (only the columns alerts read
    matter; the rest are filled with neutral values)."""
    svc = app.extensions["xinyi"]
    with write_session(svc.engine) as s:
        s.execute(
            grade_runs.insert().values(
                month=month,
                as_of=f"{month}-28",
                enterprises=len(grade),
                counts="{}",
                config_sha256="0" * 64,
                computed_at=at,
                computed_by="test",
            )
        )
        for uscc, g in grade.items():
            row: dict[str, Any] = {c.name: 0 for c in grades.columns}
            row.update(month=month, uscc=uscc, grade=g, letters="AAAAAAAAAAAA", score=None)
            row.update({c.name: None for c in grades.columns if c.name.startswith("value_")})
            s.execute(grades.insert().values(**row))


def test_a_grade_down_is_an_alert_a_grade_up_is_not(
    app: Flask, client: FlaskClient, make_bank: Callable[..., Bank], enterprise: FlaskClient
) -> None:
    bank = make_bank("bank_watch")
    monitor_grant(bank, client, enterprise, categories=["tax"])
    import time

    now = int(time.time())
    _graded(app, "2026-10", now, {ENTERPRISE: 0, OTHER_ENTERPRISE: 0})
    assert step(app) == 0  # a first month: nothing to compare with
    _graded(app, "2026-11", now + 1, {ENTERPRISE: 2, OTHER_ENTERPRISE: 3})
    assert step(app) == 1
    (alert,) = pulled(bank, client)["alerts"]
    assert (alert["kind"], alert["from"], alert["to"]) == ("grade_down", "高级", "备选")
    _graded(app, "2026-12", now + 2, {ENTERPRISE: 1})
    assert step(app) == 0
