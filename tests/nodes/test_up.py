"""Up to the parent: overdue objections are queued once each, with their deadline; a
node without a parent queues nothing; the outbox retries a stopped receiver with
backoff on a clock and loses nothing."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from casework import store as casework_store
from casework.objections import Objection
from common.db import make_engine, migrate, write_session
from common.settings import load_settings
from gateway.node_up import forward_overdue_objections
from keys.jwk import public_jwk
from nodes import core
from nodes import store as node_store
from nodes.delivery import NodeOutbox
from tests.nodes.network import city_uscc

CITY = core.NodeIdentity("jiangyin", "320281")


@pytest.fixture
def engine(tmp_path: Path) -> sa.Engine:
    url = f"sqlite:///{tmp_path / 'city.db'}"
    migrate(url)
    return make_engine(url)


def with_parent(engine: sa.Engine) -> None:
    node_store.init_identity(engine, CITY, 1)
    jwk = public_jwk(Ed25519PrivateKey.generate().public_key())
    parent = core.make_peer(
        "jiangsu", url="http://province.test", jwk=jwk, relation="parent", region="32", own=CITY
    )
    node_store.add_peer(engine, parent, 1)


def objection(i: int, due: date) -> Objection:
    return Objection(
        id=f"obj-{i}", enterprise=city_uscc("320281", i), feature="tax.paid_12m",
        department="tax", claim="wrong", status="open", filed_at=1, filed_by="e", due=due,
    )  # fmt: skip


def queued(engine: sa.Engine) -> list[dict[str, Any]]:
    with engine.connect() as c:
        rows = c.execute(sa.select(node_store.node_outbox).order_by(node_store.node_outbox.c.seq))
        return [{**r._mapping, "payload": json.loads(r.payload)} for r in rows]


def test_overdue_objections_go_up_once_with_their_deadline(engine: sa.Engine) -> None:
    today = date(2026, 12, 7)
    with write_session(engine) as s:
        casework_store.insert(s, objection(1, today - timedelta(days=1)))
        casework_store.insert(s, objection(2, today))  # due today: not overdue yet
    assert forward_overdue_objections(engine, today) == 0  # no parent: nothing
    with_parent(engine)
    assert forward_overdue_objections(engine, today) == 1
    assert forward_overdue_objections(engine, today) == 0  # not twice
    assert forward_overdue_objections(engine, today + timedelta(days=1)) == 1  # the second
    sent = queued(engine)
    assert [m["payload"]["id"] for m in sent] == ["obj-1", "obj-2"]
    assert sent[0]["peer"] == "jiangsu" and sent[0]["kind"] == "objection_overdue"
    assert sent[0]["payload"]["due"] == "2026-12-06"


class Clock:
    def __init__(self) -> None:
        self.t = 1_000_000.0

    def __call__(self) -> float:
        return self.t


def test_a_stopped_receiver_gets_everything_in_order_after_backoff(
    engine: sa.Engine, tmp_path: Path
) -> None:
    with_parent(engine)
    with write_session(engine) as s:
        for i in range(30):
            node_store.enqueue(s, "jiangsu", "note", {"i": i}, 1)
    received: list[str] = []
    up = {"on": False}

    def handler(request: httpx.Request) -> httpx.Response:
        if not up["on"]:
            raise httpx.ConnectError("connection refused")
        body = json.loads(request.content)
        received.extend(m["id"] for m in body["messages"])
        return httpx.Response(200, json={"accepted": len(body["messages"]), "duplicates": 0})

    clock = Clock()
    settings = load_settings(
        env={"XINYI_HOME": str(tmp_path), "XINYI_DATABASE_URL": str(engine.url)}
    )
    outbox = NodeOutbox(
        settings, engine, lambda claims: "signed", clock=clock,
        client=httpx.Client(transport=httpx.MockTransport(handler)),
    )  # fmt: skip
    # Five minutes down: attempts back off 1, 2, 4, ... 30 s (the cap).
    for _ in range(300):
        assert outbox.deliver_due() == 0
        clock.t += 1.0
    with engine.connect() as c:
        attempts = int(c.execute(sa.select(node_store.node_peers.c.failures)).scalar_one())
    assert received == [] and 10 <= attempts <= 20  # backed off, not 300 attempts
    up["on"] = True
    clock.t += 30.0  # at most the cap later, the next attempt is due
    assert outbox.deliver_due() == 30
    assert received == [f"jiangyin:{i}" for i in range(1, 31)]
    with engine.connect() as c:
        assert node_store.outbox_depth(c) == 0


def test_grade_counts_go_up_by_region(engine: sa.Engine) -> None:
    from gateway.node_up import grade_counts_by_region
    from grading.service import grades

    def row(uscc: str, grade: int) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for c in grades.c:
            if not c.nullable:
                values[c.name] = "" if isinstance(c.type, sa.String) else 0
        return {**values, "month": "2026-11", "uscc": uscc, "grade": grade}

    with engine.begin() as c:
        c.execute(
            grades.insert(),
            [
                row(city_uscc("320281", 1), 0),
                row(city_uscc("320281", 2), 0),
                row(city_uscc("320281", 3), 1),
                row(city_uscc("320282", 4), 2),
            ],
        )
    counts = grade_counts_by_region(engine, "2026-11")
    assert counts == {
        "320281": {"grade_高级": 2, "grade_一级": 1},
        "320282": {"grade_备选": 1},
    }
    assert grade_counts_by_region(engine, "2026-10") == {}
    with_parent(engine)
    with write_session(engine) as s:
        # Jiangyin's own region only: 320282 is counted by the node that holds it.
        assert node_store.push_statistics(s, "2026-11", counts, 1) == 1
    sent = queued(engine)
    assert [(m["kind"], m["payload"]["region"]) for m in sent] == [("statistics", "320281")]
    assert sent[0]["payload"]["figures"] == {"grade_高级": 2, "grade_一级": 1}


def test_a_message_refused_for_good_is_set_aside_and_holds_nothing_up(
    engine: sa.Engine, tmp_path: Path
) -> None:
    with_parent(engine)
    with write_session(engine) as s:
        for i in range(10):
            node_store.enqueue(s, "jiangsu", "note", {"i": i}, 1)
    received: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        ids = [m["id"] for m in json.loads(request.content)["messages"]]
        if "jiangyin:4" in ids:  # the peer refuses the whole batch holding it
            return httpx.Response(403, json={"error": "node_region_not_served", "message": "x"})
        received.extend(ids)
        return httpx.Response(200, json={"accepted": len(ids), "duplicates": 0})

    settings = load_settings(
        env={"XINYI_HOME": str(tmp_path), "XINYI_DATABASE_URL": str(engine.url)}
    )
    outbox = NodeOutbox(
        settings, engine, lambda claims: "signed", clock=Clock(),
        client=httpx.Client(transport=httpx.MockTransport(handler)),
    )  # fmt: skip
    assert outbox.deliver_due() == 9
    assert received == [f"jiangyin:{i}" for i in range(1, 11) if i != 4]
    with engine.connect() as c:
        assert node_store.outbox_depth(c) == 0
        assert node_store.refused(c, "jiangsu") == [(4, "node_region_not_served")]
