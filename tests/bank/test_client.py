"""bank.client: private_key_jwt tokens and readable errors for every refusal code."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bank.client import ASSERTION_TYPE, GatewayClient
from bank.errors import HINTS, BankError

BASE = "http://gateway.test"
CONTRACT_REFUSALS = [
    "grant_missing",
    "grant_invalid",
    "grant_wrong_audience",
    "grant_expired",
    "grant_not_yet_valid",
    "grant_revoked",
    "grant_paused",
    "scope_operation",
    "scope_category",
    "grant_uses_exhausted",
    "institution_suspended",
]

Handler = Callable[[httpx.Request], httpx.Response]


def make_client(handler: Handler, key: Ed25519PrivateKey | None = None) -> GatewayClient:
    http = httpx.Client(base_url=BASE, transport=httpx.MockTransport(handler))
    return GatewayClient(BASE, "demo_bank", key or Ed25519PrivateKey.generate(), http=http)


def token_response(n: int = 1, expires_in: int = 300) -> httpx.Response:
    return httpx.Response(
        200, json={"access_token": f"token-{n}", "token_type": "Bearer", "expires_in": expires_in}
    )


def test_the_token_request_is_a_private_key_jwt_assertion() -> None:
    key = Ed25519PrivateKey.generate()
    seen: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/token":
            form = dict(httpx.QueryParams(request.content.decode()))
            assert form["grant_type"] == "client_credentials"
            assert form["client_assertion_type"] == ASSERTION_TYPE
            claims = jwt.decode(
                form["client_assertion"],
                key.public_key(),
                algorithms=["EdDSA"],
                audience=f"{BASE}/oauth/token",
            )
            seen.append(claims)
            return token_response(len(seen))
        assert request.headers["Authorization"] == "Bearer token-1"
        return httpx.Response(200, json={"models": []})

    client = make_client(handler, key)
    assert client.models() == []
    assert client.models() == []  # the token is cached
    assert len(seen) == 1
    claims = seen[0]
    assert claims["iss"] == claims["sub"] == "demo_bank"
    assert claims["exp"] - claims["iat"] <= 60 and claims["jti"]


def test_an_expired_token_is_fetched_again_once() -> None:
    tokens = iter(range(1, 10))
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/token":
            return token_response(next(tokens))
        calls.append(request.headers["Authorization"])
        if len(calls) == 1:
            return httpx.Response(401, json={"error": "token_expired", "message": "expired"})
        return httpx.Response(200, json={"models": [{"id": "m"}]})

    assert make_client(handler).models() == [{"id": "m"}]
    assert calls == ["Bearer token-1", "Bearer token-2"]


@pytest.mark.parametrize("code", CONTRACT_REFUSALS)
def test_every_refusal_is_a_readable_bank_error(code: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/token":
            return token_response()
        return httpx.Response(
            403, json={"error": code, "message": f"refused: {code}", "audit_index": 41}
        )

    with pytest.raises(BankError) as e:
        make_client(handler).score("grant", "m", "ctx", b"ciphertext")
    err = e.value
    assert (err.code, err.status, err.audit_index) == (code, 403, 41)
    assert err.message == f"refused: {code}"
    assert code in HINTS and err.hint
    assert str(err).startswith(f"{code} (HTTP 403): refused: {code}; ")


def test_a_refused_token_says_why() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            401, json={"error": "invalid_client", "error_description": "unknown key"}
        )

    with pytest.raises(BankError) as e:
        make_client(handler).models()
    assert (e.value.code, e.value.status) == ("invalid_client", 401)
    assert "xinyi admin add-institution" in str(e.value)


def test_an_unreachable_gateway_and_a_non_json_answer_are_clear() -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    with pytest.raises(BankError) as e:
        make_client(down).models()
    assert e.value.code == "gateway_unreachable"

    def html(request: httpx.Request) -> httpx.Response:
        return httpx.Response(502, text="<html>bad gateway</html>")

    with pytest.raises(BankError) as e2:
        make_client(html).models()
    assert (e2.value.code, e2.value.status) == ("bad_response", 502)


def test_score_sends_base64_and_decodes_the_answer() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/token":
            return token_response()
        body = json.loads(request.content)
        assert body == {"grant": "g", "model": "m@1", "context": "ctx_1", "ciphertext": "AAEC"}
        return httpx.Response(200, json={"ciphertext": "AwQF", "audit_index": 7})

    assert make_client(handler).score("g", "m@1", "ctx_1", b"\x00\x01\x02") == (b"\x03\x04\x05", 7)
