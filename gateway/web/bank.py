"""The bank console (接入机构工作台, role ``institution`` staff sessions): the applications
inbox, each application with the banded report read under its grant, the outcome form,
and product management.

Invariants:
- only the bank's console staff are admitted (``install(bp, "institution")``), each
  seeing its own institution's applications and products only (``gateway.financing``
  asks the store with the principal's institution);
- the report is read only on the officer's explicit request (a POST: it takes one use
  of the grant), through the enforcement point under the application's own grant,
  logged with the officer's login as actor, and shown with its audit index; bands
  only, never a value;
- the credit grade is not shown yet (the grade op is another area's; until it is
  merged the banded report is the only data shown);
- HE scoring never happens here: the bank's secret key stays in its own systems
  (``xinyi bank``).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, g, redirect, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from common.errors import Error, InvalidInput
from financing.applications import STATUSES
from financing.products import GRADE_KEYS
from gateway import financing
from gateway.auth import Principal
from gateway.services import services
from gateway.web.common import form_error, install, names, notify, render

bp = Blueprint("web_bank", __name__, url_prefix="/bank")
install(bp, "institution")


def _me() -> Principal:
    principal: Principal = g.principal
    return principal


def _products_by_id() -> dict[str, Any]:
    svc = services()
    found = financing.products(svc, institution=_me().id, include_withdrawn=True)
    return {p.id: p for p in found}


@bp.get("/")
def inbox() -> Response:
    svc = services()
    chosen = request.args.get("status") or None
    if chosen not in STATUSES:
        chosen = None
    found = financing.visible_applications(svc, _me(), status=chosen)
    return render(
        "web/bank/inbox.html",
        title_key="title.bank.inbox",
        applications=found,
        products=_products_by_id(),
        chosen=chosen,
        statuses=STATUSES,
    )


def _application_page(application_id: str, **extra: Any) -> Response:
    svc = services()
    found = financing.application(svc, _me(), application_id)
    return render(
        "web/bank/application.html",
        title_key="title.bank.application",
        a=found,
        product=financing.product(svc, found.product),
        reasons=svc.settings.config.financing.decline_reasons,
        grade_keys=GRADE_KEYS,
        repayments=svc.settings.config.financing.repayment_statuses,
        **extra,
    )


@bp.get("/applications/<application_id>")
def application(application_id: str) -> Response:
    return _application_page(application_id)


@bp.post("/applications/<application_id>/report")
def report(application_id: str) -> Response:
    """Read the banded report under the application's grant (one use, one entry)."""
    try:
        found = financing.read_report(services(), _me(), application_id)
    except Error as e:
        notify("bank.report.refused", "error", code=e.code)
        return _application_page(application_id)
    return _application_page(application_id, report=found)


def _int(name: str) -> int | None:
    raw = (request.form.get(name) or "").strip()
    if not raw:
        return None
    if not raw.isdigit():
        raise InvalidInput(f"{name}: a whole number", code="invalid_outcome", field=name)
    return int(raw)


def _float(name: str) -> float | None:
    raw = (request.form.get(name) or "").strip()
    if not raw:
        return None
    try:
        return float(raw)
    except ValueError as e:
        raise InvalidInput(f"{name}: a number", code="invalid_outcome", field=name) from e


@bp.post("/applications/<application_id>/outcome")
def outcome(application_id: str) -> BaseResponse:
    try:
        decision = request.form.get("decision", "")
        if decision not in ("approved", "declined"):
            raise InvalidInput("decision: approved or declined", code="invalid_outcome")
        fields: dict[str, Any] = {
            "decision": decision,
            "reason": (request.form.get("reason") or None) if decision == "declined" else None,
            "credit_loan": request.form.get("credit_loan") == "yes",
            "first_loan": request.form.get("first_loan") == "yes",
        }
        if decision == "approved":
            fields |= {
                "credit_line": _int("credit_line"),
                "disbursed": _int("disbursed"),
                "rate": _float("rate"),
                "term_months": _int("term_months"),
            }
        else:
            fields["credit_loan"] = fields["first_loan"] = False
        financing.record_outcome(services(), _me(), application_id, fields)
    except Error as e:
        notify("bank.outcome.refused", "error", message=form_error(e))
        return redirect(url_for(".application", application_id=application_id))
    notify("bank.outcome.recorded", "success")
    return redirect(url_for(".application", application_id=application_id))


@bp.post("/applications/<application_id>/repayment")
def repayment(application_id: str) -> BaseResponse:
    try:
        status = request.form.get("status", "")
        financing.report_repayment(services(), _me(), application_id, status)
    except Error as e:
        notify("bank.outcome.refused", "error", message=form_error(e))
    return redirect(url_for(".application", application_id=application_id))


@bp.get("/products")
def products() -> Response:
    svc = services()
    cfg = svc.settings.config
    return render(
        "web/bank/products.html",
        title_key="title.bank.products",
        products=list(_products_by_id().values()),
        withdraw_url=lambda p: url_for(".withdraw", product_id=p.id),
        names=names(),
        grade_keys=GRADE_KEYS,
        kinds=cfg.financing.product_kinds,
        purposes=list(cfg.purposes),
        categories=[c for c, cat in cfg.categories.items() if cat.visibility != "restricted"],
    )


def _grade(key: str) -> str | None:
    """The grade word of a form's key (top, first, candidate); "" for none."""
    if not key:
        return None
    for grade, known in GRADE_KEYS.items():
        if known == key:
            return grade
    raise InvalidInput("min_grade: top, first or candidate", code="invalid_product")


@bp.post("/products")
def publish() -> BaseResponse:
    form = request.form
    try:
        fields = {
            "name": form.get("name", ""),
            "kind": form.get("kind", ""),
            "amount_min": _int("amount_min") or 0,
            "amount_max": _int("amount_max") or 0,
            "rate_min": _float("rate_min") or 0.0,
            "rate_max": _float("rate_max") or 0.0,
            "term_months_max": _int("term_months_max") or 0,
            "purpose": form.get("purpose", ""),
            "ops": form.getlist("ops"),
            "categories": form.getlist("categories"),
            "min_grade": _grade(form.get("min_grade") or ""),
        }
        financing.publish_product(services(), _me(), fields)
    except Error as e:
        notify("bank.product.refused", "error", message=form_error(e))
        return redirect(url_for(".products"))
    notify("bank.product.published", "success")
    return redirect(url_for(".products"))


@bp.post("/products/<product_id>/withdraw")
def withdraw(product_id: str) -> BaseResponse:
    try:
        financing.withdraw_product(services(), _me(), product_id)
    except Error as e:
        notify("bank.product.refused", "error", message=form_error(e))
        return redirect(url_for(".products"))
    notify("bank.product.withdrawn", "success")
    return redirect(url_for(".products"))


@bp.get("/needs")
def needs() -> Response:
    """Open financing needs, each answerable with one of this institution's products."""
    svc = services()
    mine = [p for p in _products_by_id().values() if p.status == "active"]
    return render(
        "web/bank/needs.html",
        title_key="title.bank.needs",
        needs=financing.visible_needs(svc, _me()),
        products=mine,
    )


@bp.post("/needs/<need_id>/answer")
def answer_need(need_id: str) -> BaseResponse:
    try:
        applied = financing.answer_need(services(), _me(), need_id, request.form.get("product", ""))
    except Error as e:
        notify("bank.need.refused", "error", message=form_error(e))
        return redirect(url_for(".needs"))
    notify("bank.need.answered", "success")
    return redirect(url_for(".application", application_id=applied.application.id))
