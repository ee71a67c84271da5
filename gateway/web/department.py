"""The department console (数据提供单位): accesses to its data, imports, witness status.

Invariants:
- the department sees the audit entries that touched its data, and of each entry only
  its own categories and features (never another department's part, never a value);
- its import history is its own (records store, by department id);
- the witness page warns loudly when the log's current checkpoint is not consistent
  with the last checkpoint the department cosigned (an RFC 9162 consistency proof
  recomputed here from the stored tree), or when a witness of the department reported a
  failed check.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, g, request

from common.errors import InvalidInput
from consent.errors import REFUSAL_CODES
from gateway.services import services
from gateway.web import common, views
from gateway.web.common import install, render

bp = Blueprint("web_department", __name__, url_prefix="/department")
install(bp, "department")

# Entries one page considers (newest first); the CSV export takes up to EXPORT_CAP.
PAGE_CAP = 20_000
SHOWN = 500
EXPORT_CAP = 200_000


def _department() -> str:
    return str(g.principal.department)


def _rows(cap: int) -> tuple[list[views.AccessRow], bool]:
    return common.audit_rows("department", _department(), cap=cap, department=_department())


@bp.get("/")
def accesses() -> Response:
    try:
        f = views.AccessFilter.parse(request.args)
    except InvalidInput as e:  # say what was wrong, show everything
        f = views.AccessFilter()
        common.notify("error.invalid", "error", message=e.message)
    every, truncated = _rows(PAGE_CAP)
    rows = [r for r in every if f.matches(r)]
    registry = services().registry
    institutions = registry.institutions()
    refusal_codes = sorted({r.decision for r in every if not r.allowed})
    return render(
        "web/department/accesses.html",
        title_key="title.dep.accesses",
        department=_department(),
        f=f,
        rows=rows[:SHOWN],
        shown=min(SHOWN, len(rows)),
        total=len(rows),
        truncated=truncated,
        page_cap=PAGE_CAP,
        counts=views.per_institution(rows),
        institutions=institutions,
        operations=views.DATA_OPERATIONS + views.CONSENT_OPERATIONS,
        refusal_codes=_known_refusals(refusal_codes),
        names=common.names({i.id: i.name for i in institutions}),
    )


def _known_refusals(seen: list[str]) -> list[str]:
    contract = list(REFUSAL_CODES)
    return contract + sorted(set(seen) - set(contract))


@bp.get("/accesses.csv")
def accesses_csv() -> Response:
    f = views.AccessFilter.parse(request.args)
    rows = [r for r in _rows(EXPORT_CAP)[0] if f.matches(r)]
    common.log.info("department_accesses_exported", rows=len(rows))
    body = "\ufeff" + views.accesses_csv(rows)  # BOM: spreadsheets open it as UTF-8
    resp = Response(body, mimetype="text/csv")
    resp.headers["Content-Disposition"] = (
        f'attachment; filename="xinyi-accesses-{_department()}.csv"'
    )
    return resp


@bp.get("/imports")
def imports() -> Response:
    from records import store as records

    engine = services().engine
    history = records.import_history(engine, _department())
    rejects: dict[int, list[Any]] = {
        r.id: records.import_rejects(engine, r.id)[:200] for r in history if r.reject_count
    }
    return render(
        "web/department/imports.html",
        title_key="title.dep.imports",
        history=history,
        rejects=rejects,
    )


@bp.get("/witness")
def witness() -> Response:
    from gateway.web import witness as status

    return render(
        "web/department/witness.html",
        title_key="title.dep.witness",
        w=status.for_department(services(), _department()),
    )
