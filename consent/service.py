"""The consent service: requests, enterprise decisions, signed grants, and THE check.

``ConsentService.check`` is the one verification function every data request goes
through. It runs inside the caller's write transaction so that the use it takes and the
audit entry the caller writes commit together or not at all.

Signature rules: only ``EdDSA`` with a ``kid`` of a published *grants* key is accepted;
``alg=none``, HMAC algorithms (key confusion) and unknown kids are ``grant_invalid``.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from common import jwt_rules
from common.db import read_session, write_session
from common.errors import InvalidInput
from common.settings import Settings
from consent import letter as letters
from consent import policy, store
from consent.errors import (
    ConsentNotFound,
    ConsentRefused,
    InvalidConsentRequest,
    TransitionRefused,
)
from consent.policy import refuse


class GrantKeys(Protocol):
    """What consent needs from the key ring."""

    def sign_jwt(
        self, purpose: str, claims: Mapping[str, Any], headers: Mapping[str, Any] | None = None
    ) -> str: ...

    def public_key(self, kid: str, purpose: str | None = None) -> Ed25519PublicKey | None: ...


@dataclass(frozen=True)
class Viewer:
    """Who is looking: an institution (its client id) or an enterprise (its USCC)."""

    kind: str  # "institution" | "enterprise"
    id: str


@dataclass(frozen=True)
class GrantUse:
    """A successful check: the grant that allowed the request."""

    grant_id: str
    enterprise: str
    purpose: str
    categories: tuple[str, ...]
    ops: tuple[str, ...]


_VERIFIED_CACHE = 10_000  # grants whose signature verified, per process

# An audit hook writes one entry in the same transaction as a consent decision.
AuditHook = Callable[[Session, Mapping[str, Any]], Any]


@dataclass
class ConsentService:
    settings: Settings
    engine: Engine
    keys: GrantKeys
    clock: Callable[[], float] = time.time
    _issuer: str = field(init=False)
    _verified: OrderedDict[str, tuple[str, dict[str, Any]]] = field(init=False)
    _lock: threading.Lock = field(init=False)

    def __post_init__(self) -> None:
        self._issuer = self.settings.config.server.public_url.rstrip("/")
        self._verified = OrderedDict()
        self._lock = threading.Lock()

    def now(self) -> int:
        return int(self.clock())

    # Requests and decisions -------------------------------------------------------
    def request(
        self, institution_id: str, body: Mapping[str, Any], audit: AuditHook | None = None
    ) -> store.ConsentRow:
        req = policy.parse_request(body, self.settings)
        now = self.now()
        cfg = self.settings.config
        with write_session(self.engine) as s:
            inst = store.institution(s, institution_id)
            if inst is None:
                raise InvalidConsentRequest(f"unknown institution {institution_id!r}")
            if inst[1] != "active":
                raise refuse("institution_suspended", "the institution is suspended")
            dept_names = {d.id: d.name for d in cfg.departments}
            terms = letters.LetterTerms(
                enterprise=req.enterprise,
                institution_id=institution_id,
                institution_name=inst[0],
                purpose_code=req.purpose,
                purpose_name=cfg.purposes[req.purpose].name,
                ops=req.ops,
                categories=tuple(
                    (c, cfg.categories[c].name, dept_names[cfg.categories[c].department])
                    for c in req.categories
                ),
                duration_days=req.duration_days,
                max_uses=req.max_uses,
            )
            text = letters.render(terms)
            consent_id = "cst_" + uuid.uuid4().hex
            row: dict[str, Any] = {
                "id": consent_id,
                "institution_id": institution_id,
                "enterprise": req.enterprise,
                "purpose": req.purpose,
                "ops": req.ops,
                "categories": req.categories,
                "duration_days": req.duration_days,
                "max_uses": req.max_uses,
                "uses": 0,
                "status": "pending",
                "letter": text,
                "letter_hash": letters.letter_hash(text),
                "created_at": now,
                "decided_at": None,
                "not_before": None,
                "expires_at": None,
                "pending_until": now + cfg.consent.pending_days * policy.DAY,
                "grant_jwt": None,
                "status_changed_at": now,
            }
            store.insert_consent(s, row)
            if audit:
                audit(
                    s,
                    self._audit_fields(
                        consent_id,
                        "consent.request",
                        institution_id,
                        req.enterprise,
                        req.categories,
                        "allowed",
                    ),
                )
            self._notify(s, consent_id, institution_id, "pending", now)
            found = store.get_consent(s, consent_id)
            assert found is not None
            return found

    def act(
        self, consent_id: str, action: str, enterprise: str, audit: AuditHook | None = None
    ) -> store.ConsentRow:
        """An enterprise approves, rejects, pauses, resumes or revokes its consent."""
        now = self.now()
        with write_session(self.engine) as s:
            row = store.get_consent(s, consent_id, for_update=True)
            if row is None or row.enterprise != enterprise:
                raise ConsentNotFound(f"no consent {consent_id!r} for this enterprise")
            current = policy.effective_status(row.status, now, row.expires_at, row.pending_until)
            if current != row.status:  # time has passed: record the expiry first
                store.change_status(
                    s, consent_id, expected=row.status, new=current, actor="clock", now=now
                )
                row = store.get_consent(s, consent_id)
                assert row is not None
            new = policy.transition(row.status, action)
            extra: dict[str, Any] = {}
            if action in ("approve", "reject"):
                extra["decided_at"] = now
            if action == "approve":
                req = policy.ConsentRequest(
                    row.enterprise,
                    row.purpose,
                    row.ops,
                    row.categories,
                    row.duration_days,
                    row.max_uses,
                )
                claims = policy.grant_claims(
                    issuer=self._issuer,
                    consent_id=row.id,
                    request=req,
                    institution=row.institution_id,
                    letter_hash=row.letter_hash,
                    now=now,
                )
                extra.update(
                    not_before=claims["nbf"],
                    expires_at=claims["exp"],
                    grant_jwt=self.keys.sign_jwt("grants", claims, {"typ": jwt_rules.TYP_GRANT}),
                )
            changed = store.change_status(
                s,
                consent_id,
                expected=row.status,
                new=new,
                actor=f"enterprise:{enterprise}",
                now=now,
                extra=extra,
            )
            if not changed:  # only possible without row locks; the guard kept us safe
                raise TransitionRefused("the consent changed meanwhile; try again")
            if audit:
                audit(
                    s,
                    self._audit_fields(
                        consent_id,
                        f"consent.{action}",
                        row.institution_id,
                        row.enterprise,
                        row.categories,
                        "allowed",
                    ),
                )
            self._notify(s, consent_id, row.institution_id, new, now)
            updated = store.get_consent(s, consent_id)
            assert updated is not None
            return updated

    def get(self, consent_id: str, viewer: Viewer) -> store.ConsentRow:
        with read_session(self.engine) as s:
            row = store.get_consent(s, consent_id)
        if row is None or not self._visible(row, viewer):
            raise ConsentNotFound(f"no consent {consent_id!r}")
        return self._with_time(row)

    def list(self, viewer: Viewer, status: str | None = None) -> list[store.ConsentRow]:
        if status is not None and status not in policy.STATES:
            raise InvalidConsentRequest(f"status must be one of {list(policy.STATES)}")
        with read_session(self.engine) as s:
            rows = store.list_consents(
                s,
                enterprise=viewer.id if viewer.kind == "enterprise" else None,
                institution=viewer.id if viewer.kind == "institution" else None,
            )
        rows = [self._with_time(r) for r in rows]
        return [r for r in rows if status is None or r.status == status]

    def verification_budget(self, row: store.ConsentRow) -> dict[str, dict[str, int]]:
        """Per verifiable feature in scope: budget, used, left (visible to the enterprise)."""
        if "verify" not in row.ops:
            return {}
        with read_session(self.engine) as s:
            used = store.verification_uses(s, row.id)
        out: dict[str, dict[str, int]] = {}
        for cat in row.categories:
            for name, feat in self.settings.config.categories[cat].features.items():
                if feat.verify_ops:
                    fid = f"{cat}.{name}"
                    budget = self.budget_for(fid)
                    n = used.get(fid, 0)
                    out[fid] = {"budget": budget, "used": n, "left": max(budget - n, 0)}
        return out

    def budget_for(self, feature_id: str) -> int:
        _, _, feat = self.settings.feature(feature_id)
        return feat.verify_budget or self.settings.config.consent.default_verify_budget

    # THE check --------------------------------------------------------------------
    def verify_signature(self, token: str) -> dict[str, Any]:
        """Decode a grant JWT, accepting only EdDSA by a published grants key.

        Grants are immutable, so a token whose signature verified once verifies again
        while its key is published: the verified claims are kept (bounded LRU) and only
        the key's publication is looked up again. Status is never cached."""
        cached = self._verified.get(token)
        if cached is not None and self.keys.public_key(cached[0], "grants") is not None:
            self._verified.move_to_end(token)
            return dict(cached[1])
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as e:
            raise refuse("grant_invalid", "the grant is not a well-formed JWT") from e
        if header.get("alg") != "EdDSA" or not isinstance(header.get("kid"), str):
            raise refuse("grant_invalid", "the grant must be signed with EdDSA and name a kid")
        try:
            jwt_rules.require_typ(header, jwt_rules.TYP_GRANT)
        except InvalidInput as e:
            raise refuse("grant_invalid", "the token is not a consent grant") from e
        key = self.keys.public_key(header["kid"], "grants")
        if key is None:
            raise refuse("grant_invalid", "the grant's signing key is unknown")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=["EdDSA"],
                options={
                    "verify_aud": False,
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                    "verify_iss": False,
                },
            )
        except jwt.PyJWTError as e:
            raise refuse("grant_invalid", "the grant's signature does not verify") from e
        with self._lock:
            self._verified[token] = (header["kid"], claims)
            if len(self._verified) > _VERIFIED_CACHE:
                self._verified.popitem(last=False)
        return dict(claims)

    def check(
        self,
        session: Session,
        *,
        grant: str | None,
        institution: str,
        enterprise: str | None,
        op: str,
        categories: Sequence[str],
        verify_feature: str | None = None,
    ) -> GrantUse:
        """Check a grant for one request and take one use, inside ``session``'s
        transaction. Raises ConsentRefused with the contract code.

        The allowed path costs one guarded UPDATE (status, uses, expiry, parties and the
        institution's status in one statement); only a refusal pays for reading the
        store to name its reason. Whatever refuses, a suspended institution is told
        ``institution_suspended`` first."""
        now = self.now()
        try:
            if not grant:
                raise refuse("grant_missing", "this request needs a grant from the enterprise")
            if not isinstance(grant, str) or len(grant) > 8192:
                raise refuse("grant_invalid", "the grant is not a JWT string")
            claims = self.verify_signature(grant)
        except ConsentRefused:
            self._refuse_if_suspended(session, institution)
            raise
        try:
            policy.check_claims(
                claims,
                institution=institution,
                enterprise=enterprise,
                op=op,
                categories=categories,
                now=now,
                issuer=self._issuer,
            )
            grant_id = str(claims["jti"])
            if not store.take_use(
                session, grant_id, enterprise=str(claims["sub"]), institution=institution, now=now
            ):
                self._refuse_if_suspended(session, institution)
                self._classify_refused_use(session, grant_id, claims, now)
            if verify_feature is not None and not store.take_verification(
                session, grant_id, verify_feature, self.budget_for(verify_feature)
            ):
                # Raising rolls the caller's transaction back: the use is not counted.
                raise refuse(
                    "verify_budget_exhausted",
                    f"the verification budget for {verify_feature} is spent",
                    feature=verify_feature,
                )
        except ConsentRefused as e:
            self._refuse_if_suspended(session, institution)
            e.details.setdefault("grant_id", str(claims.get("jti")))
            e.details.setdefault("enterprise", claims.get("sub"))
            raise
        return GrantUse(
            grant_id=grant_id,
            enterprise=str(claims["sub"]),
            purpose=str(claims["purpose"]),
            categories=tuple(claims["categories"]),
            ops=tuple(claims["ops"]),
        )

    def _refuse_if_suspended(self, session: Session, institution: str) -> None:
        if store.institution_status(session, institution) != "active":
            raise refuse("institution_suspended", "the institution is suspended or unknown")

    @staticmethod
    def _classify_refused_use(
        session: Session, grant_id: str, claims: Mapping[str, Any], now: int
    ) -> None:
        """The guarded use failed: say why, from the store's current state."""
        stored = store.read_for_use(session, grant_id)
        if stored is None:
            raise refuse("grant_invalid", "the grant is not known to this gateway")
        state = policy.StoredGrant(*stored)
        if state.enterprise != claims["sub"] or state.institution != claims["aud"]:
            raise refuse("grant_invalid", "the grant does not match the registry")
        policy.check_stored(state, now=now)
        raise refuse("grant_invalid", "the grant changed during the request")

    def institution_active(self, session: Session, institution_id: str) -> bool:
        return store.institution_status(session, institution_id) == "active"

    def check_standalone(self, **kwargs: Any) -> GrantUse:
        """``check`` in its own transaction (benchmarks, tools)."""
        with write_session(self.engine) as s:
            return self.check(s, **kwargs)

    # Helpers ----------------------------------------------------------------------
    def _with_time(self, row: store.ConsentRow) -> store.ConsentRow:
        status = policy.effective_status(row.status, self.now(), row.expires_at, row.pending_until)
        if status == row.status:
            return row
        from dataclasses import replace

        return replace(row, status=status)

    @staticmethod
    def _visible(row: store.ConsentRow, viewer: Viewer) -> bool:
        if viewer.kind == "enterprise":
            return row.enterprise == viewer.id
        if viewer.kind == "institution":
            return row.institution_id == viewer.id
        return False

    def _audit_fields(
        self,
        consent_id: str,
        operation: str,
        institution: str,
        enterprise: str,
        categories: Sequence[str],
        decision: str,
    ) -> dict[str, Any]:
        cats = self.settings.config.categories
        return {
            "operation": operation,
            "institution": institution,
            "enterprise": enterprise,
            "grant_id": consent_id,
            "categories": sorted(categories),
            "departments": sorted({cats[c].department for c in categories if c in cats}),
            "features": [],
            "model_id": None,
            "decision": decision,
        }

    def _notify(self, s: Session, consent_id: str, institution: str, status: str, now: int) -> None:
        event_id = "evt_" + uuid.uuid4().hex
        payload = json.dumps(
            {
                "event_id": event_id,
                "type": "consent.status_changed",
                "consent_id": consent_id,
                "status": status,
                "at": now,
            },
            sort_keys=True,
        )
        store.enqueue_event(
            s, institution_id=institution, event_id=event_id, payload=payload, now=now
        )


def describe(row: store.ConsentRow) -> dict[str, Any]:
    """The contract's JSON view of a consent."""
    return {
        "id": row.id,
        "status": row.status,
        "enterprise": row.enterprise,
        "institution": row.institution_id,
        "purpose": row.purpose,
        "ops": list(row.ops),
        "categories": list(row.categories),
        "duration_days": row.duration_days,
        "created_at": row.created_at,
        "expires_at": row.expires_at,
        "uses": row.uses,
        "max_uses": row.max_uses,
        "grant": row.grant_jwt,
        "letter": row.letter,
        "letter_hash": row.letter_hash,
    }


__all__ = ["ConsentRefused", "ConsentService", "GrantUse", "Viewer", "describe"]
