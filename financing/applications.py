"""Applications, their outcomes and repayment status (YX 五(二); DL 三(一)3 loan
feedback; JS 10).

Lifecycle: ``awaiting_consent`` → ``submitted`` (the enterprise approved the consent the
application created) → ``approved`` | ``declined``; the enterprise may withdraw before
a decision (and rejecting the consent withdraws it). Pure: no Flask, no SQL, no clock.

Invariants:
- amount and term lie within the product's ranges (400 ``invalid_application``);
- an outcome is recorded once, only for a ``submitted`` application (409
  ``application_not_submitted`` while its consent was never approved, 409
  ``application_decided`` afterwards);
- an approval carries ``credit_line >= disbursed >= 0``, a rate within the product's
  range and a term within it; a decline carries a reason from the configured standard
  list and no loan figures;
- repayment status exists only for an approved application.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from common.settings import ConfigFile
from financing.errors import (
    ApplicationDecided,
    ApplicationNotApproved,
    ApplicationNotSubmitted,
    InvalidApplication,
    InvalidOutcome,
)
from financing.products import Product

Status = Literal["awaiting_consent", "submitted", "approved", "declined", "withdrawn"]
STATUSES: tuple[Status, ...] = (
    "awaiting_consent",
    "submitted",
    "approved",
    "declined",
    "withdrawn",
)
OPEN: tuple[Status, ...] = ("awaiting_consent", "submitted")


@dataclass(frozen=True)
class Outcome:
    """The institution's decision. Amounts in CNY yuan, rate in % a year."""

    decision: Literal["approved", "declined"]
    reason: str | None
    credit_line: int | None
    disbursed: int | None
    rate: float | None
    term_months: int | None
    credit_loan: bool
    first_loan: bool
    decided_at: int
    decided_by: str
    repayment: str | None = None
    repayment_at: int | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "decision": self.decision,
            "reason": self.reason,
            "credit_line": self.credit_line,
            "disbursed": self.disbursed,
            "rate": self.rate,
            "term_months": self.term_months,
            "credit_loan": self.credit_loan,
            "first_loan": self.first_loan,
            "decided_at": self.decided_at,
            "repayment": self.repayment,
        }


@dataclass(frozen=True)
class Application:
    id: str
    product: str
    institution: str
    enterprise: str
    amount: int
    term_months: int
    status: Status
    consent: str
    created_at: int
    created_by: str
    need: str | None = None
    submitted_at: int | None = None
    outcome: Outcome | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "product": self.product,
            "institution": self.institution,
            "enterprise": self.enterprise,
            "amount": self.amount,
            "term_months": self.term_months,
            "status": self.status,
            "consent": self.consent,
            "need": self.need,
            "created_at": self.created_at,
            "submitted_at": self.submitted_at,
            "outcome": self.outcome.as_json() if self.outcome else None,
        }


def check_terms(product: Product, amount: int, term_months: int) -> None:
    """Refuse an amount or a term outside ``product``'s ranges."""
    if not product.amount_min <= amount <= product.amount_max:
        raise InvalidApplication(
            f"amount: {product.amount_min} to {product.amount_max} (CNY) for this product",
            field="amount",
        )
    if not 1 <= term_months <= product.term_months_max:
        raise InvalidApplication(
            f"term_months: 1 to {product.term_months_max} for this product", field="term_months"
        )


def decide(
    config: ConfigFile,
    application: Application,
    product: Product,
    fields: dict[str, Any],
    *,
    by: str,
    now: int,
) -> Outcome:
    """The outcome ``fields`` (the contract's body) checked against the application's
    state and the product; raises without side effects."""
    if application.status == "awaiting_consent" or (
        application.status == "withdrawn" and application.submitted_at is None
    ):
        raise ApplicationNotSubmitted("the enterprise never approved this application's consent")
    if application.status != "submitted":
        raise ApplicationDecided(f"the application is {application.status} already")
    decision = fields["decision"]
    figures = ("credit_line", "disbursed", "rate", "term_months")
    if decision == "declined":
        reason = fields.get("reason")
        reasons = config.financing.decline_reasons
        if reason not in reasons:
            raise InvalidOutcome(f"reason: one of {list(reasons)}", field="reason")
        given = [f for f in figures if fields.get(f) is not None]
        if given or fields.get("credit_loan") or fields.get("first_loan"):
            raise InvalidOutcome(
                "a declined application carries no loan figures",
                field=(given or ["credit_loan"])[0],
            )
        return Outcome("declined", reason, None, None, None, None, False, False, now, by)
    missing = [f for f in figures if fields.get(f) is None]
    if missing:
        raise InvalidOutcome(f"{missing[0]}: required for an approval", field=missing[0])
    if fields.get("reason") is not None:
        raise InvalidOutcome("an approval names no decline reason", field="reason")
    credit_line, disbursed = fields["credit_line"], fields["disbursed"]
    rate, term = float(fields["rate"]), fields["term_months"]
    if not 0 < credit_line <= config.financing.amount_max:
        raise InvalidOutcome("credit_line: positive CNY within the limit", field="credit_line")
    if not 0 <= disbursed <= credit_line:
        raise InvalidOutcome("disbursed: 0 to the credit line", field="disbursed")
    if not product.rate_min <= rate <= product.rate_max:
        raise InvalidOutcome(
            f"rate: {product.rate_min} to {product.rate_max} (% a year) for this product",
            field="rate",
        )
    if not 1 <= term <= product.term_months_max:
        raise InvalidOutcome(
            f"term_months: 1 to {product.term_months_max} for this product", field="term_months"
        )
    return Outcome(
        "approved",
        None,
        credit_line,
        disbursed,
        rate,
        term,
        bool(fields.get("credit_loan")),
        bool(fields.get("first_loan")),
        now,
        by,
    )


def check_repayment(config: ConfigFile, application: Application, status: str) -> None:
    if application.status != "approved":
        raise ApplicationNotApproved("only an approved loan has a repayment status")
    allowed = config.financing.repayment_statuses
    if status not in allowed:
        raise InvalidOutcome(f"status: one of {list(allowed)}", field="status")


def check_withdrawal(application: Application) -> None:
    if application.status not in OPEN:
        raise ApplicationDecided(f"the application is {application.status} already")
