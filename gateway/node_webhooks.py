"""Consent webhooks of relayed institutions (issue 18; docs/network.md "Relayed consent
webhooks"): at the holding node, a ``consent.status_changed`` event queued for
``node:<A>/<institution>`` (which has no webhook URL here) is handed to node A as a
``webhook`` node message; A queues it in its own webhook outbox for the institution,
which A signs and delivers as any event of its own.

Invariants:
- the event leaves the holding node's webhook outbox (marked delivered) in ONE
  transaction with the node message that carries it, so it is forwarded once, and the
  node outbox's order, retries and idempotence carry it to A;
- only ``consent.status_changed`` is forwarded (A checks the consent was relayed by
  it, from this node, for that institution); any other event of a relayed institution
  waits at the holding node, as before;
- an event for a node that is not a peer stays where it is.
"""

from __future__ import annotations

import json
import time
from typing import Any

from sqlalchemy import Engine

from common.db import write_session
from common.logging import get_logger
from consent import store as consent_store
from nodes import core
from nodes import store as node_store

log = get_logger("gateway.node_webhooks")

FORWARDED_TYPE = "consent.status_changed"
BATCH = 200


def forward_relayed_events(engine: Engine, now: int | None = None) -> int:
    """Hand waiting consent events of relayed institutions to their nodes; returns how
    many were forwarded."""
    now = int(time.time()) if now is None else now
    with write_session(engine) as s:
        peers = {p.name for p in node_store.peers(s)}
        if not peers:
            return 0
        forwarded = 0
        for row in consent_store.waiting_events_of(s, core.RELAYED_PREFIX, FORWARDED_TYPE, BATCH):
            vouched = core.vouching_node(str(row["institution_id"]))
            if vouched is None or vouched[0] not in peers:
                continue
            node, institution = vouched
            payload: dict[str, Any] = {
                "institution": institution,
                "event_id": str(row["event_id"]),
                "event": str(row["payload"]),
            }
            node_store.enqueue(
                s, node, "webhook", payload, now, dedup_key=f"webhook:{row['event_id']}"
            )
            consent_store.mark_delivered(s, int(row["id"]), now)
            forwarded += 1
    if forwarded:
        log.info("relayed_webhooks_forwarded", count=forwarded)
    return forwarded


def check_forwarded(payload: dict[str, Any]) -> tuple[str, str, str, dict[str, Any]]:
    """``(institution, event_id, event text, event)`` of a ``webhook`` message, or
    ValueError naming what is wrong."""
    institution, event_id, text = (
        payload.get("institution"),
        payload.get("event_id"),
        payload.get("event"),
    )
    if not isinstance(institution, str) or not 0 < len(institution) <= 64:
        raise ValueError("institution is an institution id")
    if not isinstance(event_id, str) or not 0 < len(event_id) <= 40:
        raise ValueError("event_id is an event id")
    if not isinstance(text, str) or len(text) > 4096:
        raise ValueError("event is the event's JSON text")
    try:
        event = json.loads(text)
    except ValueError as e:
        raise ValueError("event is the event's JSON text") from e
    if (
        not isinstance(event, dict)
        or event.get("type") != FORWARDED_TYPE
        or event.get("event_id") != event_id
        or not isinstance(event.get("consent_id"), str)
    ):
        raise ValueError(f"event is a {FORWARDED_TYPE} event with this event_id")
    return institution, event_id, text, event
