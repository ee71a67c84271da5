"""Errors that quote the caller's own values quote a bounded, escaped piece of them:
JSON answers stay JSON-escaped and short whatever was sent, Authlib's OAuth
descriptions too, and HTML pages escape what they show."""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient

from common.errors import SHOWN_MAX, InvalidInput, shown
from gateway.errors import DETAIL_MAX, MESSAGE_MAX
from tests.gateway.conftest import ENTERPRISE, Bank

HOSTILE = '<script>alert("x")</script>\n' + "A" * 20_000


def test_shown_quotes_escapes_and_cuts() -> None:
    assert shown("tax") == "'tax'"
    assert shown("a\nb") == "'a\\nb'"
    cut = shown("x" * 1000)
    assert cut == repr("x" * SHOWN_MAX) + "…"


def test_an_unknown_json_field_is_named_briefly(
    make_bank: Callable[..., Bank], client: FlaskClient
) -> None:
    consent = {
        "enterprise": ENTERPRISE,
        "purpose": "working_capital_loan",
        "ops": ["report"],
        "categories": ["tax"],
        "duration_days": 30,
        "max_uses": 5,
    }
    resp = make_bank().post(client, "/v1/consents", {**consent, HOSTILE: 1})
    assert resp.status_code == 400
    body = resp.get_json()
    assert body["message"].startswith('unknown field \'<script>alert("x")</script>\\n')
    assert body["message"].endswith("…") and len(body["message"]) < 100
    assert len(body["field"]) <= DETAIL_MAX
    assert len(resp.get_data()) < 600


def test_an_unknown_department_in_the_path_is_named_briefly(
    make_person: Callable[..., FlaskClient],
) -> None:
    operator = make_person("operator", login="ops_echo")
    resp = operator.get("/v1/departments/" + "d" * 5000 + "/imports")
    assert resp.status_code == 404
    body = resp.get_json()
    assert body["error"] == "unknown_department"
    assert body["message"] == "no department " + shown("d" * 5000)


def test_the_token_endpoint_does_not_echo_the_grant_type(client: FlaskClient) -> None:
    resp = client.post("/oauth/token", data={"grant_type": HOSTILE})
    assert resp.status_code == 400
    assert resp.get_json()["error"] == "unsupported_grant_type"
    assert "script" not in resp.get_data(as_text=True)


def test_any_error_answer_is_bounded(app: Flask) -> None:
    from gateway.errors import error_response

    with app.test_request_context():
        resp, status = error_response(InvalidInput("m" * 10_000, field="f" * 10_000))
    body = resp.get_json()
    assert status == 400
    assert len(body["message"]) == MESSAGE_MAX and len(body["field"]) == DETAIL_MAX


def test_an_html_error_page_escapes_and_bounds_the_message(app: Flask) -> None:
    from gateway.web.common import error_page

    with app.test_request_context("/web/"):
        page = error_page(InvalidInput(HOSTILE))
    html = page.get_data(as_text=True)
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(" in html
    assert "A" * (MESSAGE_MAX + 1) not in html
