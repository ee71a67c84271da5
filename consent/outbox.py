"""Webhook delivery from the durable outbox.

Events are written in the same transaction as the status change that caused them
(``store.enqueue_event``); this module delivers them at least once, in order per
institution, as a JWT (``typ: xinyi-event+jwt``) signed with the gateway's *events*
key (verifiable with ``/.well-known/jwks.json``, where the key's ``xinyi_purpose`` is
``events``), POSTed with ``Content-Type: application/jwt`` and the event id in both
``Idempotency-Key`` and ``X-Xinyi-Event-Id`` (the same on every attempt: delivery is at
least once, a receiver drops an id it has already taken). Failures are retried with
exponential backoff up to ``consent.webhook_max_attempts``; an institution without a
webhook URL keeps its events until it registers one.

Invariants:
- every delivery resolves the webhook host and checks every address it resolves to
  (``common.webhook_address``: public addresses only, https unless dev) and connects to
  the checked address, sending the name in ``Host`` and TLS SNI, so a name that
  resolves elsewhere a moment later (DNS rebinding) changes nothing; redirects are not
  followed and proxies from the environment are not used;
- a refused address is a failed attempt like any other (retried, then given up);
- the deliveries of one round (one event per institution) run side by side, each phase
  of each bounded by ``consent.webhook_timeout_seconds``, and a round waits for them at
  most ``ROUND_WAIT_SECONDS``: a slow or dead receiver delays only its own
  institution's events, whose lease keeps them from being sent twice at once (the lease
  must stay longer than a delivery: ``webhook_lease_seconds`` > 3 x the timeout).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_all
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import Engine

from common import jwt_rules
from common.db import write_session
from common.errors import InvalidInput
from common.logging import get_logger
from common.settings import Settings
from common.webhook_address import Resolver, WebhookPolicy, policy_for, system_resolver
from consent import store
from consent.service import GrantKeys

log = get_logger("consent.outbox")
EVENTS_PURPOSE = "events"
MAX_PARALLEL = 32  # deliveries in flight at once
ROUND_WAIT_SECONDS = 2.0  # how long a round waits for its deliveries before moving on


def webhook_client(timeout: float) -> httpx.Client:
    """The HTTP client for webhooks: no redirects (a 30x to an internal address would
    bypass the check), no proxy from the environment (the checked address is the one
    connected to), no kept-alive connections (a connection is keyed by the address it
    was pinned to: one opened, and its certificate checked, for one institution's host
    name must not carry another's events), each phase bounded by ``timeout``."""
    return httpx.Client(
        timeout=httpx.Timeout(timeout),
        follow_redirects=False,
        trust_env=False,
        limits=httpx.Limits(max_keepalive_connections=0),
    )


@dataclass
class OutboxDelivery:
    settings: Settings
    engine: Engine
    keys: GrantKeys
    client: httpx.Client | None = None
    clock: Callable[[], float] = time.time
    resolver: Resolver = system_resolver
    policy: WebhookPolicy | None = None
    _pool: ThreadPoolExecutor | None = field(default=None, init=False, repr=False)
    _pool_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        timeout = self.settings.config.consent.webhook_timeout_seconds
        if self.client is None:
            self.client = webhook_client(timeout)
        if self.policy is None:
            self.policy = policy_for(self.settings, self.resolver)

    def _executor(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(MAX_PARALLEL, thread_name_prefix="webhook")
            return self._pool

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
        """One attempt at the oldest due event of each institution, side by side. Waits
        at most about one delivery's time; a delivery still running then finishes (and
        records its outcome) on its own."""
        now = self.clock()
        cfg = self.settings.config.consent
        with write_session(self.engine) as s:
            due = store.claim_due_events(s, now, limit, cfg.webhook_lease_seconds)
        if not due:
            return 0
        pool = self._executor()
        futures: list[Future[bool]] = [pool.submit(self._attempt, row, now) for row in due]
        # Not a moment longer than a healthy receiver needs: the next round claims the
        # next events of the other institutions while a slow one is still in flight
        # (its lease keeps its own events back until it is done).
        done, _ = wait_all(futures, timeout=min(ROUND_WAIT_SECONDS, cfg.webhook_timeout_seconds))
        return sum(1 for f in done if f.exception() is None and f.result())

    def _send(self, row: dict[str, Any]) -> str | None:
        """POST one event; the error text, or None when the receiver took it."""
        assert self.policy is not None and self.client is not None
        try:
            target = self.policy.target(str(row["webhook_url"]))
        except InvalidInput as e:
            return f"{e.code}: {e.message}"
        event = json.loads(row["payload"])
        token = self.keys.sign_jwt(
            EVENTS_PURPOSE,
            {**event, "aud": row["institution_id"]},
            {"typ": jwt_rules.TYP_EVENT},
        )
        extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
        try:
            resp = self.client.post(
                target.pinned_url(),
                content=token,
                headers={
                    "Host": target.host_header(),
                    "Content-Type": "application/jwt",
                    "X-Xinyi-Event-Id": row["event_id"],
                    # The same key on every attempt of one event: a receiver that got
                    # it before (its answer was lost) drops the repeat.
                    "Idempotency-Key": row["event_id"],
                },
                extensions=extensions,
            )
        except httpx.HTTPError as e:
            return f"{type(e).__name__}: {e}"
        if resp.status_code >= 300:
            return f"HTTP {resp.status_code}"
        return None

    def _attempt(self, row: dict[str, Any], claimed_at: float) -> bool:
        """``_deliver`` on a pool thread: an unexpected error is logged (the event stays
        leased and is tried again when the lease ends), never lost in a future."""
        try:
            return self._deliver(row, claimed_at)
        except Exception as e:
            log.warning(
                "webhook_delivery_crashed",
                event_id=row["event_id"],
                institution=row["institution_id"],
                error=type(e).__name__,
            )
            return False

    def _deliver(self, row: dict[str, Any], claimed_at: float) -> bool:
        """One attempt at one event, its outcome recorded; True when delivered."""
        cfg = self.settings.config.consent
        error = self._send(row)
        with write_session(self.engine) as s:
            if error is None:
                store.mark_delivered(s, row["id"], int(self.clock()))
                return True
            attempts = row["attempts"] + 1
            wait = cfg.webhook_backoff_seconds * 2 ** min(attempts - 1, 16)
            nxt = store.GAVE_UP_AT if attempts >= cfg.webhook_max_attempts else claimed_at + wait
            store.mark_failed(s, row["id"], next_attempt_at=nxt, error=error)
        log.warning(
            "webhook_failed",
            event_id=row["event_id"],
            institution=row["institution_id"],
            attempts=attempts,
            error=error,
        )
        return False

    def close(self) -> None:
        """Stop taking deliveries (those in flight finish on their own)."""
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
