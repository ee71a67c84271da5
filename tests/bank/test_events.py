"""An institution checks a webhook event before acting on it: an event signed by the
gateway's events key, for it, passes; a grant or an access token from the same gateway,
an event for another institution or a forged one does not."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from bank.errors import BankError
from bank.events import verify_event
from common.settings import Settings
from keys import KeyRing

EVENT = {"event_id": "evt_1", "consent_id": "cst_1", "status": "revoked", "iat": int(time.time())}


@pytest.fixture
def ring(make_settings: Callable[..., Settings]) -> KeyRing:
    ring = KeyRing(make_settings())
    ring.ensure_all()
    return ring


def test_a_genuine_event_verifies_and_other_kinds_do_not(ring: KeyRing) -> None:
    jwks: dict[str, Any] = ring.jwks()
    event = ring.sign_jwt("events", {**EVENT, "aud": "bank_a"}, {"typ": "xinyi-event+jwt"})
    assert verify_event(event, jwks, "bank_a")["status"] == "revoked"
    refused = [
        # A grant and an access token of the same gateway.
        ring.sign_jwt("grants", {**EVENT, "aud": "bank_a"}, {"typ": "xinyi-grant+jwt"}),
        ring.sign_jwt("tokens", {**EVENT, "aud": "bank_a"}, {"typ": "at+jwt"}),
        # Typed as an event but signed by the grants key (as events once were).
        ring.sign_jwt("grants", {**EVENT, "aud": "bank_a"}, {"typ": "xinyi-event+jwt"}),
        # Another institution's event; an untyped one; an event with a boolean date.
        ring.sign_jwt("events", {**EVENT, "aud": "bank_b"}, {"typ": "xinyi-event+jwt"}),
        ring.sign_jwt("events", {**EVENT, "aud": "bank_a"}),
        ring.sign_jwt(
            "events", {**EVENT, "aud": "bank_a", "iat": True}, {"typ": "xinyi-event+jwt"}
        ),
        event[:-4] + ("AAAA" if not event.endswith("AAAA") else "BBBB"),
        "not a jwt",
    ]
    for token in refused:
        with pytest.raises(BankError) as e:
            verify_event(token, jwks, "bank_a")
        assert e.value.code == "event_invalid"
