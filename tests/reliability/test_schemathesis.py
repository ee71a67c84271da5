"""Every operation of ``/openapi.json``, fed schemathesis-generated requests (valid and
invalid), called as every kind of caller: anonymous, an institution (bearer token), an
enterprise, a department and the operator (session cookies with their CSRF tokens).
Zero 5xx: whatever arrives, the gateway answers with a coded 2xx, 3xx or 4xx, and every
JSON answer has the shape the document declares for it (``tests.answers``).

Besides the generated requests, explicit examples replay the inputs that were once 500s
(issue 13): a client assertion with ``exp = 1e20``, a verify ``value`` of 10**400 and a
JSON body nested 50,000 levels; each must be a 400 with a stable code.

The document is loaded from the app itself, so it must be a valid OpenAPI 3.1 document
that schemathesis can generate requests from (a wrong document fails here, and is fixed
in the document). Hypothesis runs derandomized, so the test is deterministic.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.core.result import Ok
from schemathesis.generation import GenerationMode

from bank.profile import public_jwk
from common.settings import Settings
from gateway import create_app
from tests.answers import check_answers
from tests.gateway.conftest import Bank

ENTERPRISE = "91330100716105852F"
EXAMPLES = 8
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@pytest.fixture
def app(database_url: str, make_settings: Any) -> Iterator[Flask]:
    s: Settings = make_settings(database_url=database_url, limits={"requests_per_minute": 10**6})
    app = create_app(s, background=False)
    app.config["TESTING"] = True
    mismatches = check_answers(app)
    yield app
    app.extensions["xinyi"].stop()
    app.extensions["xinyi"].engine.dispose()
    assert not mismatches, "\n".join(mismatches[:20])


def callers(app: Flask) -> dict[str, dict[str, str]]:
    """What each kind of caller sends: headers, and the session cookie (key
    ``xinyi_session``) of people."""
    svc = app.extensions["xinyi"]
    key = Ed25519PrivateKey.generate()
    svc.registry.add_institution("fuzz_bank", name="模糊测试银行", jwk=public_jwk(key))
    bank = Bank("fuzz_bank", key, app)
    bank.login(app.test_client())
    svc.registry.add_department("tax", name="税务局")
    out: dict[str, dict[str, str]] = {
        "anonymous": {},
        "institution": {"Authorization": f"Bearer {bank.token}"},
    }
    for role, extra in (
        ("enterprise", {"uscc": ENTERPRISE}),
        ("department", {"department_id": "tax"}),
        ("operator", {}),
    ):
        login = f"fuzz-{role}"
        svc.registry.add_user(login=login, password="fuzz password 1", role=role, **extra)
        client = app.test_client()
        resp = client.post("/v1/session", json={"login": login, "password": "fuzz password 1"})
        assert resp.status_code == 200, resp.get_json()
        cookie = client.get_cookie("xinyi_session")
        assert cookie is not None
        out[role] = {
            "xinyi_session": cookie.value,
            "X-CSRF-Token": resp.get_json()["csrf_token"],
        }
    return out


def test_no_request_from_any_caller_gets_a_5xx(app: Flask) -> None:
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    headers = callers(app)
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), f"the document has an invalid operation: {result}"
        operations.append(result.ok())
    assert len(operations) > 20
    failures: list[str] = []
    for operation in operations:
        strategy = st.one_of(
            operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
            operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
        )

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=strategy)
        def run(case: Any) -> None:
            for role, sent in headers.items():
                extra = {k: v for k, v in sent.items() if k != "xinyi_session"}
                # Signing out ends a session server-side: it goes out without the
                # cookie, or every later call of that role would be anonymous.
                signs_out = case.method.upper() == "DELETE" and case.path == "/v1/session"
                cookies = (
                    {"xinyi_session": sent["xinyi_session"]}
                    if "xinyi_session" in sent and not signs_out
                    else None
                )
                response = case.call(headers={**(case.headers or {}), **extra}, cookies=cookies)
                if response.status_code >= 500:
                    failures.append(
                        f"{role} {case.method} {case.formatted_path} -> "
                        f"{response.status_code} {response.text[:200]}"
                    )

        run()
    assert not failures, "\n".join(failures[:20])


DEEP = 50_000


def test_the_inputs_that_were_500s_are_400s(app: Flask) -> None:
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    headers = callers(app)
    svc = app.extensions["xinyi"]
    key = Ed25519PrivateKey.generate()
    svc.registry.add_institution("fuzz_bank_2", name="模糊测试银行二", jwk=public_jwk(key))
    bank = Bank("fuzz_bank_2", key, app)
    token = schema["/oauth/token"]["POST"]
    session = schema["/v1/session"]["POST"]
    verify = schema["/v1/verify"]["POST"]
    deep = b"[" * DEEP + b"]" * DEEP
    examples: list[tuple[Any, str, str]] = [
        (
            token.Case(
                body={
                    "grant_type": "client_credentials",
                    "client_assertion_type": ASSERTION_TYPE,
                    "client_assertion": bank.assertion(exp=1e20),
                },
                media_type="application/x-www-form-urlencoded",
            ),
            "anonymous",
            "invalid_client",
        ),
        (
            session.Case(body=b'{"login": ' + deep + b', "password": "x"}'),
            "anonymous",
            "json_too_deep",
        ),
        (
            verify.Case(
                body={"grant": "g", "feature": "tax.paid_12m", "op": ">=", "value": 10**400}
            ),
            "institution",
            "invalid_value",
        ),
        (verify.Case(body=deep), "institution", "json_too_deep"),
    ]
    for case, role, code in examples:
        sent = headers[role]
        extra = {k: v for k, v in sent.items() if k != "xinyi_session"}
        cookies = {"xinyi_session": sent["xinyi_session"]} if "xinyi_session" in sent else None
        response = case.call(headers={**(case.headers or {}), **extra}, cookies=cookies)
        assert response.status_code == 400, (case.path, response.text[:200])
        assert response.json()["error"] == code, (case.path, response.text[:200])
