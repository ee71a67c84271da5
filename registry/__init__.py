"""The registry: who may use the gateway. Institutions (with the public JWK they sign
client assertions with), departments, and the people who sign in to the web pages.

Invariants:
- an institution's JWK is public only (Ed25519 ``OKP`` or ``EC`` P-256, no private
  member); ids are lowercase identifiers; a suspended institution or department keeps
  its rows (有进有出: it is refused, not forgotten);
- passwords are stored as Argon2id hashes only; ``authenticate`` costs the same whether
  the login exists or not;
- a disabled user, or a user of a suspended department or institution, cannot sign
  in, and their open sessions are refused from their next request
  (``registry.sessions``);
- a USCC has at most one administrator account (``enterprise_admins``: its primary
  key); the administrator invites colleagues with single-use, expiring tokens kept only
  as SHA-256 hashes; an account's real name (``users.real_name_at``) is set only by a
  matching registration record (sign-up, bounded retries), by the operator's offline
  check (``add_user``), or by a real-named administrator's invitation;
- enterprise counts for statistics are computed from these rows, never kept.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from common import uscc as uscc_rules
from common.db import write_connection
from common.errors import Conflict, Forbidden, InvalidInput, NotFound, shown
from common.webhook_address import WebhookPolicy
from registry.store import (
    departments,
    enterprise_admins,
    institutions,
    invitations,
    person_sessions,
    used_assertions,
    users,
)

# ``institution``: staff of a bank's console (``users.institution_id``); not the OAuth
# client, which is the institution itself.
ROLES = ("enterprise", "department", "operator", "institution")
_ID = re.compile(r"^[a-z][a-z0-9_]{1,47}$")
# Institution ids are OAuth client ids, which commonly carry hyphens (``bank-a``).
INSTITUTION_ID = re.compile(r"^[a-z][a-z0-9_-]{1,47}$")
_LOGIN = re.compile(r"^[A-Za-z0-9_.@-]{3,100}$")
# Argon2id at the OWASP Password Storage Cheat Sheet's first setting (m = 19 MiB,
# t = 2, p = 1): about 20 ms a hash on one core, so sign-up keeps ≥ 20/s per core
# (``python -m bench signup``). Hashes made with other costs still verify (each hash
# names its parameters) and are upgraded at the next sign-in.
_hasher = PasswordHasher(time_cost=2, memory_cost=19_456, parallelism=1)
_dummy_hashes: dict[int, str] = {}


def _dummy_hash() -> str:
    """A hash of nobody's password at the current hasher's cost, made on first use (not
    at import: every CLI command imports the registry)."""
    key = id(_hasher)
    found = _dummy_hashes.get(key)
    if found is None:
        found = _dummy_hashes[key] = _hasher.hash("not a password of anybody")
    return found


class InvalidRegistration(InvalidInput):
    code = "invalid_registration"


class AlreadyRegistered(Conflict):
    code = "already_registered"


class UnknownParty(NotFound):
    code = "not_found"


class LoginTaken(Conflict):
    code = "login_taken"


class RealNameRequired(Forbidden):
    code = "real_name_required"


class NotAdministrator(Forbidden):
    code = "not_administrator"


class RealNameAttemptsExhausted(Forbidden):
    code = "real_name_attempts_exhausted"


class InvitationNotFound(NotFound):
    code = "invitation_not_found"


class InvitationUnusable(Conflict):
    """Used already, or expired (``reason`` says which)."""

    code = "invitation_unusable"


@dataclass(frozen=True)
class Institution:
    id: str
    name: str
    jwk: dict[str, Any]
    status: str
    webhook_url: str | None
    created_at: int
    status_changed_at: int


@dataclass(frozen=True)
class Department:
    id: str
    name: str
    status: str
    created_at: int


@dataclass(frozen=True)
class User:
    login: str
    role: str
    uscc: str | None
    department_id: str | None
    disabled: bool
    institution_id: str | None = None
    real_name_at: int | None = None  # None: real name not verified

    @property
    def real_name(self) -> bool:
        return self.real_name_at is not None


@dataclass(frozen=True)
class Invitation:
    uscc: str
    invited_by: str
    created_at: int
    expires_at: int
    used_at: int | None
    used_by: str | None


def validate_public_jwk(jwk: Any) -> dict[str, Any]:
    """An institution's public key for ``private_key_jwt``: Ed25519 or P-256, public."""
    if not isinstance(jwk, dict):
        raise InvalidRegistration("the JWK must be a JSON object")
    if "d" in jwk:
        raise InvalidRegistration("the JWK contains a private key; register the public key")
    kty, crv = jwk.get("kty"), jwk.get("crv")
    if kty == "OKP" and crv == "Ed25519" and isinstance(jwk.get("x"), str):
        return {"kty": kty, "crv": crv, "x": jwk["x"]}
    if (
        kty == "EC"
        and crv == "P-256"
        and isinstance(jwk.get("x"), str)
        and isinstance(jwk.get("y"), str)
    ):
        return {"kty": kty, "crv": crv, "x": jwk["x"], "y": jwk["y"]}
    raise InvalidRegistration("the JWK must be an Ed25519 (OKP) or P-256 (EC) public key")


class Registry:
    def __init__(
        self,
        engine: Engine,
        clock: Callable[[], float] = time.time,
        webhooks: WebhookPolicy | None = None,
    ) -> None:
        self.engine = engine
        self.clock = clock
        # Webhook URLs: public https addresses only unless the gateway's settings say
        # otherwise (``common.webhook_address.policy_for``).
        self.webhooks = webhooks or WebhookPolicy()

    def _validate_url(self, url: str | None) -> str | None:
        if url is None:
            return None
        try:
            return self.webhooks.check_registration(url)
        except InvalidInput as e:
            raise InvalidRegistration(e.message, code=e.code, field="webhook_url") from e

    def _now(self) -> int:
        return int(self.clock())

    # Institutions -----------------------------------------------------------------
    def add_institution(
        self, institution_id: str, *, name: str, jwk: Any, webhook_url: str | None = None
    ) -> Institution:
        if not INSTITUTION_ID.match(institution_id):
            raise InvalidRegistration(
                "institution ids are 2–48 lowercase letters, digits, _ and -, starting with "
                "a letter",
                field="id",
            )
        if not name.strip():
            raise InvalidRegistration("the name must not be empty", field="name")
        key = validate_public_jwk(jwk)
        now = self._now()
        try:
            with write_connection(self.engine) as c:
                c.execute(
                    institutions.insert().values(
                        id=institution_id,
                        name=name.strip(),
                        jwk=json.dumps(key),
                        status="active",
                        webhook_url=self._validate_url(webhook_url),
                        created_at=now,
                        status_changed_at=now,
                    )
                )
        except IntegrityError as e:
            raise AlreadyRegistered(f"institution {shown(institution_id)} exists") from e
        return self.institution(institution_id)

    def vouched_institution(self, institution_id: str, *, name: str, jwk: Any) -> None:
        """Record an institution a peer node vouches for (``node:<node>/<id>``, issue 18)
        as active unless it is known already (a suspended one stays suspended). ``jwk``
        is the vouching node's key: that node may act for it anyway (docs/network.md)."""
        if self.client(institution_id) is not None:
            return
        now = self._now()
        try:
            with write_connection(self.engine) as c:
                c.execute(
                    institutions.insert().values(
                        id=institution_id,
                        name=name[:200],
                        jwk=json.dumps(jwk),
                        status="active",
                        webhook_url=None,
                        created_at=now,
                        status_changed_at=now,
                    )
                )
        except IntegrityError:
            pass  # recorded by a concurrent relay

    def institution(self, institution_id: str) -> Institution:
        with self.engine.connect() as c:
            row = c.execute(
                institutions.select().where(institutions.c.id == institution_id)
            ).first()
        if row is None:
            raise UnknownParty(f"no institution {shown(institution_id)}")
        return _institution(row._mapping)

    def client(self, institution_id: str) -> Institution | None:
        """The institution as an OAuth client (None when unknown)."""
        with self.engine.connect() as c:
            row = c.execute(
                institutions.select().where(institutions.c.id == institution_id)
            ).first()
        return None if row is None else _institution(row._mapping)

    def use_assertion(self, key: str, expires_at: int, *, durable: bool = True) -> bool:
        """Record a client assertion (``client:jti``) as used until it expires; False
        when it was used before (a replay). Assertions expired an hour ago are forgotten.
        ``durable=False`` (node assertions, which live at most minutes and are bound to
        one body, issue 18): the commit does not wait for the disk, so a power loss may
        forget the last ones; a restart outlasts the assertions it could forget."""
        sqlite = self.engine.dialect.name == "sqlite"
        try:
            with self.engine.connect() as c:
                raw: Any = c.connection.dbapi_connection  # the pragma outside any transaction
                if not durable and sqlite:
                    raw.execute("PRAGMA synchronous=NORMAL")
                try:
                    with c.begin():
                        if not durable and not sqlite:
                            c.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")
                        c.execute(
                            used_assertions.delete().where(
                                used_assertions.c.expires_at < self._now() - 3600
                            )
                        )
                        c.execute(
                            used_assertions.insert().values(jti=key[:200], expires_at=expires_at)
                        )
                finally:
                    if not durable and sqlite:
                        raw.execute("PRAGMA synchronous=FULL")
        except IntegrityError:
            return False
        return True

    def enterprise_usccs(self) -> list[str]:
        """The USCCs of the enterprises that have a sign-in account."""
        with self.engine.connect() as c:
            found = c.execute(
                sa.select(users.c.uscc).where(users.c.role == "enterprise").distinct()
            ).scalars()
            return [str(u) for u in found if u]

    def institutions(self) -> list[Institution]:
        with self.engine.connect() as c:
            rows = c.execute(institutions.select().order_by(institutions.c.id))
            return [_institution(r._mapping) for r in rows]

    def suspend_institution(self, institution_id: str) -> Institution:
        self._set_status(institutions, institution_id, "suspended", "institution")
        return self.institution(institution_id)

    def resume_institution(self, institution_id: str) -> Institution:
        self._set_status(institutions, institution_id, "active", "institution")
        return self.institution(institution_id)

    def set_webhook(self, institution_id: str, url: str | None) -> Institution:
        with write_connection(self.engine) as c:
            c.execute(
                institutions.update()
                .where(institutions.c.id == institution_id)
                .values(webhook_url=self._validate_url(url))
            )
        return self.institution(institution_id)

    def _set_status(self, table: sa.Table, party_id: str, status: str, kind: str) -> None:
        with write_connection(self.engine) as c:
            done = c.execute(
                table.update()
                .where(table.c.id == party_id)
                .values(status=status, status_changed_at=self._now())
            )
        if done.rowcount != 1:
            raise UnknownParty(f"no {kind} {shown(party_id)}")

    # Departments ------------------------------------------------------------------
    def add_department(self, department_id: str, *, name: str) -> Department:
        if not _ID.match(department_id):
            raise InvalidRegistration(
                "department ids are 2–48 lowercase letters, digits and _", field="id"
            )
        now = self._now()
        try:
            with write_connection(self.engine) as c:
                c.execute(
                    departments.insert().values(
                        id=department_id,
                        name=name.strip() or department_id,
                        status="active",
                        created_at=now,
                        status_changed_at=now,
                    )
                )
        except IntegrityError as e:
            raise AlreadyRegistered(f"department {shown(department_id)} exists") from e
        return self.department(department_id)

    def get_department(self, department_id: str) -> Department | None:
        with self.engine.connect() as c:
            row = c.execute(departments.select().where(departments.c.id == department_id)).first()
        if row is None:
            return None
        m = row._mapping
        return Department(m["id"], m["name"], m["status"], m["created_at"])

    def department(self, department_id: str) -> Department:
        found = self.get_department(department_id)
        if found is None:
            raise UnknownParty(f"no department {shown(department_id)}")
        return found

    def departments(self) -> list[Department]:
        with self.engine.connect() as c:
            rows = c.execute(departments.select().order_by(departments.c.id))
            return [Department(r.id, r.name, r.status, r.created_at) for r in rows]

    def suspend_department(self, department_id: str) -> Department:
        self._set_status(departments, department_id, "suspended", "department")
        return self.department(department_id)

    def resume_department(self, department_id: str) -> Department:
        self._set_status(departments, department_id, "active", "department")
        return self.department(department_id)

    # People -----------------------------------------------------------------------
    def _check_credentials(self, login: str, password: str) -> None:
        if not _LOGIN.match(login):
            raise InvalidRegistration("logins are 3–100 letters, digits and _ . @ -", field="login")
        if len(password) < 10:
            raise InvalidRegistration("passwords have at least 10 characters", field="password")
        if len(password) > 1024:
            raise InvalidRegistration("passwords have at most 1024 characters", field="password")

    def add_user(
        self,
        *,
        login: str,
        password: str,
        role: str,
        uscc: str | None = None,
        department_id: str | None = None,
        institution_id: str | None = None,
        real_name: bool = True,
    ) -> User:
        """A person the operator creates. An enterprise account created this way is
        real-named (the operator checked the person offline) unless ``real_name`` is
        False, and becomes its USCC's administrator when the USCC has none."""
        self._check_credentials(login, password)
        if role not in ROLES:
            raise InvalidRegistration(f"role must be one of {list(ROLES)}", field="role")
        if role == "enterprise":
            if uscc is None:
                raise InvalidRegistration("an enterprise user needs --uscc", field="uscc")
            uscc_rules.validate(uscc)
            department_id = institution_id = None
        elif role == "department":
            if department_id is None:
                raise InvalidRegistration(
                    "a department user needs --department", field="department"
                )
            self.department(department_id)
            uscc = institution_id = None
        elif role == "institution":
            if institution_id is None:
                raise InvalidRegistration(
                    "an institution user needs --institution", field="institution"
                )
            self.institution(institution_id)  # UnknownParty when there is none
            uscc = department_id = None
        else:
            uscc = department_id = institution_id = None
        now = self._now()
        real_name_at = now if role == "enterprise" and real_name else None
        password_hash = _hasher.hash(password)
        try:
            with write_connection(self.engine) as c:
                c.execute(
                    users.insert().values(
                        login=login,
                        role=role,
                        password_hash=password_hash,
                        uscc=uscc,
                        department_id=department_id,
                        institution_id=institution_id,
                        created_at=now,
                        disabled=False,
                        real_name_at=real_name_at,
                    )
                )
                if role == "enterprise" and uscc is not None:
                    has_admin = c.execute(
                        sa.select(enterprise_admins.c.login).where(enterprise_admins.c.uscc == uscc)
                    ).first()
                    if has_admin is None:
                        c.execute(_admin_row(uscc, login, now, attempts=0))
        except IntegrityError as e:
            raise AlreadyRegistered(f"user {shown(login)} exists") from e
        return User(login, role, uscc, department_id, False, institution_id, real_name_at)

    def register_enterprise(
        self, *, uscc: str, login: str, password: str, real_name: bool, max_attempts: int = 5
    ) -> User:
        """An enterprise's self sign-up: the administrator account of ``uscc``, real-named
        when the gateway found the legal representative's name and id matching the
        registration record. All or nothing.

        Refused with 409 ``already_registered`` when the USCC has an administrator,
        except that a real-named sign-up displaces an administrator that never proved
        its real name (a squatter must not lock the enterprise out): that account is
        disabled and its sessions end. Such a displacement attempt is a real-name check
        of the USCC, counted against ``max_attempts`` like the administrator's own
        (else 409 versus 201 would answer unbounded guesses of the id). 409
        ``login_taken`` when the login is in use."""
        self._check_credentials(login, password)
        uscc_rules.validate(uscc)
        # The hash is made before any look-up: every outcome costs the same.
        password_hash = _hasher.hash(password)
        now = self._now()
        taken = AlreadyRegistered(
            "this enterprise already has an administrator account; ask it for an invitation",
            field="uscc",
        )
        with self.engine.connect() as c:
            current = c.execute(
                sa.select(enterprise_admins.c.login, users.c.real_name_at)
                .select_from(
                    enterprise_admins.join(users, users.c.login == enterprise_admins.c.login)
                )
                .where(enterprise_admins.c.uscc == uscc)
            ).first()
        if current is not None:
            if current.real_name_at is not None:
                raise taken
            with write_connection(self.engine) as c:  # counted whatever the outcome
                counted = c.execute(
                    enterprise_admins.update()
                    .where(
                        enterprise_admins.c.uscc == uscc,
                        enterprise_admins.c.login == current.login,
                        enterprise_admins.c.real_name_attempts < max_attempts,
                    )
                    .values(
                        real_name_attempts=enterprise_admins.c.real_name_attempts + 1,
                        last_attempt_at=now,
                    )
                ).rowcount
            if counted != 1 or not real_name:
                raise taken
        try:
            with write_connection(self.engine) as c:
                if current is not None:
                    displaced = current.login
                    gone = c.execute(
                        enterprise_admins.delete().where(
                            enterprise_admins.c.uscc == uscc,
                            enterprise_admins.c.login == displaced,
                        )
                    ).rowcount
                    if gone != 1:  # displaced by a parallel sign-up
                        raise taken
                    c.execute(
                        users.update().where(users.c.login == displaced).values(disabled=True)
                    )
                    c.execute(person_sessions.delete().where(person_sessions.c.login == displaced))
                if c.execute(sa.select(users.c.login).where(users.c.login == login)).first():
                    raise LoginTaken("this login is in use; choose another", field="login")
                c.execute(
                    _enterprise_user_row(
                        login, password_hash, uscc, now, real_name_at=now if real_name else None
                    )
                )
                c.execute(_admin_row(uscc, login, now, attempts=1, last=now))
        except IntegrityError as e:  # a sign-up racing this one won
            raise AlreadyRegistered(
                "this enterprise or login was registered just now", field="uscc"
            ) from e
        return User(login, "enterprise", uscc, None, False, None, now if real_name else None)

    def administrator(self, uscc: str) -> str | None:
        """The login of the USCC's administrator account, if any."""
        with self.engine.connect() as c:
            found = c.execute(
                sa.select(enterprise_admins.c.login).where(enterprise_admins.c.uscc == uscc)
            ).scalar()
        return None if found is None else str(found)

    def real_name_attempts(self, login: str) -> int:
        """Real-name checks made for the administrator account ``login`` (0 otherwise)."""
        with self.engine.connect() as c:
            found = c.execute(
                sa.select(enterprise_admins.c.real_name_attempts).where(
                    enterprise_admins.c.login == login
                )
            ).scalar()
        return int(found or 0)

    def real_name_attempt(self, login: str, *, matched: bool, max_attempts: int) -> User:
        """Count one real-name check of the administrator ``login`` (before its answer
        is served) and, when ``matched``, record the real name now. Refused once
        ``max_attempts`` checks were made: each check answers whether a guessed id is
        the legal representative's."""
        now = self._now()
        with write_connection(self.engine) as c:
            row = c.execute(sa.select(users.c.real_name_at).where(users.c.login == login)).first()
            if row is None:
                raise UnknownParty("no such user")
            if row.real_name_at is not None:
                return self.user(login)
            done = c.execute(
                enterprise_admins.update()
                .where(
                    enterprise_admins.c.login == login,
                    enterprise_admins.c.real_name_attempts < max_attempts,
                )
                .values(
                    real_name_attempts=enterprise_admins.c.real_name_attempts + 1,
                    last_attempt_at=now,
                )
            )
            if done.rowcount != 1:
                is_admin = c.execute(
                    sa.select(enterprise_admins.c.uscc).where(enterprise_admins.c.login == login)
                ).first()
                if is_admin is None:
                    raise NotAdministrator(
                        "only the enterprise's administrator verifies its real name"
                    )
                raise RealNameAttemptsExhausted(
                    f"the real name was checked {max_attempts} times without a match; the "
                    "platform operator can verify it offline"
                )
            if matched:
                c.execute(users.update().where(users.c.login == login).values(real_name_at=now))
        return self.user(login)

    def verify_real_name_offline(self, login: str) -> User:
        """The operator checked the legal representative in person (or the attempts ran
        out and were followed up offline): the enterprise account ``login`` is
        real-named from now."""
        with write_connection(self.engine) as c:
            done = c.execute(
                users.update()
                .where(users.c.login == login, users.c.role == "enterprise")
                .values(real_name_at=sa.func.coalesce(users.c.real_name_at, self._now()))
            )
        if done.rowcount != 1:
            raise UnknownParty("no such enterprise account")
        return self.user(login)

    # Invitations --------------------------------------------------------------------
    def invite(self, admin_login: str, *, valid_seconds: int) -> tuple[str, Invitation]:
        """A single-use invitation to ``admin_login``'s enterprise: the token for the
        link (shown once, stored only as its SHA-256) and the invitation."""
        admin = self.user(admin_login)
        if admin.role != "enterprise" or admin.uscc is None:
            raise NotAdministrator("only an enterprise's administrator invites")
        if self.administrator(admin.uscc) != admin_login:
            raise NotAdministrator("only the enterprise's administrator invites colleagues")
        if not admin.real_name:
            raise RealNameRequired("verify the enterprise's real name before inviting")
        token = secrets.token_urlsafe(32)
        now = self._now()
        found = Invitation(admin.uscc, admin_login, now, now + valid_seconds, None, None)
        with write_connection(self.engine) as c:
            c.execute(
                invitations.insert().values(
                    token_hash=_token_hash(token),
                    uscc=found.uscc,
                    invited_by=admin_login,
                    created_at=now,
                    expires_at=found.expires_at,
                )
            )
        return token, found

    def invitation(self, token: str) -> Invitation:
        """The invitation ``token`` names (used or expired ones too)."""
        with self.engine.connect() as c:
            row = c.execute(
                invitations.select().where(invitations.c.token_hash == _token_hash(token))
            ).first()
        if row is None:
            raise InvitationNotFound("no such invitation")
        return _invitation(row._mapping)

    def invitations_of(self, uscc: str) -> list[Invitation]:
        with self.engine.connect() as c:
            rows = c.execute(
                invitations.select()
                .where(invitations.c.uscc == uscc)
                .order_by(invitations.c.created_at.desc())
            )
            return [_invitation(r._mapping) for r in rows]

    def accept_invitation(self, token: str, *, login: str, password: str) -> User:
        """A colleague's account at the invitation's enterprise; the invitation is used
        up in the same transaction (all or nothing). The colleague is real-named: the
        real-named administrator vouched for them."""
        self._check_credentials(login, password)
        password_hash = _hasher.hash(password)
        now = self._now()
        h = _token_hash(token)
        try:
            with write_connection(self.engine) as c:
                row = c.execute(invitations.select().where(invitations.c.token_hash == h)).first()
                if row is None:
                    raise InvitationNotFound("no such invitation")
                inv = _invitation(row._mapping)
                if inv.used_at is not None:
                    raise InvitationUnusable("this invitation was used already", reason="used")
                if inv.expires_at <= now:
                    raise InvitationUnusable("this invitation has expired", reason="expired")
                admin = c.execute(
                    sa.select(enterprise_admins.c.login).where(enterprise_admins.c.uscc == inv.uscc)
                ).scalar()
                if admin != inv.invited_by:
                    raise InvitationUnusable(
                        "the person who invited is no longer the administrator",
                        reason="revoked",
                    )
                if c.execute(sa.select(users.c.login).where(users.c.login == login)).first():
                    raise LoginTaken("this login is in use; choose another", field="login")
                done = c.execute(
                    invitations.update()
                    .where(invitations.c.token_hash == h, invitations.c.used_at.is_(None))
                    .values(used_at=now, used_by=login)
                )
                if done.rowcount != 1:  # accepted by a parallel request
                    raise InvitationUnusable("this invitation was used already", reason="used")
                c.execute(
                    _enterprise_user_row(login, password_hash, inv.uscc, now, real_name_at=now)
                )
        except IntegrityError as e:
            raise LoginTaken("this login is in use; choose another", field="login") from e
        return User(login, "enterprise", inv.uscc, None, False, None, now)

    def user(self, login: str) -> User:
        with self.engine.connect() as c:
            row = c.execute(users.select().where(users.c.login == login)).first()
        if row is None:
            raise UnknownParty(f"no user {shown(login)}")
        return _user(row._mapping)

    def disable_user(self, login: str) -> User:
        """Refuse the user from now on: sign-in, and every open session (ended here, and
        refused on its next request anyway)."""
        return self._set_disabled(login, True)

    def enable_user(self, login: str) -> User:
        """Let a disabled user sign in again (old sessions stay ended)."""
        return self._set_disabled(login, False)

    def _set_disabled(self, login: str, disabled: bool) -> User:
        with write_connection(self.engine) as c:
            done = c.execute(users.update().where(users.c.login == login).values(disabled=disabled))
            if disabled:
                c.execute(person_sessions.delete().where(person_sessions.c.login == login))
        if done.rowcount != 1:
            raise UnknownParty(f"no user {shown(login)}")
        return self.user(login)

    def authenticate(self, login: str, password: str) -> User | None:
        """The user when the password matches and the account is usable, else None."""
        with self.engine.connect() as c:
            row = c.execute(users.select().where(users.c.login == login)).first()
        stored = row._mapping["password_hash"] if row is not None else _dummy_hash()
        try:
            _hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return None
        if row is None or row._mapping["disabled"]:
            return None
        m = row._mapping
        if m["role"] == "department":
            dept = self.get_department(m["department_id"])
            if dept is None or dept.status != "active":
                return None
        if m["role"] == "institution":
            inst = self.client(m["institution_id"] or "")
            if inst is None or inst.status != "active":
                return None
        if _hasher.check_needs_rehash(stored):
            with write_connection(self.engine) as c:  # a hash of an older cost, upgraded
                c.execute(
                    users.update()
                    .where(users.c.login == login)
                    .values(password_hash=_hasher.hash(password))
                )
        return _user(m)


def _enterprise_user_row(
    login: str, password_hash: str, uscc: str, now: int, *, real_name_at: int | None
) -> Any:
    """A person's account at an enterprise (self sign-up or invitation)."""
    return users.insert().values(
        login=login,
        role="enterprise",
        password_hash=password_hash,
        uscc=uscc,
        department_id=None,
        institution_id=None,
        created_at=now,
        disabled=False,
        real_name_at=real_name_at,
    )


def _admin_row(uscc: str, login: str, now: int, *, attempts: int, last: int | None = None) -> Any:
    return enterprise_admins.insert().values(
        uscc=uscc, login=login, created_at=now, real_name_attempts=attempts, last_attempt_at=last
    )


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _invitation(m: Any) -> Invitation:
    return Invitation(
        uscc=m["uscc"],
        invited_by=m["invited_by"],
        created_at=m["created_at"],
        expires_at=m["expires_at"],
        used_at=m["used_at"],
        used_by=m["used_by"],
    )


def _user(m: Any) -> User:
    return User(
        m["login"],
        m["role"],
        m["uscc"],
        m["department_id"],
        bool(m["disabled"]),
        m["institution_id"],
        m["real_name_at"],
    )


def _institution(m: Any) -> Institution:
    return Institution(
        id=m["id"],
        name=m["name"],
        jwk=json.loads(m["jwk"]),
        status=m["status"],
        webhook_url=m["webhook_url"],
        created_at=m["created_at"],
        status_changed_at=m["status_changed_at"],
    )


__all__ = [
    "ROLES",
    "AlreadyRegistered",
    "Department",
    "Institution",
    "InvalidRegistration",
    "Invitation",
    "LoginTaken",
    "NotAdministrator",
    "RealNameRequired",
    "Registry",
    "User",
    "validate_public_jwk",
]
