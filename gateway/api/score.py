"""HE joint scoring for institutions: CKKS contexts, the model list, single and batch
scores (CONTRACT.md "Data services").

Invariants:
- every input is validated before the grant is checked (a malformed request costs no
  grant use): sizes first (413), then base64, then the ciphertext against the
  institution's own registered context and the model's parameters (400);
- every score goes through ``enforce`` (op ``score``, the model's gateway categories and
  features, ``model_id`` = ``id@version``), one call per enterprise, and is computed only
  after it returned; the answer leaves only after ``Access.finish`` gave its log index;
- the gateway never decrypts: it multiplies and adds plaintexts to the bank's
  ciphertexts (``federated.scoring``) and returns ciphertexts;
- a batch refuses enterprises one by one: a refused grant (or an enterprise without data)
  is listed in ``refused`` with its code and audit index, and its slot carries nothing;
- no route registers a model: models come from ``xinyi models import`` or training;
- only models the operator approved are listed and served: ``model`` is ``id@version``
  (the pinned form the SDK sends) or ``id``, the newest approved version of ``id``;
  a version that is pending or rejected is refused ``model_not_approved``;
- the gateway share is rounded to ``scoring.share_precision`` before it enters a
  ciphertext, and one enterprise is scored with at most
  ``scoring.max_models_per_enterprise`` distinct models per institution in a grant's
  period (``gateway.enforce``): together they bound what zero-input scores reveal of
  the gateway's features (docs/leakage.md, "Scoring").
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from datetime import date
from typing import Any

import numpy as np
from flask import Blueprint, Response

from common.errors import InvalidInput, NotFound, TooLarge
from common.logging import get_logger
from federated import he, scoring
from federated import store as fstore
from federated.models import JointModel
from gateway import openapi
from gateway.api.consent import json_body
from gateway.auth import authenticated, current_principal
from gateway.enforce import Access, DataRequest, enforce_each, enforce_request
from gateway.metrics import HE_SECONDS
from gateway.services import Services, services
from records import catalog as rules
from records import store as records

bp = Blueprint("score", __name__)
log = get_logger("gateway.score")
CONTEXT_CACHE_SIZE = 64


class NoData(NotFound):
    code = "no_data"


# Helpers --------------------------------------------------------------------------------


def _only(body: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise InvalidInput(f"unknown field {unknown[0]!r}", code="invalid_json", field=unknown[0])


def _b64(value: Any, field: str, limit: int) -> bytes:
    """Decode a base64 field of at most ``limit`` decoded bytes (413 beyond)."""
    if not isinstance(value, str) or not value:
        raise InvalidInput(
            f"{field}: a base64 string is required", code="invalid_json", field=field
        )
    if len(value) > 4 * (-(-limit // 3)) + 4:
        raise TooLarge(f"{field}: more than {limit} bytes", code="too_large", field=field)
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as e:
        raise InvalidInput(f"{field}: not valid base64", code="invalid_base64", field=field) from e


def _b64out(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _json_with_blobs(fields: dict[str, Any], blobs: dict[str, str | list[str]]) -> Response:
    """A JSON object whose base64 members are spliced in as they are: the base64
    alphabet needs no JSON escaping, and escaping-scanning 230 KB of it costs ~0.6 ms of
    CPU per score (json.dumps)."""
    parts = [json.dumps(fields, ensure_ascii=False)[1:-1]] if fields else []
    for name, value in blobs.items():
        text = (
            f'"{value}"'
            if isinstance(value, str)
            else "[" + ",".join(f'"{v}"' for v in value) + "]"
        )
        parts.append(f"{json.dumps(name)}:{text}")
    return Response("{" + ",".join(parts) + "}", mimetype="application/json")


def _model(svc: Services, ref: Any) -> JointModel:
    """``id@version`` or ``id`` (its newest approved version); approved models only."""
    if not isinstance(ref, str) or not ref:
        raise InvalidInput("model: a model id is required", code="invalid_json", field="model")
    model_id, _, version = ref.partition("@")
    if version and not (version.isdigit() and len(version) <= 18):
        raise InvalidInput("model: 'id' or 'id@version'", code="invalid_json", field="model")
    try:
        return _models(svc).get(svc, model_id, int(version) if version else None)
    except (fstore.ModelNotApproved, fstore.ModelNotFound) as e:
        log.info("score_model_refused", model=ref[:100], code=e.code)
        raise


class _ModelCache:
    """Approved models by (id, version): an approved version never changes, so only the
    newest-approved lookup goes to the database, and its answer is kept NEWEST_SECONDS
    (a newly approved version serves unpinned requests within that time; the SDK pins
    versions). A version that is not approved is never cached."""

    NEWEST_SECONDS = 2.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._models: dict[tuple[str, int], JointModel] = {}
        self._newest: dict[str, tuple[float, int]] = {}

    def get(self, svc: Services, model_id: str, version: int | None) -> JointModel:
        if version is None:
            now = time.monotonic()
            with self._lock:
                seen = self._newest.get(model_id)
            if seen is not None and now - seen[0] < self.NEWEST_SECONDS:
                version = seen[1]
            else:
                version = fstore.newest_version(svc.engine, model_id, approved=True)
                if version is None:  # says whether it is unknown or not approved
                    fstore.get_model(svc.engine, model_id, approved=True)
                    raise fstore.ModelNotFound(f"no joint model {model_id!r}")
                with self._lock:
                    self._newest[model_id] = (now, version)
        with self._lock:
            found = self._models.get((model_id, version))
        if found is None:
            found = fstore.get_model(svc.engine, model_id, version, approved=True)
            with self._lock:
                self._models[(model_id, version)] = found
        return found


class _Context:
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


class _ContextCache:
    """Registered contexts by id (contexts never change), least recently used out.
    The owner is kept with the context so that one institution never uses another's."""

    def __init__(self, size: int) -> None:
        self._lock = threading.Lock()
        self._size = size
        self._items: OrderedDict[str, _Context] = OrderedDict()

    def get(self, svc: Services, institution: str, context_id: str) -> _Context:
        with self._lock:
            hit = self._items.get(context_id)
            if hit is not None:
                self._items.move_to_end(context_id)
        if hit is not None:
            if hit.owner != institution:
                raise fstore.ContextNotFound(
                    f"no context {context_id!r} registered by this institution"
                )
            return hit
        found = _Context(fstore.get_context(svc.engine, context_id, institution))
        with self._lock:
            self._items[context_id] = found
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return found


def _evaluator(svc: Services, params: he.CKKSParams) -> he.Evaluator:
    """One evaluator per parameter set and process (it caches encoded weights)."""
    cache: dict[he.CKKSParams, he.Evaluator] = svc.extras.setdefault("score.evaluators", {})
    ev = cache.get(params)
    if ev is None:
        ev = cache.setdefault(params, he.Evaluator(params))
    return ev


def _models(svc: Services) -> _ModelCache:
    cache = svc.extras.get("score.models")
    if cache is None:
        cache = svc.extras.setdefault("score.models", _ModelCache())
    return cache  # type: ignore[no-any-return]


def _contexts(svc: Services) -> _ContextCache:
    cache = svc.extras.get("score.contexts")
    if cache is None:
        cache = svc.extras.setdefault("score.contexts", _ContextCache(CONTEXT_CACHE_SIZE))
    return cache  # type: ignore[no-any-return]


def _context_for(svc: Services, institution: str, ref: Any, model: JointModel) -> _Context:
    if not isinstance(ref, str) or not ref:
        raise InvalidInput(
            "context: the id POST /v1/contexts returned", code="invalid_json", field="context"
        )
    context = _contexts(svc).get(svc, institution, ref)
    if context.params != model.params:
        raise he.WrongParameters(
            f"context {ref} has parameters {context.params.as_dict()}; model {model.ref} needs "
            f"{model.params.as_dict()}",
            field="context",
        )
    return context


def gateway_values(svc: Services, enterprises: Sequence[str], model: JointModel) -> np.ndarray:
    """The model's gateway columns for each enterprise from the department data store
    (rows in the given order, columns in model order), NaN where the store holds no
    value; encoded as the store encodes model inputs (``records.store.feature_matrix``).
    One enterprise takes the store's cheaper single-enterprise read."""
    if len(enterprises) == 1:
        catalog = svc.catalog
        columns = [rules.parse_column(catalog, c) for c in model.gateway_features]
        stored = records.current_values(svc.engine, enterprises[0], model.gateway_feature_ids)
        today = date.today()
        row = [
            rules.encode(catalog.rule(c.feature), c, stored[c.feature], today)
            if stored.get(c.feature) is not None
            else np.nan
            for c in columns
        ]
        return np.asarray([row], dtype=np.float64)
    unique = list(dict.fromkeys(enterprises))
    present, matrix = records.feature_matrix(
        svc.engine, svc.catalog, unique, list(model.gateway_features)
    )
    values = np.where(present, matrix, np.nan)
    position = {code: i for i, code in enumerate(unique)}
    return values[[position[e] for e in enterprises]]


def _precision(svc: Services) -> float:
    return svc.settings.config.scoring.share_precision


def _grant_arg(grant: Any) -> str | None:
    return grant if isinstance(grant, str) else None


def grant_categories(svc: Services, model: JointModel) -> tuple[list[str], list[str]]:
    """(non-public, public) gateway categories of a model: a grant must cover the first;
    the second is public data, logged but needing no grant."""
    cats = svc.settings.config.categories
    public = [c for c in model.gateway_categories if cats[c].visibility == "public"]
    return [c for c in model.gateway_categories if c not in public], public


def _view(svc: Services, model: JointModel) -> dict[str, Any]:
    view = model.public_view()
    view["grant_categories"] = grant_categories(svc, model)[0]
    return view


def _score_request(model: JointModel, grant: Any) -> DataRequest:
    needed, public = grant_categories(services(), model)
    return DataRequest(
        grant=_grant_arg(grant),
        op="score",
        enterprise=None,
        categories=needed,
        public_categories=public,
        features=list(model.gateway_feature_ids),
        model_id=model.ref,
    )


# Routes ---------------------------------------------------------------------------------


@bp.post("/v1/contexts")
@authenticated("institution")
def register_context() -> tuple[dict[str, Any], int]:
    """Register the institution's CKKS public context (no secret, no evaluation keys)."""
    body = json_body()
    _only(body, {"context"})
    svc = services()
    limit = svc.settings.config.limits.max_context_bytes
    data = _b64(body.get("context"), "context", limit)
    public = he.PublicContext.load(
        data, max_bytes=limit, allow_evaluation_keys=False, require_public_key=True
    )
    allowed = {he.CKKSParams.from_dict(svc.settings.config.he.model_dump())}
    allowed |= {m.params for m in fstore.list_models(svc.engine)}
    if public.params not in allowed:
        raise he.WrongParameters(
            f"the context's parameters {public.params.as_dict()} are not used by any model; "
            f"expected one of {[p.as_dict() for p in allowed]}",
            field="context",
        )
    principal = current_principal()
    context_id, created = fstore.register_context(
        svc.engine, principal.id, public.to_bytes(), public.params
    )
    log.info("context_registered", institution=principal.id, context=context_id, new=created)
    return {"id": context_id, "context_params": public.params.as_dict()}, 201


@bp.get("/v1/contexts")
@authenticated("institution")
def list_contexts() -> dict[str, Any]:
    svc = services()
    return {"contexts": fstore.list_contexts(svc.engine, current_principal().id)}


@bp.get("/v1/models")
@authenticated()
def list_models() -> dict[str, Any]:
    svc = services()
    return {"models": [_view(svc, m) for m in fstore.list_models(svc.engine)]}


@bp.get("/v1/models/<path:model_ref>")
@authenticated()
def get_model(model_ref: str) -> dict[str, Any]:
    svc = services()
    return _view(svc, _model(svc, model_ref))


@bp.post("/v1/score")
@authenticated("institution")
def score() -> Response:
    body = json_body()
    _only(body, {"grant", "model", "context", "ciphertext"})
    svc = services()
    limit = svc.settings.config.limits.max_ciphertext_bytes
    principal = current_principal()
    model = _model(svc, body.get("model"))
    _context_for(svc, principal.id, body.get("context"), model)
    ev = _evaluator(svc, model.params)
    data = _b64(body.get("ciphertext"), "ciphertext", limit)
    ct = ev.ciphertext(data, size=len(model.bank_features), max_bytes=limit)
    access = enforce_request(principal, _score_request(model, body.get("grant")))
    assert access.enterprise is not None
    values = gateway_values(svc, [access.enterprise], model)[0]
    if np.isnan(values).all():
        raise NoData(
            "the gateway holds none of the model's features for this enterprise",
            audit_index=access.finish(),
        )
    started = time.perf_counter()
    share = scoring.round_share(model.gateway_share(values), _precision(svc))
    out = scoring.score_single(ev, ct, model, share)
    spent = time.perf_counter() - started
    HE_SECONDS.labels("single").observe(spent)
    log.debug(
        "score_computed",
        model=model.ref,
        imputed=int(np.isnan(values).sum()),
        ms=round(spent * 1e3, 2),
    )
    return _json_with_blobs(
        {"audit_index": access.finish(), "model": model.ref}, {"ciphertext": _b64out(out)}
    )


@bp.post("/v1/score/batch")
@authenticated("institution")
def score_batch() -> Response:
    body = json_body()
    _only(body, {"grants", "model", "context", "ciphertexts"})
    svc = services()
    limits = svc.settings.config.limits
    principal = current_principal()
    grants = body.get("grants")
    if not isinstance(grants, list) or not grants:
        raise InvalidInput(
            "grants: a non-empty list of grants", code="invalid_json", field="grants"
        )
    if len(grants) > limits.max_batch:
        raise TooLarge(
            f"grants: {len(grants)} enterprises; at most {limits.max_batch} per batch",
            code="too_large",
            field="grants",
        )
    model = _model(svc, body.get("model"))
    context = _context_for(svc, principal.id, body.get("context"), model)
    ev = _evaluator(svc, model.params)
    layout = scoring.BatchLayout(len(grants), len(model.bank_features), model.params.slots)
    raw = body.get("ciphertexts")
    if not isinstance(raw, list) or len(raw) != layout.ciphertexts:
        raise InvalidInput(
            f"ciphertexts: {layout.ciphertexts} expected ({layout.chunks} chunk(s) of "
            f"{layout.slots} enterprises × {layout.features} bank features, chunk-major)",
            code="invalid_ciphertext",
            field="ciphertexts",
        )
    cts = _parse_batch(ev, raw, layout, limits.max_ciphertext_bytes)

    n = len(grants)
    allowed = np.zeros(n, dtype=bool)
    shares = np.zeros(n, dtype=np.float64)
    audit_indexes: list[int | None] = [None] * n
    refused: list[dict[str, Any]] = []
    accesses: dict[int, Access] = {}
    # One transaction checks and logs every enterprise (each in its own savepoint).
    outcomes = enforce_each(principal, [_score_request(model, g) for g in grants])
    for i, outcome in enumerate(outcomes):
        if isinstance(outcome, Access):
            accesses[i] = outcome
            continue
        audit_indexes[i] = outcome.details.get("audit_index")
        refused.append(
            {
                "index": i,
                "error": outcome.code,
                "message": outcome.message,
                "audit_index": audit_indexes[i],
            }
        )
    missing: list[int] = []
    granted = list(accesses)
    precision = _precision(svc)
    if granted:
        values = gateway_values(svc, [str(accesses[i].enterprise) for i in granted], model)
        for i, row in zip(granted, values, strict=True):
            if np.isnan(row).all():
                missing.append(i)
                continue
            shares[i] = scoring.round_share(model.gateway_share(row), precision)
            allowed[i] = True
    started = time.perf_counter()
    public = context.public() if not allowed.all() else None
    outs = scoring.score_batch(ev, cts, model, shares, allowed, public)
    encoded = [_b64out(o) for o in outs]
    spent = time.perf_counter() - started
    HE_SECONDS.labels("batch").observe(spent)
    log.info(
        "score_batch_computed",
        model=model.ref,
        enterprises=n,
        refused=n - int(allowed.sum()),
        ms=round(spent * 1e3, 2),
    )
    for i, access in accesses.items():
        audit_indexes[i] = access.finish()
    for i in missing:
        refused.append(
            {
                "index": i,
                "error": NoData.code,
                "message": "the gateway holds none of the model's features for this enterprise",
                "audit_index": audit_indexes[i],
            }
        )
    refused.sort(key=lambda r: int(r["index"]))
    return _json_with_blobs(
        {"audit_indexes": audit_indexes, "refused": refused, "model": model.ref},
        {"ciphertexts": encoded},
    )


def _parse_batch(
    ev: he.Evaluator, raw: Sequence[Any], layout: scoring.BatchLayout, limit: int
) -> list[he.EvalCiphertext]:
    cts: list[he.EvalCiphertext] = []
    for c in range(layout.chunks):
        size = layout.chunk_size(c)
        for j in range(layout.features):
            index = layout.index(c, j)
            field = f"ciphertexts[{index}]"
            try:
                data = _b64(raw[index], field, limit)
                cts.append(ev.ciphertext(data, size=size, max_bytes=limit))
            except (InvalidInput, TooLarge) as e:
                e.details.setdefault("field", field)
                raise
    return cts


# OpenAPI ---------------------------------------------------------------------------------

_B64 = {"type": "string", "contentEncoding": "base64"}
_PARAMS = openapi._obj(
    {
        "poly_modulus_degree": openapi.INT,
        "coeff_mod_bit_sizes": {"type": "array", "items": openapi.INT},
        "global_scale_bits": openapi.INT,
    },
    extra=True,
)
_MODEL = openapi._obj(
    {
        "id": openapi.STR,
        "version": openapi.INT,
        "gateway_features": openapi.STR_LIST,
        "gateway_categories": openapi.STR_LIST,
        "grant_categories": openapi.STR_LIST,
        "bank_features": openapi.STR_LIST,
        "context_params": _PARAMS,
        "bank_standardization": {"type": ["object", "null"]},
        "created_at": {"type": ["integer", "null"]},
        "owner": openapi.STR,
        "status": openapi.STR,
    },
    extra=True,
)
_REFUSED = openapi._obj(
    {
        "index": openapi.INT,
        "error": openapi.STR,
        "message": openapi.STR,
        "audit_index": {"type": ["integer", "null"]},
    },
    extra=True,
)

openapi.add_paths(
    {
        "/v1/contexts": {
            "post": openapi._op(
                "Register the institution's CKKS public context (no secret key, no "
                "relinearization or Galois keys)",
                tag="score",
                ok_status="201",
                body=openapi._obj({"context": _B64}, ["context"]),
                ok=openapi._obj({"id": openapi.STR, "context_params": _PARAMS}, extra=True),
            ),
            "get": openapi._op("The institution's registered contexts", tag="score"),
        },
        "/v1/models": {
            "get": openapi._op(
                "Approved joint models (newest approved versions; never the gateway's weights)",
                tag="score",
                security="any",
                ok=openapi._obj({"models": {"type": "array", "items": _MODEL}}, extra=True),
            )
        },
        "/v1/models/{model_ref}": {
            "get": openapi._op(
                "One approved joint model: 'id' (newest approved version) or 'id@version'",
                tag="score",
                security="any",
                ok=_MODEL,
                params=[openapi._path_param("model_ref")],
            )
        },
        "/v1/score": {
            "post": openapi._op(
                "Score one enterprise under its grant: the ciphertext holds the model's bank "
                "features in slots 0…k−1; the logit is the sum of the decrypted vector",
                tag="score",
                body=openapi._obj(
                    {
                        "grant": openapi.STR,
                        "model": openapi.STR,
                        "context": openapi.STR,
                        "ciphertext": _B64,
                    },
                    ["grant", "model", "context", "ciphertext"],
                ),
                ok=openapi._obj(
                    {"ciphertext": _B64, "audit_index": openapi.INT, "model": openapi.STR},
                    extra=True,
                ),
            )
        },
        "/v1/score/batch": {
            "post": openapi._op(
                "Score many enterprises: one column-packed ciphertext per bank feature and "
                "chunk (slot i = enterprise i of grants); answer slot i = logit i; refused "
                "enterprises are listed and their slots carry nothing",
                tag="score",
                body=openapi._obj(
                    {
                        "grants": openapi.STR_LIST,
                        "model": openapi.STR,
                        "context": openapi.STR,
                        "ciphertexts": {"type": "array", "items": _B64},
                    },
                    ["grants", "model", "context", "ciphertexts"],
                ),
                ok=openapi._obj(
                    {
                        "ciphertexts": {"type": "array", "items": _B64},
                        "audit_indexes": {"type": "array", "items": {"type": ["integer", "null"]}},
                        "refused": {"type": "array", "items": _REFUSED},
                        "model": openapi.STR,
                    },
                    extra=True,
                ),
            )
        },
    }
)
