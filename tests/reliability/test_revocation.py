"""Revocation race: many concurrent verify requests with one grant while the enterprise
revokes it, on a real gateway with 2 gunicorn workers (and no cache window anywhere).

After the revoke call has returned, no request succeeds: every request sent after that
moment, on whichever worker and kept-alive connection it lands, is refused with
``grant_revoked``, the very next one included. Repeated over several grants; at the end
uses and audit entries agree and the log verifies.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from tests.reliability.conftest import Live, Outcome

ROUNDS = 6
THREADS = 8
BEFORE_REVOKE = 0.25  # seconds of traffic before the enterprise revokes
AFTER_REVOKE = 0.3


def fresh_grant(live: Live, uscc: str, person: object) -> tuple[str, str]:
    import httpx

    assert isinstance(person, httpx.Client)
    bank = httpx.post(
        live.base + "/v1/consents",
        json={
            "enterprise": uscc,
            "purpose": "working_capital_loan",
            "ops": ["verify"],
            "categories": ["tax", "social_security", "housing_fund", "utilities"],
            "duration_days": 30,
            "max_uses": 200,
        },
        headers={"Authorization": f"Bearer {live.token}"},
        timeout=30,
    )
    assert bank.status_code == 201, bank.text
    consent_id = bank.json()["id"]
    approved = person.post(f"/v1/consents/{consent_id}/approve")
    assert approved.status_code == 200, approved.text
    return consent_id, approved.json()["grant"]


def race(live: Live, consent_id: str, grant: str, person: object) -> tuple[list[Outcome], float]:
    """Hammer verify with ``grant``; revoke meanwhile. Returns the outcomes of this grant
    and the monotonic time the revoke call returned."""
    import httpx

    assert isinstance(person, httpx.Client)
    stop = threading.Event()
    mine: list[Outcome] = []
    lock = threading.Lock()

    def loop(t: int) -> None:
        conn = live.connection()
        k = t
        while not stop.is_set():
            out = live.send(conn, "POST", "/v1/verify", live.verify_body(k, grant))
            with lock:
                mine.append(out)
            k += THREADS
        conn.close()

    pool = [threading.Thread(target=loop, args=(t,), daemon=True) for t in range(THREADS)]
    for t in pool:
        t.start()
    time.sleep(BEFORE_REVOKE)
    revoked = person.post(f"/v1/consents/{consent_id}/revoke")
    returned = time.monotonic()
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked", revoked.text
    time.sleep(AFTER_REVOKE)
    stop.set()
    for t in pool:
        t.join(timeout=30)
    return mine, returned


def test_after_the_revoke_call_returns_no_request_succeeds(
    database_url: str, live_factory: Callable[..., Live]
) -> None:
    live = live_factory(database_url, users=2)
    people = [live.person(u) for u in live.world.usccs[:2]]
    served_before = 0
    for round_ in range(ROUNDS):
        uscc, person = live.world.usccs[round_ % 2], people[round_ % 2]
        consent_id, grant = fresh_grant(live, uscc, person)
        outcomes, returned = race(live, consent_id, grant, person)
        after = [o for o in outcomes if o.sent > returned]
        assert after, "requests were sent after the revoke returned"
        wrong = [(o.status, o.body.get("error")) for o in after if o.status != 403]
        assert not wrong, f"round {round_}: after the revoke: {wrong[:5]}"
        assert {o.body["error"] for o in after} == {"grant_revoked"}
        # Every refusal is logged too.
        assert all(isinstance(o.audit_index, int) for o in after)
        served_before += sum(o.status == 200 for o in outcomes if o.answered < returned)
    assert served_before > 0, "the race had requests served before each revoke"
    for person in people:
        person.close()
    live.check()
