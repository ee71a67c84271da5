"""Objections (异议): an enterprise disputes one feature the platform holds about it
(JS 14: the platform forwards it within 2 working days; AH 10: the subject may object).

Lifecycle: ``open`` → ``corrected`` | ``rejected``, decided once, by the department that
owns the feature. Pure: no Flask, no SQL, no clock (callers pass ``now``).

Invariants:
- ``due`` is ``working_days`` working days after the filing date on the official
  calendar (``common.workdays``; the filing day never counts); an unknown year refuses
  the filing rather than guessing a deadline;
- one open objection per enterprise and feature (the store enforces it too);
- only the owning department decides (others: 403 ``not_owning_department``), only an
  open objection is decided (409 ``objection_not_open``); a correction carries a value,
  a rejection does not, both carry a reason;
- an objection is overdue when it was not decided by the end of its due date (China
  Standard Time): while open after that date, or decided after it;
- nothing here holds a feature's value: the corrected value lives in the records store
  as a new snapshot, the objection keeps only that snapshot's import id and version.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import date
from typing import Any, Literal, Protocol

from casework.errors import InvalidObjection, NotOwningDepartment, ObjectionNotOpen
from common.workdays import WorkCalendar, china_date

Status = Literal["open", "corrected", "rejected"]
Decision = Literal["corrected", "rejected"]
DECISIONS: tuple[Decision, ...] = ("corrected", "rejected")
MAX_REASON_CHARS = 2000

# Control characters other than tab and line breaks (a claim may have paragraphs).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True)
class Resolution:
    """How an objection was decided. ``import_id``/``version`` name the records
    snapshot that holds the corrected value (a correction only)."""

    decision: Decision
    reason: str
    by: str
    at: int
    import_id: int | None = None
    version: int | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "decision": self.decision,
            "reason": self.reason,
            "by": self.by,
            "at": self.at,
            "version": self.version,
        }


class _Decided(Protocol):
    @property
    def at(self) -> int: ...

    def as_json(self) -> dict[str, Any]: ...


class Case:
    """What an objection and a repair application share: filed by an enterprise, owned
    by a department, due on a date, decided once (``resolution``)."""

    id: str
    enterprise: str
    department: str
    status: str
    filed_at: int
    due: date
    resolution: _Decided | None

    def overdue(self, today: date) -> bool:
        """Not decided by the end of ``due``: ``today`` is a China Standard Time date."""
        return is_overdue(self.due, self.resolution.at if self.resolution else None, today)

    def _json(self, today: date, subject: tuple[str, str], text: tuple[str, str]) -> dict[str, Any]:
        """The contract's view, with the kind's ``subject`` and filing ``text`` fields
        (name, value) in their places: never a feature value."""
        return {
            "id": self.id,
            "enterprise": self.enterprise,
            subject[0]: subject[1],
            "department": self.department,
            text[0]: text[1],
            "status": self.status,
            "filed_at": self.filed_at,
            "due": self.due.isoformat(),
            "overdue": self.overdue(today),
            "resolution": self.resolution.as_json() if self.resolution else None,
        }


@dataclass(frozen=True)
class Objection(Case):
    id: str
    enterprise: str
    feature: str
    department: str
    claim: str
    status: Status
    filed_at: int
    filed_by: str
    due: date
    resolution: Resolution | None = None

    def as_json(self, today: date) -> dict[str, Any]:
        """The contract's view (CONTRACT v2): never a feature value."""
        return self._json(today, ("feature", self.feature), ("claim", self.claim))


def is_overdue(due: date, decided_at: int | None, today: date) -> bool:
    """A case (objection or repair application) not decided by the end of ``due``:
    still open after it (``today`` is a China Standard Time date), or decided later."""
    if decided_at is None:
        return today > due
    return china_date(decided_at) > due


def check_decision(
    *,
    owner: str,
    department: str | None,
    refusal: str,
    status: str,
    not_open: Exception,
    decision: str,
    decisions: tuple[str, ...],
    reason: str,
) -> str:
    """The checks every case decision passes, in order: ``department`` owns the case
    (else NotOwningDepartment with ``refusal``), the case is open (else ``not_open``),
    ``decision`` is one of ``decisions``, the reason is a valid text; returns the
    reason stripped."""
    if department != owner:
        raise NotOwningDepartment(refusal)
    if status != "open":
        raise not_open
    if decision not in decisions:
        raise InvalidObjection(
            f"decision: {' or '.join(repr(d) for d in decisions)}", field="decision"
        )
    return check_text(reason, "reason", MAX_REASON_CHARS)


def check_text(value: str, field: str, limit: int) -> str:
    """A free-text field stripped, non-empty, within ``limit``, without control
    characters (tabs and line breaks are kept); raises InvalidObjection naming it."""
    text = value.strip()
    if not text:
        raise InvalidObjection(f"{field}: must not be empty", field=field)
    if len(text) > limit:
        raise InvalidObjection(f"{field}: at most {limit} characters", field=field)
    if _CONTROL.search(text):
        raise InvalidObjection(f"{field}: contains control characters", field=field)
    return text


def file(
    *,
    id: str,
    enterprise: str,
    feature: str,
    department: str,
    claim: str,
    filed_by: str,
    now: int,
    calendar: WorkCalendar,
    working_days: int,
    max_claim_chars: int,
) -> Objection:
    """A new open objection of ``enterprise`` about ``feature`` (owned by
    ``department``); raises InvalidObjection or UnknownCalendarYear."""
    text = check_text(claim, "claim", max_claim_chars)
    due = calendar.add_working_days(china_date(now), working_days)
    return Objection(
        id=id,
        enterprise=enterprise,
        feature=feature,
        department=department,
        claim=text,
        status="open",
        filed_at=now,
        filed_by=filed_by,
        due=due,
    )


def decide(
    objection: Objection,
    *,
    department: str | None,
    decision: str,
    reason: str,
    has_value: bool,
    by: str,
    now: int,
) -> Resolution:
    """Check one decision by ``department`` (None: the caller is no department) and
    return its resolution; the caller stores it (and, for a correction, the value)."""
    text = check_decision(
        owner=objection.department,
        department=department,
        refusal=f"only the department that owns {objection.feature} decides this objection",
        status=objection.status,
        not_open=ObjectionNotOpen(f"objection {objection.id} was already {objection.status}"),
        decision=decision,
        decisions=DECISIONS,
        reason=reason,
    )
    if decision == "corrected" and not has_value:
        raise InvalidObjection("value: a correction carries the corrected value", field="value")
    if decision == "rejected" and has_value:
        raise InvalidObjection("value: only a correction carries a value", field="value")
    return Resolution(
        decision="corrected" if decision == "corrected" else "rejected", reason=text, by=by, at=now
    )


def resolved(objection: Objection, resolution: Resolution) -> Objection:
    """The objection after ``resolution``."""
    return replace(objection, status=resolution.decision, resolution=resolution)
