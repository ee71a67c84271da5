"""``/metrics`` exposes what an operator alerts on: requests, refusals by code, audit
queue depth and lag, log size, checkpoint age, webhook outbox depth and HE compute time,
to operators only (the metrics token, or an operator's session); ``/readyz`` reports the
audit queue."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from pydantic import SecretStr

from gateway import create_app

METRICS_TOKEN = "metrics token of this test"
SCRAPER = {"Authorization": f"Bearer {METRICS_TOKEN}"}


@pytest.fixture
def app(database_url: str, make_settings: Any) -> Iterator[Flask]:
    settings = make_settings(database_url=database_url).model_copy(
        update={"metrics_token": SecretStr(METRICS_TOKEN)}
    )
    app = create_app(settings, background=False)
    app.config["TESTING"] = True
    yield app
    app.extensions["xinyi"].stop()
    app.extensions["xinyi"].engine.dispose()


def test_metrics_name_requests_refusals_and_the_audit_state(app: Flask) -> None:
    client = app.test_client()
    assert client.post("/v1/verify", json={}).status_code == 401
    app.extensions["xinyi"].audit.checkpoint(force=True)
    text = client.get("/metrics", headers=SCRAPER).get_data(as_text=True)
    assert 'xinyi_requests_total{method="POST",route="/v1/verify",status="401"}' in text
    assert 'xinyi_refusals_total{code="unauthenticated"}' in text
    for series in (
        "xinyi_request_seconds_bucket",
        "xinyi_audit_queue_depth",
        "xinyi_audit_queue_lag_seconds",
        "xinyi_audit_log_size",
        "xinyi_audit_checkpoint_age_seconds",
        "xinyi_webhook_outbox_depth",
        "# TYPE xinyi_he_compute_seconds histogram",
    ):
        assert series in text, series


def test_metrics_are_for_operators_only(app: Flask) -> None:
    registry = app.extensions["xinyi"].registry
    registry.add_user(login="ops-1", password="metrics password", role="operator")
    registry.add_user(
        login="ent-1", password="metrics password", role="enterprise", uscc="91330100716105852F"
    )
    anonymous = app.test_client()
    assert anonymous.get("/metrics").status_code == 401
    for wrong in ("Bearer not-the-token", f"Basic {METRICS_TOKEN}", "Bearer"):
        resp = anonymous.get("/metrics", headers={"Authorization": wrong})
        assert resp.status_code == 401, wrong
        assert b"xinyi_" not in resp.data
    people = {}
    for login in ("ops-1", "ent-1"):
        people[login] = app.test_client()
        body = {"login": login, "password": "metrics password"}
        assert people[login].post("/v1/session", json=body).status_code == 200
    refused = people["ent-1"].get("/metrics")
    assert refused.status_code == 403 and refused.get_json()["error"] == "wrong_role"
    assert b"xinyi_requests_total" in people["ops-1"].get("/metrics").data
    assert b"xinyi_requests_total" in anonymous.get("/metrics", headers=SCRAPER).data


def test_readiness_reports_the_database_and_the_audit_queue(app: Flask) -> None:
    resp = app.test_client().get("/readyz")
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["status"] == "ready" and body["database"] is True
    assert body["audit_queue_depth"] == 0 and isinstance(body["audit_log_size"], int)
    assert app.test_client().get("/healthz").get_json() == {"status": "ok"}


def _gauge(text: str, name: str) -> float:
    return next(
        float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + " ")
    )


def test_outbox_depth_counts_only_events_that_will_be_sent(app: Flask) -> None:
    """An institution without a webhook is never sent its events: counting them made
    the documented "outbox depth only grows" alert fire for ever."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from common.db import write_session
    from consent import store as consent_store
    from consent.store import GAVE_UP_AT, webhook_outbox
    from keys.jwk import public_jwk

    svc = app.extensions["xinyi"]
    registry = svc.registry
    jwk = public_jwk(Ed25519PrivateKey.generate().public_key())
    registry.add_institution("silent_bank", name="No webhook", jwk=jwk)
    registry.add_institution(
        "hooked_bank", name="Webhook", jwk=jwk, webhook_url="https://h.example/"
    )
    with write_session(svc.engine) as s:
        for n in range(3):
            consent_store.enqueue_event(
                s, institution_id="silent_bank", event_id=f"s{n}", payload="{}", now=1
            )
        for n in range(2):
            consent_store.enqueue_event(
                s, institution_id="hooked_bank", event_id=f"h{n}", payload="{}", now=1
            )
        s.execute(
            webhook_outbox.update()
            .where(webhook_outbox.c.event_id == "h1")
            .values(next_attempt_at=GAVE_UP_AT)
        )
    text = app.test_client().get("/metrics", headers=SCRAPER).get_data(as_text=True)
    assert _gauge(text, "xinyi_webhook_outbox_depth") == 1
    assert _gauge(text, "xinyi_webhook_outbox_given_up") == 1
    registry.set_webhook("silent_bank", "https://s.example/")
    text = app.test_client().get("/metrics", headers=SCRAPER).get_data(as_text=True)
    assert _gauge(text, "xinyi_webhook_outbox_depth") == 4
