"""The audit endpoints over HTTP: who sees which rows, proofs that verify against the
published checkpoint, witnesses cosigning through the API, and fail-closed logging."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from audit import merkle
from audit.checkpoint import open_checkpoint
from audit.note import ALG_COSIGNATURE_V1, Ed25519Signer, Verifier, parse_note
from audit.witness import WitnessState
from cli.audit import run_witness
from common.db import is_sqlite
from common.errors import Error
from tests.gateway.conftest import ENTERPRISE, OTHER_ENTERPRISE, Bank, consent_body, grant_for


@pytest.fixture
def activity(
    app: Flask,
    client: FlaskClient,
    make_bank: Callable[..., Bank],
    make_person: Callable[..., FlaskClient],
) -> dict[str, object]:
    """Two banks ask two enterprises; one approves. Entries are integrated and a
    checkpoint is published, as the background loop would."""
    bank_a, bank_b = make_bank("bank_a"), make_bank("bank_b")
    enterprise = make_person("enterprise")
    grant_for(bank_a, client, enterprise)  # tax + social_security: request and approval
    resp = bank_b.post(
        client, "/v1/consents", consent_body(enterprise=OTHER_ENTERPRISE, categories=["utilities"])
    )
    assert resp.status_code == 201
    app.extensions["xinyi"].audit.background_step()
    app.extensions["xinyi"].audit.checkpoint(force=True)
    return {"bank_a": bank_a, "bank_b": bank_b, "enterprise": enterprise}


def indexes(resp: object) -> list[int]:
    body = resp.get_json()  # type: ignore[attr-defined]
    return [e["index"] for e in body["entries"]]


def test_each_caller_sees_only_its_own_rows(
    activity: dict[str, object],
    client: FlaskClient,
    make_person: Callable[..., FlaskClient],
) -> None:
    bank_a, bank_b = activity["bank_a"], activity["bank_b"]
    assert isinstance(bank_a, Bank) and isinstance(bank_b, Bank)
    enterprise = activity["enterprise"]
    assert isinstance(enterprise, FlaskClient)
    assert indexes(bank_a.get(client, "/v1/audit/entries")) == [0, 1]
    assert indexes(bank_b.get(client, "/v1/audit/entries")) == [2]
    assert indexes(enterprise.get("/v1/audit/entries")) == [0, 1]
    tax = make_person("department", department="tax")
    assert indexes(tax.get("/v1/audit/entries")) == [0, 1]
    utilities = make_person("department", department="utilities")
    assert indexes(utilities.get("/v1/audit/entries")) == [2]
    court = make_person("department", department="court")
    assert indexes(court.get("/v1/audit/entries")) == []
    page = tax.get("/v1/audit/entries?after=-1&limit=1").get_json()
    assert [e["index"] for e in page["entries"]] == [0] and page["next"] == 0
    page = tax.get("/v1/audit/entries?after=0&limit=1").get_json()
    assert [e["index"] for e in page["entries"]] == [1] and page["next"] == 1
    one = tax.get("/v1/audit/entries/1").get_json()
    assert one["entry"]["decision"] == "allowed" and one["entry"]["institution"] == "bank_a"
    assert "value" not in one["entry"]
    assert court.get("/v1/audit/entries/1").status_code == 404
    assert bank_b.get(client, "/v1/audit/entries/0").status_code == 404
    assert client.get("/v1/audit/entries").status_code == 401
    assert tax.get("/v1/audit/entries?after=x").get_json()["error"] == "invalid_query"


def test_inclusion_and_consistency_proofs_verify_against_the_published_checkpoint(
    activity: dict[str, object], app: Flask, client: FlaskClient
) -> None:
    enterprise = activity["enterprise"]
    assert isinstance(enterprise, FlaskClient)
    vkey = client.get("/v1/audit/vkey")
    assert vkey.status_code == 200 and vkey.mimetype == "text/plain"
    log_key = Verifier.from_vkey(vkey.text)
    resp = client.get("/v1/audit/checkpoint")
    assert resp.mimetype == "text/plain"
    cp = open_checkpoint(resp.text, [log_key]).checkpoint
    assert cp.origin == app.extensions["xinyi"].settings.config.audit.origin and cp.size == 3
    row = enterprise.get("/v1/audit/entries/1").get_json()
    proof = enterprise.get("/v1/audit/proof/inclusion?index=1").get_json()
    assert proof["size"] == 3
    leaf = base64.b64decode(row["leaf_hash"])
    hashes = [base64.b64decode(h) for h in proof["hashes"]]
    assert merkle.verify_inclusion(1, 3, leaf, hashes, cp.root)
    leaves = client.get("/v1/audit/leaves?start=0&end=3")
    assert leaves.mimetype == "application/octet-stream" and leaves.data[32:64] == leaf
    assert merkle.root_from_leaves([leaves.data[i : i + 32] for i in (0, 32, 64)]) == cp.root
    first = client.get("/v1/audit/checkpoint?size=3").text
    assert first == resp.text
    consistency = client.get("/v1/audit/proof/consistency?first=1&second=3").get_json()
    assert consistency["first"] == 1 and len(consistency["hashes"]) > 0
    assert client.get("/v1/audit/proof/consistency?first=1&second=99").status_code == 400
    assert client.get("/v1/audit/checkpoint?size=2").status_code == 404


def test_a_department_witness_cosigns_through_the_api(
    activity: dict[str, object],
    app: Flask,
    client: FlaskClient,
    tmp_path: Path,
    make_bank: Callable[..., Bank],
) -> None:
    svc = app.extensions["xinyi"]
    key = tmp_path / "tax.key"
    signer = Ed25519Signer.generate("xinyi-witness/tax")
    key.write_text(signer.private_key_text())
    state = tmp_path / "tax-witness.json"
    http = httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://gateway")
    with pytest.raises(Error) as refused:
        run_witness(http, department="tax", state_path=state, key_path=key)
    assert refused.value.code == "witness_unknown"
    assert not state.exists()
    svc.audit.register_witness("tax", signer.verifier(ALG_COSIGNATURE_V1).vkey)
    first = run_witness(http, department="tax", state_path=state, key_path=key)
    assert first.size == 3
    served = parse_note(client.get("/v1/audit/checkpoint").text)
    assert [s.name for s in served.signatures][1:] == ["xinyi-witness/tax"]
    assert client.get("/v1/audit/witnesses").get_json()["witnesses"][0]["department"] == "tax"
    # The log grows; the witness checks consistency and the new entries, and cosigns.
    make_bank("bank_c")
    bank_c = make_bank("bank_d")
    bank_c.post(client, "/v1/consents", consent_body())
    svc.audit.background_step()
    svc.audit.checkpoint(force=True)
    second = run_witness(http, department="tax", state_path=state, key_path=key)
    assert second.size == 4
    assert WitnessState.from_json(state.read_text()).size == 4


def refuse_audit_writes(app: Flask) -> None:
    """The audit store starts refusing writes (a full disk, a broken replica...)."""
    engine = app.extensions["xinyi"].engine
    with engine.begin() as conn:
        if is_sqlite(engine):
            conn.execute(
                sa.text(
                    "CREATE TRIGGER refuse BEFORE INSERT ON audit_queue "
                    "BEGIN SELECT RAISE(ABORT, 'audit store refuses writes'); END"
                )
            )
        else:
            conn.execute(
                sa.text(
                    "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
                    "$$ BEGIN RAISE EXCEPTION 'audit store refuses writes'; END $$"
                )
            )
            conn.execute(
                sa.text(
                    "CREATE TRIGGER refuse BEFORE INSERT ON audit_queue "
                    "FOR EACH ROW EXECUTE FUNCTION refuse()"
                )
            )


def test_a_consent_decision_whose_audit_write_fails_is_not_made(
    app: Flask, client: FlaskClient, make_bank: Callable[..., Bank]
) -> None:
    bank = make_bank("bank_a")
    refuse_audit_writes(app)
    resp = bank.post(client, "/v1/consents", consent_body())
    assert resp.status_code == 503
    assert resp.get_json()["error"] == "audit_unavailable"
    assert bank.get(client, "/v1/consents").get_json()["consents"] == []


def test_cosignatures_must_come_from_a_registered_witness(
    activity: dict[str, object], client: FlaskClient
) -> None:
    cp = parse_note(client.get("/v1/audit/checkpoint").text)
    stranger = Ed25519Signer.generate("xinyi-witness/nobody")
    line = stranger.cosign(cp.text, 1_800_000_000).line()
    resp = client.post("/v1/audit/cosignatures", json={"size": 3, "cosignature": line})
    assert resp.status_code == 403 and resp.get_json()["error"] == "witness_unknown"
    resp = client.post("/v1/audit/cosignatures", json={"size": "3", "cosignature": line})
    assert resp.status_code == 400
    resp = client.post("/v1/audit/cosignatures", json={"size": 3, "cosignature": "nonsense"})
    assert resp.status_code == 400 and resp.get_json()["error"] == "note_invalid"


def test_a_data_request_whose_audit_write_fails_serves_nothing_and_uses_nothing(
    app: Flask,
    client: FlaskClient,
    make_bank: Callable[..., Bank],
    make_person: Callable[..., FlaskClient],
) -> None:
    bank, enterprise = make_bank("bank_a"), make_person("enterprise")
    grant = grant_for(bank, client, enterprise, ops=["verify", "report"], categories=["tax"])
    refuse_audit_writes(app)
    body = {"grant": grant, "feature": "tax.paid_12m", "op": ">=", "value": 1}
    for resp in (
        bank.post(client, "/v1/verify", body),
        bank.get(client, f"/v1/enterprises/{ENTERPRISE}/report", query_string={"grant": grant}),
        bank.get(client, f"/v1/enterprises/{ENTERPRISE}/report"),
    ):
        assert resp.status_code == 503
        assert set(resp.get_json()) == {"error", "message"}
        assert resp.get_json()["error"] == "audit_unavailable"
    consents = enterprise.get("/v1/consents").get_json()["consents"]
    assert [c["uses"] for c in consents] == [0]


def test_every_audit_route_is_documented(app: Flask, client: FlaskClient) -> None:
    paths = client.get("/openapi.json").get_json()["paths"]
    routes = [r for r in app.url_map.iter_rules() if r.endpoint.startswith("audit.")]
    assert len(routes) == 10  # with /v1/audit/key-transitions
    for rule in routes:
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
            assert method.lower() in paths[path], (path, method)


def test_key_transitions_are_public(client: FlaskClient) -> None:
    """The log's signed checkpoint-key changes, for witnesses (none before a rotation)."""
    resp = client.get("/v1/audit/key-transitions")
    assert resp.status_code == 200 and resp.get_json() == {"transitions": []}
