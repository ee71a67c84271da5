"""Who is calling: institutions by OAuth bearer token, people by session cookie.

Invariants:
- an access token is an EdDSA JWT signed by a published *tokens* key, with ``aud`` =
  this gateway's issuer, ``sub`` = the institution's client id, within its lifetime;
- a suspended institution is refused every call (checked against the store on each
  request, no cache);
- people's sessions are server-side (``registry.sessions``): the ``xinyi_session``
  cookie holds only a random id (HttpOnly, SameSite=Lax, Secure when ``public_url`` is
  https); each request re-reads the session with its user's and department's status,
  so sign-out, ``xinyi admin disable-user`` and a department's suspension take effect
  on the next request on every worker; a session expires ``tokens.session_seconds``
  after sign-in;
- a state-changing call authenticated by the session cookie must carry the session's
  CSRF token (header ``X-CSRF-Token`` or form field ``csrf_token``);
- sign-in (``POST /v1/session`` and the sign-in page) goes through
  ``authenticate_person``: throttled per login and per source address, failures
  logged with keyed hashes of both, never the login or the address; and every
  attempt, failed or not, counts against the address's per-minute limit
  (``accounts.sign_in_per_minute``);
- a bank's console staff (user role ``institution``) are principals of kind
  ``institution`` with ``staff`` set: refused by every route unless it declares
  ``authenticated(..., staff=True)``, so no API of the institution's OAuth client
  admits a browser session by accident;
- an enterprise account whose real name is not verified is refused by every route
  unless it declares ``unverified=True`` (403 ``real_name_required``): it has not shown
  that it is the enterprise, so it reads none of the enterprise's data and authorizes
  nothing.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any, TypeVar

import jwt
from flask import after_this_request, current_app, g, request, session
from werkzeug.wrappers import Response as BaseResponse

from common import jwt_rules
from common.errors import AuthenticationFailed, Error, Forbidden, InvalidInput
from common.logging import get_logger
from gateway.caches import VerifiedToken, VerifiedTokens
from gateway.ratelimit import RateLimiter
from gateway.services import Services, services
from registry import User
from registry.sessions import PersonSession, SignInThrottled

F = TypeVar("F", bound=Callable[..., Any])
KINDS = ("institution", "enterprise", "department", "operator")
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
SESSION_COOKIE = "xinyi_session"  # the random id of a person's server-side session
PAGE_COOKIE = "xinyi_page"  # Flask's signed cookie: page state only, never who is in
log = get_logger("gateway.auth")


@dataclass(frozen=True)
class Principal:
    kind: str  # one of KINDS
    id: str  # client id, USCC, department id, or operator login
    login: str | None = None
    uscc: str | None = None
    department: str | None = None
    institution: str | None = None
    staff: bool = False  # a person of the institution (console), not its OAuth client
    real_name: bool = True  # False: an enterprise account whose real name is unverified


class InstitutionSuspended(Forbidden):
    code = "institution_suspended"


def limit_address(svc: Services, action: str, address: str, per_minute: int) -> None:
    """Count one ``action`` (sign-in, sign-up) of a client address against its
    per-minute limit in this worker (429 ``rate_limited``)."""
    limiters: dict[str, RateLimiter] = svc.address_limiters
    limiter = limiters.get(action)
    if limiter is None:
        limiter = limiters.setdefault(action, RateLimiter(per_minute))
    limiter.hit(f"{action}:{address}")


def issue_access_token(client_id: str) -> tuple[str, int]:
    svc = services()
    ttl = svc.settings.config.tokens.access_token_seconds
    now = int(time.time())
    claims = {
        "iss": svc.issuer,
        "aud": svc.issuer,
        "sub": client_id,
        "client_id": client_id,
        "iat": now,
        "nbf": now,
        "exp": now + ttl,
        "jti": secrets.token_urlsafe(16),
    }
    token = svc.keys.sign_jwt("tokens", claims, {"typ": jwt_rules.TYP_ACCESS_TOKEN})
    return token, ttl


def _bearer_principal(token: str) -> Principal:
    """Verify an access token and look its institution's status up in the store (on
    every request, never cached).

    A token's signature, issuer and audience never change, so a token that verified
    once is remembered (bounded LRU); its time window and its key's publication are
    checked again on every request, the institution's status is read from the store."""
    svc = services()
    cache = svc.verified_tokens
    hit = cache.get(token)
    now = time.time()
    if hit is not None and svc.keys.public_key(hit.kid, "tokens") is not None:
        if now >= hit.expires:
            raise AuthenticationFailed("the access token has expired", code="token_expired")
        if now >= hit.not_before:
            return _institution_principal(svc, hit.client_id)
    client_id = _verify_access_token(svc, token, cache)
    return _institution_principal(svc, client_id)


def _institution_principal(svc: Services, client_id: str) -> Principal:
    status = svc.registry_status(client_id)
    if status is None:
        raise AuthenticationFailed("unknown institution", code="invalid_token")
    if status != "active":
        raise InstitutionSuspended("the institution is suspended")
    from gateway.ratelimit import limit

    limit(current_app, client_id)
    return Principal(kind="institution", id=client_id)


def _verify_access_token(svc: Services, token: str, cache: VerifiedTokens) -> str:
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as e:
        raise AuthenticationFailed("malformed access token", code="invalid_token") from e
    if header.get("alg") != "EdDSA" or not isinstance(header.get("kid"), str):
        raise AuthenticationFailed("access tokens are EdDSA JWTs with a kid", code="invalid_token")
    try:
        jwt_rules.require_typ(header, jwt_rules.TYP_ACCESS_TOKEN)
    except InvalidInput as e:
        raise AuthenticationFailed("not an access token", code="invalid_token") from e
    key = svc.keys.public_key(header["kid"], "tokens")
    if key is None:
        raise AuthenticationFailed("unknown token key", code="invalid_token")
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=["EdDSA"],
            audience=svc.issuer,
            issuer=svc.issuer,
            options={"require": ["exp", "sub", "aud"]},
        )
    except jwt.ExpiredSignatureError as e:
        raise AuthenticationFailed("the access token has expired", code="token_expired") from e
    except jwt.PyJWTError as e:
        raise AuthenticationFailed("invalid access token", code="invalid_token") from e
    try:
        jwt_rules.check_numeric_dates(claims, required=("exp",))
    except InvalidInput as e:
        raise AuthenticationFailed("invalid access token", code="invalid_token") from e
    client_id = str(claims["sub"])
    nbf = claims.get("nbf")
    verified = VerifiedToken(
        header["kid"],
        client_id,
        float(nbf) if isinstance(nbf, int | float) else 0.0,
        float(claims["exp"]),
    )
    cache.put(token, verified)
    return client_id


def _session_principal() -> Principal | None:
    session_id = request.cookies.get(SESSION_COOKIE)
    if not session_id:
        return None
    try:
        found = services().sessions.resume(session_id)
    except Error as e:  # expired, disabled, suspended: the session is over
        log.info("session_refused", code=e.code)
        _session_cookie(None)
        raise
    if found is None:  # ended (signed out, disabled) or never was
        _session_cookie(None)
        return None
    g.person_session = found
    login = found.login
    if found.role == "enterprise" and found.uscc:
        return Principal(
            "enterprise",
            found.uscc,
            login=login,
            uscc=found.uscc,
            real_name=found.real_name_at is not None,
        )
    if found.role == "institution" and found.institution_id:
        return Principal(
            "institution",
            found.institution_id,
            login=login,
            institution=found.institution_id,
            staff=True,
        )
    if found.role == "department" and found.department_id:
        return Principal(
            "department", found.department_id, login=login, department=found.department_id
        )
    if found.role == "operator":
        return Principal("operator", login, login=login)
    return None


def _session_cookie(session_id: str | None) -> None:
    """Set (or with None, delete) the session cookie on this request's response."""
    svc = services()
    secure = svc.settings.config.server.https
    max_age = svc.settings.config.tokens.session_seconds

    @after_this_request
    def _cookie(resp: BaseResponse) -> BaseResponse:
        if session_id is None:
            resp.delete_cookie(
                SESSION_COOKIE, path="/", secure=secure, httponly=True, samesite="Lax"
            )
        else:
            resp.set_cookie(
                SESSION_COOKIE,
                session_id,
                max_age=max_age,
                path="/",
                secure=secure,
                httponly=True,
                samesite="Lax",
            )
        return resp


def authenticate_person(login: str, password: str) -> User:
    """The person whose password this is, through the sign-in throttle; raises
    ``SignInThrottled`` (429) while a wait runs, ``bad_credentials`` (401) otherwise."""
    svc = services()
    address = request.remote_addr or ""
    limit_address(svc, "sign_in", address, svc.settings.config.accounts.sign_in_per_minute)
    keys = svc.throttle.keys(login, address)
    hashes = {"login_hash": keys.login[:16], "address_hash": keys.address[:16]}
    try:
        svc.throttle.attempt(keys)
    except SignInThrottled as e:
        log.warning("sign_in_throttled", retry_after=e.details.get("retry_after"), **hashes)
        raise
    user = svc.registry.authenticate(login, password)
    if user is None:
        log.info("sign_in_refused", **hashes)
        raise AuthenticationFailed("wrong login or password", code="bad_credentials")
    svc.throttle.succeeded(keys)
    return user


def start_session(user: User) -> str:
    """Sign ``user`` in: a new server-side session (any session this browser had is
    ended first), its id in the cookie; returns its CSRF token."""
    previous = request.cookies.get(SESSION_COOKIE)
    svc = services()
    if previous:
        svc.sessions.end(previous)
    session.pop("login_csrf", None)
    session_id, opened = svc.sessions.open(user.login)
    g.person_session = opened
    g.pop("principal", None)
    _session_cookie(session_id)
    return opened.csrf


def end_session() -> None:
    """Sign out: the session ends in the database (refused on every worker from the
    next request) and the browser forgets the cookie."""
    session_id = request.cookies.get(SESSION_COOKIE)
    if session_id:
        services().sessions.end(session_id)
    session.clear()
    g.pop("person_session", None)
    g.pop("principal", None)
    _session_cookie(None)


def current_csrf() -> str:
    """The CSRF token of the session this request authenticated with, or ""."""
    found: PersonSession | None = g.get("person_session")
    return found.csrf if found is not None else ""


def check_csrf() -> None:
    expected = current_csrf()
    given = request.headers.get("X-CSRF-Token") or request.form.get("csrf_token")
    if not expected or not given or not hmac.compare_digest(str(expected), str(given)):
        raise Forbidden("missing or wrong CSRF token", code="csrf_failed")


def current_principal() -> Principal:
    """Authenticate the request (bearer first, then session); raises when neither."""
    cached = g.get("principal")
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    auth = request.headers.get("Authorization", "")
    principal: Principal | None
    if auth:
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise AuthenticationFailed("use 'Authorization: Bearer <token>'", code="invalid_token")
        principal = _bearer_principal(token.strip())
    else:
        principal = _session_principal()
        if principal is not None and request.method in UNSAFE_METHODS:
            check_csrf()
    if principal is None:
        raise AuthenticationFailed("authentication required", code="unauthenticated")
    g.principal = principal
    return principal


def admit(principal: Principal, kinds: tuple[str, ...], *, staff: bool, unverified: bool) -> None:
    """Refuse ``principal`` unless it is one of ``kinds`` (any when empty), a console
    staff member only where ``staff``, an unverified enterprise only where
    ``unverified``."""
    if kinds and principal.kind not in kinds:
        raise Forbidden(f"this call is for {', '.join(kinds)}", code="wrong_role")
    if principal.staff and not staff:
        raise Forbidden("this call is not for an institution's console staff", code="wrong_role")
    if principal.kind == "enterprise" and not principal.real_name and not unverified:
        raise Forbidden(
            "verify the enterprise's real name first (the legal representative's name and "
            "id as registered)",
            code="real_name_required",
        )


def authenticated(*kinds: str, staff: bool = False, unverified: bool = False) -> Callable[[F], F]:
    """Route decorator: the caller must be one of ``kinds`` (all when empty); see
    :func:`admit` for ``staff`` and ``unverified``."""
    for k in kinds:
        assert k in KINDS, k

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            admit(current_principal(), kinds, staff=staff, unverified=unverified)
            return view(*args, **kwargs)

        # Who may call, as the OpenAPI document states it (``gateway.openapi``).
        wrapper.roles = kinds  # type: ignore[attr-defined]
        wrapper.staff = staff  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate
