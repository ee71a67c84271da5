"""Webhook delivery from the durable outbox, against a real local HTTP receiver."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import jwt
import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from consent.outbox import OutboxDelivery
from consent.service import ConsentService
from keys import KeyRing
from tests.consent.conftest import Clock
from tests.consent.test_service import ENT, approved, request


class Receiver:
    """A webhook endpoint that records what it gets; it can be told to fail."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.failing = False
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if receiver.failing:
                    self.send_response(503)
                else:
                    receiver.received.append((dict(self.headers), body))
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()


@pytest.fixture
def ring(consent_service: ConsentService) -> KeyRing:
    ring = KeyRing(consent_service.settings)
    ring.ensure_all()
    return ring


def delivery(svc: ConsentService, ring: KeyRing, clock: Clock) -> OutboxDelivery:
    return OutboxDelivery(
        settings=svc.settings, engine=svc.engine, keys=ring, client=httpx.Client(), clock=clock
    )


def set_webhook(engine: Engine, url: str | None) -> None:
    with engine.begin() as c:
        c.execute(
            sa.text("UPDATE institutions SET webhook_url = :u WHERE id = 'bank_a'"), {"u": url}
        )


def test_events_arrive_signed_in_order(
    consent_service: ConsentService, ring: KeyRing, clock: Clock, receiver: Receiver
) -> None:
    set_webhook(consent_service.engine, receiver.url)
    cid, _ = approved(consent_service)
    consent_service.act(cid, "revoke", ENT)
    assert delivery(consent_service, ring, clock).deliver_due() == 3
    statuses = []
    for headers, body in receiver.received:
        assert headers["Content-Type"] == "application/jwt"
        token = body.decode()
        kid = jwt.get_unverified_header(token)["kid"]
        key = ring.public_key(kid, "grants")
        assert key is not None
        claims = jwt.decode(token, key, algorithms=["EdDSA"], audience="bank_a")
        assert claims["consent_id"] == cid
        assert headers["X-Xinyi-Event-Id"] == claims["event_id"]
        statuses.append(claims["status"])
    assert statuses == ["pending", "active", "revoked"]
    # Delivered events are not sent again.
    assert delivery(consent_service, ring, clock).deliver_due() == 0


def test_failed_deliveries_are_retried_with_backoff_until_the_receiver_recovers(
    consent_service: ConsentService, ring: KeyRing, clock: Clock, receiver: Receiver
) -> None:
    set_webhook(consent_service.engine, receiver.url)
    receiver.failing = True
    request(consent_service)
    outbox = delivery(consent_service, ring, clock)
    assert outbox.deliver_due() == 0
    assert outbox.deliver_due() == 0  # not due again before the backoff
    with consent_service.engine.connect() as c:
        attempts, error = c.execute(
            sa.text("SELECT attempts, last_error FROM webhook_outbox")
        ).one()
    assert attempts == 1 and "503" in error
    receiver.failing = False
    clock.t += consent_service.settings.config.consent.webhook_backoff_seconds + 1
    assert outbox.deliver_due() == 1
    claims = jwt.decode(receiver.received[0][1], options={"verify_signature": False})
    assert claims["status"] == "pending"


def test_events_wait_for_an_institution_without_a_webhook(
    consent_service: ConsentService, ring: KeyRing, clock: Clock, receiver: Receiver
) -> None:
    request(consent_service)
    outbox = delivery(consent_service, ring, clock)
    for _ in range(consent_service.settings.config.consent.webhook_max_attempts + 1):
        assert outbox.deliver_due() == 0
        clock.t += 10**7
    set_webhook(consent_service.engine, receiver.url)
    assert outbox.deliver_due() == 1
    assert len(receiver.received) == 1


def test_delivery_gives_up_after_the_configured_attempts(
    consent_service: ConsentService, ring: KeyRing, clock: Clock, receiver: Receiver
) -> None:
    set_webhook(consent_service.engine, receiver.url)
    receiver.failing = True
    request(consent_service)
    outbox = delivery(consent_service, ring, clock)
    for _ in range(consent_service.settings.config.consent.webhook_max_attempts + 3):
        outbox.deliver_due()
        clock.t += 10**7
    with consent_service.engine.connect() as c:
        attempts = c.execute(sa.text("SELECT attempts FROM webhook_outbox")).scalar_one()
    assert attempts == consent_service.settings.config.consent.webhook_max_attempts


def test_a_later_event_never_overtakes_a_failed_earlier_one(
    consent_service: ConsentService, ring: KeyRing, clock: Clock, receiver: Receiver
) -> None:
    set_webhook(consent_service.engine, receiver.url)
    receiver.failing = True
    cid = request(consent_service)
    outbox = delivery(consent_service, ring, clock)
    assert outbox.deliver_due() == 0  # "pending" fails
    consent_service.act(cid, "approve", ENT)  # "active" is queued behind it
    receiver.failing = False
    assert outbox.deliver_due() == 0  # "pending" is not due yet, so "active" waits too
    clock.t += 3600
    assert outbox.deliver_due() == 2
    statuses = [
        jwt.decode(body, options={"verify_signature": False})["status"]
        for _, body in receiver.received
    ]
    assert statuses == ["pending", "active"]
