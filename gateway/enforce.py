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
- empty scope is refused: a route must name the categories it touches;
- a score (op ``score`` with a ``model_id``) also takes its place among the distinct
  models scored for the enterprise in the grant's period, in the same transaction as
  the grant use (``federated.store.take_model_use``); beyond
  ``scoring.max_models_per_enterprise`` it is refused ``score_model_limit``;
- a batch (training, batch scoring) logs a per-enterprise refusal only for a grant whose
  signature verifies, that was issued to the caller and (when the request names one) is
  about the enterprise named: every other pair of the batch shares ONE refusal entry
  naming no enterprise, so junk pairs cannot write entries about arbitrary enterprises.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from audit.errors import AuditUnavailable
from common.db import write_session
from common.errors import Error, Forbidden
from common.logging import get_logger
from consent.errors import ConsentRefused
from consent.service import GrantUse
from gateway import request_ids
from gateway.auth import Principal
from gateway.services import Services, services

log = get_logger("gateway.enforce")


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
    req: DataRequest,
    enterprise: str | None,
    categories: Sequence[str],
    use: GrantUse | None,
    decision: str | ConsentRefused,
) -> dict[str, Any]:
    cats = svc.settings.config.categories
    if isinstance(decision, ConsentRefused):
        grant_id = decision.details.get("grant_id")
        decision = decision.code
    else:
        grant_id = use.grant_id if use else None
    return {
        **request_ids.for_entry(),
        "time": int(time.time()),
        "institution": principal.id,
        "enterprise": enterprise,
        "departments": sorted({cats[c].department for c in categories if c in cats}),
        "categories": sorted(set(categories)),
        "features": sorted(set(req.features)),
        "operation": req.op,
        "grant_id": grant_id,
        "model_id": req.model_id,
        "decision": decision,
        # A bank officer on the console (not the institution's client): who asked.
        **({"actor": principal.login} if principal.staff and principal.login else {}),
    }


@dataclass(frozen=True)
class DataRequest:
    """What one enforcement decides on: the operation, about whom (None: whoever the
    grant names), the categories that need the grant and those touched without one."""

    grant: str | None
    op: str
    enterprise: str | None
    categories: Sequence[str]
    features: Sequence[str] = ()
    model_id: str | None = None
    verify_feature: str | None = None
    needs_grant: bool = True
    public_categories: Sequence[str] = ()


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
    """Check consent for one request and log it; raises the refusal (already logged, with
    its ``audit_index``). ``needs_grant=False`` is only for public categories (still
    audited, still refused for a suspended institution); ``public_categories`` are
    touched too and logged, but need no grant."""
    request = DataRequest(
        grant,
        op,
        enterprise,
        categories,
        features,
        model_id,
        verify_feature,
        needs_grant,
        public_categories,
    )
    return enforce_request(principal, request)


def enforce_request(principal: Principal, request: DataRequest) -> Access:
    """``enforce`` for a request already built; raises its refusal."""
    (outcome,) = enforce_each(principal, [request])
    if isinstance(outcome, ConsentRefused):
        raise outcome
    return outcome


def enforce_each(
    principal: Principal, requests: Sequence[DataRequest]
) -> list[Access | ConsentRefused]:
    """Check and log the requests of one caller (a batch in ONE transaction: one durable
    commit). A refused check leaves no trace but its refusal entry. Refusals come back
    (not raised) with their ``audit_index``; allowed ones as ``Access``."""
    svc = services()
    if principal.kind != "institution":
        raise Forbidden("only institutions use data services", code="wrong_role")
    outcomes: list[Access | ConsentRefused] = []

    def allow(s: Any, req: DataRequest) -> Access:
        use = _check(svc, s, principal, req)
        enterprise = use.enterprise if use is not None else req.enterprise
        if use is not None and req.op == "score" and req.model_id is not None:
            _take_model_use(svc, s, principal, req, use)
        logged = [*req.categories, *req.public_categories]
        entry = _entry(svc, principal, req, enterprise, logged, use, "allowed")
        return Access(queue_id=svc.audit.enqueue(s, entry), grant=use, enterprise=enterprise)

    def refuse(s: Any, req: DataRequest, refusal: ConsentRefused) -> ConsentRefused:
        enterprise = req.enterprise
        named = refusal.details.get("enterprise")
        if enterprise is None and isinstance(named, str):
            enterprise = named
        logged = [*req.categories, *req.public_categories]
        entry = _entry(svc, principal, req, enterprise, logged, None, refusal)
        refusal.details["queue_id"] = svc.audit.enqueue(s, entry)
        return refusal

    try:
        if len(requests) == 1:
            # One request: no savepoint (two round trips fewer on the hot path). A
            # refusal rolls back whatever its check wrote (a use taken, then the
            # verification budget found spent) and is logged in a transaction of its own.
            (req,) = requests
            try:
                with write_session(svc.engine) as s:
                    outcomes.append(allow(s, req))
            except ConsentRefused as refusal:
                with write_session(svc.engine) as s:
                    outcomes.append(refuse(s, req, refusal))
        else:
            # A batch: one durable commit; each check in its own savepoint, so a refused
            # one leaves no trace but its refusal entry while the batch goes on. Pairs
            # whose grant is not even this caller's grant about that enterprise share
            # one entry (audit amplification, issue 13).
            junk = [not _names_its_enterprise(svc, principal, req) for req in requests]
            with write_session(svc.engine) as s:
                shared: ConsentRefused | None = None
                if any(junk):
                    shared = _malformed_batch(svc, s, principal, requests, junk)
                for req, is_junk in zip(requests, junk, strict=True):
                    if is_junk:
                        assert shared is not None
                        outcomes.append(
                            ConsentRefused(
                                shared.code, shared.message, queue_id=shared.details["queue_id"]
                            )
                        )
                        continue
                    try:
                        with s.begin_nested():
                            outcomes.append(allow(s, req))
                    except ConsentRefused as refusal:
                        outcomes.append(refuse(s, req, refusal))
        wait = svc.settings.config.audit.integrate_wait_seconds
        for outcome in outcomes:
            if isinstance(outcome, ConsentRefused):
                queue_id = int(outcome.details.pop("queue_id"))
                outcome.details["audit_index"] = int(svc.audit.await_index(queue_id, wait))
    except SQLAlchemyError as e:
        raise AuditUnavailable("the audit log cannot record this request; nothing served") from e
    return outcomes


def _names_its_enterprise(svc: Services, principal: Principal, req: DataRequest) -> bool:
    """May a refusal of ``req`` name an enterprise? Only when its grant verifies, was
    issued to ``principal`` and is about the enterprise the request names (if any).
    No store is read: the signature check is cached per grant."""
    if not req.needs_grant:
        return True
    if not isinstance(req.grant, str) or not req.grant or len(req.grant) > 8192:
        return False
    try:
        claims = svc.consent.verify_signature(req.grant)
    except ConsentRefused:
        return False
    if claims.get("aud") != principal.id or not isinstance(claims.get("sub"), str):
        return False
    return req.enterprise is None or claims["sub"] == req.enterprise


def _malformed_batch(
    svc: Services,
    s: Any,
    principal: Principal,
    requests: Sequence[DataRequest],
    junk: Sequence[bool],
) -> ConsentRefused:
    """The one refusal entry of a batch's pairs whose grant is no grant of the caller
    about that enterprise; it names no enterprise and no grant. A suspended institution
    is told so first, as ``check`` would."""
    n = sum(junk)
    first = next(req for req, j in zip(requests, junk, strict=True) if j)
    if svc.consent.institution_active(s, principal.id) is False:
        refusal = ConsentRefused("institution_suspended", "the institution is suspended")
    else:
        refusal = ConsentRefused(
            "grant_invalid",
            f"{n} of the {len(requests)} pairs of this request carry no grant of this "
            "institution about the enterprise named (signature, audience or subject); "
            "they share one audit entry",
        )
    logged = [*first.categories, *first.public_categories]
    entry = _entry(svc, principal, first, None, logged, None, refusal)
    refusal.details["queue_id"] = svc.audit.enqueue(s, entry)
    log.info(
        "batch_pairs_refused", institution=principal.id, op=first.op, pairs=n, code=refusal.code
    )
    return refusal


def _take_model_use(
    svc: Services, s: Any, principal: Principal, req: DataRequest, use: GrantUse
) -> None:
    """The score-extraction bound: at most ``scoring.max_models_per_enterprise``
    distinct models per institution and enterprise within a grant's period, i.e. over
    the last (exp − nbf) seconds: a fresh grant does not open a fresh allowance."""
    from federated import store as fstore

    assert req.model_id is not None and isinstance(req.grant, str)
    claims = svc.consent.verify_signature(req.grant)  # cached: verified by the check
    now = int(time.time())
    period = int(claims["exp"]) - int(claims.get("nbf") or claims.get("iat") or 0)
    since = now - max(period, 0)
    cap = svc.settings.config.scoring.max_models_per_enterprise
    if not fstore.take_model_use(
        s,
        institution=principal.id,
        enterprise=use.enterprise,
        grant_id=use.grant_id,
        model_ref=req.model_id,
        since=since,
        cap=cap,
        now=now,
    ):
        raise ConsentRefused(
            "score_model_limit",
            f"this institution has scored this enterprise with {cap} other models within "
            "a grant's period; one enterprise is scored with at most "
            f"{cap} distinct models in a grant's period",
            grant_id=use.grant_id,
            enterprise=use.enterprise,
            max_models=cap,
        )


def _check(svc: Services, s: Any, principal: Principal, req: DataRequest) -> GrantUse | None:
    if not req.needs_grant:
        if svc.consent.institution_active(s, principal.id) is False:
            raise ConsentRefused("institution_suspended", "the institution is suspended")
        return None
    if not req.categories:
        raise ConsentRefused("scope_category", "the request names no data category")
    return svc.consent.check(
        s,
        grant=req.grant,
        institution=principal.id,
        enterprise=req.enterprise,
        op=req.op,
        categories=req.categories,
        verify_feature=req.verify_feature,
    )


class ConsentAudit:
    """The audit hook of a consent decision: its entry is written in the decision's own
    transaction (no decision without its entry); after the commit ``index`` waits for
    the entry's final place in the log, which the response carries."""

    def __init__(self, svc: Services) -> None:
        self.svc = svc
        self.queue_id: int | None = None

    def __call__(self, session: Any, fields: Any) -> int:
        entry = {
            **request_ids.for_entry(),
            "time": int(time.time()),
            **fields,
        }
        self.queue_id = int(self.svc.audit.enqueue(session, entry))
        return self.queue_id

    def index(self) -> int:
        assert self.queue_id is not None, "the decision wrote no audit entry"
        return Access(queue_id=self.queue_id, grant=None, enterprise=None).finish()
