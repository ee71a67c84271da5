"""Credit grades over HTTP (CONTRACT "Credit grades"): an institution reads letters only
under a grant for op ``grade``, logged; the enterprise reads its own grade free with the
explanation; a month never computed is a 404 naming the command and takes no use; the
whitelist lists opted-in 高级/一级 enterprises, one access entry each, and is announced
by a signed ``whitelist.published`` event; a granted repair counts in ⑨."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from common.db import read_session
from common.settings import Settings, load_settings
from common.workdays import china_date
from consent import store as consent_store
from gateway import grades as gateway_grades
from grading import service
from grading.engine import FIRST, HIGH
from records import synth
from records.catalog import Catalog
from records.service import import_csv
from tests.gateway.conftest import Bank
from tests.gateway.test_data_api import load, refusal

CITY_SIZE = 150
TODAY = date(2025, 7, 15)
MONTH = "2025-06"


@pytest.fixture
def settings(database_url: str, make_settings: Callable[..., Settings]) -> Settings:
    year = date.today().year
    return make_settings(database_url=database_url, calendar={"notices": {year: {}, year + 1: {}}})


@pytest.fixture(scope="module")
def city() -> synth.City:
    return synth.generate(Catalog(load_settings(env={}).config), CITY_SIZE, 5)


@pytest.fixture
def loaded(app: Flask, city: synth.City, tmp_path: Path) -> Flask:
    svc = app.extensions["xinyi"]
    catalog = Catalog(svc.settings.config)
    synth.write(city, tmp_path / "city")
    for department in catalog.departments:
        path = tmp_path / "city" / f"{department}.csv"
        if path.exists():
            import_csv(
                svc.engine, catalog, department, path.read_bytes(), file_name="f.csv", actor="t"
            )
    return app


def compute(app: Flask, month: str = MONTH, today: date = TODAY) -> service.Run:
    svc = app.extensions["xinyi"]
    return service.compute(svc.engine, svc.settings, month, today=today, now=1, actor="test")


def graded(app: Flask, month: str = MONTH) -> dict[str, int]:
    svc = app.extensions["xinyi"]
    with read_session(svc.engine) as s:
        rows = s.execute(
            sa.select(service.grades.c.uscc, service.grades.c.grade).where(
                service.grades.c.month == month
            )
        ).all()
    return {str(u): int(g) for u, g in rows}


def grade_grant(app: Flask, bank: Bank, client: FlaskClient, person: FlaskClient, uscc: str) -> str:
    granted, _ = gateway_grades.grade_categories(app.extensions["xinyi"].settings.config)
    body = {
        "enterprise": uscc,
        "purpose": "working_capital_loan",
        "ops": ["grade"],
        "categories": granted,
        "duration_days": 30,
        "max_uses": 5,
    }
    resp = bank.post(client, "/v1/consents", body)
    assert resp.status_code == 201, resp.get_json()
    cid = resp.get_json()["id"]
    resp = person.post(f"/v1/consents/{cid}/approve")
    assert resp.status_code == 200, resp.get_json()
    return str(resp.get_json()["grant"])


def uses(app: Flask) -> int:
    svc = app.extensions["xinyi"]
    with read_session(svc.engine) as s:
        return int(s.execute(sa.select(sa.func.sum(consent_store.consents.c.uses))).scalar() or 0)


def audit_entries(person: FlaskClient) -> list[dict[str, Any]]:
    resp = person.get("/v1/audit/entries?limit=1000")
    assert resp.status_code == 200, resp.get_json()
    return [e["entry"] for e in resp.get_json()["entries"]]


def test_an_institution_reads_letters_only_under_a_grade_grant_and_it_is_logged(
    loaded: Flask,
    city: synth.City,
    make_bank: Callable[..., Bank],
    make_person: Callable[..., FlaskClient],
    client: FlaskClient,
) -> None:
    code = str(city.feature_columns()[0][3])
    person = make_person("enterprise", code)
    bank = make_bank("bank_a")
    grant = grade_grant(loaded, bank, client, person, code)
    path = f"/v1/enterprises/{code}/grade"

    # Before any computation: 404 naming the command, and no use of the grant taken.
    body = refusal(bank.get(client, f"{path}?grant={grant}"), 404, "grades_not_computed")
    assert "xinyi grades compute" in body["message"]
    assert uses(loaded) == 0
    compute(loaded)

    resp = bank.get(client, f"{path}?grant={grant}")
    assert resp.status_code == 200, resp.get_json()
    out = resp.get_json()
    svc = loaded.extensions["xinyi"]
    stored = service.stored_grade(svc.engine, code, MONTH)
    assert out["enterprise"] == code and out["month"] == MONTH
    assert out["grade"] in ("高级", "一级", "备选", "不予认证", "不在认证范围")
    assert isinstance(out["audit_index"], int)
    # Letters only, and never ⑦ (the legal representative's personal credit).
    assert set(out["indicators"]) == {str(k) for k in range(1, 13)} - {"7"}
    for k, letter in out["indicators"].items():
        expected = stored.letters[int(k) - 1]
        assert letter == (expected if expected in "ABC" else None)
    assert not ({"explanation", "how_to_raise", "recommended"} & set(out))
    assert uses(loaded) == 1
    entry = next(e for e in audit_entries(person) if e.get("operation") == "grade")
    assert entry["enterprise"] == code and entry["decision"] == "allowed"
    assert entry["institution"] == "bank_a"
    assert "personal_credit" in entry["categories"] and "tax" in entry["categories"]

    # Bad month: 400; a month never computed: 404; neither takes a use.
    refusal(bank.get(client, f"{path}?grant={grant}&month=2025-13"), 400, "invalid_month")
    refusal(bank.get(client, f"{path}?grant={grant}&month=2024-01"), 404, "grades_not_computed")
    assert uses(loaded) == 1
    # No grant, or a grant without op grade: refused and logged.
    refused = refusal(bank.get(client, path), 403, "grant_missing")
    assert isinstance(refused.get("audit_index"), int)
    report = bank.post(
        client,
        "/v1/consents",
        {
            "enterprise": code,
            "purpose": "working_capital_loan",
            "ops": ["report"],
            "categories": gateway_grades.grade_categories(svc.settings.config)[0],
            "duration_days": 30,
            "max_uses": 5,
        },
    ).get_json()["id"]
    other = person.post(f"/v1/consents/{report}/approve").get_json()["grant"]
    refusal(bank.get(client, f"{path}?grant={other}"), 403, "scope_operation")
    # A grant about another enterprise does not read this one.
    refusal(
        bank.get(client, f"/v1/enterprises/{city.feature_columns()[0][4]}/grade?grant={grant}"),
        403,
        "grant_invalid",
    )


def test_a_grant_missing_a_category_the_grade_uses_is_refused(
    loaded: Flask,
    city: synth.City,
    make_bank: Callable[..., Bank],
    make_person: Callable[..., FlaskClient],
    client: FlaskClient,
) -> None:
    code = str(city.feature_columns()[0][5])
    person = make_person("enterprise", code)
    bank = make_bank("bank_b")
    compute(loaded)
    resp = bank.post(
        client,
        "/v1/consents",
        {
            "enterprise": code,
            "purpose": "working_capital_loan",
            "ops": ["grade"],
            "categories": ["tax"],
            "duration_days": 30,
            "max_uses": 5,
        },
    )
    cid = resp.get_json()["id"]
    grant = person.post(f"/v1/consents/{cid}/approve").get_json()["grant"]
    refusal(bank.get(client, f"/v1/enterprises/{code}/grade?grant={grant}"), 403, "scope_category")


def test_the_enterprise_reads_its_own_grade_free_with_the_explanation(
    loaded: Flask,
    city: synth.City,
    make_person: Callable[..., FlaskClient],
) -> None:
    codes = city.feature_columns()[0]
    code, other = str(codes[7]), str(codes[8])
    person = make_person("enterprise", code)
    refusal(person.get(f"/v1/enterprises/{code}/grade"), 404, "grades_not_computed")
    compute(loaded)
    resp = person.get(f"/v1/enterprises/{code}/grade")
    assert resp.status_code == 200, resp.get_json()
    out = resp.get_json()
    svc = loaded.extensions["xinyi"]
    explained = service.explain(svc.engine, code, MONTH)
    assert out["grade"] == explained["grade"] and "audit_index" not in out
    assert set(out["indicators"]) == {str(k) for k in range(1, 13)}  # ⑦ too: its own
    for k in ("1", "9", "13"):
        assert out["explanation"][k]["reason"] == explained["indicators"][k]["reason"]
    assert out["how_to_raise"] == explained["raise"]
    assert out["recommended"] is False
    refusal(person.get(f"/v1/enterprises/{other}/grade"), 403, "wrong_enterprise")


def test_an_open_objection_on_a_feature_the_grade_uses_marks_it_disputed(
    loaded: Flask,
    city: synth.City,
    make_bank: Callable[..., Bank],
    make_person: Callable[..., FlaskClient],
    client: FlaskClient,
) -> None:
    code = str(city.feature_columns()[0][9])
    person = make_person("enterprise", code)
    bank = make_bank("bank_c")
    grant = grade_grant(loaded, bank, client, person, code)
    compute(loaded)
    path = f"/v1/enterprises/{code}/grade?grant={grant}"
    assert bank.get(client, path).get_json()["disputed"] == []
    resp = person.post("/v1/objections", json={"feature": "tax.paid_12m", "claim": "too low"})
    assert resp.status_code == 201, resp.get_json()
    assert bank.get(client, path).get_json()["disputed"] == ["tax.paid_12m"]
    assert person.get(f"/v1/enterprises/{code}/grade").get_json()["disputed"] == ["tax.paid_12m"]


def test_the_whitelist_lists_opted_in_senior_and_first_grades_each_logged(
    loaded: Flask,
    city: synth.City,
    make_bank: Callable[..., Bank],
    make_person: Callable[..., FlaskClient],
    client: FlaskClient,
) -> None:
    bank = make_bank("bank_w")
    refusal(bank.get(client, "/v1/whitelist"), 404, "grades_not_computed")
    # Grades of the month, to pick who opts in (the grades do not depend on opting in).
    svc = loaded.extensions["xinyi"]
    from grading.engine import grade as grade_all
    from grading.inputs import population

    uscc, columns = city.feature_columns()
    as_of = service.grading_day(MONTH, TODAY)
    expected = grade_all(population(uscc, columns, as_of), as_of, svc.settings.config.grading)
    good = [str(u) for u, g in zip(uscc, expected.grade, strict=True) if g in (HIGH, FIRST)]
    poor = [str(u) for u, g in zip(uscc, expected.grade, strict=True) if g not in (HIGH, FIRST)]
    assert len(good) >= 3 and poor
    persons = {c: make_person("enterprise", c) for c in [*good[:3], poor[0]]}
    for c in [*good[:2], poor[0]]:
        resp = persons[c].put(f"/v1/enterprises/{c}/recommendation", json={"recommended": True})
        assert resp.status_code == 200, resp.get_json()
        assert resp.get_json()["recommended"] is True
    # good[2] opted in, then out: not listed.
    p2 = persons[good[2]]
    p2.put(f"/v1/enterprises/{good[2]}/recommendation", json={"recommended": True})
    p2.put(f"/v1/enterprises/{good[2]}/recommendation", json={"recommended": False})
    assert p2.get(f"/v1/enterprises/{good[2]}/recommendation").get_json()["recommended"] is False
    refusal(
        p2.put(f"/v1/enterprises/{good[0]}/recommendation", json={"recommended": True}),
        403,
        "wrong_enterprise",
    )

    run = compute(loaded)
    assert graded(loaded) and run.month == MONTH
    resp = bank.get(client, f"/v1/whitelist?month={MONTH}")
    assert resp.status_code == 200, resp.get_json()
    listed = resp.get_json()
    assert listed["month"] == MONTH
    assert [e["uscc"] for e in listed["enterprises"]] == sorted(good[:2])
    names = dict(zip(uscc.tolist(), columns["registration.name"].tolist(), strict=True))
    for e in listed["enterprises"]:
        assert e["grade"] in ("高级", "一级") and e["region"] == e["uscc"][2:8]
        assert e["name"] == names[e["uscc"]]
        # Each listed enterprise sees the access, by that institution, at that index.
        seen = [
            x
            for x in audit_entries(persons[e["uscc"]])
            if x.get("operation") == "whitelist" and x.get("institution") == "bank_w"
        ]
        assert len(seen) == 1 and seen[0]["enterprise"] == e["uscc"]
    # Someone not listed sees no whitelist access about itself.
    assert not [x for x in audit_entries(persons[poor[0]]) if x.get("operation") == "whitelist"]
    refusal(bank.get(client, "/v1/whitelist?month=June"), 400, "invalid_month")

    # One whitelist.published per active institution: the month and the count only.
    with read_session(svc.engine) as s:
        rows = s.execute(
            sa.select(
                consent_store.webhook_outbox.c.institution_id,
                consent_store.webhook_outbox.c.payload,
            )
        ).all()
    published = [
        (i, json.loads(p)) for i, p in rows if json.loads(p)["type"] == "whitelist.published"
    ]
    assert [i for i, _ in published] == ["bank_w"]
    assert set(published[0][1]) == {"event_id", "at", "type", "month", "count"}
    assert published[0][1]["month"] == MONTH and published[0][1]["count"] == 2


def test_a_suspended_institution_gets_no_whitelist(
    loaded: Flask, make_bank: Callable[..., Bank], client: FlaskClient
) -> None:
    bank = make_bank("bank_s")
    compute(loaded)
    loaded.extensions["xinyi"].registry.suspend_institution("bank_s")
    resp = bank.get(client, "/v1/whitelist")
    assert resp.status_code in (401, 403), resp.get_json()


def test_a_consent_cannot_name_the_restricted_personal_credit_category(
    app: Flask, make_bank: Callable[..., Bank], client: FlaskClient
) -> None:
    bank = make_bank("bank_p")
    body = {
        "enterprise": "91330100716105852F",
        "purpose": "working_capital_loan",
        "ops": ["grade"],
        "categories": ["tax", "personal_credit"],
        "duration_days": 30,
        "max_uses": 5,
    }
    out = refusal(bank.post(client, "/v1/consents", body), 400, "category_restricted")
    assert "personal_credit" in out["message"]


def test_a_granted_repair_of_the_dishonesty_records_counts_as_repaired_in_indicator_9(
    app: Flask,
    loaded: Flask,
    city: synth.City,
    make_person: Callable[..., FlaskClient],
) -> None:
    import time

    svc = app.extensions["xinyi"]
    uscc, columns = city.feature_columns()
    active = columns["registration.status"] == "active"
    serious = columns["admin_penalty.dishonest"]
    code = next(
        str(u)
        for u, a, s in zip(uscc, active, serious, strict=True)
        if a and s is not True and s != 1.0
    )
    # One record, open, within two years of both grading days: ⑨ is C.
    load(app, "credit_office", f"uscc,public_credit.dishonesty_records\n{code},2026-01-10:open\n")
    today = china_date(time.time())
    before = f"{today.year}-{today.month - 1:02d}" if today.month > 1 else f"{today.year - 1}-12"
    before_day = service.grading_day(before, today)
    service.compute(svc.engine, svc.settings, before, today=before_day, now=1, actor="t")
    assert service.stored_grade(svc.engine, code, before).letters[8] == "C"

    person = make_person("enterprise", code)
    resp = person.post(
        "/v1/repairs", json={"record": "public_credit.dishonesty_records", "reason": "paid"}
    )
    assert resp.status_code == 201, resp.get_json()
    office = make_person("department", department="credit_office")
    resp = office.post(
        f"/v1/repairs/{resp.get_json()['id']}/resolve",
        json={"decision": "repaired", "reason": "obligations fulfilled"},
    )
    assert resp.status_code == 200, resp.get_json()
    month = f"{today.year}-{today.month:02d}"
    service.compute(svc.engine, svc.settings, month, today=today, now=2, actor="t")
    # The record stays as the credit office supplied it; the grade reads it repaired.
    assert service.stored_grade(svc.engine, code, month).letters[8] == "B"
    out = person.get(f"/v1/enterprises/{code}/grade?month={month}").get_json()
    assert out["indicators"]["9"] == "B"


def test_the_report_never_serves_the_keyed_hash_of_the_legal_representatives_id(
    app: Flask, make_bank: Callable[..., Bank], client: FlaskClient
) -> None:
    from records.pseudonyms import LEGAL_REP_ID

    code = "91330100716105852F"
    department = app.extensions["xinyi"].registry
    if department.get_department("market_regulation") is None:
        department.add_department("market_regulation", name="market regulation")
    svc = app.extensions["xinyi"]
    import_csv(
        svc.engine,
        Catalog(svc.settings.config),
        "market_regulation",
        f"uscc,registration.name,{LEGAL_REP_ID}\n{code},某公司,33010619800101123X\n".encode(),
        file_name="reg.csv",
        actor="t",
        pseudonym_key=svc.keys.pseudonym_key(LEGAL_REP_ID),
    )
    bank = make_bank("bank_r")
    public = bank.get(client, f"/v1/enterprises/{code}/report").get_json()["public"]
    assert public.get("registration.name") == "某公司" and LEGAL_REP_ID not in public
