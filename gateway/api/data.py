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
from gateway import casework
from gateway.api import schemas
from gateway.auth import Principal, authenticated, current_principal
from gateway.contract import operation
from gateway.enforce import enforce
from gateway.services import Services, services
from records import catalog as rules
from records import store as records
from records.importer import rejects_csv
from records.pseudonyms import LEGAL_REP_ID
from records.service import import_csv

bp = Blueprint("data", __name__)


def _public_features(svc: Services) -> tuple[list[str], list[str]]:
    cfg = svc.settings.config
    cats = [c for c, cat in cfg.categories.items() if cat.visibility == "public"]
    # A keyed hash (an identifier of a person) is never served, public category or not.
    feats = [
        f"{c}.{f}"
        for c in cats
        for f, spec in cfg.categories[c].features.items()
        if not spec.keyed_hash
    ]
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
@operation(
    "Report on an enterprise: public categories; with ?grant= (op report) also its "
    "non-public categories as bands, never values",
    tag="data",
    query=schemas.ReportQuery,
    answer=schemas.Report,
    path={"uscc": schemas.Uscc},
)
def report(uscc: str, query: schemas.ReportQuery) -> dict[str, Any]:
    code = uscc_rules.validate(uscc)
    svc = services()
    cat = svc.catalog
    principal = current_principal()
    grant = query.grant
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
    used = [*public, *banded]
    return {
        "enterprise": code,
        "public": public,
        "banded": banded,
        "disputed": casework.disputed(svc, code, used),
        "repaired": casework.repaired(svc, code, public),
        "audit_index": access.finish(),
    }


@bp.post("/v1/verify")
@authenticated("institution")
@operation(
    "Yes/no on one non-public feature under a grant for op verify; each grant has a "
    "verification budget per feature (403 verify_budget_exhausted)",
    tag="data",
    body=schemas.Verification,
    answer=schemas.Verified,
)
def verify(body: schemas.Verification) -> dict[str, Any]:
    svc = services()
    feature_id, op = body.feature, body.op
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
    expected = rules.parse_value(rule.spec, body.value)
    access = enforce(
        current_principal(),
        grant=body.grant,
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
        "disputed": casework.disputed(svc, access.enterprise, [feature_id]),
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


def _upload(file_name: str | None) -> tuple[bytes, str]:
    """The CSV of an import: a multipart ``file`` field (web form) or the raw body."""
    upload = request.files.get("file")
    if upload is not None:
        return upload.read(), upload.filename or "upload.csv"
    if request.mimetype not in ("text/csv", "application/octet-stream", "text/plain"):
        raise InvalidInput(
            "send the CSV as the body (Content-Type: text/csv) or as a multipart 'file'",
            code="invalid_upload",
        )
    name = file_name or "upload.csv"
    return request.get_data(cache=False), name


@bp.post("/v1/departments/<department>/imports")
@authenticated("department", "operator")
@operation(
    "Load a CSV (uscc + the department's feature ids) as the department's next snapshot; "
    "all or nothing: 400 import_rejected lists every bad row",
    tag="departments",
    body=schemas.ImportUpload,
    body_media=("text/csv", "multipart/form-data"),
    query=schemas.ImportName,
    answer=schemas.ImportRecord,
    status=201,
)
def import_file(department: str, query: schemas.ImportName) -> tuple[dict[str, Any], int]:
    svc = services()
    principal = _department(svc, department)
    data, name = _upload(query.file_name)
    record = import_csv(
        svc.engine,
        svc.catalog,
        department,
        data,
        file_name=name,
        actor=f"{principal.kind}:{principal.login or principal.id}",
        pseudonym_key=svc.keys.pseudonym_key(LEGAL_REP_ID),
    )
    return record.as_json(), 201


@bp.get("/v1/departments/<department>/imports")
@authenticated("department", "operator")
@operation(
    "The department's import history (loaded snapshots and refused files)",
    tag="departments",
    query=schemas.ImportHistoryQuery,
    answer=schemas.ImportHistory,
)
def import_history(department: str, query: schemas.ImportHistoryQuery) -> dict[str, Any]:
    svc = services()
    _department(svc, department)
    history = records.import_history(svc.engine, department, limit=query.limit)
    return {"imports": [r.as_json() for r in history]}


def _own_import(svc: Services, department: str, import_id: int) -> records.ImportRecord:
    _department(svc, department)
    record = records.get_import(svc.engine, import_id)
    if record is None or record.department != department:
        raise NotFound(f"no import {import_id} of {department}", code="import_not_found")
    return record


@bp.get("/v1/departments/<department>/imports/<int:import_id>")
@authenticated("department", "operator")
@operation("One import", tag="departments", answer=schemas.ImportRecord)
def import_one(department: str, import_id: int) -> dict[str, Any]:
    return _own_import(services(), department, import_id).as_json()


@bp.get("/v1/departments/<department>/imports/<int:import_id>/rejects")
@authenticated("department", "operator")
@operation(
    "The reasons a file was refused, as CSV (line, column, code, reason)",
    tag="departments",
    answer_media="text/csv",
)
def import_rejects(department: str, import_id: int) -> Response:
    svc = services()
    record = _own_import(svc, department, import_id)
    text = rejects_csv(records.import_rejects(svc.engine, record.id))
    return Response(
        text,
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="import-{record.id}-rejects.csv"'},
    )
