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
from common.db import read_connection, write_session
from common.errors import Conflict
from common.logging import get_logger
from consent import store as consent_store
from gateway import node_webhooks, relay
from gateway.api import schemas
from gateway.contract import operation
from gateway.services import services
from nodes import core
from nodes import store as node_store
from nodes.errors import MessageInvalid, RegionNotServed

bp = Blueprint("nodes", __name__)
log = get_logger("gateway.api.nodes")
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
    peer, _, _, _ = relay.authenticate_peer("/v1/node/messages", raw)
    batch = core.parse_batch(peer.name, body.model_dump())
    for m in batch:
        _check(peer, m)
    svc = services()
    now = int(time.time())
    accepted = 0
    try:
        # Runs of ordinary messages commit together with their inbox rows; an import
        # (its own all-or-nothing transaction in the records store) stands alone, in
        # the batch's order.
        run: list[core.Message] = []
        item: core.Message | None
        for item in [*batch, None]:
            if item is not None and item.kind != "data_import":
                run.append(item)
                continue
            if run:
                with write_session(svc.engine) as s:
                    seen = node_store.seen(s, peer.name, [x.id for x in run])
                    for x in run:
                        if x.id not in seen:
                            node_store.record_received(s, peer.name, x, now)
                            _act(s, peer, x, now)
                            accepted += 1
                run = []
            if item is not None:
                accepted += _import_from_parent(svc, peer, item, now)
    except IntegrityError as e:  # the same batch taken by another worker at once
        raise Conflict(
            "these messages are being taken by another request; send again",
            code="node_message_in_flight",
        ) from e
    return {"accepted": accepted, "duplicates": len(batch) - accepted}


def _import_from_parent(svc: Any, peer: core.Peer, m: core.Message, now: int) -> int:
    """Load data sent down by the parent as an import of the department named for it,
    all or nothing, its provenance (``node:<parent>/<message id>``) as the file name and
    the parent as the actor; 1 when acted upon now, 0 when it was before."""
    from records import store as records
    from records.service import ImportRejected, import_csv

    with write_session(svc.engine) as s:
        if node_store.seen(s, peer.name, [m.id]):
            return 0
    department = str(m.payload["department"])
    provenance = f"node:{peer.name}/{m.id}"
    # Loaded before but not yet marked (a crash between the two): not again.
    done = any(
        r.file_name == provenance
        for r in records.import_history(svc.engine, department, limit=1000)
    )
    if not done:
        try:
            import_csv(
                svc.engine,
                svc.catalog,
                department,
                str(m.payload["csv"]).encode("utf-8"),
                file_name=provenance,
                actor=f"node:{peer.name}",
            )
        except ImportRejected as e:
            # Recorded as a rejected import with every bad row; the message was acted
            # upon (a resend of the same bad file would be rejected the same way).
            log.warning("node_import_rejected", peer=peer.name, message=m.id, code=e.code)
    with write_session(svc.engine) as s:
        node_store.record_received(s, peer.name, m, now)
    return 1


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
            isinstance(k, str) and isinstance(v, int | float) and not isinstance(v, bool) and v >= 0
            for k, v in figures.items()
        ):
            # Counts, amounts and rates: a negative one would take from the parent's
            # totals (docs/network.md "What a malicious child can and cannot do").
            raise MessageInvalid(f"message {m.id}: figures map names to numbers (≥ 0)")
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
        if peer.relation != "parent":
            raise MessageInvalid("data goes down: only the parent sends an import")
        allowed = services().settings.config.nodes.parent_departments
        department, csv = p.get("department"), p.get("csv")
        if department not in allowed:
            raise MessageInvalid(
                f"message {m.id}: this node takes imports from its parent only as a "
                f"department named for it (nodes.parent_departments: {list(allowed)})"
            )
        if not isinstance(csv, str):
            raise MessageInvalid(f"message {m.id}: csv is the file's text")
    elif m.kind == "webhook":
        # A consent event for one of this node's institutions, about a consent it
        # relayed to that peer for that institution, and no other (gateway.node_webhooks).
        try:
            institution, _, _, event = node_webhooks.check_forwarded(dict(p))
        except ValueError as e:
            raise MessageInvalid(f"message {m.id}: {e}") from e
        with read_connection(services().engine) as c:
            relayed_to = node_store.relayed_consent_peer(c, str(event["consent_id"]), institution)
        if relayed_to != peer.name:
            raise MessageInvalid(
                f"message {m.id}: no consent {event['consent_id']} of {institution!r} "
                f"was relayed to {peer.name!r}"
            )


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
    elif m.kind == "webhook":
        institution, event_id, text, _ = node_webhooks.check_forwarded(dict(m.payload))
        if not consent_store.event_exists(s, event_id):
            consent_store.enqueue_event(
                s, institution_id=institution, event_id=event_id, payload=text, now=now
            )
    # "note": nothing but its inbox row (used to test delivery itself).
