"""Sign-in hardening: where ``next`` may send a person, server-side sessions that end
everywhere, the brute-force throttle, and the cookie flags of an https gateway."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from gateway.web.common import _local_path
from tests.web.conftest import CSRF, ENTERPRISE, PASSWORD

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
