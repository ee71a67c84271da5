"""Objections over HTTP (CONTRACT v2): filing, listing by role, deciding, the disputed
flag on answers and data.corrected to the institutions that used the old value."""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Callable
from datetime import date
from typing import Any

import httpx
import jwt
import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from casework import objections as core
from casework import store as casework_store
from casework import store as objection_store
from common.db import read_session, write_session
from common.settings import Settings
from common.webhook_address import WebhookPolicy
from common.workdays import WorkCalendar, china_date
from consent import store as consent_store
from consent.outbox import EVENTS_PURPOSE
from records import store as records
from tests.gateway.conftest import ENTERPRISE, OTHER_ENTERPRISE, Bank, grant_for
from tests.gateway.test_data_api import load, refusal

TAX = (
    "uscc,tax.paid_12m,tax.arrears\n"
    f"{ENTERPRISE},1234567.89,0\n"
    f"{OTHER_ENTERPRISE},5000.00,1200.50\n"
)
REGISTRATION = f"uscc,registration.industry,registration.size\n{ENTERPRISE},F,small\n"


@pytest.fixture
def settings(database_url: str, make_settings: Callable[..., Settings]) -> Settings:
    """This year's and next year's calendar known (next year as plain weekends until its
    notice is configured): filings "now" never meet an unknown year, whatever the day."""
    year = date.today().year
    return make_settings(database_url=database_url, calendar={"notices": {year: {}, year + 1: {}}})


@pytest.fixture
def loaded(app: Flask) -> Flask:
    load(app, "tax", TAX)
    load(app, "market_regulation", REGISTRATION)
    return app


@pytest.fixture
def enterprise(make_person: Callable[..., FlaskClient]) -> FlaskClient:
    return make_person("enterprise", ENTERPRISE)


@pytest.fixture
def tax_dept(make_person: Callable[..., FlaskClient]) -> FlaskClient:
    return make_person("department", department="tax")


def _file(person: FlaskClient, feature: str = "tax.paid_12m", claim: str = "paid more") -> Any:
    return person.post("/v1/objections", json={"feature": feature, "claim": claim})


def _filed(person: FlaskClient, feature: str = "tax.paid_12m") -> dict[str, Any]:
    resp = _file(person, feature)
    assert resp.status_code == 201, resp.get_json()
    return dict(resp.get_json())


def _ids(person: FlaskClient, query: str = "") -> list[str]:
    resp = person.get(f"/v1/objections{query}")
    assert resp.status_code == 200, resp.get_json()
    return [o["id"] for o in resp.get_json()["objections"]]


def test_filing_routes_to_the_owning_department_with_a_due_date(
    loaded: Flask,
    enterprise: FlaskClient,
    tax_dept: FlaskClient,
    make_person: Callable[..., FlaskClient],
    make_bank: Callable[..., Bank],
    client: FlaskClient,
) -> None:
    body = _filed(enterprise)
    assert body["status"] == "open" and body["department"] == "tax"
    assert body["enterprise"] == ENTERPRISE and body["feature"] == "tax.paid_12m"
    assert body["overdue"] is False and body["resolution"] is None
    calendar = loaded.extensions["xinyi"].calendar
    due = calendar.add_working_days(china_date(body["filed_at"]), 2)
    assert body["due"] == due.isoformat()
    # Listed for the enterprise, the owning department and the operator only.
    assert _ids(enterprise) == [body["id"]]
    assert _ids(tax_dept) == [body["id"]]
    assert _ids(tax_dept, "?status=open") == [body["id"]]
    assert _ids(tax_dept, "?status=rejected") == []
    assert _ids(make_person("department", department="social_security")) == []
    assert _ids(make_person("enterprise", OTHER_ENTERPRISE)) == []
    assert _ids(make_person("operator")) == [body["id"]]
    bank = make_bank("demo_bank")
    refusal(bank.get(client, "/v1/objections"), 403, "wrong_role")
    refusal(
        bank.post(client, "/v1/objections", {"feature": "tax.paid_12m", "claim": "x"}),
        403,
        "wrong_role",
    )
    refusal(
        tax_dept.post("/v1/objections", json={"feature": "tax.paid_12m", "claim": "x"}),
        403,
        "wrong_role",
    )


def test_bad_filings_are_refused_and_a_second_open_one_is_409(
    loaded: Flask, enterprise: FlaskClient
) -> None:
    refusal(_file(enterprise, feature="tax.nope"), 400, "unknown_feature")
    refusal(_file(enterprise, claim="   "), 400, "invalid_objection")
    refusal(
        enterprise.post("/v1/objections", json={"feature": "tax.paid_12m"}), 400, "invalid_json"
    )
    first = _filed(enterprise)
    body = refusal(_file(enterprise), 409, "objection_already_open")
    assert body["field"] == "feature"
    other = _filed(enterprise, "tax.arrears")  # another feature is fine
    assert _ids(enterprise) == sorted([first["id"], other["id"]], key=_ids(enterprise).index)
    assert len(_ids(enterprise)) == 2


def test_only_the_owning_department_decides_once(
    loaded: Flask,
    enterprise: FlaskClient,
    tax_dept: FlaskClient,
    make_person: Callable[..., FlaskClient],
) -> None:
    oid = _filed(enterprise)["id"]
    rejection = {"decision": "rejected", "reason": "the June payment was refunded"}
    path = f"/v1/objections/{oid}/resolve"
    for other in (
        make_person("department", department="social_security"),
        make_person("operator"),
    ):
        refusal(other.post(path, json=rejection), 403, "not_owning_department")
    refusal(enterprise.post(path, json=rejection), 403, "wrong_role")
    refusal(
        tax_dept.post("/v1/objections/obj_nope/resolve", json=rejection), 404, "objection_not_found"
    )
    refusal(
        tax_dept.post(path, json={"decision": "rejected", "reason": ""}), 400, "invalid_objection"
    )
    refusal(tax_dept.post(path, json={"decision": "maybe", "reason": "x"}), 400, "invalid_json")
    refusal(tax_dept.post(path, json={**rejection, "value": 1}), 400, "invalid_objection")
    resp = tax_dept.post(path, json=rejection)
    assert resp.status_code == 200, resp.get_json()
    decided = resp.get_json()
    assert decided["status"] == "rejected"
    assert decided["resolution"]["reason"] == rejection["reason"]
    assert decided["resolution"]["version"] is None
    refusal(tax_dept.post(path, json=rejection), 409, "objection_not_open")
    refusal(
        tax_dept.post(path, json={"decision": "corrected", "value": 1.0, "reason": "x"}),
        409,
        "objection_not_open",
    )
    # Decided: the enterprise may object again.
    _filed(enterprise)


def test_a_correction_is_the_next_snapshot_naming_the_objection(
    loaded: Flask, enterprise: FlaskClient, tax_dept: FlaskClient
) -> None:
    svc = loaded.extensions["xinyi"]
    oid = _filed(enterprise)["id"]
    path = f"/v1/objections/{oid}/resolve"
    before = records.import_history(svc.engine, "tax")
    assert before[0].version is not None
    for bad in (-5, "lots", True):
        refusal(
            tax_dept.post(path, json={"decision": "corrected", "value": bad, "reason": "x"}),
            400,
            "invalid_value",
        )
    refusal(
        tax_dept.post(path, json={"decision": "corrected", "reason": "x"}), 400, "invalid_objection"
    )
    assert records.import_history(svc.engine, "tax") == before  # nothing stored
    assert _ids(enterprise, "?status=open") == [oid]
    resp = tax_dept.post(
        path, json={"decision": "corrected", "value": 1500000.5, "reason": "re-checked"}
    )
    assert resp.status_code == 200, resp.get_json()
    decided = resp.get_json()
    assert decided["status"] == "corrected"
    assert "1500000.5" not in json.dumps(decided)  # no value in the answer
    newest = records.import_history(svc.engine, "tax")[0]
    assert newest.file_name == f"objection:{oid}"
    assert newest.imported_by.startswith("department:")
    assert newest.version == before[0].version + 1 == decided["resolution"]["version"]
    assert newest.features == ("tax.paid_12m",) and newest.row_count == 1
    assert records.current_values(svc.engine, ENTERPRISE, ["tax.paid_12m", "tax.arrears"]) == {
        "tax.paid_12m": 1500000.5,
        "tax.arrears": 0,
    }
    # The other enterprise's value is untouched.
    assert records.current_values(svc.engine, OTHER_ENTERPRISE, ["tax.paid_12m"]) == {
        "tax.paid_12m": 5000
    }


def test_overdue_objections_are_flagged(
    loaded: Flask, make_person: Callable[..., FlaskClient]
) -> None:
    svc = loaded.extensions["xinyi"]
    old = core.file(
        id="obj_old",
        enterprise=ENTERPRISE,
        feature="tax.arrears",
        department="tax",
        claim="paid",
        filed_by="enterprise:x",
        now=1759197600,  # 2025-09-30 10:00 CST
        calendar=WorkCalendar(),
        working_days=2,
        max_claim_chars=100,
    )
    with write_session(svc.engine) as s:
        objection_store.insert(s, old)
    listed = make_person("operator").get("/v1/objections").get_json()["objections"]
    assert [(o["id"], o["due"], o["overdue"]) for o in listed] == [("obj_old", "2025-10-10", True)]


# The disputed flag ---------------------------------------------------------------------


def test_answers_using_a_disputed_feature_say_so_until_it_is_decided(
    loaded: Flask,
    enterprise: FlaskClient,
    tax_dept: FlaskClient,
    make_bank: Callable[..., Bank],
    client: FlaskClient,
) -> None:
    bank = make_bank("demo_bank")
    grant = grant_for(bank, client, enterprise)

    def report(g: str | None = None) -> Any:
        q = f"?grant={g}" if g else ""
        resp = bank.get(client, f"/v1/enterprises/{ENTERPRISE}/report{q}")
        assert resp.status_code == 200, resp.get_json()
        return resp.get_json()["disputed"]

    def verify(feature: str = "tax.paid_12m", op: str = ">=") -> Any:
        resp = bank.post(
            client, "/v1/verify", {"grant": grant, "feature": feature, "op": op, "value": 1}
        )
        assert resp.status_code == 200, resp.get_json()
        return resp.get_json()["disputed"]

    assert report() == [] and report(grant) == [] and verify() == []
    paid = _filed(enterprise, "tax.paid_12m")["id"]
    industry = _filed(enterprise, "registration.industry")["id"]
    assert report() == ["registration.industry"]  # public report: public features only
    assert report(grant) == ["registration.industry", "tax.paid_12m"]
    assert verify() == ["tax.paid_12m"]
    assert verify("tax.arrears", "<=") == []
    # Another enterprise's answers are not flagged.
    resp = bank.get(client, f"/v1/enterprises/{OTHER_ENTERPRISE}/report")
    assert resp.get_json()["disputed"] == []
    resp = tax_dept.post(
        f"/v1/objections/{paid}/resolve", json={"decision": "rejected", "reason": "no"}
    )
    assert resp.status_code == 200
    assert verify() == [] and report(grant) == ["registration.industry"]
    assert industry


# data.corrected ------------------------------------------------------------------------


def _events(app: Flask) -> list[tuple[str, dict[str, Any]]]:
    svc = app.extensions["xinyi"]
    with read_session(svc.engine) as s:
        rows = s.execute(
            sa.select(
                consent_store.webhook_outbox.c.institution_id,
                consent_store.webhook_outbox.c.payload,
            )
        ).all()
    return [(i, json.loads(p)) for i, p in rows if json.loads(p)["type"] == "data.corrected"]


def test_data_corrected_goes_only_to_institutions_that_used_the_old_value(
    loaded: Flask,
    enterprise: FlaskClient,
    tax_dept: FlaskClient,
    make_bank: Callable[..., Bank],
    make_person: Callable[..., FlaskClient],
    client: FlaskClient,
) -> None:
    used, public_only, refused, other = (
        make_bank(b) for b in ("bank_used", "bank_public", "bank_refused", "bank_other")
    )
    grant = grant_for(used, client, enterprise)
    assert (
        used.post(
            client,
            "/v1/verify",
            {"grant": grant, "feature": "tax.paid_12m", "op": ">=", "value": 1},
        ).status_code
        == 200
    )
    assert public_only.get(client, f"/v1/enterprises/{ENTERPRISE}/report").status_code == 200
    bad = refused.post(
        client, "/v1/verify", {"grant": "x.y.z", "feature": "tax.paid_12m", "op": ">=", "value": 1}
    )
    assert bad.status_code == 403
    other_person = make_person("enterprise", OTHER_ENTERPRISE)
    other_grant = grant_for(other, client, other_person, enterprise=OTHER_ENTERPRISE)
    assert (
        other.post(
            client,
            "/v1/verify",
            {"grant": other_grant, "feature": "tax.paid_12m", "op": ">=", "value": 1},
        ).status_code
        == 200
    )
    loaded.extensions["xinyi"].audit.integrate_pending()

    rejected = _filed(enterprise, "tax.arrears")["id"]
    tax_dept.post(
        f"/v1/objections/{rejected}/resolve", json={"decision": "rejected", "reason": "no"}
    )
    oid = _filed(enterprise)["id"]
    resp = tax_dept.post(
        f"/v1/objections/{oid}/resolve",
        json={"decision": "corrected", "value": 7654321, "reason": "ok"},
    )
    assert resp.status_code == 200, resp.get_json()
    events = _events(loaded)
    assert [i for i, _ in events] == ["bank_used"]
    ((_, payload),) = events
    assert payload == {
        "event_id": payload["event_id"],
        "type": "data.corrected",
        "enterprise": ENTERPRISE,
        "feature": "tax.paid_12m",
        "objection": oid,
        "at": payload["at"],
    }

    # Delivered signed with the published events key, as consent events are.
    svc = loaded.extensions["xinyi"]
    svc.registry.set_webhook("bank_used", "https://bank-used.example/hook")
    seen: list[str] = []

    def receive(request: httpx.Request) -> httpx.Response:
        seen.append(request.content.decode())
        return httpx.Response(204)

    outbox = dataclasses.replace(
        svc.outbox,
        client=httpx.Client(transport=httpx.MockTransport(receive)),
        policy=WebhookPolicy(resolver=lambda host, port: ["93.184.216.34"]),  # a public address
    )
    outbox.deliver_due()
    claims = []
    for token in seen:
        key = svc.keys.public_key(jwt.get_unverified_header(token)["kid"], EVENTS_PURPOSE)
        claims.append(jwt.decode(token, key, algorithms=["EdDSA"], audience="bank_used"))
    corrected = [c for c in claims if c["type"] == "data.corrected"]
    assert [c["event_id"] for c in corrected] == [payload["event_id"]]
    assert "7654321" not in json.dumps(corrected)


# Credit repair ---------------------------------------------------------------------------


def test_repairs_lifecycle_and_the_repaired_mark_on_reports(
    app: Flask,
    enterprise: FlaskClient,
    make_person: Callable[..., FlaskClient],
    make_bank: Callable[..., Bank],
    client: FlaskClient,
) -> None:
    load(app, "market_regulation", f"uscc,admin_penalty.dishonest\n{ENTERPRISE},true\n")
    bank = make_bank("demo_bank")
    grant_for(bank, client, enterprise)  # an active grant: told of the repair
    refusal(
        enterprise.post("/v1/repairs", json={"record": "tax.paid_12m", "reason": "x"}),
        400,
        "not_repairable",
    )
    resp = enterprise.post(
        "/v1/repairs", json={"record": "admin_penalty.dishonest", "reason": "done"}
    )
    assert resp.status_code == 201, resp.get_json()
    filed = resp.get_json()
    assert filed["status"] == "open" and filed["department"] == "market_regulation"
    refusal(
        enterprise.post("/v1/repairs", json={"record": "admin_penalty.dishonest", "reason": "x"}),
        409,
        "repair_already_open",
    )
    mr = make_person("department", department="market_regulation")
    assert [r["id"] for r in mr.get("/v1/repairs").get_json()["repairs"]] == [filed["id"]]
    path = f"/v1/repairs/{filed['id']}/resolve"
    decision = {"decision": "repaired", "reason": "obligations fulfilled"}
    refusal(
        make_person("department", department="tax").post(path, json=decision),
        403,
        "not_owning_department",
    )

    def report() -> Any:
        return bank.get(client, f"/v1/enterprises/{ENTERPRISE}/report").get_json()

    assert report()["repaired"] == []
    resp = mr.post(path, json=decision)
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["status"] == "repaired"
    refusal(mr.post(path, json=decision), 409, "repair_not_open")
    body = report()
    assert body["repaired"] == ["admin_penalty.dishonest"]
    assert body["public"]["admin_penalty.dishonest"] is True  # the record itself stays
    events = [(i, p) for i, p in _all_events(app) if p["type"] == "credit.repaired"]
    assert [(i, p["record"], p["repair"]) for i, p in events] == [
        ("demo_bank", "admin_penalty.dishonest", filed["id"])
    ]


def _all_events(app: Flask) -> list[tuple[str, dict[str, Any]]]:
    svc = app.extensions["xinyi"]
    with read_session(svc.engine) as s:
        rows = s.execute(
            sa.select(
                consent_store.webhook_outbox.c.institution_id,
                consent_store.webhook_outbox.c.payload,
            )
        ).all()
    return [(i, json.loads(p)) for i, p in rows]


# Attachments (--- alerts ---) ----------------------------------------------------------

PDF = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def _file_with(person: FlaskClient, data: bytes, name: str = "evidence.pdf", **kw: Any) -> Any:
    body = {
        "feature": "tax.paid_12m",
        "claim": "the receipts show more",
        "attachment": {"file_name": name, "content_base64": base64.b64encode(data).decode()},
        **kw,
    }
    return person.post("/v1/objections", json=body)


def _stored(app: Flask) -> tuple[int, int]:
    svc = app.extensions["xinyi"]
    with svc.engine.connect() as c:
        n = c.execute(sa.select(sa.func.count()).select_from(casework_store.objections))
        m = c.execute(sa.select(sa.func.count()).select_from(casework_store.objection_attachments))
        return int(n.scalar_one()), int(m.scalar_one())


def test_an_attachment_is_filed_listed_and_downloaded_by_those_concerned_only(
    loaded: Flask,
    enterprise: FlaskClient,
    tax_dept: FlaskClient,
    make_person: Callable[..., FlaskClient],
    make_bank: Callable[..., Bank],
    client: FlaskClient,
) -> None:
    resp = _file_with(enterprise, PDF, name="../../etc/收据 2026.pdf")
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    assert body["attachment"]["content_type"] == "application/pdf"
    assert body["attachment"]["file_name"] == "收据 2026.pdf"
    assert body["attachment"]["size"] == len(PDF)
    oid = body["id"]
    (listed,) = tax_dept.get("/v1/objections").get_json()["objections"]
    assert listed["attachment"] == body["attachment"]
    path = f"/v1/objections/{oid}/attachment"
    for person in (enterprise, tax_dept):
        got = person.get(path)
        assert got.status_code == 200
        assert got.data == PDF and got.mimetype == "application/pdf"
        assert got.headers["Content-Disposition"].startswith("attachment;")
        assert got.headers["X-Content-Type-Options"] == "nosniff"
    refusal(
        make_person("department", department="social_security").get(path),
        403,
        "not_owning_department",
    )
    refusal(make_person("enterprise", OTHER_ENTERPRISE).get(path), 404, "objection_not_found")
    refusal(make_person("operator").get(path), 404, "objection_not_found")
    refusal(make_bank("demo_bank").get(client, path), 403, "wrong_role")
    # An objection without one: 404 attachment_not_found.
    plain = enterprise.post("/v1/objections", json={"feature": "tax.arrears", "claim": "paid"})
    assert plain.status_code == 201 and plain.get_json()["attachment"] is None
    refusal(
        enterprise.get(f"/v1/objections/{plain.get_json()['id']}/attachment"),
        404,
        "attachment_not_found",
    )


def test_a_bad_attachment_is_refused_and_nothing_is_stored(
    loaded: Flask, enterprise: FlaskClient
) -> None:
    # HTML named like an image: the bytes decide, and they are no allowed type.
    refusal(
        _file_with(enterprise, b"<html><script>alert(1)</script>", name="x.png"),
        400,
        "attachment_refused",
    )
    refusal(_file_with(enterprise, b"", name="x.pdf"), 400, "invalid_json")  # min_length: empty
    refusal(
        _file_with(enterprise, b"GIF89a" + b"\x00" * 20, name="x.gif"), 400, "attachment_refused"
    )
    limit = loaded.extensions["xinyi"].settings.config.casework.max_attachment_bytes
    refusal(_file_with(enterprise, PDF + b"\x00" * limit), 413, "attachment_too_large")
    bad = enterprise.post(
        "/v1/objections",
        json={
            "feature": "tax.paid_12m",
            "claim": "x",
            "attachment": {"file_name": "a.pdf", "content_base64": "not base64!"},
        },
    )
    refusal(bad, 400, "attachment_refused")
    assert _stored(loaded) == (0, 0)
    # A PNG is taken, whatever its name says.
    resp = _file_with(enterprise, PNG, name="scan.pdf")
    assert resp.status_code == 201, resp.get_json()
    assert resp.get_json()["attachment"]["content_type"] == "image/png"
    assert _stored(loaded) == (1, 1)
