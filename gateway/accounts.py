"""Enterprise sign-up and real name, composed from the registry (accounts), the
department records (the market-regulation registration) and the key store (the
identity key). Shared by the JSON API (``gateway.api.accounts``) and the pages
(``gateway.web.accounts``).

Invariants:
- the legal representative's id is checked for shape (GB 11643-1999), hashed with
  ``records.identity.legal_rep_id_hash`` and compared with the registration's stored
  hash; neither the typed id nor its hash is stored or logged;
- every sign-up attempt counts against its client address (``accounts.sign_up_per_minute``)
  before anything else is done, and always costs one Argon2id hash;
- a sign-up's answer is 201 ``{login, real_name}`` or an error: 400 for malformed input,
  409 ``already_registered`` / ``login_taken`` (the contract's 409), 429 when the address
  is over its limit. Real-name checks are bounded per USCC (``accounts.real_name_attempts``),
  since each one answers whether a guessed id is the legal representative's.
"""

from __future__ import annotations

from common import uscc as uscc_rules
from common.errors import InvalidInput
from common.logging import get_logger
from gateway.auth import limit_address
from gateway.services import Services
from records import identity
from records import store as records
from registry import InvalidRegistration, User

log = get_logger("gateway.accounts")
MAX_NAME_CHARS = 50


def _checked_name(name: str) -> str:
    cleaned = name.strip()
    if not cleaned or len(cleaned) > MAX_NAME_CHARS:
        raise InvalidInput(
            f"legal_representative: the name as registered, 1–{MAX_NAME_CHARS} characters",
            code="invalid_registration",
            field="legal_representative",
        )
    return cleaned


def legal_rep_matches(svc: Services, uscc: str, name: str, raw_id: str) -> bool:
    """Whether ``name`` and ``raw_id`` (already validated) match the legal representative
    in the market-regulation registration record of ``uscc``."""
    recorded = records.current_values(
        svc.engine, uscc, [identity.NAME_FEATURE, identity.ID_FEATURE]
    )
    return identity.legal_rep_matches(
        svc.identity_key(),
        name=name,
        raw_id=raw_id,
        recorded_name=recorded.get(identity.NAME_FEATURE),
        recorded_id_hash=recorded.get(identity.ID_FEATURE),
    )


def sign_up(
    svc: Services,
    address: str,
    *,
    uscc: str,
    login: str,
    password: str,
    legal_representative: str,
    legal_representative_id: str,
) -> User:
    """Register an enterprise's administrator account (see the module invariants)."""
    cfg = svc.settings.config.accounts
    limit_address(svc, "sign_up", address, cfg.sign_up_per_minute)
    uscc = uscc.strip().upper()
    uscc_rules.validate(uscc)
    name = _checked_name(legal_representative)
    raw_id = identity.validate_resident_id(legal_representative_id)
    matched = legal_rep_matches(svc, uscc, name, raw_id)
    user = svc.registry.register_enterprise(
        uscc=uscc,
        login=login.strip(),
        password=password,
        real_name=matched,
        max_attempts=cfg.real_name_attempts,
    )
    log.info("enterprise_signed_up", division=uscc[2:8], real_name=user.real_name)
    return user


def verify_real_name(
    svc: Services, user: User, *, legal_representative: str, legal_representative_id: str
) -> tuple[User, int]:
    """A later real-name check by the enterprise's administrator (corrected name or id):
    the account afterwards and the checks it has left."""
    if user.role != "enterprise" or user.uscc is None:
        raise InvalidRegistration("only an enterprise account verifies a real name")
    name = _checked_name(legal_representative)
    raw_id = identity.validate_resident_id(legal_representative_id)
    matched = legal_rep_matches(svc, user.uscc, name, raw_id)
    cfg = svc.settings.config.accounts
    after = svc.registry.real_name_attempt(
        user.login, matched=matched, max_attempts=cfg.real_name_attempts
    )
    log.info("real_name_checked", division=user.uscc[2:8], real_name=after.real_name)
    return after, attempts_left(svc, after)


def attempts_left(svc: Services, user: User) -> int:
    used = svc.registry.real_name_attempts(user.login)
    return max(svc.settings.config.accounts.real_name_attempts - used, 0)


def invitation_url(svc: Services, token: str) -> str:
    return f"{svc.issuer}/invite/{token}"
