"""Credit repair (信用修复): an enterprise applies to have one dishonesty or penalty
record repaired (AH 10; YX 四(四)四: handled within 5 working days; JY 附件2 ⑨: a
repaired record counts as repaired in grades).

Lifecycle: ``open`` → ``repaired`` | ``rejected``, decided once, by the department
that supplies the record. Pure: no Flask, no SQL, no clock.

Invariants:
- only a record the configuration lists as repairable (``casework.repairable``) can be
  applied for; ``due`` is ``working_days`` working days after the filing date on the
  official calendar (the filing day never counts);
- one open application per enterprise and record; only the owning department decides
  (403 ``not_owning_department``), once (409 ``repair_not_open``), with a reason;
- a repair changes no value: the record stays as the department supplied it, marked
  repaired (已修复) wherever it is shown.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from typing import Any, Literal

from casework.errors import RepairNotOpen
from casework.objections import Case, check_decision, check_text
from common.workdays import WorkCalendar, china_date

Status = Literal["open", "repaired", "rejected"]
Decision = Literal["repaired", "rejected"]
DECISIONS: tuple[Decision, ...] = ("repaired", "rejected")


@dataclass(frozen=True)
class RepairResolution:
    decision: Decision
    reason: str
    by: str
    at: int

    def as_json(self) -> dict[str, Any]:
        return {"decision": self.decision, "reason": self.reason, "by": self.by, "at": self.at}


@dataclass(frozen=True)
class Repair(Case):
    id: str
    enterprise: str
    record: str
    department: str
    reason: str
    status: Status
    filed_at: int
    filed_by: str
    due: date
    resolution: RepairResolution | None = None

    def as_json(self, today: date) -> dict[str, Any]:
        return self._json(today, ("record", self.record), ("reason", self.reason))


def file(
    *,
    id: str,
    enterprise: str,
    record: str,
    department: str,
    reason: str,
    filed_by: str,
    now: int,
    calendar: WorkCalendar,
    working_days: int,
    max_reason_chars: int,
) -> Repair:
    """A new open application of ``enterprise`` to repair ``record``."""
    text = check_text(reason, "reason", max_reason_chars)
    return Repair(
        id=id,
        enterprise=enterprise,
        record=record,
        department=department,
        reason=text,
        status="open",
        filed_at=now,
        filed_by=filed_by,
        due=calendar.add_working_days(china_date(now), working_days),
    )


def decide(
    repair: Repair, *, department: str | None, decision: str, reason: str, by: str, now: int
) -> RepairResolution:
    """Check one decision by ``department`` (None: the caller is no department)."""
    text = check_decision(
        owner=repair.department,
        department=department,
        refusal=f"only the department that supplies {repair.record} decides this application",
        status=repair.status,
        not_open=RepairNotOpen(f"repair {repair.id} was already {repair.status}"),
        decision=decision,
        decisions=DECISIONS,
        reason=reason,
    )
    return RepairResolution(
        decision="repaired" if decision == "repaired" else "rejected", reason=text, by=by, at=now
    )


def resolved(repair: Repair, resolution: RepairResolution) -> Repair:
    return replace(repair, status=resolution.decision, resolution=resolution)
