"""Consent endpoints (CONTRACT.md "Consent")."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request

from common import json_input
from common.errors import InvalidInput
from consent.service import Viewer, describe
from gateway.auth import Principal, authenticated, current_principal
from gateway.enforce import ConsentAudit
from gateway.services import services

bp = Blueprint("consent", __name__)
ACTIONS = ("approve", "reject", "pause", "resume", "revoke")


def _viewer(p: Principal) -> Viewer:
    return Viewer("enterprise" if p.kind == "enterprise" else "institution", p.id)


def json_body() -> dict[str, Any]:
    """The request's JSON object (``Content-Type: application/json``), its nesting bounded
    before the parser recurses (``common.json_input``): 400, never a 500."""
    if not request.is_json:
        raise InvalidInput("the body must be a JSON object", code="invalid_json")
    body = json_input.loads(request.get_data(cache=True))
    if not isinstance(body, dict):
        raise InvalidInput("the body must be a JSON object", code="invalid_json")
    return body


@bp.post("/v1/consents")
@authenticated("institution")
def create() -> tuple[dict[str, Any], int]:
    svc = services()
    audit = ConsentAudit(svc)
    row = svc.consent.request(current_principal().id, json_body(), audit=audit)
    return {**describe(row), "audit_index": audit.index()}, 201


@bp.get("/v1/consents/<consent_id>")
@authenticated("institution", "enterprise")
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
def list_() -> dict[str, Any]:
    svc = services()
    rows = svc.consent.list(_viewer(current_principal()), request.args.get("status"))
    return {"consents": [describe(r) for r in rows]}


@bp.post("/v1/consents/<consent_id>/<action>")
@authenticated("enterprise")
def act(consent_id: str, action: str) -> dict[str, Any]:
    if action not in ACTIONS:
        raise InvalidInput(f"action must be one of {list(ACTIONS)}", code="unknown_action")
    svc = services()
    audit = ConsentAudit(svc)
    row = svc.consent.act(consent_id, action, current_principal().id, audit=audit)
    return {**describe(row), "audit_index": audit.index()}
