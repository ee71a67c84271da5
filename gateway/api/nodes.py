"""What peer nodes call (issue 18, docs/network.md): relayed institution calls and
batches of outbox messages. Both are authenticated by a node assertion
(``gateway.relay.authenticate_peer``) bound to the exact body.

Invariants of ``POST /v1/node/messages``:
- the whole batch is checked before anything is written: one bad message (unknown
  kind, a region the sender does not serve, data sent down by a child) refuses the
  batch with its code and changes nothing;
- each message id is acted upon once: its inbox row and its effect commit in ONE
  transaction; a message seen before counts as a duplicate and has no second effect;
- messages are acted upon in the order of the batch (the sender's order).
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Response
from flask import request as flask_request
from sqlalchemy.exc import IntegrityError

from common import uscc as uscc_rules
from common.db import write_session
from common.errors import Conflict
from gateway import relay
from gateway.api import schemas
from gateway.contract import operation
from gateway.services import services
from nodes import core
from nodes import store as node_store
from nodes.errors import MessageInvalid, RegionNotServed

bp = Blueprint("nodes", __name__)
_MONTH = re.compile(r"^[0-9]{4}-(0[1-9]|1[0-2])$")
_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


@bp.post(relay.RELAY_PATH)
@operation(
    "A peer node relays one call of an institution it vouches for (node assertion in "
    "X-Xinyi-Node-Assertion, bound to this body); the call is answered as the "
    "institution node:<peer>/<id> by the ordinary route and enforcement point",
    tag="nodes",
    # The institution's own request body, byte for byte (its hash is in the assertion).
    body_media=("application/octet-stream",),
    answer=schemas.RelayedAnswer,
)
def relay_in() -> Response:
    return relay.receive_relay()


@bp.post("/v1/node/messages")
@operation(
    "A peer node delivers a batch of its outbox: {messages: [{id, kind, payload, "
    "created_at}]}; each id is acted upon once",
    tag="nodes",
    body=schemas.NodeBatch,
    answer=schemas.NodeBatchAccepted,
)
def messages_in(body: schemas.NodeBatch) -> dict[str, Any]:
    raw = flask_request.get_data(cache=True)
    peer, _ = relay.authenticate_peer("/v1/node/messages", raw)
    batch = core.parse_batch(peer.name, body.model_dump())
    for m in batch:
        _check(peer, m)
    svc = services()
    now = int(time.time())
    try:
        with write_session(svc.engine) as s:
            seen = node_store.seen(s, peer.name, [m.id for m in batch])
            fresh = [m for m in batch if m.id not in seen]
            for m in fresh:
                node_store.record_received(s, peer.name, m, now)
                _act(s, peer, m, now)
    except IntegrityError as e:  # the same batch taken by another worker at once
        raise Conflict(
            "these messages are being taken by another request; send again",
            code="node_message_in_flight",
        ) from e
    return {"accepted": len(fresh), "duplicates": len(batch) - len(fresh)}


def _check(peer: core.Peer, m: core.Message) -> None:
    """Refuse (before anything is written) a message this peer may not send."""
    p = m.payload
    if m.kind == "statistics":
        if peer.relation != "child":
            raise MessageInvalid("statistics go up: only a child pushes them")
        region, month, figures = p.get("region"), p.get("month"), p.get("figures")
        if not isinstance(region, str) or not re.fullmatch(r"[0-9]{0,6}", region):
            raise MessageInvalid(f"message {m.id}: region is a division-code prefix")
        if not region.startswith(peer.region):
            raise RegionNotServed(f"message {m.id}: node {peer.name!r} does not serve {region!r}")
        if not isinstance(month, str) or not _MONTH.match(month):
            raise MessageInvalid(f"message {m.id}: month is YYYY-MM")
        if not isinstance(figures, Mapping) or not all(
            isinstance(k, str) and isinstance(v, int | float) and not isinstance(v, bool)
            for k, v in figures.items()
        ):
            raise MessageInvalid(f"message {m.id}: figures map names to numbers")
    elif m.kind == "objection_overdue":
        if peer.relation != "child":
            raise MessageInvalid("objections go up: only a child forwards them")
        enterprise = p.get("enterprise")
        if not isinstance(enterprise, str) or not uscc_rules.is_valid(enterprise):
            raise MessageInvalid(f"message {m.id}: enterprise is a USCC")
        if not core.division_code(enterprise).startswith(peer.region):
            raise RegionNotServed(
                f"message {m.id}: node {peer.name!r} does not hold that enterprise"
            )
        if not isinstance(p.get("id"), str) or not isinstance(p.get("feature"), str):
            raise MessageInvalid(f"message {m.id}: an objection has an id and a feature")
        if not isinstance(p.get("due"), str) or not _DATE.match(p["due"]):
            raise MessageInvalid(f"message {m.id}: due is YYYY-MM-DD")
    elif m.kind == "data_import":
        raise MessageInvalid(f"message {m.id}: data sent down is not accepted yet")


def _act(s: Any, peer: core.Peer, m: core.Message, now: int) -> None:
    if m.kind == "statistics":
        seq = int(m.id.rsplit(":", 1)[1]) if m.id.rsplit(":", 1)[1].isdigit() else 0
        node_store.put_child_statistics(
            s,
            peer.name,
            str(m.payload["region"]),
            str(m.payload["month"]),
            m.payload["figures"],
            m,
            seq,
            now,
        )
    elif m.kind == "objection_overdue":
        node_store.put_forwarded_objection(s, peer.name, m.payload, now)
    # "note": nothing but its inbox row (used to test delivery itself).
