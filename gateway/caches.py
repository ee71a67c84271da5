"""What one gateway worker keeps in memory between requests, each piece owned by
:class:`gateway.services.Services` as a typed field.

Invariants:
- every cache holds only what never changes once stored (a model version, a registered
  context, a verified token signature) or is re-checked against the store on use (a
  trainer is used only while its version is the stored one; an unpinned model's newest
  version is re-read after ``NEWEST_SECONDS``);
- a registered context is handed out only to the institution that registered it;
- every cache is safe to use from the request threads of one worker.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from sqlalchemy import Engine

from common.errors import shown
from federated import he
from federated import store as fstore
from federated.models import JointModel
from federated.training import GatewayTrainer

CONTEXT_CACHE_SIZE = 64
VERIFIED_TOKENS = 4096


class ModelCache:
    """Approved models by (id, version): an approved version never changes, so only the
    newest-approved lookup goes to the database, and its answer is kept NEWEST_SECONDS
    (a newly approved version serves unpinned requests within that time; the SDK pins
    versions). A version that is not approved is never cached."""

    NEWEST_SECONDS = 2.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._models: dict[tuple[str, int], JointModel] = {}
        self._newest: dict[str, tuple[float, int]] = {}

    def get(self, engine: Engine, model_id: str, version: int | None) -> JointModel:
        if version is None:
            now = time.monotonic()
            with self._lock:
                seen = self._newest.get(model_id)
            if seen is not None and now - seen[0] < self.NEWEST_SECONDS:
                version = seen[1]
            else:
                version = fstore.newest_version(engine, model_id, approved=True)
                if version is None:  # says whether it is unknown or not approved
                    fstore.get_model(engine, model_id, approved=True)
                    raise fstore.ModelNotFound(f"no joint model {shown(model_id)}")
                with self._lock:
                    self._newest[model_id] = (now, version)
        with self._lock:
            found = self._models.get((model_id, version))
        if found is None:
            found = fstore.get_model(engine, model_id, version, approved=True)
            with self._lock:
                self._models[(model_id, version)] = found
        return found


class CachedContext:
    """A registered context as the scoring routes use it: owner and parameters always,
    the parsed public context only when a batch needs to encrypt (all refused)."""

    def __init__(self, stored: fstore.StoredContext) -> None:
        self.owner = stored.institution_id
        self.params = stored.params
        self._data = stored.data
        self._public: he.PublicContext | None = None

    def public(self) -> he.PublicContext:
        if self._public is None:
            self._public = he.PublicContext.load(
                self._data, expected=self.params, max_bytes=len(self._data)
            )
        return self._public


class ContextCache:
    """Registered contexts by id (contexts never change), least recently used out.
    The owner is kept with the context so that one institution never uses another's."""

    def __init__(self, size: int = CONTEXT_CACHE_SIZE) -> None:
        self._lock = threading.Lock()
        self._size = size
        self._items: OrderedDict[str, CachedContext] = OrderedDict()

    def get(self, engine: Engine, institution: str, context_id: str) -> CachedContext:
        with self._lock:
            hit = self._items.get(context_id)
            if hit is not None:
                self._items.move_to_end(context_id)
        if hit is not None:
            if hit.owner != institution:
                raise fstore.ContextNotFound(
                    f"no context {shown(context_id)} registered by this institution"
                )
            return hit
        found = CachedContext(fstore.get_context(engine, context_id, institution))
        with self._lock:
            self._items[context_id] = found
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return found


class Evaluators:
    """One HE evaluator per parameter set and process (it caches encoded weights)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[he.CKKSParams, he.Evaluator] = {}

    def get(self, params: he.CKKSParams) -> he.Evaluator:
        ev = self._items.get(params)
        if ev is None:
            with self._lock:
                ev = self._items.setdefault(params, he.Evaluator(params))
        return ev


class Trainers:
    """Parsed trainers per session in this worker, valid while their version is the
    stored one; one lock per session so two threads never run the same trainer."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # session id → (version, trainer, owner, created_at)
        self.items: dict[str, tuple[int, GatewayTrainer, str, int]] = {}
        self.locks: dict[str, threading.Lock] = {}

    def lock(self, session_id: str) -> threading.Lock:
        with self._lock:
            return self.locks.setdefault(session_id, threading.Lock())


@dataclass(frozen=True)
class VerifiedToken:
    """An access token whose signature, issuer and audience verified once."""

    kid: str
    client_id: str
    not_before: float
    expires: float


class VerifiedTokens:
    """Access tokens whose signature verified, per process (bounded LRU)."""

    def __init__(self, size: int = VERIFIED_TOKENS) -> None:
        self.lock = threading.Lock()
        self.size = size
        self.items: OrderedDict[str, VerifiedToken] = OrderedDict()

    def get(self, token: str) -> VerifiedToken | None:
        return self.items.get(token)

    def put(self, token: str, verified: VerifiedToken) -> None:
        with self.lock:
            self.items[token] = verified
            while len(self.items) > self.size:
                self.items.popitem(last=False)
