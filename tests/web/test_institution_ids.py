"""Institution ids are OAuth client ids: ``bank-a`` (a hyphen, as client ids commonly
have) registers on the operator's page, gets a token with private_key_jwt, asks for
consent and is served under the grant the enterprise signed for it."""

from __future__ import annotations

import json
from collections.abc import Callable

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flask import Flask
from flask.testing import FlaskClient

from registry import InvalidRegistration
from tests.gateway.conftest import public_jwk
from tests.web.conftest import Bank, Person, request_consent


def test_a_hyphenated_institution_registers_signs_in_and_is_served(
    app: Flask, client: FlaskClient, make_person: Callable[..., Person]
) -> None:
    op = make_person("operator")
    key = Ed25519PrivateKey.generate()
    page = op.page("/operator/institutions")
    assert 'pattern="[a-z][a-z0-9_\\-]{1,47}"' in page
    resp = op.post(
        "/operator/institutions",
        {"id": "bank-a", "name": "Bank A", "jwk": json.dumps(public_jwk(key))},
    )
    assert resp.status_code == 302, resp.get_data(as_text=True)
    bank = Bank("bank-a", key, app)
    bank.login(client)
    assert jwt.decode(bank.token, options={"verify_signature": False})["sub"] == "bank-a"
    cid = request_consent(bank, client)
    ent = make_person("enterprise")
    assert ent.post(f"/enterprise/consents/{cid}/approve", {"accept": "yes"}).status_code == 302
    grant = bank.get(client, f"/v1/consents/{cid}").get_json()["grant"]
    assert jwt.decode(grant, options={"verify_signature": False})["aud"] == "bank-a"
    resp = bank.post(
        client, "/v1/verify", {"grant": grant, "feature": "tax.paid_12m", "op": ">=", "value": 1}
    )
    # The grant is accepted (a refused one is 403); no tax data is loaded here.
    assert resp.status_code == 404 and resp.get_json()["error"] == "no_data", resp.get_json()


@pytest.mark.parametrize("bad", ["-bank", "Bank-a", "b", "bank a", "bank.a", "a" * 49])
def test_institution_ids_still_refuse_what_is_not_an_id(app: Flask, bad: str) -> None:
    key = Ed25519PrivateKey.generate()
    with pytest.raises(InvalidRegistration):
        app.extensions["xinyi"].registry.add_institution(bad, name="x", jwk=public_jwk(key))
