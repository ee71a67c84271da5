"""Data services: banded reports and yes/no verifications for institutions, and the
department import API.

Invariants:
- every institution answer goes through ``enforce`` first (consent + audit) and is
  computed only after it; non-public values leave only as bands or as one boolean,
  never as values, with or without a grant;
- a verification takes one unit of the grant's budget for that feature (checked and
  taken inside the consent check, in the same transaction as the audit entry);
- a department sees and loads only its own data; the operator may act for any
  department; nobody reads rows back through this API.
"""

from __future__ import annotations

from typing import Any

import jwt
from flask import Blueprint, Response, request

from common import uscc as uscc_rules
from common.errors import Forbidden, InvalidInput, NotFound
from gateway import openapi
from gateway.api.consent import json_body
from gateway.auth import Principal, authenticated, current_principal
from gateway.enforce import enforce
from gateway.services import Services, services
from records import catalog as rules
from records import store as records
from records.importer import rejects_csv
from records.service import import_csv

bp = Blueprint("data", __name__)


def _public_features(svc: Services) -> tuple[list[str], list[str]]:
    cfg = svc.settings.config
    cats = [c for c, cat in cfg.categories.items() if cat.visibility == "public"]
    feats = [f"{c}.{f}" for c in cats for f in cfg.categories[c].features]
    return cats, feats


def _grant_categories(svc: Services, grant: str) -> list[str]:
    """The non-public categories a grant names. Read only to know what to ask for:
    ``enforce`` checks the grant's signature, scope and status before anything is read."""
    try:
        claims = jwt.decode(grant, options={"verify_signature": False})
    except jwt.PyJWTError:
        return []
    cfg = svc.settings.config
    named = claims.get("categories") if isinstance(claims, dict) else None
    if not isinstance(named, list):
        return []
    return [
        c
        for c in dict.fromkeys(named)
        if isinstance(c, str)
        and c in cfg.categories
        and cfg.categories[c].visibility == "non_public"
    ]


# Institutions ------------------------------------------------------------------------


@bp.get("/v1/enterprises/<uscc>/report")
@authenticated("institution")
def report(uscc: str) -> dict[str, Any]:
    code = uscc_rules.validate(uscc)
    svc = services()
    cat = svc.catalog
    principal = current_principal()
    grant = request.args.get("grant")
    public_cats, public_feats = _public_features(svc)
    banded_cats = _grant_categories(svc, grant) if grant else []
    if grant is not None and not banded_cats:
        # A grant naming no non-public category (or no grant at all): ask for all of
        # them, so the consent check reports what is wrong with it (and logs it).
        banded_cats = [
            name
            for name, category in svc.settings.config.categories.items()
            if category.visibility == "non_public"
        ]
    banded_feats = [
        fid
        for fid, rule in cat.features.items()
        if rule.category in banded_cats and rule.spec.bands
    ]
    if grant is not None:
        access = enforce(
            principal,
            grant=grant,
            op="report",
            enterprise=code,
            categories=banded_cats,
            features=public_feats + banded_feats,
            public_categories=public_cats,
        )
    else:
        access = enforce(
            principal,
            grant=None,
            op="report",
            enterprise=code,
            categories=public_cats,
            features=public_feats,
            needs_grant=False,
        )
    values = records.current_values(svc.engine, code, public_feats + banded_feats)
    public = {f: values[f] for f in public_feats if f in values}
    banded = {f: rules.band(cat.rule(f).spec, values[f]) for f in banded_feats if f in values}
    return {"enterprise": code, "public": public, "banded": banded, "audit_index": access.finish()}


@bp.post("/v1/verify")
@authenticated("institution")
def verify() -> dict[str, Any]:
    body = json_body()
    unknown = set(body) - {"grant", "feature", "op", "value"}
    if unknown:
        field = sorted(unknown)[0]
        raise InvalidInput(f"unknown field {field!r}", code="invalid_json", field=field)
    svc = services()
    feature_id, op = body.get("feature"), body.get("op")
    if not isinstance(feature_id, str):
        raise InvalidInput(
            "feature: a feature id such as tax.paid_12m", code="invalid_json", field="feature"
        )
    rule = svc.catalog.features.get(feature_id)
    if rule is None:
        raise InvalidInput(
            f"unknown feature {feature_id!r}", code="unknown_feature", field="feature"
        )
    if rule.public or not rule.spec.verify_ops:
        raise InvalidInput(
            f"{feature_id} cannot be verified", code="feature_not_verifiable", field="feature"
        )
    if op not in rule.spec.verify_ops:
        raise InvalidInput(
            f"op must be one of {list(rule.spec.verify_ops)} for {feature_id}",
            code="op_not_allowed",
            field="op",
        )
    expected = rules.parse_value(rule.spec, body.get("value"))
    grant = body.get("grant")
    access = enforce(
        current_principal(),
        grant=grant if isinstance(grant, str) else None,
        op="verify",
        enterprise=None,
        categories=[rule.category],
        features=[feature_id],
        verify_feature=feature_id,
    )
    assert access.enterprise is not None
    stored = records.current_values(svc.engine, access.enterprise, [feature_id])
    index = access.finish()
    if feature_id not in stored:
        raise NotFound(
            f"the gateway holds no {feature_id} for this enterprise",
            code="no_data",
            audit_index=index,
        )
    return {
        "result": rules.evaluate(rule.spec, stored[feature_id], op, expected),
        "audit_index": index,
    }


# Departments -------------------------------------------------------------------------


def _department(svc: Services, department: str) -> Principal:
    """The caller may act for ``department``: its own department user, or the operator."""
    principal = current_principal()
    if department not in svc.catalog.departments:
        raise NotFound(f"no department {department!r}", code="unknown_department")
    if principal.kind == "department":
        if principal.department != department:
            raise Forbidden(
                "a department sees and loads only its own data", code="wrong_department"
            )
        registered = svc.registry.get_department(department)
        if registered is None or registered.status != "active":
            raise Forbidden("the department is suspended", code="department_suspended")
    return principal


def _upload() -> tuple[bytes, str]:
    """The CSV of an import: a multipart ``file`` field (web form) or the raw body."""
    upload = request.files.get("file")
    if upload is not None:
        return upload.read(), upload.filename or "upload.csv"
    if request.mimetype not in ("text/csv", "application/octet-stream", "text/plain"):
        raise InvalidInput(
            "send the CSV as the body (Content-Type: text/csv) or as a multipart 'file'",
            code="invalid_upload",
        )
    name = request.args.get("file_name") or "upload.csv"
    return request.get_data(cache=False), name


@bp.post("/v1/departments/<department>/imports")
@authenticated("department", "operator")
def import_file(department: str) -> tuple[dict[str, Any], int]:
    svc = services()
    principal = _department(svc, department)
    data, name = _upload()
    record = import_csv(
        svc.engine,
        svc.catalog,
        department,
        data,
        file_name=name,
        actor=f"{principal.kind}:{principal.login or principal.id}",
    )
    return record.as_json(), 201


@bp.get("/v1/departments/<department>/imports")
@authenticated("department", "operator")
def import_history(department: str) -> dict[str, Any]:
    svc = services()
    _department(svc, department)
    limit = request.args.get("limit", "50")
    if not limit.isdigit() or not 1 <= int(limit) <= 500:
        raise InvalidInput("limit: a number from 1 to 500", code="invalid_query", field="limit")
    history = records.import_history(svc.engine, department, limit=int(limit))
    return {"imports": [r.as_json() for r in history]}


def _own_import(svc: Services, department: str, import_id: int) -> records.ImportRecord:
    _department(svc, department)
    record = records.get_import(svc.engine, import_id)
    if record is None or record.department != department:
        raise NotFound(f"no import {import_id} of {department}", code="import_not_found")
    return record


@bp.get("/v1/departments/<department>/imports/<int:import_id>")
@authenticated("department", "operator")
def import_one(department: str, import_id: int) -> dict[str, Any]:
    return _own_import(services(), department, import_id).as_json()


@bp.get("/v1/departments/<department>/imports/<int:import_id>/rejects")
@authenticated("department", "operator")
def import_rejects(department: str, import_id: int) -> Response:
    svc = services()
    record = _own_import(svc, department, import_id)
    text = rejects_csv(records.import_rejects(svc.engine, record.id))
    return Response(
        text,
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="import-{record.id}-rejects.csv"'},
    )


# OpenAPI -----------------------------------------------------------------------------

_BAND = openapi._obj(
    {
        "band": openapi.STR,
        "band_en": openapi.STR,
        "lower": {"type": ["number", "null"]},
        "upper": {"type": ["number", "null"]},
        "unit": {"type": ["string", "null"]},
    },
    ["band", "band_en", "lower", "upper"],
)
_IMPORT = openapi._obj(
    {
        "id": openapi.INT,
        "department": openapi.STR,
        "version": {"type": ["integer", "null"]},
        "status": {"enum": ["loaded", "rejected"]},
        "file_name": openapi.STR,
        "sha256": openapi.STR,
        "rows": openapi.INT,
        "features": openapi.STR_LIST,
        "reject_count": openapi.INT,
        "bad_rows": openapi.INT,
        "imported_at": openapi.INT,
        "imported_by": openapi.STR,
    },
    extra=True,
)
_DEPT = openapi._path_param("department")
_IMPORT_ID = openapi._path_param("import_id", openapi.INT)

openapi.add_paths(
    {
        "/v1/enterprises/{uscc}/report": {
            "get": openapi._op(
                "Report on an enterprise: public categories; with ?grant= (op report) also "
                "its non-public categories as bands, never values",
                tag="data",
                params=[
                    openapi._path_param("uscc", openapi.USCC),
                    openapi._query("grant", openapi.STR),
                ],
                ok=openapi._obj(
                    {
                        "enterprise": openapi.USCC,
                        "public": {"type": "object"},
                        "banded": {"type": "object", "additionalProperties": _BAND},
                        "audit_index": openapi.INT,
                    },
                    ["enterprise", "public", "banded", "audit_index"],
                ),
            )
        },
        "/v1/verify": {
            "post": openapi._op(
                "Yes/no on one non-public feature under a grant for op verify; each grant "
                "has a verification budget per feature (403 verify_budget_exhausted)",
                tag="data",
                body=openapi._obj(
                    {
                        "grant": openapi.STR,
                        "feature": openapi.STR,
                        "op": {"enum": [">=", "<=", "==", "!="]},
                        "value": {"type": ["number", "string", "boolean"]},
                    },
                    ["grant", "feature", "op", "value"],
                ),
                ok=openapi._obj(
                    {"result": {"type": "boolean"}, "audit_index": openapi.INT},
                    ["result", "audit_index"],
                ),
            )
        },
        "/v1/departments/{department}/imports": {
            "post": {
                **openapi._op(
                    "Load a CSV (uscc + the department's feature ids) as the department's "
                    "next snapshot; all or nothing: 400 import_rejected lists every bad row",
                    tag="departments",
                    security="session",
                    ok_status="201",
                    ok=_IMPORT,
                    params=[_DEPT, openapi._query("file_name", openapi.STR)],
                ),
                "requestBody": {
                    "required": True,
                    "content": {
                        "text/csv": {"schema": openapi.STR},
                        "multipart/form-data": {
                            "schema": openapi._obj(
                                {"file": {"type": "string", "format": "binary"}}, ["file"]
                            )
                        },
                    },
                },
            },
            "get": openapi._op(
                "The department's import history (loaded snapshots and refused files)",
                tag="departments",
                security="session",
                params=[_DEPT, openapi._query("limit", openapi.INT)],
                ok=openapi._obj({"imports": {"type": "array", "items": _IMPORT}}, ["imports"]),
            ),
        },
        "/v1/departments/{department}/imports/{import_id}": {
            "get": openapi._op(
                "One import",
                tag="departments",
                security="session",
                ok=_IMPORT,
                params=[_DEPT, _IMPORT_ID],
            )
        },
        "/v1/departments/{department}/imports/{import_id}/rejects": {
            "get": openapi._op(
                "The reasons a file was refused, as CSV (line, column, code, reason)",
                tag="departments",
                security="session",
                text=True,
                params=[_DEPT, _IMPORT_ID],
            )
        },
    }
)
