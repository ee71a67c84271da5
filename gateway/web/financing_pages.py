"""The financing pages of the enterprise console, the operator console and the public
product page (docs/financing.md); the bank console is ``gateway.web.bank``.

Invariants:
- the public product page shows the products' published terms only (no session);
- the enterprise applies from its console; applying creates the consent request and
  sends the enterprise to the existing consent page, where it reads the authorization
  letter and approves it like any other (the approval submits the application);
- the enterprise sees every state of its own applications, outcome included, and may
  withdraw one while it is open (awaiting consent or submitted; a POST with the CSRF
  token, as every form);
- the operator sees every application, filtered by month, status, institution and
  region, a page at a time (``gateway.financing.operator_applications``);
- the operator's month page shows the figures ``GET /v1/statistics`` answers (same
  function), with charts, and 成效 per department.
"""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, Response, g, redirect, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from common.errors import Error, InvalidInput
from financing.applications import OPEN, STATUSES
from financing.products import GRADE_KEYS
from financing.statistics import month_of
from gateway import financing
from gateway.services import services
from gateway.web import charts, enterprise, operator
from gateway.web.common import (
    error_page,
    form_error,
    names,
    notify,
    page_lang,
    remember_lang,
    render,
    t,
)

GRADE_BY_KEY = {key: grade for grade, key in GRADE_KEYS.items()}

public = Blueprint("web_products", __name__, url_prefix="/products")
public.after_request(remember_lang)
public.register_error_handler(Error, error_page)


def _filters() -> dict[str, Any]:
    """The product filters of the query string; a malformed one is ignored (said)."""
    args = request.args
    out: dict[str, Any] = {}
    try:
        if args.get("kind"):
            out["kind"] = args["kind"]
        if args.get("amount"):
            out["amount"] = _whole(args["amount"], "amount")
        if args.get("term"):
            out["term_months"] = _whole(args["term"], "term")
        if args.get("rate"):
            out["rate"] = float(args["rate"])
        if args.get("grade"):  # the page names grades by key (top, first, candidate)
            out["grade"] = GRADE_BY_KEY[args["grade"]]
    except (InvalidInput, ValueError, KeyError):
        notify("fin.filter.invalid", "error")
        return {}
    return out


def _whole(raw: str, name: str) -> int:
    if not raw.isdigit():
        raise InvalidInput(f"{name}: a whole number", code="invalid_query")
    return int(raw)


def _product_page(template: str, title_key: str, **extra: Any) -> Response:
    svc = services()
    filters = _filters()
    try:
        found = financing.products(svc, **filters)
    except Error as e:
        notify("error.invalid", "error", message=form_error(e))
        found = financing.products(svc)
    return render(
        template,
        title_key=title_key,
        products=found,
        kinds=svc.settings.config.financing.product_kinds,
        args=request.args,
        grade_keys=GRADE_KEYS,
        names=names(),
        **extra,
    )


@public.get("/")
def products() -> Response:
    """The product supermarket for everyone (金融产品超市, YX 四(一)一)."""
    page_lang()
    return _product_page("web/financing/products.html", "title.fin.products")


# Enterprise ---------------------------------------------------------------------------


@enterprise.bp.get("/products")
def enterprise_products() -> Response:
    return _product_page(
        "web/financing/products.html",
        "title.fin.products",
        apply_url=lambda p: url_for("web_enterprise.apply_form", product_id=p.id),
    )


@enterprise.bp.get("/products/<product_id>/apply")
def apply_form(product_id: str) -> Response:
    return render(
        "web/financing/apply.html",
        title_key="title.fin.apply",
        product=financing.product(services(), product_id),
        names=names(),
    )


@enterprise.bp.post("/products/<product_id>/apply")
def apply(product_id: str) -> BaseResponse:
    try:
        amount = _whole((request.form.get("amount") or "").strip(), "amount")
        term = _whole((request.form.get("term_months") or "").strip(), "term_months")
        applied = financing.apply(services(), g.principal, product_id, amount, term)
    except Error as e:
        notify("fin.apply.refused", "error", message=form_error(e))
        return redirect(url_for("web_enterprise.apply_form", product_id=product_id))
    notify("fin.apply.letter", "info")
    return redirect(url_for("web_enterprise.consent", consent_id=applied.consent.id))


@enterprise.bp.get("/applications")
def enterprise_applications() -> Response:
    svc = services()
    found = financing.visible_applications(svc, g.principal)
    every = {p.id: p for p in financing.products(svc, include_withdrawn=True)}
    return render(
        "web/financing/applications.html",
        title_key="title.fin.applications",
        applications=found,
        products=every,
        needs=financing.visible_needs(svc, g.principal),
        open_states=OPEN,
        names=names(),
    )


@enterprise.bp.post("/applications/<application_id>/withdraw")
def withdraw_application(application_id: str) -> BaseResponse:
    """Withdraw an open application (its consent stays the enterprise's to revoke)."""
    try:
        financing.withdraw_application(services(), g.principal, application_id)
    except Error as e:
        notify("fin.withdraw.refused", "error", message=form_error(e))
        return redirect(url_for("web_enterprise.enterprise_applications"))
    notify("fin.withdraw.done", "success")
    return redirect(url_for("web_enterprise.enterprise_applications"))


@enterprise.bp.post("/needs")
def publish_need() -> BaseResponse:
    """Publish a financing need (融资需求) for institutions to answer with a product."""
    try:
        amount = _whole((request.form.get("amount") or "").strip(), "amount")
        term = _whole((request.form.get("term_months") or "").strip(), "term_months")
        financing.publish_need(services(), g.principal, amount, term, request.form.get("use", ""))
    except Error as e:
        notify("fin.need.refused", "error", message=form_error(e))
        return redirect(url_for("web_enterprise.enterprise_applications"))
    notify("fin.need.published", "success")
    return redirect(url_for("web_enterprise.enterprise_applications"))


# Operator -----------------------------------------------------------------------------


@operator.bp.get("/financing")
def financing_stats() -> Response:
    svc = services()
    month = request.args.get("month") or month_of(time.time())
    try:
        report = financing.month_statistics(svc, month)
        efficacy = financing.department_efficacy(svc.engine, month)
    except Error as e:
        notify("error.invalid", "error", message=form_error(e))
        month = month_of(time.time())
        report = financing.month_statistics(svc, month)
        efficacy = financing.department_efficacy(svc.engine, month)
    regions = report["by_region"]
    loans_chart = charts.bar_chart(
        title=t("opr.fin.disbursed_by_region"),
        desc=t("opr.fin.disbursed_by_region"),
        labels=[r["region"] for r in regions],
        values=[r["disbursed"] for r in regions],
    )
    shares_chart = charts.bar_chart(
        title=t("opr.fin.shares"),
        desc=t("opr.fin.shares"),
        labels=[t(f"opr.fin.share.{k}") for k in ("registered", "real_name", "authorizing")],
        values=[
            round((report["shares"][k] or 0) * 100, 1)
            for k in ("registered", "real_name", "authorizing")
        ],
    )
    return render(
        "web/operator/financing.html",
        title_key="title.opr.financing",
        month=month,
        r=report,
        efficacy=efficacy,
        loans_chart=loans_chart,
        shares_chart=shares_chart,
        names=names(),
    )


APPLICATION_FILTERS = ("month", "status", "institution", "region")


@operator.bp.get("/applications")
def operator_applications() -> Response:
    """Every application (the operator's view), filtered and paged."""
    svc = services()
    chosen = {k: (request.args.get(k) or "").strip() for k in APPLICATION_FILTERS}
    page_arg = request.args.get("page") or "1"
    try:
        found = financing.operator_applications(
            svc,
            g.principal,
            **{k: v for k, v in chosen.items() if v},
            page=_whole(page_arg, "page"),
        )
    except InvalidInput as e:
        notify("error.invalid", "error", message=form_error(e))
        chosen = dict.fromkeys(APPLICATION_FILTERS, "")
        found = financing.operator_applications(svc, g.principal)
    every = {p.id: p for p in financing.products(svc, include_withdrawn=True)}
    kept: dict[str, Any] = {k: v for k, v in chosen.items() if v}
    return render(
        "web/operator/applications.html",
        title_key="title.opr.applications",
        found=found,
        chosen=chosen,
        statuses=STATUSES,
        institutions=svc.registry.institutions(),
        products=every,
        prev_url=_page_url(kept, found.page - 1) if found.page > 1 else None,
        next_url=_page_url(kept, found.page + 1) if found.more else None,
        names=names(),
    )


def _page_url(filters: dict[str, Any], page: int) -> str:
    """The operator's applications view at ``page``, keeping its filters."""
    return url_for("web_operator.operator_applications", **{**filters, "page": page})
