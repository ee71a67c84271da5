"""Console pages through the Flask test client: sign-in, roles, CSRF, expiry, and what
each role can and cannot see or do."""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient

from tests.web.conftest import (
    ENTERPRISE,
    OTHER_ENTERPRISE,
    PASSWORD,
    Bank,
    Person,
    request_consent,
    settle,
    sign_in,
)


# Sign-in, sessions, roles -----------------------------------------------------------
def test_sign_in_page_is_chinese_by_default_with_an_english_switch(client: FlaskClient) -> None:
    page = client.get("/login").get_data(as_text=True)
    assert '<html lang="zh-CN">' in page
    assert "登录" in page
    assert 'href="/login?lang=en"' in page
    resp = client.get("/login?lang=en")
    assert '<html lang="en">' in resp.get_data(as_text=True)
    assert "xinyi_lang=en" in resp.headers["Set-Cookie"]
    # The cookie keeps the choice on the next page, without the parameter.
    assert '<html lang="en">' in client.get("/login").get_data(as_text=True)


def test_each_role_lands_on_its_own_console(make_person: Callable[..., Person]) -> None:
    for role, home in (
        ("enterprise", "/enterprise/"),
        ("department", "/department/"),
        ("operator", "/operator/"),
    ):
        person = make_person(role)
        assert person.get("/").headers["Location"].endswith(home)


def test_wrong_password_is_refused_without_a_session(app: Flask, client: FlaskClient) -> None:
    app.extensions["xinyi"].registry.add_user(
        login="ent-a", password=PASSWORD, role="enterprise", uscc=ENTERPRISE
    )
    resp = sign_in(client, "ent-a", "not the password")
    assert resp.status_code == 401
    assert "账号或密码错误" in resp.get_data(as_text=True)
    assert client.get("/enterprise/").status_code == 302


def test_sign_in_form_without_its_token_is_refused(app: Flask, client: FlaskClient) -> None:
    app.extensions["xinyi"].registry.add_user(
        login="ent-b", password=PASSWORD, role="enterprise", uscc=ENTERPRISE
    )
    client.get("/login")
    resp = client.post("/login", data={"login": "ent-b", "password": PASSWORD})
    assert resp.status_code == 400
    assert client.get("/enterprise/").status_code == 302  # not signed in


def test_pages_need_a_session_and_send_people_to_sign_in(client: FlaskClient) -> None:
    for path in ("/enterprise/", "/department/", "/operator/institutions"):
        resp = client.get(path)
        assert resp.status_code == 302
        assert "/login?next=" in resp.headers["Location"]


def test_an_expired_session_sends_the_person_to_sign_in_and_says_why(
    app: Flask, make_person: Callable[..., Person]
) -> None:
    person = make_person("enterprise")
    assert person.get("/enterprise/").status_code == 200
    sessions = app.extensions["xinyi"].sessions
    sessions.clock = lambda: time.time() + 1801  # tokens.session_seconds is 1800
    resp = person.get("/enterprise/grants")
    assert resp.status_code == 302
    assert "reason=expired" in resp.headers["Location"]
    page = person.client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "登录已过期" in page


def test_a_role_cannot_open_another_roles_pages(make_person: Callable[..., Person]) -> None:
    enterprise = make_person("enterprise")
    for path in ("/operator/", "/operator/institutions", "/department/", "/department/imports"):
        resp = enterprise.get(path)
        assert resp.status_code == 403, path
        assert "wrong_role" in resp.get_data(as_text=True)
    department = make_person("department")
    assert department.get("/enterprise/").status_code == 403


def test_sign_out_needs_the_csrf_token_and_ends_the_session(
    make_person: Callable[..., Person],
) -> None:
    person = make_person("operator")
    assert person.post("/logout", csrf=False).status_code == 403
    assert person.get("/operator/keys").status_code == 200
    assert person.post("/logout").status_code == 302
    assert person.get("/operator/keys").status_code == 302


def test_next_after_sign_in_is_only_a_local_path(app: Flask, client: FlaskClient) -> None:
    app.extensions["xinyi"].registry.add_user(
        login="ent-c", password=PASSWORD, role="enterprise", uscc=ENTERPRISE
    )
    page = client.get("/login?next=//evil.example/x").get_data(as_text=True)
    token = page.split('name="csrf_token" value="')[1].split('"')[0]
    resp = client.post(
        "/login",
        data={
            "login": "ent-c",
            "password": PASSWORD,
            "csrf_token": token,
            "next": "https://evil.example/",
        },
    )
    assert resp.headers["Location"].endswith("/enterprise/")


# Enterprise ---------------------------------------------------------------------------
def test_enterprise_reads_the_letter_approves_and_revokes_and_the_bank_is_refused(
    app: Flask,
    client: FlaskClient,
    make_bank: Callable[..., Bank],
    make_person: Callable[..., Person],
) -> None:
    bank = make_bank("demo_bank", "Demo Bank")
    cid = request_consent(bank, client)
    ent = make_person("enterprise")

    pending = ent.page("/enterprise/")
    assert "Demo Bank" in pending and f"/enterprise/consents/{cid}" in pending
    detail = ent.page(f"/enterprise/consents/{cid}")
    assert "信用信息查询使用授权书" in detail  # the full letter, before any decision
    assert "sha256:" in detail

    # Approving without ticking "I have read the letter" does nothing.
    resp = ent.post(f"/enterprise/consents/{cid}/approve")
    assert resp.status_code == 400
    assert bank.get(client, f"/v1/consents/{cid}").get_json()["status"] == "pending"
    # Without the CSRF token nothing happens either.
    assert (
        ent.post(f"/enterprise/consents/{cid}/approve", {"accept": "yes"}, csrf=False).status_code
        == 403
    )
    assert bank.get(client, f"/v1/consents/{cid}").get_json()["status"] == "pending"

    assert ent.post(f"/enterprise/consents/{cid}/approve", {"accept": "yes"}).status_code == 302
    body = bank.get(client, f"/v1/consents/{cid}").get_json()
    assert body["status"] == "active"
    grant = body["grant"]

    grants = ent.page("/enterprise/grants")
    assert "有效" in grants and "20 / 20" in grants  # uses left of max_uses
    confirm = ent.page(f"/enterprise/consents/{cid}/revoke")
    assert "确认后停止的内容" in confirm and "Demo Bank" in confirm
    assert bank.get(client, f"/v1/consents/{cid}").get_json()["status"] == "active"

    assert ent.post(f"/enterprise/consents/{cid}/revoke").status_code == 302
    refused = bank.post(
        client, "/v1/verify", {"grant": grant, "feature": "tax.paid_12m", "op": ">=", "value": 1}
    )
    assert refused.status_code == 403
    assert refused.get_json()["error"] == "grant_revoked"


def test_enterprise_sees_only_its_own_requests(
    client: FlaskClient, make_bank: Callable[..., Bank], make_person: Callable[..., Person]
) -> None:
    bank = make_bank()
    mine = request_consent(bank, client)
    theirs = request_consent(bank, client, enterprise=OTHER_ENTERPRISE)
    ent = make_person("enterprise")
    page = ent.page("/enterprise/")
    assert mine in page and theirs not in page
    assert ent.get(f"/enterprise/consents/{theirs}").status_code == 404
    assert ent.post(f"/enterprise/consents/{theirs}/reject").status_code == 404
    other = make_person("enterprise", uscc=OTHER_ENTERPRISE)
    assert theirs in other.page("/enterprise/")


def test_pause_confirmation_says_what_stops_and_resume_restores(
    client: FlaskClient, make_bank: Callable[..., Bank], make_person: Callable[..., Person]
) -> None:
    bank = make_bank()
    cid = request_consent(bank, client)
    ent = make_person("enterprise")
    ent.post(f"/enterprise/consents/{cid}/approve", {"accept": "yes"})
    page = ent.page(f"/enterprise/consents/{cid}/pause")
    assert "授权已暂停" in page  # the refusal the bank will get
    ent.post(f"/enterprise/consents/{cid}/pause")
    assert bank.get(client, f"/v1/consents/{cid}").get_json()["status"] == "paused"
    ent.post(f"/enterprise/consents/{cid}/resume")
    assert bank.get(client, f"/v1/consents/{cid}").get_json()["status"] == "active"


def test_enterprise_access_page_lists_its_audit_entries_only(
    app: Flask,
    client: FlaskClient,
    make_bank: Callable[..., Bank],
    make_person: Callable[..., Person],
) -> None:
    bank = make_bank()
    request_consent(bank, client)
    request_consent(bank, client, enterprise=OTHER_ENTERPRISE)
    settle(app)
    ent = make_person("enterprise")
    page = ent.page("/enterprise/accesses")
    assert page.count('class="small verify"') == 1  # one entry: its own request
    assert "提出授权请求" in page
    assert "verify.js" in page


def test_enterprise_downloads_its_own_data(make_person: Callable[..., Person]) -> None:
    ent = make_person("enterprise")
    resp = ent.get("/enterprise/data.json")
    assert resp.status_code == 200
    doc = json.loads(resp.get_data(as_text=True))
    assert doc["enterprise"] == ENTERPRISE
    resp = ent.get("/enterprise/data.csv")
    assert resp.headers["Content-Disposition"].startswith("attachment")
    rows = list(csv.reader(io.StringIO(resp.get_data(as_text=True).lstrip("\ufeff"))))
    assert rows[0][:2] == ["uscc", "feature"]


# Operator -----------------------------------------------------------------------------
def test_operator_suspends_an_institution_after_confirming_and_the_bank_is_refused(
    client: FlaskClient, make_bank: Callable[..., Bank], make_person: Callable[..., Person]
) -> None:
    bank = make_bank("suspend_me", "Suspend Me Bank")
    op = make_person("operator")
    assert "Suspend Me Bank" in op.page("/operator/institutions")
    confirm = op.page("/operator/institution/suspend_me/suspend")
    assert "确认后停止的内容" in confirm
    assert bank.get(client, "/v1/consents").status_code == 200  # the GET changed nothing
    assert op.post("/operator/institution/suspend_me/suspend").status_code == 302
    resp = bank.get(client, "/v1/consents")
    assert resp.status_code == 403 and resp.get_json()["error"] == "institution_suspended"
    assert "已暂停" in op.page("/operator/institutions")
    op.post("/operator/institution/suspend_me/resume")
    assert bank.get(client, "/v1/consents").status_code == 200


def test_operator_registers_an_institution_and_a_bad_key_is_explained(
    app: Flask, make_person: Callable[..., Person]
) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from tests.gateway.conftest import public_jwk

    op = make_person("operator")
    key = Ed25519PrivateKey.generate()
    bad = op.post(
        "/operator/institutions",
        {"id": "new_bank", "name": "New Bank", "jwk": '{"kty": "OKP", "d": "secret"}'},
    )
    assert bad.status_code == 400
    assert "private" in bad.get_data(as_text=True)
    assert 'value="new_bank"' in bad.get_data(as_text=True)  # nothing typed is lost
    good = op.post(
        "/operator/institutions",
        {"id": "new_bank", "name": "New Bank", "jwk": json.dumps(public_jwk(key))},
    )
    assert good.status_code == 302
    assert app.extensions["xinyi"].registry.institution("new_bank").status == "active"
    again = op.post(
        "/operator/institutions",
        {"id": "new_bank", "name": "New Bank", "jwk": json.dumps(public_jwk(key))},
    )
    assert again.status_code == 400


def test_operator_adds_and_suspends_a_department_whose_people_then_cannot_sign_in(
    app: Flask, client: FlaskClient, make_person: Callable[..., Person]
) -> None:
    op = make_person("operator")
    assert op.post("/operator/departments", {"id": "court", "name": "Court"}).status_code == 302
    app.extensions["xinyi"].registry.add_user(
        login="court-staff", password=PASSWORD, role="department", department_id="court"
    )
    op.post("/operator/department/court/suspend")
    assert sign_in(client, "court-staff").status_code == 401


def test_operator_sees_key_dates_and_rotates_without_seeing_private_keys(
    app: Flask, make_person: Callable[..., Person]
) -> None:
    op = make_person("operator")
    ring = app.extensions["xinyi"].keys
    old = ring.signing_key("grants").kid
    page = op.page("/operator/keys")
    assert old in page and "PRIVATE" not in page
    assert "审计检查点" in page
    assert op.post("/operator/keys/grants/rotate").status_code == 302
    new = ring.signing_key("grants").kid
    assert new != old
    page = op.page("/operator/keys")
    assert new in page and old in page  # the old key is still published
    assert "已轮换，仍公布" in page


def test_statistics_page_draws_labelled_charts_with_tables(
    app: Flask,
    client: FlaskClient,
    make_bank: Callable[..., Bank],
    make_person: Callable[..., Person],
) -> None:
    bank = make_bank()
    ent = make_person("enterprise")
    cid = request_consent(bank, client)
    ent.post(f"/enterprise/consents/{cid}/approve", {"accept": "yes"})
    request_consent(bank, client, enterprise=OTHER_ENTERPRISE)
    bank.post(
        client, "/v1/verify", {"grant": "x", "feature": "tax.paid_12m", "op": ">=", "value": 1}
    )
    settle(app)
    page = make_person("operator").page("/operator/")
    assert page.count('role="img"') >= 5
    assert page.count("<details>") >= 5
    assert "授权无效" in page  # the refusal reason of the bad grant
    # One enterprise registered, one authorizing (the month's figures, as the API's).
    assert 'id="registered">1<' in page and 'id="authorizing">1<' in page


# Department ---------------------------------------------------------------------------
def test_department_sees_filters_and_exports_accesses_to_its_data_only(
    app: Flask,
    client: FlaskClient,
    make_bank: Callable[..., Bank],
    make_person: Callable[..., Person],
) -> None:
    bank = make_bank("bank_a", "Bank A")
    other = make_bank("bank_b", "Bank B")
    request_consent(bank, client, categories=["tax", "social_security"])
    request_consent(other, client, categories=["social_security"])
    settle(app)
    tax = make_person("department", department="tax")
    page = tax.page("/department/")
    assert "Bank A" in page
    # Only its own categories are shown of an entry that touched two departments.
    rows_part = page.split('id="accesses"')[1]
    assert "纳税信息" in rows_part and "社会保险信息" not in rows_part
    assert "bank_b" not in rows_part  # bank B asked for social security data only

    filtered = tax.page("/department/?institution=bank_b")
    assert 'id="accesses"' not in filtered

    resp = tax.get("/department/accesses.csv?institution=bank_a")
    rows = list(csv.DictReader(io.StringIO(resp.get_data(as_text=True).lstrip("\ufeff"))))
    assert len(rows) == 1
    assert rows[0]["institution"] == "bank_a"
    assert rows[0]["categories"] == "tax"

    bad = tax.get("/department/?from=31-01-2025")
    assert bad.status_code == 200
    assert "from" in bad.get_data(as_text=True)


def test_department_pages_render(make_person: Callable[..., Person]) -> None:
    tax = make_person("department", department="tax")
    assert "还没有导入记录" in tax.page("/department/imports")
    assert "见证" in tax.page("/department/witness")


def test_pages_take_the_csrf_token_only_from_their_own_forms(
    client: FlaskClient, make_bank: Callable[..., Bank], make_person: Callable[..., Person]
) -> None:
    """The JSON API accepts the token as a header; a page POST wants the form field."""
    bank = make_bank()
    cid = request_consent(bank, client)
    ent = make_person("enterprise")
    headers = {"X-CSRF-Token": ent.csrf()}
    resp = ent.client.post(f"/enterprise/consents/{cid}/reject", headers=headers)
    assert resp.status_code == 403
    assert ent.client.post("/logout", headers=headers).status_code == 403
    assert bank.get(client, f"/v1/consents/{cid}").get_json()["status"] == "pending"
    assert ent.get("/enterprise/").status_code == 200  # still signed in


def test_operator_sees_registered_models_without_their_weights(
    app: Flask, make_person: Callable[..., Person]
) -> None:
    import numpy as np

    from federated import store as model_store
    from federated.models import parse_model
    from tests.federated.conftest import model_json

    op = make_person("operator")
    assert "还没有登记模型" in op.page("/operator/models")
    raw = model_json(np.random.default_rng(7), description="SME risk v1")
    model_store.register_model(
        app.extensions["xinyi"].engine, parse_model(raw), "operator:models-import"
    )
    page = op.page("/operator/models")
    assert "sme-risk" in page and "SME risk v1" in page
    assert "纳税额近12个月" in page and "bank_f0" in page
    for w in raw["gateway_weights"] + raw["bank_weights"]:
        assert str(w) not in page
