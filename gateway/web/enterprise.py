"""The enterprise console (企业): requests, grants, accesses to its data, its own data.

Invariants:
- every page shows only the signed-in enterprise's own consents, audit entries and data
  (the consent service, the audit log and the records store are asked with its USCC);
- an approval is accepted only from the page that shows the full authorization letter,
  with its "I have read and accept" box ticked; pause, resume and revoke go through a
  confirmation page that says what stops;
- decisions go through ``ConsentService.act`` with the same audit hook as the JSON API,
  so a page decision and an API decision are the same event in the log.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, g, redirect, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from common.errors import InvalidInput
from consent.service import Viewer
from gateway.enforce import ConsentAudit
from gateway.financing import consent_hook
from gateway.services import services
from gateway.web import common, views
from gateway.web.common import install, notify, render, t

bp = Blueprint("web_enterprise", __name__, url_prefix="/enterprise")
install(bp, "enterprise")

ACTIONS = ("approve", "reject", "pause", "resume", "revoke")
CONFIRMED = ("pause", "resume", "revoke")
# The most audit entries one page lists (newest first).
MAX_ENTRIES = 2000


def _uscc() -> str:
    return str(g.principal.uscc)


def _institution_names() -> dict[str, str]:
    return {i.id: i.name for i in services().registry.institutions()}


def _grant(consent_id: str) -> views.GrantView:
    svc = services()
    row = svc.consent.get(consent_id, Viewer("enterprise", _uscc()))
    names = _institution_names()
    return views.grant_view(
        row,
        names.get(row.institution_id, row.institution_id),
        svc.consent.verification_budget(row),
    )


@bp.get("/")
def requests() -> Response:
    svc = services()
    names = _institution_names()
    rows = svc.consent.list(Viewer("enterprise", _uscc()), "pending")
    pending = [views.grant_view(r, names.get(r.institution_id, r.institution_id)) for r in rows]
    return render(
        "web/enterprise/requests.html",
        title_key="title.ent.requests",
        requests=pending,
        names=common.names(names),
    )


@bp.get("/consents/<consent_id>")
def consent(consent_id: str) -> Response:
    return render(
        "web/enterprise/consent.html", title_key="title.ent.consent", c=_grant(consent_id)
    )


@bp.get("/consents/<consent_id>/<action>")
def confirm(consent_id: str, action: str) -> BaseResponse:
    if action not in CONFIRMED:
        raise InvalidInput("unknown action", code="unknown_action")
    c = _grant(consent_id)
    if action not in c.actions:
        return redirect(url_for(".consent", consent_id=consent_id))
    who = c.institution_name
    expires = views.format_time(c.expires_at)
    stops: list[str] = []
    stays: list[str] = []
    paragraphs: list[str] = []
    if action == "pause":
        stops = [t("confirm.pause.stop1", institution=who), t("confirm.pause.stop2")]
        stays = [t("confirm.pause.stay1", expires=expires), t("confirm.pause.stay2")]
    elif action == "revoke":
        stops = [
            t("confirm.revoke.stop1", institution=who),
            t("confirm.revoke.stop2"),
            t("confirm.revoke.stop3", left=c.uses_left),
        ]
        stays = [t("confirm.revoke.stay1")]
    else:
        paragraphs = [t("confirm.resume.p1", institution=who, left=c.uses_left, expires=expires)]
    return render(
        "web/confirm.html",
        title_key="title.confirm",
        heading=t(f"confirm.{action}.heading", institution=who),
        paragraphs=paragraphs,
        stops=stops,
        stays=stays,
        action_url=url_for(".act", consent_id=consent_id, action=action),
        button=t(f"confirm.{action}.button"),
        button_class="danger" if action in ("pause", "revoke") else "primary",
        cancel_url=url_for(".consent", consent_id=consent_id),
    )


@bp.post("/consents/<consent_id>/<action>")
def act(consent_id: str, action: str) -> BaseResponse:
    if action not in ACTIONS:
        raise InvalidInput("unknown action", code="unknown_action")
    if action == "approve" and request.form.get("accept") != "yes":
        raise InvalidInput("tick the box to accept the letter", code="accept_required")
    svc = services()
    # An application's consent, approved, submits the application (gateway.financing).
    hook = consent_hook(svc, ConsentAudit(svc))
    row = svc.consent.act(consent_id, action, _uscc(), audit=hook)
    who = _institution_names().get(row.institution_id, row.institution_id)
    notice = {
        "approve": "notice.approved",
        "reject": "notice.rejected",
        "pause": "notice.paused",
        "resume": "notice.resumed",
        "revoke": "notice.revoked",
    }[action]
    notify(notice, institution=who)
    if action == "reject":
        return redirect(url_for(".requests"))
    return redirect(url_for(".consent", consent_id=consent_id))


@bp.get("/grants")
def grants() -> Response:
    svc = services()
    names = _institution_names()
    rows = [r for r in svc.consent.list(Viewer("enterprise", _uscc())) if r.status != "pending"]
    out = [
        views.grant_view(
            r, names.get(r.institution_id, r.institution_id), svc.consent.verification_budget(r)
        )
        for r in rows
    ]
    return render(
        "web/enterprise/grants.html",
        title_key="title.ent.grants",
        grants=out,
        names=common.names(names),
    )


def own_entries(limit: int = MAX_ENTRIES) -> list[views.AccessRow]:
    """The newest audit entries about this enterprise, newest first."""
    return common.audit_rows("enterprise", _uscc(), cap=limit)[0]


@bp.get("/accesses")
def accesses() -> Response:
    names = _institution_names()
    return render(
        "web/enterprise/accesses.html",
        title_key="title.ent.accesses",
        rows=own_entries(),
        api_base=request.script_root,
        names=common.names(names),
    )


def _held() -> list[views.HeldValue]:
    from records import store as records

    svc = services()
    cfg = svc.settings.config
    # Never the restricted category (the legal representative's personal credit, used
    # only inside the grade) nor a keyed hash of a person's id (docs/grading.md "Data").
    every = [
        f"{c}.{f}"
        for c, cat in cfg.categories.items()
        if cat.visibility != "restricted"
        for f, spec in cat.features.items()
        if not spec.keyed_hash
    ]
    return views.held_values(svc.settings, records.current_values(svc.engine, _uscc(), every))


@bp.get("/data")
def data() -> Response:
    from gateway import casework

    held = _held()
    features = [h.feature for h in held]
    return render(
        "web/enterprise/data.html",
        title_key="title.ent.data",
        held=held,
        disputed=casework.disputed(services(), _uscc(), features),
        repaired=casework.repaired(services(), _uscc(), features),
    )


@bp.get("/data.<fmt>")
def data_export(fmt: str) -> Response:
    held = _held()
    uscc = _uscc()
    if fmt == "csv":
        body = "\ufeff" + views.held_csv(uscc, held)  # BOM: spreadsheets open it as UTF-8
        mimetype = "text/csv"
    elif fmt == "json":
        doc: dict[str, Any] = {
            "enterprise": uscc,
            "values": {h.feature: h.value for h in held},
            "features": {
                h.feature: {"department": h.department, "visibility": h.visibility, "unit": h.unit}
                for h in held
            },
        }
        body = json.dumps(doc, ensure_ascii=False, indent=2, default=str)
        mimetype = "application/json"
    else:
        raise InvalidInput("csv or json", code="unknown_format")
    common.log.info("own_data_exported", format=fmt, features=len(held))
    resp = Response(body, mimetype=mimetype)
    resp.headers["Content-Disposition"] = f'attachment; filename="xinyi-{uscc}.{fmt}"'
    return resp
