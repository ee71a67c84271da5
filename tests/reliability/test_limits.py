"""Size limits on every body and rate limits per institution.

- A body larger than ``limits.max_request_bytes`` is refused with 413 ``too_large`` on
  every route that takes one, before the body is read and before anything is stored
  or counted (the route-specific limits of contexts, ciphertexts, batches and CSV files
  are tested with their routes in ``tests/gateway``);
- each institution has its own sliding one-minute window of
  ``limits.requests_per_minute`` requests (per worker: divided by the worker count);
  one institution hitting its limit does not slow another.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flask import Flask
from flask.testing import FlaskClient

from bank.profile import public_jwk
from common.errors import RateLimited
from gateway import create_app
from gateway.ratelimit import RateLimiter
from tests.gateway.conftest import Bank

MAX_BYTES = 4096
PER_MINUTE = 5


@pytest.fixture
def app(database_url: str, make_settings: Any) -> Iterator[Flask]:
    s = make_settings(
        database_url=database_url,
        limits={"max_request_bytes": MAX_BYTES, "requests_per_minute": PER_MINUTE},
    )
    app = create_app(s, background=False)
    app.config["TESTING"] = True
    yield app
    app.extensions["xinyi"].stop()
    app.extensions["xinyi"].engine.dispose()


def bank(app: Flask, name: str) -> Bank:
    key = Ed25519PrivateKey.generate()
    app.extensions["xinyi"].registry.add_institution(name, name=name, jwk=public_jwk(key))
    b = Bank(name, key, app)
    b.login(app.test_client())
    return b


def person(app: Flask, role: str) -> FlaskClient:
    svc = app.extensions["xinyi"]
    extra: dict[str, Any] = {"uscc": "91330100716105852F"} if role == "enterprise" else {}
    if role == "department":
        svc.registry.add_department("tax", name="税务局")
        extra = {"department_id": "tax"}
    svc.registry.add_user(login=f"lim-{role}", password="limits password", role=role, **extra)
    client = app.test_client()
    resp = client.post("/v1/session", json={"login": f"lim-{role}", "password": "limits password"})
    client.environ_base["HTTP_X_CSRF_TOKEN"] = resp.get_json()["csrf_token"]
    return client


def routes_with_bodies(app: Flask) -> list[tuple[str, str, str, str]]:
    """(caller, method, path, content type) of every documented operation with a body."""
    doc = app.test_client().get("/openapi.json").get_json()
    out = []
    for path, operations in doc["paths"].items():
        for method, op in operations.items():
            if "requestBody" not in op:
                continue
            schemes = {name for sec in op.get("security", []) for name in sec}
            caller = "institution" if "bearer" in schemes else "anonymous"
            if "session" in schemes:
                # A person of a role the operation serves: a wrong role is refused
                # before the body is read, which is not what this test is about.
                roles = getattr(app.view_functions[op["operationId"]], "roles", ())
                people = [r for r in ("department", "enterprise", "operator") if r in roles]
                caller = people[0] if people else "department"
            mimetype = next(iter(op["requestBody"]["content"]))
            if mimetype == "multipart/form-data":
                mimetype = "text/csv"
            concrete = path.replace("{department}", "tax").replace("{session_id}", "trs_none")
            out.append((caller, method.upper(), concrete, mimetype))
    return out


def test_every_body_over_the_limit_is_refused_with_413_and_nothing_is_stored(
    app: Flask,
) -> None:
    people: dict[str, FlaskClient] = {}
    anonymous = app.test_client()
    body = b"x" * (MAX_BYTES + 1)
    engine = app.extensions["xinyi"].engine
    import sqlalchemy as sa

    def counts() -> tuple[int, ...]:
        with engine.connect() as conn:
            return tuple(
                int(conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar() or 0)
                for t in ("consents", "audit_queue", "audit_entries", "record_imports")
            )

    routes = routes_with_bodies(app)
    assert len(routes) >= 10
    before = counts()
    for i, (caller, method, path, mimetype) in enumerate(routes):
        if caller in ("department", "enterprise", "operator"):
            client = people.get(caller) or people.setdefault(caller, person(app, caller))
        else:
            client = app.test_client() if caller == "institution" else anonymous
        # A bank per call: this test is about sizes, not about the rate limit.
        headers = bank(app, f"big_bank_{i}").headers() if caller == "institution" else {}
        resp = client.open(path, method=method, data=body, content_type=mimetype, headers=headers)
        if path.endswith("trs_none/messages"):
            # No such training session: refused before its frame would be read.
            assert resp.status_code == 404, (path, resp.status_code)
            continue
        assert resp.status_code == 413, (path, resp.status_code, resp.get_data()[:200])
        assert resp.get_json()["error"] == "too_large", path
    assert counts() == before


def test_an_institution_over_its_rate_is_refused_and_others_are_not(app: Flask) -> None:
    client = app.test_client()
    busy, quiet = bank(app, "busy_bank"), bank(app, "quiet_bank")
    for _ in range(PER_MINUTE):
        assert busy.get(client, "/v1/catalog").status_code == 200
    refused = busy.get(client, "/v1/catalog")
    assert refused.status_code == 429
    assert refused.get_json()["error"] == "rate_limited"
    assert quiet.get(client, "/v1/catalog").status_code == 200


def test_the_window_slides_over_one_minute() -> None:
    limiter = RateLimiter(3)
    for t in (0.0, 10.0, 20.0):
        limiter.hit("bank", now=t)
    with pytest.raises(RateLimited):
        limiter.hit("bank", now=59.9)
    limiter.hit("other", now=59.9)
    limiter.hit("bank", now=60.1)  # the hit at 0.0 left the window
    with pytest.raises(RateLimited):
        limiter.hit("bank", now=60.2)


HUGE = str(2**80)


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        # A path whose number is beyond 64 bits matches no route (gateway.Int64Converter).
        ("GET", f"/v1/audit/entries/{HUGE}", None, 404, "not_found"),
        ("GET", f"/v1/audit/entries?after={HUGE}", None, 400, "invalid_query"),
        ("GET", f"/v1/audit/proof/inclusion?index={HUGE}", None, 400, "invalid_query"),
        ("GET", f"/v1/audit/proof/inclusion?index=0&size={HUGE}", None, 400, "invalid_query"),
        ("GET", f"/v1/audit/proof/consistency?first=1&second={HUGE}", None, 400, "invalid_query"),
        ("GET", f"/v1/audit/checkpoint?size={HUGE}", None, 400, "invalid_query"),
        ("GET", f"/v1/audit/leaves?start=0&end={HUGE}", None, 400, "invalid_query"),
        (
            "POST",
            "/v1/audit/cosignatures",
            {"size": 2**80, "cosignature": "— x AAAA"},
            400,
            "invalid_json",
        ),
        ("GET", f"/v1/departments/tax/imports/{HUGE}", None, 404, "not_found"),
        ("GET", f"/v1/models/m@{HUGE}", None, 400, "invalid_json"),
    ],
)
def test_numbers_beyond_64_bits_are_bad_input_not_a_crash(
    app: Flask, method: str, path: str, body: Any, status: int, code: str
) -> None:
    """Found by schemathesis: a 24-digit index overflowed the database driver (500)."""
    b = bank(app, "number_bank")
    client = person(app, "operator") if "/departments/" in path else app.test_client()
    headers = {} if "/departments/" in path else b.headers()
    resp = client.open(path, method=method, json=body, headers=headers)
    assert (resp.status_code, resp.get_json()["error"]) == (status, code), resp.get_data()[:200]
