"""The enterprise's grade page (信用等级, JY 附件2): its own grade of the newest computed
month (or ``?month=``), every indicator's letter and why, what would raise it, and its
choice to be recommended on the whitelist.

Invariants:
- the page reads through ``gateway.grades`` exactly as the JSON API does (the enterprise
  itself only, free, not logged as an access: it is its own data);
- the choice to be recommended is a POST with the session's CSRF token, kept with the
  time it was made; the page says when it was made.
"""

from __future__ import annotations

from flask import Response, g, redirect, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from common.errors import Error, NotFound
from gateway import grades
from gateway.services import services
from gateway.web import enterprise
from gateway.web.common import notify, render


@enterprise.bp.get("/grade")
def enterprise_grade() -> Response:
    svc = services()
    uscc = str(g.principal.uscc)
    month = request.args.get("month") or None
    answer = None
    missing = ""
    try:
        answer = grades.grade_for_enterprise(svc, uscc=uscc, actor=g.principal, month=month)
    except NotFound as e:
        missing = e.code  # grades_not_computed or enterprise_not_graded
    except Error as e:
        if e.code != "invalid_month":
            raise
        missing = e.code
    choice = grades.recommendation_state(svc, uscc=uscc)
    return render(
        "web/enterprise/grade.html",
        title_key="title.ent.grade",
        answer=answer,
        missing=missing,
        choice=choice,
    )


@enterprise.bp.post("/grade/recommendation")
def enterprise_grade_recommendation() -> BaseResponse:
    wanted = request.form.get("recommended") == "yes"
    grades.set_recommended(
        services(), actor=g.principal, uscc=str(g.principal.uscc), recommended=wanted
    )
    notify("notice.grade_recommended" if wanted else "notice.grade_not_recommended")
    return redirect(url_for("web_enterprise.enterprise_grade"))
