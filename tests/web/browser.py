"""Browser-test harness: a live gateway in a background thread and Debian's chromium
driven by Playwright.

Never a downloaded browser: Playwright is pointed at ``/usr/bin/chromium`` (``make
browser`` installs the Debian package). When it is missing the browser tests skip with
the reason locally and FAIL in CI (``CI=true``).
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flask import Flask

from bank.client import GatewayClient
from common.db import migrate
from common.settings import Settings, load_settings
from keys import jwk as keys_jwk
from tests.live import free_port

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "web"
PASSWORD = "correct horse battery"


def require_chromium() -> None:
    if CHROMIUM.exists():
        return
    reason = f"{CHROMIUM} is missing: run `make browser` (Debian chromium, never a download)"
    if os.environ.get("CI") == "true":
        pytest.fail("CI must run the browser tests: " + reason)
    pytest.skip(reason)


@dataclass
class Live:
    """A gateway serving on a loopback port, in this process."""

    base: str
    app: Flask
    settings: Settings

    @property
    def svc(self) -> Any:
        return self.app.extensions["xinyi"]

    def add_user(self, role: str, *, uscc: str | None = None, department: str | None = None) -> str:
        login = f"{role}-{uuid.uuid4().hex[:6]}"
        reg = self.svc.registry
        if department and reg.get_department(department) is None:
            reg.add_department(department, name=f"{department} office")
        reg.add_user(login=login, password=PASSWORD, role=role, uscc=uscc, department_id=department)
        return login

    def load_tax(self, paid_12m: dict[str, int]) -> None:
        """Import a tax department file (``xinyi data import`` does the same)."""
        from records.catalog import Catalog
        from records.service import import_csv

        rows = "".join(f"{uscc},{v},A\n" for uscc, v in paid_12m.items())
        data = ("uscc,tax.paid_12m,tax.credit_rating\n" + rows).encode()
        import_csv(
            self.svc.engine,
            Catalog(self.settings.config),
            "tax",
            data,
            file_name="tax.csv",
            actor="test",
        )

    def bank(self, bank_id: str, name: str) -> LiveBank:
        key = Ed25519PrivateKey.generate()
        self.svc.registry.add_institution(
            bank_id, name=name, jwk=dict(keys_jwk.public_jwk(key.public_key()))
        )
        bank = LiveBank(bank_id, key, self)
        bank.login()
        return bank

    def person(self, login: str) -> httpx.Client:
        """A person using the JSON session API (for setting the scene quickly)."""
        c = httpx.Client(base_url=self.base, timeout=30)
        r = c.post("/v1/session", json={"login": login, "password": PASSWORD})
        r.raise_for_status()
        c.headers["X-CSRF-Token"] = r.json()["csrf_token"]
        return c


@dataclass
class LiveBank:
    """An institution over real HTTP: private_key_jwt, bearer token, JSON calls."""

    id: str
    key: Ed25519PrivateKey
    live: Live
    http: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.http = httpx.Client(base_url=self.live.base, timeout=30)

    def login(self) -> None:
        client = GatewayClient(self.live.base, self.id, self.key, http=self.http)
        self.http.headers["Authorization"] = "Bearer " + client.token()

    def ask(self, enterprise: str, categories: list[str] | None = None) -> str:
        r = self.http.post(
            "/v1/consents",
            json={
                "enterprise": enterprise,
                "purpose": "working_capital_loan",
                "ops": ["report", "verify"],
                "categories": categories or ["tax"],
                "duration_days": 30,
                "max_uses": 10,
            },
        )
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    def grant(self, consent_id: str) -> str:
        return str(self.http.get(f"/v1/consents/{consent_id}").json()["grant"])

    def verify(self, grant: str) -> httpx.Response:
        return self.http.post(
            "/v1/verify",
            json={"grant": grant, "feature": "tax.paid_12m", "op": ">=", "value": 100000},
        )


@contextmanager
def live_gateway(home: Path) -> Iterator[Live]:
    from werkzeug.serving import make_server

    from gateway import create_app

    port = free_port()
    url = f"sqlite:///{home / 'xinyi.db'}"
    migrate(url)
    settings = load_settings(
        env={
            "XINYI_HOME": str(home / "instance"),
            "XINYI_DATABASE_URL": url,
            "XINYI_KEY_PASSPHRASE": "browser-test-passphrase",
            "XINYI_SECRET_KEY": "browser-test-session-secret",
        },
        overrides={
            "server": {"public_url": f"http://127.0.0.1:{port}", "port": port},
            "audit": {"checkpoint_interval_seconds": 0.2},
        },
    )
    app = create_app(settings, background=True)
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="web-test-server", daemon=True)
    thread.start()
    try:
        yield Live(f"http://127.0.0.1:{port}", app, settings)
    finally:
        server.shutdown()
        thread.join(timeout=10)
        app.extensions["xinyi"].stop()
        app.extensions["xinyi"].engine.dispose()


def shot(page: Any, name: str) -> Path:
    """A full-page screenshot under tests/artifacts/web/ (git-ignored) for review."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def sign_in(page: Any, base: str, login: str) -> None:
    page.goto(base + "/login")
    page.get_by_label("账号").fill(login)
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.wait_for_load_state()
