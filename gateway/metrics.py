"""Prometheus metrics at ``/metrics`` and per-institution rate limits.

``/metrics`` is for operators only (refusal counts, log size and queue depths tell an
outsider what the platform does): a scraper presents ``Authorization: Bearer`` with
the token in ``$XINYI_METRICS_TOKEN`` (compared in constant time), a person an
operator's session. Anyone else is refused (401, or 403 ``wrong_role``).

Counters and histograms are per process; under gunicorn ``xinyi serve`` sets
``PROMETHEUS_MULTIPROC_DIR`` so a scrape of any worker reports the sum of all of them.
Audit queue depth, integration lag and checkpoint age are read from the database at
scrape time, so they are the same whichever worker answers.

Rate limits: a sliding one-minute window per institution, kept per worker process
(``limits.requests_per_minute`` divided by the number of workers), which needs no shared
state on the hot path; the operator sizes the limit for the whole node.
"""

from __future__ import annotations

import hmac
import os
import time
from collections.abc import Iterator
from typing import Any

from flask import Flask, Response, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from common.errors import AuthenticationFailed, Forbidden
from gateway.auth import current_principal
from gateway.contract import operation
from gateway.ratelimit import RateLimiter
from gateway.services import Services

REQUESTS = Counter("xinyi_requests_total", "HTTP requests", ["method", "route", "status"])
REFUSALS = Counter("xinyi_refusals_total", "Refused requests by error code", ["code"])
LATENCY = Histogram(
    "xinyi_request_seconds",
    "Request latency",
    ["route"],
    buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
HE_SECONDS = Histogram(
    "xinyi_he_compute_seconds",
    "Gateway-side HE compute per request",
    ["kind"],
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.05, 0.1, 1),
)


class StoreCollector(Collector):
    """Audit and outbox gauges read from the shared database at scrape time."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def collect(self) -> Iterator[GaugeMetricFamily]:
        status = self.services.audit.status()
        for name, doc in (
            ("queue_depth", "Audit entries waiting to be integrated"),
            ("queue_lag_seconds", "Age of the oldest waiting audit entry"),
            ("log_size", "Entries integrated into the audit log"),
            ("checkpoint_age_seconds", "Age of the newest signed checkpoint"),
        ):
            value = status.get(name)
            if value is not None:
                yield GaugeMetricFamily(f"xinyi_audit_{name}", doc, value=float(value))
        waiting, given_up = self.services.outbox_depth()
        yield GaugeMetricFamily(
            "xinyi_webhook_outbox_depth",
            "Webhook events waiting to be sent (institutions with a webhook only)",
            value=float(waiting),
        )
        yield GaugeMetricFamily(
            "xinyi_webhook_outbox_given_up",
            "Webhook events no longer retried (webhook_max_attempts reached)",
            value=float(given_up),
        )


def init_app(app: Flask, services: Services) -> None:
    workers = int(os.environ.get("XINYI_WORKERS", "1"))
    limiter = RateLimiter(services.settings.config.limits.requests_per_minute // workers)
    app.extensions["xinyi_rate_limiter"] = limiter
    store_collector = StoreCollector(services)

    @app.before_request
    def _start() -> None:
        g.started = time.perf_counter()

    @app.after_request
    def _count(resp: Response) -> Response:
        route = request.url_rule.rule if request.url_rule else "unmatched"
        REQUESTS.labels(request.method, route, str(resp.status_code)).inc()
        LATENCY.labels(route).observe(time.perf_counter() - g.get("started", time.perf_counter()))
        if resp.status_code >= 400 and resp.is_json:
            body: Any = resp.get_json(silent=True)
            if isinstance(body, dict) and isinstance(body.get("error"), str):
                REFUSALS.labels(body["error"]).inc()
        return resp

    @app.get("/metrics")
    @operation(
        "Prometheus metrics (text exposition format), for operators only: the bearer of "
        "XINYI_METRICS_TOKEN or an operator's session",
        tag="ops",
        answer_media="text/plain",
    )
    def metrics() -> Response:
        admit_scraper(services)
        registry = CollectorRegistry()
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # untyped lib
        else:
            for collector in (REQUESTS, REFUSALS, LATENCY, HE_SECONDS):
                registry.register(collector)
        registry.register(store_collector)
        return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)


def admit_scraper(services: Services) -> None:
    """Let the metrics token's bearer or a signed-in operator through; raise otherwise."""
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, given = header.partition(" ")
        expected = services.settings.metrics_token
        if (
            expected is not None
            and scheme.lower() == "bearer"
            and hmac.compare_digest(
                given.strip().encode("utf-8"), expected.get_secret_value().encode("utf-8")
            )
        ):
            return
        raise AuthenticationFailed("not the metrics token", code="invalid_token")
    if current_principal().kind != "operator":
        raise Forbidden("metrics are for operators", code="wrong_role")
