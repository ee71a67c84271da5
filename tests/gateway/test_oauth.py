"""Token endpoint: client_credentials with private_key_jwt, and what it refuses."""

from __future__ import annotations

import time
from collections.abc import Callable

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flask import Flask
from flask.testing import FlaskClient

from tests.gateway.conftest import Bank
from tests.tokens import unsigned


def test_private_key_jwt_gives_a_short_lived_eddsa_token(
    make_bank: Callable[..., Bank], client: FlaskClient, app: Flask
) -> None:
    bank = make_bank(login=False)
    resp = bank.fetch_token(client)
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["token_type"] == "Bearer"
    assert 0 < body["expires_in"] <= 3600
    header = jwt.get_unverified_header(body["access_token"])
    assert header["alg"] == "EdDSA"
    assert header["kid"] in {
        k["kid"] for k in client.get("/.well-known/jwks.json").get_json()["keys"]
    }
    bank.token = body["access_token"]
    assert bank.get(client, "/v1/catalog").status_code == 200


def test_assertions_are_single_use(make_bank: Callable[..., Bank], client: FlaskClient) -> None:
    bank = make_bank(login=False)
    assertion = bank.assertion()
    assert bank.fetch_token(client, assertion).status_code == 200
    replay = bank.fetch_token(client, assertion)
    # RFC 6749 §5.2: invalid_client is 400 unless the client used the Authorization header.
    assert replay.status_code == 400
    assert replay.get_json()["error"] == "invalid_client"


def test_bad_assertions_are_refused(make_bank: Callable[..., Bank], client: FlaskClient) -> None:
    bank = make_bank(login=False)
    now = int(time.time())
    wrong_key = Bank(bank.id, Ed25519PrivateKey.generate(), bank.app)
    cases = [
        wrong_key.assertion(),
        bank.assertion(aud="https://elsewhere/oauth/token"),
        bank.assertion(exp=now - 120),  # beyond the 60 s clock-skew leeway
        bank.assertion(exp=now + 86400),
        bank.assertion(iss="other_bank"),
        unsigned({"iss": bank.id, "sub": bank.id, "aud": "x", "exp": now + 60}),
        jwt.encode(
            {
                "iss": bank.id,
                "sub": bank.id,
                "jti": "h",
                "exp": now + 60,
                "aud": bank.app.extensions["xinyi"].settings.token_endpoint,
            },
            "secret" * 6,
            algorithm="HS256",
        ),
    ]
    for assertion in cases:
        resp = bank.fetch_token(client, assertion)
        # RFC 6749 §5.2: invalid_client, 400 (no Authorization header was used).
        assert (resp.status_code, resp.get_json()["error"]) == (400, "invalid_client"), assertion


def test_suspended_institution_gets_no_token_and_its_tokens_stop(
    make_bank: Callable[..., Bank], client: FlaskClient, app: Flask
) -> None:
    bank = make_bank()
    app.extensions["xinyi"].registry.suspend_institution(bank.id)
    refused = bank.fetch_token(client)
    # RFC 6749 §5.2: the client authenticated but may not use this grant type.
    assert (refused.status_code, refused.get_json()["error"]) == (400, "unauthorized_client")
    resp = bank.get(client, "/v1/catalog")
    assert resp.status_code == 403
    assert resp.get_json()["error"] == "institution_suspended"


def test_forged_and_confused_access_tokens_are_refused(
    make_bank: Callable[..., Bank], client: FlaskClient
) -> None:
    bank = make_bank()
    claims = jwt.decode(bank.token, options={"verify_signature": False})
    kid = jwt.get_unverified_header(bank.token)["kid"]
    forged = [
        unsigned(claims, {"kid": kid}),
        jwt.encode(claims, "k" * 32, algorithm="HS256", headers={"kid": kid}),
        jwt.encode(claims, Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": kid}),
        jwt.encode(
            {**claims, "exp": int(time.time()) - 1},
            Ed25519PrivateKey.generate(),
            algorithm="EdDSA",
            headers={"kid": kid},
        ),
        "garbage",
    ]
    for token in forged:
        resp = client.get("/v1/catalog", headers={"Authorization": f"Bearer {token}"})
        assert resp.status_code == 401, token
    assert client.get("/v1/catalog").status_code == 401


def test_a_wrong_audience_is_told_the_expected_one(
    make_bank: Callable[..., Bank], client: FlaskClient, app: Flask
) -> None:
    bank = make_bank(login=False)
    resp = bank.fetch_token(client, bank.assertion(aud="https://elsewhere/oauth/token"))
    assert resp.status_code in (400, 401)
    body = resp.get_json()
    assert body["error"] == "invalid_client"
    expected = app.extensions["xinyi"].settings.token_endpoint
    assert expected in body["error_description"], body
