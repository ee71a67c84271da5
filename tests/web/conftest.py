"""Console page fixtures: an app over a migrated database (SQLite and PostgreSQL), people
who sign in through the sign-in FORM (not the JSON session call), and banks that talk
to the JSON API with private_key_jwt as outside clients do."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.gateway.conftest import ENTERPRISE, OTHER_ENTERPRISE, Bank, consent_body, public_jwk
from tests.web.browser import CHROMIUM, CHROMIUM_ARGS, Live, live_gateway, require_chromium

PASSWORD = "correct horse battery"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')

__all__ = ["ENTERPRISE", "OTHER_ENTERPRISE", "PASSWORD", "Bank", "Person", "consent_body"]


@dataclass
class Person:
    """A signed-in person with their own cookie jar, using the pages as a browser does."""

    client: FlaskClient
    login: str
    role: str

    def csrf(self) -> str:
        """The session's CSRF token (kept server-side; the session API tells it)."""
        resp = self.client.get("/v1/session")
        assert resp.status_code == 200, resp.get_json()
        return str(resp.get_json()["csrf_token"])

    def get(self, path: str, **kw: Any) -> TestResponse:
        return self.client.get(path, **kw)

    def page(self, path: str, **kw: Any) -> str:
        resp = self.client.get(path, **kw)
        assert resp.status_code == 200, (path, resp.status_code, resp.get_data(as_text=True))
        return resp.get_data(as_text=True)

    def post(self, path: str, data: dict[str, str] | None = None, csrf: bool = True) -> Any:
        form = dict(data or {})
        if csrf:
            form["csrf_token"] = self.csrf()
        return self.client.post(path, data=form)


def sign_in(client: FlaskClient, login: str, password: str = PASSWORD) -> TestResponse:
    """Through the form: fetch the page (pre-session CSRF token), then post it."""
    page = client.get("/login").get_data(as_text=True)
    token = CSRF.search(page)
    assert token, page
    return client.post(
        "/login", data={"login": login, "password": password, "csrf_token": token.group(1)}
    )


@pytest.fixture
def make_person(app: Flask) -> Callable[..., Person]:
    def factory(
        role: str = "enterprise",
        uscc: str = ENTERPRISE,
        department: str | None = None,
        login: str | None = None,
    ) -> Person:
        reg = app.extensions["xinyi"].registry
        login = login or f"{role}-{uuid.uuid4().hex[:6]}"
        if role == "department":
            department = department or "tax"
            if reg.get_department(department) is None:
                reg.add_department(department, name=f"{department} office")
        reg.add_user(
            login=login,
            password=PASSWORD,
            role=role,
            uscc=uscc if role == "enterprise" else None,
            department_id=department if role == "department" else None,
        )
        client = app.test_client()
        resp = sign_in(client, login)
        assert resp.status_code == 302, resp.get_data(as_text=True)
        return Person(client, login, role)

    return factory


@pytest.fixture
def make_bank(app: Flask, client: FlaskClient) -> Callable[..., Bank]:
    def factory(bank_id: str = "demo_bank", name: str | None = None) -> Bank:
        key = Ed25519PrivateKey.generate()
        app.extensions["xinyi"].registry.add_institution(
            bank_id, name=name or f"{bank_id} Bank", jwk=public_jwk(key)
        )
        bank = Bank(bank_id, key, app)
        bank.login(client)
        return bank

    return factory


def request_consent(bank: Bank, client: FlaskClient, **kw: Any) -> str:
    resp = bank.post(client, "/v1/consents", consent_body(**kw))
    assert resp.status_code == 201, resp.get_json()
    return str(resp.get_json()["id"])


def settle(app: Flask) -> None:
    """Integrate queued audit entries and sign a checkpoint (the background loop's job,
    done by hand because tests run without background threads)."""
    audit = app.extensions["xinyi"].audit
    audit.integrate_pending()
    audit.checkpoint(force=True)


# Browser tests: one live gateway and one chromium per test session -------------------
@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    require_chromium()
    with live_gateway(tmp_path_factory.mktemp("web-live")) as server:
        yield server


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser context (its own cookies); console errors (a CSP violation, a
    script error, a failed load) fail the test."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    pg = context.new_page()
    pg.set_default_timeout(10_000)
    errors: list[str] = []
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    pg.on("pageerror", lambda e: errors.append(str(e)))
    yield pg
    context.close()
    assert errors == [], errors
