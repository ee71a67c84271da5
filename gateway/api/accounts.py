"""Enterprise sign-up, real name and invitations (CONTRACT v2 "Financing":
``POST /v1/enterprises/register``; the rest are additions, docs/contract.md).

Invariants (the rules live in ``gateway.accounts`` and the registry):
- sign-up and accepting an invitation are open to anybody, limited per client address;
  neither opens a session (the person signs in as usual);
- the real-name retry is for the enterprise's administrator, signed in without a
  verified real name too (``unverified=True``); invitations are for a real-named
  administrator only.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request

from gateway import accounts
from gateway.api import schemas
from gateway.auth import authenticated, current_principal, limit_address
from gateway.contract import operation
from gateway.services import services
from registry import NotAdministrator

bp = Blueprint("accounts", __name__)


@bp.post("/v1/enterprises/register")
@operation(
    "An enterprise signs up: the administrator account of its USCC; real_name is true "
    "when the legal representative's name and id match the registration record (400 "
    "invalid_uscc / invalid_resident_id, 409 already_registered / login_taken, 429 "
    "rate_limited)",
    tag="accounts",
    body=schemas.EnterpriseRegistration,
    answer=schemas.EnterpriseRegistered,
    status=201,
)
def register(body: schemas.EnterpriseRegistration) -> tuple[dict[str, Any], int]:
    user = accounts.sign_up(
        services(),
        request.remote_addr or "",
        uscc=body.uscc,
        login=body.login,
        password=body.password,
        legal_representative=body.legal_representative,
        legal_representative_id=body.legal_representative_id,
    )
    return {"login": user.login, "real_name": user.real_name}, 201


@bp.post("/v1/enterprises/real-name")
@authenticated("enterprise", unverified=True)
@operation(
    "The enterprise's administrator checks its real name again (corrected name or id); "
    "bounded attempts (403 real_name_attempts_exhausted)",
    tag="accounts",
    body=schemas.RealNameCheck,
    answer=schemas.RealNameStatus,
)
def real_name(body: schemas.RealNameCheck) -> dict[str, Any]:
    svc = services()
    user = svc.registry.user(current_principal().login or "")
    after, left = accounts.verify_real_name(
        svc,
        user,
        legal_representative=body.legal_representative,
        legal_representative_id=body.legal_representative_id,
    )
    return {"login": after.login, "real_name": after.real_name, "attempts_left": left}


@bp.post("/v1/enterprises/invitations")
@authenticated("enterprise")
@operation(
    "The administrator invites a colleague: a single-use link that expires (403 not_administrator)",
    tag="accounts",
    answer=schemas.InvitationCreated,
    status=201,
)
def invite() -> tuple[dict[str, Any], int]:
    svc = services()
    hours = svc.settings.config.accounts.invitation_hours
    token, found = svc.registry.invite(current_principal().login or "", valid_seconds=hours * 3600)
    return {
        "token": token,
        "url": accounts.invitation_url(svc, token),
        "expires_at": found.expires_at,
    }, 201


@bp.get("/v1/enterprises/invitations")
@authenticated("enterprise")
@operation(
    "The administrator's invitations (never their tokens)",
    tag="accounts",
    answer=schemas.InvitationList,
)
def list_invitations() -> dict[str, Any]:
    svc = services()
    p = current_principal()
    if p.uscc is None or svc.registry.administrator(p.uscc) != p.login:
        raise NotAdministrator("only the enterprise's administrator sees its invitations")
    return {
        "invitations": [
            {
                "created_at": i.created_at,
                "expires_at": i.expires_at,
                "used_at": i.used_at,
                "used_by": i.used_by,
            }
            for i in svc.registry.invitations_of(p.uscc)
        ]
    }


@bp.post("/v1/enterprises/invitations/accept")
@operation(
    "A colleague accepts an invitation: an account of the same enterprise (404 "
    "invitation_not_found, 409 invitation_unusable / login_taken)",
    tag="accounts",
    body=schemas.InvitationAcceptance,
    answer=schemas.EnterpriseRegistered,
    status=201,
)
def accept(body: schemas.InvitationAcceptance) -> tuple[dict[str, Any], int]:
    svc = services()
    limit_address(
        svc, "sign_up", request.remote_addr or "", svc.settings.config.accounts.sign_up_per_minute
    )
    user = svc.registry.accept_invitation(
        body.token, login=body.login.strip(), password=body.password
    )
    return {"login": user.login, "real_name": user.real_name}, 201
