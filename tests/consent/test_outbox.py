"""Webhook delivery from the durable outbox, against a real local HTTP receiver."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import jwt
import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from common.settings import Settings
from common.webhook_address import WebhookPolicy
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


# The receivers of these tests listen on loopback: a policy that lets them (UNSAFE).
LOOPBACK_ALLOWED = WebhookPolicy(require_https=False, unsafe_allow_private=True)


def delivery(
    svc: ConsentService, ring: KeyRing, clock: Clock, policy: WebhookPolicy = LOOPBACK_ALLOWED
) -> OutboxDelivery:
    return OutboxDelivery(
        settings=svc.settings,
        engine=svc.engine,
        keys=ring,
        client=httpx.Client(),
        clock=clock,
        policy=policy,
    )


def set_webhook(engine: Engine, url: str | None, institution: str = "bank_a") -> None:
    with engine.begin() as c:
        c.execute(
            sa.text("UPDATE institutions SET webhook_url = :u WHERE id = :i"),
            {"u": url, "i": institution},
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
        header = jwt.get_unverified_header(token)
        assert header["typ"] == "xinyi-event+jwt"
        # Signed by the events key, which is not a grants key: an event is never a grant.
        assert ring.public_key(header["kid"], "grants") is None
        key = ring.public_key(header["kid"], "events")
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


# Where webhooks may go (SSRF) and how long they may take -----------------------------------


class Resolver:
    """A DNS the test controls: name -> the addresses of each successive lookup."""

    def __init__(self, answers: dict[str, list[list[str]]]) -> None:
        self.answers = answers
        self.calls: list[str] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append(host)
        seq = self.answers[host]
        return seq.pop(0) if len(seq) > 1 else seq[0]


def last_error(engine: Engine) -> tuple[int, str | None, Any]:
    with engine.connect() as c:
        row = c.execute(
            sa.text("SELECT attempts, last_error, delivered_at FROM webhook_outbox ORDER BY id")
        ).first()
    assert row is not None
    return int(row[0]), row[1], row[2]


@pytest.mark.parametrize(
    "address",
    ["169.254.169.254", "127.0.0.1", "10.1.2.3", "100.100.100.200", "::1", "::ffff:127.0.0.1"],
)
def test_a_name_that_resolves_inside_the_network_is_not_posted_to(
    consent_service: ConsentService, ring: KeyRing, clock: Clock, address: str
) -> None:
    dns = Resolver({"hooks.bank.example": [[address]]})
    set_webhook(consent_service.engine, "https://hooks.bank.example/xinyi")
    request(consent_service)
    outbox = delivery(consent_service, ring, clock, WebhookPolicy(resolver=dns))
    assert outbox.deliver_due() == 0
    attempts, error, delivered = last_error(consent_service.engine)
    assert attempts == 1 and delivered is None
    assert error is not None and error.startswith("webhook_address_forbidden")
    assert dns.calls == ["hooks.bank.example"]


def test_a_name_rebound_to_a_private_address_after_registration_is_refused_at_delivery(
    consent_service: ConsentService, ring: KeyRing, clock: Clock
) -> None:
    # Public when the institution registered it, the metadata service when delivering.
    dns = Resolver({"hooks.bank.example": [["8.8.8.8"], ["169.254.169.254"]]})
    policy = WebhookPolicy(resolver=dns)
    policy.check_registration("https://hooks.bank.example/xinyi")
    set_webhook(consent_service.engine, "https://hooks.bank.example/xinyi")
    request(consent_service)
    assert delivery(consent_service, ring, clock, policy).deliver_due() == 0
    assert str(last_error(consent_service.engine)[1]).startswith("webhook_address_forbidden")


def test_the_connection_goes_to_the_address_that_was_checked(
    consent_service: ConsentService, ring: KeyRing, clock: Clock, receiver: Receiver
) -> None:
    """The name is resolved once per delivery, by the checking resolver, and the POST
    goes to that address with the name in Host: resolving again (a second answer from a
    rebinding DNS) cannot redirect it."""
    port = receiver.server.server_address[1]
    dns = Resolver({"hooks.bank.example": [["127.0.0.1"], ["192.0.2.1"]]})
    policy = WebhookPolicy(require_https=False, unsafe_allow_private=True, resolver=dns)
    set_webhook(consent_service.engine, f"http://hooks.bank.example:{port}/hook")
    request(consent_service)
    assert delivery(consent_service, ring, clock, policy).deliver_due() == 1
    assert dns.calls == ["hooks.bank.example"]
    headers, _ = receiver.received[0]
    assert headers["Host"] == f"hooks.bank.example:{port}"


def test_plain_http_is_refused_at_delivery_when_https_is_required(
    consent_service: ConsentService, ring: KeyRing, clock: Clock, receiver: Receiver
) -> None:
    set_webhook(consent_service.engine, receiver.url)
    request(consent_service)
    policy = WebhookPolicy(require_https=True, unsafe_allow_private=True)
    assert delivery(consent_service, ring, clock, policy).deliver_due() == 0
    assert str(last_error(consent_service.engine)[1]).startswith("webhook_https_required")
    assert receiver.received == []


class Silent:
    """A receiver that accepts connections and never answers."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/hook"

    def close(self) -> None:
        self.sock.close()


def test_a_silent_receiver_delays_no_other_institution(
    engine: Engine,
    database_url: str,
    make_settings: Callable[..., Settings],
    ring: KeyRing,
    clock: Clock,
    receiver: Receiver,
) -> None:
    settings = make_settings(database_url=database_url, consent={"webhook_timeout_seconds": 4})
    svc = ConsentService(settings=settings, engine=engine, keys=ring, clock=clock)
    silent = Silent()
    try:
        set_webhook(engine, silent.url, "bank_a")
        set_webhook(engine, receiver.url, "bank_b")
        svc.request("bank_a", _body())
        svc.request("bank_b", _body())
        outbox = delivery(svc, ring, clock)
        started = time.monotonic()
        assert outbox.deliver_due() == 1  # bank_b's, while bank_a's still waits
        assert time.monotonic() - started < 3.5
        assert len(receiver.received) == 1
        svc.request("bank_b", _body())  # bank_b's next event is not held behind bank_a
        assert outbox.deliver_due() == 1
        assert len(receiver.received) == 2
        # The silent receiver's delivery ends at its timeout, as a failed attempt.
        deadline = time.monotonic() + 15
        while last_error(engine)[0] == 0 and time.monotonic() < deadline:
            time.sleep(0.2)
        attempts, error, delivered = last_error(engine)
        assert attempts == 1 and delivered is None
        assert error is not None and "Timeout" in error
    finally:
        outbox.close()
        silent.close()


def _body() -> dict[str, Any]:
    return {
        "enterprise": ENT,
        "purpose": "working_capital_loan",
        "ops": ["verify"],
        "categories": ["tax"],
        "duration_days": 30,
        "max_uses": 3,
    }


def test_a_redirect_is_not_followed(
    consent_service: ConsentService, ring: KeyRing, clock: Clock, receiver: Receiver
) -> None:
    """A receiver answering 302 to an internal address gets a failed attempt: the
    gateway's own client (the one built when none is given) follows no redirect."""

    class Redirect(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.send_response(302)
            self.send_header("Location", receiver.url)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        set_webhook(consent_service.engine, f"http://127.0.0.1:{server.server_address[1]}/h")
        request(consent_service)
        outbox = OutboxDelivery(
            settings=consent_service.settings,
            engine=consent_service.engine,
            keys=ring,
            clock=clock,
            policy=LOOPBACK_ALLOWED,
        )
        assert outbox.deliver_due() == 0
        assert receiver.received == []
        assert last_error(consent_service.engine)[1] == "HTTP 302"
    finally:
        server.shutdown()


# A receiver down for a minute (--- alerts ---) ---------------------------------------------


class FlakyReceiver(Receiver):
    """A receiver that can go away (its port refuses connections) and come back on the
    same address, and that can take an event yet lose its answer (503 after storing),
    as a receiver crashing mid-request would. It keeps each event once, by the
    Idempotency-Key header, as the docs tell receivers to."""

    def __init__(self) -> None:
        super().__init__()
        self.port = self.server.server_address[1]
        self.lose_answers = 0
        self.kept: dict[str, bytes] = {}
        self.attempts: list[str] = []

    def _serve(self, server: ThreadingHTTPServer) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                key = self.headers["Idempotency-Key"]
                receiver.attempts.append(key)
                receiver.kept.setdefault(key, body)  # a repeat is dropped
                if receiver.lose_answers:
                    receiver.lose_answers -= 1
                    self.send_response(503)
                else:
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        server.RequestHandlerClass = Handler
        threading.Thread(target=server.serve_forever, daemon=True).start()

    def down(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def up(self) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), BaseHTTPRequestHandler)
        self._serve(self.server)


def test_a_receiver_down_for_a_minute_gets_every_event_after_in_order_once(
    consent_service: ConsentService, ring: KeyRing, clock: Clock
) -> None:
    receiver = FlakyReceiver()
    receiver.down()
    receiver.up()  # now served by the idempotent handler
    try:
        set_webhook(consent_service.engine, receiver.url)
        outbox = delivery(consent_service, ring, clock)
        produced: list[str] = []

        def produce() -> None:
            cid = request(consent_service)
            produced.append(cid)
            consent_service.act(cid, "approve", ENT)

        produce()
        assert outbox.deliver_due() == 2
        receiver.down()  # from here on the port refuses connections, for a minute
        started = clock.t
        while clock.t < started + 60:
            if int(clock.t - started) % 10 == 0:
                produce()  # consents keep changing during the outage
            assert outbox.deliver_due() == 0
            clock.t += 1
        receiver.up()
        receiver.lose_answers = 1  # the first event after the outage: taken, answer lost
        for _ in range(600):  # ten minutes more of the fake clock at most
            outbox.deliver_due()
            with consent_service.engine.connect() as c:
                left = c.execute(
                    sa.text("SELECT count(*) FROM webhook_outbox WHERE delivered_at IS NULL")
                ).scalar_one()
            if left == 0:
                break
            clock.t += 1
        assert left == 0
        assert clock.t - started < 60 + 300  # the backoff caught up within minutes
        events = [
            jwt.decode(
                body,
                ring.public_key(jwt.get_unverified_header(body)["kid"], "events"),  # type: ignore[arg-type]
                algorithms=["EdDSA"],
                audience="bank_a",
            )
            for body in receiver.kept.values()
        ]
        # Every event once, each consent's pending before its active, in the order made.
        assert [(e["consent_id"], e["status"]) for e in events] == [
            (cid, status) for cid in produced for status in ("pending", "active")
        ]
        assert [e["event_id"] for e in events] == list(receiver.kept)
        # The answer lost: one event came twice, with the same key, and was kept once.
        assert len(receiver.attempts) == len(receiver.kept) + 1
        assert len(set(receiver.attempts)) == len(receiver.kept)
    finally:
        receiver.down()
