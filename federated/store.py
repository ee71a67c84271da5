"""Persistence of the federated package: institutions' CKKS public contexts and the
joint-model registry (tables of migration 0004; training sessions come in 0005).

Invariants:
- a context belongs to the institution that registered it and is only ever used for
  that institution's requests (``get_context`` filters by owner); it is stored as the
  normalized public bytes (no secret, no evaluation keys) with their SHA-256, and a
  second registration of the same bytes by the same institution returns the same id;
- models are append-only: registering a model under an existing id adds version n+1
  (unless the definition equals the newest version, which is then returned); a version
  is never changed or deleted, so ``id@version`` in the audit log names fixed weights;
- only the operator (``xinyi models import``) and federated training call
  ``register_model``; no HTTP route does;
- a model id belongs to its owner (``owner/name``; a bare id to the operator): an
  institution registers only under its own prefix, and the stored owner of an existing
  id must match (``model_not_owner``, nothing stored). The operator may register any id;
- a version is ``pending`` until the operator approves or rejects it (once, logged in
  the audit log in the same transaction); only ``approved`` versions are listed to
  institutions and served, and an unpinned id means its newest approved version;
- ``take_model_use`` counts, per institution and enterprise, the distinct models
  (``id@version``) scored within a grant's period, in the transaction of the grant use
  (serialized per institution and enterprise), and refuses one beyond the cap.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import CursorResult, Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlmodel import SQLModel

from common.db import read_session, write_session
from common.errors import Conflict, InvalidInput
from common.settings import Category
from federated.errors import (
    ContextNotFound as ContextNotFound,
)
from federated.errors import (
    ModelAlreadyReviewed as ModelAlreadyReviewed,
)
from federated.errors import (
    ModelNotApproved as ModelNotApproved,
)
from federated.errors import (
    ModelNotFound as ModelNotFound,
)
from federated.errors import (
    ModelNotOwned as ModelNotOwned,
)
from federated.he import CKKSParams
from federated.models import OPERATOR, JointModel, check_catalog, parse_model

metadata = SQLModel.metadata

he_contexts = sa.Table(
    "he_contexts",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("institution_id", sa.String(64), nullable=False),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("params", sa.Text, nullable=False),
    sa.Column("data", sa.LargeBinary, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    extend_existing=True,
)

joint_models = sa.Table(
    "joint_models",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("definition", sa.Text, nullable=False),
    sa.Column("registered_by", sa.String(200), nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("owner", sa.String(64), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("reviewed_by", sa.String(200)),
    sa.Column("reviewed_at", sa.BigInteger),
    extend_existing=True,
)

score_model_uses = sa.Table(
    "score_model_uses",
    metadata,
    sa.Column("institution_id", sa.String(64), primary_key=True),
    sa.Column("enterprise", sa.String(18), primary_key=True),
    sa.Column("model", sa.String(90), primary_key=True),
    sa.Column("grant_id", sa.String(40), primary_key=True),
    sa.Column("first_at", sa.BigInteger, nullable=False),
    extend_existing=True,
)


@dataclass(frozen=True)
class StoredContext:
    id: str
    institution_id: str
    params: CKKSParams
    data: bytes
    created_at: int


# Contexts -------------------------------------------------------------------------------


def register_context(
    engine: Engine, institution_id: str, public_bytes: bytes, params: CKKSParams
) -> tuple[str, bool]:
    """Store an institution's (already validated) public context; returns (id, created).
    The same bytes registered twice by the same institution give the same id."""
    digest = hashlib.sha256(public_bytes).hexdigest()
    existing = _context_by_digest(engine, institution_id, digest)
    if existing is not None:
        return existing, False
    context_id = "ctx_" + secrets.token_hex(12)
    try:
        with write_session(engine) as s:
            s.execute(
                he_contexts.insert().values(
                    id=context_id,
                    institution_id=institution_id,
                    digest=digest,
                    params=json.dumps(params.as_dict()),
                    data=public_bytes,
                    created_at=int(time.time()),
                )
            )
    except IntegrityError:  # a concurrent registration of the same bytes won
        again = _context_by_digest(engine, institution_id, digest)
        if again is None:
            raise
        return again, False
    return context_id, True


def _context_by_digest(engine: Engine, institution_id: str, digest: str) -> str | None:
    with read_session(engine) as s:
        found = s.execute(
            sa.select(he_contexts.c.id).where(
                he_contexts.c.institution_id == institution_id, he_contexts.c.digest == digest
            )
        ).scalar()
    return str(found) if found is not None else None


def get_context(engine: Engine, context_id: str, institution_id: str) -> StoredContext:
    """The context ``context_id`` of ``institution_id``; another institution's context
    is as unknown as a missing one."""
    with read_session(engine) as s:
        row = (
            s.execute(
                sa.select(he_contexts).where(
                    he_contexts.c.id == context_id, he_contexts.c.institution_id == institution_id
                )
            )
            .mappings()
            .first()
        )
    if row is None:
        raise ContextNotFound(f"no context {context_id!r} registered by this institution")
    return StoredContext(
        id=row["id"],
        institution_id=row["institution_id"],
        params=CKKSParams.from_dict(json.loads(row["params"])),
        data=bytes(row["data"]),
        created_at=int(row["created_at"]),
    )


def list_contexts(engine: Engine, institution_id: str) -> list[dict[str, Any]]:
    with read_session(engine) as s:
        rows = s.execute(
            sa.select(he_contexts.c.id, he_contexts.c.params, he_contexts.c.created_at)
            .where(he_contexts.c.institution_id == institution_id)
            .order_by(he_contexts.c.created_at, he_contexts.c.id)
        ).all()
    return [
        {"id": r.id, "context_params": json.loads(r.params), "created_at": int(r.created_at)}
        for r in rows
    ]


# Models ---------------------------------------------------------------------------------


def _canonical(model: JointModel) -> str:
    return json.dumps(model.definition(), sort_keys=True, separators=(",", ":"))


def register_model(
    engine: Engine,
    model: JointModel,
    registered_by: str,
    *,
    owner: str = OPERATOR,
    status: str | None = None,
    catalog: Mapping[str, Category] | None = None,
    audit: Callable[[Session, JointModel, str], Any] | None = None,
) -> JointModel:
    """Register ``model`` as the next version of its id and return it with ``version``,
    ``registered_by``, ``created_at`` and ``status`` set. ``owner`` is who registers:
    an institution id (training) or ``OPERATOR`` (``xinyi models import``); an
    institution may register only ``owner/…`` ids (``model_not_owner`` otherwise).
    ``registered_by`` says how: e.g. ``"operator:models-import"`` or
    ``"training:<session id>"``. ``status`` is ``pending`` (the operator reviews it) or
    ``approved`` (only the operator registers approved); by default an operator's import
    is approved (it is the operator's own decision) and an institution's is pending.
    With ``catalog`` the gateway features are checked against the data catalog first.
    Registering a definition equal to the newest version returns that version
    unchanged. ``audit(session, model, status)`` logs a version registered approved, in
    the transaction that stores it."""
    if owner != OPERATOR and model.owner != owner:
        raise ModelNotOwned(
            f"model ids of {owner} are '{owner}/NAME'; {model.id!r} belongs to {model.owner}",
            field="model_id",
        )
    if status is None:
        status = "approved" if owner == OPERATOR else "pending"
    if status not in ("pending", "approved") or (status == "approved" and owner != OPERATOR):
        raise InvalidInput("a new model version is pending, or approved by the operator")
    if catalog is not None:
        check_catalog(model, catalog)
    if not registered_by or len(registered_by) > 200:
        raise InvalidInput("registered_by must name who registers the model (1-200 chars)")
    definition = _canonical(model)
    with write_session(engine) as s:
        newest = (
            s.execute(
                sa.select(joint_models)
                .where(joint_models.c.id == model.id)
                .order_by(joint_models.c.version.desc())
                .limit(1)
            )
            .mappings()
            .first()
        )
        if newest is not None and newest["owner"] != model.owner:
            raise ModelNotOwned(f"model {model.id!r} belongs to {newest['owner']}")
        if newest is not None and newest["definition"] == definition:
            return _model_of(newest)
        version = 1 if newest is None else int(newest["version"]) + 1
        now = int(time.time())
        try:
            s.execute(
                joint_models.insert().values(
                    id=model.id,
                    version=version,
                    definition=definition,
                    registered_by=registered_by,
                    created_at=now,
                    owner=model.owner,
                    status=status,
                    reviewed_by=registered_by if status == "approved" else None,
                    reviewed_at=now if status == "approved" else None,
                )
            )
            s.flush()
        except IntegrityError as e:
            raise Conflict(
                f"model {model.id} was registered concurrently; try again",
                code="model_version_conflict",
            ) from e
        stored = model.registered(version, registered_by, now, status)
        if audit is not None and status == "approved":
            audit(s, stored, status)
    return stored


def _model_of(row: Any) -> JointModel:
    model = parse_model(json.loads(row["definition"]))
    return model.registered(
        int(row["version"]), str(row["registered_by"]), int(row["created_at"]), str(row["status"])
    )


def get_model(
    engine: Engine, model_id: str, version: int | None = None, *, approved: bool = False
) -> JointModel:
    """A model by id: the given version, or the newest one (the newest approved one with
    ``approved``). With ``approved`` a version that is not approved is refused
    (``model_not_approved``)."""
    q = sa.select(joint_models).where(joint_models.c.id == model_id)
    if version is not None:
        q = q.where(joint_models.c.version == version)
    else:
        if approved:
            q = q.where(joint_models.c.status == "approved")
        q = q.order_by(joint_models.c.version.desc()).limit(1)
    with read_session(engine) as s:
        row = s.execute(q).mappings().first()
    if row is None:
        if approved and version is None and newest_version(engine, model_id) is not None:
            raise ModelNotApproved(f"no version of {model_id!r} is approved for serving")
        which = model_id if version is None else f"{model_id}@{version}"
        raise ModelNotFound(f"no joint model {which!r}")
    model = _model_of(row)
    if approved and not model.approved:
        raise ModelNotApproved(f"model {model.ref} is {model.status}, not approved for serving")
    return model


def newest_version(engine: Engine, model_id: str, *, approved: bool = False) -> int | None:
    q = sa.select(sa.func.max(joint_models.c.version)).where(joint_models.c.id == model_id)
    if approved:
        q = q.where(joint_models.c.status == "approved")
    with read_session(engine) as s:
        found = s.execute(q).scalar()
    return int(found) if found is not None else None


def list_models(engine: Engine, *, approved: bool = True) -> list[JointModel]:
    """The newest version of every model, by id (the newest approved one with
    ``approved``, the default: what institutions see and what serves)."""
    inner = sa.select(joint_models.c.id, sa.func.max(joint_models.c.version).label("version"))
    if approved:
        inner = inner.where(joint_models.c.status == "approved")
    newest = inner.group_by(joint_models.c.id).subquery()
    q = (
        sa.select(joint_models)
        .join(
            newest,
            sa.and_(joint_models.c.id == newest.c.id, joint_models.c.version == newest.c.version),
        )
        .order_by(joint_models.c.id)
    )
    with read_session(engine) as s:
        return [_model_of(row) for row in s.execute(q).mappings()]


@dataclass(frozen=True)
class ModelRecord:
    """A stored version as the operator reviews it."""

    model: JointModel
    reviewed_by: str | None
    reviewed_at: int | None


def list_versions(engine: Engine, *, status: str | None = None) -> list[ModelRecord]:
    """Every stored version (the operator's review list), pending first, newest first."""
    q = sa.select(joint_models)
    if status is not None:
        q = q.where(joint_models.c.status == status)
    q = q.order_by(
        (joint_models.c.status != "pending"), joint_models.c.created_at.desc(), joint_models.c.id
    )
    with read_session(engine) as s:
        return [
            ModelRecord(_model_of(r), r["reviewed_by"], r["reviewed_at"])
            for r in s.execute(q).mappings()
        ]


def review_model(
    engine: Engine,
    model_id: str,
    version: int,
    *,
    approve: bool,
    reviewer: str,
    audit: Callable[[Session, JointModel, str], Any],
) -> JointModel:
    """The operator's decision on a pending version: ``approved`` or ``rejected``, once.
    ``audit(session, model, status)`` writes the audit entry in the same transaction (no
    decision without its entry)."""
    status = "approved" if approve else "rejected"
    now = int(time.time())
    with write_session(engine) as s:
        row = (
            s.execute(
                sa.select(joint_models).where(
                    joint_models.c.id == model_id, joint_models.c.version == version
                )
            )
            .mappings()
            .first()
        )
        if row is None:
            raise ModelNotFound(f"no joint model '{model_id}@{version}'")
        if row["status"] != "pending":
            raise ModelAlreadyReviewed(f"model {model_id}@{version} is already {row['status']}")
        done: CursorResult[Any] = s.execute(  # type: ignore[assignment]  # an UPDATE's result
            joint_models.update()
            .where(
                joint_models.c.id == model_id,
                joint_models.c.version == version,
                joint_models.c.status == "pending",
            )
            .values(status=status, reviewed_by=reviewer, reviewed_at=now)
        )
        if done.rowcount != 1:  # a concurrent review won
            raise ModelAlreadyReviewed(f"model {model_id}@{version} was reviewed concurrently")
        model = _model_of({**row, "status": status})
        audit(s, model, status)
    return model


# The score-extraction bound ---------------------------------------------------------------


def take_model_use(
    session: Session,
    *,
    institution: str,
    enterprise: str,
    grant_id: str,
    model_ref: str,
    since: int,
    cap: int,
    now: int,
) -> bool:
    """Record that ``institution`` scores ``enterprise`` with ``model_ref`` under
    ``grant_id``, inside the caller's transaction; False (nothing written) when that
    would make more than ``cap`` distinct models scored for this enterprise since
    ``since`` (now minus a grant's period). Uses under other grants in that period
    count too, so a second grant does not open a second allowance."""
    t = score_model_uses
    key = (
        (t.c.institution_id == institution)
        & (t.c.enterprise == enterprise)
        & (t.c.model == model_ref)
        & (t.c.grant_id == grant_id)
    )
    seen = session.execute(sa.select(t.c.first_at).where(key)).scalar()
    if seen is not None and int(seen) >= since:
        return True  # the hot path: this grant scored with this model within the period
    if session.get_bind().dialect.name == "postgresql":
        # Serialize the count-then-insert per (institution, enterprise); SQLite's
        # BEGIN IMMEDIATE (write_session) already serializes every writer.
        session.execute(
            sa.text("SELECT pg_advisory_xact_lock(hashtext(:k))"),
            {"k": f"score_model_uses|{institution}|{enterprise}"},
        )
    used = set(
        session.execute(
            sa.select(t.c.model)
            .where(
                t.c.institution_id == institution,
                t.c.enterprise == enterprise,
                t.c.first_at >= since,
            )
            .distinct()
        ).scalars()
    )
    if model_ref not in used and len(used) >= cap:
        return False
    if seen is not None:  # used under this grant before the period: counted from now
        session.execute(t.update().where(key).values(first_at=now))
    else:
        session.execute(
            t.insert().values(
                institution_id=institution,
                enterprise=enterprise,
                model=model_ref,
                grant_id=grant_id,
                first_at=now,
            )
        )
    return True
