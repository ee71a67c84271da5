"""The registry: who may use the gateway. Institutions (with the public JWK they sign
client assertions with), departments, and the people who sign in to the web pages.

Invariants:
- an institution's JWK is public only (Ed25519 ``OKP`` or ``EC`` P-256, no private
  member); ids are lowercase identifiers; a suspended institution or department keeps
  its rows (有进有出: it is refused, not forgotten);
- passwords are stored as Argon2id hashes only; ``authenticate`` costs the same whether
  the login exists or not;
- a disabled user, or a user of a suspended department, cannot sign in, and their
  open sessions are refused from their next request (``registry.sessions``).
"""

from __future__ import annotations

import json
import re
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
from common.errors import Conflict, InvalidInput, NotFound
from common.webhook_address import WebhookPolicy
from registry.store import departments, institutions, person_sessions, used_assertions, users

ROLES = ("enterprise", "department", "operator")
_ID = re.compile(r"^[a-z][a-z0-9_]{1,47}$")
# Institution ids are OAuth client ids, which commonly carry hyphens (``bank-a``).
INSTITUTION_ID = re.compile(r"^[a-z][a-z0-9_-]{1,47}$")
_LOGIN = re.compile(r"^[A-Za-z0-9_.@-]{3,100}$")
_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("not a password of anybody")


class InvalidRegistration(InvalidInput):
    code = "invalid_registration"


class AlreadyRegistered(Conflict):
    code = "already_registered"


class UnknownParty(NotFound):
    code = "not_found"


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
            with self.engine.begin() as c:
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
            raise AlreadyRegistered(f"institution {institution_id!r} exists") from e
        return self.institution(institution_id)

    def vouched_institution(self, institution_id: str, *, name: str, jwk: Any) -> None:
        """Record an institution a peer node vouches for (``node:<node>/<id>``, issue 18)
        as active unless it is known already (a suspended one stays suspended). ``jwk``
        is the vouching node's key: that node may act for it anyway (docs/network.md)."""
        if self.client(institution_id) is not None:
            return
        now = self._now()
        try:
            with self.engine.begin() as c:
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
            raise UnknownParty(f"no institution {institution_id!r}")
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
        with self.engine.begin() as c:
            c.execute(
                institutions.update()
                .where(institutions.c.id == institution_id)
                .values(webhook_url=self._validate_url(url))
            )
        return self.institution(institution_id)

    def _set_status(self, table: sa.Table, party_id: str, status: str, kind: str) -> None:
        with self.engine.begin() as c:
            done = c.execute(
                table.update()
                .where(table.c.id == party_id)
                .values(status=status, status_changed_at=self._now())
            )
        if done.rowcount != 1:
            raise UnknownParty(f"no {kind} {party_id!r}")

    # Departments ------------------------------------------------------------------
    def add_department(self, department_id: str, *, name: str) -> Department:
        if not _ID.match(department_id):
            raise InvalidRegistration(
                "department ids are 2–48 lowercase letters, digits and _", field="id"
            )
        now = self._now()
        try:
            with self.engine.begin() as c:
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
            raise AlreadyRegistered(f"department {department_id!r} exists") from e
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
            raise UnknownParty(f"no department {department_id!r}")
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
    def add_user(
        self,
        *,
        login: str,
        password: str,
        role: str,
        uscc: str | None = None,
        department_id: str | None = None,
    ) -> User:
        if not _LOGIN.match(login):
            raise InvalidRegistration("logins are 3–100 letters, digits and _ . @ -", field="login")
        if role not in ROLES:
            raise InvalidRegistration(f"role must be one of {list(ROLES)}", field="role")
        if len(password) < 10:
            raise InvalidRegistration("passwords have at least 10 characters", field="password")
        if role == "enterprise":
            if uscc is None:
                raise InvalidRegistration("an enterprise user needs --uscc", field="uscc")
            uscc_rules.validate(uscc)
            department_id = None
        elif role == "department":
            if department_id is None:
                raise InvalidRegistration(
                    "a department user needs --department", field="department"
                )
            self.department(department_id)
            uscc = None
        else:
            uscc = department_id = None
        try:
            with self.engine.begin() as c:
                c.execute(
                    users.insert().values(
                        login=login,
                        role=role,
                        password_hash=_hasher.hash(password),
                        uscc=uscc,
                        department_id=department_id,
                        created_at=self._now(),
                        disabled=False,
                    )
                )
        except IntegrityError as e:
            raise AlreadyRegistered(f"user {login!r} exists") from e
        return User(login, role, uscc, department_id, False)

    def user(self, login: str) -> User:
        with self.engine.connect() as c:
            row = c.execute(users.select().where(users.c.login == login)).first()
        if row is None:
            raise UnknownParty(f"no user {login!r}")
        m = row._mapping
        return User(m["login"], m["role"], m["uscc"], m["department_id"], bool(m["disabled"]))

    def disable_user(self, login: str) -> User:
        """Refuse the user from now on: sign-in, and every open session (ended here, and
        refused on its next request anyway)."""
        return self._set_disabled(login, True)

    def enable_user(self, login: str) -> User:
        """Let a disabled user sign in again (old sessions stay ended)."""
        return self._set_disabled(login, False)

    def _set_disabled(self, login: str, disabled: bool) -> User:
        with self.engine.begin() as c:
            done = c.execute(users.update().where(users.c.login == login).values(disabled=disabled))
            if disabled:
                c.execute(person_sessions.delete().where(person_sessions.c.login == login))
        if done.rowcount != 1:
            raise UnknownParty(f"no user {login!r}")
        return self.user(login)

    def authenticate(self, login: str, password: str) -> User | None:
        """The user when the password matches and the account is usable, else None."""
        with self.engine.connect() as c:
            row = c.execute(users.select().where(users.c.login == login)).first()
        stored = row._mapping["password_hash"] if row is not None else _DUMMY_HASH
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
        return User(m["login"], m["role"], m["uscc"], m["department_id"], bool(m["disabled"]))


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


__all__ = ["ROLES", "Department", "Institution", "Registry", "User", "validate_public_jwk"]
