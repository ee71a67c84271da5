"""Sign-in hardening: where ``next`` may send a person, server-side sessions that end
everywhere, the brute-force throttle, and the cookie flags of an https gateway."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from urllib.parse import unquote, urlsplit

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from structlog.testing import capture_logs
from werkzeug.test import TestResponse

from common.settings import Settings
from gateway import create_app
from gateway.auth import SESSION_COOKIE
from gateway.web.common import _local_path
from tests.web.conftest import (
    CSRF,
    ENTERPRISE,
    PASSWORD,
    Bank,
    Person,
    request_consent,
    sign_in,
)

# Every one of these would leave the site (or could, once a browser or proxy decodes
# it again): tabs and newlines are dropped by browsers, a backslash reads as a slash.
LEAVING = [
    "/\t/evil.example",
    "/\n/evil.example",
    "/\r\n/evil.example",
    "/%09/evil.example",
    "/%0a/evil.example",
    "/%2F/evil.example",
    "/%5C/evil.example",
    "/\\/evil.example",
    "\\/evil.example",
    "//evil.example",
    "///evil.example",
    " //evil.example",
    "/ /evil.example",
    "/\u3000/evil.example",
    "/\u200b/evil.example",
    "/\x00/evil.example",
    "https://evil.example/",
    "https:/evil.example",
    "javascript:alert(1)",
    "evil.example",
    "",
    None,
]


@pytest.mark.parametrize("value", LEAVING)
def test_next_that_could_leave_the_site_is_dropped(value: str | None) -> None:
    assert _local_path(value) == ""


def as_a_browser_reads(location: str) -> str:
    """What WHATWG URL parsing makes of a relative Location: tabs and newlines dropped,
    leading C0 controls and spaces trimmed, backslashes read as slashes."""
    text = "".join(ch for ch in location if ch not in "\t\n\r")
    return text.lstrip("".join(map(chr, range(0x21)))).replace("\\", "/")


@given(st.text(alphabet="/\\\t\n\r %0a9Cc5:.@evilx\x00\u3000", max_size=20))
@hypothesis_settings(max_examples=500, deadline=None)
def test_a_kept_next_stays_on_the_site_however_a_browser_reads_it(value: str) -> None:
    kept = _local_path(value)
    if not kept:
        return
    for form in (kept, unquote(kept)):
        read = as_a_browser_reads(form)
        parts = urlsplit(read)
        assert read.startswith("/") and not read.startswith("//"), value
        assert not parts.scheme and not parts.netloc, value


@pytest.mark.parametrize(
    "value", ["/enterprise/", "/enterprise/grants?lang=en", "/department/accesses?after=3#x"]
)
def test_next_on_the_site_is_kept(value: str) -> None:
    assert _local_path(value) == value


@pytest.mark.parametrize("value", ["/%09/evil.example", "/\t/evil.example", "/\\evil.example"])
def test_sign_in_never_redirects_off_the_site(app: Flask, client: FlaskClient, value: str) -> None:
    app.extensions["xinyi"].registry.add_user(
        login="ent-next", password=PASSWORD, role="enterprise", uscc=ENTERPRISE
    )
    page = client.get("/login", query_string={"next": value}).get_data(as_text=True)
    assert '<input type="hidden" name="next" value="">' in page
    token = CSRF.search(page)
    assert token
    resp = client.post(
        "/login",
        data={
            "login": "ent-next",
            "password": PASSWORD,
            "csrf_token": token.group(1),
            "next": value,
        },
    )
    assert resp.status_code == 302
    assert resp.headers["Location"] == "/enterprise/"


# Server-side sessions ---------------------------------------------------------------
def api_sign_in(client: FlaskClient, login: str, password: str = PASSWORD) -> TestResponse:
    return client.post("/v1/session", json={"login": login, "password": password})


def replay(app: Flask, cookie: str, csrf: str) -> FlaskClient:
    """A second browser holding a captured session cookie and its CSRF token."""
    thief = app.test_client()
    thief.set_cookie(SESSION_COOKIE, cookie)
    thief.environ_base["HTTP_X_CSRF_TOKEN"] = csrf
    return thief


def signed_in(app: Flask, login: str, **user: str) -> tuple[FlaskClient, str, str]:
    app.extensions["xinyi"].registry.add_user(login=login, password=PASSWORD, **user)
    client = app.test_client()
    resp = api_sign_in(client, login)
    assert resp.status_code == 200, resp.get_json()
    cookie = client.get_cookie(SESSION_COOKIE)
    assert cookie is not None
    return client, cookie.value, str(resp.get_json()["csrf_token"])


def test_the_cookie_holds_only_a_random_id_and_the_table_only_its_hash(app: Flask) -> None:
    _, cookie, _ = signed_in(app, "ent-id", role="enterprise", uscc=ENTERPRISE)
    assert len(cookie) >= 40 and "ent-id" not in cookie and "." not in cookie
    with app.extensions["xinyi"].engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT id_hash, login FROM person_sessions")).all()
    assert [tuple(r) for r in stored] == [(hashlib.sha256(cookie.encode()).hexdigest(), "ent-id")]


def test_api_sign_out_ends_a_captured_session_everywhere(
    app: Flask, client: FlaskClient, make_bank: Callable[..., Bank]
) -> None:
    bank = make_bank()
    cid = request_consent(bank, client)
    person, cookie, csrf = signed_in(app, "ent-out", role="enterprise", uscc=ENTERPRISE)
    assert replay(app, cookie, csrf).get("/v1/session").status_code == 200
    assert person.delete("/v1/session").status_code == 204
    thief = replay(app, cookie, csrf)
    assert thief.get("/v1/session").status_code == 401
    resp = thief.post(f"/v1/consents/{cid}/approve")
    assert resp.status_code == 401
    assert bank.get(client, f"/v1/consents/{cid}").get_json()["status"] == "pending"
    # Another worker (a second app over the same database) refuses it too.
    other = create_app(app.extensions["xinyi"].settings, background=False)
    try:
        stolen = other.test_client()
        stolen.set_cookie(SESSION_COOKIE, cookie)
        assert stolen.get("/v1/session").status_code == 401
    finally:
        other.extensions["xinyi"].engine.dispose()


def test_page_sign_out_ends_a_captured_session(make_person: Callable[..., Person]) -> None:
    person = make_person("operator")
    cookie = person.client.get_cookie(SESSION_COOKIE)
    assert cookie is not None
    thief = person.client.application.test_client()
    thief.set_cookie(SESSION_COOKIE, cookie.value)
    assert thief.get("/operator/keys").status_code == 200
    assert person.post("/logout").status_code == 302
    resp = thief.get("/operator/keys")
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]


def test_a_suspended_departments_open_session_reads_no_more_audit_log(app: Flask) -> None:
    svc = app.extensions["xinyi"]
    svc.registry.add_department("tax", name="税务局")
    person, _, _ = signed_in(app, "tax-clerk", role="department", department_id="tax")
    assert person.get("/v1/audit/entries").status_code == 200
    svc.registry.suspend_department("tax")
    resp = person.get("/v1/audit/entries")
    assert resp.status_code == 403 and resp.get_json()["error"] == "department_suspended"
    svc.registry.resume_department("tax")
    assert person.get("/v1/audit/entries").status_code == 401  # that session is over
    assert api_sign_in(person, "tax-clerk").status_code == 200
    assert person.get("/v1/audit/entries").status_code == 200


def test_a_disabled_user_is_out_at_once_and_can_come_back(app: Flask) -> None:
    registry = app.extensions["xinyi"].registry
    person, cookie, csrf = signed_in(app, "ent-dis", role="enterprise", uscc=ENTERPRISE)
    registry.disable_user("ent-dis")
    resp = person.get("/v1/session")
    assert resp.status_code == 401
    assert replay(app, cookie, csrf).get("/v1/session").status_code == 401
    assert api_sign_in(app.test_client(), "ent-dis").status_code == 401
    registry.enable_user("ent-dis")
    assert api_sign_in(app.test_client(), "ent-dis").status_code == 200


def test_an_expired_session_is_refused_and_removed(app: Flask) -> None:
    svc = app.extensions["xinyi"]
    person, _, _ = signed_in(app, "ent-exp", role="enterprise", uscc=ENTERPRISE)
    svc.sessions.clock = lambda: time.time() + 1801  # tokens.session_seconds is 1800
    resp = person.get("/v1/session")
    assert resp.status_code == 401 and resp.get_json()["error"] == "session_expired"
    with svc.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM person_sessions")).scalar() == 0


# Brute force ------------------------------------------------------------------------
def test_wrong_passwords_are_throttled_per_login_with_back_off(app: Flask) -> None:
    svc = app.extensions["xinyi"]
    svc.registry.add_user(login="ent-bf", password=PASSWORD, role="enterprise", uscc=ENTERPRISE)
    client = app.test_client()
    now = [time.time()]
    svc.throttle.clock = lambda: now[0]
    with capture_logs() as logs:
        for _ in range(5):
            assert api_sign_in(client, "ent-bf", "wrong password").status_code == 401
        first = api_sign_in(client, "ent-bf", "wrong password")
        assert first.status_code == 429
        assert first.get_json()["error"] == "sign_in_throttled"
        assert first.headers["Retry-After"] == "1"
        # While the wait runs, not even the right password is checked.
        assert api_sign_in(client, "ent-bf").status_code == 429
        now[0] += 1.5
        assert api_sign_in(client, "ent-bf", "wrong password").status_code == 401
        second = api_sign_in(client, "ent-bf", "wrong password")
        assert second.status_code == 429 and second.headers["Retry-After"] == "2"  # doubled
        now[0] += 2.5
        assert api_sign_in(client, "ent-bf").status_code == 200
        # Success forgets the login's failures: five free ones again.
        for _ in range(5):
            assert api_sign_in(client, "ent-bf", "wrong password").status_code == 401
    refused = [e for e in logs if e["event"] == "sign_in_refused"]
    assert len(refused) == 11
    for event in refused + [e for e in logs if e["event"] == "sign_in_throttled"]:
        assert len(event["login_hash"]) == 16 and len(event["address_hash"]) == 16
        text = repr(event)
        assert "ent-bf" not in text and "127.0.0.1" not in text and "wrong password" not in text
    assert refused[0]["login_hash"] != hashlib.sha256(b"ent-bf").hexdigest()[:16]  # keyed


def test_many_logins_from_one_address_are_throttled_across_workers(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Unknown logins are checked against a dummy hash made lazily at the hasher's cost
    # (the tests' cheap one).
    svc = app.extensions["xinyi"]
    svc.registry.add_user(login="ent-ok", password=PASSWORD, role="enterprise", uscc=ENTERPRISE)
    client = app.test_client()
    # A frozen clock: a loaded machine must not let the 1 s wait run out mid-test.
    now = time.time()
    svc.throttle.clock = lambda: now
    for k in range(20):
        assert api_sign_in(client, f"guess-{k}", "wrong password").status_code == 401
    # The next attempt, for any login, from this address waits, on another worker too.
    other = create_app(svc.settings, background=False)
    other.extensions["xinyi"].throttle.clock = lambda: now
    try:
        resp = api_sign_in(other.test_client(), "ent-ok")
        assert resp.status_code == 429 and int(resp.headers["Retry-After"]) >= 1
    finally:
        other.extensions["xinyi"].engine.dispose()
    elsewhere = app.test_client()
    elsewhere.environ_base["REMOTE_ADDR"] = "192.0.2.7"
    assert api_sign_in(elsewhere, "ent-ok").status_code == 200


def test_the_sign_in_page_is_throttled_too(app: Flask, client: FlaskClient) -> None:
    app.extensions["xinyi"].registry.add_user(
        login="ent-page", password=PASSWORD, role="enterprise", uscc=ENTERPRISE
    )
    for _ in range(5):
        assert sign_in(client, "ent-page", "wrong password").status_code == 401
    resp = sign_in(client, "ent-page")
    assert resp.status_code == 429
    assert resp.headers["Retry-After"] == "1"
    assert "登录失败次数过多" in resp.get_data(as_text=True)
    assert client.get("/enterprise/").status_code == 302  # not signed in


# Cookies of an https gateway ----------------------------------------------------------
@pytest.mark.parametrize("https", [True, False])
def test_the_session_cookie_is_secure_behind_https_with_hsts(
    database_url: str, make_settings: Callable[..., Settings], https: bool
) -> None:
    url = "https://gateway.example" if https else "http://127.0.0.1:8600"
    app = create_app(
        make_settings(database_url=database_url, server={"public_url": url}), background=False
    )
    try:
        app.extensions["xinyi"].registry.add_user(
            login="ent-tls", password=PASSWORD, role="enterprise", uscc=ENTERPRISE
        )
        client = app.test_client()
        resp = api_sign_in(client, "ent-tls")
        assert resp.status_code == 200
        cookie = next(
            c for c in resp.headers.getlist("Set-Cookie") if c.startswith("xinyi_session=")
        )
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
        assert ("Secure" in cookie) is https
        page = client.get("/login?lang=en")  # the page cookie and the language cookie
        assert ("Strict-Transport-Security" in resp.headers) is https
        assert ("Strict-Transport-Security" in page.headers) is https
        cookies = page.headers.getlist("Set-Cookie")
        assert {c.split("=")[0] for c in cookies} == {"xinyi_page", "xinyi_lang"}
        for set_cookie in cookies:
            assert ("Secure" in set_cookie) is https, set_cookie
    finally:
        app.extensions["xinyi"].engine.dispose()
