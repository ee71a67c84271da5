"""Objection pages (异议, JS 14): the enterprise files from its data page and follows its
objections, the owning department decides the open ones by due date, the operator
sees every objection with the overdue ones flagged.

Invariants:
- the pages act through ``gateway.casework`` exactly as the JSON API does (same checks,
  same codes, same transaction for a correction and its notices);
- a department sees and decides only objections about its own features;
- no page shows a corrected value: only the snapshot version that holds it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from flask import Response, g, redirect, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from casework.objections import Case
from common.errors import Error
from gateway import casework
from gateway.services import services
from gateway.web import department, enterprise, operator
from gateway.web.common import form_error, notify, render
from records.catalog import FeatureRule


def _rows(cases: Sequence[Case]) -> list[dict[str, Any]]:
    """Table rows of objections or repair applications: the case (``c``) and whether it
    is overdue today."""
    today = casework.today()
    return [{"c": c, "overdue": c.overdue(today)} for c in cases]


def _split(cases: Sequence[Case]) -> dict[str, Any]:
    """A department's rows: the open ones by due date, the decided ones latest first."""
    return {
        "open_rows": _rows([c for c in cases if c.status == "open"]),
        "decided_rows": _rows([c for c in cases if c.status != "open"][::-1]),
    }


def _overdue_open(row: dict[str, Any]) -> bool:
    return bool(row["overdue"] and row["c"].status == "open")


def _overdue_open_first(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The operator's order: overdue open cases first, then by due date."""
    return sorted(rows, key=lambda r: (not _overdue_open(r), r["c"].due))


# Enterprise ----------------------------------------------------------------------------


def _objection_form(
    feature: str = "", claim: str = "", error: str = "", status: int = 200
) -> Response:
    svc = services()
    features = sorted(svc.catalog.features)
    return render(
        "web/enterprise/objection_new.html",
        title_key="title.ent.objection_new",
        status=status,
        features=features,
        feature=feature if feature in svc.catalog.features else "",
        claim=claim,
        error=error,
        working_days=svc.settings.config.casework.objection_working_days,
        max_claim=svc.settings.config.casework.max_claim_chars,
        max_attachment_mb=round(svc.settings.config.casework.max_attachment_bytes / 2**20, 1),
    )


@enterprise.bp.get("/objections")
def enterprise_objections() -> Response:
    svc = services()
    objections = casework.visible_objections(svc, g.principal)
    return render(
        "web/enterprise/objections.html",
        title_key="title.ent.objections",
        rows=_rows(objections),
        attachments=casework.attachments_listed(svc, objections),
    )


@enterprise.bp.get("/objections/<objection_id>/attachment")
def enterprise_objection_attachment(objection_id: str) -> Response:
    found = casework.objection_attachment(services(), g.principal, objection_id)
    return casework.attachment_response(found)


@enterprise.bp.get("/objections/new")
def enterprise_objection_new() -> Response:
    return _objection_form(request.args.get("feature", ""))


@enterprise.bp.post("/objections")
def enterprise_objection_file() -> BaseResponse:
    feature = request.form.get("feature", "")
    claim = request.form.get("claim", "")
    upload = request.files.get("attachment")
    attachment = None
    if upload is not None and upload.filename:
        attachment = (upload.filename, upload.read())
    try:
        objection = casework.file_objection(services(), g.principal, feature, claim, attachment)
    except Error as e:
        if e.code == "calendar_year_unknown":
            raise
        return _objection_form(
            feature,
            claim,
            form_error(e),
            status=409 if e.code.endswith("open") else 413 if e.code.endswith("large") else 400,
        )
    notify("notice.objection_filed", due=objection.due.isoformat())
    return redirect(url_for("web_enterprise.enterprise_objections"))


# Department ----------------------------------------------------------------------------


@department.bp.get("/objections")
def department_objections() -> Response:
    svc = services()
    objections = casework.visible_objections(svc, g.principal)
    return render(
        "web/department/objections.html",
        title_key="title.dep.objections",
        attachments=casework.attachments_listed(svc, objections),
        **_split(objections),
    )


@department.bp.get("/objections/<objection_id>/attachment")
def department_objection_attachment(objection_id: str) -> Response:
    found = casework.objection_attachment(services(), g.principal, objection_id)
    return casework.attachment_response(found)


def _form_value(rule: FeatureRule, text: str) -> Any:
    """A value typed into the decision form, as the JSON value the API would receive:
    numbers and booleans are parsed, the rest stays text (the catalog checks it)."""
    text = text.strip()
    kind = rule.spec.type
    if kind in ("integer", "amount", "number"):
        try:
            number = json.loads(text)
        except ValueError:
            return text  # refused by the catalog check, with the reason
        return number
    if kind == "boolean":
        low = text.lower()
        if low in ("true", "1", "yes"):
            return True
        if low in ("false", "0", "no"):
            return False
    return text


@department.bp.post("/objections/<objection_id>/resolve")
def department_objection_resolve(objection_id: str) -> BaseResponse:
    svc = services()
    decision = request.form.get("decision", "")
    reason = request.form.get("reason", "")
    raw = request.form.get("value", "")
    has_value = decision == "corrected" and raw.strip() != ""
    value = None
    if has_value:
        with_rule = casework.feature_of(svc, objection_id, g.principal)
        value = _form_value(with_rule, raw) if with_rule is not None else raw
    try:
        casework.resolve_objection(
            svc,
            g.principal,
            objection_id,
            decision=decision,
            reason=reason,
            value=value,
            has_value=has_value,
        )
    except Error as e:
        if e.code in ("objection_not_found", "not_owning_department", "department_suspended"):
            raise
        notify("error.invalid", "error", message=e.message)
        return redirect(url_for("web_department.department_objections"))
    notify(f"notice.objection_{decision}")
    return redirect(url_for("web_department.department_objections"))


# Operator ------------------------------------------------------------------------------


@operator.bp.get("/objections")
def operator_objections() -> Response:
    rows = _overdue_open_first(_rows(casework.visible_objections(services(), g.principal)))
    repair_rows = _overdue_open_first(_rows(casework.visible_repairs(services(), g.principal)))
    return render(
        "web/operator/objections.html",
        title_key="title.opr.objections",
        rows=rows,
        overdue_open=sum(1 for r in rows if _overdue_open(r)),
        repair_rows=repair_rows,
    )


# Credit repair (信用修复) ------------------------------------------------------------------


def _reminders(held: dict[str, Any], repaired: list[str], open_records: set[str]) -> list[str]:
    """Repairable records that hold a dishonesty or penalty (true, or a count above 0)
    and are neither repaired nor applied for: the 信用修复提醒."""
    out = []
    for record in services().settings.config.casework.repairable:
        value = held.get(record)
        bad = value is True or (
            isinstance(value, int | float) and not isinstance(value, bool) and value > 0
        )
        if bad and record not in repaired and record not in open_records:
            out.append(record)
    return out


@enterprise.bp.get("/repairs")
def enterprise_repairs() -> Response:
    from records import store as records

    svc = services()
    uscc = str(g.principal.uscc)
    repairable = list(svc.settings.config.casework.repairable)
    mine = casework.visible_repairs(svc, g.principal)
    held = records.current_values(svc.engine, uscc, repairable)
    repaired = casework.repaired(svc, uscc, repairable)
    open_records = {r.record for r in mine if r.status == "open"}
    return render(
        "web/enterprise/repairs.html",
        title_key="title.ent.repairs",
        rows=_rows(mine),
        repairable=repairable,
        reminders=_reminders(held, repaired, open_records),
        working_days=svc.settings.config.casework.repair_working_days,
        max_reason=svc.settings.config.casework.max_claim_chars,
    )


@enterprise.bp.post("/repairs")
def enterprise_repair_file() -> BaseResponse:
    try:
        repair = casework.file_repair(
            services(), g.principal, request.form.get("record", ""), request.form.get("reason", "")
        )
    except Error as e:
        if e.code == "calendar_year_unknown":
            raise
        notify("error.invalid", "error", message=e.message)
        return redirect(url_for("web_enterprise.enterprise_repairs"))
    notify("notice.repair_filed", due=repair.due.isoformat())
    return redirect(url_for("web_enterprise.enterprise_repairs"))


@department.bp.get("/repairs")
def department_repairs() -> Response:
    found = casework.visible_repairs(services(), g.principal)
    return render(
        "web/department/repairs.html",
        title_key="title.dep.repairs",
        **_split(found),
    )


@department.bp.post("/repairs/<repair_id>/resolve")
def department_repair_resolve(repair_id: str) -> BaseResponse:
    decision = request.form.get("decision", "")
    try:
        casework.resolve_repair(
            services(),
            g.principal,
            repair_id,
            decision=decision,
            reason=request.form.get("reason", ""),
        )
    except Error as e:
        if e.code in ("repair_not_found", "not_owning_department", "department_suspended"):
            raise
        notify("error.invalid", "error", message=e.message)
        return redirect(url_for("web_department.department_repairs"))
    notify(f"notice.repair_{decision}")
    return redirect(url_for("web_department.department_repairs"))
