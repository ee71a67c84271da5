"""THE enforcement point: every data request is checked and logged here, nowhere else.

Invariants:
- the consent check (taking one use of the grant) and the audit entry commit in ONE
  transaction: no use is counted without its entry and no entry claims a use that
  did not happen;
- a refusal is logged in its own transaction and then raised, carrying its
  ``audit_index``;
- if the entry cannot be written the request fails with 503 ``audit_unavailable``
  before any data is computed (fail closed); routes compute their answer only after
  ``enforce`` returned, and answer only after ``Access.finish`` has the entry's final
  index in the log.
- empty scope is refused: a route must name the categories it touches.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from flask import g
from sqlalchemy.exc import SQLAlchemyError

from common.db import write_session
from common.errors import Error, Forbidden, Unavailable
from consent.errors import ConsentRefused
from consent.service import GrantUse
from gateway.auth import Principal
from gateway.services import Services, services


class AuditUnavailable(Unavailable):
    code = "audit_unavailable"


@dataclass(frozen=True)
class Access:
    """Permission to compute one answer; ``finish`` returns the entry's log index."""

    queue_id: int
    grant: GrantUse | None
    enterprise: str | None

    def finish(self) -> int:
        svc = services()
        try:
            return int(
                svc.audit.await_index(
                    self.queue_id, svc.settings.config.audit.integrate_wait_seconds
                )
            )
        except Error:
            raise
        except SQLAlchemyError as e:
            raise AuditUnavailable("the audit log cannot integrate the entry") from e


def _entry(
    svc: Services,
    principal: Principal,
    *,
    op: str,
    enterprise: str | None,
    categories: Sequence[str],
    features: Sequence[str],
    model_id: str | None,
    grant_id: str | None,
    decision: str,
) -> dict[str, Any]:
    cats = svc.settings.config.categories
    return {
        "request_id": g.get("request_id") or secrets.token_hex(8),
        "time": int(time.time()),
        "institution": principal.id,
        "enterprise": enterprise,
        "departments": sorted({cats[c].department for c in categories if c in cats}),
        "categories": sorted(set(categories)),
        "features": sorted(set(features)),
        "operation": op,
        "grant_id": grant_id,
        "model_id": model_id,
        "decision": decision,
    }


def enforce(
    principal: Principal,
    *,
    grant: str | None,
    op: str,
    enterprise: str | None,
    categories: Sequence[str],
    features: Sequence[str] = (),
    model_id: str | None = None,
    verify_feature: str | None = None,
    needs_grant: bool = True,
    public_categories: Sequence[str] = (),
) -> Access:
    """Check consent for one request and log it. ``needs_grant=False`` is only for public
    categories (still audited, still refused for a suspended institution);
    ``public_categories`` are touched too and logged, but need no grant."""
    svc = services()
    logged = [*categories, *public_categories]
    if principal.kind != "institution":
        raise Forbidden("only institutions use data services", code="wrong_role")
    if needs_grant and not categories:
        raise ConsentRefused("scope_category", "the request names no data category")
    try:
        with write_session(svc.engine) as s:
            use: GrantUse | None = None
            if needs_grant:
                use = svc.consent.check(
                    s,
                    grant=grant,
                    institution=principal.id,
                    enterprise=enterprise,
                    op=op,
                    categories=categories,
                    verify_feature=verify_feature,
                )
                enterprise = use.enterprise
            elif svc.consent.institution_active(s, principal.id) is False:
                raise ConsentRefused("institution_suspended", "the institution is suspended")
            qid = svc.audit.enqueue(
                s,
                _entry(
                    svc,
                    principal,
                    op=op,
                    enterprise=enterprise,
                    categories=logged,
                    features=features,
                    model_id=model_id,
                    grant_id=use.grant_id if use else None,
                    decision="allowed",
                ),
            )
    except ConsentRefused as refusal:
        if enterprise is None and isinstance(refusal.details.get("enterprise"), str):
            enterprise = refusal.details["enterprise"]
        refusal.details["audit_index"] = _log_refusal(
            svc,
            principal,
            refusal,
            op=op,
            enterprise=enterprise,
            categories=logged,
            features=features,
            model_id=model_id,
        )
        raise
    except SQLAlchemyError as e:
        raise AuditUnavailable("the audit log cannot record this request; nothing served") from e
    return Access(queue_id=qid, grant=use, enterprise=enterprise)


def _log_refusal(
    svc: Services,
    principal: Principal,
    refusal: ConsentRefused,
    *,
    op: str,
    enterprise: str | None,
    categories: Sequence[str],
    features: Sequence[str],
    model_id: str | None,
) -> int:
    try:
        with write_session(svc.engine) as s:
            qid = svc.audit.enqueue(
                s,
                _entry(
                    svc,
                    principal,
                    op=op,
                    enterprise=enterprise,
                    categories=categories,
                    features=features,
                    model_id=model_id,
                    grant_id=refusal.details.get("grant_id"),
                    decision=refusal.code,
                ),
            )
        return int(svc.audit.await_index(qid, svc.settings.config.audit.integrate_wait_seconds))
    except SQLAlchemyError as e:
        raise AuditUnavailable("the audit log cannot record this request; nothing served") from e


def log_consent_action(svc: Services) -> Any:
    """An audit hook for consent decisions (same transaction as the state change)."""

    def hook(session: Any, fields: Any) -> int:
        entry = {
            "request_id": g.get("request_id") or secrets.token_hex(8),
            "time": int(time.time()),
            **fields,
        }
        return int(svc.audit.enqueue(session, entry))

    return hook
