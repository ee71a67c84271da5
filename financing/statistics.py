"""The month's statistics by the national caliber (JY 三(三)3: registered enterprises,
credit lines, amounts disbursed, credit-loan amounts, weighted average rate, first-loan
borrowers; JS 20; AH 3, 12), as pure arithmetic over sums the store aggregates with SQL.

Nothing here is a counter: every figure is recomputed from the records each time it is
asked (``financing.store.month_sums``), so it cannot drift from them.

Caliber (docs/financing.md):
- stock figures are as of the month's end (China Standard Time): ``registered``
  enterprises (distinct USCCs with an enterprise account created by then),
  ``real_name`` (of those, with a verified real name by then), ``authorizing`` (distinct
  enterprises that had approved at least one consent by then), and
  ``market_entities`` (distinct USCCs in the market-regulation registration data loaded
  by then); their ``shares`` are of the market entities, against the configured
  targets (JY: 50 / 30 / 30 %);
- flow figures are of the month: ``applications`` filed; and among outcomes decided in
  the month: ``approved`` count, ``credit_lines`` and ``disbursed`` (CNY),
  ``credit_loan_disbursed`` (CNY disbursed as credit loans 信用贷款) and its share,
  ``first_loans`` (distinct first-loan borrowers 首贷户), ``weighted_rate`` (% a year,
  weighted by the amount disbursed; null when nothing was disbursed);
- a region is the 6-digit administrative division code of the USCC (digits 3-8).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from common.errors import InvalidInput

CHINA = timezone(timedelta(hours=8))
STOCK = ("registered", "real_name", "authorizing", "market_entities")
FLOW = (
    "applications",
    "approved",
    "credit_lines",
    "disbursed",
    "credit_loan_disbursed",
    "first_loans",
    "rate_weight",  # Σ rate × disbursed, for the weighted average
)
SUMS = STOCK + FLOW
_MONTH = re.compile(r"^([0-9]{4})-(0[1-9]|1[0-2])$")
_REGION = re.compile(r"^[0-9]{6}$")


@dataclass(frozen=True)
class Month:
    """A calendar month in China Standard Time, as the epoch-second interval
    ``[start, end)``."""

    label: str
    start: int
    end: int


def month(label: str) -> Month:
    """``"2026-12"`` → its interval; anything else 400 ``invalid_month``."""
    m = _MONTH.match(label)
    if m is None:
        raise InvalidInput("month: YYYY-MM", code="invalid_month", field="month")
    year, mon = int(m.group(1)), int(m.group(2))
    if not 1970 <= year <= 9998:  # epoch seconds, and a next month that datetime can hold
        raise InvalidInput(
            "month: YYYY-MM between 1970-01 and 9998-12", code="invalid_month", field="month"
        )
    start = datetime(year, mon, 1, tzinfo=CHINA)
    end = datetime(year + (mon == 12), mon % 12 + 1, 1, tzinfo=CHINA)
    return Month(label, int(start.timestamp()), int(end.timestamp()))


def month_of(epoch: float) -> str:
    """The ``YYYY-MM`` (China Standard Time) an instant falls in."""
    return datetime.fromtimestamp(epoch, CHINA).strftime("%Y-%m")


def region(label: str) -> str:
    if not _REGION.match(label):
        raise InvalidInput("region: a 6-digit division code", code="invalid_region", field="region")
    return label


def figures(sums: Mapping[str, Any], targets: Mapping[str, float]) -> dict[str, Any]:
    """The contract's figures from one group's sums (missing sums count as zero)."""
    s = {k: int(sums.get(k) or 0) for k in SUMS if k != "rate_weight"}
    rate_weight = float(sums.get("rate_weight") or 0.0)
    disbursed = s["disbursed"]
    market = s["market_entities"]
    return {
        "registered": s["registered"],
        "real_name": s["real_name"],
        "authorizing": s["authorizing"],
        "market_entities": market,
        "shares": {
            k: (round(s[k] / market, 6) if market else None)
            for k in ("registered", "real_name", "authorizing")
        },
        "targets": dict(targets),
        "applications": s["applications"],
        "approved": s["approved"],
        "credit_lines": s["credit_lines"],
        "disbursed": disbursed,
        "credit_loan_disbursed": s["credit_loan_disbursed"],
        "credit_loan_share": (
            round(s["credit_loan_disbursed"] / disbursed, 6) if disbursed else None
        ),
        "first_loans": s["first_loans"],
        "weighted_rate": round(rate_weight / disbursed, 4) if disbursed else None,
    }


def merge(groups: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The sums of several disjoint groups (regions) added up."""
    total: dict[str, Any] = {k: 0 for k in SUMS}
    for sums in groups.values():
        for k in SUMS:
            total[k] += sums.get(k) or 0
    return total


def merge_parts(parts: Sequence[Mapping[str, Mapping[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Per-region sums computed in parts (each part fills some sums, zero elsewhere)
    added up region by region."""
    out: dict[str, dict[str, Any]] = {}
    for part in parts:
        for area, sums in part.items():
            into = out.setdefault(area, dict.fromkeys(SUMS, 0))
            for k in SUMS:
                into[k] += sums.get(k) or 0
    return out
