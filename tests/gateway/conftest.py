"""Gateway fixtures: an app over a migrated database, banks that authenticate with
private_key_jwt exactly as an outside client would, and signed-in people."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flask import Flask
from flask.testing import FlaskClient

from keys import jwk as keys_jwk

ENTERPRISE = "91330100716105852F"
OTHER_ENTERPRISE = "9144030071526726XG"


@dataclass
class Bank:
    """An institution as an outside client: its key, its token, its HTTP calls."""

    id: str
    key: Ed25519PrivateKey
    app: Flask
    token: str = ""

    def assertion(self, **overrides: Any) -> str:
        svc = self.app.extensions["xinyi"]
        now = int(time.time())
        claims = {
            "iss": self.id,
            "sub": self.id,
            "aud": svc.settings.token_endpoint,
            "jti": uuid.uuid4().hex,
            "iat": now,
            "exp": now + 120,
            **overrides,
        }
        return jwt.encode(claims, self.key, algorithm="EdDSA")

    def fetch_token(self, client: FlaskClient, assertion: str | None = None) -> Any:
        return client.post(
            "/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                "client_assertion": assertion or self.assertion(),
            },
        )

    def login(self, client: FlaskClient) -> None:
        resp = self.fetch_token(client)
        assert resp.status_code == 200, resp.get_json()
        self.token = resp.get_json()["access_token"]

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def get(self, client: FlaskClient, path: str, **kw: Any) -> Any:
        return client.get(path, headers=self.headers(), **kw)

    def post(self, client: FlaskClient, path: str, body: Any = None, **kw: Any) -> Any:
        return client.post(path, json=body, headers=self.headers(), **kw)


def public_jwk(key: Ed25519PrivateKey) -> dict[str, Any]:
    return dict(keys_jwk.public_jwk(key.public_key()))


@pytest.fixture
def make_bank(app: Flask, client: FlaskClient) -> Callable[..., Bank]:
    def factory(bank_id: str = "demo_bank", login: bool = True) -> Bank:
        key = Ed25519PrivateKey.generate()
        app.extensions["xinyi"].registry.add_institution(
            bank_id, name=f"{bank_id} 银行", jwk=public_jwk(key)
        )
        bank = Bank(bank_id, key, app)
        if login:
            bank.login(client)
        return bank

    return factory


@pytest.fixture
def make_person(app: Flask) -> Callable[..., FlaskClient]:
    """A signed-in person (own cookie jar): returns a client with the CSRF header set."""

    def factory(
        role: str = "enterprise",
        uscc: str = ENTERPRISE,
        department: str | None = None,
        login: str | None = None,
    ) -> FlaskClient:
        reg = app.extensions["xinyi"].registry
        login = login or f"{role}-{uuid.uuid4().hex[:6]}"
        if role == "department" and department and reg.get_department(department) is None:
            reg.add_department(department, name=department)
        reg.add_user(
            login=login,
            password="correct horse battery",
            role=role,
            uscc=uscc if role == "enterprise" else None,
            department_id=department,
        )
        person = app.test_client()
        resp = person.post(
            "/v1/session", json={"login": login, "password": "correct horse battery"}
        )
        assert resp.status_code == 200, resp.get_json()
        person.environ_base["HTTP_X_CSRF_TOKEN"] = resp.get_json()["csrf_token"]
        return person

    return factory


def consent_body(**kw: Any) -> dict[str, Any]:
    return {
        "enterprise": ENTERPRISE,
        "purpose": "working_capital_loan",
        "ops": ["report", "verify", "score"],
        "categories": ["tax", "social_security"],
        "duration_days": 30,
        "max_uses": 20,
        **kw,
    }


def grant_for(bank: Bank, client: FlaskClient, person: FlaskClient, **kw: Any) -> str:
    """A bank asks, the enterprise approves: the grant JWT."""
    resp = bank.post(client, "/v1/consents", consent_body(**kw))
    assert resp.status_code == 201, resp.get_json()
    cid = resp.get_json()["id"]
    resp = person.post(f"/v1/consents/{cid}/approve")
    assert resp.status_code == 200, resp.get_json()
    return str(resp.get_json()["grant"])
