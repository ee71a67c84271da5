"""``xinyi demo --nodes``: a two-node story (issue 18, docs/network.md).

The province of Jiangsu (node ``jiangsu``, region ``32``) and the city of Jiangyin
(node ``jiangyin``, region ``320281``) are two whole gateways, each with its own
SQLite database, keys and audit log, serving on two loopback ports. A bank registered
only at the province verifies an enterprise of Jiangyin: its node relays, Jiangyin
issues the grant, enforces and logs it, and both logs show their part.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import httpx

from cli.demo.story import DEMO_PASSWORD, say, step
from common.settings import Settings, load_settings

BANK = "bank-jiangsu"


def _instance(base: Path, name: str, port: int) -> Settings:
    from common.db import migrate
    from keys import KeyRing

    home = base / f"demo-{name}"
    if home.exists():
        shutil.rmtree(home)
    home.mkdir(parents=True, mode=0o700)
    env = {**os.environ, "XINYI_HOME": str(home)}
    env.pop("XINYI_DATABASE_URL", None)  # the demo is the embedded default
    settings = load_settings(
        env=env, overrides={"server": {"public_url": f"http://127.0.0.1:{port}", "port": port}}
    )
    migrate(settings.database_url)
    KeyRing(settings).ensure_all()
    return settings


def _node_jwk(settings: Settings) -> dict[str, Any]:
    from keys import KeyRing
    from keys.jwk import public_jwk

    return public_jwk(KeyRing(settings).signing_key("nodes").private.public_key())


def run_nodes(port: int, serve: Any) -> None:
    """The story; ``serve(settings, port)`` starts one gateway (``cli.demo.run._serve``)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from bank.client import GatewayClient
    from bank.profile import public_jwk
    from common.db import make_engine
    from common.uscc import complete
    from nodes import core
    from nodes import store as node_store
    from records.catalog import Catalog
    from records.service import import_csv
    from registry import Registry

    base = Path(os.environ.get("XINYI_HOME", "instance")).resolve()
    province = _instance(base, "jiangsu", port)
    city = _instance(base, "jiangyin", port + 1)
    p_url, c_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port + 1}"

    step("Two nodes: the province links down to the city")
    now = int(time.time())
    p_engine, c_engine = make_engine(province.database_url), make_engine(city.database_url)
    p_id, c_id = core.NodeIdentity("jiangsu", "32"), core.NodeIdentity("jiangyin", "320281")
    node_store.init_identity(p_engine, p_id, now)
    node_store.init_identity(c_engine, c_id, now)
    node_store.add_peer(
        p_engine,
        core.make_peer(
            "jiangyin", url=c_url, jwk=_node_jwk(city), relation="child", region="320281", own=p_id
        ),
        now,
    )
    node_store.add_peer(
        c_engine,
        core.make_peer(
            "jiangsu", url=p_url, jwk=_node_jwk(province), relation="parent", region="32", own=c_id
        ),
        now,
    )
    say(f"  jiangsu  (region 32)     {p_url}   {province.home}")
    say(f"  jiangyin (region 320281) {c_url}   {city.home}")
    say("  each pinned the other's node key (Ed25519, `xinyi node key` / `add-peer`)")

    enterprise = complete("91320281MA1XY2345")
    import_csv(
        c_engine,
        Catalog(city.config),
        "tax",
        f"uscc,tax.paid_12m\n{enterprise},1250000\n".encode(),
        file_name="tax.csv",
        actor="demo",
    )
    Registry(c_engine).add_user(
        login="jiangyin-enterprise", password=DEMO_PASSWORD, role="enterprise", uscc=enterprise
    )
    key = Ed25519PrivateKey.generate()
    Registry(p_engine).add_institution(BANK, name="江苏某银行", jwk=public_jwk(key))
    say(f"  the enterprise {enterprise} (division 320281) is held by Jiangyin")
    say(f"  the bank {BANK} is registered at the province only")

    servers = [serve(province, port), serve(city, port + 1)]
    try:
        _story(GatewayClient(p_url, BANK, key), c_url, enterprise)
    finally:
        for server, _thread in servers:
            server.shutdown()
        p_engine.dispose()
        c_engine.dispose()


def _story(bank: Any, c_url: str, enterprise: str) -> None:
    step("The bank asks its own node (the province) for consent")
    created = bank.call(
        "POST",
        "/v1/consents",
        {
            "enterprise": enterprise,
            "purpose": "working_capital_loan",
            "ops": ["verify"],
            "categories": ["tax"],
            "duration_days": 30,
            "max_uses": 5,
        },
    )
    say(f"  relayed to jiangyin: consent {created['id']} {created['status']}")
    say(f"  the province logged the relay at index {created['relay_audit_index']}")

    step("The enterprise approves at its own node (Jiangyin)")
    ent = httpx.Client(base_url=c_url, timeout=30)
    signed_in = ent.post(
        "/v1/session", json={"login": "jiangyin-enterprise", "password": DEMO_PASSWORD}
    )
    csrf = signed_in.json()["csrf_token"]
    ent.post(f"/v1/consents/{created['id']}/approve", headers={"X-CSRF-Token": csrf})
    view = bank.call("GET", f"/v1/consents/{created['id']}")
    import jwt

    claims = jwt.decode(view["grant"], options={"verify_signature": False})
    say(f"  grant issued by {claims['iss']} (Jiangyin) to {claims['aud']!r}")

    step("The bank verifies through the province; Jiangyin enforces and answers")
    answer = bank.call(
        "POST",
        "/v1/verify",
        {"grant": view["grant"], "feature": "tax.paid_12m", "op": ">=", "value": 1_000_000},
    )
    say(f"  tax paid in 12 months >= 1,000,000 CNY: {answer['result']}")
    say(f"  audit_index {answer['audit_index']} (Jiangyin's log: the access)")
    say(f"  relay_audit_index {answer['relay_audit_index']} (the province's log: the relay)")
    held = ent.get(f"/v1/audit/entries/{answer['audit_index']}").json()["entry"]
    relayed = bank.call("GET", f"/v1/audit/entries/{answer['relay_audit_index']}")["entry"]
    say(
        "  Jiangyin's entry:  "
        + json.dumps(
            {k: held[k] for k in ("institution", "enterprise", "operation", "decision")},
            ensure_ascii=False,
        )
    )
    say(
        "  province's entry:  "
        + json.dumps(
            {k: relayed[k] for k in ("institution", "enterprise", "operation", "decision")},
            ensure_ascii=False,
        )
    )
    say("\nThe relay forwarded the bank's own request; the grant, the check and the data")
    say("stayed with the node that holds the enterprise (docs/network.md).")
