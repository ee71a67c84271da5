"""Sign-up, invitations and the enterprise's account page (real name, colleagues).

Invariants:
- the sign-up and invitation forms are open to anybody; like the sign-in form they carry
  a pre-session CSRF token of their own, and go through the same rules as the JSON API
  (``gateway.accounts``, the registry): limits per client address, nothing stored on a
  refusal, the legal representative's id never stored, logged or echoed back;
- the account page is the one enterprise page an account without a verified real name
  is admitted to (``guard(..., unverified=True)``): there the administrator retries the
  real-name check; a real-named administrator invites colleagues there.
"""

from __future__ import annotations

import hmac
import secrets
import time

from flask import Blueprint, Response, redirect, request, session, url_for
from werkzeug.wrappers import Response as BaseResponse

from common import errors
from gateway import accounts
from gateway.auth import current_principal, limit_address
from gateway.errors import status_for
from gateway.services import services
from gateway.web.common import error_page as _error_page
from gateway.web.common import form_error, guard, notify, page_lang, remember_lang, render, t

bp = Blueprint("web_accounts", __name__)
bp.after_request(remember_lang)
bp.register_error_handler(errors.Error, _error_page)

_FORM_TOKEN = "signup_csrf"  # noqa: S105 -- a session key name, not a secret


def _form_token() -> str:
    token = session.get(_FORM_TOKEN)
    if not token:
        token = secrets.token_urlsafe(24)
        session[_FORM_TOKEN] = token
    return str(token)


def _form_token_ok() -> bool:
    expected = session.get(_FORM_TOKEN)
    given = request.form.get("csrf_token", "")
    return bool(expected) and hmac.compare_digest(str(expected), given)


def _problem(e: errors.Error) -> str:
    if e.code == "already_registered":
        return t("signup.already_registered")
    if e.code == "login_taken":
        return t("signup.login_taken")
    if isinstance(e, errors.RateLimited):
        return t("signup.rate_limited")
    if e.code == "invalid_resident_id":
        return t("signup.bad_id")
    if e.code == "invalid_uscc":
        return t("signup.bad_uscc")
    return form_error(e)


# Sign-up --------------------------------------------------------------------------------
def _signup_page(
    error: str = "", form: dict[str, str] | None = None, status: int = 200
) -> Response:
    return render(
        "web/accounts/signup.html",
        title_key="title.signup",
        status=status,
        form_csrf=_form_token(),
        error=error,
        form=form or {},
    )


@bp.get("/signup")
def signup() -> Response:
    page_lang()
    return _signup_page()


@bp.post("/signup")
def signup_submit() -> Response:
    page_lang()
    # Echoed back on an error: never the password, never the id number.
    form = {k: request.form.get(k, "").strip() for k in ("uscc", "login", "legal_representative")}
    if not _form_token_ok():
        session.pop(_FORM_TOKEN, None)
        return _signup_page(t("login.form_expired"), form, 400)
    if request.form.get("password", "") != request.form.get("password2", ""):
        return _signup_page(t("signup.password_mismatch"), form, 400)
    try:
        user = accounts.sign_up(
            services(),
            request.remote_addr or "",
            uscc=form["uscc"],
            login=form["login"],
            password=request.form.get("password", ""),
            legal_representative=form["legal_representative"],
            legal_representative_id=request.form.get("legal_representative_id", ""),
        )
    except errors.Error as e:
        if isinstance(e, errors.InvalidInput | errors.Conflict | errors.RateLimited):
            return _signup_page(_problem(e), form, status_for(e))
        raise
    session.pop(_FORM_TOKEN, None)
    return render("web/accounts/signed_up.html", title_key="title.signed_up", user=user, status=201)


# Invitations ------------------------------------------------------------------------------
def _invite_page(token: str, error: str = "", login: str = "", status: int = 200) -> Response:
    return render(
        "web/accounts/invite.html",
        title_key="title.invite",
        status=status,
        form_csrf=_form_token(),
        token=token,
        error=error,
        login=login,
    )


@bp.get("/invite/<token>")
def invite(token: str) -> Response:
    page_lang()
    found = services().registry.invitation(token)  # 404 invitation_not_found
    if found.used_at is not None or found.expires_at <= int(time.time()):
        return _invite_page(token, t("invite.unusable"), status=409)
    return _invite_page(token)


@bp.post("/invite/<token>")
def invite_submit(token: str) -> Response:
    page_lang()
    login = request.form.get("login", "").strip()
    if not _form_token_ok():
        session.pop(_FORM_TOKEN, None)
        return _invite_page(token, t("login.form_expired"), login, 400)
    if request.form.get("password", "") != request.form.get("password2", ""):
        return _invite_page(token, t("signup.password_mismatch"), login, 400)
    svc = services()
    try:
        limit_address(
            svc,
            "sign_up",
            request.remote_addr or "",
            svc.settings.config.accounts.sign_up_per_minute,
        )
        user = svc.registry.accept_invitation(
            token, login=login, password=request.form.get("password", "")
        )
    except (errors.InvalidInput, errors.Conflict, errors.RateLimited) as e:
        message = t("invite.unusable") if e.code == "invitation_unusable" else _problem(e)
        return _invite_page(token, message, login, status_for(e))
    session.pop(_FORM_TOKEN, None)
    return render("web/accounts/signed_up.html", title_key="title.signed_up", user=user, status=201)


# The enterprise's account -------------------------------------------------------------------
def _account_guard() -> BaseResponse | None:
    return guard("enterprise", unverified=True)


@bp.get("/enterprise/account")
def account() -> BaseResponse:
    refused = _account_guard()
    if refused is not None:
        return refused
    return _account_page()


def _account_page(error: str = "", new_link: str = "", status: int = 200) -> Response:
    svc = services()
    p = current_principal()
    user = svc.registry.user(p.login or "")
    is_admin = p.uscc is not None and svc.registry.administrator(p.uscc) == p.login
    return render(
        "web/accounts/account.html",
        title_key="title.account",
        status=status,
        user=user,
        is_admin=is_admin,
        attempts_left=accounts.attempts_left(svc, user) if is_admin else 0,
        invitations=svc.registry.invitations_of(p.uscc or "") if is_admin else [],
        error=error,
        new_link=new_link,
    )


@bp.post("/enterprise/account/real-name")
def account_real_name() -> BaseResponse:
    refused = _account_guard()
    if refused is not None:
        return refused
    svc = services()
    user = svc.registry.user(current_principal().login or "")
    try:
        after, _ = accounts.verify_real_name(
            svc,
            user,
            legal_representative=request.form.get("legal_representative", ""),
            legal_representative_id=request.form.get("legal_representative_id", ""),
        )
    except (errors.InvalidInput, errors.Forbidden) as e:
        return _account_page(
            _problem(e) if e.code != "real_name_attempts_exhausted" else t("account.exhausted"),
            status=status_for(e),
        )
    if after.real_name:
        notify("notice.real_name_verified")
    else:
        notify("notice.real_name_mismatch", "error")
    return redirect(url_for("web_accounts.account"))


@bp.post("/enterprise/account/invite")
def account_invite() -> BaseResponse:
    refused = _account_guard()
    if refused is not None:
        return refused
    svc = services()
    hours = svc.settings.config.accounts.invitation_hours
    token, _ = svc.registry.invite(current_principal().login or "", valid_seconds=hours * 3600)
    # Shown once, on this answer only (never stored in clear, never in a redirect URL).
    link = request.host_url.rstrip("/") + url_for("web_accounts.invite", token=token)
    return _account_page(new_link=link)
