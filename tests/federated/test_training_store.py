"""Training sessions in the database (SQLite and PostgreSQL): ownership, compare-and-set
state, the sealed secret context."""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pytest
from sqlalchemy import Engine, text

from federated import training_store as store
from federated.models import Standardization
from federated.training import GatewayState, TrainingPlan

PASS = b"test-passphrase-not-secret"


def _institution(engine: Engine, iid: str) -> None:
    now = int(time.time())
    with engine.begin() as c:
        c.execute(
            text(
                "INSERT INTO institutions (id, name, jwk, status, created_at, status_changed_at) "
                "VALUES (:id, :id, '{}', 'active', :now, :now)"
            ),
            {"id": iid, "now": now},
        )


def _record(session_id: str = "trn_1", institution: str = "bank-a") -> store.SessionRecord:
    plan = TrainingPlan(session_id, 10, 2, 3, 2, epochs=2, batch_size=16)
    train, val = np.arange(20.0).reshape(10, 2), np.ones((2, 2))
    return store.SessionRecord(
        id=session_id,
        institution_id=institution,
        status="training",
        plan=plan,
        gateway_columns=("tax.paid_12m", "log1p(utilities.power_kwh)"),
        bank_features=("income", "age", "limit"),
        enterprises=store.Enterprises(
            tuple(f"U{k}" for k in range(10)), ("V1", "V2"), {"U0": "grant-0"}
        ),
        refused=[{"uscc": "X", "error": "grant_revoked"}],
        standardization=Standardization((1.0, 2.0), (3.0, 4.0), (3.0, 3.0)),
        features=store.pack_features(train, val),
        bank_context=b"ctx",
        gateway_secret=store.seal(b"secret context bytes", PASS, session_id),
        state=GatewayState.initial(2),
        version=0,
    )


def test_a_session_round_trips_and_belongs_to_its_institution(engine: Engine) -> None:
    _institution(engine, "bank-a")
    _institution(engine, "bank-b")
    created = store.create_session(engine, _record())
    got = store.get_session(engine, "trn_1", "bank-a")
    assert got == created and got.version == 1
    train, val = store.unpack_features(got.features)
    assert train.shape == (10, 2) and np.array_equal(val, np.ones((2, 2)))
    assert store.unseal(got.gateway_secret, PASS, "trn_1") == b"secret context bytes"
    with pytest.raises(store.TrainingSessionNotFound):
        store.get_session(engine, "trn_1", "bank-b")
    assert [s["id"] for s in store.list_sessions(engine, "bank-a")] == ["trn_1"]
    assert store.list_sessions(engine, "bank-b") == []
    assert got.summary()["rows"] == {"train": 10, "validation": 2}


def test_state_is_compare_and_set(engine: Engine) -> None:
    _institution(engine, "bank-a")
    store.create_session(engine, _record())
    st = dataclasses.replace(GatewayState.initial(2), next_batch=1, last_seq=4)
    assert store.save_state(engine, "trn_1", 1, st) == 2
    with pytest.raises(store.ConcurrentMessage):  # a second writer that read version 1
        store.save_state(engine, "trn_1", 1, GatewayState.initial(2))
    got = store.get_session(engine, "trn_1", "bank-a")
    assert got.state == st and got.version == 2
    store.record_result(
        engine,
        "trn_1",
        2,
        status="registered",
        gateway_half={"weights": [0.1, 0.2]},
        model_id="m1",
        model_version=3,
    )
    got = store.get_session(engine, "trn_1", "bank-a")
    assert (got.status, got.model_id, got.model_version) == ("registered", "m1", 3)
    assert got.gateway_half == {"weights": [0.1, 0.2]}


def test_the_sealed_secret_needs_the_passphrase_and_its_session() -> None:
    blob = store.seal(b"sk", PASS, "trn_1")
    assert b"sk" not in blob[4:]
    with pytest.raises(store.SealBroken):
        store.unseal(blob, b"another passphrase", "trn_1")
    with pytest.raises(store.SealBroken):
        store.unseal(blob, PASS, "trn_2")  # moved to another session's row
    with pytest.raises(store.SealBroken):
        store.unseal(blob[:-1] + bytes([blob[-1] ^ 1]), PASS, "trn_1")
