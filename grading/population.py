"""The inputs of a grading run: one column per input, one row per enterprise.

Encodings (every array has one entry per enterprise):

- unknown numbers are NaN; an enum with no record is -1 (see each field);
- ``division`` is the GB/T 4754-2017 division (1…96), 0 when unknown;
- dishonesty records arrive as the credit office's cells (``public_credit.
  dishonesty_records``: ``none`` or ``YYYY-MM-DD:repaired|open`` items joined by
  ``;``) and are counted against the grading day by :func:`dishonesty_counts`;
- self-declared statements (:class:`Statements`) are NaN for an enterprise that filed
  none; :func:`statement_problems` says which identity a filing breaks.

Invariants: a :class:`Population` is immutable once built and all its columns have the
same length; nothing here reads a database.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import date
from typing import Any

import numpy as np

from grading.errors import InvalidDishonestyRecords, StatementsInconsistent

SECTIONS = "ABCDEFGHIJKLMNOPQRST"
# GB/T 4754-2017: the first division of each section (T is 97 alone).
_SECTION_STARTS = (1, 6, 13, 44, 47, 51, 53, 61, 63, 66, 70, 71, 73, 76, 80, 83, 84, 86, 91, 97)

ENVIRONMENT = ("green", "blue", "yellow", "red", "out_of_scope")
PERSONAL_LEVELS = ("AAA", "AA", "A", "B", "C", "D")
PUBLIC_GRADES = ("A+", "A", "B", "C", "D")
PREMISES = ("leased", "owned")  # 0 leased, 1 owned
# Honours of JY 附件2 三.2(1) (tax_a is 纳税信用等级 A from the tax bureau).
HONOURS = (
    "famous_brand",
    "tax_a",
    "contract_honouring",
    "credit_demo",
    "customs_advanced",
    "quality_credit_aa",
    "quality_award",
)
MAX_RECORDS = 20


def section_of(division: np.ndarray) -> np.ndarray:
    """Section index (0 = A … 19 = T) of each division (1…97); -1 for 0 (unknown)."""
    d = np.asarray(division, dtype=np.int64)
    out: np.ndarray = np.searchsorted(np.array(_SECTION_STARTS), d, side="right") - 1
    return np.where(d > 0, out, -1)


def _floats(n: int) -> np.ndarray:
    return np.full(n, np.nan)


def _codes(n: int) -> np.ndarray:
    return np.full(n, -1, dtype=np.int8)


@dataclass(frozen=True)
class Statements:
    """Self-declared financial statements (CNY), NaN where none were filed."""

    total_assets: np.ndarray
    current_assets: np.ndarray
    total_liabilities: np.ndarray
    current_liabilities: np.ndarray
    equity: np.ndarray
    revenue: np.ndarray
    revenue_prev: np.ndarray
    net_profit: np.ndarray

    @classmethod
    def none(cls, n: int) -> Statements:
        return cls(*(_floats(n) for _ in fields(cls)))

    def columns(self) -> dict[str, np.ndarray]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class Population:
    """Everything the three methods read, per enterprise. Build with :meth:`build`,
    which fills every column not given with "no record"."""

    uscc: np.ndarray  # object (str)
    active: np.ndarray  # bool: 在业 (JY 附件2 一: only those are graded)
    division: np.ndarray  # int16, 1…96, 0 unknown
    established: np.ndarray  # datetime64[D]
    registered_capital: np.ndarray  # CNY
    high_tech: np.ndarray  # bool
    tax_paid: np.ndarray  # CNY, last 12 months
    tax_paid_prev: np.ndarray  # CNY, the same 12 months a year earlier
    tax_a: np.ndarray  # bool: 纳税信用等级 A
    utility_spend: np.ndarray  # CNY, water + power + gas, last 12 months
    utility_spend_prev: np.ndarray
    insurances_paid: np.ndarray  # int8: how many of the five are paid; -1 no record
    insurance_arrears_months: np.ndarray  # months in arrears in 12, NaN no record
    housing_contributors: np.ndarray  # persons, NaN no record
    premises: np.ndarray  # int8: 1 owned, 0 leased, -1 no record
    personal_level: np.ndarray  # int8: index in PERSONAL_LEVELS, -1 none
    environment: np.ndarray  # int8: index in ENVIRONMENT, -1 no record
    dishonesty_total: np.ndarray  # int32: records the credit office publishes
    dishonesty_open_24m: np.ndarray  # int32: of those, not repaired and within 2 years
    dishonesty_36m: np.ndarray  # int32: dated within 3 years
    serious: np.ndarray  # bool: on the serious-dishonesty list
    penalties_36m: np.ndarray  # int32: administrative penalties in 3 years
    public_grade: np.ndarray  # int8: index in PUBLIC_GRADES, -1 none
    loan_record: np.ndarray  # int8: 1 has bank loans, 0 none, -1 no record
    default_records: np.ndarray  # int32: credit default records
    interest_arrears: np.ndarray  # bool
    industrial_evaluated: np.ndarray  # bool
    industrial_score: np.ndarray  # points 0–100, NaN when not evaluated
    honours: Mapping[str, np.ndarray] = field(default_factory=dict)  # HONOURS -> bool
    statements: Statements | None = None

    def __len__(self) -> int:
        return len(self.uscc)

    @classmethod
    def build(cls, n: int, **given: Any) -> Population:
        """A population of ``n`` enterprises with ``given`` columns (lists or arrays)
        and every other column at "no record" (active, established long ago)."""
        defaults: dict[str, Any] = {
            "uscc": np.array([f"E{i:017d}" for i in range(n)], dtype=object)
            if "uscc" not in given
            else np.empty(0, dtype=object),
            "active": np.ones(n, dtype=bool),
            "division": np.zeros(n, dtype=np.int16),
            "established": np.full(n, np.datetime64("2000-01-01", "D")),
            "registered_capital": np.zeros(n),
            "high_tech": np.zeros(n, dtype=bool),
            "tax_paid": _floats(n),
            "tax_paid_prev": _floats(n),
            "tax_a": np.zeros(n, dtype=bool),
            "utility_spend": _floats(n),
            "utility_spend_prev": _floats(n),
            "insurances_paid": _codes(n),
            "insurance_arrears_months": _floats(n),
            "housing_contributors": _floats(n),
            "premises": _codes(n),
            "personal_level": _codes(n),
            "environment": _codes(n),
            "dishonesty_total": np.zeros(n, dtype=np.int32),
            "dishonesty_open_24m": np.zeros(n, dtype=np.int32),
            "dishonesty_36m": np.zeros(n, dtype=np.int32),
            "serious": np.zeros(n, dtype=bool),
            "penalties_36m": np.zeros(n, dtype=np.int32),
            "public_grade": _codes(n),
            "loan_record": _codes(n),
            "default_records": np.zeros(n, dtype=np.int32),
            "interest_arrears": np.zeros(n, dtype=bool),
            "industrial_evaluated": np.zeros(n, dtype=bool),
            "industrial_score": _floats(n),
        }
        unknown = set(given) - set(defaults) - {"honours", "statements"}
        if unknown:
            raise TypeError(f"unknown population columns {sorted(unknown)}")
        columns: dict[str, Any] = {}
        for name, default in defaults.items():
            value = np.asarray(given[name], dtype=default.dtype) if name in given else default
            if value.shape != (n,):
                raise ValueError(f"{name}: {value.shape} values for {n} enterprises")
            columns[name] = value
        honours = {h: np.zeros(n, dtype=bool) for h in HONOURS}
        for h, v in dict(given.get("honours") or {}).items():
            if h not in honours:
                raise TypeError(f"unknown honour {h!r}")
            honours[h] = np.asarray(v, dtype=bool)
        statements = given.get("statements") or Statements.none(n)
        return cls(**columns, honours=honours, statements=statements)


# Dishonesty records ---------------------------------------------------------------------


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


def parse_dishonesty(text: str) -> list[tuple[date, bool]]:
    """The items of one cell as ``(date, repaired)``; raises
    :class:`InvalidDishonestyRecords` (the message never repeats the cell)."""
    if text == "none":
        return []
    items = text.split(";")
    if len(items) > MAX_RECORDS:
        raise InvalidDishonestyRecords(f"more than {MAX_RECORDS} dishonesty records")
    out = []
    for k, item in enumerate(items, 1):
        day, _, status = item.partition(":")
        if status not in ("repaired", "open"):
            raise InvalidDishonestyRecords(
                f"dishonesty record {k}: the status must be 'repaired' or 'open'"
            )
        try:
            when = date.fromisoformat(day)
        except ValueError:
            raise InvalidDishonestyRecords(
                f"dishonesty record {k}: the date is not an ISO date YYYY-MM-DD"
            ) from None
        if len(day) != 10:
            raise InvalidDishonestyRecords(
                f"dishonesty record {k}: the date is not an ISO date YYYY-MM-DD"
            )
        out.append((when, status == "repaired"))
    return out


def mark_repaired(text: str | None, repaired_on: date) -> str | None:
    """The credit office's cell with every item dated on or before ``repaired_on`` read
    as repaired: a granted repair (信用修复) of the enterprise's dishonesty records,
    decided that day, repairs the records it was filed about, which all existed by
    then (JY 附件2 ⑨ "已修复"); items dated later are new records and stay as they are.
    ``None`` and ``none`` come back unchanged."""
    if text is None or text == "none":
        return text
    items = parse_dishonesty(text)
    return ";".join(
        f"{when.isoformat()}:{'repaired' if repaired or when <= repaired_on else 'open'}"
        for when, repaired in items
    )


def dishonesty_counts(
    cells: Iterable[str | None], as_of: date
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each enterprise's cell (None: no row at the credit office, read as no
    records): ``(total, open_24m, within_36m)`` counted on ``as_of``. Records dated
    after ``as_of`` did not exist yet and are left out; "within two years" means
    dated after the same day two years earlier (docs/grading.md ⑨)."""
    cells = list(cells)
    n = len(cells)
    total = np.zeros(n, dtype=np.int32)
    open_24m = np.zeros(n, dtype=np.int32)
    within_36m = np.zeros(n, dtype=np.int32)
    two, three = _years_before(as_of, 2), _years_before(as_of, 3)
    for i, text in enumerate(cells):
        if text is None or text == "none":
            continue
        for when, repaired in parse_dishonesty(text):
            if when > as_of:
                continue
            total[i] += 1
            if when > two and not repaired:
                open_24m[i] += 1
            if when > three:
                within_36m[i] += 1
    return total, open_24m, within_36m


# Statements -----------------------------------------------------------------------------

# What makes a filing unusable, by stable code, and why (value-free).
STATEMENT_RULES = {
    "incomplete": "some statement items are missing",
    "unbalanced": "total assets differ from total liabilities plus owners' equity",
    "current_assets_exceed_total": "current assets exceed total assets",
    "current_liabilities_exceed_total": "current liabilities exceed total liabilities",
    "negative_amount": "assets, liabilities and revenues cannot be negative",
}


def statement_problems(s: Statements, tolerance: float) -> dict[str, np.ndarray]:
    """Per rule of :data:`STATEMENT_RULES`, which enterprises' filings break it (an
    enterprise that filed nothing breaks none)."""
    cols = s.columns()
    stacked = np.vstack(list(cols.values()))
    missing = np.isnan(stacked)
    filed = ~missing.all(axis=0)
    incomplete = filed & missing.any(axis=0)
    ta, tl, eq = s.total_assets, s.total_liabilities, s.equity
    with np.errstate(invalid="ignore"):
        unbalanced = np.abs(ta - tl - eq) > tolerance
        ca_over = s.current_assets > ta + tolerance
        cl_over = s.current_liabilities > tl + tolerance
        negative = np.zeros(len(ta), dtype=bool)
        for name in (
            "total_assets",
            "current_assets",
            "total_liabilities",
            "current_liabilities",
            "revenue",
            "revenue_prev",
        ):
            negative |= cols[name] < 0
    complete = filed & ~incomplete
    return {
        "incomplete": incomplete,
        "unbalanced": complete & unbalanced,
        "current_assets_exceed_total": complete & ca_over,
        "current_liabilities_exceed_total": complete & cl_over,
        "negative_amount": complete & negative,
    }


def usable_statements(s: Statements, tolerance: float) -> np.ndarray:
    """Enterprises whose filing is complete and adds up."""
    filed: np.ndarray = ~np.isnan(s.total_assets)
    for broken in statement_problems(s, tolerance).values():
        filed &= ~broken
    return filed


def check_statements(values: Mapping[str, float], tolerance: float) -> None:
    """Refuse one enterprise's filing that does not add up: raises
    :class:`StatementsInconsistent` naming the first broken rule (never a value)."""
    names = [f.name for f in fields(Statements)]
    missing = [k for k in names if k not in values]
    if missing:
        raise StatementsInconsistent(
            f"{STATEMENT_RULES['incomplete']}: {', '.join(missing)}", field=missing[0]
        )
    one = Statements(*(np.array([float(values[k])]) for k in names))
    for code, broken in statement_problems(one, tolerance).items():
        if broken[0]:
            raise StatementsInconsistent(
                f"the statements do not add up: {STATEMENT_RULES[code]}"
                + (f" (by more than {tolerance:g} CNY)" if code == "unbalanced" else ""),
                rule=code,
            )
