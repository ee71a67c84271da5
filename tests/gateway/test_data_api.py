"""Data services over HTTP: banded reports and verifications under each kind of grant,
verification budgets, and the department import API."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from common.settings import Settings
from gateway import create_app
from records.catalog import Catalog
from records.service import import_csv
from tests.gateway.conftest import ENTERPRISE, OTHER_ENTERPRISE, Bank, consent_body, grant_for

TAX = (
    "uscc,tax.paid_12m,tax.revenue_12m,tax.credit_rating,tax.arrears\n"
    f"{ENTERPRISE},1234567.89,23456789.00,B,0\n"
    f"{OTHER_ENTERPRISE},5000.00,80000.00,C,1200.50\n"
)
REGISTRATION = (
    "uscc,registration.name,registration.industry,registration.established,registration.size\n"
    f"{ENTERPRISE},杭州华信贸易有限公司,F,2015-03-02,small\n"
)
SOCIAL = f"uscc,social_security.insured_employees\n{ENTERPRISE},987654\n"
NON_PUBLIC_VALUES = ("1234567.89", "1234567", "23456789", "987654")


def load(app: Flask, department: str, text: str) -> None:
    svc = app.extensions["xinyi"]
    import_csv(
        svc.engine,
        Catalog(svc.settings.config),
        department,
        text.encode(),
        file_name=f"{department}.csv",
        actor="test",
    )


@pytest.fixture
def loaded(app: Flask) -> Flask:
    load(app, "tax", TAX)
    load(app, "market_regulation", REGISTRATION)
    load(app, "social_security", SOCIAL)
    return app


@pytest.fixture
def bank(make_bank: Callable[..., Bank]) -> Bank:
    return make_bank("demo_bank")


@pytest.fixture
def enterprise(make_person: Callable[..., FlaskClient]) -> FlaskClient:
    return make_person("enterprise", ENTERPRISE)


def no_values(body: Any) -> None:
    text = str(body)
    for value in NON_PUBLIC_VALUES:
        assert value not in text


def refusal(resp: Any, status: int, code: str) -> dict[str, Any]:
    body = resp.get_json()
    assert resp.status_code == status, body
    assert body["error"] == code, body
    return dict(body)


# Report -------------------------------------------------------------------------------


def test_report_without_grant_has_public_data_only(
    loaded: Flask, bank: Bank, client: FlaskClient
) -> None:
    resp = bank.get(client, f"/v1/enterprises/{ENTERPRISE}/report")
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["enterprise"] == ENTERPRISE
    assert body["public"] == {
        "registration.name": "杭州华信贸易有限公司",
        "registration.industry": "F",
        "registration.established": "2015-03-02",
        "registration.size": "small",
    }
    assert body["banded"] == {}
    assert isinstance(body["audit_index"], int)
    no_values(body)


def test_report_with_a_grant_adds_bands_never_values(
    loaded: Flask, bank: Bank, client: FlaskClient, enterprise: FlaskClient
) -> None:
    grant = grant_for(bank, client, enterprise, ops=["report"], categories=["tax"])
    resp = bank.get(client, f"/v1/enterprises/{ENTERPRISE}/report?grant={grant}")
    body = resp.get_json()
    assert resp.status_code == 200, body
    assert set(body["banded"]) == {"tax.paid_12m", "tax.revenue_12m", "tax.arrears"}
    paid = body["banded"]["tax.paid_12m"]
    assert (paid["band"], paid["band_en"]) == ("100万–500万", "1M–5M")
    assert (paid["lower"], paid["upper"], paid["unit"]) == (1000000, 5000000, "CNY")
    assert body["banded"]["tax.revenue_12m"]["band"] == "1000万–5000万"
    assert "social_security.insured_employees" not in body["banded"]  # not in the grant
    assert "tax.credit_rating" not in body["banded"]  # no bands in the catalog
    assert body["public"]["registration.name"] == "杭州华信贸易有限公司"
    no_values(body)


def test_report_refusals_carry_the_contract_codes(
    loaded: Flask,
    bank: Bank,
    client: FlaskClient,
    enterprise: FlaskClient,
    make_bank: Callable[..., Bank],
) -> None:
    url = f"/v1/enterprises/{ENTERPRISE}/report"
    verify_only = grant_for(bank, client, enterprise, ops=["verify"], categories=["tax"])
    body = refusal(bank.get(client, f"{url}?grant={verify_only}"), 403, "scope_operation")
    assert isinstance(body["audit_index"], int)
    refusal(bank.get(client, f"{url}?grant=not.a.jwt"), 403, "grant_invalid")
    refusal(bank.get(client, f"{url}?grant="), 403, "grant_missing")
    other = make_bank("other_bank")
    refusal(other.get(client, f"{url}?grant={verify_only}"), 403, "grant_wrong_audience")
    # A grant about one enterprise does not open another's report.
    good = grant_for(bank, client, enterprise, ops=["report"], categories=["tax"])
    refusal(
        bank.get(client, f"/v1/enterprises/{OTHER_ENTERPRISE}/report?grant={good}"),
        403,
        "grant_invalid",
    )
    refusal(bank.get(client, "/v1/enterprises/91330100716105852G/report"), 400, "invalid_uscc")


def test_pause_and_revoke_hold_on_the_very_next_report(
    loaded: Flask, bank: Bank, client: FlaskClient, enterprise: FlaskClient
) -> None:
    resp = bank.post(client, "/v1/consents", consent_body(ops=["report"], categories=["tax"]))
    cid = resp.get_json()["id"]
    grant = enterprise.post(f"/v1/consents/{cid}/approve").get_json()["grant"]
    url = f"/v1/enterprises/{ENTERPRISE}/report?grant={grant}"
    assert bank.get(client, url).status_code == 200
    enterprise.post(f"/v1/consents/{cid}/pause")
    refusal(bank.get(client, url), 403, "grant_paused")
    enterprise.post(f"/v1/consents/{cid}/resume")
    assert bank.get(client, url).status_code == 200
    enterprise.post(f"/v1/consents/{cid}/revoke")
    refusal(bank.get(client, url), 403, "grant_revoked")


def test_only_institutions_ask_for_reports(
    loaded: Flask, client: FlaskClient, enterprise: FlaskClient
) -> None:
    url = f"/v1/enterprises/{ENTERPRISE}/report"
    refusal(enterprise.get(url), 403, "wrong_role")
    refusal(client.get(url), 401, "unauthenticated")


# Verify -------------------------------------------------------------------------------


def verify(bank: Bank, client: FlaskClient, grant: str, feature: str, op: str, value: Any) -> Any:
    return bank.post(
        client, "/v1/verify", {"grant": grant, "feature": feature, "op": op, "value": value}
    )


def test_verify_answers_yes_or_no_and_logs_it(
    loaded: Flask, bank: Bank, client: FlaskClient, enterprise: FlaskClient
) -> None:
    grant = grant_for(bank, client, enterprise, ops=["verify"], categories=["tax"])
    yes = verify(bank, client, grant, "tax.paid_12m", ">=", 1_000_000)
    assert yes.status_code == 200, yes.get_json()
    assert yes.get_json()["result"] is True
    no = verify(bank, client, grant, "tax.paid_12m", ">=", 2_000_000)
    assert no.get_json()["result"] is False
    assert verify(bank, client, grant, "tax.credit_rating", "==", "B").get_json()["result"]
    assert not verify(bank, client, grant, "tax.credit_rating", "!=", "B").get_json()["result"]
    assert verify(bank, client, grant, "tax.arrears", "<=", 0).get_json()["result"] is True
    assert set(yes.get_json()) == {"result", "disputed", "audit_index"}
    assert yes.get_json()["disputed"] == []
    # The audit entry names the feature and the decision, never the value.
    entry = bank.get(client, f"/v1/audit/entries/{no.get_json()['audit_index']}").get_json()
    assert entry["entry"]["operation"] == "verify"
    assert entry["entry"]["features"] == ["tax.paid_12m"]
    assert entry["entry"]["departments"] == ["tax"]
    assert entry["entry"]["decision"] == "allowed"
    no_values(entry)


MALFORMED: list[tuple[dict[str, Any], str]] = [
    ({"feature": "tax.nothing", "op": ">=", "value": 1}, "unknown_feature"),
    ({"feature": "registration.size", "op": "==", "value": "small"}, "feature_not_verifiable"),
    ({"feature": "tax.paid_12m", "op": "==", "value": 1}, "op_not_allowed"),
    ({"feature": "tax.paid_12m", "op": ">", "value": 1}, "op_not_allowed"),
    ({"feature": "tax.paid_12m", "op": ">=", "value": "1000000"}, "invalid_value"),
    ({"feature": "tax.paid_12m", "op": ">=", "value": True}, "invalid_value"),
    ({"feature": "tax.credit_rating", "op": "==", "value": "AAA"}, "invalid_value"),
    ({"feature": "tax.paid_12m", "op": ">=", "value": 1, "extra": 1}, "invalid_json"),
    ({"op": ">=", "value": 1}, "invalid_json"),
]


def test_malformed_verifications_are_refused_before_any_use(
    loaded: Flask, bank: Bank, client: FlaskClient, enterprise: FlaskClient
) -> None:
    grant = grant_for(bank, client, enterprise, ops=["verify"], categories=["tax"], max_uses=3)
    for body, code in MALFORMED:
        refusal(bank.post(client, "/v1/verify", {"grant": grant, **body}), 400, code)
    refusal(bank.post(client, "/v1/verify", ["not", "an", "object"]), 400, "invalid_json")
    # No use was taken: all three remain.
    for _ in range(3):
        assert verify(bank, client, grant, "tax.paid_12m", ">=", 1).status_code == 200
    refusal(verify(bank, client, grant, "tax.paid_12m", ">=", 1), 403, "grant_uses_exhausted")


def test_verify_needs_a_grant_covering_op_and_category(
    loaded: Flask, bank: Bank, client: FlaskClient, enterprise: FlaskClient
) -> None:
    refusal(bank.post(client, "/v1/verify", {"feature": "tax.paid_12m", "op": ">=", "value": 1}),
            403, "grant_missing")  # fmt: skip
    report_only = grant_for(bank, client, enterprise, ops=["report"], categories=["tax"])
    refusal(verify(bank, client, report_only, "tax.paid_12m", ">=", 1), 403, "scope_operation")
    tax_only = grant_for(bank, client, enterprise, ops=["verify"], categories=["tax"])
    body = refusal(
        verify(bank, client, tax_only, "social_security.insured_employees", ">=", 10),
        403,
        "scope_category",
    )
    assert isinstance(body["audit_index"], int)


def test_verify_without_data_is_404_no_data(
    loaded: Flask, bank: Bank, client: FlaskClient, enterprise: FlaskClient
) -> None:
    grant = grant_for(bank, client, enterprise, ops=["verify"], categories=["utilities"])
    body = refusal(verify(bank, client, grant, "utilities.power_kwh_12m", ">=", 1), 404, "no_data")
    assert isinstance(body["audit_index"], int)


def test_each_feature_has_its_own_budget_and_the_enterprise_sees_it(
    loaded: Flask, bank: Bank, client: FlaskClient, enterprise: FlaskClient
) -> None:
    resp = bank.post(client, "/v1/consents", consent_body(ops=["verify"], categories=["tax"]))
    cid = resp.get_json()["id"]
    grant = enterprise.post(f"/v1/consents/{cid}/approve").get_json()["grant"]
    # Binary search on the amount runs out after the default budget of 5.
    low, high = 0, 100_000_000
    for _ in range(5):
        mid = (low + high) // 2
        answer = verify(bank, client, grant, "tax.paid_12m", ">=", mid).get_json()["result"]
        low, high = (mid, high) if answer else (low, mid)
    body = refusal(
        verify(bank, client, grant, "tax.paid_12m", ">=", low), 403, "verify_budget_exhausted"
    )
    assert body["feature"] == "tax.paid_12m" and isinstance(body["audit_index"], int)
    assert high - low > 1_000_000  # five questions left the value blurred
    # Other features keep their own budgets.
    assert verify(bank, client, grant, "tax.revenue_12m", ">=", 1).status_code == 200
    seen = enterprise.get(f"/v1/consents/{cid}").get_json()["verification_budget"]
    assert seen["tax.paid_12m"] == {"budget": 5, "used": 5, "left": 0}
    assert seen["tax.revenue_12m"] == {"budget": 5, "used": 1, "left": 4}
    assert seen["tax.credit_rating"] == {"budget": 5, "used": 0, "left": 5}
    # A refused verification took no use of the grant.
    assert bank.get(client, f"/v1/consents/{cid}").get_json()["uses"] == 6


@pytest.fixture
def small_budget_app(settings: Settings, make_settings: Callable[..., Settings]) -> Iterator[Flask]:
    custom = make_settings(
        database_url=settings.database_url,
        consent={"default_verify_budget": 3},
        categories={"tax": {"features": {"paid_12m": {"verify_budget": 1}}}},
    )
    app = create_app(custom, background=False)
    app.config["TESTING"] = True
    yield app
    app.extensions["xinyi"].stop()
    app.extensions["xinyi"].engine.dispose()


def test_budgets_come_from_config_per_feature(
    small_budget_app: Flask, make_bank: Callable[..., Bank], client: FlaskClient,
    make_person: Callable[..., FlaskClient],
) -> None:  # fmt: skip
    app = small_budget_app
    load(app, "tax", TAX)
    c = app.test_client()
    bank = make_bank("budget_bank", login=False)
    bank.app = app
    bank.login(c)
    person = make_person("enterprise", ENTERPRISE)
    grant = grant_for(bank, c, person, ops=["verify"], categories=["tax"])
    assert verify(bank, c, grant, "tax.paid_12m", ">=", 1).status_code == 200
    refusal(verify(bank, c, grant, "tax.paid_12m", ">=", 1), 403, "verify_budget_exhausted")
    for _ in range(3):
        assert verify(bank, c, grant, "tax.revenue_12m", ">=", 1).status_code == 200
    refusal(verify(bank, c, grant, "tax.revenue_12m", ">=", 1), 403, "verify_budget_exhausted")


# Department imports --------------------------------------------------------------------


def upload(person: FlaskClient, department: str, text: str, **kw: Any) -> Any:
    return person.post(
        f"/v1/departments/{department}/imports?file_name=tax-2025.csv",
        data=text.encode(),
        content_type="text/csv",
        **kw,
    )


def test_a_department_loads_and_sees_its_history(
    app: Flask, make_person: Callable[..., FlaskClient]
) -> None:
    tax = make_person("department", department="tax")
    resp = upload(tax, "tax", TAX)
    body = resp.get_json()
    assert resp.status_code == 201, body
    assert (body["status"], body["version"], body["rows"], body["file_name"]) == (
        "loaded", 1, 2, "tax-2025.csv",
    )  # fmt: skip
    assert body["imported_by"].startswith("department:")
    again = tax.post(
        "/v1/departments/tax/imports",
        data={"file": (__import__("io").BytesIO(TAX.encode()), "again.csv")},
        content_type="multipart/form-data",
    )
    assert again.status_code == 201 and again.get_json()["version"] == 2
    history = tax.get("/v1/departments/tax/imports").get_json()["imports"]
    assert [(h["version"], h["file_name"]) for h in history] == [
        (2, "again.csv"), (1, "tax-2025.csv"),
    ]  # fmt: skip
    one = tax.get(f"/v1/departments/tax/imports/{history[1]['id']}").get_json()
    assert one["sha256"] == history[1]["sha256"]
    no_values(history)


def test_a_refused_upload_lists_every_bad_row_and_loads_nothing(
    app: Flask, make_person: Callable[..., FlaskClient]
) -> None:
    tax = make_person("department", department="tax")
    bad = TAX + f"{ENTERPRISE},-7777.77,1,A,0\n" + "91330100716105852G,1,1,A,0\n"
    body = refusal(upload(tax, "tax", bad), 400, "import_rejected")
    assert [(r["line"], r["column"], r["code"]) for r in body["rejects"]] == [
        (4, "tax.paid_12m", "negative_amount"),
        (4, "uscc", "duplicate_uscc"),
        (5, "uscc", "invalid_uscc"),
    ]
    assert "7777" not in str(body)
    history = tax.get("/v1/departments/tax/imports").get_json()["imports"]
    assert [(h["status"], h["reject_count"], h["bad_rows"]) for h in history] == [
        ("rejected", 3, 2)
    ]
    csv_text = tax.get(f"/v1/departments/tax/imports/{history[0]['id']}/rejects")
    assert csv_text.mimetype == "text/csv"
    assert csv_text.get_data(as_text=True).splitlines()[0] == "line,column,code,reason"
    assert len(csv_text.get_data(as_text=True).splitlines()) == 4


def test_departments_act_only_for_themselves(
    app: Flask,
    make_person: Callable[..., FlaskClient],
    make_bank: Callable[..., Bank],
    client: FlaskClient,
) -> None:
    tax = make_person("department", department="tax")
    utilities = make_person("department", department="utilities")
    refusal(upload(utilities, "tax", TAX), 403, "wrong_department")
    refusal(utilities.get("/v1/departments/tax/imports"), 403, "wrong_department")
    imported = upload(tax, "tax", TAX).get_json()
    refusal(utilities.get(f"/v1/departments/utilities/imports/{imported['id']}"), 404,
            "import_not_found")  # fmt: skip
    refusal(tax.get("/v1/departments/customs/imports"), 404, "unknown_department")
    bank = make_bank("import_bank")
    resp = client.post(
        "/v1/departments/tax/imports", data=TAX, content_type="text/csv", headers=bank.headers()
    )
    refusal(resp, 403, "wrong_role")
    refusal(client.get("/v1/departments/tax/imports"), 401, "unauthenticated")
    operator = make_person("operator")
    assert operator.get("/v1/departments/tax/imports").status_code == 200
    assert upload(operator, "utilities", "uscc,utilities.late_payments_12m\n"
                  f"{ENTERPRISE},1\n").status_code == 201  # fmt: skip
    # Cookie sessions need the CSRF header for an upload.
    tax.environ_base.pop("HTTP_X_CSRF_TOKEN")
    refusal(upload(tax, "tax", TAX), 403, "csrf_failed")
    # 有进有出: a suspended department loads nothing.
    app.extensions["xinyi"].registry.suspend_department("utilities")
    refusal(upload(utilities, "utilities", "uscc,utilities.late_payments_12m\n"
                   f"{ENTERPRISE},1\n"), 403, "department_suspended")  # fmt: skip


def test_an_upload_must_be_csv_and_within_the_size_limit(
    app: Flask, make_person: Callable[..., FlaskClient]
) -> None:
    tax = make_person("department", department="tax")
    refusal(tax.post("/v1/departments/tax/imports", json={"rows": []}), 400, "invalid_upload")
    limit = app.config["MAX_CONTENT_LENGTH"]
    huge = TAX + (f"{ENTERPRISE},1,1,A,0\n" * (limit // 20))
    assert upload(tax, "tax", huge).status_code == 413


def test_the_data_paths_are_documented(client: FlaskClient) -> None:
    paths = client.get("/openapi.json").get_json()["paths"]
    for path, method in [
        ("/v1/enterprises/{uscc}/report", "get"),
        ("/v1/verify", "post"),
        ("/v1/departments/{department}/imports", "post"),
        ("/v1/departments/{department}/imports", "get"),
        ("/v1/departments/{department}/imports/{import_id}", "get"),
        ("/v1/departments/{department}/imports/{import_id}/rejects", "get"),
    ]:
        assert method in paths[path], path
