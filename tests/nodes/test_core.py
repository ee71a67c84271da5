"""The pure core of the node network: routing, peer rules, assertions, batches."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from keys.jwk import public_jwk
from nodes import core
from nodes.errors import MessageInvalid, NodeAssertionInvalid, PeerInvalid

PROVINCE = core.NodeIdentity("jiangsu", "32")
KEY = Ed25519PrivateKey.generate()


def peer(name: str, region: str, relation: str = "child", status: str = "active") -> core.Peer:
    return core.Peer(
        name, f"http://{name}.test", public_jwk(KEY.public_key()), relation, region, status
    )


PEERS = [peer("jiangyin", "320281"), peer("zhangjg", "320282"), peer("china", "", "parent")]


@pytest.mark.parametrize(
    ("code", "holder"),
    [
        ("320281", "jiangyin"),
        ("320282", "zhangjg"),
        ("320201", None),  # Wuxi proper: no city node, the province holds it
        ("330102", "china"),  # Hangzhou: not Jiangsu, up to the national node
    ],
)
def test_the_longest_prefix_wins(code: str, holder: str | None) -> None:
    found = core.route(code, PROVINCE, PEERS)
    assert (found.name if found else None) == holder
    assert core.serves(code, PROVINCE, PEERS) is (holder is None)


@given(st.from_regex(r"[0-9]{6}", fullmatch=True))
def test_exactly_one_node_of_a_tree_serves_every_code(code: str) -> None:
    """Province, its cities and its parent: exactly one of them holds each code."""
    china = core.NodeIdentity("china", "")
    city = core.NodeIdentity("jiangyin", "320281")
    tree = {
        china: [peer("jiangsu", "32")],
        PROVINCE: PEERS,
        city: [peer("jiangsu", "32", "parent")],
    }
    holders = [n for n, ps in tree.items() if core.serves(code, n, ps)]
    assert len(holders) == 1


def test_a_suspended_peer_still_holds_its_region() -> None:
    suspended = [peer("jiangyin", "320281", status="suspended")]
    found = core.route("320281", PROVINCE, suspended)
    assert found is not None and not found.active


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"relation": "child", "region": "33"}, "region"),  # not inside Jiangsu
        ({"relation": "child", "region": "32"}, "region"),  # the same region
        ({"relation": "parent", "region": "320281"}, "region"),
        ({"relation": "sibling", "region": "320281"}, "relation"),
        ({"relation": "child", "region": "32a"}, "region"),
    ],
)
def test_peer_definitions_that_make_no_tree_are_refused(kw: dict[str, Any], field: str) -> None:
    with pytest.raises(PeerInvalid) as e:
        core.make_peer(
            "jiangyin", url="http://x.test", jwk=public_jwk(KEY.public_key()), own=PROVINCE, **kw
        )
    assert e.value.details.get("field") == field


def test_a_private_or_foreign_key_is_no_node_key() -> None:
    jwk = public_jwk(KEY.public_key())
    for bad in (
        {**jwk, "d": "AAAA"},
        {**jwk, "crv": "P-256"},
        {"kty": "RSA"},
        "x",
        {**jwk, "x": "AA"},
    ):
        with pytest.raises(PeerInvalid):
            core.check_jwk(bad)
    with pytest.raises(PeerInvalid):
        core.make_peer(
            "jiangsu", url="http://x.test", jwk=jwk, relation="child", region="3202", own=PROVINCE
        )


def _assertion(body: bytes, **over: Any) -> str:
    claims = core.assertion_claims(
        sender="jiangyin",
        audience="http://p/v1/node/messages",
        body=body,
        now=int(time.time()),
        lifetime=60,
    )
    claims.update(over)
    return jwt.encode(claims, KEY, algorithm="EdDSA", headers={"typ": core.TYP_NODE})


def _verify(token: str, body: bytes = b"{}") -> dict[str, Any]:
    return core.verify_assertion(
        token, peer("jiangyin", "320281"), audience="http://p/v1/node/messages",
        body=body, now=time.time(), max_seconds=120,
    )  # fmt: skip


def test_a_node_assertion_is_bound_to_its_body_audience_type_and_lifetime() -> None:
    assert _verify(_assertion(b"{}"))["iss"] == "jiangyin"
    now = int(time.time())
    for bad in (
        _assertion(b"{other}"),
        _assertion(b"{}", aud="http://elsewhere/v1/node/messages"),
        _assertion(b"{}", iss="zhangjg"),
        _assertion(b"{}", exp=now - 1),
        _assertion(b"{}", exp=now + 3600),
        _assertion(b"{}", exp=True),
        _assertion(b"{}", jti="x"),
        jwt.encode({"iss": "jiangyin"}, KEY, algorithm="EdDSA", headers={"typ": "at+jwt"}),
        jwt.encode(
            jwt.decode(_assertion(b"{}"), options={"verify_signature": False}),
            Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"typ": core.TYP_NODE},
        ),
    ):  # fmt: skip
        with pytest.raises(NodeAssertionInvalid):
            _verify(bad)


def test_a_batch_holds_only_the_senders_own_distinct_ids() -> None:
    m = {"id": "jiangyin:1", "kind": "note", "payload": {}, "created_at": 1}
    assert [x.id for x in core.parse_batch("jiangyin", {"messages": [m]})] == ["jiangyin:1"]
    bad: Any
    for bad in (
        {"messages": []},
        {"messages": [m, m]},
        {"messages": [{**m, "id": "zhangjg:1"}]},
        {"messages": [{**m, "kind": "exec"}]},
        {"messages": [{**m, "created_at": True}]},
        {"messages": [m], "extra": 1},
    ):
        with pytest.raises(MessageInvalid):
            core.parse_batch("jiangyin", bad)


def test_backoff_doubles_up_to_its_cap() -> None:
    waits = [core.backoff_seconds(n, 1.0, 30.0) for n in range(0, 8)]
    assert waits == [0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
