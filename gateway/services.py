"""The services one gateway process runs with, built once by ``create_app``.

Background work (audit checkpoints, webhook delivery) runs in daemon threads of each
worker; every piece of it is safe to run in several processes at once because it takes
the database lock it needs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from flask import current_app
from sqlalchemy import Engine

from audit.service import AuditLog
from common.db import read_connection, read_session
from common.logging import get_logger
from common.settings import Settings
from common.webhook_address import policy_for
from common.workdays import WorkCalendar
from consent import store as consent_store
from consent.outbox import OutboxDelivery
from consent.service import ConsentService
from gateway.caches import ContextCache, Evaluators, ModelCache, Trainers, VerifiedTokens
from gateway.ratelimit import RateLimiter
from keys import KeyRing
from records.catalog import Catalog
from records.pseudonyms import LEGAL_REP_ID
from registry import Registry
from registry.sessions import Sessions, SignInThrottle

log = get_logger("gateway.services")

FeatureSource = Callable[["Services", Sequence[str], Sequence[str]], np.ndarray]
"""(services, USCCs, gateway columns) → matrix of raw model inputs, NaN where absent."""
PopulationSource = Callable[["Services", Sequence[str]], np.ndarray]
"""(services, gateway columns) → matrix of every enterprise's raw model inputs, NaN
where absent: the population the gateway standardization is fitted on."""


@dataclass
class Services:
    settings: Settings
    engine: Engine
    keys: KeyRing
    registry: Registry
    consent: ConsentService
    audit: AuditLog
    outbox: OutboxDelivery
    catalog: Catalog  # the data catalog's rules, built once
    calendar: WorkCalendar  # the official working days (deadlines of casework)
    sessions: Sessions  # people's sessions (server-side rows)
    throttle: SignInThrottle  # failed sign-ins per login and address
    # This worker's caches (gateway.caches).
    models: ModelCache = field(default_factory=ModelCache)
    contexts: ContextCache = field(default_factory=ContextCache)
    evaluators: Evaluators = field(default_factory=Evaluators)
    trainers: Trainers = field(default_factory=Trainers)
    verified_tokens: VerifiedTokens = field(default_factory=VerifiedTokens)
    training_features: FeatureSource | None = None
    """Where training sessions read the gateway's features; ``None``: the department
    data store (``gateway.api.train.records_features``). Tools and tests put a
    synthetic source here."""
    training_population: PopulationSource | None = None
    """The population training standardizes on; ``None``: every enterprise of the
    department data store (``gateway.api.train.records_population``)."""
    address_limiters: dict[str, RateLimiter] = field(default_factory=dict)
    """Per-address limits of sign-in and sign-up in this worker (``gateway.auth``)."""
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    @property
    def issuer(self) -> str:
        return self.settings.config.server.public_url.rstrip("/")

    def identity_key(self) -> bytes:
        """The key of the legal representatives' id hashes (``records.pseudonyms``)."""
        return self.keys.pseudonym_key(LEGAL_REP_ID)

    def registry_status(self, institution_id: str) -> str | None:
        with read_connection(self.engine) as conn:  # every request: no Session around it
            return consent_store.institution_status(conn, institution_id)

    def outbox_depth(self) -> tuple[int, int]:
        """(webhook events waiting to be sent, events given up on)."""
        with read_session(self.engine) as s:
            return consent_store.outbox_depth(s)

    # Background loops -------------------------------------------------------------
    def start_background(self) -> None:
        if self._threads:
            return
        interval = self.settings.config.audit.checkpoint_interval_seconds
        self._spawn("audit-checkpointer", self.audit.background_step, interval)
        self._spawn(
            "webhook-outbox",
            self.outbox.deliver_due,
            self.settings.config.consent.webhook_backoff_seconds / 2,
        )

    def _spawn(self, name: str, step: Any, interval: float) -> None:
        def loop() -> None:
            while not self._stop.is_set():
                try:
                    step()
                except Exception as e:  # a background step must never kill the worker
                    log.warning(
                        "background_step_failed",
                        loop=name,
                        error=type(e).__name__,
                        detail=str(e)[:200],
                    )
                self._stop.wait(interval)

        t = threading.Thread(target=loop, name=name, daemon=True)
        t.start()
        self._threads.append(t)

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=5)
        self._threads.clear()
        self.outbox.close()


def build(settings: Settings, engine: Engine, secret: bytes) -> Services:
    """The services over ``engine``; ``secret`` is the server secret (sessions, keyed
    hashes of failed sign-ins)."""
    keys = KeyRing(settings)
    keys.ensure_all()
    consent = ConsentService(settings=settings, engine=engine, keys=keys)
    audit = AuditLog(engine, settings, keys.checkpoint_signer())
    outbox = OutboxDelivery(settings=settings, engine=engine, keys=keys)
    return Services(
        settings=settings,
        engine=engine,
        keys=keys,
        registry=Registry(engine, webhooks=policy_for(settings)),
        consent=consent,
        audit=audit,
        outbox=outbox,
        catalog=Catalog(settings.config),
        calendar=WorkCalendar.from_config(settings.config.calendar),
        sessions=Sessions(engine, lifetime_seconds=settings.config.tokens.session_seconds),
        throttle=SignInThrottle(engine, secret),
    )


def services() -> Services:
    """The Services of the app handling the current request."""
    return current_app.extensions["xinyi"]  # type: ignore[no-any-return]


def now() -> int:
    return int(time.time())
