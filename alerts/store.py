"""Risk alerts kept for institutions (table ``risk_alerts``, migration 0015_alerts) and
what the detector has swept (``alert_swept_imports``, ``alert_swept_months``).

Invariants:
- an alert is recorded with the queue id of its audit entry in ONE transaction (no
  alert without its access logged); it is *published* once its entry has a log index:
  then it takes the next ``seq`` (unique: two publishers cannot give one number twice)
  and its ``risk.alert`` webhook event is enqueued in the same transaction;
- institutions page through published alerts by ``seq``, which only grows in commit
  order, so ``after=`` never skips an alert published later with a smaller row id;
- one alert per institution, enterprise, kind and source (an import, a month's
  grades): ``uq_risk_alerts_once``; a swept import or month is marked in the
  transaction that records its alerts, so two workers never detect one twice;
- rows hold kinds and band labels, never a value; they are never deleted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.orm import Session

metadata = sa.MetaData()

risk_alerts = sa.Table(
    "risk_alerts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("seq", sa.Integer, unique=True),  # NULL until published
    sa.Column("institution_id", sa.String(64), nullable=False),
    sa.Column("enterprise", sa.String(18), nullable=False),
    sa.Column("grant_id", sa.String(40), nullable=False),
    sa.Column("kind", sa.String(48), nullable=False),
    sa.Column("feature", sa.String(100)),  # None: the grade
    sa.Column("from_band", sa.String(40)),  # None: no earlier value
    sa.Column("to_band", sa.String(40), nullable=False),
    sa.Column("source", sa.String(48), nullable=False),  # import:<id> | grades:<YYYY-MM>
    sa.Column("at", sa.BigInteger, nullable=False),
    sa.Column("audit_queue_id", sa.BigInteger, nullable=False),
    sa.Column("audit_index", sa.BigInteger),
    sa.Column("event_id", sa.String(40)),
    sa.UniqueConstraint(
        "institution_id", "enterprise", "kind", "source", name="uq_risk_alerts_once"
    ),
)

# What the detector has looked at: a loaded import, a month's grades. The primary key
# settles two workers sweeping at once (the second one's transaction fails and rolls
# back its alerts too), and an import committed late (PostgreSQL hands out ids before
# commit) is still found: nothing is skipped by a moving cursor.
swept_imports = sa.Table(
    "alert_swept_imports",
    metadata,
    sa.Column("import_id", sa.Integer, primary_key=True),
    sa.Column("swept_at", sa.BigInteger, nullable=False),
)
swept_months = sa.Table(
    "alert_swept_months",
    metadata,
    sa.Column("month", sa.String(7), primary_key=True),
    sa.Column("swept_at", sa.BigInteger, nullable=False),
)

Executor = Connection | Session


@dataclass(frozen=True)
class Alert:
    """One alert: a kind and two bands (``from_band`` None: no earlier value)."""

    id: int
    seq: int | None
    institution_id: str
    enterprise: str
    grant_id: str
    kind: str
    feature: str | None
    from_band: str | None
    to_band: str
    source: str
    at: int
    audit_queue_id: int
    audit_index: int | None
    event_id: str | None

    def as_json(self) -> dict[str, Any]:
        """The contract's view (``GET /v1/alerts``, the ``risk.alert`` event)."""
        return {
            "id": self.seq,
            "enterprise": self.enterprise,
            "kind": self.kind,
            "from": self.from_band,
            "to": self.to_band,
            "at": self.at,
            "audit_index": self.audit_index,
        }


def _alert(m: Any) -> Alert:
    return Alert(**dict(m))


def mark_import_swept(ex: Executor, import_id: int, now: int) -> None:
    """Raises IntegrityError when another sweep took this import."""
    ex.execute(swept_imports.insert().values(import_id=import_id, swept_at=now))


def mark_month_swept(ex: Executor, month: str, now: int) -> None:
    """Raises IntegrityError when another sweep took this month."""
    ex.execute(swept_months.insert().values(month=month, swept_at=now))


def swept_import_ids(ex: Executor, ids: Sequence[int]) -> set[int]:
    if not ids:
        return set()
    q = sa.select(swept_imports.c.import_id).where(swept_imports.c.import_id.in_(sorted(ids)))
    return {int(i) for i in ex.execute(q).scalars()}


def swept_month_names(ex: Executor) -> set[str]:
    return {str(m) for m in ex.execute(sa.select(swept_months.c.month)).scalars()}


def insert(ex: Executor, rows: Sequence[dict[str, Any]]) -> None:
    """Record alerts (unpublished); each row names its audit entry's queue id."""
    if rows:
        ex.execute(risk_alerts.insert(), list(rows))


def unpublished(ex: Executor, limit: int) -> list[Alert]:
    """Alerts waiting for their log index, oldest first."""
    q = (
        sa.select(risk_alerts)
        .where(risk_alerts.c.seq.is_(None))
        .order_by(risk_alerts.c.id)
        .limit(limit)
    )
    return [_alert(m) for m in ex.execute(q).mappings()]


def last_seq(ex: Executor) -> int:
    return int(ex.execute(sa.select(sa.func.max(risk_alerts.c.seq))).scalar() or 0)


def publish(ex: Executor, alert_id: int, *, seq: int, audit_index: int, event_id: str) -> bool:
    """Give an unpublished alert its place and index; False when already published."""
    done = ex.execute(
        risk_alerts.update()
        .where(risk_alerts.c.id == alert_id, risk_alerts.c.seq.is_(None))
        .values(seq=seq, audit_index=audit_index, event_id=event_id)
    )
    return bool(done.rowcount == 1)  # type: ignore[attr-defined]


def page(ex: Executor, institution: str, after: int, limit: int) -> list[Alert]:
    """An institution's published alerts with ``seq > after``, in ``seq`` order."""
    q = (
        sa.select(risk_alerts)
        .where(
            risk_alerts.c.institution_id == institution,
            risk_alerts.c.seq > after,
        )
        .order_by(risk_alerts.c.seq)
        .limit(limit)
    )
    return [_alert(m) for m in ex.execute(q).mappings()]


def of_enterprise(ex: Executor, enterprise: str, limit: int = 500) -> list[Alert]:
    """The alerts sent about an enterprise (its own view), newest first."""
    q = (
        sa.select(risk_alerts)
        .where(risk_alerts.c.enterprise == enterprise, risk_alerts.c.seq.is_not(None))
        .order_by(risk_alerts.c.seq.desc())
        .limit(limit)
    )
    return [_alert(m) for m in ex.execute(q).mappings()]
