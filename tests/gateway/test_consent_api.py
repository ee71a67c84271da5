"""Consent over HTTP: the contract's paths, fields, roles and refusal codes."""

from __future__ import annotations

from collections.abc import Callable

from flask.testing import FlaskClient

from tests.gateway.conftest import ENTERPRISE, OTHER_ENTERPRISE, Bank, consent_body


def test_consent_story(
    make_bank: Callable[..., Bank], make_person: Callable[..., FlaskClient], client: FlaskClient
) -> None:
    bank = make_bank()
    ent = make_person("enterprise", ENTERPRISE)
    resp = bank.post(client, "/v1/consents", consent_body())
    assert resp.status_code == 201
    created = resp.get_json()
    assert created["status"] == "pending"
    assert created["grant"] is None
    cid = created["id"]
    # the enterprise sees the request with its full letter
    mine = ent.get("/v1/consents?status=pending").get_json()["consents"]
    assert [c["id"] for c in mine] == [cid]
    assert "授权书" in mine[0]["letter"]
    approved = ent.post(f"/v1/consents/{cid}/approve").get_json()
    assert approved["status"] == "active"
    # Every decision is in the audit log; the answer says where.
    assert approved["audit_index"] > created["audit_index"] >= 0
    entry = ent.get(f"/v1/audit/entries/{approved['audit_index']}").get_json()
    assert entry["entry"]["operation"] == "consent.approve"
    assert approved["grant"].count(".") == 2
    view = bank.get(client, f"/v1/consents/{cid}").get_json()
    for field in (
        "id",
        "status",
        "enterprise",
        "institution",
        "purpose",
        "ops",
        "categories",
        "expires_at",
        "uses",
        "max_uses",
        "grant",
    ):
        assert field in view
    assert ent.post(f"/v1/consents/{cid}/revoke").get_json()["status"] == "revoked"
    assert bank.get(client, "/v1/consents?status=revoked").get_json()["consents"][0]["id"] == cid


def test_roles_and_visibility(
    make_bank: Callable[..., Bank], make_person: Callable[..., FlaskClient], client: FlaskClient
) -> None:
    bank, other_bank = make_bank("bank_one"), make_bank("bank_two")
    cid = bank.post(client, "/v1/consents", consent_body()).get_json()["id"]
    stranger = make_person("enterprise", OTHER_ENTERPRISE)
    assert stranger.post(f"/v1/consents/{cid}/approve").status_code == 404
    assert other_bank.get(client, f"/v1/consents/{cid}").status_code == 404
    # institutions cannot decide for enterprises
    assert bank.post(client, f"/v1/consents/{cid}/approve").status_code == 403
    # no CSRF header, no state change by cookie
    ent = make_person("enterprise", ENTERPRISE)
    ent.environ_base.pop("HTTP_X_CSRF_TOKEN")
    resp = ent.post(f"/v1/consents/{cid}/approve")
    assert resp.status_code == 403
    assert resp.get_json()["error"] == "csrf_failed"


def test_bad_consent_requests(make_bank: Callable[..., Bank], client: FlaskClient) -> None:
    bank = make_bank()
    for body, code in [
        (consent_body(enterprise="91330100716105852G"), "invalid_uscc"),
        (consent_body(duration_days=4000), "invalid_consent_request"),
        (consent_body(ops=["train"]), "invalid_consent_request"),
        ([1, 2], "invalid_json"),
    ]:
        resp = bank.post(client, "/v1/consents", body)
        assert resp.status_code == 400
        assert resp.get_json()["error"] == code
    resp = client.post(
        "/v1/consents", data="{", headers={**bank.headers(), "Content-Type": "application/json"}
    )
    assert resp.status_code == 400
