"""Consent endpoints (CONTRACT.md "Consent")."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from common.errors import InvalidInput
from consent.service import Viewer, describe
from gateway.api import schemas
from gateway.auth import Principal, authenticated, current_principal
from gateway.contract import operation
from gateway.enforce import ConsentAudit
from gateway.financing import consent_hook
from gateway.services import services

bp = Blueprint("consent", __name__)
ACTIONS = ("approve", "reject", "pause", "resume", "revoke")


def _viewer(p: Principal) -> Viewer:
    return Viewer("enterprise" if p.kind == "enterprise" else "institution", p.id)


@bp.post("/v1/consents")
@authenticated("institution")
@operation(
    "Ask an enterprise for consent",
    tag="consent",
    body=schemas.ConsentRequest,
    answer=schemas.ConsentView,
    status=201,
)
def create(body: schemas.ConsentRequest) -> tuple[dict[str, Any], int]:
    svc = services()
    audit = ConsentAudit(svc)
    row = svc.consent.request(current_principal().id, body.model_dump(), audit=audit)
    return {**describe(row), "audit_index": audit.index()}, 201


@bp.get("/v1/consents/<consent_id>")
@authenticated("institution", "enterprise")
@operation(
    "One consent (its requester or its enterprise)", tag="consent", answer=schemas.ConsentView
)
def get(consent_id: str) -> dict[str, Any]:
    svc = services()
    p = current_principal()
    row = svc.consent.get(consent_id, _viewer(p))
    out = describe(row)
    if p.kind == "enterprise":
        out["verification_budget"] = svc.consent.verification_budget(row)
    return out


@bp.get("/v1/consents")
@authenticated("institution", "enterprise")
@operation(
    "My consents (institution or enterprise)",
    tag="consent",
    query=schemas.ConsentFilter,
    answer=schemas.ConsentList,
)
def list_(query: schemas.ConsentFilter) -> dict[str, Any]:
    svc = services()
    rows = svc.consent.list(_viewer(current_principal()), query.status)
    return {"consents": [describe(r) for r in rows]}


@bp.post("/v1/consents/<consent_id>/<action>")
@authenticated("enterprise")
@operation(
    "Enterprise decision: approve, reject, pause, resume, revoke",
    tag="consent",
    answer=schemas.ConsentView,
    path={"action": schemas.ConsentAction},
)
def act(consent_id: str, action: str) -> dict[str, Any]:
    if action not in ACTIONS:
        raise InvalidInput(f"action must be one of {list(ACTIONS)}", code="unknown_action")
    svc = services()
    audit = ConsentAudit(svc)
    # An application's consent, approved, submits the application (gateway.financing).
    hook = consent_hook(svc, audit)
    row = svc.consent.act(consent_id, action, current_principal().id, audit=hook)
    return {**describe(row), "audit_index": audit.index()}
