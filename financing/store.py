"""Financing persistence (migration 0014_financing): products, applications, outcomes,
repayment reports and financing needs; and the month's statistics as SQL aggregates.

Invariants:
- rows are never deleted: a withdrawn product keeps its row (past applications name
  it), an application keeps every state it reached;
- a state change is a conditional UPDATE guarded by the state it leaves, so two racing
  changes cannot both succeed; an outcome's row is keyed by its application, so it is
  recorded once;
- statistics are computed here from these rows, the accounts, the consents and the
  registration data with SQL aggregation on each call: there is no counter to drift;
- ``region`` (USCC digits 3-8) is stored beside the enterprise so the month's figures
  group by an indexed column.

Every function takes the caller's connection or session, so an application and the
consent request it creates (and a consent approval, the application's submission and
its webhook event) commit together.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from financing.applications import Application, Outcome
from financing.products import Product
from financing.statistics import SUMS

metadata = sa.MetaData()
Executor = Connection | Session

products = sa.Table(
    "financing_products",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("institution", sa.String(64), nullable=False, index=True),
    sa.Column("name", sa.String(500), nullable=False),
    sa.Column("kind", sa.String(48), nullable=False),
    sa.Column("amount_min", sa.BigInteger, nullable=False),
    sa.Column("amount_max", sa.BigInteger, nullable=False),
    sa.Column("rate_min", sa.Float, nullable=False),
    sa.Column("rate_max", sa.Float, nullable=False),
    sa.Column("term_months_max", sa.Integer, nullable=False),
    sa.Column("purpose", sa.String(48), nullable=False),
    sa.Column("ops", sa.Text, nullable=False),
    sa.Column("categories", sa.Text, nullable=False),
    sa.Column("min_grade", sa.String(8)),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("withdrawn_at", sa.BigInteger),
    sa.Index("ix_financing_products_status_kind", "status", "kind"),
)

applications = sa.Table(
    "financing_applications",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("product", sa.String(40), nullable=False),
    sa.Column("institution", sa.String(64), nullable=False),
    sa.Column("enterprise", sa.String(18), nullable=False),
    sa.Column("region", sa.String(6), nullable=False),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("term_months", sa.Integer, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("consent", sa.String(40), nullable=False, unique=True),
    sa.Column("need", sa.String(40)),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("created_by", sa.String(120), nullable=False),
    sa.Column("submitted_at", sa.BigInteger),
    sa.Column("closed_at", sa.BigInteger),
    sa.Index("ix_financing_applications_institution", "institution", "created_at"),
    sa.Index("ix_financing_applications_enterprise", "enterprise", "created_at"),
    sa.Index("ix_financing_applications_created", "created_at", "region"),
)

outcomes = sa.Table(
    "financing_outcomes",
    metadata,
    sa.Column("application", sa.String(40), primary_key=True),
    sa.Column("institution", sa.String(64), nullable=False),
    sa.Column("enterprise", sa.String(18), nullable=False),
    sa.Column("region", sa.String(6), nullable=False),
    sa.Column("decision", sa.String(16), nullable=False),
    sa.Column("reason", sa.String(48)),
    sa.Column("credit_line", sa.BigInteger),
    sa.Column("disbursed", sa.BigInteger),
    sa.Column("rate", sa.Float),
    sa.Column("term_months", sa.Integer),
    sa.Column("credit_loan", sa.Boolean, nullable=False),
    sa.Column("first_loan", sa.Boolean, nullable=False),
    sa.Column("decided_at", sa.BigInteger, nullable=False),
    sa.Column("decided_by", sa.String(120), nullable=False),
    sa.Index("ix_financing_outcomes_decided", "decided_at", "region"),
)

repayments = sa.Table(
    "financing_repayments",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("application", sa.String(40), nullable=False, index=True),
    sa.Column("status", sa.String(24), nullable=False),
    sa.Column("reported_at", sa.BigInteger, nullable=False),
    sa.Column("reported_by", sa.String(120), nullable=False),
)

needs = sa.Table(
    "financing_needs",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("enterprise", sa.String(18), nullable=False, index=True),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("term_months", sa.Integer, nullable=False),
    sa.Column("use", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("created_by", sa.String(120), nullable=False),
    sa.Column("closed_at", sa.BigInteger),
    sa.Index("ix_financing_needs_status", "status", "created_at"),
)

# The tables of other packages the statistics read, named here by columns only: a domain
# package imports only ``common`` (import-linter), and these columns are the records the
# figures are computed from (accounts 0011, consents 0001, registration data 0003).
users = sa.table(
    "users",
    sa.column("uscc"),
    sa.column("role"),
    sa.column("created_at"),
    sa.column("real_name_at"),
    sa.column("login"),
)
consents = sa.table(
    "consents",
    sa.column("enterprise"),
    sa.column("not_before"),
    sa.column("decided_at"),
    sa.column("institution_id"),
)
record_imports = sa.table(
    "record_imports", sa.column("id"), sa.column("status"), sa.column("imported_at")
)
record_import_features = sa.table(
    "record_import_features", sa.column("feature"), sa.column("import_id")
)
record_rows = sa.table("record_rows", sa.column("import_id"), sa.column("uscc"))

PARTS = ("accounts", "consents", "market", "flows")
"""The families of sums ``month_sums`` computes (each scans different records)."""

TABLES = (
    "financing_products",
    "financing_applications",
    "financing_outcomes",
    "financing_repayments",
    "financing_needs",
)


# Products ------------------------------------------------------------------------------


def insert_product(ex: Executor, p: Product) -> None:
    ex.execute(
        products.insert().values(
            id=p.id,
            institution=p.institution,
            name=p.name,
            kind=p.kind,
            amount_min=p.amount_min,
            amount_max=p.amount_max,
            rate_min=p.rate_min,
            rate_max=p.rate_max,
            term_months_max=p.term_months_max,
            purpose=p.purpose,
            ops=json.dumps(list(p.ops)),
            categories=json.dumps(list(p.categories)),
            min_grade=p.min_grade,
            status=p.status,
            created_at=p.created_at,
        )
    )


def _product(m: Any) -> Product:
    return Product(
        id=m["id"],
        institution=m["institution"],
        name=m["name"],
        kind=m["kind"],
        amount_min=int(m["amount_min"]),
        amount_max=int(m["amount_max"]),
        rate_min=float(m["rate_min"]),
        rate_max=float(m["rate_max"]),
        term_months_max=int(m["term_months_max"]),
        purpose=m["purpose"],
        ops=tuple(json.loads(m["ops"])),
        categories=tuple(json.loads(m["categories"])),
        min_grade=m["min_grade"],
        status=m["status"],
        created_at=int(m["created_at"]),
        withdrawn_at=m["withdrawn_at"],
    )


def get_product(ex: Executor, product_id: str) -> Product | None:
    m = ex.execute(sa.select(products).where(products.c.id == product_id)).mappings().first()
    return _product(m) if m else None


def products_by_ids(ex: Executor, ids: Sequence[str]) -> dict[str, Product]:
    if not ids:
        return {}
    q = sa.select(products).where(products.c.id.in_(sorted(set(ids))))
    return {m["id"]: _product(m) for m in ex.execute(q).mappings()}


def list_products(
    ex: Executor,
    *,
    kind: str | None = None,
    amount: int | None = None,
    term_months: int | None = None,
    rate: float | None = None,
    grades: Sequence[str] | None = None,
    institution: str | None = None,
    include_withdrawn: bool = False,
    limit: int = 200,
    offset: int = 0,
) -> list[Product]:
    """Active products (all of ``institution``'s when ``include_withdrawn``) matching
    the filters: ``amount`` within the product's range, ``term_months`` up to its
    longest term, ``rate`` at or above its lowest rate, ``grades`` the minimum grades
    the caller's grade satisfies (products without a minimum always match)."""
    q = sa.select(products)
    if not include_withdrawn:
        q = q.where(products.c.status == "active")
    if institution is not None:
        q = q.where(products.c.institution == institution)
    if kind is not None:
        q = q.where(products.c.kind == kind)
    if amount is not None:
        q = q.where(products.c.amount_min <= amount, products.c.amount_max >= amount)
    if term_months is not None:
        q = q.where(products.c.term_months_max >= term_months)
    if rate is not None:
        q = q.where(products.c.rate_min <= rate)
    if grades is not None:
        q = q.where(sa.or_(products.c.min_grade.is_(None), products.c.min_grade.in_(list(grades))))
    q = q.order_by(products.c.rate_min, products.c.created_at.desc(), products.c.id)
    q = q.limit(limit).offset(offset)
    return [_product(m) for m in ex.execute(q).mappings()]


def withdraw_product(ex: Executor, product_id: str, now: int) -> bool:
    done = ex.execute(
        products.update()
        .where(products.c.id == product_id, products.c.status == "active")
        .values(status="withdrawn", withdrawn_at=now)
        .returning(products.c.id)
    ).first()
    return done is not None


# Applications and outcomes ---------------------------------------------------------


def insert_application(ex: Executor, a: Application) -> None:
    ex.execute(
        applications.insert().values(
            id=a.id,
            product=a.product,
            institution=a.institution,
            enterprise=a.enterprise,
            region=a.enterprise[2:8],
            amount=a.amount,
            term_months=a.term_months,
            status=a.status,
            consent=a.consent,
            need=a.need,
            created_at=a.created_at,
            created_by=a.created_by,
        )
    )


_WITH_OUTCOME = sa.select(
    applications,
    outcomes.c.decision,
    outcomes.c.reason,
    outcomes.c.credit_line,
    outcomes.c.disbursed,
    outcomes.c.rate,
    outcomes.c.term_months.label("outcome_term"),
    outcomes.c.credit_loan,
    outcomes.c.first_loan,
    outcomes.c.decided_at,
    outcomes.c.decided_by,
).select_from(applications.outerjoin(outcomes, outcomes.c.application == applications.c.id))


def _latest_repayments(ex: Executor, ids: Sequence[str]) -> dict[str, tuple[str, int]]:
    if not ids:
        return {}
    q = (
        sa.select(repayments.c.application, repayments.c.status, repayments.c.reported_at)
        .where(repayments.c.application.in_(sorted(set(ids))))
        .order_by(repayments.c.id)
    )
    return {a: (s, int(t)) for a, s, t in ex.execute(q)}  # the newest report wins


def _applications(ex: Executor, q: Any) -> list[Application]:
    rows = list(ex.execute(q).mappings())
    repaid = _latest_repayments(ex, [m["id"] for m in rows if m["decision"] == "approved"])
    out = []
    for m in rows:
        outcome = None
        if m["decision"] is not None:
            rep = repaid.get(m["id"])
            outcome = Outcome(
                decision=m["decision"],
                reason=m["reason"],
                credit_line=m["credit_line"],
                disbursed=m["disbursed"],
                rate=m["rate"],
                term_months=m["outcome_term"],
                credit_loan=bool(m["credit_loan"]),
                first_loan=bool(m["first_loan"]),
                decided_at=int(m["decided_at"]),
                decided_by=m["decided_by"],
                repayment=rep[0] if rep else None,
                repayment_at=rep[1] if rep else None,
            )
        out.append(
            Application(
                id=m["id"],
                product=m["product"],
                institution=m["institution"],
                enterprise=m["enterprise"],
                amount=int(m["amount"]),
                term_months=int(m["term_months"]),
                status=m["status"],
                consent=m["consent"],
                created_at=int(m["created_at"]),
                created_by=m["created_by"],
                need=m["need"],
                submitted_at=m["submitted_at"],
                outcome=outcome,
            )
        )
    return out


def get_application(ex: Executor, application_id: str) -> Application | None:
    found = _applications(ex, _WITH_OUTCOME.where(applications.c.id == application_id))
    return found[0] if found else None


def list_applications(
    ex: Executor,
    *,
    institution: str | None = None,
    enterprise: str | None = None,
    status: str | None = None,
    region: str | None = None,
    created: tuple[int, int] | None = None,
    offset: int = 0,
    limit: int = 500,
) -> list[Application]:
    """Newest first; of ``institution`` or ``enterprise`` (or all, for the operator),
    narrowed by ``status``, ``region`` (USCC digits 3-8) and ``created`` (the epoch-second
    interval ``[start, end)`` the application was filed in); ``offset`` and ``limit``
    page through them."""
    q = _WITH_OUTCOME
    if institution is not None:
        q = q.where(applications.c.institution == institution)
    if enterprise is not None:
        q = q.where(applications.c.enterprise == enterprise)
    if status is not None:
        q = q.where(applications.c.status == status)
    if region is not None:
        q = q.where(applications.c.region == region)
    if created is not None:
        q = q.where(applications.c.created_at >= created[0], applications.c.created_at < created[1])
    q = q.order_by(applications.c.created_at.desc(), applications.c.id)
    return _applications(ex, q.offset(offset).limit(limit))


def move(ex: Executor, application_id: str, *, expected: Sequence[str], new: str, now: int) -> bool:
    """Change an application's status if it is still one of ``expected``."""
    values: dict[str, Any] = {"status": new}
    if new == "submitted":
        values["submitted_at"] = now
    else:
        values["closed_at"] = now
    done = ex.execute(
        applications.update()
        .where(applications.c.id == application_id, applications.c.status.in_(list(expected)))
        .values(**values)
        .returning(applications.c.id)
    ).first()
    return done is not None


def awaiting_for_consent(ex: Executor, consent_id: str) -> Application | None:
    q = _WITH_OUTCOME.where(
        applications.c.consent == consent_id, applications.c.status == "awaiting_consent"
    )
    found = _applications(ex, q)
    return found[0] if found else None


def insert_outcome(ex: Executor, a: Application, o: Outcome) -> None:
    ex.execute(
        outcomes.insert().values(
            application=a.id,
            institution=a.institution,
            enterprise=a.enterprise,
            region=a.enterprise[2:8],
            decision=o.decision,
            reason=o.reason,
            credit_line=o.credit_line,
            disbursed=o.disbursed,
            rate=o.rate,
            term_months=o.term_months,
            credit_loan=o.credit_loan,
            first_loan=o.first_loan,
            decided_at=o.decided_at,
            decided_by=o.decided_by,
        )
    )


def insert_repayment(ex: Executor, application_id: str, status: str, now: int, by: str) -> None:
    ex.execute(
        repayments.insert().values(
            application=application_id, status=status, reported_at=now, reported_by=by
        )
    )


# Financing needs -------------------------------------------------------------------


def insert_need(ex: Executor, need: Mapping[str, Any]) -> None:
    ex.execute(needs.insert().values(**need))


def get_need(ex: Executor, need_id: str) -> dict[str, Any] | None:
    m = ex.execute(sa.select(needs).where(needs.c.id == need_id)).mappings().first()
    return dict(m) if m else None


def list_needs(
    ex: Executor, *, enterprise: str | None = None, status: str | None = None, limit: int = 500
) -> list[dict[str, Any]]:
    q = sa.select(needs)
    if enterprise is not None:
        q = q.where(needs.c.enterprise == enterprise)
    if status is not None:
        q = q.where(needs.c.status == status)
    q = q.order_by(needs.c.created_at.desc(), needs.c.id).limit(limit)
    return [dict(m) for m in ex.execute(q).mappings()]


def close_need(ex: Executor, need_id: str, now: int) -> bool:
    done = ex.execute(
        needs.update()
        .where(needs.c.id == need_id, needs.c.status == "open")
        .values(status="closed", closed_at=now)
        .returning(needs.c.id)
    ).first()
    return done is not None


# Statistics --------------------------------------------------------------------------


def _region_of(column: Any) -> Any:
    return sa.func.substr(column, 3, 6)


def _dialect(ex: Executor) -> str:
    bind = ex.get_bind() if isinstance(ex, Session) else ex
    return str(bind.dialect.name)


def month_sums(
    ex: Executor,
    *,
    start: int,
    end: int,
    registration_features: Sequence[str],
    region: str | None = None,
    parts: Sequence[str] = PARTS,
) -> dict[str, dict[str, Any]]:
    """Per region (USCC digits 3-8), the sums ``financing.statistics.figures`` turns into
    the month's figures; each is one aggregate query over the records (see the module
    docstring of ``financing.statistics`` for the caliber). ``parts`` (of ``PARTS``)
    chooses which sums: the caller may compute them on several connections at once
    and add the results up (``financing.statistics.merge_parts``)."""
    out: dict[str, dict[str, Any]] = {}

    def put(rows: Any, names: Sequence[str]) -> None:
        for row in rows:
            sums = out.setdefault(row[0], dict.fromkeys(SUMS, 0))
            for name, value in zip(names, row[1:], strict=True):
                sums[name] = value or 0

    def grouped(key: Any, *cols: Any, where: Sequence[Any]) -> Any:
        q = sa.select(key.label("region"), *cols).where(*where)
        if region is not None:
            q = q.where(key == region)
        return ex.execute(q.group_by(key))

    # Distinct enterprises: grouped by USCC first (an index-only scan of a covering
    # index, in byte order on PostgreSQL: migration 0014), then by region.
    byte_order = _dialect(ex) == "postgresql"

    def distinct_by_region(column: Any, *flags: Any, where: Sequence[Any]) -> Any:
        key = sa.collate(column, "C") if byte_order else column
        per = sa.select(key.label("uscc"), *flags).where(*where).group_by(key).subquery()
        area = _region_of(per.c.uscc)
        q = sa.select(
            area.label("region"),
            sa.func.count(),
            *(sa.func.count().filter(per.c[f.name]) for f in flags),
        )
        if region is not None:
            q = q.where(area == region)
        return ex.execute(q.group_by(area))

    if "accounts" in parts:
        _accounts(put, distinct_by_region, end)
    if "consents" in parts:
        put(
            distinct_by_region(
                consents.c.enterprise,
                where=(consents.c.not_before.is_not(None), consents.c.decided_at < end),
            ),
            ("authorizing",),
        )
    if "market" in parts and registration_features:
        _market(ex, put, grouped, registration_features, end)
    if "flows" in parts:
        _flows(put, grouped, start, end)
    return out


def _accounts(put: Any, distinct_by_region: Any, end: int) -> None:
    verified = (
        sa.func.max(
            sa.case(
                (sa.and_(users.c.real_name_at.is_not(None), users.c.real_name_at < end), 1), else_=0
            )
        )
        == 1
    )
    put(
        distinct_by_region(
            users.c.uscc,
            verified.label("verified"),
            where=(
                users.c.role == "enterprise",
                users.c.uscc.is_not(None),
                users.c.created_at < end,
            ),
        ),
        ("registered", "real_name"),
    )


def _market(
    ex: Executor, put: Any, grouped: Any, registration_features: Sequence[str], end: int
) -> None:
    """Market entities: distinct USCCs of the registration imports loaded by ``end``."""
    loaded = (
        sa.select(record_import_features.c.import_id)
        .join(record_imports, record_imports.c.id == record_import_features.c.import_id)
        .where(
            record_import_features.c.feature.in_(list(registration_features)),
            record_imports.c.status == "loaded",
            record_imports.c.imported_at < end,
        )
        .distinct()
    )
    imports = [int(i) for i in ex.execute(loaded).scalars()]
    r_region = _region_of(record_rows.c.uscc)
    if len(imports) == 1:
        # One import: its rows are distinct by USCC already (primary key).
        counted = sa.func.count()
    else:
        counted = sa.func.count(sa.distinct(record_rows.c.uscc))
    if imports:
        put(
            grouped(
                r_region,
                counted,
                where=(record_rows.c.import_id.in_(imports),),
            ),
            ("market_entities",),
        )


def _flows(put: Any, grouped: Any, start: int, end: int) -> None:
    """The month's applications and approved outcomes per region."""
    put(
        grouped(
            applications.c.region,
            sa.func.count(),
            where=(applications.c.created_at >= start, applications.c.created_at < end),
        ),
        ("applications",),
    )
    put(
        grouped(outcomes.c.region, *_approved_sums(), where=_approved_in(start, end)),
        APPROVED_SUMS,
    )


APPROVED_SUMS = (
    "approved",
    "credit_lines",
    "disbursed",
    "credit_loan_disbursed",
    "first_loans",
    "rate_weight",
)
"""The sums of the month's approved outcomes, in the order ``_approved_sums`` selects."""


def _approved_in(start: int, end: int) -> tuple[Any, ...]:
    return (
        outcomes.c.decided_at >= start,
        outcomes.c.decided_at < end,
        outcomes.c.decision == "approved",
    )


def _approved_sums() -> tuple[Any, ...]:
    """The aggregates behind ``APPROVED_SUMS`` (one group's approved outcomes)."""
    disbursed = sa.func.coalesce(outcomes.c.disbursed, 0)
    return (
        sa.func.count(),
        sa.func.sum(outcomes.c.credit_line),
        sa.func.sum(disbursed),
        sa.func.sum(sa.case((outcomes.c.credit_loan, disbursed), else_=0)),
        sa.func.count(
            sa.distinct(sa.case((outcomes.c.first_loan, outcomes.c.enterprise), else_=None))
        ),
        sa.func.sum(outcomes.c.rate * disbursed),
    )


def institution_sums(ex: Executor, *, start: int, end: int) -> dict[str, dict[str, Any]]:
    """The month's flow sums per institution (applications to it, its approvals) and
    ``authorized_in_month``: the distinct enterprises that approved a consent for it
    in the month (any consent, an application's or one the institution requested)."""
    out: dict[str, dict[str, Any]] = {}
    q = (
        sa.select(consents.c.institution_id, sa.func.count(sa.distinct(consents.c.enterprise)))
        .where(
            consents.c.not_before.is_not(None),
            consents.c.decided_at >= start,
            consents.c.decided_at < end,
        )
        .group_by(consents.c.institution_id)
    )
    for inst, n in ex.execute(q):
        out.setdefault(inst, dict.fromkeys(SUMS, 0))["authorized_in_month"] = n
    q = (
        sa.select(applications.c.institution, sa.func.count())
        .where(applications.c.created_at >= start, applications.c.created_at < end)
        .group_by(applications.c.institution)
    )
    for inst, n in ex.execute(q):
        out.setdefault(inst, dict.fromkeys(SUMS, 0))["applications"] = n
    q = (
        sa.select(outcomes.c.institution, *_approved_sums())
        .where(*_approved_in(start, end))
        .group_by(outcomes.c.institution)
    )
    for row in ex.execute(q):
        sums = out.setdefault(row[0], dict.fromkeys(SUMS, 0))
        for name, value in zip(APPROVED_SUMS, row[1:], strict=True):
            sums[name] = value or 0
    return out


def approved_loans(ex: Executor, *, start: int, end: int) -> list[dict[str, Any]]:
    """The month's approved loans with their consent (for 成效, the departments whose
    data the decisions used)."""
    q = (
        sa.select(
            outcomes.c.application,
            outcomes.c.institution,
            outcomes.c.enterprise,
            outcomes.c.disbursed,
            applications.c.consent,
        )
        .join(applications, applications.c.id == outcomes.c.application)
        .where(*_approved_in(start, end))
    )
    return [dict(m) for m in ex.execute(q).mappings()]
