"""Node network benchmark (issue 18): ``python -m bench nodes`` writes
``bench/results/nodes.json``.

- ``relay``: three real nodes on loopback (``tests/nodes/network.py``, SQLite, one
  gunicorn worker each); the same ``POST /v1/verify`` about a Jiangyin enterprise, sent
  directly to Jiangyin by a bank registered there and through the province by a bank
  registered at the province, interleaved one by one [target: the relay adds ≤ 15 ms
  at p50];
- ``outbox``: 10,000 upward messages queued at Zhangjiagang while the province is
  stopped; the sender retries on a simulated clock through a 5-minute outage (backoff
  1 s doubling to the 30 s cap: no sleeping), the province is started again, and the
  time from the next due attempt until the last message is acknowledged is measured on
  the wall clock [target: ≤ 60 s]; then every id is checked at the province, once.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

RELAY_CALLS = 90
WARMUP_CALLS = 10
MESSAGES = 10_000
OUTAGE_SECONDS = 300


def _session(url: str, login: str) -> tuple[httpx.Client, str]:
    from tests.nodes.network import PASSWORD

    client = httpx.Client(base_url=url, timeout=30)
    resp = client.post("/v1/session", json={"login": login, "password": PASSWORD})
    resp.raise_for_status()
    return client, str(resp.json()["csrf_token"])


def _grant(bank: Any, net: Any) -> str:
    created = bank.call(
        "POST",
        "/v1/consents",
        {
            "enterprise": net.enterprise,
            "purpose": "working_capital_loan",
            "ops": ["verify"],
            "categories": ["tax"],
            "duration_days": 30,
            "max_uses": 200,
        },
    )
    ent, csrf = _session(net.jiangyin.url, net.enterprise_login)
    ent.post(
        f"/v1/consents/{created['id']}/approve", headers={"X-CSRF-Token": csrf}
    ).raise_for_status()
    return str(bank.call("GET", f"/v1/consents/{created['id']}")["grant"])


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def relay_latency(net: Any, root: Path) -> dict[str, Any]:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from bank.client import GatewayClient
    from bank.profile import public_jwk
    from tests.nodes.network import BANK_ID

    city_key = Ed25519PrivateKey.generate()
    (root / "city-bank.jwk").write_text(json.dumps(public_jwk(city_key)), encoding="utf-8")
    net.jiangyin.cli(
        "admin", "add-institution", "bank-city", "--name", "市级银行",
        "--jwk", str(root / "city-bank.jwk"),
    )  # fmt: skip
    direct = GatewayClient(net.jiangyin.url, "bank-city", city_key)
    relayed = GatewayClient(net.province.url, BANK_ID, net.bank_key)
    grants = {"direct": _grant(direct, net), "relayed": _grant(relayed, net)}
    clients = {"direct": direct, "relayed": relayed}
    times: dict[str, list[float]] = {"direct": [], "relayed": []}
    for i in range(WARMUP_CALLS + RELAY_CALLS):
        for kind in ("direct", "relayed"):
            body = {"grant": grants[kind], "feature": "tax.paid_12m", "op": ">=", "value": i}
            started = time.perf_counter()
            answer = clients[kind].call("POST", "/v1/verify", body)
            elapsed = (time.perf_counter() - started) * 1000
            assert isinstance(answer["result"], bool)
            if i >= WARMUP_CALLS:
                times[kind].append(elapsed)
    p50 = {k: statistics.median(v) for k, v in times.items()}
    return {
        "calls_each": RELAY_CALLS,
        "direct_p50_ms": round(p50["direct"], 2),
        "relayed_p50_ms": round(p50["relayed"], 2),
        "direct_p95_ms": round(_p(times["direct"], 0.95), 2),
        "relayed_p95_ms": round(_p(times["relayed"], 0.95), 2),
        "relay_adds_p50_ms": round(p50["relayed"] - p50["direct"], 2),
        "target_relay_adds_p50_ms": 15,
        "met": p50["relayed"] - p50["direct"] <= 15,
    }


class _Clock:
    def __init__(self) -> None:
        self.t = time.time()

    def __call__(self) -> float:
        return self.t


def outbox_catch_up(net: Any) -> dict[str, Any]:
    import sqlalchemy as sa

    from common.db import make_engine, write_session
    from common.settings import load_settings
    from keys import KeyRing
    from nodes import core
    from nodes import store as node_store
    from nodes.delivery import NodeOutbox

    city = net.zhangjg
    city.stop()  # this process is the sender, on a simulated clock
    settings = load_settings(env={**city.env})
    settings = settings.model_copy(
        update={
            "config": settings.config.model_copy(
                update={"nodes": settings.config.nodes.model_copy(update={"batch_max": 500})}
            )
        }
    )
    engine = make_engine(city.database_url)
    ring = KeyRing(settings)
    clock = _Clock()
    outbox = NodeOutbox(
        settings,
        engine,
        lambda claims: ring.sign_jwt("nodes", claims, headers={"typ": core.TYP_NODE}),
        clock=clock,
    )
    figures = {f"k{i}": i * 1000 for i in range(10)}
    with write_session(engine) as s:
        for i in range(MESSAGES):
            node_store.enqueue(s, "jiangsu", "note", {"n": i, "figures": figures}, int(clock()))
    net.province.stop()  # the outage
    attempts = 0
    for _ in range(OUTAGE_SECONDS):
        outbox.deliver_due()
        clock.t += 1.0
    with engine.connect() as c:
        attempts = int(
            c.execute(
                sa.select(node_store.node_peers.c.failures).where(
                    node_store.node_peers.c.name == "jiangsu"
                )
            ).scalar_one()
        )
        next_at = float(
            c.execute(
                sa.select(node_store.node_peers.c.next_attempt_at).where(
                    node_store.node_peers.c.name == "jiangsu"
                )
            ).scalar_one()
        )
    net.province.start()
    # The next attempt is due at most the backoff cap after the peer came back.
    residual_wait = max(0.0, next_at - clock.t)
    clock.t = max(clock.t, next_at)
    started = time.perf_counter()
    delivered = 0
    while True:
        n = outbox.deliver_due(max_seconds=120)
        delivered += n
        with engine.connect() as c:
            if node_store.outbox_depth(c) == 0:
                break
        if n == 0:
            clock.t += settings.config.nodes.backoff_cap_seconds
    wall = time.perf_counter() - started
    province = make_engine(net.province.database_url)
    with province.connect() as c:
        ids = [
            r.message_id
            for r in c.execute(
                sa.select(node_store.node_inbox.c.message_id).where(
                    node_store.node_inbox.c.peer == "zhangjg"
                )
            )
        ]
    province.dispose()
    outbox.close()
    engine.dispose()
    batch_bytes = len(
        json.dumps(
            {
                "messages": [
                    {"id": "zhangjg:1", "kind": "note", "payload": {"n": 1, "figures": figures}}
                ]
                * 500
            }
        )
    )
    notes = [i for i in ids if i.startswith("zhangjg:")]
    return {
        "messages": MESSAGES,
        "outage_simulated_seconds": OUTAGE_SECONDS,
        "attempts_during_outage": attempts,
        "residual_backoff_seconds": round(residual_wait, 1),
        "delivery_wall_seconds": round(wall, 2),
        "catch_up_seconds": round(residual_wait + wall, 2),
        # Had the peer come back just after a failed attempt: a whole capped backoff.
        "worst_case_catch_up_seconds": round(settings.config.nodes.backoff_cap_seconds + wall, 2),
        "messages_per_second": round(delivered / wall, 1) if wall else None,
        "batch_bytes_500": batch_bytes,
        "received_at_province": len(notes),
        "received_distinct": len(set(notes)),
        "target_catch_up_seconds": 60,
        "met": settings.config.nodes.backoff_cap_seconds + wall <= 60
        and len(set(notes)) >= MESSAGES,
    }


def run() -> dict[str, Any]:
    from tests.nodes.network import three_nodes

    with tempfile.TemporaryDirectory(prefix="bench-nodes-") as tmp:
        root = Path(tmp)
        with three_nodes(root, None, consent={"default_verify_budget": 100}) as net:
            relay = relay_latency(net, root)
            # XINYI_BENCH_NODES=relay: the relay figures only (while tuning it).
            only_relay = os.environ.get("XINYI_BENCH_NODES") == "relay"
            outbox = None if only_relay else outbox_catch_up(net)
    return {
        "backend": "sqlite",
        "workers_per_node": 1,
        "load_average_1m": round(os.getloadavg()[0], 2),
        "relay_verify": relay,
        "outbox_after_outage": outbox,
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
