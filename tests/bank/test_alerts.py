"""bank.client.GatewayClient.alerts and `xinyi bank alerts` against the real gateway (in
process, over its WSGI app): every alert after ``after``, paged by ``next``, in order,
none twice; a gateway page that does not advance is refused, never followed forever."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient

from bank.client import GatewayClient
from bank.errors import BankError
from cli import main
from common.settings import Settings
from tests.gateway.conftest import (  # noqa: F401 -- fixtures used by name
    ENTERPRISE,
    OTHER_ENTERPRISE,
    Bank,
    make_bank,
    make_person,
)
from tests.gateway.test_alerts_api import monitor_grant, step, tax
from tests.gateway.test_data_api import load

PAGE = 2


@pytest.fixture
def settings(database_url: str, make_settings: Callable[..., Settings]) -> Settings:
    """Two alerts a page, so that three alerts take two pages (and an empty third)."""
    return make_settings(database_url=database_url, alerts={"page": PAGE})


class Counting(httpx.BaseTransport):
    """The gateway's WSGI app, counting the alert pages asked."""

    def __init__(self, app: Flask) -> None:
        self.inner = httpx.WSGITransport(app=app)
        self.afters: list[int] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/alerts":
            self.afters.append(int(request.url.params["after"]))
        return self.inner.handle_request(request)


@pytest.fixture
def watched(
    app: Flask,
    client: FlaskClient,
    make_bank: Callable[..., Bank],  # noqa: F811 -- the fixture
    make_person: Callable[..., FlaskClient],  # noqa: F811 -- the fixture
) -> Iterator[tuple[Bank, GatewayClient, Counting]]:
    """A bank monitoring two enterprises, three alerts about them, and its SDK."""
    bank = make_bank("bank_watch")
    monitor_grant(bank, client, make_person("enterprise", ENTERPRISE))
    monitor_grant(
        bank,
        client,
        make_person("enterprise", OTHER_ENTERPRISE),
        enterprise=OTHER_ENTERPRISE,
    )
    load(app, "tax", tax({ENTERPRISE: 0, OTHER_ENTERPRISE: 0}))
    step(app)
    load(app, "tax", tax({ENTERPRISE: 234567.5, OTHER_ENTERPRISE: 876543.21}))
    assert step(app) == 2
    load(app, "tax", tax({ENTERPRISE: 0}))  # paid, then in arrears again: a new crossing
    step(app)
    load(app, "tax", tax({ENTERPRISE: 5_000_000}))
    assert step(app) == 1
    base = app.extensions["xinyi"].settings.config.server.public_url.rstrip("/")
    transport = Counting(app)
    http = httpx.Client(base_url=base, transport=transport)
    yield bank, GatewayClient(base, bank.id, bank.key, http=http), transport
    http.close()


def _pages(bank: Bank, client: FlaskClient) -> list[dict[str, Any]]:
    """Every alert, read page by page through the test client (the reference)."""
    out: list[dict[str, Any]] = []
    after = 0
    while True:
        page = bank.get(client, f"/v1/alerts?after={after}").get_json()
        if not page["alerts"]:
            return out
        out += page["alerts"]
        after = page["next"]


def test_the_sdk_reads_every_alert_page_by_page_and_resumes_after_next(
    client: FlaskClient, watched: tuple[Bank, GatewayClient, Counting]
) -> None:
    bank, sdk, transport = watched
    found, nxt = sdk.alerts()
    assert found == _pages(bank, client)
    assert [a["id"] for a in found] == [1, 2, 3] and nxt == 3
    assert transport.afters == [0, 2, 3]  # two full-or-partial pages, then an empty one
    assert {a["enterprise"] for a in found} == {ENTERPRISE, OTHER_ENTERPRISE}
    assert "234567" not in str(found) and "5000000" not in str(found)  # bands only
    # Resuming after `next` reads nothing twice; after 1 reads the rest.
    assert sdk.alerts(after=nxt) == ([], 3)
    assert [a["id"] for a in sdk.alerts(after=1)[0]] == [2, 3]


def test_xinyi_bank_alerts_prints_one_line_an_alert_and_the_next(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    watched: tuple[Bank, GatewayClient, Counting],
) -> None:
    _, sdk, _ = watched
    monkeypatch.setattr("cli.bank._open", lambda home, gateway: (None, sdk))
    result = CliRunner().invoke(main, ["bank", "alerts", "--home", str(tmp_path)])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 4 and lines[-1] == "3 alert(s); next: 3"
    first = lines[0].split("\t")
    assert first[0] == "1" and first[3] == "tax_arrears" and first[5].startswith("audit ")
    assert first[2] in (ENTERPRISE, OTHER_ENTERPRISE)
    result = CliRunner().invoke(main, ["bank", "alerts", "--home", str(tmp_path), "--after", "3"])
    assert result.exit_code == 0 and result.output.strip() == "0 alert(s); next: 3"
    refused = CliRunner().invoke(main, ["bank", "alerts", "--home", str(tmp_path), "--after", "-1"])
    assert refused.exit_code == 2


def test_a_gateway_whose_pages_do_not_advance_is_refused() -> None:
    asked: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/token":
            return httpx.Response(
                200, json={"access_token": "t", "token_type": "Bearer", "expires_in": 300}
            )
        asked.append(request.url.params["after"])
        # Always the same alert and the same `next`: a loop if followed blindly.
        return httpx.Response(200, json={"alerts": [{"id": 1}], "next": 1})

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    http = httpx.Client(base_url="http://gw.test", transport=httpx.MockTransport(handler))
    sdk = GatewayClient("http://gw.test", "bank_x", Ed25519PrivateKey.generate(), http=http)
    with pytest.raises(BankError) as e:
        sdk.alerts(after=0)
    assert e.value.code == "bad_response" and asked == ["0", "1"]
    with pytest.raises(BankError) as e:
        sdk.alerts(after=5)  # `next` behind `after`
    assert e.value.code == "bad_response"
