"""Enterprise sign-up, real name, invitations and the institution staff role, through
the JSON API: every refusal stores nothing, an account without real name authorizes
nothing and reads none of the enterprise's data, staff sessions reach no existing API."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from common import uscc as uscc_rules
from gateway.ratelimit import RateLimiter
from registry.store import enterprise_admins, invitations, users
from tests.gateway.conftest import Bank, consent_body
from tests.registration_data import resident_id, seed_registration

PASSWORD = "correct horse battery"
ACME = uscc_rules.complete("91320281MA1XY0001")
BETA = uscc_rules.complete("91320281MA1XY0002")
FAR = uscc_rules.complete("91330106MA2H0YQ58")
ZHANG_ID = resident_id("32028119800101123")
LI_ID = resident_id("32028119751231456")


@pytest.fixture
def registered(app: Flask) -> Any:
    svc = app.extensions["xinyi"]
    seed_registration(svc, {ACME: ("张三", ZHANG_ID), BETA: ("李四", LI_ID), FAR: ("王五", LI_ID)})
    return svc


def sign_up(client: FlaskClient, **kw: Any) -> Any:
    body = {
        "uscc": ACME,
        "login": "acme-admin",
        "password": PASSWORD,
        "legal_representative": "张三",
        "legal_representative_id": ZHANG_ID,
        **kw,
    }
    return client.post("/v1/enterprises/register", json=body)


def signed_in(app: Flask, login: str) -> FlaskClient:
    person = app.test_client()
    resp = person.post("/v1/session", json={"login": login, "password": PASSWORD})
    assert resp.status_code == 200, resp.get_json()
    person.environ_base["HTTP_X_CSRF_TOKEN"] = resp.get_json()["csrf_token"]
    return person


def counts(app: Flask) -> tuple[int, int, int]:
    with app.extensions["xinyi"].engine.connect() as c:
        return tuple(  # type: ignore[return-value]
            int(c.execute(sa.select(sa.func.count()).select_from(t)).scalar_one())
            for t in (users, enterprise_admins, invitations)
        )


def test_sign_up_with_matching_legal_representative_is_real_named_and_authorizes(
    app: Flask,
    client: FlaskClient,
    registered: Any,
    make_bank: Callable[..., Bank],
    capsys: pytest.CaptureFixture[str],
) -> None:
    resp = sign_up(client, legal_representative_id=ZHANG_ID.lower())
    assert resp.status_code == 201
    assert resp.get_json() == {"login": "acme-admin", "real_name": True}
    user = registered.registry.user("acme-admin")
    assert user.uscc == ACME and user.real_name_at is not None
    assert registered.registry.administrator(ACME) == "acme-admin"
    # The id is nowhere in the accounts.
    with registered.engine.connect() as c:
        dump = repr(c.execute(sa.select(users)).all()) + repr(
            c.execute(sa.select(enterprise_admins)).all()
        )
    assert ZHANG_ID not in dump and ZHANG_ID[:-1] not in dump
    resp = sign_up(client, login="again", legal_representative_id=ZHANG_ID[:-1] + "0")
    logged = capsys.readouterr()
    assert "enterprise_signed_up" in logged.out  # logs are captured here...
    assert ZHANG_ID[:-1] not in logged.out + logged.err  # ...and never hold the id

    person = signed_in(app, "acme-admin")
    assert person.get("/v1/session").get_json()["real_name"] is True
    bank = make_bank()
    cid = bank.post(client, "/v1/consents", consent_body(enterprise=ACME)).get_json()["id"]
    resp = person.post(f"/v1/consents/{cid}/approve")
    assert resp.status_code == 200 and resp.get_json()["status"] == "active"


def test_bad_uscc_and_bad_id_are_refused_and_nothing_is_stored(
    app: Flask, client: FlaskClient, registered: Any
) -> None:
    before = counts(app)
    resp = sign_up(client, uscc=ACME[:-1] + ("0" if ACME[-1] != "0" else "1"))
    assert resp.status_code == 400 and resp.get_json()["error"] == "invalid_uscc"
    resp = sign_up(
        client,
        legal_representative_id=ZHANG_ID[:-1] + "0" if ZHANG_ID[-1] != "0" else ZHANG_ID[:-1] + "1",
    )
    assert resp.status_code == 400 and resp.get_json()["error"] == "invalid_resident_id"
    assert ZHANG_ID[:10] not in resp.get_data(as_text=True)  # never echoed
    resp = sign_up(client, legal_representative_id="12345")
    assert resp.status_code == 400 and resp.get_json()["error"] == "invalid_resident_id"
    resp = sign_up(client, legal_representative="")
    assert resp.status_code == 400
    resp = sign_up(client, password="short")
    assert resp.status_code == 400 and resp.get_json()["error"] == "invalid_registration"
    resp = sign_up(client, login="no spaces allowed")
    assert resp.status_code == 400
    assert counts(app) == before


def test_wrong_legal_representative_id_signs_up_without_real_name_which_authorizes_nothing(
    app: Flask, client: FlaskClient, registered: Any, make_bank: Callable[..., Bank]
) -> None:
    resp = sign_up(client, legal_representative_id=LI_ID)  # valid, but not 张三's
    assert resp.status_code == 201 and resp.get_json() == {
        "login": "acme-admin",
        "real_name": False,
    }
    assert (
        sign_up(client, uscc=BETA, login="beta", legal_representative="错名").get_json()[
            "real_name"
        ]
        is False
    )  # right id, wrong name
    assert registered.registry.user("acme-admin").real_name_at is None

    person = signed_in(app, "acme-admin")
    assert person.get("/v1/session").get_json()["real_name"] is False
    bank = make_bank()
    cid = bank.post(client, "/v1/consents", consent_body(enterprise=ACME)).get_json()["id"]
    resp = person.post(f"/v1/consents/{cid}/approve")
    assert resp.status_code == 403 and resp.get_json()["error"] == "real_name_required"
    assert bank.get(client, f"/v1/consents/{cid}").get_json()["status"] == "pending"
    assert person.get("/v1/catalog").status_code == 200  # browsing what exists is fine
    # Nor does it read the enterprise's consents, accesses or data.
    for path in ("/v1/consents", "/v1/audit/entries", f"/v1/consents/{cid}"):
        resp = person.get(path)
        assert resp.status_code == 403 and resp.get_json()["error"] == "real_name_required", path

    # Later verification with the corrected id: bounded, then authorizes.
    resp = person.post(
        "/v1/enterprises/real-name",
        json={"legal_representative": "张三", "legal_representative_id": LI_ID},
    )
    assert resp.get_json() == {"login": "acme-admin", "real_name": False, "attempts_left": 3}
    resp = person.post(
        "/v1/enterprises/real-name",
        json={"legal_representative": "张三", "legal_representative_id": ZHANG_ID},
    )
    assert resp.status_code == 200 and resp.get_json()["real_name"] is True
    resp = person.post(f"/v1/consents/{cid}/approve")
    assert resp.status_code == 200, resp.get_json()


def test_real_name_checks_are_bounded(app: Flask, client: FlaskClient, registered: Any) -> None:
    assert sign_up(client, legal_representative_id=LI_ID).get_json()["real_name"] is False
    person = signed_in(app, "acme-admin")
    wrong = {"legal_representative": "张三", "legal_representative_id": LI_ID}
    for left in (3, 2, 1, 0):
        resp = person.post("/v1/enterprises/real-name", json=wrong)
        assert resp.status_code == 200 and resp.get_json()["attempts_left"] == left
    right = {"legal_representative": "张三", "legal_representative_id": ZHANG_ID}
    resp = person.post("/v1/enterprises/real-name", json=right)
    assert resp.status_code == 403 and resp.get_json()["error"] == "real_name_attempts_exhausted"
    assert registered.registry.user("acme-admin").real_name_at is None
    # A malformed id is refused before it counts.
    resp = person.post("/v1/enterprises/real-name", json={**right, "legal_representative_id": "1"})
    assert resp.status_code == 400


def test_duplicate_sign_up_and_duplicate_login_are_409_and_store_nothing(
    app: Flask, client: FlaskClient, registered: Any
) -> None:
    assert sign_up(client).status_code == 201
    before = counts(app)
    resp = sign_up(client, login="acme-second")
    assert resp.status_code == 409 and resp.get_json()["error"] == "already_registered"
    resp = sign_up(client, uscc=BETA, legal_representative="李四", legal_representative_id=LI_ID)
    assert resp.status_code == 409 and resp.get_json()["error"] == "login_taken"
    assert counts(app) == before
    resp = sign_up(
        client, uscc=BETA, login="beta", legal_representative="李四", legal_representative_id=LI_ID
    )
    assert resp.status_code == 201 and resp.get_json()["real_name"] is True


def test_a_real_named_sign_up_displaces_a_squatter_within_the_attempt_bound(
    app: Flask, client: FlaskClient, registered: Any
) -> None:
    assert sign_up(client, login="squatter", legal_representative_id=LI_ID).status_code == 201
    squatter = signed_in(app, "squatter")
    # Guessing through sign-up counts against the USCC like any real-name check.
    for k in range(3):
        resp = sign_up(client, login=f"guess{k}", legal_representative_id=LI_ID)
        assert resp.status_code == 409 and resp.get_json()["error"] == "already_registered"
    resp = sign_up(client, login="owner")
    assert resp.status_code == 201 and resp.get_json()["real_name"] is True
    assert registered.registry.administrator(ACME) == "owner"
    assert registered.registry.user("squatter").disabled
    assert squatter.get("/v1/session").status_code == 401  # its session is over


def test_the_attempt_bound_stops_guessing_through_sign_up(
    app: Flask, client: FlaskClient, registered: Any
) -> None:
    assert sign_up(client, login="squatter", legal_representative_id=LI_ID).status_code == 201
    for k in range(4):
        assert sign_up(client, login=f"guess{k}", legal_representative_id=LI_ID).status_code == 409
    # Even the right id no longer answers differently: the bound is spent.
    resp = sign_up(client, login="owner")
    assert resp.status_code == 409 and resp.get_json()["error"] == "already_registered"
    assert registered.registry.administrator(ACME) == "squatter"


def test_sign_up_and_sign_in_are_limited_per_address(
    app: Flask, client: FlaskClient, registered: Any
) -> None:
    svc = registered
    svc.address_limiters["sign_up"] = RateLimiter(3)
    for k in range(3):
        resp = sign_up(client, login=f"x{k}", uscc=BETA, legal_representative_id="1")
        assert resp.status_code == 400
    resp = sign_up(client)
    assert resp.status_code == 429 and resp.get_json()["error"] == "rate_limited"
    assert counts(app)[0] == 0
    other = app.test_client()
    other.environ_base["REMOTE_ADDR"] = "192.0.2.7"
    assert sign_up(other).status_code == 201  # another address has its own budget

    svc.address_limiters["sign_in"] = RateLimiter(2)
    for _ in range(2):
        assert (
            client.post(
                "/v1/session", json={"login": "acme-admin", "password": PASSWORD}
            ).status_code
            == 200
        )
    resp = client.post("/v1/session", json={"login": "acme-admin", "password": PASSWORD})
    assert resp.status_code == 429 and resp.get_json()["error"] == "rate_limited"


def test_invitation_lifecycle(app: Flask, client: FlaskClient, registered: Any) -> None:
    assert sign_up(client).status_code == 201
    admin = signed_in(app, "acme-admin")
    resp = admin.post("/v1/enterprises/invitations")
    assert resp.status_code == 201
    made = resp.get_json()
    token = made["token"]
    assert made["url"].endswith("/invite/" + token) and made["expires_at"] > time.time()
    with registered.engine.connect() as c:
        assert token not in repr(c.execute(sa.select(invitations)).all())  # hashed

    body = {"token": token, "login": "acme-colleague", "password": PASSWORD}
    resp = client.post("/v1/enterprises/invitations/accept", json=body)
    assert resp.status_code == 201 and resp.get_json() == {
        "login": "acme-colleague",
        "real_name": True,
    }
    colleague = registered.registry.user("acme-colleague")
    assert colleague.uscc == ACME and colleague.role == "enterprise"
    assert registered.registry.administrator(ACME) == "acme-admin"  # still one
    # Single use.
    before = counts(app)
    resp = client.post("/v1/enterprises/invitations/accept", json={**body, "login": "again"})
    assert resp.status_code == 409 and resp.get_json()["error"] == "invitation_unusable"
    resp = client.post("/v1/enterprises/invitations/accept", json={**body, "token": "nope"})
    assert resp.status_code == 404 and resp.get_json()["error"] == "invitation_not_found"
    assert counts(app) == before
    listed = admin.get("/v1/enterprises/invitations").get_json()["invitations"]
    assert [i["used_by"] for i in listed] == ["acme-colleague"]

    # Expiry.
    token2 = admin.post("/v1/enterprises/invitations").get_json()["token"]
    registered.registry.clock = lambda: time.time() + 73 * 3600
    resp = client.post(
        "/v1/enterprises/invitations/accept", json={**body, "token": token2, "login": "late"}
    )
    assert resp.status_code == 409 and resp.get_json()["error"] == "invitation_unusable"
    registered.registry.clock = time.time

    # Only the administrator invites, and only with a real name.
    colleague_client = signed_in(app, "acme-colleague")
    resp = colleague_client.post("/v1/enterprises/invitations")
    assert resp.status_code == 403 and resp.get_json()["error"] == "not_administrator"
    assert colleague_client.get("/v1/enterprises/invitations").status_code == 403
    assert (
        sign_up(client, uscc=BETA, login="beta", legal_representative_id=ZHANG_ID).get_json()[
            "real_name"
        ]
        is False
    )
    resp = signed_in(app, "beta").post("/v1/enterprises/invitations")
    assert resp.status_code == 403 and resp.get_json()["error"] == "real_name_required"


def test_the_public_report_never_shows_the_id_hash(
    app: Flask, client: FlaskClient, registered: Any, make_bank: Callable[..., Bank]
) -> None:
    bank = make_bank()
    resp = bank.get(client, f"/v1/enterprises/{ACME}/report")
    assert resp.status_code == 200
    text = resp.get_data(as_text=True)
    assert "legal_representative_id" not in text and "hmac-sha256" not in text


def test_a_registration_file_imported_with_raw_ids_verifies_the_sign_up(
    app: Flask, client: FlaskClient
) -> None:
    """End to end with the department's import (it hashes the raw id column with the
    one function and key the sign-up compares with)."""
    from records.catalog import Catalog
    from records.pseudonyms import LEGAL_REP_ID
    from records.service import import_csv

    svc = app.extensions["xinyi"]
    data = (
        "uscc,registration.legal_representative,registration.legal_representative_id\n"
        f"{ACME},张三,{ZHANG_ID.lower()}\n"
    ).encode()
    import_csv(
        svc.engine,
        Catalog(svc.settings.config),
        "market_regulation",
        data,
        file_name="registration.csv",
        actor="test",
        pseudonym_key=svc.keys.pseudonym_key(LEGAL_REP_ID),
    )
    resp = sign_up(client, legal_representative_id=ZHANG_ID)
    assert resp.status_code == 201 and resp.get_json()["real_name"] is True
