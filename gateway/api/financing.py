"""Financing endpoints (CONTRACT v2 "Financing: products, applications, outcomes").

Invariants (the rules live in ``financing`` and ``gateway.financing``):
- the product list is public (no authentication): products are offers, not data;
- an institution sees only applications to it and decides only those of its own
  products (403 ``not_product_institution``); an enterprise sees and withdraws only its
  own; the operator reads all and alone reads the statistics;
- no answer here carries a department's value: the bank console reads reports through
  ``gateway.enforce`` under the application's grant (``gateway.web.bank``).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from consent.service import describe
from gateway import financing
from gateway.api import schemas
from gateway.auth import authenticated, current_principal
from gateway.contract import operation
from gateway.services import services

bp = Blueprint("financing", __name__)


@bp.post("/v1/products")
@authenticated("institution", staff=True)
@operation(
    "An institution publishes a product: amount, rate and term ranges and the consent "
    "terms a decision needs (purpose, ops, categories), optionally a minimum grade",
    tag="financing",
    body=schemas.ProductPublication,
    answer=schemas.ProductView,
    status=201,
)
def publish(body: schemas.ProductPublication) -> tuple[dict[str, Any], int]:
    product = financing.publish_product(services(), current_principal(), body.model_dump())
    return product.as_json(), 201


@bp.get("/v1/products")
@operation(
    "The product supermarket (public): active products, filtered by kind, an amount "
    "within the range, a term up to the longest, a rate at or above the lowest, the "
    "grade an enterprise holds; lowest rate first, `limit` (≤ 200, default 50) from "
    "`offset`",
    tag="financing",
    query=schemas.ProductQuery,
    answer=schemas.Products,
)
def list_products(query: schemas.ProductQuery) -> dict[str, Any]:
    found = financing.products(
        services(),
        kind=query.kind,
        amount=query.amount,
        term_months=query.term,
        rate=query.rate,
        grade=query.grade,
        institution=query.institution,
        limit=query.limit,
        offset=query.offset,
    )
    return {"products": [p.as_json() for p in found]}


@bp.post("/v1/products/<product_id>/withdraw")
@authenticated("institution", staff=True)
@operation(
    "The institution withdraws its product: gone from the list, past applications keep it",
    tag="financing",
    answer=schemas.ProductView,
)
def withdraw_product(product_id: str) -> dict[str, Any]:
    return financing.withdraw_product(services(), current_principal(), product_id).as_json()


def _opened(applied: financing.Applied) -> dict[str, Any]:
    """The ``ApplicationOpened`` answer: the application and the consent it awaits."""
    return {
        "id": applied.application.id,
        "status": applied.application.status,
        "consent": describe(applied.consent),
        "application": applied.application.as_json(),
        "audit_index": applied.audit_index,
    }


@bp.post("/v1/applications")
@authenticated("enterprise")
@operation(
    "The enterprise applies to a product (real name required): the application and the "
    "ordinary consent request it needs, for the enterprise to approve",
    tag="financing",
    body=schemas.ApplicationFiling,
    answer=schemas.ApplicationOpened,
    status=201,
)
def apply(body: schemas.ApplicationFiling) -> tuple[dict[str, Any], int]:
    applied = financing.apply(
        services(), current_principal(), body.product, body.amount, body.term_months
    )
    return _opened(applied), 201


@bp.get("/v1/applications")
@authenticated("institution", "enterprise", "operator", staff=True, unverified=True)
@operation(
    "Applications: to the institution, of the enterprise, or all (operator); newest first",
    tag="financing",
    query=schemas.ApplicationQuery,
    answer=schemas.Applications,
)
def list_applications(query: schemas.ApplicationQuery) -> dict[str, Any]:
    found = financing.visible_applications(services(), current_principal(), status=query.status)
    return {"applications": [a.as_json() for a in found]}


@bp.get("/v1/applications/<application_id>")
@authenticated("institution", "enterprise", "operator", staff=True, unverified=True)
@operation(
    "One application (its enterprise, its institution)",
    tag="financing",
    answer=schemas.ApplicationView,
)
def get_application(application_id: str) -> dict[str, Any]:
    return financing.application(services(), current_principal(), application_id).as_json()


@bp.post("/v1/applications/<application_id>/withdraw")
@authenticated("enterprise", unverified=True)
@operation(
    "The enterprise withdraws its application before a decision (its consent stays as it "
    "is: revoke it separately)",
    tag="financing",
    answer=schemas.ApplicationView,
)
def withdraw_application(application_id: str) -> dict[str, Any]:
    svc = services()
    return financing.withdraw_application(svc, current_principal(), application_id).as_json()


@bp.post("/v1/applications/<application_id>/outcome")
@authenticated("institution", staff=True)
@operation(
    "The product's institution records the outcome once: approved (credit line, "
    "disbursed, rate, term, credit-loan and first-loan flags) or declined with a "
    "standard reason; 409 while the consent was never approved",
    tag="financing",
    body=schemas.OutcomeFiling,
    answer=schemas.ApplicationView,
)
def record_outcome(application_id: str, body: schemas.OutcomeFiling) -> dict[str, Any]:
    return financing.record_outcome(
        services(), current_principal(), application_id, body.model_dump()
    ).as_json()


@bp.post("/v1/applications/<application_id>/repayment")
@authenticated("institution", staff=True)
@operation(
    "The product's institution reports an approved loan's repayment status",
    tag="financing",
    body=schemas.RepaymentFiling,
    answer=schemas.ApplicationView,
)
def report_repayment(application_id: str, body: schemas.RepaymentFiling) -> dict[str, Any]:
    return financing.report_repayment(
        services(), current_principal(), application_id, body.status
    ).as_json()


def _need(n: dict[str, Any]) -> dict[str, Any]:
    keys = ("id", "enterprise", "amount", "term_months", "use", "status", "created_at")
    return {k: n[k] for k in keys}


@bp.post("/v1/needs")
@authenticated("enterprise")
@operation(
    "The enterprise publishes a financing need (amount, term, use) for institutions to "
    "answer with a product",
    tag="financing",
    body=schemas.NeedFiling,
    answer=schemas.NeedView,
    status=201,
)
def publish_need(body: schemas.NeedFiling) -> tuple[dict[str, Any], int]:
    need = financing.publish_need(
        services(), current_principal(), body.amount, body.term_months, body.use
    )
    return _need(need), 201


@bp.get("/v1/needs")
@authenticated("enterprise", "institution", "operator", staff=True, unverified=True)
@operation(
    "Financing needs: the enterprise's own; the open ones for institutions and the operator",
    tag="financing",
    answer=schemas.Needs,
)
def list_needs() -> dict[str, Any]:
    return {"needs": [_need(n) for n in financing.visible_needs(services(), current_principal())]}


@bp.post("/v1/needs/<need_id>/answer")
@authenticated("institution", staff=True)
@operation(
    "An institution answers an open need with one of its products: an application "
    "awaiting the enterprise's consent",
    tag="financing",
    body=schemas.NeedAnswer,
    answer=schemas.ApplicationOpened,
    status=201,
)
def answer_need(need_id: str, body: schemas.NeedAnswer) -> tuple[dict[str, Any], int]:
    applied = financing.answer_need(services(), current_principal(), need_id, body.product)
    return _opened(applied), 201


@bp.get("/v1/statistics")
@authenticated("operator")
@operation(
    "The month's statistics by the national caliber (JY 三(三)3), by division (USCC "
    "digits 3-8) and institution, computed from the records on each call",
    tag="financing",
    query=schemas.StatisticsQuery,
    answer=schemas.Statistics,
)
def statistics(query: schemas.StatisticsQuery) -> dict[str, Any]:
    return financing.month_statistics(services(), query.month, query.region)


@bp.get("/v1/statistics/efficacy")
@authenticated("operator", "department")
@operation(
    "成效 (JY 三(二)2): the month's approved loans whose decisions used each department's "
    "data (a department sees its own line)",
    tag="financing",
    query=schemas.StatisticsQuery,
    answer=schemas.Efficacy,
)
def efficacy(query: schemas.StatisticsQuery) -> dict[str, Any]:
    principal = current_principal()
    found = financing.department_efficacy(services().engine, query.month)
    if principal.kind == "department":
        found = {k: v for k, v in found.items() if k == principal.department}
    return {"month": query.month, "departments": found}
