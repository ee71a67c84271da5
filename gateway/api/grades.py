"""Credit grades over HTTP (CONTRACT "Credit grades"; the logic is ``gateway.grades``).

Invariants: an institution's grade goes through the enforcement point (op ``grade``),
letters only; the enterprise reads its own grade free, with the explanation; the
whitelist writes one access entry per enterprise listed.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from common.errors import Forbidden
from gateway import grades
from gateway.api import schemas
from gateway.auth import authenticated, current_principal
from gateway.contract import operation
from gateway.services import services

bp = Blueprint("grades", __name__)


@bp.get("/v1/enterprises/<uscc>/grade")
@authenticated("institution", "enterprise")
@operation(
    "The credit grade of JY 附件2 (高级 / 一级 / 备选): an institution with ?grant= (op "
    "grade) gets letters only, logged; the enterprise itself gets it free with the "
    "explanation and what would raise it. 404 grades_not_computed names the command",
    tag="grades",
    query=schemas.GradeQuery,
    answer=schemas.Grade,
    path={"uscc": schemas.Uscc},
)
def grade(uscc: str, query: schemas.GradeQuery) -> dict[str, Any]:
    svc = services()
    principal = current_principal()
    if principal.kind == "enterprise":
        return grades.grade_for_enterprise(svc, uscc=uscc, actor=principal, month=query.month)
    return grades.grade_for_institution(
        svc, grant=query.grant, uscc=uscc, actor=principal, month=query.month
    )


@bp.get("/v1/enterprises/<uscc>/recommendation")
@authenticated("enterprise")
@operation(
    "Whether the enterprise itself opted in to be recommended on the whitelist",
    tag="grades",
    answer=schemas.RecommendationState,
    path={"uscc": schemas.Uscc},
)
def recommendation(uscc: str) -> dict[str, Any]:
    principal = current_principal()
    if principal.uscc != uscc:
        raise Forbidden("an enterprise sees only its own choice", code="wrong_enterprise")
    return grades.recommendation_state(services(), uscc=uscc)


@bp.put("/v1/enterprises/<uscc>/recommendation")
@authenticated("enterprise")
@operation(
    "The enterprise opts in (or out) to be recommended to institutions on the monthly "
    "whitelist when graded 高级 or 一级; kept with the time",
    tag="grades",
    body=schemas.RecommendationChoice,
    answer=schemas.RecommendationState,
    path={"uscc": schemas.Uscc},
)
def choose_recommendation(uscc: str, body: schemas.RecommendationChoice) -> dict[str, Any]:
    return grades.set_recommended(
        services(), actor=current_principal(), uscc=uscc, recommended=body.recommended
    )


@bp.get("/v1/whitelist")
@authenticated("institution")
@operation(
    "Enterprises graded 高级 or 一级 for the month that opted in to be recommended; each "
    "listing is logged as an access about that enterprise",
    tag="grades",
    query=schemas.WhitelistQuery,
    answer=schemas.Whitelist,
)
def whitelist(query: schemas.WhitelistQuery) -> dict[str, Any]:
    return grades.whitelist_for_institution(
        services(), actor=current_principal(), month=query.month
    )
