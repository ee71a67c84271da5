"""Objections (异议, JS 14; CONTRACT v2 "Objections, credit repair, risk alerts"):
the enterprise files, the owning department decides, everyone concerned lists.

Invariants (the rules themselves live in ``casework`` and ``gateway.casework``):
- filing is for an enterprise session about its own data; deciding is for a session of
  the department that owns the feature (403 ``not_owning_department`` otherwise);
- a listing shows the enterprise its own objections, a department those about its
  features, the operator all; institutions see none;
- no answer carries a feature value.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from flask import Blueprint, Response

from casework.errors import AttachmentRefused
from gateway import casework
from gateway.api import schemas
from gateway.auth import authenticated, current_principal
from gateway.contract import operation
from gateway.services import services

bp = Blueprint("objections", __name__)


@bp.post("/v1/objections")
@authenticated("enterprise")
@operation(
    "The enterprise objects to one feature of its own data; due 2 working days later on "
    "the official calendar (409 objection_already_open while one is open)",
    tag="objections",
    body=schemas.ObjectionFiling,
    answer=schemas.ObjectionView,
    status=201,
)
def file_objection(body: schemas.ObjectionFiling) -> tuple[dict[str, Any], int]:
    svc = services()
    upload = None
    if body.attachment is not None:
        upload = (body.attachment.file_name, _decoded(body.attachment.content_base64))
    objection = casework.file_objection(svc, current_principal(), body.feature, body.claim, upload)
    return _with_attachments(svc, [objection])[0], 201


def _decoded(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as e:
        raise AttachmentRefused(
            "attachment.content_base64 is not base64", field="attachment.content_base64"
        ) from e


def _with_attachments(svc: Any, objections: list[Any]) -> list[dict[str, Any]]:
    """The objections' contract views, each with its attachment's description."""
    today = casework.today()
    found = casework.attachments_listed(svc, objections)
    out = []
    for o in objections:
        view = o.as_json(today)
        a = found.get(o.id)
        view["attachment"] = a.as_json() if a is not None else None
        out.append(view)
    return out


@bp.get("/v1/objections/<objection_id>/attachment")
@authenticated("enterprise", "department", "operator")
@operation(
    "An objection's attachment, as filed (PDF, PNG or JPEG): for the enterprise that filed "
    "it and the department that owns the feature only",
    tag="objections",
    answer_media="application/octet-stream",
)
def objection_attachment(objection_id: str) -> Response:
    found = casework.objection_attachment(services(), current_principal(), objection_id)
    return casework.attachment_response(found)


@bp.get("/v1/objections")
@authenticated("enterprise", "department", "operator")
@operation(
    "Objections: the enterprise's own, a department's about its features, or all "
    "(operator); earliest due first, with overdue flagged",
    tag="objections",
    query=schemas.ObjectionQuery,
    answer=schemas.Objections,
)
def list_objections(query: schemas.ObjectionQuery) -> dict[str, Any]:
    svc = services()
    found = casework.visible_objections(svc, current_principal(), status=query.status)
    return {"objections": _with_attachments(svc, found)}


@bp.post("/v1/objections/<objection_id>/resolve")
@authenticated("department", "operator")
@operation(
    "The owning department decides: corrected (the value becomes the feature's next "
    "version, provenance the objection; institutions that used the old value get "
    "data.corrected) or rejected, with a reason",
    tag="objections",
    body=schemas.ObjectionDecision,
    answer=schemas.ObjectionView,
)
def resolve_objection(objection_id: str, body: schemas.ObjectionDecision) -> dict[str, Any]:
    objection = casework.resolve_objection(
        services(),
        current_principal(),
        objection_id,
        decision=body.decision,
        reason=body.reason,
        value=body.value,
        has_value="value" in body.model_fields_set and body.value is not None,
    )
    return objection.as_json(casework.today())


# Credit repair (信用修复) ------------------------------------------------------------------


@bp.post("/v1/repairs")
@authenticated("enterprise")
@operation(
    "The enterprise applies to repair one of its dishonesty or penalty records; due 5 "
    "working days later (409 repair_already_open while one is open)",
    tag="objections",
    body=schemas.RepairApplication,
    answer=schemas.RepairView,
    status=201,
)
def file_repair(body: schemas.RepairApplication) -> tuple[dict[str, Any], int]:
    repair = casework.file_repair(services(), current_principal(), body.record, body.reason)
    return repair.as_json(casework.today()), 201


@bp.get("/v1/repairs")
@authenticated("enterprise", "department", "operator")
@operation(
    "Repair applications: the enterprise's own, a department's about its records, or all",
    tag="objections",
    query=schemas.RepairQuery,
    answer=schemas.Repairs,
)
def list_repairs(query: schemas.RepairQuery) -> dict[str, Any]:
    today = casework.today()
    found = casework.visible_repairs(services(), current_principal(), status=query.status)
    return {"repairs": [r.as_json(today) for r in found]}


@bp.post("/v1/repairs/<repair_id>/resolve")
@authenticated("department", "operator")
@operation(
    "The record's department decides: repaired (shown as 已修复; institutions with an "
    "active grant get credit.repaired) or rejected, with a reason",
    tag="objections",
    body=schemas.RepairDecision,
    answer=schemas.RepairView,
)
def resolve_repair(repair_id: str, body: schemas.RepairDecision) -> dict[str, Any]:
    repair = casework.resolve_repair(
        services(), current_principal(), repair_id, decision=body.decision, reason=body.reason
    )
    return repair.as_json(casework.today())
