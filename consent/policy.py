"""Consent policy: the state machine, request validation and the grant check. Pure.

Invariants:
- States: ``pending → active ⇄ paused``; ``pending → rejected``; ``active|paused →
  revoked``; ``active|paused → expired`` when the grant's ``exp`` passes and
  ``pending → expired`` when nobody answered in time. Terminal states never change.
- A grant is immutable: any change of scope is a new request and a new grant.
- ``evaluate`` checks in a fixed order and returns the first refusal, so the code a
  client sees is deterministic: institution suspended, grant missing, grant signature
  and shape, audience, subject, time window, stored status, operation scope, category
  scope, use count. Everything unknown or empty is refused (fail closed).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from common import jwt_rules, uscc
from common.errors import InvalidInput
from common.settings import OPERATIONS, Settings
from consent.errors import ConsentRefused, InvalidConsentRequest, TransitionRefused

STATES = ("pending", "active", "paused", "revoked", "expired", "rejected")
TERMINAL = frozenset({"revoked", "expired", "rejected"})

# action -> (states it may start from, resulting state)
TRANSITIONS: dict[str, tuple[frozenset[str], str]] = {
    "approve": (frozenset({"pending"}), "active"),
    "reject": (frozenset({"pending"}), "rejected"),
    "pause": (frozenset({"active"}), "paused"),
    "resume": (frozenset({"paused"}), "active"),
    "revoke": (frozenset({"active", "paused"}), "revoked"),
}

DAY = 86_400


@dataclass(frozen=True)
class ConsentRequest:
    """What an institution asks for, validated against the catalog and purpose limits."""

    enterprise: str
    purpose: str
    ops: tuple[str, ...]
    categories: tuple[str, ...]
    duration_days: int
    max_uses: int


def parse_request(body: Mapping[str, Any], settings: Settings) -> ConsentRequest:
    """Validate ``{enterprise, purpose, ops, categories, duration_days, max_uses}``."""

    def fail(field: str, why: str) -> InvalidConsentRequest:
        return InvalidConsentRequest(f"{field}: {why}", field=field)

    if not isinstance(body, Mapping):
        raise InvalidConsentRequest("the body must be a JSON object")
    unknown = set(body) - {
        "enterprise",
        "purpose",
        "ops",
        "categories",
        "duration_days",
        "max_uses",
    }
    if unknown:
        raise fail(sorted(unknown)[0], "unknown field")
    enterprise = body.get("enterprise")
    if not isinstance(enterprise, str):
        raise fail("enterprise", "required, a USCC string")
    uscc.validate(enterprise)
    purpose_code = body.get("purpose")
    purposes = settings.config.purposes
    if not isinstance(purpose_code, str) or purpose_code not in purposes:
        raise fail("purpose", f"must be one of {sorted(purposes)}")
    purpose = purposes[purpose_code]
    ops = body.get("ops")
    if not isinstance(ops, list) or not ops or not all(isinstance(o, str) for o in ops):
        raise fail("ops", "a non-empty list of operations")
    for op in ops:
        if op not in OPERATIONS:
            raise fail("ops", f"unknown operation {op!r}")
        if op not in purpose.ops:
            raise fail("ops", f"operation {op!r} is not allowed for purpose {purpose_code!r}")
    if len(set(ops)) != len(ops):
        raise fail("ops", "duplicate operation")
    categories = body.get("categories")
    if (
        not isinstance(categories, list)
        or not categories
        or not all(isinstance(c, str) for c in categories)
    ):
        raise fail("categories", "a non-empty list of category codes")
    for c in categories:
        if c not in settings.config.categories:
            raise fail("categories", f"unknown category {c!r}")
        if settings.config.categories[c].visibility == "restricted":
            # Personal information used only inside the grade (JY 附件2 ⑦): no grant
            # may name it, whatever its ops (docs/grading.md "Data").
            raise InvalidConsentRequest(
                f"categories: {c!r} is personal information no consent can name",
                code="category_restricted",
                field="categories",
            )
    if len(set(categories)) != len(categories):
        raise fail("categories", "duplicate category")
    duration = body.get("duration_days")
    if isinstance(duration, bool) or not isinstance(duration, int) or duration < 1:
        raise fail("duration_days", "a positive integer")
    if duration > purpose.max_days:
        raise fail("duration_days", f"at most {purpose.max_days} days for {purpose_code!r}")
    max_uses = body.get("max_uses")
    if isinstance(max_uses, bool) or not isinstance(max_uses, int) or max_uses < 1:
        raise fail("max_uses", "a positive integer")
    if max_uses > purpose.max_uses:
        raise fail("max_uses", f"at most {purpose.max_uses} for {purpose_code!r}")
    return ConsentRequest(
        enterprise, purpose_code, tuple(ops), tuple(categories), duration, max_uses
    )


def transition(status: str, action: str) -> str:
    """The state after ``action``; raises TransitionRefused when not allowed."""
    if action not in TRANSITIONS:
        raise TransitionRefused(f"unknown action {action!r}")
    sources, target = TRANSITIONS[action]
    if status not in sources:
        raise TransitionRefused(
            f"cannot {action} a consent that is {status}", status=status, action=action
        )
    return target


def effective_status(status: str, now: int, expires_at: int | None, pending_until: int) -> str:
    """The status with time applied: an elapsed grant or unanswered request is expired."""
    if status in ("active", "paused") and expires_at is not None and now >= expires_at:
        return "expired"
    if status == "pending" and now >= pending_until:
        return "expired"
    return status


def grant_claims(
    *,
    issuer: str,
    consent_id: str,
    request: ConsentRequest,
    institution: str,
    letter_hash: str,
    now: int,
) -> dict[str, Any]:
    """The claims of the grant JWT signed on approval (DESIGN.md "Consent grant")."""
    return {
        "iss": issuer,
        "sub": request.enterprise,
        "aud": institution,
        "jti": consent_id,
        "iat": now,
        "nbf": now,
        "exp": now + request.duration_days * DAY,
        "purpose": request.purpose,
        "ops": list(request.ops),
        "categories": list(request.categories),
        "max_uses": request.max_uses,
        "letter": letter_hash,
    }


GRANT_CLAIMS = (
    "iss",
    "sub",
    "aud",
    "jti",
    "iat",
    "nbf",
    "exp",
    "purpose",
    "ops",
    "categories",
    "max_uses",
    "letter",
)


@dataclass(frozen=True)
class StoredGrant:
    """What the store knows about a grant at check time."""

    status: str
    enterprise: str
    institution: str
    uses: int
    max_uses: int
    expires_at: int | None
    pending_until: int


def refuse(code: str, message: str, **details: object) -> ConsentRefused:
    return ConsentRefused(code, message, **details)


def check_claims(
    claims: Mapping[str, Any],
    *,
    institution: str,
    enterprise: str | None,
    op: str,
    categories: Sequence[str],
    now: int,
    issuer: str,
) -> None:
    """Check a signature-verified grant's claims against the request (no store)."""
    if any(k not in claims for k in GRANT_CLAIMS) or claims.get("iss") != issuer:
        raise refuse("grant_invalid", "the grant lacks required claims or has another issuer")
    if not isinstance(claims["ops"], list) or not isinstance(claims["categories"], list):
        raise refuse("grant_invalid", "the grant's scope is malformed")
    if claims["aud"] != institution:
        raise refuse("grant_wrong_audience", "this grant was issued to another institution")
    if enterprise is not None and claims["sub"] != enterprise:
        raise refuse("grant_invalid", "this grant is about another enterprise")
    try:
        # Numbers, never booleans (True is an int to Python), finite and in range.
        jwt_rules.check_numeric_dates(claims, required=("nbf", "exp"))
    except InvalidInput as e:
        raise refuse("grant_invalid", "the grant's validity period is malformed") from e
    if now < claims["nbf"]:
        raise refuse("grant_not_yet_valid", "the grant is not valid yet")
    if now >= claims["exp"]:
        raise refuse("grant_expired", "the grant has expired")
    if op not in claims["ops"]:
        raise refuse("scope_operation", f"the grant does not cover operation {op!r}")
    missing = [c for c in categories if c not in claims["categories"]]
    if missing or (not categories and op != "report"):
        raise refuse(
            "scope_category", f"the grant does not cover categories {missing}", categories=missing
        )


def check_stored(grant: StoredGrant, *, now: int) -> None:
    """Check the store's view of the grant: status and remaining uses."""
    status = effective_status(grant.status, now, grant.expires_at, grant.pending_until)
    if status == "revoked":
        raise refuse("grant_revoked", "the enterprise revoked this grant")
    if status == "paused":
        raise refuse("grant_paused", "the enterprise paused this grant")
    if status == "expired":
        raise refuse("grant_expired", "the grant has expired")
    if status != "active":
        raise refuse("grant_invalid", f"the grant is {status}")
    if grant.uses >= grant.max_uses:
        raise refuse(
            "grant_uses_exhausted", "the grant's uses are exhausted", max_uses=grant.max_uses
        )
