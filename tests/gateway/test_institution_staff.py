"""Role ``institution``: a bank's console staff. Created with the institution they work
for, signed in like every person, landing on ``/bank/``; refused by every existing API
route and page (they are neither the institution's OAuth client, nor an enterprise,
department or operator)."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

from gateway.openapi import api_rules
from registry import UnknownParty
from tests.gateway.conftest import Bank

PASSWORD = "correct horse battery"


@pytest.fixture
def staff(app: Flask, make_bank: Callable[..., Bank]) -> FlaskClient:
    bank = make_bank("bank-a")
    app.extensions["xinyi"].registry.add_user(
        login="officer", password=PASSWORD, role="institution", institution_id=bank.id
    )
    person = app.test_client()
    resp = person.post("/v1/session", json={"login": "officer", "password": PASSWORD})
    assert resp.status_code == 200, resp.get_json()
    signed = resp.get_json()
    assert signed["role"] == "institution" and signed["institution"] == "bank-a"
    person.environ_base["HTTP_X_CSRF_TOKEN"] = signed["csrf_token"]
    return person


def test_staff_need_an_existing_institution(app: Flask) -> None:
    reg = app.extensions["xinyi"].registry
    with pytest.raises(UnknownParty):
        reg.add_user(login="officer", password=PASSWORD, role="institution", institution_id="nope")
    with pytest.raises(Exception, match="--institution"):
        reg.add_user(login="officer", password=PASSWORD, role="institution")


def _fill(rule: str) -> str:
    return re.sub(r"<(?:int:)?([^>]+)>", lambda m: "1" if "int:" in m.group(0) else "x", rule)


def test_every_api_route_refuses_staff_unless_it_declares_them(
    app: Flask, staff: FlaskClient
) -> None:
    """Staff reach only the routes written for them (``authenticated(..., staff=True)``:
    the financing loop); every other route refuses them before reading the body."""
    checked = admitted = 0
    for rule in api_rules(app):
        view = app.view_functions[rule.endpoint]
        if getattr(view, "roles", None) is None:  # public: no principal at all
            continue
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            path = _fill(rule.rule)
            resp = staff.open(path, method=method, json={})
            if rule.rule == "/v1/session" and method == "GET":
                assert resp.status_code == 200 and resp.get_json()["role"] == "institution"
                continue
            if getattr(view, "staff", False):
                assert (resp.get_json() or {}).get("error") != "wrong_role", (method, path)
                admitted += 1
                continue
            assert resp.status_code == 403, (method, path, resp.status_code)
            assert resp.get_json()["error"] == "wrong_role", (method, path)
            checked += 1
    assert checked >= 30 and admitted >= 5


def test_every_existing_page_refuses_staff(app: Flask, staff: FlaskClient) -> None:
    checked = 0
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith(("web_enterprise.", "web_department.", "web_operator.")):
            continue
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            resp = staff.open(_fill(rule.rule), method=method)
            assert resp.status_code == 403, (method, rule.rule, resp.status_code)
            checked += 1
    assert staff.get("/enterprise/account").status_code == 403
    assert checked >= 20


def test_staff_land_on_the_bank_console_and_the_client_does_not(
    app: Flask, client: FlaskClient, staff: FlaskClient, make_bank: Callable[..., Bank]
) -> None:
    resp = staff.get("/")
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/bank/")
    page = app.test_client()
    form = page.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert token is not None
    resp = page.post(
        "/login", data={"csrf_token": token.group(1), "login": "officer", "password": PASSWORD}
    )
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/bank/")
    bank = make_bank("bank-b")
    assert bank.get(client, "/").status_code == 403  # the OAuth client has no console


def test_staff_of_a_suspended_institution_are_refused(app: Flask, staff: FlaskClient) -> None:
    reg = app.extensions["xinyi"].registry
    reg.suspend_institution("bank-a")
    resp = staff.get("/v1/session")
    assert resp.status_code == 403 and resp.get_json()["error"] == "institution_suspended"
    resp = app.test_client().post("/v1/session", json={"login": "officer", "password": PASSWORD})
    assert resp.status_code == 401
