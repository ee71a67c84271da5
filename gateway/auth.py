"""Who is calling: institutions by OAuth bearer token, people by session cookie.

Invariants:
- an access token is an EdDSA JWT signed by a published *tokens* key, with ``aud`` =
  this gateway's issuer, ``sub`` = the institution's client id, within its lifetime;
- a suspended institution is refused every call (checked against the store on each
  request, no cache);
- a session expires ``tokens.session_seconds`` after sign-in; a state-changing call
  authenticated by the session cookie must carry the session's CSRF token (header
  ``X-CSRF-Token`` or form field ``csrf_token``).
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
from flask import current_app, g, request, session

from common.errors import AuthenticationFailed, Forbidden
from gateway.caches import VerifiedToken, VerifiedTokens
from gateway.services import Services, services

F = TypeVar("F", bound=Callable[..., Any])
KINDS = ("institution", "enterprise", "department", "operator")
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True)
class Principal:
    kind: str  # one of KINDS
    id: str  # client id, USCC, department id, or operator login
    login: str | None = None
    uscc: str | None = None
    department: str | None = None


class InstitutionSuspended(Forbidden):
    code = "institution_suspended"


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
    token = svc.keys.sign_jwt("tokens", claims, {"typ": "at+jwt"})
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
    from gateway.metrics import limit

    limit(current_app, client_id)
    return Principal(kind="institution", id=client_id)


def _verify_access_token(svc: Services, token: str, cache: VerifiedTokens) -> str:
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as e:
        raise AuthenticationFailed("malformed access token", code="invalid_token") from e
    if header.get("alg") != "EdDSA" or not isinstance(header.get("kid"), str):
        raise AuthenticationFailed("access tokens are EdDSA JWTs with a kid", code="invalid_token")
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
    role = session.get("role")
    if role is None:
        return None
    ttl = services().settings.config.tokens.session_seconds
    if time.time() - float(session.get("at", 0)) > ttl:
        session.clear()
        raise AuthenticationFailed("the session has expired; sign in again", code="session_expired")
    login = session["login"]
    if role == "enterprise":
        return Principal("enterprise", session["uscc"], login=login, uscc=session["uscc"])
    if role == "department":
        return Principal(
            "department", session["department"], login=login, department=session["department"]
        )
    if role == "operator":
        return Principal("operator", login, login=login)
    return None


def start_session(*, login: str, role: str, uscc: str | None, department: str | None) -> str:
    session.clear()
    session.permanent = True
    csrf = secrets.token_urlsafe(24)
    session.update(
        login=login, role=role, uscc=uscc, department=department, at=time.time(), csrf=csrf
    )
    return csrf


def check_csrf() -> None:
    expected = session.get("csrf")
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


def authenticated(*kinds: str) -> Callable[[F], F]:
    """Route decorator: the caller must be one of ``kinds`` (all when empty)."""
    for k in kinds:
        assert k in KINDS, k

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            principal = current_principal()
            if kinds and principal.kind not in kinds:
                raise Forbidden(f"this call is for {', '.join(kinds)}", code="wrong_role")
            return view(*args, **kwargs)

        # Who may call, as the OpenAPI document states it (``gateway.openapi``).
        wrapper.roles = kinds  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate
