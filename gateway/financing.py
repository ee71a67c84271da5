"""The financing loop composed with the stores it touches (used by the API, the web
pages, the CLI and the demo).

Invariants:
- products are published and withdrawn by their institution only; the list is public;
- an application is made by an enterprise account with a verified real name (403
  ``real_name_required``) for an active product, within its ranges (400); the
  application row and the ordinary consent request it creates (the product's purpose,
  ops and categories, for the product's institution) commit in ONE transaction with
  the consent's audit entry, or nothing is stored;
- when the enterprise approves that consent, the application becomes ``submitted`` and
  the signed webhook ``application.submitted`` is queued for the institution in the
  approval's own transaction (``consent_hook``); rejecting the consent withdraws it;
- an institution sees only applications to it; an enterprise only its own; the
  operator all; outcomes are recorded by the product's institution only (403
  ``not_product_institution``);
- the bank console reads the banded report of an application's enterprise only under
  that application's grant, through ``gateway.enforce`` (logged, ``audit_index``);
- statistics are recomputed from records on every call (``financing.store``).
"""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from audit import store as audit_store
from common.db import read_session, write_session
from common.errors import Error, Forbidden, InvalidInput, shown
from common.logging import get_logger
from common.settings import Settings
from consent import store as consent_store
from consent.service import AuditHook, Viewer
from consent.store import ConsentRow
from financing import applications as core
from financing import statistics, store
from financing.errors import (
    ApplicationDecided,
    ApplicationNotFound,
    InvalidNeed,
    InvalidProduct,
    NeedClosed,
    NeedNotFound,
    NotProductInstitution,
    ProductNotFound,
    ProductWithdrawn,
    RealNameRequired,
)
from financing.products import Product, grades_at_least, new_product, text
from gateway import casework, node_statistics
from gateway import grades as grade_service
from gateway.auth import Principal
from gateway.enforce import ConsentAudit, enforce
from gateway.services import Services
from records import catalog as rules
from records import store as records

log = get_logger("gateway.financing")

EVENT_SUBMITTED = "application.submitted"


def _actor(principal: Principal) -> str:
    return f"{principal.kind}:{principal.login or principal.id}"


def _institution_of(principal: Principal) -> str:
    if principal.kind != "institution":
        raise Forbidden("this is for an institution", code="wrong_role")
    return principal.id


# Products ------------------------------------------------------------------------------


def publish_product(svc: Services, principal: Principal, fields: Mapping[str, Any]) -> Product:
    institution = _institution_of(principal)
    product = new_product(
        svc.settings.config,
        product_id="prd_" + uuid.uuid4().hex[:24],
        institution=institution,
        fields=fields,
        now=int(time.time()),
    )
    with write_session(svc.engine) as s:
        store.insert_product(s, product)
    log.info("product_published", product=product.id, institution=institution, kind=product.kind)
    return product


def products(
    svc: Services,
    *,
    kind: str | None = None,
    amount: int | None = None,
    term_months: int | None = None,
    rate: float | None = None,
    grade: str | None = None,
    institution: str | None = None,
    include_withdrawn: bool = False,
    limit: int = 200,
    offset: int = 0,
) -> list[Product]:
    grades = grades_at_least(grade) if grade is not None else None
    with read_session(svc.engine) as s:
        return store.list_products(
            s,
            kind=kind,
            amount=amount,
            term_months=term_months,
            rate=rate,
            grades=grades,
            institution=institution,
            include_withdrawn=include_withdrawn,
            limit=limit,
            offset=offset,
        )


def product(svc: Services, product_id: str) -> Product:
    with read_session(svc.engine) as s:
        found = store.get_product(s, product_id)
    if found is None:
        raise ProductNotFound(f"no product {product_id}")
    return found


def withdraw_product(svc: Services, principal: Principal, product_id: str) -> Product:
    institution = _institution_of(principal)
    found = product(svc, product_id)
    if found.institution != institution:
        raise ProductNotFound(f"no product {product_id}")  # another's: not even named
    with write_session(svc.engine) as s:
        if not store.withdraw_product(s, product_id, int(time.time())):
            raise ProductWithdrawn(f"product {product_id} was withdrawn already")
    log.info("product_withdrawn", product=product_id, institution=institution)
    return product(svc, product_id)


# Applications --------------------------------------------------------------------------


@dataclass(frozen=True)
class Applied:
    application: core.Application
    consent: ConsentRow
    audit_index: int


def _consent_body(svc: Services, p: Product, enterprise: str) -> dict[str, Any]:
    cfg = svc.settings.config
    purpose = cfg.purposes[p.purpose]
    return {
        "enterprise": enterprise,
        "purpose": p.purpose,
        "ops": list(p.ops),
        "categories": list(p.categories),
        "duration_days": min(cfg.financing.consent_days, purpose.max_days),
        "max_uses": min(cfg.financing.consent_max_uses, purpose.max_uses),
    }


def apply(
    svc: Services,
    principal: Principal,
    product_id: str,
    amount: int,
    term_months: int,
) -> Applied:
    """The enterprise ``principal`` applies: the application and the consent request it
    needs, in one transaction."""
    if principal.kind != "enterprise" or principal.uscc is None:
        raise Forbidden("only an enterprise applies", code="wrong_role")
    if not principal.real_name:  # the route refuses it first (gateway.auth.admit)
        raise RealNameRequired(
            "verify the legal representative's real name before authorizing an institution"
        )
    return _open_application(
        svc, product_id, principal.uscc, amount, term_months, by=_actor(principal), need=None
    )


def _open_application(
    svc: Services,
    product_id: str,
    enterprise: str,
    amount: int,
    term_months: int,
    *,
    by: str,
    need: str | None,
) -> Applied:
    p = product(svc, product_id)
    if p.status != "active":
        raise ProductWithdrawn(f"product {product_id} was withdrawn")
    application_id = "app_" + uuid.uuid4().hex[:24]
    now = int(time.time())
    draft = core.Application(
        id=application_id,
        product=p.id,
        institution=p.institution,
        enterprise=enterprise,
        amount=amount,
        term_months=term_months,
        status="awaiting_consent",
        consent="",
        created_at=now,
        created_by=by,
        need=need,
    )
    core.check_terms(p, amount, term_months)
    audit = ConsentAudit(svc)
    made: list[core.Application] = []

    def hook(s: Any, fields: Mapping[str, Any]) -> Any:
        # Inside the consent request's transaction: the application row with it.
        queued = audit(s, fields)
        application = dataclasses.replace(draft, consent=str(fields["grant_id"]))
        store.insert_application(s, application)
        if need is not None and not store.close_need(s, need, now):
            raise NeedClosed(f"need {need} was answered or withdrawn meanwhile")
        made.append(application)
        return queued

    row = svc.consent.request(p.institution, _consent_body(svc, p, enterprise), audit=hook)
    log.info(
        "application_opened",
        application=application_id,
        product=p.id,
        institution=p.institution,
        consent=row.id,
    )
    return Applied(made[0], row, audit.index())


def consent_hook(svc: Services, audit: AuditHook) -> AuditHook:
    """``audit`` for an enterprise's consent decision, extended: approving the consent an
    application created submits it and queues ``application.submitted`` for its
    institution; rejecting it withdraws the application. Same transaction."""

    def hook(s: Any, fields: Mapping[str, Any]) -> Any:
        queued = audit(s, fields)
        operation = fields.get("operation")
        if operation not in ("consent.approve", "consent.reject"):
            return queued
        application = store.awaiting_for_consent(s, str(fields.get("grant_id")))
        if application is None:
            return queued
        now = int(time.time())
        if operation == "consent.reject":
            store.move(s, application.id, expected=["awaiting_consent"], new="withdrawn", now=now)
            return queued
        store.move(s, application.id, expected=["awaiting_consent"], new="submitted", now=now)
        event_id = "evt_" + uuid.uuid4().hex
        payload = {
            "event_id": event_id,
            "type": EVENT_SUBMITTED,
            "application": application.id,
            "product": application.product,
            "enterprise": application.enterprise,
            "amount": application.amount,
            "term_months": application.term_months,
            "consent": application.consent,
            "at": now,
        }
        consent_store.enqueue_event(
            s,
            institution_id=application.institution,
            event_id=event_id,
            payload=json.dumps(payload, sort_keys=True),
            now=now,
        )
        log.info("application_submitted", application=application.id)
        return queued

    return hook


def visible_applications(
    svc: Services, principal: Principal, *, status: str | None = None
) -> list[core.Application]:
    """Institution: those to it; enterprise: its own; operator: all."""
    with read_session(svc.engine) as s:
        if principal.kind == "institution":
            return store.list_applications(s, institution=principal.id, status=status)
        if principal.kind == "enterprise":
            return store.list_applications(s, enterprise=principal.uscc or "", status=status)
        if principal.kind == "operator":
            return store.list_applications(s, status=status)
    raise Forbidden("departments do not see applications", code="wrong_role")


OPERATOR_PAGE = 50
"""Applications per page of the operator's all-applications view."""


@dataclass(frozen=True)
class ApplicationPage:
    applications: list[core.Application]
    page: int
    more: bool
    """Whether a next page exists."""


def operator_applications(
    svc: Services,
    principal: Principal,
    *,
    month: str | None = None,
    status: str | None = None,
    institution: str | None = None,
    region: str | None = None,
    page: int = 1,
) -> ApplicationPage:
    """Every application for the operator, newest first, filtered by the month it was
    filed in (China Standard Time, the statistics' interval), status, institution and
    region; ``OPERATOR_PAGE`` a page (one more is read to know whether a next exists).
    A malformed filter is 400 with the statistics' codes (``invalid_month``,
    ``invalid_region``) or ``invalid_query``."""
    if principal.kind != "operator":
        raise Forbidden("only the operator sees every application", code="wrong_role")
    if status is not None and status not in core.STATUSES:
        raise InvalidInput(f"no status {shown(status)}", code="invalid_query", field="status")
    if page < 1:
        raise InvalidInput("page: a whole number from 1", code="invalid_query", field="page")
    created = None
    if month is not None:
        m = statistics.month(month)
        created = (m.start, m.end)
    with read_session(svc.engine) as s:
        found = store.list_applications(
            s,
            institution=institution,
            status=status,
            region=statistics.region(region) if region is not None else None,
            created=created,
            offset=(page - 1) * OPERATOR_PAGE,
            limit=OPERATOR_PAGE + 1,
        )
    return ApplicationPage(found[:OPERATOR_PAGE], page, len(found) > OPERATOR_PAGE)


def application(svc: Services, principal: Principal, application_id: str) -> core.Application:
    with read_session(svc.engine) as s:
        found = store.get_application(s, application_id)
    if found is None or not _may_see(principal, found):
        raise ApplicationNotFound(f"no application {application_id}")
    return found


def _may_see(principal: Principal, a: core.Application) -> bool:
    if principal.kind == "institution":
        return principal.id == a.institution
    if principal.kind == "enterprise":
        return principal.uscc == a.enterprise
    return principal.kind == "operator"


def withdraw_application(
    svc: Services, principal: Principal, application_id: str
) -> core.Application:
    if principal.kind != "enterprise":
        raise Forbidden("only the enterprise withdraws its application", code="wrong_role")
    found = application(svc, principal, application_id)
    core.check_withdrawal(found)
    with write_session(svc.engine) as s:
        if not store.move(
            s, found.id, expected=list(core.OPEN), new="withdrawn", now=int(time.time())
        ):
            raise ApplicationDecided("the application was decided meanwhile")
    return application(svc, principal, application_id)


def _for_product_institution(
    svc: Services, principal: Principal, application_id: str
) -> tuple[core.Application, Product]:
    """The application and its product, for the product's institution only: another
    institution is refused 403 (it learns only that the id exists, an id it can only
    have guessed), an enterprise or a department too."""
    institution = _institution_of(principal)
    with read_session(svc.engine) as s:
        found = store.get_application(s, application_id)
        p = store.get_product(s, found.product) if found else None
    if found is None or p is None:
        raise ApplicationNotFound(f"no application {application_id}")
    if p.institution != institution:
        raise NotProductInstitution("only the product's institution decides this application")
    return found, p


def record_outcome(
    svc: Services, principal: Principal, application_id: str, fields: dict[str, Any]
) -> core.Application:
    found, p = _for_product_institution(svc, principal, application_id)
    outcome = core.decide(
        svc.settings.config, found, p, fields, by=_actor(principal), now=int(time.time())
    )
    with write_session(svc.engine) as s:
        if not store.move(
            s, found.id, expected=["submitted"], new=outcome.decision, now=outcome.decided_at
        ):
            raise ApplicationDecided("the application was decided or withdrawn meanwhile")
        store.insert_outcome(s, found, outcome)
    log.info("application_decided", application=found.id, decision=outcome.decision)
    return application(svc, principal, application_id)


def report_repayment(
    svc: Services, principal: Principal, application_id: str, status: str
) -> core.Application:
    found, _ = _for_product_institution(svc, principal, application_id)
    core.check_repayment(svc.settings.config, found, status)
    with write_session(svc.engine) as s:
        store.insert_repayment(s, found.id, status, int(time.time()), _actor(principal))
    log.info("repayment_reported", application=found.id, status=status)
    return application(svc, principal, application_id)


# Financing needs -----------------------------------------------------------------------


def publish_need(
    svc: Services, principal: Principal, amount: int, term_months: int, use: str
) -> dict[str, Any]:
    if principal.kind != "enterprise" or principal.uscc is None:
        raise Forbidden("only an enterprise publishes a financing need", code="wrong_role")
    cfg = svc.settings.config.financing
    if not 0 < amount <= cfg.amount_max:
        raise InvalidNeed(f"amount: 1 to {cfg.amount_max} (CNY)", field="amount")
    if not 1 <= term_months <= cfg.term_months_max:
        raise InvalidNeed(f"term_months: 1 to {cfg.term_months_max}", field="term_months")
    try:
        use = text(use, "use", cfg.max_text_chars)
    except InvalidProduct as e:
        raise InvalidNeed(f"use: 1 to {cfg.max_text_chars} characters", field="use") from e
    need = {
        "id": "ned_" + uuid.uuid4().hex[:24],
        "enterprise": principal.uscc,
        "amount": amount,
        "term_months": term_months,
        "use": use,
        "status": "open",
        "created_at": int(time.time()),
        "created_by": _actor(principal),
        "closed_at": None,
    }
    with write_session(svc.engine) as s:
        store.insert_need(s, need)
    log.info("need_published", need=need["id"])
    return need


def visible_needs(svc: Services, principal: Principal) -> list[dict[str, Any]]:
    """Enterprise: its own; institution and operator: the open ones (an enterprise
    publishes a need for institutions to answer)."""
    with read_session(svc.engine) as s:
        if principal.kind == "enterprise":
            return store.list_needs(s, enterprise=principal.uscc or "")
        if principal.kind in ("institution", "operator"):
            return store.list_needs(s, status="open")
    raise Forbidden("departments do not see financing needs", code="wrong_role")


def answer_need(svc: Services, principal: Principal, need_id: str, product_id: str) -> Applied:
    """An institution answers an open need with one of its products: an application
    awaiting the enterprise's consent, within the product's ranges."""
    institution = _institution_of(principal)
    with read_session(svc.engine) as s:
        need = store.get_need(s, need_id)
    if need is None:
        raise NeedNotFound(f"no financing need {need_id}")
    if need["status"] != "open":
        raise NeedClosed(f"need {need_id} is closed")
    p = product(svc, product_id)
    if p.institution != institution:
        raise ProductNotFound(f"no product {product_id}")
    return _open_application(
        svc,
        product_id,
        need["enterprise"],
        int(need["amount"]),
        int(need["term_months"]),
        by=_actor(principal),
        need=need_id,
    )


# Statistics ----------------------------------------------------------------------------


def registration_features(settings: Settings) -> list[str]:
    """The registration data's features: whoever appears in it is a market entity."""
    cat = settings.config.categories.get("registration")
    return [f"registration.{f}" for f in cat.features] if cat else []


def month_statistics(svc: Services, month: str, region: str | None = None) -> dict[str, Any]:
    return statistics_report(svc.settings, svc.engine, month, region)


def statistics_report(
    settings: Settings, engine: Engine, month: str, region: str | None = None
) -> dict[str, Any]:
    """The contract's statistics for ``month`` (``YYYY-MM``), optionally one region
    (the API, the operator page and ``xinyi stats export`` share it)."""
    m = statistics.month(month)
    wanted = statistics.region(region) if region is not None else None
    targets = settings.config.accounts.market_targets.model_dump()
    features = registration_features(settings)

    def part(name: str) -> dict[str, dict[str, Any]]:
        with read_session(engine) as s:
            return store.month_sums(
                s,
                start=m.start,
                end=m.end,
                registration_features=features,
                region=wanted,
                parts=(name,),
            )

    # The families of sums scan different records: on PostgreSQL they run at once on
    # separate connections (each its own snapshot of "now"), the month at a million
    # enterprises within its bound (bench/platform.py).
    if engine.dialect.name == "postgresql":
        with ThreadPoolExecutor(max_workers=len(store.PARTS)) as pool:
            parts = list(pool.map(part, store.PARTS))
    else:
        parts = [part(name) for name in store.PARTS]
    by_region = statistics.merge_parts(parts)
    with read_session(engine) as s:
        by_institution = store.institution_sums(s, start=m.start, end=m.end) if not wanted else {}
    # A parent node counts its children's pushed figures, marked by node (CONTRACT v2
    # "Nodes"; docs/network.md): in by_region and in the top-level figures.
    total, region_rows = node_statistics.with_children(engine, m.label, wanted, by_region, targets)
    return {
        "month": m.label,
        **statistics.figures(total, targets),
        "by_region": region_rows,
        "by_institution": [
            {
                "institution": i,
                **_flow(statistics.figures(by_institution[i], targets)),
                "authorized_in_month": int(by_institution[i].get("authorized_in_month") or 0),
            }
            for i in sorted(by_institution)
        ],
    }


FLOW_FIELDS = (
    "applications",
    "approved",
    "credit_lines",
    "disbursed",
    "credit_loan_disbursed",
    "credit_loan_share",
    "first_loans",
    "weighted_rate",
)


def _flow(figures: dict[str, Any]) -> dict[str, Any]:
    return {k: figures[k] for k in FLOW_FIELDS}


def department_efficacy(engine: Engine, month: str) -> dict[str, dict[str, int]]:
    """成效 (JY 三(二)2): per department, the month's approved loans whose decision used
    its data (an allowed audit entry under the application's grant touched one of its
    categories) and the amount they disbursed."""
    m = statistics.month(month)
    out: dict[str, dict[str, int]] = {}
    with read_session(engine) as s:
        for loan in store.approved_loans(s, start=m.start, end=m.end):
            departments = audit_store.departments_under_grant(
                s, loan["institution"], loan["enterprise"], loan["consent"]
            )
            for d in sorted(departments):
                fig = out.setdefault(d, {"loans": 0, "disbursed": 0})
                fig["loans"] += 1
                fig["disbursed"] += int(loan["disbursed"] or 0)
    return out


# The bank console's report ---------------------------------------------------------


@dataclass(frozen=True)
class ConsoleReport:
    """The banded report an officer read under an application's grant."""

    banded: dict[str, dict[str, Any]]
    """Feature id → its band as the report API answers it (``band``, ``band_en``,
    bounds, unit)."""
    disputed: list[str]
    audit_index: int
    grade: dict[str, Any] | None = None
    """The credit grade as ``GET /v1/enterprises/{uscc}/grade`` answers it (letters
    only), when the product's consent names op ``grade``."""
    grade_refused: str | None = None
    """Why the grade could not be read (a refusal code), when it was asked."""


def read_report(svc: Services, principal: Principal, application_id: str) -> ConsoleReport:
    """The banded report of the application's enterprise, read by a console officer of
    the product's institution UNDER THE APPLICATION'S GRANT through the enforcement
    point (one grant use, one audit entry naming the officer), never values: the
    non-public categories of the consent, banded features only. A consent that was
    never approved, or was revoked or paused since, is refused by ``enforce`` like any
    request of the institution's client (and logged)."""
    found, _ = _for_product_institution(svc, principal, application_id)
    row = svc.consent.get(found.consent, Viewer("institution", found.institution))
    cfg = svc.settings.config
    categories = [c for c in row.categories if cfg.categories[c].visibility == "non_public"]
    features = [
        fid
        for fid, rule in svc.catalog.features.items()
        if rule.category in categories and rule.spec.bands
    ]
    access = enforce(
        principal,
        grant=row.grant_jwt,
        op="report",
        enterprise=found.enterprise,
        categories=categories,
        features=features,
    )
    values = records.current_values(svc.engine, found.enterprise, features)
    banded = {f: rules.band(svc.catalog.rule(f).spec, values[f]) for f in features if f in values}
    index = access.finish()
    grade: dict[str, Any] | None = None
    grade_refused: str | None = None
    if "grade" in row.ops:
        # The grade under the same grant, through its own function (op grade: one more
        # use, one more entry naming the officer); a refusal is shown, not raised.
        try:
            grade = grade_service.grade_for_institution(
                svc, grant=row.grant_jwt, uscc=found.enterprise, actor=principal
            )
        except Error as e:
            grade_refused = e.code
    return ConsoleReport(
        banded=banded,
        disputed=casework.disputed(svc, found.enterprise, list(banded)),
        audit_index=index,
        grade=grade,
        grade_refused=grade_refused,
    )
