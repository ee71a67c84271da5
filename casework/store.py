"""Casework persistence: objections and credit-repair applications (tables
``objections`` and ``repairs``, migration 0009_casework).

Invariants:
- one open objection per enterprise and feature, one open repair application per
  enterprise and record: ``open_key`` (``uscc|feature``) is
  unique while the objection is open and NULL once it is decided, so two racing filings
  cannot both succeed, on SQLite and PostgreSQL alike;
- a decision is a conditional UPDATE guarded by ``status = 'open'``: two racing
  decisions cannot both succeed;
- rows are never deleted; no row holds a feature value (a correction's value is in the
  records store, named here by its import id and version).

Every function takes the caller's connection or session, so a decision, the records
snapshot holding its value and the webhook events it causes commit together.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from casework.errors import (
    ObjectionAlreadyOpen,
    ObjectionNotOpen,
    RepairAlreadyOpen,
    RepairNotOpen,
)
from casework.objections import Objection, Resolution
from casework.repairs import Repair, RepairResolution

metadata = sa.MetaData()

objections = sa.Table(
    "objections",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("enterprise", sa.String(18), nullable=False),
    sa.Column("feature", sa.String(100), nullable=False),
    sa.Column("department", sa.String(48), nullable=False),
    sa.Column("claim", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("filed_at", sa.BigInteger, nullable=False),
    sa.Column("filed_by", sa.String(120), nullable=False),
    sa.Column("due", sa.String(10), nullable=False),
    sa.Column("open_key", sa.String(120), unique=True),
    sa.Column("decided_at", sa.BigInteger),
    sa.Column("decided_by", sa.String(120)),
    sa.Column("reason", sa.Text),
    sa.Column("import_id", sa.Integer),
    sa.Column("version", sa.Integer),
)

repairs = sa.Table(
    "repairs",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("enterprise", sa.String(18), nullable=False),
    sa.Column("record", sa.String(100), nullable=False),
    sa.Column("department", sa.String(48), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("filed_at", sa.BigInteger, nullable=False),
    sa.Column("filed_by", sa.String(120), nullable=False),
    sa.Column("due", sa.String(10), nullable=False),
    sa.Column("open_key", sa.String(120), unique=True),
    sa.Column("decided_at", sa.BigInteger),
    sa.Column("decided_by", sa.String(120)),
    sa.Column("decision_reason", sa.Text),
)

Executor = Connection | Session


def _open_key(enterprise: str, feature: str) -> str:
    return f"{enterprise}|{feature}"


def _objection(m: Any) -> Objection:
    resolution = None
    if m["status"] != "open":
        resolution = Resolution(
            decision=m["status"],
            reason=m["reason"],
            by=m["decided_by"],
            at=int(m["decided_at"]),
            import_id=m["import_id"],
            version=m["version"],
        )
    return Objection(
        id=m["id"],
        enterprise=m["enterprise"],
        feature=m["feature"],
        department=m["department"],
        claim=m["claim"],
        status=m["status"],
        filed_at=int(m["filed_at"]),
        filed_by=m["filed_by"],
        due=date.fromisoformat(m["due"]),
        resolution=resolution,
    )


def _insert_open(ex: Executor, table: sa.Table, key: str, clash: Exception, **values: Any) -> None:
    """Insert an open case under ``key``; raises ``clash`` when one is open under the
    same key (checked first, and by the unique ``open_key`` against a racing filing)."""
    found = ex.execute(sa.select(table.c.id).where(table.c.open_key == key)).first()
    if found is not None:
        raise clash
    try:
        ex.execute(table.insert().values(status="open", open_key=key, **values))
    except IntegrityError as e:
        raise clash from e


def _filed(case: Objection | Repair) -> dict[str, Any]:
    """The columns every filing has, from the case."""
    return {
        "id": case.id,
        "enterprise": case.enterprise,
        "department": case.department,
        "filed_at": case.filed_at,
        "filed_by": case.filed_by,
        "due": case.due.isoformat(),
    }


def _get_row(ex: Executor, table: sa.Table, case_id: str) -> Any:
    return ex.execute(sa.select(table).where(table.c.id == case_id)).mappings().first()


def _list_rows(
    ex: Executor,
    table: sa.Table,
    *,
    enterprise: str | None,
    department: str | None,
    status: str | None,
    limit: int,
) -> Iterable[Any]:
    """Rows (of ``enterprise`` / about ``department``'s features or records / with
    ``status`` when given), earliest due first, then oldest filing first."""
    q = sa.select(table)
    for column, wanted in (
        ("enterprise", enterprise),
        ("department", department),
        ("status", status),
    ):
        if wanted is not None:
            q = q.where(table.c[column] == wanted)
    q = q.order_by(table.c.due, table.c.filed_at, table.c.id).limit(limit)
    return ex.execute(q).mappings()


def _decide_open(
    ex: Executor, table: sa.Table, case_id: str, not_open: Exception, **values: Any
) -> None:
    """Store a decision with a conditional UPDATE guarded by ``status = 'open'``; raises
    ``not_open`` when the case was decided meanwhile."""
    done = ex.execute(
        table.update()
        .where(table.c.id == case_id, table.c.status == "open")
        .values(open_key=None, **values)
        .returning(table.c.id)
    ).first()
    if done is None:
        raise not_open


def insert(ex: Executor, objection: Objection) -> None:
    """Store a new open objection; raises ObjectionAlreadyOpen when the enterprise has
    one open about that feature (checked first, and by the unique ``open_key``)."""
    assert objection.status == "open"
    _insert_open(
        ex,
        objections,
        _open_key(objection.enterprise, objection.feature),
        ObjectionAlreadyOpen(
            f"an objection about {objection.feature} is already open", field="feature"
        ),
        feature=objection.feature,
        claim=objection.claim,
        **_filed(objection),
    )


def get(ex: Executor, objection_id: str) -> Objection | None:
    m = _get_row(ex, objections, objection_id)
    return _objection(m) if m else None


def listing(
    ex: Executor,
    *,
    enterprise: str | None = None,
    department: str | None = None,
    status: str | None = None,
    limit: int = 500,
) -> list[Objection]:
    """Objections (of ``enterprise`` / about ``department``'s features / with ``status``
    when given), earliest due first, then oldest filing first."""
    rows = _list_rows(
        ex, objections, enterprise=enterprise, department=department, status=status, limit=limit
    )
    return [_objection(m) for m in rows]


def record_resolution(ex: Executor, objection_id: str, resolution: Resolution) -> None:
    """Store a decision; raises ObjectionNotOpen when it was decided meanwhile."""
    _decide_open(
        ex,
        objections,
        objection_id,
        ObjectionNotOpen(f"objection {objection_id} was decided meanwhile"),
        status=resolution.decision,
        decided_at=resolution.at,
        decided_by=resolution.by,
        reason=resolution.reason,
        import_id=resolution.import_id,
        version=resolution.version,
    )


def record_correction(ex: Executor, objection_id: str, import_id: int, version: int) -> None:
    """Name the records snapshot that holds a correction's value (same transaction as
    the decision)."""
    ex.execute(
        objections.update()
        .where(objections.c.id == objection_id, objections.c.status == "corrected")
        .values(import_id=import_id, version=version)
    )


_DISPUTED = (
    sa.select(objections.c.enterprise, objections.c.feature)
    .where(
        objections.c.enterprise.in_(sa.bindparam("enterprises", expanding=True)),
        objections.c.status == "open",
    )
    .order_by(objections.c.feature)
)


def disputed(
    ex: Executor, enterprises: Sequence[str], features: Iterable[str]
) -> dict[str, list[str]]:
    """For each of ``enterprises``, the ``features`` (``category.feature``) it has an open
    objection about, sorted; enterprises with none are absent. One query."""
    wanted = set(features)
    out: dict[str, list[str]] = {}
    if not enterprises or not wanted:
        return out
    for enterprise, feature in ex.execute(_DISPUTED, {"enterprises": sorted(set(enterprises))}):
        if feature in wanted:
            out.setdefault(enterprise, []).append(feature)
    return out


# Credit repair ---------------------------------------------------------------------------


def _repair(m: Any) -> Repair:
    resolution = None
    if m["status"] != "open":
        resolution = RepairResolution(
            decision=m["status"],
            reason=m["decision_reason"],
            by=m["decided_by"],
            at=int(m["decided_at"]),
        )
    return Repair(
        id=m["id"],
        enterprise=m["enterprise"],
        record=m["record"],
        department=m["department"],
        reason=m["reason"],
        status=m["status"],
        filed_at=int(m["filed_at"]),
        filed_by=m["filed_by"],
        due=date.fromisoformat(m["due"]),
        resolution=resolution,
    )


def insert_repair(ex: Executor, repair: Repair) -> None:
    """Store a new open application; raises RepairAlreadyOpen when one is open for the
    same enterprise and record."""
    assert repair.status == "open"
    _insert_open(
        ex,
        repairs,
        _open_key(repair.enterprise, repair.record),
        RepairAlreadyOpen(
            f"an application to repair {repair.record} is already open", field="record"
        ),
        record=repair.record,
        reason=repair.reason,
        **_filed(repair),
    )


def get_repair(ex: Executor, repair_id: str) -> Repair | None:
    m = _get_row(ex, repairs, repair_id)
    return _repair(m) if m else None


def list_repairs(
    ex: Executor,
    *,
    enterprise: str | None = None,
    department: str | None = None,
    status: str | None = None,
    limit: int = 500,
) -> list[Repair]:
    """Applications, earliest due first."""
    rows = _list_rows(
        ex, repairs, enterprise=enterprise, department=department, status=status, limit=limit
    )
    return [_repair(m) for m in rows]


def record_repair_resolution(ex: Executor, repair_id: str, resolution: RepairResolution) -> None:
    """Store a decision; raises RepairNotOpen when it was decided meanwhile."""
    _decide_open(
        ex,
        repairs,
        repair_id,
        RepairNotOpen(f"repair {repair_id} was decided meanwhile"),
        status=resolution.decision,
        decided_at=resolution.at,
        decided_by=resolution.by,
        decision_reason=resolution.reason,
    )


def repaired(ex: Executor, enterprise: str, records: Iterable[str]) -> list[str]:
    """The ``records`` of ``enterprise`` with a granted repair, sorted."""
    wanted = set(records)
    if not wanted:
        return []
    q = sa.select(repairs.c.record).where(
        repairs.c.enterprise == enterprise, repairs.c.status == "repaired"
    )
    return sorted({r for r in ex.execute(q).scalars() if r in wanted})
