"""Consent persistence: consents, their status history, verification budgets and the
webhook outbox (tables created by migration 0001).

Invariants:
- a status change is a conditional UPDATE guarded by the expected current status, so two
  racing actions cannot both succeed;
- a grant use is a conditional UPDATE (``status = 'active' AND uses < max_uses AND
  expires_at > now``): the count never exceeds ``max_uses`` and a revocation committed
  before the UPDATE is always seen, on every worker, with no cache in between;
- a status change, its history row and its webhook event commit together.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlmodel import SQLModel

metadata = SQLModel.metadata

consents = sa.Table(
    "consents",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("institution_id", sa.String(64), nullable=False),
    sa.Column("enterprise", sa.String(18), nullable=False),
    sa.Column("purpose", sa.String(48), nullable=False),
    sa.Column("ops", sa.Text, nullable=False),
    sa.Column("categories", sa.Text, nullable=False),
    sa.Column("duration_days", sa.Integer, nullable=False),
    sa.Column("max_uses", sa.Integer, nullable=False),
    sa.Column("uses", sa.Integer, nullable=False, server_default="0"),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("letter", sa.Text, nullable=False),
    sa.Column("letter_hash", sa.String(80), nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("decided_at", sa.BigInteger),
    sa.Column("not_before", sa.BigInteger),
    sa.Column("expires_at", sa.BigInteger),
    sa.Column("pending_until", sa.BigInteger, nullable=False),
    sa.Column("grant_jwt", sa.Text),
    sa.Column("status_changed_at", sa.BigInteger, nullable=False),
    extend_existing=True,
)

consent_events = sa.Table(
    "consent_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("consent_id", sa.String(40), nullable=False),
    sa.Column("at", sa.BigInteger, nullable=False),
    sa.Column("from_status", sa.String(16)),
    sa.Column("to_status", sa.String(16), nullable=False),
    sa.Column("actor", sa.String(100), nullable=False),
    extend_existing=True,
)

verify_budgets = sa.Table(
    "verify_budgets",
    metadata,
    sa.Column("consent_id", sa.String(40), primary_key=True),
    sa.Column("feature", sa.String(100), primary_key=True),
    sa.Column("used", sa.Integer, nullable=False, server_default="0"),
    extend_existing=True,
)

webhook_outbox = sa.Table(
    "webhook_outbox",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("institution_id", sa.String(64), nullable=False),
    sa.Column("event_id", sa.String(40), nullable=False, unique=True),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", sa.Float, nullable=False),
    sa.Column("delivered_at", sa.BigInteger),
    sa.Column("last_error", sa.String(500)),
    extend_existing=True,
)

# The registry package owns the institutions table; consent only reads two columns.
_institutions = sa.table(
    "institutions",
    sa.column("id", sa.String),
    sa.column("name", sa.String),
    sa.column("status", sa.String),
    sa.column("webhook_url", sa.String),
)


@dataclass(frozen=True)
class ConsentRow:
    id: str
    institution_id: str
    enterprise: str
    purpose: str
    ops: tuple[str, ...]
    categories: tuple[str, ...]
    duration_days: int
    max_uses: int
    uses: int
    status: str
    letter: str
    letter_hash: str
    created_at: int
    decided_at: int | None
    not_before: int | None
    expires_at: int | None
    pending_until: int
    grant_jwt: str | None
    status_changed_at: int

    @classmethod
    def from_mapping(cls, m: Any) -> ConsentRow:
        d = dict(m)
        d["ops"] = tuple(json.loads(d["ops"]))
        d["categories"] = tuple(json.loads(d["categories"]))
        return cls(**d)


def insert_consent(session: Session, row: dict[str, Any]) -> None:
    values = dict(row)
    values["ops"] = json.dumps(list(row["ops"]))
    values["categories"] = json.dumps(list(row["categories"]))
    session.execute(consents.insert().values(**values))
    session.execute(
        consent_events.insert().values(
            consent_id=row["id"],
            at=row["created_at"],
            from_status=None,
            to_status=row["status"],
            actor=f"institution:{row['institution_id']}",
        )
    )


def get_consent(
    session: Session, consent_id: str, *, for_update: bool = False
) -> ConsentRow | None:
    q = sa.select(consents).where(consents.c.id == consent_id)
    if for_update:
        q = q.with_for_update()
    m = session.execute(q).mappings().first()
    return ConsentRow.from_mapping(m) if m else None


def list_consents(
    session: Session,
    *,
    enterprise: str | None = None,
    institution: str | None = None,
    status: str | None = None,
    limit: int = 500,
) -> list[ConsentRow]:
    q = sa.select(consents).order_by(consents.c.created_at.desc(), consents.c.id).limit(limit)
    if enterprise is not None:
        q = q.where(consents.c.enterprise == enterprise)
    if institution is not None:
        q = q.where(consents.c.institution_id == institution)
    if status is not None:
        q = q.where(consents.c.status == status)
    return [ConsentRow.from_mapping(m) for m in session.execute(q).mappings()]


def consents_by_ids(session: Session, consent_ids: Sequence[str]) -> list[ConsentRow]:
    """The consents with these ids (any institution; the caller filters), in chunks of
    500 ids per query: every id is read, however many newer consents exist."""
    wanted = sorted(set(consent_ids))
    out: list[ConsentRow] = []
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        q = sa.select(consents).where(consents.c.id.in_(chunk))
        out.extend(ConsentRow.from_mapping(m) for m in session.execute(q).mappings())
    return out


def change_status(
    session: Session,
    consent_id: str,
    *,
    expected: str,
    new: str,
    actor: str,
    now: int,
    extra: dict[str, Any] | None = None,
) -> bool:
    """Move ``expected → new``; False when the consent was no longer ``expected``."""
    values: dict[str, Any] = {"status": new, "status_changed_at": now, **(extra or {})}
    result = session.execute(
        consents.update()
        .where(consents.c.id == consent_id, consents.c.status == expected)
        .values(**values)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return False
    session.execute(
        consent_events.insert().values(
            consent_id=consent_id, at=now, from_status=expected, to_status=new, actor=actor
        )
    )
    return True


def institution(session: Session, institution_id: str) -> tuple[str, str, str | None] | None:
    """(name, status, webhook_url) of an institution, or None."""
    row = session.execute(
        sa.select(_institutions.c.name, _institutions.c.status, _institutions.c.webhook_url).where(
            _institutions.c.id == institution_id
        )
    ).first()
    return (row[0], row[1], row[2]) if row else None


# The hot path is one guarded UPDATE (``take_use``); reading is only for naming a refusal.
_READ_FOR_USE = sa.select(
    consents.c.status,
    consents.c.enterprise,
    consents.c.institution_id,
    consents.c.uses,
    consents.c.max_uses,
    consents.c.expires_at,
    consents.c.pending_until,
).where(consents.c.id == sa.bindparam("cid"))
_active_institution = sa.exists().where(
    _institutions.c.id == sa.bindparam("iid"), _institutions.c.status == "active"
)
_TAKE_USE = (
    consents.update()
    .where(
        consents.c.id == sa.bindparam("cid"),
        consents.c.status == "active",
        consents.c.uses < consents.c.max_uses,
        consents.c.expires_at > sa.bindparam("now"),
        consents.c.not_before <= sa.bindparam("now"),
        consents.c.enterprise == sa.bindparam("ent"),
        consents.c.institution_id == sa.bindparam("iid"),
        _active_institution,
    )
    .values(uses=consents.c.uses + 1)
    .returning(consents.c.uses)
)
_INSTITUTION_STATUS = sa.select(_institutions.c.status).where(
    _institutions.c.id == sa.bindparam("iid")
)


def active_institution_ids(session: Session | sa.Connection) -> list[str]:
    """Every active institution, sorted (the receivers of a broadcast event)."""
    q = sa.select(_institutions.c.id).where(_institutions.c.status == "active")
    return sorted(str(i) for i in session.execute(q).scalars())


def institution_status(session: Session | sa.Connection, institution_id: str) -> str | None:
    return session.execute(_INSTITUTION_STATUS, {"iid": institution_id}).scalar()


def read_for_use(session: Session, consent_id: str) -> tuple[Any, ...] | None:
    row = session.execute(_READ_FOR_USE, {"cid": consent_id}).first()
    return tuple(row) if row else None


def take_use(
    session: Session, consent_id: str, *, enterprise: str, institution: str, now: int
) -> bool:
    """Atomically take one use of an active, unexpired, unexhausted grant of these
    parties whose institution is active; False when any of that does not hold."""
    row = session.execute(
        _TAKE_USE, {"cid": consent_id, "now": now, "ent": enterprise, "iid": institution}
    ).first()
    return row is not None


def _take_verification_statement(dialect: str) -> Any:
    ins: Any = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(verify_budgets)
    return (
        ins.values(
            consent_id=sa.bindparam("cid"), feature=sa.bindparam("feature"), used=sa.literal(1)
        )
        .on_conflict_do_update(
            index_elements=[verify_budgets.c.consent_id, verify_budgets.c.feature],
            set_={"used": verify_budgets.c.used + 1},
            where=verify_budgets.c.used < sa.bindparam("budget"),
        )
        .returning(verify_budgets.c.used)
    )


# Built once per dialect: a statement built per call costs its cache key every time.
_TAKE_VERIFICATION = {d: _take_verification_statement(d) for d in ("postgresql", "sqlite")}


def take_verification(session: Session, consent_id: str, feature: str, budget: int) -> bool:
    """Atomically take one verification of ``feature``; False when the budget is spent."""
    if budget < 1:
        return False
    stmt = _TAKE_VERIFICATION[session.get_bind().dialect.name]
    # RETURNING, not rowcount: psycopg reports -1 for INSERT ... ON CONFLICT.
    row = session.execute(stmt, {"cid": consent_id, "feature": feature, "budget": budget}).first()
    return row is not None


def verification_uses(session: Session, consent_id: str) -> dict[str, int]:
    rows = session.execute(
        sa.select(verify_budgets.c.feature, verify_budgets.c.used).where(
            verify_budgets.c.consent_id == consent_id
        )
    )
    return {f: u for f, u in rows}


def status_history(session: Session, since: int | None = None) -> Sequence[Any]:
    q = sa.select(consent_events).order_by(consent_events.c.at, consent_events.c.id)
    if since is not None:
        q = q.where(consent_events.c.at >= since)
    return list(session.execute(q).mappings())


# Outbox ------------------------------------------------------------------------------


def enqueue_event(
    session: Session | sa.Connection,
    *,
    institution_id: str,
    event_id: str,
    payload: str,
    now: int,
) -> None:
    session.execute(
        webhook_outbox.insert().values(
            institution_id=institution_id,
            event_id=event_id,
            payload=payload,
            created_at=now,
            attempts=0,
            next_attempt_at=float(now),
        )
    )


GAVE_UP_AT = 1e18  # next_attempt_at of an event that is not retried any more


def claim_due_events(
    session: Session, now: float, limit: int, lease_seconds: float
) -> list[dict[str, Any]]:
    """Claim due events for delivery, oldest first, in order per institution.

    An event is due when its time has come and no earlier undelivered event of the same
    institution is still waiting (so an institution never sees a later status before an
    earlier one). Claiming pushes ``next_attempt_at`` ahead by the lease with a guarded
    UPDATE, so two workers never send the same event at the same time.
    """
    q = (
        sa.select(webhook_outbox, _institutions.c.webhook_url)
        .join(_institutions, _institutions.c.id == webhook_outbox.c.institution_id)
        .where(
            webhook_outbox.c.delivered_at.is_(None),
            webhook_outbox.c.next_attempt_at < GAVE_UP_AT,
            # Events of an institution without a webhook wait, uncounted, until it has one.
            _institutions.c.webhook_url.is_not(None),
        )
        .order_by(webhook_outbox.c.id)
        .limit(limit * 4)
    )
    blocked: set[str] = set()
    claimed: list[dict[str, Any]] = []
    for m in session.execute(q).mappings():
        row = dict(m)
        inst = row["institution_id"]
        if inst in blocked:
            continue
        blocked.add(inst)  # only the oldest waiting event of an institution is sent
        if row["next_attempt_at"] > now or len(claimed) >= limit:
            continue
        won = session.execute(
            webhook_outbox.update()
            .where(
                webhook_outbox.c.id == row["id"],
                webhook_outbox.c.next_attempt_at == row["next_attempt_at"],
            )
            .values(next_attempt_at=now + lease_seconds)
        )
        if won.rowcount == 1:  # type: ignore[attr-defined]
            claimed.append(row)
    return claimed


def waiting_events_of(
    session: Session, institution_prefix: str, event_type: str, limit: int
) -> list[dict[str, Any]]:
    """Undelivered events of the institutions whose id starts with
    ``institution_prefix`` and whose payload is of ``event_type``, oldest first (nodes:
    the events of relayed institutions, forwarded to their own node)."""
    q = (
        sa.select(webhook_outbox)
        .where(
            webhook_outbox.c.delivered_at.is_(None),
            webhook_outbox.c.institution_id.startswith(institution_prefix, autoescape=True),
            webhook_outbox.c.payload.contains(f'"type": "{event_type}"', autoescape=True),
        )
        .order_by(webhook_outbox.c.id)
        .limit(limit)
    )
    return [dict(m) for m in session.execute(q).mappings()]


def event_exists(session: Session, event_id: str) -> bool:
    return (
        session.execute(
            sa.select(webhook_outbox.c.id).where(webhook_outbox.c.event_id == event_id)
        ).first()
        is not None
    )


def mark_delivered(session: Session, event_row_id: int, now: int) -> None:
    session.execute(
        webhook_outbox.update()
        .where(webhook_outbox.c.id == event_row_id)
        .values(delivered_at=now, attempts=webhook_outbox.c.attempts + 1, last_error=None)
    )


def mark_failed(session: Session, event_row_id: int, *, next_attempt_at: float, error: str) -> None:
    session.execute(
        webhook_outbox.update()
        .where(webhook_outbox.c.id == event_row_id)
        .values(
            attempts=webhook_outbox.c.attempts + 1,
            next_attempt_at=next_attempt_at,
            last_error=error[:500],
        )
    )


def outbox_depth(session: Session) -> tuple[int, int]:
    """(events that will be sent, events given up on). Only events of institutions with
    a webhook count: the others are never sent (they wait until one is registered), so
    counting them would make the depth grow for ever."""
    row = session.execute(
        sa.select(
            sa.func.count().filter(webhook_outbox.c.next_attempt_at < GAVE_UP_AT),
            sa.func.count().filter(webhook_outbox.c.next_attempt_at >= GAVE_UP_AT),
        )
        .select_from(webhook_outbox)
        .join(_institutions, _institutions.c.id == webhook_outbox.c.institution_id)
        .where(
            webhook_outbox.c.delivered_at.is_(None),
            _institutions.c.webhook_url.is_not(None),
        )
    ).one()
    return int(row[0] or 0), int(row[1] or 0)


# Monitoring (--- alerts ---) ------------------------------------------------------------


@dataclass(frozen=True)
class Monitor:
    """An active grant with op ``monitor``: who watches whom, over which categories,
    since when."""

    grant_id: str
    institution_id: str
    enterprise: str
    categories: tuple[str, ...]
    since: int


def monitoring(ex: Session | sa.Connection, now: int) -> list[Monitor]:
    """Every grant that lets its institution be alerted now: status active (not paused,
    revoked or expired), within its validity period, op ``monitor``, and an active
    institution. One query; the number of grants, never of enterprises, bounds it."""
    q = (
        sa.select(
            consents.c.id,
            consents.c.institution_id,
            consents.c.enterprise,
            consents.c.categories,
            consents.c.not_before,
        )
        .join(_institutions, _institutions.c.id == consents.c.institution_id)
        .where(
            consents.c.status == "active",
            consents.c.not_before <= now,
            consents.c.expires_at > now,
            consents.c.ops.like('%"monitor"%'),
            _institutions.c.status == "active",
        )
        .order_by(consents.c.id)
    )
    return [
        Monitor(str(i), str(inst), str(ent), tuple(json.loads(cats)), int(nbf))
        for i, inst, ent, cats, nbf in ex.execute(q)
    ]
