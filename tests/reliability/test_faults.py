"""Faults under load on a real gateway (``xinyi serve``, 2 gunicorn workers): a worker
killed with SIGKILL, PostgreSQL restarted, an audit store that refuses writes, a webhook
receiver that is down while the outbox fills.

After each fault (see ``Live.check``): every response that said 200 has its audit entry,
no index is lost or duplicated, ``xinyi audit verify`` passes, grant uses equal the
allowed entries, a revocation issued during the fault is in force, and webhooks are
delivered once the receiver is back. While the database or the audit store is down the
gateway answers 503 and serves nothing; it never answers 500.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import jwt
import sqlalchemy as sa

from common.db import is_sqlite, make_engine
from tests.reliability.conftest import Live, PrivateCluster, Receiver

ALLOWED_DURING_FAULTS = {0, 200, 403, 404, 503}  # 0: the connection itself failed


def revoke_during(live: Live, uscc: str, seconds: float = 30) -> str:
    """The enterprise revokes its first grant, retrying while the gateway cannot answer
    (what a person or a client does); returns the consent id once revoked."""
    consent_id = live.world.consent_ids[live.world.usccs.index(uscc)]
    deadline = time.monotonic() + seconds
    while True:
        try:
            with live.signed_in(uscc) as person:
                resp = person.post(f"/v1/consents/{consent_id}/revoke")
                if resp.status_code == 200:
                    assert resp.json()["status"] == "revoked"
                    return consent_id
                # An earlier attempt may have committed while its answer was lost (its
                # worker was killed): then the consent is revoked already.
                now = person.get(f"/v1/consents/{consent_id}")
                if now.status_code == 200 and now.json()["status"] == "revoked":
                    return consent_id
            assert resp.status_code == 503, resp.text
        except (httpx.HTTPError, AssertionError):
            if time.monotonic() > deadline:
                raise
        time.sleep(0.2)


def assert_revoked_in_force(live: Live, uscc: str) -> None:
    grant = live.world.grants[live.world.usccs.index(uscc)]
    conn = live.connection()
    for k in range(4):  # spread over kept-alive connections is not needed: each is fresh
        out = live.send(conn, "POST", "/v1/verify", live.verify_body(k, grant))
        assert out.status == 403 and out.body["error"] == "grant_revoked", out.body
    conn.close()


def statuses(live: Live) -> set[int]:
    return {o.status for o in live.outcomes}


def serve_again(live: Live, seconds: float = 30) -> None:
    """A verify succeeds again within ``seconds``."""
    conn = live.connection()

    def ok() -> bool:
        k = len(live.outcomes)
        g = live.world.grants[-1]
        return live.send(conn, "POST", "/v1/verify", live.verify_body(k, g)).status == 200

    live.wait_until(ok, seconds, "the gateway serves again")
    conn.close()


def test_a_worker_killed_under_load_loses_nothing(
    database_url: str, live_factory: Callable[..., Live], receiver: Receiver
) -> None:
    live = live_factory(database_url, users=1)
    receiver.up()
    set_hook = httpx.put(
        live.base + "/v1/webhook",
        json={"url": receiver.url},
        headers={"Authorization": f"Bearer {live.token}"},
    )
    assert set_hook.status_code == 200
    before = set(live.server.worker_pids())
    stop = threading.Event()
    pool = live.hammer(stop, threads=6)
    time.sleep(1.0)
    victim = sorted(before)[0]
    os.kill(victim, signal.SIGKILL)
    consent_id = revoke_during(live, live.world.usccs[0])
    live.wait_until(
        lambda: len(set(live.server.worker_pids()) - {victim}) == 2,
        30,
        "gunicorn replaces the killed worker",
    )
    time.sleep(1.0)
    stop.set()
    for t in pool:
        t.join(timeout=30)
    assert statuses(live) <= ALLOWED_DURING_FAULTS, statuses(live)
    assert sum(o.status == 200 for o in live.outcomes) > 20
    assert_revoked_in_force(live, live.world.usccs[0])
    live.check()
    live.wait_until(
        lambda: any(
            _event(body).get("consent_id") == consent_id and _event(body).get("status") == "revoked"
            for _, body in receiver.events
        ),
        20,
        "the revocation's webhook is delivered",
    )


def _event(token: str) -> dict[str, Any]:
    return dict(jwt.decode(token, options={"verify_signature": False}))


def test_postgresql_restarted_under_load_loses_nothing(
    private_pg: PrivateCluster, live_factory: Callable[..., Live]
) -> None:
    live = live_factory(private_pg.url, users=1)
    stop = threading.Event()
    pool = live.hammer(stop, threads=6)
    time.sleep(1.0)
    served_before = sum(o.status == 200 for o in live.outcomes)
    private_pg.restart()
    consent_id = revoke_during(live, live.world.usccs[0])
    serve_again(live)
    time.sleep(1.0)
    stop.set()
    for t in pool:
        t.join(timeout=30)
    assert served_before > 0
    assert statuses(live) <= ALLOWED_DURING_FAULTS, statuses(live)
    assert_revoked_in_force(live, live.world.usccs[0])
    assert consent_id
    live.check()
    assert private_pg.running()


def _refuse_audit_writes(engine: sa.Engine, refuse: bool) -> None:
    """A trigger that makes the audit queue refuse every insert (or removes it)."""
    with engine.connect() as conn, conn.execution_options(sqlite_begin="IMMEDIATE").begin():
        if is_sqlite(engine):
            conn.execute(sa.text("DROP TRIGGER IF EXISTS refuse_audit"))
            if refuse:
                conn.execute(
                    sa.text(
                        "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_queue "
                        "BEGIN SELECT RAISE(ABORT, 'the audit store refuses writes'); END"
                    )
                )
            return
        conn.execute(sa.text("DROP TRIGGER IF EXISTS refuse_audit ON audit_queue"))
        if refuse:
            conn.execute(
                sa.text(
                    "CREATE OR REPLACE FUNCTION refuse_audit() RETURNS trigger "
                    "LANGUAGE plpgsql AS $$ BEGIN "
                    "RAISE EXCEPTION 'the audit store refuses writes'; END $$"
                )
            )
            conn.execute(
                sa.text(
                    "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_queue "
                    "FOR EACH ROW EXECUTE FUNCTION refuse_audit()"
                )
            )


def _uses(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {str(i): int(u) for i, u in conn.execute(sa.text("SELECT id, uses FROM consents"))}


def test_an_audit_store_that_refuses_writes_serves_nothing(
    database_url: str, live_factory: Callable[..., Live]
) -> None:
    live = live_factory(database_url, users=1)
    engine = make_engine(database_url)
    stop = threading.Event()
    pool = live.hammer(stop, threads=4)
    time.sleep(0.8)
    _refuse_audit_writes(engine, True)
    broke = time.monotonic()
    time.sleep(1.5)
    during = [o for o in live.outcomes if o.sent > broke]
    # A revocation cannot be logged either: it is refused (503), and nothing is served.
    with live.signed_in(live.world.usccs[0]) as person:
        cid = live.world.consent_ids[0]
        assert person.post(f"/v1/consents/{cid}/revoke").status_code == 503
    assert during and {o.status for o in during} == {503}, {o.status for o in during}
    assert {o.body.get("error") for o in during} == {"audit_unavailable"}
    uses = _uses(engine)
    time.sleep(0.5)
    assert _uses(engine) == uses, "no use is counted for a request that was not logged"
    _refuse_audit_writes(engine, False)
    consent_id = revoke_during(live, live.world.usccs[0])
    serve_again(live)
    stop.set()
    for t in pool:
        t.join(timeout=30)
    assert consent_id
    assert statuses(live) <= ALLOWED_DURING_FAULTS, statuses(live)
    assert_revoked_in_force(live, live.world.usccs[0])
    live.check()
    engine.dispose()


def test_the_outbox_fills_while_the_receiver_is_down_and_drains_after(
    database_url: str, live_factory: Callable[..., Live], receiver: Receiver
) -> None:
    live = live_factory(database_url, users=2)
    headers = {"Authorization": f"Bearer {live.token}"}
    assert (
        httpx.put(live.base + "/v1/webhook", json={"url": receiver.url}, headers=headers)
    ).status_code == 200
    # The receiver is down: every status change of this burst waits in the outbox.
    for uscc in live.world.usccs[:2]:
        with live.signed_in(uscc) as person:
            cid = live.world.consent_ids[live.world.usccs.index(uscc)]
            for action in ("pause", "resume", "revoke"):
                assert person.post(f"/v1/consents/{cid}/{action}").status_code == 200
    with live.engine.connect() as conn:
        expected = [
            str(e)
            for e in conn.execute(
                sa.text("SELECT event_id FROM webhook_outbox ORDER BY id")
            ).scalars()
        ]
    time.sleep(1.0)
    scraper = {"Authorization": f"Bearer {live.env['XINYI_METRICS_TOKEN']}"}
    metrics = httpx.get(live.base + "/metrics", headers=scraper).text
    depth = next(
        float(line.split()[-1])
        for line in metrics.splitlines()
        if line.startswith("xinyi_webhook_outbox_depth")
    )
    assert depth > 0
    with live.engine.connect() as conn:
        failed = conn.execute(
            sa.text("SELECT count(*) FROM webhook_outbox WHERE last_error IS NOT NULL")
        ).scalar()
    assert failed, "deliveries were attempted and failed while the receiver was down"
    receiver.up()
    live.wait_until(lambda: live.queue_depth() == 0 and _outbox(live) == 0, 30, "outbox drains")
    received = [event_id for event_id, _ in receiver.events]
    assert set(received) == set(expected), "every event is delivered (at least once)"
    # In order per consent, and signed by the gateway's grants key.
    jwks = jwt.PyJWKSet.from_dict(httpx.get(live.base + "/.well-known/jwks.json").json())
    keys = {k.key_id: k for k in jwks.keys}
    seen: dict[str, list[str]] = {}
    first_seen: set[str] = set()
    for event_id, token in receiver.events:
        kid = jwt.get_unverified_header(token)["kid"]
        event = jwt.decode(token, keys[kid], algorithms=["EdDSA"], audience="load_bank")
        if event_id not in first_seen:
            first_seen.add(event_id)
            seen.setdefault(event["consent_id"], []).append(event["status"])
    for cid in live.world.consent_ids[:2]:
        assert seen[cid] == ["pending", "active", "paused", "active", "revoked"], seen[cid]
    live.check()


def _outbox(live: Live) -> int:
    with live.engine.connect() as conn:
        return int(
            conn.execute(
                sa.text("SELECT count(*) FROM webhook_outbox WHERE delivered_at IS NULL")
            ).scalar()
            or 0
        )


def test_a_graceful_stop_under_load_finishes_cleanly(
    database_url: str, live_factory: Callable[..., Live]
) -> None:
    live = live_factory(database_url, users=0)
    stop = threading.Event()
    pool = live.hammer(stop, threads=4)
    time.sleep(1.0)
    assert live.server.proc is not None
    live.server.proc.send_signal(signal.SIGTERM)
    code = live.server.proc.wait(timeout=40)
    stop.set()
    for t in pool:
        t.join(timeout=30)
    assert code == 0, "gunicorn stops cleanly on SIGTERM"
    assert statuses(live) <= ALLOWED_DURING_FAULTS, statuses(live)
    assert sum(o.status == 200 for o in live.outcomes) > 10
    live.check()
