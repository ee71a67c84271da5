"""What every console page shares: sign-in and sign-out, the language switch, the page
frame, HTML error pages and the guard that admits one role.

Invariants:
- a console page is served only to a signed-in person of its role, through the same
  session as ``POST /v1/session`` (``gateway.auth``); an expired session
  (``tokens.session_seconds``) sends the person to the sign-in page and says why;
- every form that changes something carries the session's CSRF token as its
  ``csrf_token`` field (checked by ``gateway.auth`` as for the JSON API, and here again
  as a form field: pages change things only through their own forms); the sign-in form
  carries a pre-session token of its own, so a foreign site cannot sign a person in;
- errors on pages render as pages (never JSON), with the stable code shown;
- ``next`` after sign-in is only ever a local path.
"""

from __future__ import annotations

import hmac
import secrets
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlencode, urlsplit

from flask import (
    Blueprint,
    Response,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from werkzeug.wrappers import Response as BaseResponse

from common import errors
from common.logging import get_logger
from gateway.auth import (
    UNSAFE_METHODS,
    Principal,
    authenticate_person,
    current_csrf,
    current_principal,
    end_session,
    start_session,
)
from gateway.errors import MESSAGE_MAX, status_for
from gateway.services import services
from gateway.web.i18n import DEFAULT_LANG, LANGS, Names, label, normalize_lang, translate
from gateway.web.views import AccessRow, access_row, format_day, format_time, format_value

log = get_logger("gateway.web")

bp = Blueprint(
    "web",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/static/web",
)

LANG_COOKIE = "xinyi_lang"
ROLE_HOME = {
    "enterprise": "web_enterprise.requests",
    "department": "web_department.accesses",
    "operator": "web_operator.stats",
}
# Where a bank's console staff land (blueprint ``gateway.web.bank``, the financing
# area's): a path, so that sign-in does not depend on that blueprint being present.
BANK_HOME = "/bank/"
# Where an enterprise account without a verified real name lands, and the only pages
# it is admitted to (``guard``): its account page, the real-name check, sign-out.
UNVERIFIED_HOME = "web_accounts.account"
# Pages of a role blueprint that an enterprise account without real name may browse too
# (endpoint names; e.g. a product list). Everything else of the enterprise console
# shows the enterprise's data or acts for it, so it is closed to such accounts.
UNVERIFIED_PAGES: set[str] = set()


def home_url(role: str, *, real_name: bool = True, staff: bool = True) -> str | None:
    """The landing page of a person of ``role``; None when there is none (an
    institution's OAuth client uses the JSON API)."""
    if role == "institution":
        return BANK_HOME if staff else None
    if role == "enterprise" and not real_name:
        return url_for(UNVERIFIED_HOME)
    endpoint = ROLE_HOME.get(role)
    return url_for(endpoint) if endpoint else None


@dataclass(frozen=True)
class NavItem:
    label: str
    endpoint: str


NAV: dict[str, tuple[NavItem, ...]] = {
    "enterprise": (
        NavItem("nav.requests", "web_enterprise.requests"),
        NavItem("nav.grants", "web_enterprise.grants"),
        NavItem("nav.accesses", "web_enterprise.accesses"),
        NavItem("nav.data", "web_enterprise.data"),
        NavItem("nav.ent_objections", "web_enterprise.enterprise_objections"),
        NavItem("nav.ent_repairs", "web_enterprise.enterprise_repairs"),
        NavItem("nav.fin_products", "web_enterprise.enterprise_products"),  # financing
        NavItem("nav.fin_applications", "web_enterprise.enterprise_applications"),
        NavItem("nav.account", "web_accounts.account"),
        NavItem("nav.ent_grade", "web_enterprise.enterprise_grade"),
    ),
    "department": (
        NavItem("nav.dep_accesses", "web_department.accesses"),
        NavItem("nav.imports", "web_department.imports"),
        NavItem("nav.witness", "web_department.witness"),
        NavItem("nav.dep_objections", "web_department.department_objections"),
        NavItem("nav.dep_repairs", "web_department.department_repairs"),
    ),
    "operator": (
        NavItem("nav.stats", "web_operator.stats"),
        NavItem("nav.institutions", "web_operator.institutions"),
        NavItem("nav.departments", "web_operator.departments"),
        NavItem("nav.keys", "web_operator.keys"),
        NavItem("nav.models", "web_operator.models"),
        NavItem("nav.opr_objections", "web_operator.operator_objections"),
        NavItem("nav.opr_financing", "web_operator.financing_stats"),  # financing
        NavItem("nav.opr_applications", "web_operator.operator_applications"),  # polish
    ),
    # A bank's console staff (gateway.web.bank, the financing area's).
    "institution": (
        NavItem("nav.bank_inbox", "web_bank.inbox"),
        NavItem("nav.bank_products", "web_bank.products"),
        NavItem("nav.bank_needs", "web_bank.needs"),
    ),
}


# Language -----------------------------------------------------------------------------
def page_lang() -> str:
    cached = g.get("lang")
    if isinstance(cached, str):
        return cached
    asked = normalize_lang(request.args.get("lang"))
    lang = asked or normalize_lang(request.cookies.get(LANG_COOKIE)) or DEFAULT_LANG
    g.lang = lang
    if asked:
        g.lang_chosen = asked
    return lang


def t(key: str, **params: object) -> str:
    return translate(page_lang(), key, **params)


def label_for(kind: str, code: str) -> str:
    return label(page_lang(), kind, code)


def remember_lang(resp: BaseResponse) -> BaseResponse:
    chosen = g.get("lang_chosen")
    if chosen:
        resp.set_cookie(
            LANG_COOKIE,
            chosen,
            max_age=365 * 86_400,
            samesite="Lax",
            httponly=True,
            secure=services().settings.config.server.https,
        )
    return resp


def _lang_url(lang: str) -> str:
    args = {k: v for k, v in request.args.items() if k != "lang"}
    args["lang"] = lang
    return f"{request.path}?{urlencode(args)}"


# Notices (shown once, on the next page) -----------------------------------------------
def notify(key: str, kind: str = "ok", **params: object) -> None:
    pending = list(session.get("notices", []))
    pending.append({"key": key, "kind": kind, "params": {k: str(v) for k, v in params.items()}})
    session["notices"] = pending[-5:]


def _take_notices() -> list[dict[str, str]]:
    raw = session.pop("notices", []) if "notices" in session else []
    return [
        {"kind": n.get("kind", "info"), "text": t(n["key"], **n.get("params", {}))}
        for n in raw
        if isinstance(n, dict) and "key" in n
    ]


# Rendering ----------------------------------------------------------------------------
def names(institutions: Mapping[str, str] | None = None) -> Names:
    if institutions is None:
        institutions = {i.id: i.name for i in services().registry.institutions()}
    return Names(services().settings, page_lang(), institutions)


def render(template: str, *, title_key: str, status: int = 200, **ctx: Any) -> Response:
    lang = page_lang()
    principal: Principal | None = g.get("principal")
    nav = []
    if principal is not None:
        for item in NAV.get(principal.kind, ()):
            url = url_for(item.endpoint)
            nav.append({"label": item.label, "url": url, "current": request.path == url})
    if ctx.get("names") is None:  # pages that name institutions pass their own
        ctx["names"] = Names(services().settings, lang)
    html = render_template(
        template,
        lang=lang,
        other_lang=next(x for x in LANGS if x != lang),
        lang_url=_lang_url(next(x for x in LANGS if x != lang)),
        t=t,
        label=lambda kind, code: label(lang, kind, code),
        title=t(title_key),
        principal=principal,
        nav=nav,
        csrf_token=current_csrf(),
        notices=_take_notices(),
        fmt_time=format_time,
        fmt_day=format_day,
        fmt_value=format_value,
        **ctx,
    )
    resp = Response(html, status=status, mimetype="text/html")
    resp.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )
    resp.headers["Referrer-Policy"] = "same-origin"
    return resp


# Guards and errors --------------------------------------------------------------------
def _local_path(value: str | None) -> str:
    """``value`` when it is a path on this site, else "".

    Browsers drop tabs and newlines inside a URL and read a backslash as a slash, so
    ``next=/%09/evil.example`` (``/<tab>/evil.example`` once decoded) would leave the
    site as ``//evil.example``. Refused: any control character, whitespace or backslash;
    then the path must be absolute, with no scheme and no host, both as given and once
    more percent-decoded (a proxy or browser that decodes again finds no host either)."""
    if not value or any(_unsafe_char(ch) or ch.isspace() for ch in value):
        return ""
    for form in (value, unquote(value)):
        if any(_unsafe_char(ch) for ch in form) or not _absolute_path(form):
            return ""
    return value


def _unsafe_char(ch: str) -> bool:
    """A backslash, or a control, format or line/paragraph separator character."""
    return ch == "\\" or unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp")


def _absolute_path(value: str) -> bool:
    if not value.startswith("/") or value.startswith("//"):
        return False
    parts = urlsplit(value)
    return not parts.scheme and not parts.netloc


def _to_login(reason: str | None = None) -> BaseResponse:
    args: dict[str, Any] = {}
    if request.method == "GET":
        args["next"] = request.full_path.rstrip("?")
    if reason:
        args["reason"] = reason
    return redirect(url_for("web.login", **args))


def guard(role: str, *, unverified: bool = False) -> BaseResponse | None:
    """Admit a signed-in person of ``role``: None to go on, or the response instead.
    Role ``institution`` pages admit the bank's console staff only (not its OAuth
    client); an enterprise account without a verified real name is admitted only where
    ``unverified`` (elsewhere a page read goes to its account page, a change is refused
    with ``real_name_required``)."""
    page_lang()
    try:
        principal = current_principal()
    except errors.AuthenticationFailed as e:
        return _to_login("expired" if e.code == "session_expired" else None)
    if principal.kind != role or (role == "institution") != principal.staff:
        raise errors.Forbidden(f"this page is for the {role} role", code="wrong_role")
    if (
        principal.kind == "enterprise"
        and not principal.real_name
        and not unverified
        and request.endpoint not in UNVERIFIED_PAGES
    ):
        if request.method not in UNSAFE_METHODS:
            notify("notice.real_name_required", "info")
            return redirect(url_for(UNVERIFIED_HOME))
        raise errors.Forbidden("verify the real name first", code="real_name_required")
    if request.method in UNSAFE_METHODS:
        check_form_csrf()
    return None


def check_form_csrf() -> None:
    """Pages change things only through their own forms: the session's CSRF token must
    come as the form field (a header, which the JSON API accepts, is not enough here)."""
    expected = current_csrf()
    given = request.form.get("csrf_token", "")
    if not expected or not hmac.compare_digest(expected, given):
        raise errors.Forbidden("missing or wrong CSRF token", code="csrf_failed")


def error_page(e: errors.Error) -> BaseResponse:
    if isinstance(e, errors.AuthenticationFailed):
        return _to_login("expired" if e.code == "session_expired" else None)
    status = status_for(e)
    message = {
        "wrong_role": t("error.wrong_role"),
        "csrf_failed": t("error.csrf_failed"),
        "accept_required": t("error.accept_required"),
        "real_name_required": t("error.real_name_required"),
        "unknown_action": t("error.unknown_action"),
    }.get(e.code)
    if message is None:
        if status == 404:
            message = t("error.not_found")
        elif status == 400:
            message = t("error.invalid", message=errors.bounded(e.message, MESSAGE_MAX))
        elif status == 409:
            message = t("error.conflict")
        elif status == 503:
            message = t("error.unavailable")
        else:
            message = t("error.forbidden")
    log.info("page_refused", code=e.code, status=status, request_id=g.get("request_id"))
    back = _local_path(request.referrer and _path_of(request.referrer)) or url_for("web.index")
    return render(
        "web/error.html",
        title_key="title.error",
        status=status if status >= 400 else 500,
        message=message,
        code=e.code,
        back=back,
        names=Names(services().settings, page_lang()),
    )


def _path_of(url: str) -> str:
    host = request.host_url.rstrip("/")
    return url[len(host) :] if url.startswith(host) else ""


def install(role_bp: Blueprint, role: str) -> None:
    """Wire a role's blueprint: the guard, the language cookie and HTML errors."""

    @role_bp.before_request
    def _admit() -> BaseResponse | None:
        return guard(role)

    role_bp.after_request(remember_lang)
    role_bp.register_error_handler(errors.Error, error_page)


def form_error(e: errors.Error) -> str:
    """A readable sentence for an error shown inside a form."""
    if isinstance(e, errors.Conflict):
        return t("error.conflict") + f" ({errors.bounded(e.message, MESSAGE_MAX)})"
    return t("error.invalid", message=errors.bounded(e.message, MESSAGE_MAX))


# Sign-in, sign-out, home --------------------------------------------------------------
bp.after_request(remember_lang)
bp.register_error_handler(errors.Error, error_page)


@bp.get("/")
def index() -> BaseResponse:
    page_lang()
    try:
        principal = current_principal()
    except errors.AuthenticationFailed:
        return redirect(url_for("web.login"))
    home = home_url(principal.kind, real_name=principal.real_name, staff=principal.staff)
    if home is None:
        raise errors.Forbidden("institutions use the JSON API", code="wrong_role")
    return redirect(home)


def _login_page(error: str = "", login: str = "", status: int = 200) -> Response:
    token = session.get("login_csrf")
    if not token:
        token = secrets.token_urlsafe(24)
        session["login_csrf"] = token
    if request.args.get("reason") == "expired" and not error:
        notify("notice.session_expired", "info")
    return render(
        "web/login.html",
        title_key="title.login",
        status=status,
        login_csrf=token,
        next=_local_path(request.values.get("next")),
        error=error,
        login=login,
        names=Names(services().settings, page_lang()),
    )


@bp.get("/login")
def login() -> Response:
    page_lang()
    return _login_page()


@bp.post("/login")
def login_submit() -> BaseResponse:
    page_lang()
    expected = session.get("login_csrf")
    given = request.form.get("csrf_token", "")
    login_name = request.form.get("login", "").strip()
    if not expected or not hmac.compare_digest(str(expected), given):
        session.pop("login_csrf", None)
        return _login_page(t("login.form_expired"), login_name, 400)
    try:
        user = authenticate_person(login_name, request.form.get("password", ""))
    except errors.RateLimited as e:  # throttled failures, or the address's per-minute limit
        wait = int(e.details.get("retry_after", 60))
        resp = _login_page(t("login.throttled", seconds=wait), login_name, 429)
        resp.headers["Retry-After"] = str(wait)
        return resp
    except errors.AuthenticationFailed:
        return _login_page(t("login.bad_credentials"), login_name, 401)
    start_session(user)
    log.info("page_signed_in", role=user.role)
    target = _local_path(request.form.get("next"))
    return redirect(target or home_url(user.role, real_name=user.real_name) or "/")


@bp.post("/logout")
def logout() -> BaseResponse:
    page_lang()
    try:
        current_principal()
    except errors.AuthenticationFailed:
        pass  # no live session: nothing to end but the cookie
    else:
        check_form_csrf()
    end_session()
    notify("notice.signed_out")
    return redirect(url_for("web.login"))


# Audit entries for pages --------------------------------------------------------------
def audit_rows(
    kind: str, viewer_id: str, *, cap: int, department: str | None = None
) -> tuple[list[AccessRow], bool]:
    """The newest ``cap`` audit entries visible to ``kind``/``viewer_id``, newest first,
    and whether older ones were left out. With ``department``, each entry shows only
    that department's part (``views.access_row``)."""
    from audit.service import Viewer as AuditViewer

    svc = services()
    viewer = AuditViewer(kind, viewer_id)
    rows: list[AccessRow] = []
    before: int | None = 2**63 - 1
    while before is not None and len(rows) <= cap:  # one more than cap: any older?
        page, before = svc.audit.entries(viewer, -1, 1000, before=before)
        rows.extend(access_row(e.index, e.entry, svc.settings, department) for e in page)
    return rows[:cap], len(rows) > cap
