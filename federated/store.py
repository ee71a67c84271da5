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
  ``register_model``; no HTTP route does.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import SQLModel

from common.db import read_session, write_session
from common.errors import Conflict, InvalidInput, NotFound
from common.settings import Category
from federated.he import CKKSParams
from federated.models import JointModel, check_catalog, parse_model

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
    extend_existing=True,
)


class ContextNotFound(NotFound):
    code = "context_not_found"


class ModelNotFound(NotFound):
    code = "model_not_found"


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
    catalog: Mapping[str, Category] | None = None,
) -> JointModel:
    """Register ``model`` as the next version of its id and return it with ``version``,
    ``registered_by`` and ``created_at`` set. ``registered_by`` says who: e.g.
    ``"operator:models-import"`` or ``"training:<session id>"``. With ``catalog`` the
    gateway features are checked against the data catalog first. Registering a
    definition equal to the newest version returns that version unchanged."""
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
                )
            )
            s.flush()
        except IntegrityError as e:
            raise Conflict(
                f"model {model.id} was registered concurrently; try again",
                code="model_version_conflict",
            ) from e
    return model.registered(version, registered_by, now)


def _model_of(row: Any) -> JointModel:
    model = parse_model(json.loads(row["definition"]))
    return model.registered(int(row["version"]), str(row["registered_by"]), int(row["created_at"]))


def get_model(engine: Engine, model_id: str, version: int | None = None) -> JointModel:
    """A model by id: the newest version, or the given one."""
    q = sa.select(joint_models).where(joint_models.c.id == model_id)
    q = (
        q.where(joint_models.c.version == version)
        if version is not None
        else q.order_by(joint_models.c.version.desc()).limit(1)
    )
    with read_session(engine) as s:
        row = s.execute(q).mappings().first()
    if row is None:
        which = model_id if version is None else f"{model_id}@{version}"
        raise ModelNotFound(f"no joint model {which!r}")
    return _model_of(row)


def newest_version(engine: Engine, model_id: str) -> int | None:
    with read_session(engine) as s:
        found = s.execute(
            sa.select(sa.func.max(joint_models.c.version)).where(joint_models.c.id == model_id)
        ).scalar()
    return int(found) if found is not None else None


def list_models(engine: Engine) -> list[JointModel]:
    """The newest version of every model, by id."""
    newest = (
        sa.select(joint_models.c.id, sa.func.max(joint_models.c.version).label("version"))
        .group_by(joint_models.c.id)
        .subquery()
    )
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
