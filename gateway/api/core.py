"""Sign-in, public keys, the catalog, health."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Blueprint, Response, jsonify

from common.db import is_sqlite, read_connection
from common.errors import Error, Forbidden
from common.privileges import missing_privileges
from gateway.api import schemas
from gateway.auth import (
    authenticate_person,
    authenticated,
    current_csrf,
    current_principal,
    end_session,
    start_session,
)
from gateway.contract import operation
from gateway.services import services

bp = Blueprint("core", __name__)


@bp.post("/v1/session")
@operation(
    "Sign in (enterprise, department, operator users and institution console staff); "
    "attempts are throttled per login and address (429 sign_in_throttled) and limited "
    "per address (429 rate_limited)",
    tag="auth",
    body=schemas.SignIn,
    answer=schemas.SignedIn,
)
def sign_in(body: schemas.SignIn) -> dict[str, Any]:
    user = authenticate_person(body.login, body.password)
    csrf = start_session(user)
    return {
        "login": user.login,
        "role": user.role,
        "uscc": user.uscc,
        "department": user.department_id,
        "csrf_token": csrf,
        "institution": user.institution_id,
        "real_name": user.real_name if user.role == "enterprise" else None,
    }


@bp.delete("/v1/session")
@operation("Sign out", tag="auth", status=204)
def sign_out() -> tuple[str, int]:
    end_session()
    return "", 204


@bp.get("/v1/session")
@authenticated("enterprise", "department", "operator", "institution", staff=True, unverified=True)
@operation("Who is signed in", tag="auth", answer=schemas.SignedIn)
def whoami() -> dict[str, Any]:
    p = current_principal()
    if p.kind == "institution" and not p.staff:  # the OAuth client is no person
        raise Forbidden("this call is for people signed in", code="wrong_role")
    return {
        "login": p.login,
        "role": p.kind,
        "uscc": p.uscc,
        "department": p.department,
        "csrf_token": current_csrf(),
        "institution": p.institution,
        "real_name": p.real_name if p.kind == "enterprise" else None,
    }


@bp.get("/v1/webhook")
@authenticated("institution")
@operation("My webhook URL (institution)", tag="consent", answer=schemas.WebhookView)
def webhook() -> dict[str, Any]:
    """The URL that receives this institution's signed consent events."""
    inst = services().registry.institution(current_principal().id)
    return {"url": inst.webhook_url}


@bp.put("/v1/webhook")
@authenticated("institution")
@operation(
    "Register or remove my webhook URL (signed consent events)",
    tag="consent",
    body=schemas.Webhook,
    answer=schemas.WebhookView,
)
def set_webhook(body: schemas.Webhook) -> dict[str, Any]:
    """Register (or with ``{"url": null}`` remove) the webhook URL; events that waited
    for it are delivered from the outbox."""
    url = body.url
    inst = services().registry.set_webhook(current_principal().id, url)
    return {"url": inst.webhook_url}


@bp.get("/.well-known/jwks.json")
@operation("Public signing keys (grants, tokens, checkpoints)", tag="auth", answer=schemas.Jwks)
def jwks() -> Response:
    resp = jsonify(services().keys.jwks())
    resp.headers["Cache-Control"] = "public, max-age=60"
    return resp


@bp.get("/v1/catalog")
@authenticated(unverified=True)  # what data exists is no enterprise's data
@operation(
    "Departments, purposes, categories and features", tag="catalog", answer=schemas.CatalogView
)
def catalog() -> dict[str, Any]:
    cfg = services().settings.config
    features: dict[str, Any] = {}
    for cname, cat in cfg.categories.items():
        for fname, f in cat.features.items():
            features[f"{cname}.{fname}"] = {
                "category": cname,
                "department": cat.department,
                "visibility": cat.visibility,
                "type": f.type,
                "unit": f.unit,
                "description": f.description,
                "description_en": f.description_en,
                "values": f.values,
                "verify_ops": list(f.verify_ops),
                "bands": f.bands,
            }
    return {
        "departments": [d.model_dump() for d in cfg.departments],
        "purposes": {k: v.model_dump() for k, v in cfg.purposes.items()},
        "categories": {
            k: {
                "department": c.department,
                "visibility": c.visibility,
                "name": c.name,
                "name_en": c.name_en,
                "features": [f"{k}.{n}" for n in c.features],
            }
            for k, c in cfg.categories.items()
        },
        "features": features,
    }


@bp.get("/healthz")
@operation("Liveness", tag="ops", answer=schemas.Health)
def health() -> dict[str, str]:
    """Liveness: the process answers (a load balancer restarts it when it does not)."""
    return {"status": "ok"}


@bp.get("/readyz")
@operation(
    "Readiness: the database answers with the privileges requests need and the audit log "
    "is readable (503 with the same shape when not)",
    tag="ops",
    answer=schemas.Readiness,
    error=schemas.Readiness,
)
def ready() -> tuple[dict[str, Any], int]:
    """Readiness: this worker can serve now. The database answers and the audit log's
    state is readable (a request that cannot be logged is not served, so without it
    nothing could be); the audit queue's depth and lag are reported for operators."""
    svc = services()
    try:
        status = svc.audit.status()
        missing = _missing_privileges(svc.engine)
    except (sa.exc.SQLAlchemyError, Error):
        return {"status": "unavailable", "database": False}, 503
    if missing:
        # A login that cannot do what a request does would answer every request 500.
        return {
            "status": "unavailable",
            "database": True,
            "reason": "the database login lacks "
            + ", ".join(missing[:12])
            + ("…" if len(missing) > 12 else "")
            + ": run `xinyi db roles --login <gateway login>` as the schema owner",
        }, 503
    return {
        "status": "ready",
        "database": True,
        "audit_log_size": status["log_size"],
        "audit_queue_depth": status["queue_depth"],
        "audit_queue_lag_seconds": status["queue_lag_seconds"],
    }, 200


def _missing_privileges(engine: sa.Engine) -> list[str]:
    """PostgreSQL: the table privileges of ``common.privileges`` this login lacks."""
    if is_sqlite(engine):
        return []
    with read_connection(engine) as conn:
        return missing_privileges(conn)
