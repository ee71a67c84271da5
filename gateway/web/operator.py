"""The operator console (平台运营): institutions, departments, keys, models, statistics.

Invariants:
- the operator sees registrations, key metadata (never a private key), model metadata
  and counts; no page shows a data value of any enterprise;
- a trained model serves only after the operator approved it on its review page
  (features, departments, training size, weight summary); the decision is taken once
  and logged in the audit log in the transaction that records it;
- adding, suspending and resuming go through the registry (the same calls as
  ``xinyi admin``); suspending and rotating go through a confirmation page that says
  what stops;
- statistics are computed from the consent history (``consent_events``), the audit log
  and the registry, by the pure functions of ``gateway.web.views``; the enterprise
  counts (registered, real-name, authorizing, market entities) are the current month's
  figures of ``gateway.financing.month_statistics``, the one computation that
  ``GET /v1/statistics`` and ``xinyi stats export`` also answer (docs/financing.md,
  "Caliber"); the shares are of the *market entities* in the registration data
  (JY 二(一): against 50 / 30 / 30 %, ``accounts.market_targets``), never of user
  accounts.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Response, g, redirect, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from common.db import read_session
from common.errors import Conflict, InvalidInput, shown
from consent import store as consent_store
from consent.policy import STATES
from federated import store as model_store
from federated.models import JointModel, WeightSummary, review_entry, weight_summary
from financing.statistics import month_of
from gateway import financing
from gateway.services import services
from gateway.web import charts, common, views
from gateway.web.common import install, notify, render, t
from keys.ring import PURPOSES, publish_seconds
from records import store as records

bp = Blueprint("web_operator", __name__, url_prefix="/operator")
install(bp, "operator")

KINDS = ("institution", "department")
PARTY_ACTIONS = ("suspend", "resume")
STATS_DAYS = 14
STATS_ENTRIES = 100_000


@bp.get("/")
def stats() -> Response:
    svc = services()
    now = int(time.time())
    days = views.last_days(views.today_cst(now), STATS_DAYS)
    day_labels = [d.strftime("%m-%d") for d in days]
    nm = common.names()

    with read_session(svc.engine) as s:
        consents = consent_store.list_consents(s, limit=1_000_000)
        events = [
            views.StatusEvent(r["consent_id"], int(r["at"]), r["to_status"])
            for r in consent_store.status_history(s)
        ]
    times = [
        views.ConsentTimes(c.id, c.created_at, c.expires_at, c.pending_until) for c in consents
    ]
    by_status = views.status_by_day(times, events, days)
    shown_states = [s for s in STATES if any(by_status[s])] or ["active"]
    grants_chart = charts.column_chart(
        title=t("opr.stats.grants"),
        desc=t("opr.stats.grants_caption"),
        labels=day_labels,
        series=[charts.Series(t("status." + s), tuple(by_status[s])) for s in shown_states],
    )

    rows, _ = common.audit_rows("operator", "operator", cap=STATS_ENTRIES)
    dept_ids = [d.id for d in svc.settings.config.departments]
    per_dept = views.accesses_by_department_day(rows, dept_ids, days)
    active_depts = [d for d in dept_ids if any(per_dept[d])] or dept_ids[:1]
    access_chart = charts.column_chart(
        title=t("opr.stats.accesses"),
        desc=t("opr.stats.accesses_caption"),
        labels=day_labels,
        series=[charts.Series(nm.department(d), tuple(per_dept[d])) for d in active_depts],
    )
    access_total_chart = charts.bar_chart(
        title=t("opr.stats.accesses_total"),
        desc=t("opr.stats.accesses_total"),
        labels=[nm.department(d) for d in dept_ids],
        values=[sum(per_dept[d]) for d in dept_ids],
    )
    in_window = [r for r in rows if views.local(r.time).date() >= days[0]]
    refusals = views.refusals_by_reason(in_window)
    refusal_chart = charts.bar_chart(
        title=t("opr.stats.refusals"),
        desc=t("opr.stats.refusals_caption"),
        labels=[common.label_for("decision", code) for code, _ in refusals],
        values=[n for _, n in refusals],
    )
    month = financing.month_statistics(svc, month_of(now))
    counts = {k: int(month[k]) for k in ("registered", "real_name", "authorizing")}
    market = int(month["market_entities"])
    with_data = _with_data()
    targets = svc.settings.config.accounts.market_targets
    shares = [
        views.MarketShare(t("opr.stats." + k), counts[k], market, getattr(targets, k))
        for k in ("registered", "real_name", "authorizing")
    ]
    coverage_chart = charts.bar_chart(
        title=t("opr.stats.coverage"),
        desc=t("opr.stats.coverage"),
        labels=[
            t("opr.stats.market"),
            t("opr.stats.with_data"),
            t("opr.stats.registered"),
            t("opr.stats.real_name"),
            t("opr.stats.authorizing"),
        ],
        values=[
            market,
            with_data,
            counts["registered"],
            counts["real_name"],
            counts["authorizing"],
        ],
    )
    return render(
        "web/operator/stats.html",
        title_key="title.opr.stats",
        days=[d.isoformat() for d in days],
        month=month["month"],
        counts=counts,
        with_data=with_data,
        market=market,
        shares=shares,
        coverage_chart=coverage_chart,
        grants_chart=grants_chart,
        grants_headers=[t("status." + s) for s in shown_states],
        access_chart=access_chart,
        access_headers=[nm.department(d) for d in active_depts],
        access_total_chart=access_total_chart,
        refusal_chart=refusal_chart,
        names=nm,
    )


def _with_data() -> int:
    return len(records.enterprises(services().engine))


# Institutions and departments ---------------------------------------------------------
def _institutions_page(error: str = "", form: dict[str, str] | None = None) -> Response:
    return render(
        "web/operator/institutions.html",
        title_key="title.opr.institutions",
        status=400 if error else 200,
        institutions=services().registry.institutions(),
        error=error,
        form=form or {"id": "", "name": "", "webhook_url": "", "jwk": ""},
    )


@bp.get("/institutions")
def institutions() -> Response:
    return _institutions_page()


@bp.post("/institutions")
def add_institution() -> BaseResponse:
    form = {k: request.form.get(k, "").strip() for k in ("id", "name", "webhook_url", "jwk")}
    try:
        try:
            jwk = json.loads(form["jwk"])
        except json.JSONDecodeError as e:
            raise InvalidInput(f"the JWK is not JSON ({e.msg})", field="jwk") from e
        services().registry.add_institution(
            form["id"], name=form["name"], jwk=jwk, webhook_url=form["webhook_url"] or None
        )
    except (InvalidInput, Conflict) as e:
        return _institutions_page(common.form_error(e), form)
    notify("notice.institution_added", party=form["id"])
    return redirect(url_for(".institutions"))


def _departments_page(error: str = "", form: dict[str, str] | None = None) -> Response:
    return render(
        "web/operator/departments.html",
        title_key="title.opr.departments",
        status=400 if error else 200,
        departments=services().registry.departments(),
        catalog_departments=[d.id for d in services().settings.config.departments],
        error=error,
        form=form or {"id": "", "name": ""},
    )


@bp.get("/departments")
def departments() -> Response:
    return _departments_page()


@bp.post("/departments")
def add_department() -> BaseResponse:
    form = {k: request.form.get(k, "").strip() for k in ("id", "name")}
    try:
        services().registry.add_department(form["id"], name=form["name"])
    except (InvalidInput, Conflict) as e:
        return _departments_page(common.form_error(e), form)
    notify("notice.department_added", party=form["id"])
    return redirect(url_for(".departments"))


def _party_name(kind: str, party_id: str) -> str:
    reg = services().registry
    if kind == "institution":
        return reg.institution(party_id).name
    return reg.department(party_id).name


def _check_party(kind: str, action: str) -> None:
    if kind not in KINDS or action not in PARTY_ACTIONS:
        raise InvalidInput("unknown action", code="unknown_action")


@bp.get("/<kind>/<party_id>/<action>")
def confirm_party(kind: str, party_id: str, action: str) -> Response:
    _check_party(kind, action)
    party = f"{_party_name(kind, party_id)} ({party_id})"
    prefix = f"confirm.{kind}.{action}"
    is_suspend = action == "suspend"
    back = ".institutions" if kind == "institution" else ".departments"
    return render(
        "web/confirm.html",
        title_key="title.confirm",
        heading=t(f"{prefix}.heading", party=party),
        paragraphs=[] if is_suspend else [t(f"{prefix}.p1")],
        stops=[t(f"{prefix}.stop1")] if is_suspend else [],
        stays=[t(f"{prefix}.stay1")] if is_suspend else [],
        action_url=url_for(".act_party", kind=kind, party_id=party_id, action=action),
        button=t(f"{prefix}.button"),
        button_class="danger" if is_suspend else "primary",
        cancel_url=url_for(back),
    )


@bp.post("/<kind>/<party_id>/<action>")
def act_party(kind: str, party_id: str, action: str) -> BaseResponse:
    _check_party(kind, action)
    reg = services().registry
    do = {
        ("institution", "suspend"): reg.suspend_institution,
        ("institution", "resume"): reg.resume_institution,
        ("department", "suspend"): reg.suspend_department,
        ("department", "resume"): reg.resume_department,
    }[(kind, action)]
    do(party_id)
    common.log.info("operator_party_changed", kind=kind, party=party_id, action=action)
    notify(f"notice.{kind}_{action}", party=party_id)
    return redirect(url_for(".institutions" if kind == "institution" else ".departments"))


# Keys ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class KeyView:
    """What the operator sees of a signing key: never the private key."""

    purpose: str
    kid: str
    created_at: int
    retired_at: int | None
    state: str  # signing | published | unpublished
    published_until: int | None  # None with a retired key: published for good


def key_views(now: float) -> list[KeyView]:
    svc = services()
    records = svc.keys.records()
    signing = {p: svc.keys.signing_key(p).kid for p in PURPOSES if _has_key(records, p)}
    out = []
    for r in sorted(records, key=lambda r: (PURPOSES.index(r.purpose), -r.created_at)):
        window = publish_seconds(svc.settings, r.purpose)
        until = None if r.retired_at is None or window is None else r.retired_at + window
        if signing.get(r.purpose) == r.kid:
            state = "signing"
        elif r.retired_at is None or until is None or now < until:
            state = "published"
        else:
            state = "unpublished"
        out.append(KeyView(r.purpose, r.kid, r.created_at, r.retired_at, state, until))
    return out


def _has_key(records: list[Any], purpose: str) -> bool:
    return any(r.purpose == purpose and r.retired_at is None for r in records)


@bp.get("/keys")
def keys() -> Response:
    return render(
        "web/operator/keys.html",
        title_key="title.opr.keys",
        keys=key_views(time.time()),
        purposes=PURPOSES,
    )


def _check_purpose(purpose: str) -> None:
    if purpose not in PURPOSES:
        raise InvalidInput("unknown key purpose", code="unknown_key_purpose")


@bp.get("/keys/<purpose>/rotate")
def confirm_rotate(purpose: str) -> Response:
    _check_purpose(purpose)
    name = t("keypurpose." + purpose)
    return render(
        "web/confirm.html",
        title_key="title.confirm",
        heading=t("confirm.rotate.heading", purpose=name),
        paragraphs=[t("confirm.rotate.p1")],
        stops=[],
        stays=[],
        action_url=url_for(".rotate", purpose=purpose),
        button=t("confirm.rotate.button"),
        button_class="primary",
        cancel_url=url_for(".keys"),
    )


@bp.post("/keys/<purpose>/rotate")
def rotate(purpose: str) -> BaseResponse:
    _check_purpose(purpose)
    record = services().keys.rotate(purpose)
    common.log.info("operator_key_rotated", purpose=purpose, kid=record.kid)
    notify("notice.rotated", purpose=t("keypurpose." + purpose), kid=record.kid)
    return redirect(url_for(".keys"))


# Models -------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelView:
    """What the operator sees of a joint model version: its shape, its review status and
    a summary of its weights; never a data value."""

    id: str
    version: int
    owner: str
    status: str
    gateway_features: tuple[str, ...]
    bank_features: tuple[str, ...]
    description: str
    registered_by: str | None
    created_at: int | None
    reviewed_by: str | None
    reviewed_at: int | None
    training_enterprises: int | None
    departments: tuple[str, ...]
    summary: WeightSummary

    @property
    def ref(self) -> str:
        return f"{self.id}@{self.version}"


def _model_view(record: model_store.ModelRecord) -> ModelView:
    m = record.model
    cats = services().settings.config.categories
    training = (m.metadata or {}).get("training")
    size = training.get("enterprises") if isinstance(training, dict) else None
    return ModelView(
        m.id,
        int(m.version),
        m.owner,
        str(m.status),
        tuple(m.gateway_features),
        tuple(m.bank_features),
        str(m.description or ""),
        m.registered_by,
        m.created_at,
        record.reviewed_by,
        record.reviewed_at,
        int(size) if isinstance(size, int) else None,
        tuple(sorted({cats[c].department for c in m.gateway_categories if c in cats})),
        weight_summary(m),
    )


def model_views() -> list[ModelView]:
    """Every registered version, pending first."""
    return [_model_view(r) for r in model_store.list_versions(services().engine)]


def _find(ref: str) -> model_store.ModelRecord:
    model_id, _, version = ref.rpartition("@")
    if not model_id or not version.isdigit() or len(version) > 18:
        raise InvalidInput("a model is named id@version", code="invalid_model_ref")
    for record in model_store.list_versions(services().engine):
        if record.model.id == model_id and record.model.version == int(version):
            return record
    raise model_store.ModelNotFound(f"no joint model {shown(ref)}")


@bp.get("/models")
def models() -> Response:
    return render("web/operator/models.html", title_key="title.opr.models", models=model_views())


@bp.get("/models/<path:ref>")
def review(ref: str) -> Response:
    """The review page: features, departments, training size, weight summary."""
    return render("web/operator/model.html", title_key="title.opr.model", m=_model_view(_find(ref)))


@bp.post("/models/<path:ref>/review")
def decide(ref: str) -> BaseResponse:
    """Approve or reject a pending version; the decision is logged in the audit log in
    the transaction that records it."""
    decision = request.form.get("decision", "")
    if decision not in ("approve", "reject"):
        raise InvalidInput("decision: approve or reject", code="invalid_decision")
    record = _find(ref)
    svc = services()
    principal = g.get("principal")
    reviewer = f"operator:{principal.id}" if principal is not None else "operator"
    queued: list[int] = []

    def audit(session: Any, model: JointModel, status: str) -> None:
        entry = review_entry(
            model,
            status,
            svc.settings.config.categories,
            request_id=g.get("request_id") or secrets.token_hex(8),
            now=int(time.time()),
        )
        queued.append(int(svc.audit.enqueue(session, entry)))

    model = model_store.review_model(
        svc.engine,
        record.model.id,
        record.model.version,
        approve=decision == "approve",
        reviewer=reviewer,
        audit=audit,
    )
    index = svc.audit.await_index(queued[0], svc.settings.config.audit.integrate_wait_seconds)
    common.log.info(
        "operator_model_reviewed", model=model.ref, status=model.status, audit_index=index
    )
    notify(f"notice.model_{model.status}", model=model.ref, index=index)
    return redirect(url_for(".review", ref=model.ref))
