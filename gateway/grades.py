"""Credit grades served (JY 附件2; CONTRACT "Credit grades"): the gateway glue between
the stored grades (``grading.service``), the enforcement point and casework. Used by
the JSON API (``gateway.api.grades``), the enterprise console and any other console
(a bank's) that serves grades: call these functions, never the store directly.

Invariants:
- an institution reads a grade only through :func:`grade_for_institution`: a grant
  with op ``grade`` covering every non-public category the grade draws on
  (:func:`grade_categories`), checked and logged by ``gateway.enforce`` before the
  grade is read; the answer carries ``audit_index`` and letters only, never a value,
  a rank or a score, and never the letter of ⑦ (the legal representative's personal
  credit: restricted personal information, JY 附件2 三.1(3)⑦, used only inside the grade);
- whether a month was computed is the same for every enterprise, so it is checked
  before the grant is used (a question about an uncomputed month takes no use); whether
  one enterprise was graded is answered only after the access is logged;
- the enterprise reads its own grade free, with the explanation and what would raise it;
- the whitelist lists only enterprises that opted in, graded 高级 or 一级, and writes one
  access entry per enterprise listed (so each sees who saw it) before it is answered;
- ``disputed`` names the features the grade used that are under an open objection.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from common import uscc as uscc_rules
from common.errors import Forbidden, NotFound
from common.logging import get_logger
from common.settings import ConfigFile
from consent.errors import ConsentRefused
from gateway import casework
from gateway.auth import Principal
from gateway.enforce import Access, DataRequest, enforce, enforce_each
from gateway.services import Services
from grading import service
from grading.engine import GRADES, METHODS
from grading.inputs import FEATURES
from records import store as records

log = get_logger("gateway.grades")

PERSONAL_INDICATOR = "7"  # ⑦: never shown to an institution
WHITELIST_OP = "whitelist"
WHITELIST_FEATURES = ("registration.name", "registration.industry_division")


def grade_categories(config: ConfigFile) -> tuple[list[str], list[str]]:
    """``(needing a grant, used without one)``: the non-public categories the grade
    draws on, which a grant for op ``grade`` must name, and the public and restricted
    ones it draws on too (logged, never granted: a consent cannot name a restricted
    category)."""
    cached = _SCOPES.get(id(config))
    if cached is not None and cached[0] is config:
        return list(cached[1]), list(cached[2])
    used = sorted({f.split(".", 1)[0] for f in FEATURES if f.split(".", 1)[0] in config.categories})
    granted = [c for c in used if config.categories[c].visibility == "non_public"]
    other = [c for c in used if c not in granted]
    if len(_SCOPES) > 8:
        _SCOPES.clear()
    _SCOPES[id(config)] = (config, tuple(granted), tuple(other))
    return granted, other


# The grade's scope per loaded configuration (kept with it, so an id is never reused
# for another): computed once instead of walking the catalog on every read.
_SCOPES: dict[int, tuple[ConfigFile, tuple[str, ...], tuple[str, ...]]] = {}
_FEATURES_USED: dict[int, tuple[object, list[str]]] = {}


def _used_features(svc: Services) -> list[str]:
    catalog = svc.catalog
    cached = _FEATURES_USED.get(id(catalog))
    if cached is not None and cached[0] is catalog:
        return list(cached[1])
    used = [f for f in FEATURES if f in catalog.features]
    if len(_FEATURES_USED) > 8:
        _FEATURES_USED.clear()
    _FEATURES_USED[id(catalog)] = (catalog, used)
    return list(used)


def _letters(letters: str, *, personal: bool) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for k in range(1, 13):
        key = str(k)
        if key == PERSONAL_INDICATOR and not personal:
            continue
        ch = letters[k - 1] if k - 1 < len(letters) else "-"
        out[key] = ch if ch in "ABC" else None
    return out


def grade_for_institution(
    svc: Services,
    *,
    grant: str | None,
    uscc: str,
    actor: Principal,
    month: str | None = None,
) -> dict[str, Any]:
    """The grade of ``uscc`` for an institution under ``grant`` (op ``grade``):
    ``{enterprise, month, grade, method, indicators, disputed, audit_index}``. Raises
    InvalidInput (bad USCC or month), GradesNotComputed (404, with the command),
    ConsentRefused (logged, with its ``audit_index``), NotFound
    ``enterprise_not_graded`` (logged: carries ``audit_index``)."""
    code = uscc_rules.validate(uscc)
    if actor.kind != "institution":
        raise Forbidden("only institutions read grades under a grant", code="wrong_role")
    # The month and the grade in one query, before the grant is used: the grade of a
    # computed month never changes, and whether it exists is revealed only below, once
    # the access is logged.
    chosen, stored = service.month_and_grade(svc.engine, code, month)
    granted, other = grade_categories(svc.settings.config)
    used = _used_features(svc)
    access = enforce(
        actor,
        grant=grant,
        op="grade",
        enterprise=code,
        categories=granted,
        features=used,
        public_categories=other,
    )
    if stored is None:
        e = NotFound(f"{code} was not graded for {chosen}", code="enterprise_not_graded")
        e.details["audit_index"] = access.finish()
        raise e
    answer = {
        "enterprise": code,
        "month": chosen,
        "grade": GRADES[stored.grade],
        "method": METHODS[stored.method],
        "indicators": _letters(stored.letters, personal=False),
        "disputed": casework.disputed(svc, code, used),
        "audit_index": access.finish(),
    }
    log.info("grade_read", institution=actor.id, month=chosen)
    return answer


def grade_for_enterprise(
    svc: Services, *, uscc: str, actor: Principal, month: str | None = None
) -> dict[str, Any]:
    """The enterprise's own grade, free: the institution's answer without
    ``audit_index``, plus ``explanation`` per indicator, ``how_to_raise`` and whether it
    is ``recommended``. Only the enterprise itself (Forbidden ``wrong_enterprise``)."""
    code = uscc_rules.validate(uscc)
    if actor.kind != "enterprise" or actor.uscc != code:
        raise Forbidden("an enterprise sees only its own grade", code="wrong_enterprise")
    out = service.explain(svc.engine, code, month)
    explanation = {
        k: {
            key: item[key]
            for key in (
                "name",
                "name_en",
                "letter",
                "reason",
                "reason_en",
                "value",
                "rank",
                "of",
                "group",
            )
            if key in item
        }
        for k, item in out["indicators"].items()
    }
    choice = service.recommendation(svc.engine, code)
    letters = "".join((out["indicators"][str(k)]["letter"] or "-") for k in range(1, 13))
    return {
        "enterprise": code,
        "month": out["month"],
        "grade": out["grade"],
        "method": out["method"],
        "indicators": _letters(letters, personal=True),
        "disputed": casework.disputed(svc, code, _used_features(svc)),
        "explanation": explanation,
        "how_to_raise": out["raise"],
        "recommended": bool(choice and choice.recommended),
    }


def set_recommended(
    svc: Services, *, actor: Principal, uscc: str, recommended: bool
) -> dict[str, Any]:
    """The enterprise opts in (or out) to be recommended on the whitelist; kept with the
    time and who chose."""
    code = uscc_rules.validate(uscc)
    if actor.kind != "enterprise" or actor.uscc != code:
        raise Forbidden("only the enterprise itself chooses", code="wrong_enterprise")
    choice = service.set_recommendation(
        svc.engine,
        code,
        recommended,
        now=int(time.time()),
        actor=f"enterprise:{actor.login or actor.id}",
    )
    log.info("recommendation_set", enterprise=code, recommended=recommended)
    return {"enterprise": code, "recommended": choice.recommended, "changed_at": choice.changed_at}


def recommendation_state(svc: Services, *, uscc: str) -> dict[str, Any]:
    choice = service.recommendation(svc.engine, uscc)
    return {
        "enterprise": uscc,
        "recommended": bool(choice and choice.recommended),
        "changed_at": choice.changed_at if choice else None,
    }


def whitelist_for_institution(
    svc: Services, *, actor: Principal, month: str | None = None
) -> dict[str, Any]:
    """``{month, enterprises: [{uscc, name, grade, industry, region, audit_index}]}``:
    the opted-in enterprises graded 高级 or 一级; one access entry per enterprise listed,
    all in one transaction, before anything is answered (a suspended institution is
    refused, logged once)."""
    if actor.kind != "institution":
        raise Forbidden("the whitelist is for institutions", code="wrong_role")
    chosen = service.chosen_month(svc.engine, month)
    listed = service.whitelist(svc.engine, chosen)
    public = ["registration"]
    if not listed or svc.registry_status(actor.id) != "active":
        # Nothing to list, or a suspended institution: one entry naming no enterprise
        # (the refusal is raised from here, logged once, not once per enterprise).
        enforce(
            actor,
            grant=None,
            op=WHITELIST_OP,
            enterprise=None,
            categories=public,
            needs_grant=False,
        ).finish()
        return {"month": chosen, "enterprises": []}
    requests: Sequence[DataRequest] = [
        DataRequest(
            grant=None,
            op=WHITELIST_OP,
            enterprise=code,
            categories=public,
            features=WHITELIST_FEATURES,
            needs_grant=False,
        )
        for code, _ in listed
    ]
    outcomes = enforce_each(actor, requests)
    for outcome in outcomes:
        if isinstance(outcome, ConsentRefused):
            raise outcome  # the institution is suspended: nothing is listed
    accesses = [o for o in outcomes if isinstance(o, Access)]
    indexes = [a.finish() for a in accesses]
    entries = []
    for (code, grade), index in zip(listed, indexes, strict=True):
        values = records.current_values(svc.engine, code, WHITELIST_FEATURES)
        name = values.get("registration.name")
        industry = values.get("registration.industry_division")
        region = code[2:8]  # the administrative division (GB 32100-2015 digits 3-8)
        entries.append(
            {
                "uscc": code,
                "name": str(name) if name is not None else None,
                "grade": GRADES[grade],
                "industry": str(industry) if industry is not None else None,
                "region": region,
                "audit_index": index,
            }
        )
    log.info("whitelist_read", institution=actor.id, month=chosen, listed=len(entries))
    return {"month": chosen, "enterprises": entries}
