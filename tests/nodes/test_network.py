"""Three real nodes (province 32, cities 320281 and 320282), each its own database and
port: a bank registered at the province verifies a Jiangyin enterprise under a grant
Jiangyin issued, both logs hold their entry; peers' bad inputs are refused and change
nothing; a suspended child is refused; a city killed during an upward push catches up
after restart with nothing lost or doubled."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import sqlalchemy as sa

from bank.client import GatewayClient
from common.db import make_engine, write_session
from common.settings import load_settings
from gateway.api import schemas
from keys import KeyRing
from nodes import core
from nodes import store as node_store
from nodes.delivery import ASSERTION_HEADER
from tests.conftest import BACKENDS, PG_URL
from tests.nodes.network import BANK_ID, PASSWORD, Network, Node, city_uscc, three_nodes


@pytest.fixture(scope="module", params=BACKENDS)
def net(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Network]:
    if request.param == "postgresql" and not PG_URL:
        pytest.skip("XINYI_TEST_DATABASE_URL not set")
    root = tmp_path_factory.mktemp(f"nodes-{request.param}")
    with three_nodes(root, PG_URL if request.param == "postgresql" else None) as network:
        yield network


def bank(net: Network) -> GatewayClient:
    return GatewayClient(net.province.url, BANK_ID, net.bank_key)


def enterprise_session(node: Node, login: str) -> tuple[httpx.Client, str]:
    client = httpx.Client(base_url=node.url, timeout=30)
    resp = client.post("/v1/session", json={"login": login, "password": PASSWORD})
    assert resp.status_code == 200, resp.text
    return client, str(resp.json()["csrf_token"])


def approved_grant(net: Network, ops: list[str]) -> tuple[str, dict[str, Any]]:
    b = bank(net)
    created = b.call(
        "POST",
        "/v1/consents",
        {
            "enterprise": net.enterprise,
            "purpose": "working_capital_loan",
            "ops": ops,
            "categories": ["tax"],
            "duration_days": 30,
            "max_uses": 10,
        },
    )
    assert created["status"] == "pending" and isinstance(created["relay_audit_index"], int)
    # The enterprise approves at its own node.
    ent, csrf = enterprise_session(net.jiangyin, net.enterprise_login)
    resp = ent.post(f"/v1/consents/{created['id']}/approve", headers={"X-CSRF-Token": csrf})
    assert resp.status_code == 200, resp.text
    # The bank reads the consent through its own node.
    view = b.call("GET", f"/v1/consents/{created['id']}")
    schemas.ConsentView.model_validate(view)
    assert view["status"] == "active"
    return str(view["grant"]), view


def node_signer(node: Node) -> KeyRing:
    return KeyRing(load_settings(env=node.env))


def signed(node: Node, ring: KeyRing, to: Node, endpoint: str, body: bytes, **extra: Any) -> str:
    claims = core.assertion_claims(
        sender=node.name, audience=to.url + endpoint, body=body, now=int(time.time()),
        lifetime=60, **extra,
    )  # fmt: skip
    return ring.sign_jwt("nodes", claims, headers={"typ": core.TYP_NODE})


def post(to: Node, path: str, body: bytes, assertion: str) -> httpx.Response:
    return httpx.post(
        to.url + path,
        content=body,
        headers={"Content-Type": "application/json", ASSERTION_HEADER: assertion},
        timeout=30,
    )


def inbox_ids(node: Node, peer: str) -> list[str]:
    engine = make_engine(node.database_url)
    try:
        with engine.connect() as c:
            rows = c.execute(
                sa.select(node_store.node_inbox.c.message_id).where(
                    node_store.node_inbox.c.peer == peer
                )
            )
            return [r.message_id for r in rows]
    finally:
        engine.dispose()


# The relay ------------------------------------------------------------------------------
def test_a_province_bank_verifies_a_city_enterprise_under_the_citys_grant(net: Network) -> None:
    grant, _ = approved_grant(net, ["verify", "report"])
    claims = jwt.decode(grant, options={"verify_signature": False})
    # The holding node issued the grant, to the institution its parent vouches for.
    assert claims["iss"] == net.jiangyin.url
    assert claims["aud"] == "node:jiangsu/bank-prov"
    b = bank(net)
    yes = b.call(
        "POST",
        "/v1/verify",
        {"grant": grant, "feature": "tax.paid_12m", "op": ">=", "value": 100000},
    )
    no = b.call(
        "POST",
        "/v1/verify",
        {"grant": grant, "feature": "tax.paid_12m", "op": ">=", "value": 900000},
    )
    schemas.Verified.model_validate(yes)
    assert yes["result"] is True and no["result"] is False
    report = b.call("GET", f"/v1/enterprises/{net.enterprise}/report", params={"grant": grant})
    schemas.Report.model_validate(report)
    assert report["banded"]["tax.paid_12m"] is not None

    # The holding node's log: the access, by the vouched institution (the enterprise
    # reads entries about itself).
    ent, _ = enterprise_session(net.jiangyin, net.enterprise_login)
    held = ent.get(f"/v1/audit/entries/{yes['audit_index']}").json()["entry"]
    assert held["institution"] == "node:jiangsu/bank-prov"
    assert held["operation"] == "verify" and held["decision"] == "allowed"
    assert held["enterprise"] == net.enterprise
    # The relaying node's log: the relay, by the bank itself.
    relayed = b.call("GET", f"/v1/audit/entries/{yes['relay_audit_index']}")["entry"]
    assert relayed["institution"] == BANK_ID
    assert relayed["operation"] == "relay" and relayed["decision"] == "relayed:jiangyin"
    assert relayed["enterprise"] == net.enterprise
    # The province holds no access entry of its own about that verification.
    assert relayed["features"] == [] and relayed.get("grant_id") is None


def test_the_grant_is_useless_outside_the_relay(net: Network, tmp_path: Path) -> None:
    """A grant issued through the province names node:jiangsu/bank-prov: a bank of
    Jiangyin calling Jiangyin directly with it is refused; inputs that name no valid
    enterprise, or enterprises of two nodes, are not relayed."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from bank.errors import BankError
    from bank.profile import public_jwk
    from tests.tokens import unsigned

    grant, _ = approved_grant(net, ["verify"])
    key = Ed25519PrivateKey.generate()
    (tmp_path / "jy.jwk").write_text(json.dumps(public_jwk(key)), encoding="utf-8")
    net.jiangyin.cli(
        "admin",
        "add-institution",
        "bank-jy",
        "--name",
        "江阴银行",
        "--jwk",
        str(tmp_path / "jy.jwk"),
    )
    local = GatewayClient(net.jiangyin.url, "bank-jy", key)
    with pytest.raises(BankError) as refused:
        local.call(
            "POST",
            "/v1/verify",
            {"grant": grant, "feature": "tax.paid_12m", "op": ">=", "value": 1},
        )
    assert refused.value.code == "grant_wrong_audience"
    b = bank(net)
    # Not a USCC: answered (refused) by the province itself, never relayed.
    bad = b._send(
        "GET", "/v1/enterprises/9132028100000001XZ/report",
        headers={"Authorization": f"Bearer {b.token()}"},
    )  # fmt: skip
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_uscc"
    # One batch about enterprises of two nodes.
    other = unsigned({"sub": city_uscc("320282", 5), "aud": "node:jiangsu/bank-prov"})
    mixed = b._send(
        "POST", "/v1/score/batch",
        json={"grants": [grant, other], "model": "m", "context": "c", "ciphertexts": ["AA", "AA"]},
        headers={"Authorization": f"Bearer {b.token()}"},
    )  # fmt: skip
    assert mixed.status_code == 403 and mixed.json()["error"] == "node_relay_refused"


# Bad input from a peer --------------------------------------------------------------------
def test_a_forged_node_assertion_is_refused(net: Network) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    body = json.dumps(
        {"messages": [{"id": "jiangsu:1", "kind": "note", "payload": {}, "created_at": 1}]}
    ).encode()
    forged_key = Ed25519PrivateKey.generate()
    claims = core.assertion_claims(
        sender="jiangsu", audience=net.jiangyin.url + "/v1/node/messages", body=body,
        now=int(time.time()), lifetime=60,
    )  # fmt: skip
    forged = jwt.encode(claims, forged_key, algorithm="EdDSA", headers={"typ": core.TYP_NODE})
    resp = post(net.jiangyin, "/v1/node/messages", body, forged)
    assert resp.status_code == 401 and resp.json()["error"] == "node_assertion_invalid"
    # An unknown node.
    stranger = jwt.encode(
        {**claims, "iss": "nobody", "sub": "nobody"}, forged_key, algorithm="EdDSA",
        headers={"typ": core.TYP_NODE},
    )  # fmt: skip
    resp = post(net.jiangyin, "/v1/node/messages", body, stranger)
    assert resp.status_code == 401 and resp.json()["error"] == "node_unknown"
    assert "jiangsu:1" not in inbox_ids(net.jiangyin, "jiangsu")


def test_bad_peer_inputs_are_refused_and_change_nothing(net: Network) -> None:
    ring = node_signer(net.jiangyin)
    path = "/v1/node/messages"

    def batch(*messages: dict[str, Any]) -> bytes:
        return json.dumps({"messages": list(messages)}).encode()

    note = {"id": "jiangyin:9001", "kind": "note", "payload": {}, "created_at": 1}
    good = batch(note)
    token = signed(net.jiangyin, ring, net.province, path, good)
    first = post(net.province, path, good, token)
    assert first.status_code == 200 and first.json() == {"accepted": 1, "duplicates": 0}
    # The same assertion again: a replay.
    again = post(net.province, path, good, token)
    assert again.status_code == 401 and again.json()["error"] == "node_assertion_replayed"
    # The same message id in a fresh assertion: idempotent, no second effect.
    fresh = post(net.province, path, good, signed(net.jiangyin, ring, net.province, path, good))
    assert fresh.status_code == 200 and fresh.json() == {"accepted": 0, "duplicates": 1}
    # An assertion for another body.
    other = batch({**note, "id": "jiangyin:9002"})
    resp = post(net.province, path, other, signed(net.jiangyin, ring, net.province, path, good))
    assert resp.status_code == 401 and resp.json()["error"] == "node_assertion_invalid"
    # A region it does not serve: the whole batch is refused, the good message too.
    stats = {
        "id": "jiangyin:9003", "kind": "statistics", "created_at": 1,
        "payload": {"region": "320282", "month": "2026-11", "figures": {"applications": 5}},
    }  # fmt: skip
    both = batch({**note, "id": "jiangyin:9004"}, stats)
    resp = post(net.province, path, both, signed(net.jiangyin, ring, net.province, path, both))
    assert resp.status_code == 403 and resp.json()["error"] == "node_region_not_served"
    # A negative figure (it would take from the parent's totals).
    negative = batch({**stats, "id": "jiangyin:9005", "payload": {
        "region": "320281", "month": "2026-11", "figures": {"disbursed": -5},
    }})  # fmt: skip
    resp = post(
        net.province, path, negative, signed(net.jiangyin, ring, net.province, path, negative)
    )
    assert resp.status_code == 400 and resp.json()["error"] == "node_message_invalid"
    # Somebody else's message ids.
    theirs = batch({**note, "id": "zhangjg:1"})
    resp = post(net.province, path, theirs, signed(net.jiangyin, ring, net.province, path, theirs))
    assert resp.status_code == 400 and resp.json()["error"] == "node_message_invalid"
    ids = inbox_ids(net.province, "jiangyin")
    assert "jiangyin:9001" in ids
    assert not {"jiangyin:9002", "jiangyin:9003", "jiangyin:9004", "jiangyin:9005"} & set(ids)
    # A relayed call for an enterprise the receiving node does not hold.
    relay_body = json.dumps(
        {"grant": "x.y.z", "feature": "tax.paid_12m", "op": ">=", "value": 1}
    ).encode()
    prov_ring = node_signer(net.province)
    resp = post(
        net.jiangyin, "/v1/node/relay", b"",
        signed(
            net.province, prov_ring, net.jiangyin, "/v1/node/relay", b"",
            institution=BANK_ID, method="GET",
            path=f"/v1/enterprises/{city_uscc('320282', 3)}/report", query="",
        ),
    )  # fmt: skip
    assert resp.status_code == 403 and resp.json()["error"] == "node_region_not_served"
    assert relay_body  # the body form is covered by the relay test above


def test_a_suspended_child_is_refused(net: Network) -> None:
    grant, _ = approved_grant(net, ["verify"])
    net.province.cli("node", "suspend", "jiangyin")
    try:
        time.sleep(1.2)  # the province's routing directory is re-read every second
        ring = node_signer(net.jiangyin)
        body = json.dumps(
            {"messages": [{"id": "jiangyin:9100", "kind": "note", "payload": {}, "created_at": 1}]}
        ).encode()
        resp = post(
            net.province,
            "/v1/node/messages",
            body,
            signed(net.jiangyin, ring, net.province, "/v1/node/messages", body),
        )
        assert resp.status_code == 403 and resp.json()["error"] == "node_suspended"
        b = bank(net)
        resp = b._send(
            "POST",
            "/v1/verify",
            json={"grant": grant, "feature": "tax.paid_12m", "op": ">=", "value": 1},
            headers={"Authorization": f"Bearer {b.token()}"},
        )
        assert resp.status_code == 403 and resp.json()["error"] == "node_suspended"
        assert "jiangyin:9100" not in inbox_ids(net.province, "jiangyin")
    finally:
        net.province.cli("node", "resume", "jiangyin")
    time.sleep(1.2)
    b = bank(net)
    ok = b.call(
        "POST", "/v1/verify", {"grant": grant, "feature": "tax.paid_12m", "op": ">=", "value": 1}
    )
    assert ok["result"] is True


# Up: statistics and the durable outbox ----------------------------------------------------
def operator_session(node: Node) -> httpx.Client:
    login = "op-" + uuid.uuid4().hex[:6]
    node.cli(
        "admin", "add-user", "--role", "operator", "--login", login, "--password-stdin",
        stdin=PASSWORD + "\n",
    )  # fmt: skip
    client, csrf = enterprise_session(node, login)
    client.headers["X-CSRF-Token"] = csrf
    return client


def pushed(node: Node, child: str, month: str, until: Any, timeout: float = 60) -> list[Any]:
    """The figures ``child`` pushed to ``node`` for ``month``, once ``until`` holds."""
    engine = make_engine(node.database_url)
    try:
        deadline = time.monotonic() + timeout
        while True:
            rows = [r for r in node_store.children_statistics(engine, month) if r["node"] == child]
            if until(rows) or time.monotonic() > deadline:
                return rows
            time.sleep(0.2)
    finally:
        engine.dispose()


def test_a_loan_recorded_at_a_city_counts_in_the_provinces_statistics_after_the_push(
    net: Network, tmp_path: Path
) -> None:
    from openpyxl import load_workbook

    from financing.statistics import month_of
    from tests.nodes.loans import record_loan

    month = month_of(time.time())
    operator = operator_session(net.province)
    before = operator.get("/v1/statistics", params={"month": month}).json()
    record_loan(net.jiangyin, city_uscc("320281", 41), 700_000, 4.0)
    record_loan(net.jiangyin, city_uscc("320281", 42), 300_000, 3.5)
    # Nothing moves up before the push.
    assert operator.get("/v1/statistics", params={"month": month}).json() == before
    out = net.jiangyin.cli("node", "push-statistics", "--month", month)
    assert "messages queued for the parent" in out
    rows = pushed(net.province, "jiangyin", month, lambda r: r and r[0].get("approved", 0) >= 2)
    assert [r["region"] for r in rows] == ["320281"]
    assert rows[0]["disbursed"] == 1_000_000 and rows[0]["weighted_rate"] == 3.85

    resp = operator.get("/v1/statistics", params={"month": month})
    assert resp.status_code == 200, resp.text
    stats = resp.json()
    schemas.Statistics.model_validate(stats)
    city = [r for r in stats["by_region"] if r.get("node") == "jiangyin"]
    assert len(city) == 1 and city[0]["region"] == "320281"
    assert city[0]["approved"] == 2 and city[0]["disbursed"] == 1_000_000
    assert city[0]["credit_loan_share"] == 1.0 and city[0]["weighted_rate"] == 3.85
    # The province's own top-level figures count its children's.
    assert stats["disbursed"] == before["disbursed"] + 1_000_000
    assert stats["approved"] == before["approved"] + 2
    assert stats["disbursed"] == sum(r["disbursed"] for r in stats["by_region"])
    # One region asked: only its rows, the child's included.
    one = operator.get("/v1/statistics", params={"month": month, "region": "320281"}).json()
    assert [(r["region"], r.get("node")) for r in one["by_region"]] == [("320281", "jiangyin")]
    assert one["disbursed"] == 1_000_000
    # A bank at the province does not read them.
    b = bank(net)
    refused = b._send(
        "GET", "/v1/statistics", params={"month": month},
        headers={"Authorization": f"Bearer {b.token()}"},
    )  # fmt: skip
    assert refused.status_code == 403
    # The province's xlsx export carries the child's row, marked by node.
    xlsx = tmp_path / "stats.xlsx"
    net.province.cli("stats", "export", "--month", month, "--out", str(xlsx))
    sheet = list(load_workbook(xlsx)["按地区 By region"].iter_rows(values_only=True))
    header = list(sheet[0])
    marked = [row for row in sheet[1:] if row[header.index("node")] == "jiangyin"]
    assert [(row[0], row[header.index("disbursed")]) for row in marked] == [("320281", 1_000_000)]


def test_a_city_killed_during_an_upward_push_catches_up_without_loss_or_doubling(
    net: Network, tmp_path: Path
) -> None:
    from financing.statistics import month_of
    from gateway.node_up import statistics_to_push
    from tests.nodes.loans import record_loan

    city = net.zhangjg
    settings = load_settings(env=city.env)
    engine = make_engine(city.database_url)
    month = month_of(time.time())
    total = 1500
    try:
        # Two pushes of this month's statistics (what `xinyi node push-statistics`
        # queues), one loan apart, around many other messages: the later one wins.
        record_loan(city, city_uscc("320282", 51), 500_000, 4.2)
        first = statistics_to_push(settings, engine, month)
        record_loan(city, city_uscc("320282", 52), 250_000, 3.6)
        second = statistics_to_push(settings, engine, month)
        assert first["320282"]["approved"] == 1 and second["320282"]["approved"] == 2
        with write_session(engine) as s:
            assert node_store.push_statistics(s, month, first, int(time.time())) == 1
            for _ in range(total - 2):
                node_store.enqueue(s, "jiangsu", "note", {"n": 1}, int(time.time()))
            assert node_store.push_statistics(s, month, second, int(time.time())) == 1
        with engine.connect() as c:
            queued = [
                r.seq
                for r in c.execute(
                    sa.select(node_store.node_outbox.c.seq).where(
                        node_store.node_outbox.c.delivered_at.is_(None)
                    )
                )
            ]
        assert len(queued) == total
        # Kill the city as soon as the province has taken some, not all.
        deadline = time.monotonic() + 60
        while True:
            got = len(inbox_ids(net.province, "zhangjg"))
            if got > 0 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        city.kill()
        partial = len(inbox_ids(net.province, "zhangjg"))
        assert partial > 0
        city.start()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with engine.connect() as c:
                if node_store.outbox_depth(c) == 0:
                    break
            time.sleep(0.2)
        ids = inbox_ids(net.province, "zhangjg")
        expected = {f"zhangjg:{seq}" for seq in queued}
        assert expected <= set(ids)  # nothing lost
        assert len(ids) == len(set(ids))  # nothing doubled (the key guarantees it)
        mine = pushed(net.province, "zhangjg", month, lambda r: True)
        # The later push of the same (region, month) replaced the earlier one.
        assert [(r["region"], r["approved"], r["disbursed"]) for r in mine] == [
            ("320282", 2, 750_000)
        ]
        stats = operator_session(net.province).get("/v1/statistics", params={"month": month})
        rows = [r for r in stats.json()["by_region"] if r.get("node") == "zhangjg"]
        assert [(r["region"], r["approved"], r["disbursed"]) for r in rows] == [
            ("320282", 2, 750_000)
        ]
    finally:
        engine.dispose()


# Witnessing -------------------------------------------------------------------------------
def test_every_node_cosigns_its_peers_checkpoints_and_refuses_a_swapped_log(
    net: Network,
) -> None:
    import subprocess

    from tests.live import ROOT, XINYI

    nodes = [net.province, net.jiangyin, net.zhangjg]
    for n in nodes:
        vkey = n.cli("node", "witness-key").strip()
        for other in nodes:
            if other is not n and n.name in [
                line.split("\t")[1] for line in other.cli("node", "peers").splitlines()[1:]
            ]:
                other.cli("node", "add-witness", n.name, vkey)
    time.sleep(1.5)  # a checkpoint covering the entries so far
    for _ in range(2):
        out = net.province.cli("node", "witness")
        assert "cosigned jiangyin's" in out and "cosigned zhangjg's" in out
    assert "cosigned jiangsu's" in net.jiangyin.cli("node", "witness")
    # Jiangyin's cosignature is on the province's log.
    witnesses = httpx.get(net.province.url + "/v1/audit/witnesses", timeout=10).json()
    assert "node-jiangyin" in json.dumps(witnesses)
    # Another log served in place of Jiangyin's (a fork, as the province sees it):
    # the province refuses, exits 1 and names it.
    states = net.province.home / "node-witness"
    (states / "jiangyin.json").write_text((states / "zhangjg.json").read_text())
    proc = subprocess.run(
        [*XINYI, "node", "witness"], env=net.province.env, capture_output=True, text=True,
        timeout=120, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 1 and "REFUSED jiangyin" in proc.stderr


# Down: data sent by the parent --------------------------------------------------------------
def test_data_sent_down_loads_at_the_child_all_or_nothing_with_provenance(
    net: Network, tmp_path: Path
) -> None:
    from records import store as records
    from tests.nodes.network import PARENT_DEPARTMENT

    good = tmp_path / "subsidies.csv"
    good.write_text(f"uscc,provincial.subsidies_12m\n{net.enterprise},50000\n", encoding="utf-8")
    bad = tmp_path / "bad.csv"
    bad.write_text(
        f"uscc,provincial.subsidies_12m\n{city_uscc('320281', 2)},12\nNOT-A-USCC,5\n",
        encoding="utf-8",
    )
    net.province.cli("node", "send-down", "jiangyin", PARENT_DEPARTMENT, str(good))
    net.province.cli("node", "send-down", "jiangyin", PARENT_DEPARTMENT, str(bad))
    engine = make_engine(net.jiangyin.database_url)
    try:
        deadline = time.monotonic() + 60
        history: list[Any] = []
        while time.monotonic() < deadline:
            history = records.import_history(engine, PARENT_DEPARTMENT)
            if len(history) == 2:
                break
            time.sleep(0.2)
        rejected, loaded = history  # newest first
        assert loaded.status == "loaded" and loaded.row_count == 1
        assert loaded.file_name.startswith("node:jiangsu/jiangsu:")
        assert loaded.imported_by == "node:jiangsu"
        assert rejected.status == "rejected" and rejected.bad_rows == 1
        values = records.current_values(engine, net.enterprise, ["provincial.subsidies_12m"])
        assert values == {"provincial.subsidies_12m": 50000}
        # Nothing of the rejected file was loaded (all or nothing).
        assert (
            records.current_values(engine, city_uscc("320281", 2), ["provincial.subsidies_12m"])
            == {}
        )
    finally:
        engine.dispose()
    # A child does not send data down to its parent.
    ring = node_signer(net.jiangyin)
    body = json.dumps(
        {"messages": [{
            "id": "jiangyin:9200", "kind": "data_import", "created_at": 1,
            "payload": {"department": PARENT_DEPARTMENT, "csv": "uscc\n"},
        }]}
    ).encode()  # fmt: skip
    resp = post(
        net.province,
        "/v1/node/messages",
        body,
        signed(net.jiangyin, ring, net.province, "/v1/node/messages", body),
    )
    assert resp.status_code == 400 and resp.json()["error"] == "node_message_invalid"


# Scoring through the relay --------------------------------------------------------------
def test_a_province_bank_scores_a_city_enterprise_through_the_relay(net: Network) -> None:
    """The context is registered at the holding node through the relay (X-Xinyi-Node),
    the model is the holding node's, the grant the holding node's; the answer is an
    encrypted logit only the bank decrypts, with both audit indexes."""
    import base64

    import numpy as np

    from bench.score_model import BANK_FEATURES, bench_model
    from common.settings import load_settings
    from federated import he
    from federated import store as fstore

    city_settings = load_settings(env=net.jiangyin.env)
    engine = make_engine(net.jiangyin.database_url)
    try:
        model = fstore.register_model(
            engine, bench_model(), "operator:test", catalog=city_settings.config.categories
        )
    finally:
        engine.dispose()
    ref = f"{model.id}@{model.version}"
    b = bank(net)
    auth = {"Authorization": f"Bearer {b.token()}"}
    # The holding node's models, read through the bank's own node.
    models = b._send("GET", "/v1/models", headers={**auth, "X-Xinyi-Node": "jiangyin"})
    assert models.status_code == 200, models.text
    assert model.id in json.dumps(models.json())
    unknown = b._send("GET", "/v1/models", headers={**auth, "X-Xinyi-Node": "nowhere"})
    assert unknown.status_code == 403 and unknown.json()["error"] == "node_relay_refused"

    secret = he.SecretContext.generate(he.DEFAULT_PARAMS)
    registered = b._send(
        "POST", "/v1/contexts",
        json={"context": base64.b64encode(secret.public_bytes()).decode()},
        headers={**auth, "X-Xinyi-Node": "jiangyin"},
    )  # fmt: skip
    assert registered.status_code == 201, registered.text
    context_id = registered.json()["id"]
    assert isinstance(registered.json()["relay_audit_index"], int)

    created = b.call(
        "POST",
        "/v1/consents",
        {
            "enterprise": net.enterprise,
            "purpose": "working_capital_loan",
            "ops": ["score"],
            "categories": ["tax", "social_security", "housing_fund", "utilities"],
            "duration_days": 30,
            "max_uses": 5,
        },
    )
    ent, csrf = enterprise_session(net.jiangyin, net.enterprise_login)
    ent.post(f"/v1/consents/{created['id']}/approve", headers={"X-CSRF-Token": csrf})
    grant = b.call("GET", f"/v1/consents/{created['id']}")["grant"]

    x_bank = np.linspace(-1, 1, BANK_FEATURES)
    ciphertext = he.encrypt_seeded(secret, x_bank)
    answer = b.call(
        "POST",
        "/v1/score",
        {
            "grant": grant,
            "model": ref,
            "context": context_id,
            "ciphertext": base64.b64encode(ciphertext).decode(),
        },
    )
    schemas.Scored.model_validate(answer)
    logit = float(np.sum(secret.decrypt(secret.ciphertext(base64.b64decode(answer["ciphertext"])))))
    assert np.isfinite(logit)
    held = ent.get(f"/v1/audit/entries/{answer['audit_index']}").json()["entry"]
    assert held["operation"] == "score" and held["institution"] == "node:jiangsu/bank-prov"
    relayed = b.call("GET", f"/v1/audit/entries/{answer['relay_audit_index']}")["entry"]
    assert relayed["operation"] == "relay" and relayed["decision"] == "relayed:jiangyin"


# A grade through the relay ----------------------------------------------------------------
def test_a_province_bank_reads_a_city_enterprise_grade_under_the_citys_grant(
    net: Network, tmp_path: Path
) -> None:
    """Op ``grade`` through the relay: the city's grant (naming every non-public
    category the grade draws on), letters only, the access logged at the city and the
    relay at the province; the answer carries both indexes and is what the route
    declares."""
    from datetime import UTC, datetime

    from gateway.api import grades as grades_api
    from gateway.contract import operation_of
    from gateway.grades import grade_categories

    month = datetime.now(UTC).strftime("%Y-%m")
    # The city's registration data: the grade's population is every enterprise in it.
    registration = tmp_path / "registration.csv"
    registration.write_text(
        "uscc,registration.status,registration.industry,registration.size,"
        f"registration.established\n{net.enterprise},active,C,small,2015-03-01\n",
        encoding="utf-8",
    )
    net.jiangyin.cli("data", "import", "market_regulation", str(registration))
    net.jiangyin.cli("grades", "compute", "--month", month)
    granted, _ = grade_categories(load_settings(env=net.jiangyin.env).config)
    b = bank(net)
    created = b.call(
        "POST",
        "/v1/consents",
        {
            "enterprise": net.enterprise,
            "purpose": "working_capital_loan",
            "ops": ["grade"],
            "categories": granted,
            "duration_days": 30,
            "max_uses": 5,
        },
    )
    ent, csrf = enterprise_session(net.jiangyin, net.enterprise_login)
    resp = ent.post(f"/v1/consents/{created['id']}/approve", headers={"X-CSRF-Token": csrf})
    assert resp.status_code == 200, resp.text
    grant = b.call("GET", f"/v1/consents/{created['id']}")["grant"]
    assert jwt.decode(grant, options={"verify_signature": False})["iss"] == net.jiangyin.url

    answer = b.call(
        "GET", f"/v1/enterprises/{net.enterprise}/grade", params={"grant": grant, "month": month}
    )
    op = operation_of(grades_api.grade)
    assert op is not None and op.answer is schemas.Grade
    op.answer.model_validate(answer)
    assert answer["enterprise"] == net.enterprise and answer["month"] == month
    assert isinstance(answer["audit_index"], int)
    assert isinstance(answer["relay_audit_index"], int)
    # Letters only: never ⑦, never the enterprise's own explanation.
    assert "7" not in answer["indicators"]
    assert not {"explanation", "how_to_raise", "recommended"} & set(answer)
    # The city's log: the grade read, by the institution the province vouches for.
    held = ent.get(f"/v1/audit/entries/{answer['audit_index']}").json()["entry"]
    assert held["operation"] == "grade" and held["decision"] == "allowed"
    assert held["institution"] == "node:jiangsu/bank-prov"
    assert held["enterprise"] == net.enterprise
    # The province's log: the relay, by the bank itself, no data of its own.
    relayed = b.call("GET", f"/v1/audit/entries/{answer['relay_audit_index']}")["entry"]
    assert relayed["operation"] == "relay" and relayed["decision"] == "relayed:jiangyin"
    assert relayed["institution"] == BANK_ID and relayed["features"] == []
    # A grant without op grade is refused at the city, logged there, through the relay.
    verify_only, _ = approved_grant(net, ["verify"])
    refused = b._send(
        "GET", f"/v1/enterprises/{net.enterprise}/grade",
        params={"grant": verify_only, "month": month},
        headers={"Authorization": f"Bearer {b.token()}"},
    )  # fmt: skip
    assert refused.status_code == 403, refused.text
    body = refused.json()
    assert isinstance(body.get("audit_index"), int)
    denied = ent.get(f"/v1/audit/entries/{body['audit_index']}").json()["entry"]
    assert denied["operation"] == "grade" and denied["decision"] != "allowed"


# Relayed consent webhooks -----------------------------------------------------------------
def webhook_rows(node: Node, institution: str) -> list[dict[str, Any]]:
    from consent import store as consent_store

    engine = make_engine(node.database_url)
    try:
        with engine.connect() as c:
            rows = c.execute(
                sa.select(consent_store.webhook_outbox).where(
                    consent_store.webhook_outbox.c.institution_id == institution
                )
            ).mappings()
            return [dict(r) for r in rows]
    finally:
        engine.dispose()


def test_consent_events_of_a_relayed_institution_reach_its_own_nodes_outbox(
    net: Network,
) -> None:
    """The enterprise approves at Jiangyin; the event queued there for
    node:jiangsu/bank-prov moves (once) to the province's webhook outbox for bank-prov,
    which the province signs and delivers. Another node cannot inject events about a
    consent it did not hold."""
    _, view = approved_grant(net, ["verify"])
    consent_id = view["id"]

    def events_at(node: Node, institution: str) -> list[dict[str, Any]]:
        return [
            r
            for r in webhook_rows(node, institution)
            if json.loads(r["payload"]).get("consent_id") == consent_id
        ]

    # Every event queued at Jiangyin (there may be several: each status change is one)
    # is handed over; poll until the province holds as many as Jiangyin handed over.
    deadline = time.monotonic() + 60
    arrived: list[dict[str, Any]] = []
    held: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        held = events_at(net.jiangyin, "node:jiangsu/bank-prov")
        arrived = events_at(net.province, BANK_ID)
        if held and all(r["delivered_at"] is not None for r in held) and len(arrived) >= len(held):
            break
        time.sleep(0.2)
    assert held and all(r["delivered_at"] is not None for r in held)  # handed over
    assert [r["event_id"] for r in arrived] == [r["event_id"] for r in held]  # once each
    assert [r["payload"] for r in arrived] == [r["payload"] for r in held]  # unchanged
    event = json.loads(arrived[-1]["payload"])
    assert event["type"] == "consent.status_changed" and event["status"] == "active"
    assert arrived[-1]["delivered_at"] is None  # waits for bank-prov's own webhook URL

    # Zhangjiagang did not relay that consent: its "event" about it is refused.
    ring = node_signer(net.zhangjg)
    forged_event = json.dumps(
        {"event_id": "evt_" + "0" * 32, "type": "consent.status_changed",
         "consent_id": consent_id, "status": "revoked", "at": 1},
        sort_keys=True,
    )  # fmt: skip
    body = json.dumps(
        {"messages": [{
            "id": "zhangjg:9300", "kind": "webhook", "created_at": 1,
            "payload": {"institution": BANK_ID, "event_id": "evt_" + "0" * 32,
                        "event": forged_event},
        }]}
    ).encode()  # fmt: skip
    path = "/v1/node/messages"
    resp = post(net.province, path, body, signed(net.zhangjg, ring, net.province, path, body))
    assert resp.status_code == 400 and resp.json()["error"] == "node_message_invalid"
    assert events_at(net.province, BANK_ID) == arrived
