"""Inputs that once answered 500, and tokens of one kind presented as another.

Each of the first three was a 500 on the landed code: a client assertion whose ``exp``
is ``1e20`` (OverflowError storing its jti), a verify ``value`` of 10**400
(OverflowError in ``math.isfinite``), JSON nested 50,000 levels (RecursionError in the
parser, unauthenticated on ``/v1/session``). A float ``exp`` skipped the assertion
lifetime cap. Every JWT kind now checks its ``typ``: a grant is not an access token, an
event is not a grant, an access token is not a client assertion.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.gateway.conftest import ENTERPRISE, Bank, grant_for
from tests.gateway.test_data_api import TAX, load

DEEP = 50_000


def deep_json(levels: int = DEEP) -> str:
    return '{"login": ' + "[" * levels + "]" * levels + ', "password": "x"}'


def test_json_nested_fifty_thousand_levels_is_400_on_the_unauthenticated_session(
    client: FlaskClient,
) -> None:
    resp = client.post("/v1/session", data=deep_json(), content_type="application/json")
    assert resp.status_code == 400, resp.get_data(as_text=True)[:200]
    assert resp.get_json()["error"] == "json_too_deep"
    # Deep within the bound is still just a bad body, not a depth refusal.
    resp = client.post("/v1/session", data=deep_json(40), content_type="application/json")
    assert resp.status_code in (400, 401)
    assert resp.get_json()["error"] != "json_too_deep"


def test_nesting_counts_brackets_outside_strings_only(client: FlaskClient) -> None:
    body = json.dumps({"login": "[" * 5000, "password": "{" * 5000})
    resp = client.post("/v1/session", data=body, content_type="application/json")
    assert resp.status_code == 401, resp.get_json()  # parsed, then a wrong password


def test_deep_json_is_400_on_authenticated_routes_too(
    make_bank: Callable[..., Bank], client: FlaskClient
) -> None:
    bank = make_bank()
    for path in ("/v1/verify", "/v1/consents", "/v1/score"):
        resp = client.post(
            path, data=deep_json(), content_type="application/json", headers=bank.headers()
        )
        assert resp.status_code == 400, path
        assert resp.get_json()["error"] == "json_too_deep"


def test_a_verify_value_of_ten_to_the_four_hundred_is_400(
    app: Flask, make_bank: Callable[..., Bank], client: FlaskClient, make_person: Any
) -> None:
    load(app, "tax", TAX)
    bank = make_bank()
    grant = grant_for(bank, client, make_person("enterprise", ENTERPRISE), ops=["verify"])
    for value in (10**400, -(10**400)):
        resp = bank.post(
            client,
            "/v1/verify",
            {"grant": grant, "feature": "tax.paid_12m", "op": ">=", "value": value},
        )
        assert resp.status_code == 400, resp.get_data(as_text=True)[:200]
        assert resp.get_json()["error"] == "invalid_value"
    # A JSON float too large for a double (parsed as infinity) is refused as well.
    body = (
        '{"grant": "%s", "feature": "tax.paid_12m", "op": ">=", "value": 1e400}' % grant  # noqa: UP031 -- raw JSON text
    )
    resp = client.post(
        "/v1/verify", data=body, content_type="application/json", headers=bank.headers()
    )
    assert resp.status_code == 400


def test_a_client_assertion_with_exp_1e20_is_400(
    make_bank: Callable[..., Bank], client: FlaskClient
) -> None:
    bank = make_bank(login=False)
    for exp in (1e20, 10**20, float(2**63), True, "9999999999", None, [1]):
        resp = bank.fetch_token(client, bank.assertion(exp=exp))
        assert resp.status_code == 400, (exp, resp.get_data(as_text=True)[:200])
        assert resp.get_json()["error"] == "invalid_client"


def test_a_float_exp_does_not_skip_the_lifetime_cap(
    make_bank: Callable[..., Bank], client: FlaskClient
) -> None:
    bank = make_bank(login=False)
    a_year = time.time() + 365 * 86400.0
    resp = bank.fetch_token(client, bank.assertion(exp=a_year))
    assert resp.status_code == 400, resp.get_json()
    assert "at most" in resp.get_json()["error_description"]
    # A float within the cap is a valid NumericDate.
    ok = bank.fetch_token(client, bank.assertion(exp=time.time() + 60.5))
    assert ok.status_code == 200, ok.get_json()


def _segment(value: Any) -> str:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_a_deeply_nested_client_assertion_is_400(
    make_bank: Callable[..., Bank], client: FlaskClient
) -> None:
    bank = make_bank(login=False)
    levels = 1500  # under joserfc's segment size limit, over the recursion limit
    payload = b'{"sub": "' + bank.id.encode() + b'", "x": ' + b"[" * levels + b"]" * levels + b"}"
    for assertion in (
        _segment({"alg": "EdDSA"}) + "." + _segment(payload) + "." + _segment(b"s" * 64),
        _segment(b"[" * levels + b"]" * levels) + "." + _segment({"sub": bank.id}) + ".c2ln",
    ):
        resp = bank.fetch_token(client, assertion)
        assert resp.status_code == 400, resp.get_data(as_text=True)[:200]
        assert resp.get_json()["error"] == "invalid_client"


# One kind of token presented as another ---------------------------------------------------


def _keys(app: Flask) -> Any:
    return app.extensions["xinyi"].keys


def test_jwks_publishes_an_events_key_of_its_own(app: Flask, client: FlaskClient) -> None:
    keys = client.get("/.well-known/jwks.json").get_json()["keys"]
    by_purpose = {k["xinyi_purpose"]: k["kid"] for k in keys}
    assert set(by_purpose) >= {"grants", "tokens", "checkpoints", "events"}
    assert len(set(by_purpose.values())) == len(by_purpose)
    old = by_purpose["events"]
    _keys(app).rotate("events")
    keys = client.get("/.well-known/jwks.json").get_json()["keys"]
    events = [k for k in keys if k["xinyi_purpose"] == "events"]
    assert old in {k["kid"] for k in events} and len(events) == 2  # the old one stays


def test_a_grant_or_an_event_is_not_an_access_token(
    make_bank: Callable[..., Bank], client: FlaskClient, make_person: Any
) -> None:
    bank = make_bank()
    grant = grant_for(bank, client, make_person("enterprise", ENTERPRISE))
    claims = jwt.decode(bank.token, options={"verify_signature": False})
    event = bank.app.extensions["xinyi"].keys.sign_jwt(
        "events", claims, {"typ": "xinyi-event+jwt"}
    )  # an event shaped like an access token
    for token in (grant, event):
        resp = client.get("/v1/catalog", headers={"Authorization": f"Bearer {token}"})
        assert resp.status_code == 401
        assert resp.get_json()["error"] == "invalid_token"


def test_an_access_token_or_event_is_not_a_grant(
    app: Flask, make_bank: Callable[..., Bank], client: FlaskClient, make_person: Any
) -> None:
    load(app, "tax", TAX)
    bank = make_bank()
    genuine = grant_for(bank, client, make_person("enterprise", ENTERPRISE), ops=["verify"])
    claims = jwt.decode(genuine, options={"verify_signature": False})
    keys = _keys(app)
    forged = [
        bank.token,  # an access token, by the tokens key
        keys.sign_jwt("events", claims, {"typ": "xinyi-event+jwt"}),  # an event
        # Grant claims and the grants key, but typed as an event or untyped: refused by typ.
        keys.sign_jwt("grants", claims, {"typ": "xinyi-event+jwt"}),
        keys.sign_jwt("grants", claims, {"typ": "at+jwt"}),
        keys.sign_jwt("grants", claims),
    ]
    for token in forged:
        resp = bank.post(
            client,
            "/v1/verify",
            {"grant": token, "feature": "tax.paid_12m", "op": ">=", "value": 1},
        )
        assert resp.status_code == 403, resp.get_json()
        assert resp.get_json()["error"] == "grant_invalid"
    ok = bank.post(
        client, "/v1/verify", {"grant": genuine, "feature": "tax.paid_12m", "op": ">=", "value": 1}
    )
    assert ok.status_code == 200, ok.get_json()


def test_a_token_signed_by_the_tokens_key_but_typed_otherwise_is_not_an_access_token(
    app: Flask, make_bank: Callable[..., Bank], client: FlaskClient
) -> None:
    bank = make_bank()
    claims = jwt.decode(bank.token, options={"verify_signature": False})
    keys = _keys(app)
    for headers in ({"typ": "xinyi-grant+jwt"}, {"typ": "xinyi-event+jwt"}, {}):
        token = keys.sign_jwt("tokens", claims, headers)
        resp = client.get("/v1/catalog", headers={"Authorization": f"Bearer {token}"})
        assert resp.status_code == 401, headers
    for exp in (True, 1e400, "x"):
        token = keys.sign_jwt("tokens", {**claims, "exp": exp}, {"typ": "at+jwt"})
        resp = client.get("/v1/catalog", headers={"Authorization": f"Bearer {token}"})
        assert resp.status_code == 401, exp


def test_a_client_assertion_typed_as_another_kind_is_refused(
    make_bank: Callable[..., Bank], client: FlaskClient
) -> None:
    bank = make_bank(login=False)
    now = int(time.time())
    claims = {
        "iss": bank.id,
        "sub": bank.id,
        "aud": bank.app.extensions["xinyi"].settings.token_endpoint,
        "iat": now,
        "exp": now + 60,
    }
    for typ in ("at+jwt", "xinyi-grant+jwt", "xinyi-event+jwt", "secevent+jwt"):
        assertion = jwt.encode(
            {**claims, "jti": uuid.uuid4().hex}, bank.key, algorithm="EdDSA", headers={"typ": typ}
        )
        resp = bank.fetch_token(client, assertion)
        assert resp.status_code == 400, typ
    for typ in ("JWT", "client-authentication+jwt"):
        assertion = jwt.encode(
            {**claims, "jti": uuid.uuid4().hex}, bank.key, algorithm="EdDSA", headers={"typ": typ}
        )
        assert bank.fetch_token(client, assertion).status_code == 200, typ


@pytest.mark.parametrize("levels", [64, 65])
def test_the_depth_bound_is_exact(client: FlaskClient, levels: int) -> None:
    resp = client.post("/v1/session", data=deep_json(levels - 1), content_type="application/json")
    # deep_json adds one level (the outer object).
    code = resp.get_json()["error"]
    assert (code == "json_too_deep") is (levels > 64)


# Request ids: the server's own; the caller's kept apart ------------------------------------


def test_every_entry_gets_a_server_request_id_and_the_callers_is_kept_apart(
    app: Flask, make_bank: Callable[..., Bank], client: FlaskClient, make_person: Any
) -> None:
    load(app, "tax", TAX)
    bank = make_bank()
    grant = grant_for(bank, client, make_person("enterprise", ENTERPRISE), ops=["verify"])
    body = {"grant": grant, "feature": "tax.paid_12m", "op": ">=", "value": 1}
    seen = set()
    for given, kept in (
        ("same-id-from-the-caller", "same-id-from-the-caller"),
        ("same-id-from-the-caller", "same-id-from-the-caller"),  # replayed: still two ids
        ("x" * 65, None),  # too long
        ("has spaces in it", None),
        ("中文标识", None),
        ("", None),
    ):
        resp = client.post(
            "/v1/verify", json=body, headers={**bank.headers(), "X-Request-Id": given}
        )
        # Allowed, or refused once the feature's budget is spent: logged either way.
        assert resp.status_code in (200, 403), resp.get_json()
        server_id = resp.headers["X-Request-Id"]
        assert server_id != given and len(server_id) == 24
        seen.add(server_id)
        entry = bank.get(client, f"/v1/audit/entries/{resp.get_json()['audit_index']}").get_json()
        assert entry["entry"]["request_id"] == server_id
        assert entry["entry"].get("client_request_id") == kept
    assert len(seen) == 6
