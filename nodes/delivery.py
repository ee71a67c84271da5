"""Delivery of the durable node outbox to peers.

Messages are queued in the transaction of what caused them (``store.enqueue``); this
module sends them at least once, in order per peer, as signed batches to the peer's
``POST /v1/node/messages``; the peer acts on each message id once (its inbox), so the
whole is exactly-once in effect.

Invariants:
- a peer is taken by one sender at a time: a conditional UPDATE of its
  ``next_attempt_at`` is the lease (several workers and processes share the outbox);
- a batch is marked delivered only after the peer answered 200 for it; a permanent
  refusal (``node_message_invalid``, ``node_region_not_served``) is narrowed down to
  the one message refused, which is set aside (``refused`` with the code, logged) so
  it cannot hold up the messages behind it; any other
  outcome (refused, timed out, connection refused) counts one failure and the peer is
  retried after ``backoff_seconds · 2^(failures−1)``, at most ``backoff_cap_seconds``:
  a peer down for minutes finds every message waiting, in order, when it comes back;
- a suspended child is sent nothing (its messages wait until it is resumed).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy import Engine

from common.db import read_connection, write_session
from common.logging import get_logger
from common.settings import Settings
from nodes import store
from nodes.core import assertion_claims

log = get_logger("nodes.delivery")
MESSAGES_PATH = "/v1/node/messages"
ASSERTION_HEADER = "X-Xinyi-Node-Assertion"

# Refusals that no retry changes (the batch itself is wrong, not the moment).
PERMANENT = frozenset({"node_message_invalid", "node_region_not_served"})

Signer = Callable[[Mapping[str, Any]], str]
"""Signs node assertion claims with this node's *nodes* key (typ xinyi-node+jwt)."""


class NodeOutbox:
    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        sign: Signer,
        *,
        clock: Callable[[], float] = time.time,
        client: httpx.Client | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.sign = sign
        self.clock = clock
        cfg = settings.config.nodes
        self.client = client or httpx.Client(
            timeout=cfg.relay_timeout_seconds, follow_redirects=False, trust_env=False
        )

    def close(self) -> None:
        self.client.close()

    def deliver_due(self, max_seconds: float = 5.0) -> int:
        """One round: every peer whose backoff ran out gets its waiting messages, batch
        after batch, for at most ``max_seconds`` per peer; returns messages delivered."""
        with read_connection(self.engine) as c:
            own = store.identity(c)
            if own is None:
                return 0
            due = store.due_peers(c, self.clock())
        return sum(self._deliver_peer(own.name, name, max_seconds) for name in due)

    def _take(self, name: str) -> bool:
        """The lease on ``name``: True when this sender may deliver to it now."""
        now = self.clock()
        lease = now + 3 * self.settings.config.nodes.relay_timeout_seconds
        with write_session(self.engine) as s:
            done = s.execute(
                store.node_peers.update()
                .where(store.node_peers.c.name == name)
                .where(store.node_peers.c.next_attempt_at <= now)
                .values(next_attempt_at=lease)
            )
            return bool(done.rowcount == 1)  # type: ignore[attr-defined]

    def _deliver_peer(self, sender: str, name: str, max_seconds: float) -> int:
        if not self._take(name):
            return 0
        cfg = self.settings.config.nodes
        delivered = 0
        deadline = time.monotonic() + max_seconds
        with read_connection(self.engine) as c:
            peer = store.peer(c, name)
        if peer is None or not peer.active:
            return 0
        size = cfg.batch_max
        while time.monotonic() < deadline:
            with read_connection(self.engine) as c:
                batch = store.pending(c, sender, name, size)
            if not batch:
                self._release(name)
                break
            body = json.dumps(
                {"messages": [m.as_json() for m in batch]}, ensure_ascii=False
            ).encode("utf-8")
            claims = assertion_claims(
                sender=sender,
                audience=peer.url + MESSAGES_PATH,
                body=body,
                # Real time: the receiver checks it (``clock`` schedules retries only).
                now=int(time.time()),
                lifetime=cfg.assertion_max_seconds // 2,
            )
            code = None
            try:
                resp = self.client.post(
                    peer.url + MESSAGES_PATH,
                    content=body,
                    headers={
                        "Content-Type": "application/json",
                        ASSERTION_HEADER: self.sign(claims),
                    },
                )
                ok = resp.status_code == 200
                reason = "" if ok else f"{resp.status_code} {resp.text[:200]}"
                code = None if ok else _error_code(resp)
            except httpx.HTTPError as e:
                ok, reason = False, type(e).__name__
            if code in PERMANENT:
                # The peer will never take this batch: find the message it refuses by
                # sending one at a time, and set that one aside (dead letter) so the
                # messages behind it are not held up for ever.
                if len(batch) > 1:
                    size = 1
                    continue
                store.mark_refused(self.engine, name, int(batch[0].id.rsplit(":", 1)[1]), str(code))
                log.warning("node_message_refused", peer=name, message=batch[0].id, code=code)
                continue
            if not ok:
                failures = self._failed(name)
                log.warning("node_delivery_failed", peer=name, failures=failures, reason=reason)
                break
            seqs = [int(m.id.rsplit(":", 1)[1]) for m in batch]
            store.mark_delivered(self.engine, name, seqs, int(self.clock()))
            delivered += len(batch)
            size = cfg.batch_max
            # Keep the lease while going on with the next batch.
            self._extend(name)
        return delivered

    def _failed(self, name: str) -> int:
        cfg = self.settings.config.nodes
        with read_connection(self.engine) as c:
            failures = int(
                c.execute(
                    sa.select(store.node_peers.c.failures).where(store.node_peers.c.name == name)
                ).scalar_one()
            )
        from nodes.core import backoff_seconds

        wait = backoff_seconds(failures + 1, cfg.backoff_seconds, cfg.backoff_cap_seconds)
        return store.mark_failed(self.engine, name, self.clock() + wait)

    def _release(self, name: str) -> None:
        with write_session(self.engine) as s:
            s.execute(
                store.node_peers.update()
                .where(store.node_peers.c.name == name)
                .values(next_attempt_at=0.0, failures=0)
            )

    def _extend(self, name: str) -> None:
        lease = self.clock() + 3 * self.settings.config.nodes.relay_timeout_seconds
        with write_session(self.engine) as s:
            s.execute(
                store.node_peers.update()
                .where(store.node_peers.c.name == name)
                .values(next_attempt_at=lease)
            )


def _error_code(resp: httpx.Response) -> str | None:
    try:
        body = resp.json()
    except ValueError:
        return None
    code = body.get("error") if isinstance(body, dict) else None
    return code if isinstance(code, str) else None
