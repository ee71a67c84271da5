"""Federated training sessions for institutions (``/v1/training/...``).

A bank opens a session with the (USCC, grant) pairs of its training set, the gateway
features it wants, its bank feature names and its public CKKS training context. Then it
drives the protocol of ``federated.training`` by posting frames to
``/messages`` (``application/octet-stream``; one answer frame each). At the end it
finishes the session. The gateway keeps its half of the model. With the bank's consent
(``register``) the gateway registers the joint model for serving, under
``training:<session id>``.

Invariants:
- every input is validated before any grant is checked (a malformed request costs no
  grant use);
- each enterprise enters only through ``enforce`` (op ``train``, the categories and
  features of the requested gateway columns), one call and one audit entry per
  enterprise when the session opens. A refused enterprise is left out and listed with
  its code and audit index; so is an enterprise the gateway holds no data about
  (``no_data``). The session trains without them and says so. Consent is checked
  again before every later epoch: an enterprise whose grant was revoked, paused or has
  expired leaves the session (its refusal logged, its gateway features blanked to the
  "no data" value 0 from then on). A session ends after ``training.session_hours``;
- governance (issue 12): a session needs at least ``training.min_gateway_features``
  gateway columns (checked before any grant) and at least ``training.min_enterprises``
  accepted enterprises with data; below either it is refused (``too_few_gateway_features``
  / ``too_few_enterprises``, logged) and nothing is stored. The gateway standardization
  is fitted on the gateway's whole population for those columns (every enterprise the
  department data store holds a current value about), never on the session's rows;
- a model id belongs to its owner: the session's institution trains ``<institution>/NAME``
  only (another owner's id is refused ``model_not_owner`` at opening and at ``finish``),
  and a registered model is ``pending`` until the operator approves it;
- the gateway's features are read once, when the session opens (a snapshot in the
  session row), so every worker and every batch sees the same data;
- a message is answered only after the new protocol state is stored (compare-and-set);
  a worker keeps a parsed trainer per session only while its version is current;
- the gateway holds no CKKS secret key and never decrypts (``docs/leakage.md``): the
  bank's columns arrive under a key pair the bank makes for one batch; the gateway
  returns sum-only products (one readable coefficient each, its own columns' padded
  with one-time pads) and two noisy scalars per batch. No per-row value of the gateway
  half reaches the bank, validation rows included.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import time
import warnings
from collections.abc import Callable, Sequence
from datetime import date
from typing import Any

import numpy as np
from flask import Blueprint, Response, request

from common.db import read_session
from common.errors import Conflict, Error, Forbidden, InvalidInput, TooLarge, shown
from common.logging import get_logger
from consent.errors import ConsentRefused
from federated import training_store as tstore
from federated.he import PublicContext
from federated.models import Standardization
from federated.training import (
    PARAMS,
    GatewayState,
    GatewayTrainer,
    Kind,
    Message,
    Privacy,
    TrainingPlan,
    auto_batch_size,
)
from gateway.api import schemas
from gateway.auth import authenticated, current_principal
from gateway.contract import operation
from gateway.enforce import Access, DataRequest, enforce_each
from gateway.services import FeatureSource, PopulationSource, Services, services

bp = Blueprint("train", __name__)
log = get_logger("gateway.train")


class NoData(Conflict):
    code = "no_data"


class SessionExpired(Conflict):
    code = "training_session_expired"


class NotFinished(Conflict):
    code = "training_not_finished"


class AlreadyRegistered(Conflict):
    code = "training_already_registered"


class TooFewEnterprises(Forbidden):
    code = "too_few_enterprises"


class TooFewGatewayFeatures(Forbidden):
    code = "too_few_gateway_features"


# Gateway features -------------------------------------------------------------------------


def records_features(svc: Services, usccs: Sequence[str], columns: Sequence[str]) -> np.ndarray:
    """The department data store's encoding of the model columns (as scoring reads them),
    dates relative to today."""
    from records import store as records

    _, matrix = records.feature_matrix(
        svc.engine, svc.catalog, list(usccs), list(columns), as_of=date.today()
    )
    return np.asarray(matrix, dtype=np.float64)


def feature_source(svc: Services) -> FeatureSource:
    """``records_features`` unless a test or tool put another in ``svc.training_features``."""
    found = svc.training_features
    return found if found is not None else records_features


def records_population(svc: Services, columns: Sequence[str]) -> np.ndarray:
    """Every enterprise of the department data store (``records.store.population_matrix``)."""
    from records import store as records

    return np.asarray(
        records.population_matrix(svc.engine, svc.catalog, list(columns), as_of=date.today()),
        dtype=np.float64,
    )


def population_source(svc: Services) -> PopulationSource:
    """``records_population`` unless a test or tool put another in
    ``svc.training_population``."""
    found = svc.training_population
    return found if found is not None else records_population


def owned_model_id(institution: str, model_id: str) -> str:
    """The id a session of ``institution`` registers under: ``NAME`` becomes
    ``institution/NAME``; ``owner/NAME`` must name ``institution`` (``model_not_owner``)."""
    from federated.models import MODEL_ID, model_owner
    from federated.store import ModelNotOwned

    full = model_id if "/" in model_id else f"{institution}/{model_id}"
    if not MODEL_ID.match(full):
        raise InvalidInput(
            f"model_id: {shown(full)} is not 'owner/name' (lower-case letters, digits, '_', '.', "
            "'-'; at most 64 characters in all)",
            code="invalid_json",
            field="model_id",
        )
    if model_owner(full) != institution:
        raise ModelNotOwned(
            f"model_id {shown(model_id)} belongs to {model_owner(full)}; this institution trains "
            f"'{institution}/NAME' only",
            field="model_id",
        )
    return full


def column_scope(svc: Services, columns: Sequence[str]) -> tuple[list[str], list[str], list[str]]:
    """(catalog feature ids, non-public categories, public categories) a session over
    ``columns`` touches: a grant must cover the non-public ones; the public ones are
    logged but need none (as for scoring). Every column must be a catalog feature the
    data store encodes (``records.catalog.parse_column``)."""
    from federated.models import GATEWAY_COLUMN
    from records.catalog import parse_column

    feature_ids: list[str] = []
    for i, column in enumerate(columns):
        if not isinstance(column, str) or not GATEWAY_COLUMN.match(column):
            raise InvalidInput(
                f"gateway_features[{i}]: {shown(column)} is not a gateway column "
                "(category.feature, log1p(category.feature) or category.feature=VALUE)",
                code="invalid_json",
                field="gateway_features",
            )
        try:  # the data store's own column rules, before any grant is checked
            feature_ids.append(parse_column(svc.catalog, column).feature)
        except InvalidInput as e:
            raise InvalidInput(
                f"gateway_features[{i}]: {e.message}",
                code="unknown_feature",
                field="gateway_features",
            ) from e
    cats = svc.settings.config.categories
    touched = sorted({f.partition(".")[0] for f in feature_ids})
    public = [c for c in touched if cats[c].visibility == "public"]
    return sorted(set(feature_ids)), [c for c in touched if c not in public], public


def _train_request(
    grant: str | None, uscc: str, scope: tuple[list[str], list[str], list[str]]
) -> DataRequest:
    feature_ids, needed, public = scope
    return DataRequest(
        grant,
        "train",
        uscc,
        needed,
        features=feature_ids,
        needs_grant=bool(needed),
        public_categories=public,
    )


def standardize(
    matrix: np.ndarray, population: np.ndarray, clip: float
) -> tuple[Standardization, np.ndarray]:
    """Mean and std over the present values of ``population`` (every enterprise the
    gateway holds data about, not the session's rows), applied to ``matrix``. A missing
    value becomes the mean, so it is 0 after standardization and adds nothing (the
    scoring convention)."""
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN column: handled below
        mean = np.nanmean(population, axis=0)
        std = np.nanstd(population, axis=0)
    mean = np.where(np.isfinite(mean), mean, 0.0)
    std = np.where(np.isfinite(std) & (std > 1e-12), std, 1.0)
    filled = np.where(np.isnan(matrix), mean, matrix)
    stdz = Standardization(
        tuple(map(float, mean)), tuple(map(float, std)), (float(clip),) * len(mean)
    )
    return stdz, stdz.apply(filled)


# Checking the opening request beyond its shape (schemas.OpenSession) ----------------------


def _limit(values: Sequence[Any], key: str, limit: int) -> list[Any]:
    if len(values) > limit:
        raise TooLarge(f"{key}: at most {limit} entries", code="too_large", field=key)
    return list(values)


def _enterprises(raw: Sequence[schemas.TrainingEnterprise]) -> list[tuple[str, str, bool]]:
    out: list[tuple[str, str, bool]] = []
    seen: set[str] = set()
    for i, item in enumerate(raw):
        field = f"enterprises[{i}]"
        if item.uscc in seen:
            raise InvalidInput(f"{field}: listed twice", code="invalid_json", field=field)
        seen.add(item.uscc)
        out.append((item.uscc, item.grant, item.validation))
    return out


def _plan_options(raw: schemas.PlanOptions | None, max_epochs: int) -> dict[str, Any]:
    if raw is None:
        return {}
    if raw.epochs > max_epochs:
        raise InvalidInput(f"plan.epochs: 1 to {max_epochs}", code="training_plan", field="plan")
    return raw.model_dump(exclude_unset=True)


def _context(value: str, limit: int) -> PublicContext:
    if len(value) > 4 * (-(-limit // 3)) + 4:
        raise TooLarge(f"context: more than {limit} bytes", code="too_large", field="context")
    try:
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as e:
        raise InvalidInput("context: not base64", code="invalid_base64", field="context") from e
    return PublicContext.load(data, expected=PARAMS, max_bytes=limit)


def _refusal(error: Error, institution: str) -> Error:
    """A governance refusal, logged (code and counts only) before it is raised."""
    log.info("training_session_refused", institution=institution, code=error.code)
    return error


def _refused_if(check: Callable[[], str], institution: str) -> str:
    try:
        return check()
    except Error as e:
        raise _refusal(e, institution) from None


def _grant_id(access: Access) -> str:
    return access.grant.grant_id if access.grant is not None else ""


# Routes --------------------------------------------------------------------------------------


@bp.post("/v1/training/sessions")
@authenticated("institution")
@operation(
    "Open a training session: the (USCC, grant) pairs of the training set (op train), "
    "gateway columns, bank feature names, the bank's public CKKS training context; "
    "enterprises without an active grant or without data are left out and listed",
    tag="training",
    body=schemas.OpenSession,
    answer=schemas.OpenedSession,
    status=201,
)
def open_session(body: schemas.OpenSession) -> tuple[dict[str, Any], int]:
    svc = services()
    cfg = svc.settings.config.training
    principal = current_principal()
    enterprises = _enterprises(_limit(body.enterprises, "enterprises", cfg.max_rows))
    columns = _limit(body.gateway_features, "gateway_features", cfg.max_gateway_features)
    if len(set(columns)) != len(columns):
        raise InvalidInput("gateway_features: a column twice", code="invalid_json")
    bank_features = _limit(body.bank_features, "bank_features", cfg.max_bank_features)
    if len(set(bank_features)) != len(bank_features):
        raise InvalidInput("bank_features: distinct names", code="invalid_json")
    bank_public = _context(body.context, svc.settings.config.limits.max_context_bytes)
    options = _plan_options(body.plan, cfg.max_epochs)
    model_id = body.model_id
    if model_id is not None:
        name: str = model_id
        model_id = _refused_if(lambda: owned_model_id(principal.id, name), principal.id)
    scope = column_scope(svc, columns)
    # Governance before any grant is checked: a refusal here costs no grant use.
    if len(columns) < cfg.min_gateway_features:
        raise _refusal(
            TooFewGatewayFeatures(
                f"{len(columns)} gateway columns; a joint model needs at least "
                f"{cfg.min_gateway_features} (one served linear functional per enterprise "
                "must not isolate a feature)",
                field="gateway_features",
            ),
            principal.id,
        )
    if len(enterprises) < cfg.min_enterprises:
        raise _refusal(
            TooFewEnterprises(
                f"{len(enterprises)} enterprises listed; a session needs at least "
                f"{cfg.min_enterprises} with an active op-train grant and data at the gateway",
                field="enterprises",
            ),
            principal.id,
        )

    # Consent for every enterprise in one transaction: the refused ones are left out,
    # not fatal, unless the institution itself is refused.
    outcomes = enforce_each(principal, [_train_request(g, u, scope) for u, g, _ in enterprises])
    accepted: list[tuple[str, bool, Access]] = []
    refused: list[dict[str, Any]] = []
    for (uscc, _, is_val), outcome in zip(enterprises, outcomes, strict=True):
        if isinstance(outcome, ConsentRefused):
            if outcome.code == "institution_suspended":
                raise outcome
            refused.append(
                {
                    "uscc": uscc,
                    "error": outcome.code,
                    "message": outcome.message,
                    "audit_index": outcome.details.get("audit_index"),
                }
            )
        else:
            accepted.append((uscc, is_val, outcome))
    audit = {uscc: access.finish() for uscc, _, access in accepted}

    usccs = [u for u, _, _ in accepted]
    matrix = feature_source(svc)(svc, usccs, columns) if usccs else np.zeros((0, len(columns)))
    have = ~np.all(np.isnan(matrix), axis=1) if len(usccs) else np.zeros(0, dtype=bool)
    for k, (uscc, _, _) in enumerate(accepted):
        if not have[k]:
            refused.append(
                {
                    "uscc": uscc,
                    "error": "no_data",
                    "message": "the gateway holds none of these features for this enterprise",
                    "audit_index": audit[uscc],
                }
            )
    keep = [k for k in range(len(accepted)) if have[k]]
    train_rows = np.asarray([k for k in keep if not accepted[k][1]], dtype=np.int64)
    val_rows = np.asarray([k for k in keep if accepted[k][1]], dtype=np.int64)
    if len(keep) < cfg.min_enterprises or len(train_rows) < 2:
        raise _refusal(
            TooFewEnterprises(
                f"only {len(keep)} enterprises can take part (with an active op-train grant "
                f"and data at the gateway); at least {cfg.min_enterprises} are needed",
                field="enterprises",
                refused=len(refused),
            ),
            principal.id,
        )
    stdz, z = standardize(matrix, population_source(svc)(svc, columns), cfg.clip)
    session_id = "trn_" + secrets.token_hex(12)
    try:
        plan = TrainingPlan(
            session=session_id,
            n_train=len(train_rows),
            n_validation=len(val_rows),
            bank_columns=len(bank_features),
            gateway_columns=len(columns),
            epochs=int(options.get("epochs", 16)),
            batch_size=int(options.get("batch_size") or auto_batch_size(len(train_rows))),
            learning_rate=float(options.get("learning_rate", 0.1)),
            l2=float(options.get("l2", 1e-4)),
            seed=int(options.get("seed", secrets.randbits(32))),
        )
    except (TypeError, ValueError) as e:
        raise InvalidInput(f"plan: {shown(str(e))}", code="training_plan", field="plan") from e
    record = tstore.SessionRecord(
        id=session_id,
        institution_id=principal.id,
        status="training",
        plan=plan,
        gateway_columns=tuple(columns),
        bank_features=tuple(bank_features),
        enterprises=tstore.Enterprises(
            tuple(usccs[k] for k in train_rows),
            tuple(usccs[k] for k in val_rows),
            {usccs[k]: _grant_id(accepted[k][2]) for k in keep},
        ),
        refused=refused,
        standardization=stdz,
        features=tstore.pack_features(z[train_rows], z[val_rows]),
        bank_context=bank_public.to_bytes(),
        gateway_secret=b"",  # the gateway holds no CKKS key in this protocol
        state=GatewayState.initial(plan.gateway_columns),
        version=0,
        model_id=model_id,
    )
    tstore.create_session(svc.engine, record)
    log.info(
        "training_session_opened",
        session=session_id,
        institution=principal.id,
        train=len(train_rows),
        validation=len(val_rows),
        refused=len(refused),
    )
    return {
        "id": session_id,
        "plan": plan.as_dict(),
        "gateway_features": columns,
        "train": [usccs[k] for k in train_rows],
        "validation": [usccs[k] for k in val_rows],
        "refused": refused,
        "message": (
            f"training with {len(train_rows)} enterprises ({len(val_rows)} validate); "
            f"{len(refused)} left out (see refused)"
        ),
    }, 201


@bp.get("/v1/training/sessions")
@authenticated("institution")
@operation("The institution's training sessions", tag="training", answer=schemas.Sessions)
def list_sessions() -> dict[str, Any]:
    svc = services()
    return {"sessions": tstore.list_sessions(svc.engine, current_principal().id)}


@bp.get("/v1/training/sessions/<session_id>")
@authenticated("institution")
@operation(
    "A session's status: the next batch, the last message taken (resume from here after a "
    "dropped connection), the enterprises left out",
    tag="training",
    answer=schemas.TrainingSession,
)
def get_session(session_id: str) -> dict[str, Any]:
    svc = services()
    rec = tstore.get_session(svc.engine, session_id, current_principal().id)
    return {**rec.summary(), "refused_enterprises": rec.refused}


def _privacy(svc: Services) -> Privacy:
    cfg = svc.settings.config.training
    return Privacy(
        sum_sigma=cfg.flood_sigma,
        round_bits=min(cfg.round_bits, 28),
        max_restarts=cfg.max_restarts,
    )


def _trainer(svc: Services, rec: tstore.SessionRecord) -> GatewayTrainer:
    train, _ = tstore.unpack_features(rec.features)
    return GatewayTrainer(rec.plan, train, privacy=_privacy(svc), state=rec.state)


def _epoch_start(frame: bytes, rec_state: GatewayState) -> bool:
    """Is ``frame`` the request that starts a new epoch (after the first)?"""
    try:
        msg = Message.from_bytes(frame)
    except InvalidInput:
        return False
    return (
        msg.kind == Kind.COLUMNS
        and msg.batch == 0
        and msg.epoch > 0
        and (msg.epoch, 0, "idle") == (rec_state.next_epoch, rec_state.next_batch, rec_state.phase)
    )


def recheck_consent(svc: Services, rec: tstore.SessionRecord) -> bool:
    """Before every epoch after the first: an enterprise whose grant is no longer active
    (revoked, paused, expired) leaves the session. Its refusal is logged through
    ``enforce`` (with its audit index) and its gateway features become 0, the "no data"
    value, for the rest of the session. Returns whether anything changed."""
    from consent import policy
    from consent import store as consent_store

    wanted = set(rec.enterprises.grants.values())
    gone_before = {r["uscc"] for r in rec.refused}
    now = int(time.time())
    with read_session(svc.engine) as s:  # by id: newer consents cannot hide these
        rows = [
            r
            for r in consent_store.consents_by_ids(s, sorted(wanted))
            if r.institution_id == rec.institution_id
        ]
    ended = {
        r.enterprise: r
        for r in rows
        if policy.effective_status(r.status, now, r.expires_at, r.pending_until) != "active"
        and r.enterprise not in gone_before
    }
    if not ended:
        return False
    scope = column_scope(svc, rec.gateway_columns)
    principal = current_principal()
    refused = list(rec.refused)
    blank: set[str] = set()
    requests = [_train_request(row.grant_jwt, uscc, scope) for uscc, row in ended.items()]
    for uscc, outcome in zip(ended, enforce_each(principal, requests), strict=True):
        if isinstance(outcome, ConsentRefused):
            refused.append(
                {
                    "uscc": uscc,
                    "error": outcome.code,
                    "message": f"{outcome.message} (left the session at epoch "
                    f"{rec.state.next_epoch + 1})",
                    "audit_index": outcome.details.get("audit_index"),
                }
            )
            blank.add(uscc)
        else:
            outcome.finish()  # active again meanwhile (resumed): it stays
    if not blank:
        return False
    train, val = tstore.unpack_features(rec.features)
    for rows_, names in ((train, rec.enterprises.train), (val, rec.enterprises.validation)):
        for k, uscc in enumerate(names):
            if uscc in blank:
                rows_[k] = 0.0
    tstore.exclude_enterprises(
        svc.engine,
        rec.id,
        rec.version,
        features=tstore.pack_features(train, val),
        refused=refused,
    )
    log.info("training_consent_ended", session=rec.id, enterprises=len(blank))
    return True


@bp.post("/v1/training/sessions/<session_id>/messages")
@authenticated("institution")
@operation(
    "One protocol frame of federated.training; the answer frame back",
    tag="training",
    body_media=("application/octet-stream",),
    answer_media="application/octet-stream",
)
def message(session_id: str) -> Response:
    svc = services()
    cfg = svc.settings.config.training
    request.max_content_length = cfg.max_message_bytes
    if request.mimetype != "application/octet-stream":
        raise InvalidInput("send the frame as application/octet-stream", code="invalid_media_type")
    frame = request.get_data(cache=False)
    institution = current_principal().id
    cache = svc.trainers
    with cache.lock(session_id):
        stored = tstore.version_of(svc.engine, session_id)
        cached = cache.items.get(session_id)
        if cached is not None and cached[0] == stored and cached[2] == institution:
            version, trainer, _, created = cached
        else:
            cache.items.pop(session_id, None)
            rec = tstore.get_session(svc.engine, session_id, institution)
            trainer, version, created = _trainer(svc, rec), rec.version, rec.created_at
        if time.time() > created + cfg.session_hours * 3600:
            raise SessionExpired("the training session has expired; open a new one")
        if _epoch_start(frame, trainer.state):
            rec = tstore.get_session(svc.engine, session_id, institution)
            if recheck_consent(svc, rec):
                cache.items.pop(session_id, None)
                rec = tstore.get_session(svc.engine, session_id, institution)
                trainer, version = _trainer(svc, rec), rec.version
        try:
            answer = trainer.handle(frame)  # a refusal leaves the trainer's state as it was
        except Error:
            raise
        except Exception:
            cache.items.pop(session_id, None)
            raise
        try:
            status = "trained" if trainer.finished else None
            new_version = tstore.save_state(
                svc.engine, session_id, version, trainer.state, status=status
            )
        except Exception:
            cache.items.pop(session_id, None)  # the in-memory state is ahead: drop it
            raise
        cache.items[session_id] = (new_version, trainer, institution, created)
    return Response(answer, status=200, mimetype="application/octet-stream")


@bp.post("/v1/training/sessions/<session_id>/finish")
@authenticated("institution")
@operation(
    "End a trained session: the gateway keeps its half; with register=true and the bank's "
    "half (weights on raw bank features) the joint model is registered for serving",
    tag="training",
    body=schemas.Finish,
    answer=schemas.Finished,
)
def finish(session_id: str, body: schemas.Finish) -> dict[str, Any]:
    svc = services()
    institution = current_principal().id
    rec = tstore.get_session(svc.engine, session_id, institution)
    if rec.state.next_epoch < rec.plan.epochs:
        raise NotFinished(
            f"the session is at epoch {rec.state.next_epoch + 1} of {rec.plan.epochs}"
        )
    if rec.status == "registered":
        raise AlreadyRegistered(f"the model {rec.model_id}@{rec.model_version} is registered")
    gateway_half = {
        "gateway_features": list(rec.gateway_columns),
        "gateway_weights": list(rec.state.weights),
        "gateway_standardization": rec.standardization.as_dict(),
    }
    if not body.serve:
        tstore.record_result(
            svc.engine,
            session_id,
            rec.version,
            status="trained",
            gateway_half=gateway_half,
            model_id=None,
            model_version=None,
        )
        return {
            "id": session_id,
            "registered": False,
            "message": "the gateway keeps its half of the model; finish again with "
            "register=true and the bank's half to serve it",
        }
    requested = body.model_id
    model_id = _refused_if(
        lambda: owned_model_id(institution, requested or rec.model_id or session_id),
        institution,
    )
    half = body.bank_half.model_dump() if body.bank_half is not None else None
    if half is None:
        raise InvalidInput(
            "bank_half: {bank_features, bank_weights, intercept} on raw bank features",
            code="invalid_json",
            field="bank_half",
        )
    if list(half["bank_features"]) != list(rec.bank_features):
        raise InvalidInput(
            "bank_half.bank_features must be the session's bank features, in order",
            code="invalid_json",
            field="bank_half",
        )
    definition: dict[str, Any] = {
        "id": model_id,
        **gateway_half,
        "bank_features": half["bank_features"],
        "bank_weights": half["bank_weights"],
        "intercept": half["intercept"],
    }
    if body.description is not None:
        definition["description"] = body.description
    definition["metadata"] = {
        "training": {
            "session": session_id,
            "enterprises": rec.plan.n_train + rec.plan.n_validation,
            "left_out": len(rec.refused),
            "epochs": rec.plan.epochs,
            "standardization": "gateway population",
        }
    }
    model_ref = register_trained_model(svc, definition, session_id, institution)
    tstore.record_result(
        svc.engine,
        session_id,
        rec.version,
        status="registered",
        gateway_half=gateway_half,
        model_id=model_ref[0],
        model_version=model_ref[1],
    )
    log.info(
        "training_model_registered", session=session_id, model=f"{model_ref[0]}@{model_ref[1]}"
    )
    return {
        "id": session_id,
        "registered": True,
        "model": {"id": model_ref[0], "version": model_ref[1], "status": "pending"},
        "message": "the model is pending: it serves once the platform operator approves it",
    }


def register_trained_model(
    svc: Services, definition: dict[str, Any], session_id: str, institution: str
) -> tuple[str, int]:
    """Register the joint model (the ``xinyi models import`` JSON) in the model registry
    as ``training:<session id>``, owned by ``institution`` and pending the operator's
    review; returns (id, version)."""
    from federated import store as fstore
    from federated.models import parse_model

    model = parse_model(definition)
    try:
        registered = fstore.register_model(
            svc.engine,
            model,
            f"training:{session_id}",
            owner=institution,
            status="pending",
            catalog=svc.settings.config.categories,
        )
    except Error as e:
        raise _refusal(e, institution) from None
    return registered.id, registered.version
