"""The HTTP contract is stated once: every JSON API route declares its operation and
models, ``/openapi.json`` is generated from them and is a valid OpenAPI 3.1 document,
and a body or query that does not fit its model is refused with the model's stable
code, naming the field, never echoing the value sent."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Blueprint, Flask
from flask.testing import FlaskClient
from openapi_spec_validator import validate
from pydantic import ValidationError

from gateway.api import schemas
from gateway.contract import JSON, operation, operation_of, refusal
from gateway.openapi import api_rules, openapi_path
from tests.answers import KEY
from tests.gateway.conftest import Bank

MARK = "Zq9-MARK-7Xv"  # a value that must never come back in a refusal


def test_the_generated_document_is_a_valid_openapi_3_1_document(client: FlaskClient) -> None:
    doc = client.get("/openapi.json").get_json()
    validate(doc)
    assert doc["openapi"] == "3.1.0"


def test_every_api_route_is_documented_from_its_declared_models(
    app: Flask, client: FlaskClient
) -> None:
    paths = client.get("/openapi.json").get_json()["paths"]
    rules = api_rules(app)
    assert len(rules) >= 35
    for rule in rules:
        op = operation_of(app.view_functions[rule.endpoint])
        assert op is not None, f"{rule.rule} declares no operation"
        methods = (rule.methods or set()) - {"HEAD", "OPTIONS"}
        for method in methods:
            documented = paths[openapi_path(rule)][method.lower()]
            assert documented["summary"] == op.summary
            if JSON in op.body_media:
                assert op.body is not None, f"{method} {rule.rule} has no body model"
                assert "requestBody" in documented
            if op.answer_media == JSON and op.status != 204:
                assert op.answer is not None, f"{method} {rule.rule} has no answer model"
    # Pages are not part of the JSON API.
    assert not [p for p in paths if p.startswith(("/enterprise", "/operator", "/department"))]


def test_the_document_states_who_may_call(client: FlaskClient) -> None:
    paths = client.get("/openapi.json").get_json()["paths"]
    assert paths["/v1/score"]["post"]["security"] == [{"bearer": []}]
    assert paths["/v1/consents/{consent_id}/{action}"]["post"]["security"] == [{"session": []}]
    assert paths["/v1/catalog"]["get"]["security"] == [{"bearer": []}, {"session": []}]
    assert "security" not in paths["/v1/audit/checkpoint"]["get"]
    action = paths["/v1/consents/{consent_id}/{action}"]["post"]["parameters"][1]
    assert action["schema"]["enum"] == ["approve", "reject", "pause", "resume", "revoke"]


BAD: list[tuple[str, str, Any, str, str]] = [
    # (method, path, JSON body or query, code, field)
    ("POST", "/v1/session", {"login": [MARK], "password": "x"}, "invalid_json", "login"),
    ("POST", "/v1/session", {"login": "x", "password": {"p": MARK}}, "invalid_json", "password"),
    ("GET", f"/v1/audit/proof/consistency?first={MARK}&second=1", None, "invalid_query", "first"),
    ("GET", "/v1/audit/proof/consistency?first=1.0&second=1", None, "invalid_query", "first"),
    ("GET", "/v1/audit/proof/consistency?first=1_0&second=1", None, "invalid_query", "first"),
    ("GET", "/v1/audit/proof/consistency?first=-1&second=1", None, "invalid_query", "first"),
    ("GET", f"/v1/audit/checkpoint?size={2**63}", None, "invalid_query", "size"),
    ("POST", "/v1/audit/cosignatures", {"size": MARK, "cosignature": "x"}, "invalid_json", "size"),
    ("POST", "/v1/audit/cosignatures", {"size": True, "cosignature": "x"}, "invalid_json", "size"),
]


@pytest.mark.parametrize(("method", "path", "body", "code", "field"), BAD)
def test_a_body_or_query_off_its_model_is_refused_by_field_without_its_value(
    client: FlaskClient, method: str, path: str, body: Any, code: str, field: str
) -> None:
    resp = client.open(path, method=method, json=body)
    assert resp.status_code == 400
    answer = resp.get_json()
    assert (answer["error"], answer["field"]) == (code, field)
    assert MARK not in resp.get_data(as_text=True)


def test_institution_bodies_are_refused_by_field_without_their_value(
    make_bank: Callable[..., Bank], client: FlaskClient
) -> None:
    bank = make_bank()
    cases: list[tuple[str, dict[str, Any], str, str]] = [
        ("/v1/verify", {"feature": "tax.paid_12m", "op": MARK, "value": 1}, "op_not_allowed", "op"),
        (
            "/v1/verify",
            {"feature": "tax.paid_12m", "op": ">=", "value": None},
            "invalid_value",
            "value",
        ),
        (
            "/v1/verify",
            {"feature": "tax.paid_12m", "op": ">=", "value": 1, MARK: 1},
            "invalid_json",
            MARK,
        ),
        ("/v1/consents", {"enterprise": [MARK]}, "invalid_consent_request", "enterprise"),
        (
            "/v1/score",
            {"model": "m", "context": "c", "ciphertext": ""},
            "invalid_json",
            "ciphertext",
        ),
        (
            "/v1/score/batch",
            {"grants": [MARK], "model": "m", "context": "c", "ciphertexts": MARK},
            "invalid_ciphertext",
            "ciphertexts",
        ),
        (
            "/v1/training/sessions",
            {
                "enterprises": [{"uscc": MARK, "grant": "g"}],
                "gateway_features": ["tax.paid_12m"],
                "bank_features": ["b"],
                "context": "AA==",
            },
            "invalid_uscc",
            "enterprises[0].uscc",
        ),
        (
            "/v1/training/sessions",
            {
                "enterprises": [{"uscc": "91330100716105852F", "grant": "g"}],
                "gateway_features": ["tax.paid_12m"],
                "bank_features": ["b"],
                "context": "AA==",
                "plan": {"epochs": MARK},
            },
            "training_plan",
            "plan.epochs",
        ),
    ]
    bad_uscc = bank.get(client, f"/v1/enterprises/91330100716{MARK}/report")
    assert (bad_uscc.status_code, bad_uscc.get_json()["error"]) == (400, "invalid_uscc")
    assert MARK not in bad_uscc.get_data(as_text=True)
    for path, body, code, field in cases:
        resp = bank.post(client, path, body)
        assert resp.status_code == 400, (path, body)
        answer = resp.get_json()
        assert (answer["error"], answer.get("field")) == (code, field), (path, answer)
        if field != MARK:  # an unknown field is named: it is the caller's own key
            assert MARK not in resp.get_data(as_text=True), (path, answer)


def test_the_refusal_says_what_was_expected_for_each_kind_of_problem() -> None:
    for data, message in [
        ({"password": "x"}, "login: required"),
        ({"login": 1, "password": "y"}, "login: Input should be a valid string"),
    ]:
        with pytest.raises(ValidationError) as caught:
            schemas.SignIn.model_validate(data)
        assert refusal(schemas.SignIn, caught.value).message == message
    assert schemas.SignIn.model_validate({"login": "x", "password": "y", "extra": 1})
    with pytest.raises(ValidationError) as caught:
        schemas.Verification.model_validate({"feature": "f", "op": ">=", "value": 1, "x": MARK})
    error = refusal(schemas.Verification, caught.value)
    assert (error.code, error.message, error.details) == (
        "invalid_json",
        "unknown field 'x'",
        {"field": "x"},
    )


def test_an_answer_that_differs_from_its_model_is_caught(app: Flask, client: FlaskClient) -> None:
    bp = Blueprint("contract_probe", __name__)

    @bp.get("/probe")
    @operation("probe", tag="ops", answer=schemas.Health)
    def probe() -> dict[str, Any]:
        return {"status": "fine"}  # Health says "ok"

    app.register_blueprint(bp)
    mismatches = app.extensions[KEY]  # installed on every test app (tests/conftest.py)
    assert client.get("/probe").status_code == 200
    assert len(mismatches) == 1 and "/probe" in mismatches[0]
    mismatches.clear()  # the conftest's own check must not fail this test
