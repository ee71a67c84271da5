"""Webhook delivery from the durable outbox.

Events are written in the same transaction as the status change that caused them
(``store.enqueue_event``); this module delivers them at least once, in order per
institution, as a JWT signed with the gateway's *grants* key (verifiable with
``/.well-known/jwks.json``), POSTed with ``Content-Type: application/jwt``.  Failures
are retried with exponential backoff up to ``consent.webhook_max_attempts``; an
institution without a webhook URL keeps its events until it registers one.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from sqlalchemy import Engine

from common.db import write_session
from common.logging import get_logger
from common.settings import Settings
from consent import store
from consent.service import GrantKeys

log = get_logger("consent.outbox")
LEASE_SECONDS = 60.0


@dataclass
class OutboxDelivery:
    settings: Settings
    engine: Engine
    keys: GrantKeys
    client: httpx.Client
    clock: Callable[[], float] = time.time

    def deliver_due(self, limit: int = 100) -> int:
        """Send due events, oldest first per institution, until none is due or ``limit``
        were sent; returns how many were delivered."""
        delivered = 0
        while delivered < limit:
            sent = self._round(limit - delivered)
            if sent == 0:
                return delivered
            delivered += sent
        return delivered

    def _round(self, limit: int) -> int:
        """One attempt at the oldest due event of each institution."""
        now = self.clock()
        cfg = self.settings.config.consent
        with write_session(self.engine) as s:
            due = store.claim_due_events(s, now, limit, LEASE_SECONDS)
        delivered = 0
        for row in due:
            error = None
            event = json.loads(row["payload"])
            token = self.keys.sign_jwt(
                "grants", {**event, "aud": row["institution_id"]}, {"typ": "xinyi-event+jwt"}
            )
            try:
                resp = self.client.post(
                    row["webhook_url"],
                    content=token,
                    headers={
                        "Content-Type": "application/jwt",
                        "X-Xinyi-Event-Id": row["event_id"],
                    },
                    timeout=5.0,
                )
                if resp.status_code >= 300:
                    error = f"HTTP {resp.status_code}"
            except httpx.HTTPError as e:
                error = f"{type(e).__name__}: {e}"
            with write_session(self.engine) as s:
                if error is None:
                    store.mark_delivered(s, row["id"], int(self.clock()))
                    delivered += 1
                else:
                    attempts = row["attempts"] + 1
                    wait = cfg.webhook_backoff_seconds * 2 ** min(attempts - 1, 16)
                    nxt = store.GAVE_UP_AT if attempts >= cfg.webhook_max_attempts else now + wait
                    store.mark_failed(s, row["id"], next_attempt_at=nxt, error=error)
                    log.warning(
                        "webhook_failed",
                        event_id=row["event_id"],
                        institution=row["institution_id"],
                        attempts=attempts,
                        error=error,
                    )
        return delivered
