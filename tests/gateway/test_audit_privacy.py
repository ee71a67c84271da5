"""Privacy of the log: a department's audit API shows only its own part of an entry
(other departments' categories and features, the grant and model ids stay behind salted
commitments) and the department can still recompute the leaf hash and prove inclusion;
the enterprise and the institution see everything; entries written before format 2
still verify, and a department sees them redacted."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from audit import entry as entries
from audit import merkle, store
from common.canonical import canonical_json
from common.db import write_session
from tests.gateway.conftest import ENTERPRISE, Bank, grant_for


@pytest.fixture
def two_departments(
    app: Flask,
    client: FlaskClient,
    make_bank: Callable[..., Bank],
    make_person: Callable[..., FlaskClient],
) -> dict[str, Any]:
    """A bank asks for tax and social security; the enterprise approves (two entries
    touching both departments); a checkpoint is published."""
    bank = make_bank("bank_a")
    enterprise = make_person("enterprise")
    grant_for(bank, client, enterprise)  # categories tax + social_security
    svc = app.extensions["xinyi"]
    svc.audit.background_step()
    svc.audit.checkpoint(force=True)
    return {"bank": bank, "enterprise": enterprise}


def leaf_of(shown: dict[str, Any]) -> bytes:
    return merkle.leaf_hash(entries.leaf_bytes(shown))


def included(person: FlaskClient, index: int, leaf: bytes) -> bool:
    """The leaf is in the tree of the published checkpoint (RFC 9162 proof)."""
    note = person.get("/v1/audit/checkpoint").get_data(as_text=True)
    size, root = int(note.split("\n")[1]), base64.b64decode(note.split("\n")[2])
    proof = person.get(f"/v1/audit/proof/inclusion?index={index}&size={size}").get_json()
    hashes = [base64.b64decode(h) for h in proof["hashes"]]
    return merkle.verify_inclusion(index, size, leaf, hashes, root)


def test_a_department_sees_only_its_part_and_can_check_the_leaf(
    two_departments: dict[str, Any], make_person: Callable[..., FlaskClient], app: Flask
) -> None:
    tax = make_person("department", department="tax")
    body = tax.get("/v1/audit/entries").get_json()
    assert [e["index"] for e in body["entries"]] == [0, 1]
    for item in body["entries"]:
        shown = item["entry"]
        assert shown["v"] == 2
        assert set(shown["parts"]) == {"tax", "social_security"}
        assert isinstance(shown["parts"]["tax"], dict)  # its own, opened
        assert isinstance(shown["parts"]["social_security"], str)  # another's: a commitment
        assert isinstance(shown["private"], str)
        assert "grant_id" not in shown and "model_id" not in shown
        assert all(c == "tax" for c in shown["categories"])
        assert all(f.startswith("tax.") for f in shown["features"])
        text = json.dumps(shown)
        assert "social_security." not in text and '"social_security"]' not in text
        # The department recomputes the leaf hash from what it was given.
        assert leaf_of(shown) == base64.b64decode(item["leaf_hash"])
    one = tax.get("/v1/audit/entries/1").get_json()
    assert leaf_of(one["entry"]) == base64.b64decode(one["leaf_hash"])
    assert included(tax, 1, leaf_of(one["entry"]))


def test_the_enterprise_and_the_institution_see_everything_and_check_it(
    two_departments: dict[str, Any], client: FlaskClient
) -> None:
    bank, enterprise = two_departments["bank"], two_departments["enterprise"]
    for body in (
        enterprise.get("/v1/audit/entries").get_json(),
        bank.get(client, "/v1/audit/entries").get_json(),
    ):
        for item in body["entries"]:
            shown = item["entry"]
            assert all(isinstance(p, dict) for p in shown["parts"].values())
            assert isinstance(shown["private"], dict)
            assert set(shown["categories"]) == {"tax", "social_security"}
            assert "grant_id" in shown
            assert leaf_of(shown) == base64.b64decode(item["leaf_hash"])


def test_a_changed_part_or_commitment_does_not_check(
    two_departments: dict[str, Any], make_person: Callable[..., FlaskClient]
) -> None:
    tax = make_person("department", department="tax")
    item = tax.get("/v1/audit/entries/1").get_json()
    leaf = base64.b64decode(item["leaf_hash"])
    shown = item["entry"]
    forged = json.loads(json.dumps(shown))
    forged["parts"]["tax"]["features"] = ["tax.arrears"]
    assert leaf_of(forged) != leaf
    forged = json.loads(json.dumps(shown))
    forged["parts"]["social_security"] = "0" * 64
    assert leaf_of(forged) != leaf
    forged = json.loads(json.dumps(shown))
    forged["institution"] = "bank_z"
    assert leaf_of(forged) != leaf


def test_a_tampered_opening_is_never_shown(
    two_departments: dict[str, Any], app: Flask, make_person: Callable[..., FlaskClient]
) -> None:
    """An insider who rewrites a stored opening (dropping the append-only guard) makes
    a part that no longer matches its commitment: it is shown as the commitment."""
    import sqlalchemy as sa

    from tests.audit.conftest import allow_rewrites

    engine = app.extensions["xinyi"].engine
    allow_rewrites(engine, "audit_openings")
    with engine.begin() as conn:
        row = conn.execute(sa.text("SELECT queue_id, opening FROM audit_openings")).first()
        assert row is not None
        opening = json.loads(bytes(row[1]))
        opening["parts"]["tax"]["features"] = ["tax.arrears"]
        conn.execute(
            sa.text("UPDATE audit_openings SET opening = :o WHERE queue_id = :q"),
            {"o": canonical_json(opening), "q": row[0]},
        )
    tax = make_person("department", department="tax")
    for item in tax.get("/v1/audit/entries").get_json()["entries"]:
        assert "tax.arrears" not in item["entry"]["features"]
        assert leaf_of(item["entry"]) == base64.b64decode(item["leaf_hash"])


def test_format_1_entries_still_verify_and_are_redacted_for_departments(
    two_departments: dict[str, Any],
    app: Flask,
    client: FlaskClient,
    make_person: Callable[..., FlaskClient],
) -> None:
    svc = app.extensions["xinyi"]
    old = {
        "request_id": "old-request",
        "time": 1_700_000_000,
        "institution": "bank_a",
        "enterprise": ENTERPRISE,
        "departments": ["social_security", "tax"],
        "categories": ["social_security", "tax"],
        "features": ["social_security.insured_employees", "tax.paid_12m"],
        "operation": "verify",
        "grant_id": "grant-old",
        "model_id": None,
        "decision": "allowed",
        "salt": "00" * 16,
    }
    raw = canonical_json(old)  # exactly what format 1 stored and hashed
    with write_session(svc.engine) as s:
        queue_id = store.enqueue(s, raw, 0.0)
    index = svc.audit.await_index(queue_id, 5.0)
    svc.audit.checkpoint(force=True)
    assert svc.audit.verify().ok
    enterprise = two_departments["enterprise"]
    full = enterprise.get(f"/v1/audit/entries/{index}").get_json()
    assert full["entry"] == old
    assert leaf_of(full["entry"]) == base64.b64decode(full["leaf_hash"])
    tax = make_person("department", department="tax")
    redacted = tax.get(f"/v1/audit/entries/{index}").get_json()
    assert redacted["entry"]["redacted"] is True
    assert redacted["entry"]["features"] == ["tax.paid_12m"]
    assert "grant_id" not in redacted["entry"]
    assert "social_security" not in json.dumps(redacted["entry"])
    assert base64.b64decode(redacted["leaf_hash"]) == merkle.leaf_hash(raw)
