"""Model governance at training time (issue 12) with the shipped minimums, and audit
amplification by junk training pairs (issue 13), mounted as a bank would over HTTP."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from structlog.testing import capture_logs

from federated.he import SecretContext
from federated.training import PARAMS
from tests.gateway.conftest import Bank
from tests.gateway.test_train_api import COLUMNS, grants, uscc


@pytest.fixture
def bank(make_bank: Callable[..., Bank]) -> Bank:
    return make_bank("small_bank")


def _body(pairs: list[tuple[str, str]], columns: list[str], **kw: Any) -> dict[str, Any]:
    secret = SecretContext.generate(PARAMS)
    return {
        "enterprises": [{"uscc": u, "grant": g} for u, g in pairs],
        "gateway_features": columns,
        "bank_features": ["balance", "years"],
        "context": base64.b64encode(secret.public_bytes()).decode(),
        "plan": {"epochs": 1},
        **kw,
    }


def _log_size(app: Flask) -> int:
    from audit import store as audit_store

    svc = app.extensions["xinyi"]
    svc.audit.integrate_pending()
    with svc.engine.connect() as conn:
        return audit_store.read_state(conn).size


def _uses(bank: Bank, client: FlaskClient) -> list[int]:
    return [c["uses"] for c in bank.get(client, "/v1/consents").get_json()["consents"]]


def test_the_two_row_one_feature_session_is_refused_and_changes_nothing(
    app: Flask, client: FlaskClient, bank: Bank
) -> None:
    cfg = app.extensions["xinyi"].settings.config.training
    assert (cfg.min_enterprises, cfg.min_gateway_features) == (200, 4)
    two = grants(app, client, bank, [uscc(1), uscc(2)], ops=["train"])
    pairs = list(two.items())
    size = _log_size(app)
    cases = [
        (["tax.paid_12m"], "too_few_gateway_features"),  # the attack of the issue
        (COLUMNS, "too_few_enterprises"),  # enough columns, two rows
    ]
    for columns, code in cases:
        with capture_logs() as logs:
            r = bank.post(client, "/v1/training/sessions", _body(pairs, columns))
        assert (r.status_code, r.get_json()["error"]) == (403, code)
        assert any(e["event"] == "training_session_refused" and e["code"] == code for e in logs), (
            logs
        )
    assert _uses(bank, client) == [0, 0]  # no grant used
    assert _log_size(app) == size  # nothing logged against the enterprises
    assert bank.get(client, "/v1/training/sessions").get_json()["sessions"] == []


def test_another_owners_model_id_is_refused_at_opening(
    app: Flask, client: FlaskClient, bank: Bank
) -> None:
    two = grants(app, client, bank, [uscc(1), uscc(2)], ops=["train"])
    body = _body(list(two.items()), COLUMNS, model_id="victim_bank/sme-risk")
    r = bank.post(client, "/v1/training/sessions", body)
    assert (r.status_code, r.get_json()["error"]) == (403, "model_not_owner")
    body = _body(list(two.items()), COLUMNS, model_id="x" * 60)  # too long with the prefix
    r = bank.post(client, "/v1/training/sessions", body)
    assert (r.status_code, r.get_json()["error"]) == (400, "invalid_json")
    assert _uses(bank, client) == [0, 0]


def test_three_thousand_junk_training_pairs_write_a_constant_number_of_entries(
    app: Flask, client: FlaskClient, bank: Bank, make_bank: Callable[..., Bank]
) -> None:
    # Junk: garbage, a grant of another bank, a real grant of this bank about another
    # enterprise than the pair names.
    other = make_bank("other_bank")
    theirs = grants(app, client, other, [uscc(5000)], ops=["train"])[uscc(5000)]
    ours = grants(app, client, bank, [uscc(5001)], ops=["train"])[uscc(5001)]
    pairs = [(uscc(10_000 + k), f"junk.{k}.x") for k in range(2998)]
    pairs += [(uscc(9998), theirs), (uscc(9999), ours)]
    size = _log_size(app)
    r = bank.post(client, "/v1/training/sessions", _body(pairs, COLUMNS))
    assert (r.status_code, r.get_json()["error"]) == (403, "too_few_enterprises")
    written = _log_size(app) - size
    assert written <= 2, written
    assert _uses(bank, client) == [0]
