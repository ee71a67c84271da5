"""Page view-models: pure functions from domain rows to what a page shows. No Flask, no SQL.

Invariants:
- a department's view of an audit entry keeps only its own categories and features
  (``access_row(..., department=D)``): an entry that also touched another department's
  data never shows that department's part;
- an audit entry never carries a data value, and nothing here adds one;
- times are shown in China Standard Time (UTC+8), the time of the people using the
  pages; CSV exports carry Unix seconds as well, so nothing is lost to formatting;
- CSV cells that a spreadsheet would run as a formula are quoted with a leading ``'``.
"""

from __future__ import annotations

import csv
import io
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any

from common import uscc as uscc_rules
from common.errors import InvalidInput
from common.settings import Settings
from consent.policy import STATES, TRANSITIONS, effective_status
from consent.store import ConsentRow

CST = timezone(timedelta(hours=8), "UTC+8")
DATA_OPERATIONS: tuple[str, ...] = (
    "report",
    "verify",
    "score",
    "train",
    "grade",
    "whitelist",
    "monitor",
)
CONSENT_OPERATIONS: tuple[str, ...] = (
    "consent.request",
    "consent.approve",
    "consent.reject",
    "consent.pause",
    "consent.resume",
    "consent.revoke",
)


# Time ---------------------------------------------------------------------------------
def local(ts: int | float) -> datetime:
    return datetime.fromtimestamp(ts, CST)


def format_time(ts: int | float | None) -> str:
    """``2025-01-31 14:05`` in UTC+8; an empty string for no time."""
    return "" if ts is None else local(ts).strftime("%Y-%m-%d %H:%M")


def format_day(ts: int | float | None) -> str:
    return "" if ts is None else local(ts).strftime("%Y-%m-%d")


def day_end(d: date) -> int:
    """The last second of day ``d`` in UTC+8, as Unix seconds."""
    start = datetime(d.year, d.month, d.day, tzinfo=CST)
    return int((start + timedelta(days=1)).timestamp()) - 1


def last_days(today: date, n: int) -> list[date]:
    return [today - timedelta(days=n - 1 - i) for i in range(n)]


def today_cst(now: float) -> date:
    return datetime.fromtimestamp(now, CST).date()


# Grants -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Budget:
    feature: str
    budget: int
    used: int
    left: int


@dataclass(frozen=True)
class GrantView:
    """One consent as the enterprise sees it."""

    id: str
    institution_id: str
    institution_name: str
    purpose: str
    ops: tuple[str, ...]
    categories: tuple[str, ...]
    status: str
    created_at: int
    decided_at: int | None
    expires_at: int | None
    pending_until: int
    duration_days: int
    uses: int
    max_uses: int
    letter: str
    letter_hash: str
    budgets: tuple[Budget, ...] = ()
    actions: tuple[str, ...] = field(default=())

    @property
    def uses_left(self) -> int:
        return max(self.max_uses - self.uses, 0)


def actions_for(status: str) -> tuple[str, ...]:
    """The enterprise's possible actions from ``status``, in the order pages show them."""
    return tuple(a for a, (sources, _) in TRANSITIONS.items() if status in sources)


def grant_view(
    row: ConsentRow,
    institution_name: str,
    budgets: Mapping[str, Mapping[str, int]] | None = None,
) -> GrantView:
    return GrantView(
        id=row.id,
        institution_id=row.institution_id,
        institution_name=institution_name,
        purpose=row.purpose,
        ops=row.ops,
        categories=row.categories,
        status=row.status,
        created_at=row.created_at,
        decided_at=row.decided_at,
        expires_at=row.expires_at,
        pending_until=row.pending_until,
        duration_days=row.duration_days,
        uses=row.uses,
        max_uses=row.max_uses,
        letter=row.letter,
        letter_hash=row.letter_hash,
        budgets=tuple(
            Budget(f, int(b["budget"]), int(b["used"]), int(b["left"]))
            for f, b in sorted((budgets or {}).items())
        ),
        actions=actions_for(row.status),
    )


# Audit entries ------------------------------------------------------------------------
@dataclass(frozen=True)
class AccessRow:
    """One audit entry, as one viewer may see it."""

    index: int
    time: int
    institution: str
    enterprise: str
    operation: str
    decision: str
    departments: tuple[str, ...]
    categories: tuple[str, ...]
    features: tuple[str, ...]
    grant_id: str
    model_id: str

    @property
    def allowed(self) -> bool:
        return self.decision == "allowed"

    @property
    def is_data(self) -> bool:
        return self.operation in DATA_OPERATIONS


def _strs(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list | tuple):
        return ()
    return tuple(str(v) for v in value)


def access_row(
    index: int, entry: Mapping[str, Any], settings: Settings, department: str | None = None
) -> AccessRow:
    """The view of one entry; with ``department``, only that department's part of it."""
    cats = _strs(entry.get("categories"))
    feats = _strs(entry.get("features"))
    depts = _strs(entry.get("departments"))
    if department is not None:
        own = {c for c, cat in settings.config.categories.items() if cat.department == department}
        cats = tuple(c for c in cats if c in own)
        feats = tuple(f for f in feats if f.partition(".")[0] in own)
        depts = tuple(d for d in depts if d == department)
    return AccessRow(
        index=int(index),
        time=int(entry.get("time") or 0),
        institution=str(entry.get("institution") or ""),
        enterprise=str(entry.get("enterprise") or ""),
        operation=str(entry.get("operation") or ""),
        decision=str(entry.get("decision") or ""),
        departments=depts,
        categories=cats,
        features=feats,
        grant_id=str(entry.get("grant_id") or ""),
        model_id=str(entry.get("model_id") or ""),
    )


@dataclass(frozen=True)
class AccessFilter:
    """The department's filter over accesses to its data (all fields optional)."""

    institution: str = ""
    enterprise: str = ""
    operation: str = ""
    decision: str = ""  # "", "allowed", "refused" or one refusal code
    date_from: date | None = None
    date_to: date | None = None

    @classmethod
    def parse(cls, args: Mapping[str, str]) -> AccessFilter:
        """From query parameters; a malformed value is refused, never silently dropped."""

        def day(name: str) -> date | None:
            raw = (args.get(name) or "").strip()
            if not raw:
                return None
            try:
                return date.fromisoformat(raw)
            except ValueError as e:
                raise InvalidInput(
                    f"{name}: a date such as 2025-01-31", code="invalid_date", field=name
                ) from e

        enterprise = (args.get("enterprise") or "").strip().upper()
        if enterprise:
            uscc_rules.validate(enterprise)
        operation = (args.get("operation") or "").strip()
        if operation and operation not in DATA_OPERATIONS + CONSENT_OPERATIONS:
            raise InvalidInput("operation: unknown operation", code="invalid_filter")
        out = cls(
            institution=(args.get("institution") or "").strip(),
            enterprise=enterprise,
            operation=operation,
            decision=(args.get("decision") or "").strip(),
            date_from=day("from"),
            date_to=day("to"),
        )
        if out.date_from and out.date_to and out.date_from > out.date_to:
            raise InvalidInput("from must not be after to", code="invalid_date", field="from")
        return out

    def matches(self, row: AccessRow) -> bool:
        if self.institution and row.institution != self.institution:
            return False
        if self.enterprise and row.enterprise != self.enterprise:
            return False
        if self.operation and row.operation != self.operation:
            return False
        if self.decision == "allowed" and not row.allowed:
            return False
        if self.decision == "refused" and row.allowed:
            return False
        if self.decision not in ("", "allowed", "refused") and row.decision != self.decision:
            return False
        day = local(row.time).date()
        if self.date_from and day < self.date_from:
            return False
        return not (self.date_to and day > self.date_to)

    def query(self) -> dict[str, str]:
        """Back to query parameters (for the export link)."""
        out = {
            "institution": self.institution,
            "enterprise": self.enterprise,
            "operation": self.operation,
            "decision": self.decision,
            "from": self.date_from.isoformat() if self.date_from else "",
            "to": self.date_to.isoformat() if self.date_to else "",
        }
        return {k: v for k, v in out.items() if v}


@dataclass(frozen=True)
class InstitutionCount:
    institution: str
    allowed: int
    refused: int

    @property
    def total(self) -> int:
        return self.allowed + self.refused


def per_institution(rows: Iterable[AccessRow]) -> list[InstitutionCount]:
    """Counts per institution, most active first."""
    allowed: Counter[str] = Counter()
    refused: Counter[str] = Counter()
    for r in rows:
        (allowed if r.allowed else refused)[r.institution] += 1
    names = set(allowed) | set(refused)
    out = [InstitutionCount(n, allowed[n], refused[n]) for n in names]
    return sorted(out, key=lambda c: (-c.total, c.institution))


def _cell(value: str) -> str:
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


ACCESS_COLUMNS = (
    "index",
    "time_unix",
    "time_utc8",
    "institution",
    "enterprise",
    "operation",
    "decision",
    "categories",
    "features",
    "grant_id",
    "model_id",
)


def accesses_csv(rows: Iterable[AccessRow]) -> str:
    """CSV of accesses (codes, not translated labels, so tools can read it back)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(ACCESS_COLUMNS)
    for r in rows:
        w.writerow(
            [
                r.index,
                r.time,
                format_time(r.time),
                _cell(r.institution),
                _cell(r.enterprise),
                _cell(r.operation),
                _cell(r.decision),
                _cell(" ".join(r.categories)),
                _cell(" ".join(r.features)),
                _cell(r.grant_id),
                _cell(r.model_id),
            ]
        )
    return buf.getvalue()


# The enterprise's own data ------------------------------------------------------------
@dataclass(frozen=True)
class HeldValue:
    feature: str
    category: str
    department: str
    visibility: str
    value: Any
    unit: str | None


def format_value(value: Any) -> str:
    """A held value for people: numbers with thousands separators, the rest as is."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.0f}" if value.is_integer() else f"{value:,.2f}"
    return str(value)


def held_values(settings: Settings, values: Mapping[str, Any]) -> list[HeldValue]:
    """What the gateway holds about one enterprise, in catalog order."""
    out = []
    for cname, cat in settings.config.categories.items():
        for fname, feat in cat.features.items():
            fid = f"{cname}.{fname}"
            if fid in values:
                out.append(
                    HeldValue(fid, cname, cat.department, cat.visibility, values[fid], feat.unit)
                )
    return out


def held_csv(enterprise: str, rows: Sequence[HeldValue]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(("uscc", "feature", "department", "visibility", "value", "unit"))
    for r in rows:
        value = "" if r.value is None else str(r.value)
        w.writerow((enterprise, r.feature, r.department, r.visibility, _cell(value), r.unit or ""))
    return buf.getvalue()


# Statistics ---------------------------------------------------------------------------
@dataclass(frozen=True)
class StatusEvent:
    consent_id: str
    at: int
    to_status: str


@dataclass(frozen=True)
class ConsentTimes:
    id: str
    created_at: int
    expires_at: int | None
    pending_until: int


def status_by_day(
    consents: Sequence[ConsentTimes], events: Sequence[StatusEvent], days: Sequence[date]
) -> dict[str, list[int]]:
    """How many consents were in each state at the end of each day.

    The state at a moment is the last recorded transition before it with time applied
    (an elapsed grant counts as expired even if nobody touched it)."""
    history: dict[str, list[StatusEvent]] = defaultdict(list)
    for e in sorted(events, key=lambda e: (e.at, e.consent_id)):
        history[e.consent_id].append(e)
    out = {s: [0] * len(days) for s in STATES}
    for i, d in enumerate(days):
        end = day_end(d)
        for c in consents:
            if c.created_at > end:
                continue
            status = None
            for e in history.get(c.id, ()):
                if e.at > end:
                    break
                status = e.to_status
            if status is None:
                continue
            # expires_at is only known once approved; before that it does not apply.
            expires = c.expires_at if status in ("active", "paused") else None
            status = effective_status(status, end, expires, c.pending_until)
            if status in out:
                out[status][i] += 1
    return out


def accesses_by_department_day(
    rows: Iterable[AccessRow], departments: Sequence[str], days: Sequence[date]
) -> dict[str, list[int]]:
    """Allowed data accesses per department and day (an access touching two
    departments counts for each)."""
    index = {d: i for i, d in enumerate(days)}
    out = {d: [0] * len(days) for d in departments}
    for r in rows:
        if not (r.is_data and r.allowed):
            continue
        i = index.get(local(r.time).date())
        if i is None:
            continue
        for dept in r.departments:
            if dept in out:
                out[dept][i] += 1
    return out


def refusals_by_reason(rows: Iterable[AccessRow]) -> list[tuple[str, int]]:
    counts = Counter(r.decision for r in rows if not r.allowed and r.decision)
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


@dataclass(frozen=True)
class MarketShare:
    """One coverage measure as a share of the market entities, against its target
    (JY 二(一)): 0 when the registration data holds no market entity yet."""

    label: str
    count: int
    market: int
    target: float  # a fraction, 0.5 = 50 %

    @property
    def share(self) -> float:
        return self.count / self.market if self.market else 0.0

    @property
    def met(self) -> bool:
        return self.market > 0 and self.share >= self.target
