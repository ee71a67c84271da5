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
import time
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
from gateway import casework
from gateway.api import schemas
from gateway.auth import authenticated, current_principal
from gateway.caches import CachedContext
from gateway.contract import operation
from gateway.enforce import Access, DataRequest, enforce_each, enforce_request
from gateway.metrics import HE_SECONDS
from gateway.services import Services, services
from records import catalog as rules
from records import store as records

bp = Blueprint("score", __name__)
log = get_logger("gateway.score")


class NoData(NotFound):
    code = "no_data"


# Helpers --------------------------------------------------------------------------------


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
        return svc.models.get(svc.engine, model_id, int(version) if version else None)
    except (fstore.ModelNotApproved, fstore.ModelNotFound) as e:
        log.info("score_model_refused", model=ref[:100], code=e.code)
        raise


def _evaluator(svc: Services, params: he.CKKSParams) -> he.Evaluator:
    return svc.evaluators.get(params)


def _context_for(svc: Services, institution: str, ref: Any, model: JointModel) -> CachedContext:
    if not isinstance(ref, str) or not ref:
        raise InvalidInput(
            "context: the id POST /v1/contexts returned", code="invalid_json", field="context"
        )
    context = svc.contexts.get(svc.engine, institution, ref)
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
@operation(
    "Register the institution's CKKS public context (no secret key, no relinearization "
    "or Galois keys)",
    tag="score",
    body=schemas.ContextRegistration,
    answer=schemas.RegisteredContext,
    status=201,
)
def register_context(body: schemas.ContextRegistration) -> tuple[dict[str, Any], int]:
    """Register the institution's CKKS public context (no secret, no evaluation keys)."""
    svc = services()
    limit = svc.settings.config.limits.max_context_bytes
    data = _b64(body.context, "context", limit)
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
@operation("The institution's registered contexts", tag="score", answer=schemas.Contexts)
def list_contexts() -> dict[str, Any]:
    svc = services()
    return {"contexts": fstore.list_contexts(svc.engine, current_principal().id)}


@bp.get("/v1/models")
@authenticated()
@operation(
    "Registered joint models (newest versions; never the gateway's weights)",
    tag="score",
    answer=schemas.Models,
)
def list_models() -> dict[str, Any]:
    svc = services()
    return {"models": [_view(svc, m) for m in fstore.list_models(svc.engine)]}


@bp.get("/v1/models/<path:model_ref>")
@authenticated()
@operation(
    "One joint model: 'id' (newest version) or 'id@version'",
    tag="score",
    answer=schemas.ModelView,
)
def get_model(model_ref: str) -> dict[str, Any]:
    svc = services()
    return _view(svc, _model(svc, model_ref))


@bp.post("/v1/score")
@authenticated("institution")
@operation(
    "Score one enterprise under its grant: the ciphertext holds the model's bank features "
    "in slots 0…k−1; the logit is the sum of the decrypted vector",
    tag="score",
    body=schemas.ScoreRequest,
    answer=schemas.Scored,
)
def score(body: schemas.ScoreRequest) -> Response:
    svc = services()
    limit = svc.settings.config.limits.max_ciphertext_bytes
    principal = current_principal()
    model = _model(svc, body.model)
    _context_for(svc, principal.id, body.context, model)
    ev = _evaluator(svc, model.params)
    data = _b64(body.ciphertext, "ciphertext", limit)
    ct = ev.ciphertext(data, size=len(model.bank_features), max_bytes=limit)
    access = enforce_request(principal, _score_request(model, body.grant))
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
    disputed = casework.disputed(svc, access.enterprise, model.gateway_feature_ids)
    return _json_with_blobs(
        {"audit_index": access.finish(), "model": model.ref, "disputed": disputed},
        {"ciphertext": _b64out(out)},
    )


@bp.post("/v1/score/batch")
@authenticated("institution")
@operation(
    "Score many enterprises: one column-packed ciphertext per bank feature and chunk "
    "(slot i = enterprise i of grants); answer slot i = logit i; refused enterprises are "
    "listed and their slots carry nothing",
    tag="score",
    body=schemas.BatchRequest,
    answer=schemas.BatchScored,
)
def score_batch(body: schemas.BatchRequest) -> Response:
    svc = services()
    limits = svc.settings.config.limits
    principal = current_principal()
    grants = body.grants
    if len(grants) > limits.max_batch:
        raise TooLarge(
            f"grants: {len(grants)} enterprises; at most {limits.max_batch} per batch",
            code="too_large",
            field="grants",
        )
    model = _model(svc, body.model)
    context = _context_for(svc, principal.id, body.context, model)
    ev = _evaluator(svc, model.params)
    layout = scoring.BatchLayout(len(grants), len(model.bank_features), model.params.slots)
    raw = body.ciphertexts
    if len(raw) != layout.ciphertexts:
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
    served = [i for i in accesses if bool(allowed[i])]
    open_ = casework.disputed_each(
        svc, [str(accesses[i].enterprise) for i in served], model.gateway_feature_ids
    )
    disputed: list[list[str]] = [[] for _ in range(n)]
    for i in served:
        disputed[i] = open_.get(str(accesses[i].enterprise), [])
    return _json_with_blobs(
        {
            "audit_indexes": audit_indexes,
            "refused": refused,
            "model": model.ref,
            "disputed": disputed,
        },
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
