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

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from casework.attachments import Attachment
from casework.errors import (
    ObjectionAlreadyOpen,
    ObjectionNotOpen,
    RepairAlreadyOpen,
    RepairNotOpen,
)
from casework.objections import Objection, Resolution
from casework.repairs import Repair, RepairResolution

metadata = sa.MetaData()


def _case_table(
    name: str, subject: sa.Column[Any], text: sa.Column[Any], *decision: sa.Column[Any]
) -> sa.Table:
    """A case table: the columns both kinds have, with the kind's ``subject`` (what the
    case is about), filing ``text`` and ``decision`` columns in their places."""
    return sa.Table(
        name,
        metadata,
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("enterprise", sa.String(18), nullable=False),
        subject,
        sa.Column("department", sa.String(48), nullable=False),
        text,
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("filed_at", sa.BigInteger, nullable=False),
        sa.Column("filed_by", sa.String(120), nullable=False),
        sa.Column("due", sa.String(10), nullable=False),
        sa.Column("open_key", sa.String(120), unique=True),
        sa.Column("decided_at", sa.BigInteger),
        sa.Column("decided_by", sa.String(120)),
        *decision,
    )


objections = _case_table(
    "objections",
    sa.Column("feature", sa.String(100), nullable=False),
    sa.Column("claim", sa.Text, nullable=False),
    sa.Column("reason", sa.Text),
    sa.Column("import_id", sa.Integer),
    sa.Column("version", sa.Integer),
)

repairs = _case_table(
    "repairs",
    sa.Column("record", sa.String(100), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("decision_reason", sa.Text),
)

# An objection's attachment (migration 0015_alerts): written with the filing, never changed.
objection_attachments = sa.Table(
    "objection_attachments",
    metadata,
    sa.Column("objection_id", sa.String(40), primary_key=True),
    sa.Column("file_name", sa.String(255), nullable=False),
    sa.Column("content_type", sa.String(64), nullable=False),
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("data", sa.LargeBinary, nullable=False),
)

Executor = Connection | Session
C = TypeVar("C", Objection, Repair)
R = TypeVar("R", Resolution, RepairResolution)


def _open_key(enterprise: str, feature: str) -> str:
    return f"{enterprise}|{feature}"


def _filing(m: Any) -> dict[str, Any]:
    """The fields every case row has (the kind adds its subject, text and decision)."""
    return {
        "id": m["id"],
        "enterprise": m["enterprise"],
        "department": m["department"],
        "status": m["status"],
        "filed_at": int(m["filed_at"]),
        "filed_by": m["filed_by"],
        "due": date.fromisoformat(m["due"]),
    }


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
    return Objection(feature=m["feature"], claim=m["claim"], resolution=resolution, **_filing(m))


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


# Credit repair rows, and the store operations both kinds share ---------------------


def _repair(m: Any) -> Repair:
    resolution = None
    if m["status"] != "open":
        resolution = RepairResolution(
            decision=m["status"],
            reason=m["decision_reason"],
            by=m["decided_by"],
            at=int(m["decided_at"]),
        )
    return Repair(record=m["record"], reason=m["reason"], resolution=resolution, **_filing(m))


@dataclass(frozen=True)
class _Cases(Generic[C, R]):
    """One kind of case (objection or repair application) over its table: the same
    filing, reading, listing and deciding, parameterised by the kind's columns."""

    table: sa.Table
    to_case: Callable[[Any], C]
    subject: Callable[[C], str]
    """What the case is about (feature or record): with the enterprise, its open key."""
    columns: Callable[[C], dict[str, Any]]
    """The kind's own filing columns (the subject and the filing's text)."""
    already_open: Callable[[C], Exception]
    not_open: Callable[[str], Exception]
    decision: Callable[[R], dict[str, Any]]
    """The kind's own decision columns (the reason, and what else it records)."""

    def insert(self, ex: Executor, case: C) -> None:
        """Store a new open case; raises ``already_open`` when the enterprise has one
        open about the same subject (checked first, and by the unique ``open_key``)."""
        assert case.status == "open"
        table = self.table
        key = _open_key(case.enterprise, self.subject(case))
        clash = self.already_open(case)
        found = ex.execute(sa.select(table.c.id).where(table.c.open_key == key)).first()
        if found is not None:
            raise clash
        try:
            ex.execute(
                table.insert().values(
                    id=case.id,
                    enterprise=case.enterprise,
                    department=case.department,
                    status="open",
                    filed_at=case.filed_at,
                    filed_by=case.filed_by,
                    due=case.due.isoformat(),
                    open_key=key,
                    **self.columns(case),
                )
            )
        except IntegrityError as e:
            raise clash from e

    def get(self, ex: Executor, case_id: str) -> C | None:
        table = self.table
        m = ex.execute(sa.select(table).where(table.c.id == case_id)).mappings().first()
        return self.to_case(m) if m else None

    def listing(
        self,
        ex: Executor,
        *,
        enterprise: str | None = None,
        department: str | None = None,
        status: str | None = None,
        limit: int = 500,
    ) -> list[C]:
        """Cases (of ``enterprise`` / about ``department``'s features or records / with
        ``status`` when given), earliest due first, then oldest filing first."""
        table = self.table
        q = sa.select(table)
        if enterprise is not None:
            q = q.where(table.c.enterprise == enterprise)
        if department is not None:
            q = q.where(table.c.department == department)
        if status is not None:
            q = q.where(table.c.status == status)
        q = q.order_by(table.c.due, table.c.filed_at, table.c.id).limit(limit)
        return [self.to_case(m) for m in ex.execute(q).mappings()]

    def record_resolution(self, ex: Executor, case_id: str, resolution: R) -> None:
        """Store a decision (a conditional UPDATE guarded by ``status = 'open'``);
        raises ``not_open`` when the case was decided meanwhile."""
        table = self.table
        done = ex.execute(
            table.update()
            .where(table.c.id == case_id, table.c.status == "open")
            .values(
                status=resolution.decision,
                open_key=None,
                decided_at=resolution.at,
                decided_by=resolution.by,
                **self.decision(resolution),
            )
            .returning(table.c.id)
        ).first()
        if done is None:
            raise self.not_open(case_id)


OBJECTIONS: _Cases[Objection, Resolution] = _Cases(
    table=objections,
    to_case=_objection,
    subject=lambda o: o.feature,
    columns=lambda o: {"feature": o.feature, "claim": o.claim},
    already_open=lambda o: ObjectionAlreadyOpen(
        f"an objection about {o.feature} is already open", field="feature"
    ),
    not_open=lambda i: ObjectionNotOpen(f"objection {i} was decided meanwhile"),
    decision=lambda r: {"reason": r.reason, "import_id": r.import_id, "version": r.version},
)
REPAIRS: _Cases[Repair, RepairResolution] = _Cases(
    table=repairs,
    to_case=_repair,
    subject=lambda r: r.record,
    columns=lambda r: {"record": r.record, "reason": r.reason},
    already_open=lambda r: RepairAlreadyOpen(
        f"an application to repair {r.record} is already open", field="record"
    ),
    not_open=lambda i: RepairNotOpen(f"repair {i} was decided meanwhile"),
    decision=lambda r: {"decision_reason": r.reason},
)

insert = OBJECTIONS.insert
get = OBJECTIONS.get
listing = OBJECTIONS.listing
record_resolution = OBJECTIONS.record_resolution
insert_repair = REPAIRS.insert
get_repair = REPAIRS.get
list_repairs = REPAIRS.listing
record_repair_resolution = REPAIRS.record_resolution


def repaired(ex: Executor, enterprise: str, records: Iterable[str]) -> list[str]:
    """The ``records`` of ``enterprise`` with a granted repair, sorted."""
    wanted = set(records)
    if not wanted:
        return []
    q = sa.select(repairs.c.record).where(
        repairs.c.enterprise == enterprise, repairs.c.status == "repaired"
    )
    return sorted({r for r in ex.execute(q).scalars() if r in wanted})


def overdue_objections(ex: Executor, today: date, limit: int = 500) -> list[Objection]:
    """Open objections past their deadline on ``today`` (a China Standard Time date):
    not decided by the end of ``due``, earliest due first. Each carries its ``due``;
    what forwards them to the parent node (JS 14) starts here. One indexed query
    (``ix_objections_department`` holds status and due)."""
    q = (
        sa.select(objections)
        .where(objections.c.status == "open", objections.c.due < today.isoformat())
        .order_by(objections.c.due, objections.c.filed_at, objections.c.id)
        .limit(limit)
    )
    return [_objection(m) for m in ex.execute(q).mappings()]


def insert_attachment(ex: Executor, objection_id: str, attachment: Attachment) -> None:
    """Store an objection's attachment (the filing's transaction)."""
    ex.execute(
        objection_attachments.insert().values(
            objection_id=objection_id,
            file_name=attachment.file_name,
            content_type=attachment.content_type,
            size=attachment.size,
            sha256=attachment.sha256,
            data=attachment.data,
        )
    )


def attachment(ex: Executor, objection_id: str) -> Attachment | None:
    row = ex.execute(
        sa.select(objection_attachments).where(objection_attachments.c.objection_id == objection_id)
    ).first()
    if row is None:
        return None
    m = row._mapping
    return Attachment(m["file_name"], m["content_type"], m["size"], m["sha256"], bytes(m["data"]))


def attachments_of(ex: Executor, objection_ids: Sequence[str]) -> dict[str, Attachment]:
    """The attachments of these objections, without their bytes (for listings)."""
    out: dict[str, Attachment] = {}
    ids = sorted(set(objection_ids))
    t = objection_attachments
    for start in range(0, len(ids), 500):
        q = sa.select(t.c.objection_id, t.c.file_name, t.c.content_type, t.c.size, t.c.sha256)
        rows = ex.execute(q.where(t.c.objection_id.in_(ids[start : start + 500])))
        for oid, name, ctype, size, sha in rows:
            out[str(oid)] = Attachment(name, ctype, int(size), sha, b"")
    return out
