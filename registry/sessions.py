"""Sessions of people (enterprise, department and operator users) and the sign-in
throttle, both kept in the database so that every worker of every host sees the same.

Invariants:
- a session is a row; the cookie holds only its random id (256 bits), and the row only
  the id's SHA-256, so a copy of the table opens no session. Ending the row ends the
  session on every worker at once (sign-out, ``xinyi admin disable-user``);
- every request re-reads the row joined with its user and the user's department: a
  session past ``expires_at`` (``tokens.session_seconds`` after sign-in), of a disabled
  user, of a suspended department or of a suspended institution (its console staff) is
  refused and ended, never served;
- sign-in attempts are counted per login and per source address *before* the password
  is checked (so parallel guesses count too); past a number of free failures each
  further one doubles the wait (``ThrottlePolicy``); while a wait runs, attempts are
  refused without checking the password. Logins and addresses are stored, and logged,
  only as keyed hashes (HMAC-SHA-256 with a server secret).
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from common.db import read_connection, write_session
from common.errors import AuthenticationFailed, Error, Forbidden, RateLimited
from registry.store import departments, institutions, person_sessions, sign_in_failures, users

# A session's last-seen time is written at most this often (seconds): not a write on
# every request.
LAST_SEEN_GRANULARITY = 60


class SessionExpired(AuthenticationFailed):
    code = "session_expired"


class AccountDisabled(AuthenticationFailed):
    code = "account_disabled"


class DepartmentSuspended(Forbidden):
    """403, as for every other call of a suspended department (有进有出)."""

    code = "department_suspended"


class InstitutionSuspended(Forbidden):
    """403, as for every call of the suspended institution itself."""

    code = "institution_suspended"


class SignInThrottled(RateLimited):
    """Too many failed sign-ins for this login or from this address; ``retry_after``
    (seconds) says when to try again."""

    code = "sign_in_throttled"


@dataclass(frozen=True)
class PersonSession:
    """A live session as the gateway reads it on each request."""

    login: str
    role: str
    uscc: str | None
    department_id: str | None
    csrf: str
    created_at: int
    expires_at: int
    institution_id: str | None = None  # role ``institution``: the bank's console staff
    real_name_at: int | None = None  # role ``enterprise``: None until verified


def _id_hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8")).hexdigest()


class Sessions:
    """Open, resume and end sessions of people."""

    def __init__(
        self, engine: Engine, *, lifetime_seconds: int, clock: Callable[[], float] = time.time
    ) -> None:
        self.engine = engine
        self.lifetime_seconds = lifetime_seconds
        self.clock = clock

    def open(self, login: str) -> tuple[str, PersonSession]:
        """A new session of ``login`` (who has just proved their password): the id for
        the cookie, and the session. Expired sessions of anybody are dropped here."""
        now = int(self.clock())
        session_id = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(24)
        with write_session(self.engine) as s:
            s.execute(person_sessions.delete().where(person_sessions.c.expires_at <= now))
            s.execute(
                person_sessions.insert().values(
                    id_hash=_id_hash(session_id),
                    login=login,
                    csrf=csrf,
                    created_at=now,
                    last_seen_at=now,
                    expires_at=now + self.lifetime_seconds,
                )
            )
        resumed = self.resume(session_id)
        assert resumed is not None  # just written
        return session_id, resumed

    def resume(self, session_id: str) -> PersonSession | None:
        """The live session ``session_id`` names; None when there is none (never was,
        or ended). Raises, and ends it, when it expired, its user is disabled or its
        department suspended."""
        now = int(self.clock())
        h = _id_hash(session_id)
        query = (
            sa.select(
                person_sessions.c.csrf,
                person_sessions.c.created_at,
                person_sessions.c.last_seen_at,
                person_sessions.c.expires_at,
                users.c.login,
                users.c.role,
                users.c.uscc,
                users.c.department_id,
                users.c.disabled,
                users.c.institution_id,
                users.c.real_name_at,
                departments.c.status.label("department_status"),
                institutions.c.status.label("institution_status"),
            )
            .select_from(
                person_sessions.join(users, users.c.login == person_sessions.c.login)
                .outerjoin(departments, departments.c.id == users.c.department_id)
                .outerjoin(institutions, institutions.c.id == users.c.institution_id)
            )
            .where(person_sessions.c.id_hash == h)
        )
        with read_connection(self.engine) as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        m = row._mapping
        refusal: Error | None = None
        if now >= m["expires_at"]:
            refusal = SessionExpired("the session has expired; sign in again")
        elif m["disabled"]:
            refusal = AccountDisabled("this account is disabled")
        elif m["role"] == "department" and m["department_status"] != "active":
            refusal = DepartmentSuspended("this person's department is suspended")
        elif m["role"] == "institution" and m["institution_status"] != "active":
            refusal = InstitutionSuspended("this person's institution is suspended")
        if refusal is not None:
            self._delete(h)
            raise refusal
        if now - m["last_seen_at"] >= LAST_SEEN_GRANULARITY:
            with self.engine.begin() as conn:
                conn.execute(
                    person_sessions.update()
                    .where(person_sessions.c.id_hash == h)
                    .values(last_seen_at=now)
                )
        return PersonSession(
            login=m["login"],
            role=m["role"],
            uscc=m["uscc"],
            department_id=m["department_id"],
            csrf=m["csrf"],
            created_at=m["created_at"],
            expires_at=m["expires_at"],
            institution_id=m["institution_id"],
            real_name_at=m["real_name_at"],
        )

    def end(self, session_id: str) -> None:
        """End one session (sign-out): refused from the next request on, everywhere."""
        self._delete(_id_hash(session_id))

    def end_all(self, login: str) -> int:
        """End every session of ``login``; how many there were."""
        with self.engine.begin() as conn:
            done = conn.execute(person_sessions.delete().where(person_sessions.c.login == login))
        return int(done.rowcount or 0)

    def _delete(self, id_hash: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(person_sessions.delete().where(person_sessions.c.id_hash == id_hash))


# Throttle ------------------------------------------------------------------------------
@dataclass(frozen=True)
class ThrottlePolicy:
    """Failures allowed before waits begin, per login and per address; then a wait of
    ``base_seconds · 2^(failures − free)``, at most ``max_seconds``. A key's failures
    are forgotten ``forget_seconds`` after its last one; a login's on its success."""

    free_per_login: int = 5
    free_per_address: int = 20
    base_seconds: float = 1.0
    max_seconds: float = 900.0
    forget_seconds: float = 86_400.0

    def wait_after(self, failures: int, free: int) -> float:
        """Seconds to wait after the ``failures``-th failure of a key allowed ``free``."""
        if failures < free:
            return 0.0
        exponent = min(failures - free, 32)  # 2^32 s is far past any cap
        return float(min(self.base_seconds * 2.0**exponent, self.max_seconds))


@dataclass(frozen=True)
class ThrottleKeys:
    """The keyed hashes an attempt is counted under (hex; log a prefix, not the value)."""

    login: str
    address: str


class SignInThrottle:
    """Counts sign-in attempts in the database (shared by every worker)."""

    def __init__(
        self,
        engine: Engine,
        secret: bytes,
        policy: ThrottlePolicy | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.engine = engine
        # A key of its own, derived from the server secret: these hashes are not
        # comparable with anything else the secret keys.
        self._key = hmac.new(secret, b"xinyi sign-in throttle v1", hashlib.sha256).digest()
        self.policy = policy or ThrottlePolicy()
        self.clock = clock

    def keys(self, login: str, address: str) -> ThrottleKeys:
        def keyed(kind: str, value: str) -> str:
            data = f"{kind}\x00{value}".encode()
            return hmac.new(self._key, data, hashlib.sha256).hexdigest()

        # Logins differ by case only in spelling; one budget for every spelling.
        return ThrottleKeys(keyed("login", login.strip().casefold()), keyed("address", address))

    def attempt(self, keys: ThrottleKeys) -> None:
        """Count an attempt as a failure before the password is checked (``succeeded``
        takes it back); raise ``SignInThrottled`` instead when a wait is running."""
        now = self.clock()
        limits = (
            (keys.login, self.policy.free_per_login),
            (keys.address, self.policy.free_per_address),
        )
        with write_session(self.engine) as s:
            rows = {
                r.key: r
                for r in s.execute(
                    sa.select(sign_in_failures)
                    .where(sign_in_failures.c.key.in_([keys.login, keys.address]))
                    .with_for_update()
                )
            }
            blocked = max((r.blocked_until for r in rows.values()), default=0.0)
            if blocked > now:
                raise SignInThrottled(
                    "too many failed sign-ins; try again later",
                    retry_after=max(1, math.ceil(blocked - now)),
                )
            for key, free in limits:
                row = rows.get(key)
                failures = 1
                if row is not None and now - row.last_failure_at < self.policy.forget_seconds:
                    failures = row.failures + 1
                wait = self.policy.wait_after(failures, free)
                values = {
                    "failures": failures,
                    "last_failure_at": now,
                    "blocked_until": now + wait if wait > 0 else 0.0,
                }
                if row is None:
                    try:
                        with s.begin_nested():
                            s.execute(sign_in_failures.insert().values(key=key, **values))
                        continue
                    except IntegrityError:  # another worker inserted it just now
                        pass
                s.execute(
                    sign_in_failures.update().where(sign_in_failures.c.key == key).values(**values)
                )
            s.execute(
                sign_in_failures.delete().where(
                    sign_in_failures.c.last_failure_at < now - self.policy.forget_seconds
                )
            )

    def succeeded(self, keys: ThrottleKeys) -> None:
        """The password was right: the login's failures are forgotten, and this attempt
        no longer counts against the address."""
        with write_session(self.engine) as s:
            s.execute(sign_in_failures.delete().where(sign_in_failures.c.key == keys.login))
            row = s.execute(
                sa.select(sign_in_failures)
                .where(sign_in_failures.c.key == keys.address)
                .with_for_update()
            ).first()
            if row is None:
                return
            failures = max(row.failures - 1, 0)
            waits = self.policy.wait_after(failures, self.policy.free_per_address) > 0
            s.execute(
                sign_in_failures.update()
                .where(sign_in_failures.c.key == keys.address)
                .values(failures=failures, blocked_until=row.blocked_until if waits else 0.0)
            )
