"""Hypothesis: improving any one input of one enterprise never worsens its grade,
whatever the rest of the city looks like (JY 附件2: better facts, better letters; the
methods combine by taking the better grade and capping by the standards)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from common.settings import Grading, load_settings
from grading.engine import grade
from grading.population import HONOURS, Population, Statements
from tests.grading.conftest import AS_OF

CONFIG = load_settings(env={}).config.grading
SMALL_GROUPS = Grading.model_validate({**CONFIG.model_dump(), "min_group": 5})
INDICATOR_ONLY = Grading.model_validate(
    {**CONFIG.model_dump(), "min_group": 5, "combine": {"primary": "indicator", "direct": "off"}}
)

N = 24


@st.composite
def cities(draw: st.DrawFn) -> dict[str, Any]:
    def ints(lo: int, hi: int) -> list[int]:
        return draw(st.lists(st.integers(lo, hi), min_size=N, max_size=N))

    def floats(lo: float, hi: float) -> list[float]:
        return draw(st.lists(st.floats(lo, hi, allow_nan=False), min_size=N, max_size=N))

    def flags(p: int = 1) -> list[bool]:
        return [x < p for x in ints(0, 3)]

    def mostly(*choices: int) -> list[int]:
        """Values drawn from ``choices`` (repeat one to make it likelier): most
        enterprises of a generated city are near the 6 and 9 A thresholds."""
        return [draw(st.sampled_from(choices)) for _ in range(N)]

    total = mostly(0, 0, 0, 1, 2)
    open_24m = [min(o, t) for o, t in zip(ints(0, 2), total, strict=True)]
    within = [min(w, t) for w, t in zip(ints(0, 3), total, strict=True)]
    assets = np.array(floats(100, 1e6))
    debt = np.array(floats(0.05, 1.2))
    declared = np.array(flags(2))
    nan = np.where(declared, 1.0, np.nan)
    liabilities = assets * debt
    return {
        "division": [draw(st.sampled_from([13, 14, 39, 52, 65])) for _ in range(N)],
        "established": np.array(ints(0, 40 * 365)).astype("timedelta64[D]")
        + np.datetime64("1990-01-01"),
        "registered_capital": floats(0, 1e8),
        "high_tech": flags(),
        "tax_paid": floats(0, 1e6),
        "tax_paid_prev": [x if x > 1 else 0.0 for x in floats(0, 1e6)],
        "utility_spend": floats(0, 1e5),
        "utility_spend_prev": floats(1, 1e5),
        "insurances_paid": mostly(5, 5, 5, 4, -1),
        "insurance_arrears_months": mostly(0, 0, 0, 1),
        "housing_contributors": [float("nan") if x < 0 else float(x) for x in ints(-1, 30)],
        "premises": mostly(1, 1, 0, -1),
        "personal_level": mostly(0, 1, 2, 2, 3, 4, -1),
        "environment": mostly(-1, 0, 0, 1, 2, 4),
        "dishonesty_total": total,
        "dishonesty_open_24m": open_24m,
        "dishonesty_36m": within,
        "serious": flags(0) if draw(st.booleans()) else [x < 1 for x in ints(0, 9)],
        "penalties_36m": mostly(0, 0, 1),
        "public_grade": mostly(-1, -1, 0, 1, 2, 3),
        "loan_record": mostly(1, 1, 0, -1),
        "default_records": mostly(0, 0, 0, 1, 3),
        "interest_arrears": flags(),
        "industrial_evaluated": flags(2),
        "industrial_score": floats(20, 100),
        "honours": {h: [x == 0 for x in ints(0, 12)] for h in HONOURS},
        "statements": Statements(
            total_assets=assets * nan,
            current_assets=assets * 0.5 * nan,
            total_liabilities=liabilities * nan,
            current_liabilities=liabilities * 0.6 * nan,
            equity=(assets - liabilities) * nan,
            revenue=np.array(floats(10, 1e6)) * nan,
            revenue_prev=np.array(floats(10, 1e6)) * nan,
            net_profit=np.array(floats(-1e4, 1e5)) * nan,
        ),
    }


Change = Callable[[dict[str, Any], int], None]


def _set(name: str, fn: Callable[[Any], Any]) -> Change:
    def change(c: dict[str, Any], i: int) -> None:
        col = np.array(c[name], copy=True)
        col[i] = fn(col[i])
        c[name] = col

    return change


def _remove_record(c: dict[str, Any], i: int) -> None:
    for name in ("dishonesty_total", "dishonesty_open_24m", "dishonesty_36m"):
        c[name] = np.array(c[name], copy=True)
    total = max(int(c["dishonesty_total"][i]) - 1, 0)
    c["dishonesty_total"][i] = total
    c["dishonesty_open_24m"][i] = min(c["dishonesty_open_24m"][i], total)
    c["dishonesty_36m"][i] = min(c["dishonesty_36m"][i], total)


def _repair(c: dict[str, Any], i: int) -> None:
    c["dishonesty_open_24m"] = np.array(c["dishonesty_open_24m"], copy=True)
    c["dishonesty_open_24m"][i] = max(int(c["dishonesty_open_24m"][i]) - 1, 0)


def _honour(name: str) -> Change:
    def change(c: dict[str, Any], i: int) -> None:
        honours = {k: np.array(v, copy=True) for k, v in c["honours"].items()}
        honours[name][i] = True
        c["honours"] = honours

    return change


def _statement(fn: Callable[[dict[str, np.ndarray], int], None]) -> Change:
    def change(c: dict[str, Any], i: int) -> None:
        cols = {k: v.copy() for k, v in c["statements"].columns().items()}
        fn(cols, i)
        c["statements"] = Statements(**cols)

    return change


def _less_debt(cols: dict[str, np.ndarray], i: int) -> None:
    cut = cols["total_liabilities"][i] * 0.3
    cols["total_liabilities"][i] -= cut
    cols["current_liabilities"][i] = min(
        cols["current_liabilities"][i], cols["total_liabilities"][i]
    )
    cols["equity"][i] += cut


def _more_profit(cols: dict[str, np.ndarray], i: int) -> None:
    cols["net_profit"][i] += abs(cols["revenue"][i]) * 0.05


IMPROVEMENTS: dict[str, Change] = {
    "more tax": _set("tax_paid", lambda x: x * 1.5 + 1),
    "more utility use": _set("utility_spend", lambda x: x * 1.5 + 1),
    "all insurances": _set("insurances_paid", lambda x: 5),
    "no insurance arrears": _set("insurance_arrears_months", lambda x: 0),
    "housing fund": _set("housing_contributors", lambda x: 5.0),
    "older": _set("established", lambda x: x - np.timedelta64(2000, "D")),
    "owns premises": _set("premises", lambda x: 1),
    "high tech": _set("high_tech", lambda x: True),
    "better personal credit": _set("personal_level", lambda x: max(x - 1, 0) if x >= 0 else 0),
    "greener": _set("environment", lambda x: x - 1 if 0 < x <= 3 else x),
    "one record less": _remove_record,
    "one record repaired": _repair,
    "not serious": _set("serious", lambda x: False),
    "fewer penalties": _set("penalties_36m", lambda x: max(x - 1, 0)),
    "better public grade": _set("public_grade", lambda x: max(x - 1, 0) if x >= 0 else 2),
    "fewer defaults": _set("default_records", lambda x: max(x - 1, 0)),
    "interest paid": _set("interest_arrears", lambda x: False),
    "better performance": _set("industrial_score", lambda x: min(x + 15, 100)),
    "less debt": _statement(_less_debt),
    "more profit": _statement(_more_profit),
    **{f"honour {h}": _honour(h) for h in HONOURS},
}


def _loans_if_clean(c: dict[str, Any], i: int) -> None:
    if c["default_records"][i] == 0:
        _set("loan_record", lambda x: 1)(c, i)


IMPROVEMENTS["a clean loan record"] = _loans_if_clean


# A victim near the thresholds: no C among the indicators it can control, each of
# these either its A or its B (chosen by the test), so one improvement can cross 6 or 9 A.
NEAR: dict[str, tuple[Any, Any]] = {
    "insurances_paid": (5, 4),
    "premises": (1, 0),
    "personal_level": (0, 3),
    "environment": (0, 1),
    "loan_record": (1, 0),
    "housing_contributors": (5.0, float("nan")),
    "established": (np.datetime64("2000-01-01"), np.datetime64("2024-01-01")),
}


def near_threshold(city: dict[str, Any], who: int, fair: set[str]) -> dict[str, Any]:
    out = dict(city)

    def put(name: str, value: Any) -> None:
        col = np.array(out[name], copy=True)
        col[who] = value
        out[name] = col

    for name, (good_value, fair_value) in NEAR.items():
        put(name, fair_value if name in fair else good_value)
    for name, value in (
        ("insurance_arrears_months", 0),
        ("dishonesty_total", 0),
        ("dishonesty_open_24m", 0),
        ("dishonesty_36m", 0),
        ("serious", False),
        ("default_records", 0),
        ("interest_arrears", False),
        ("tax_paid_prev", 1.0),
        ("tax_paid", 1e9),
        ("utility_spend_prev", 1.0),
        ("utility_spend", 1e9),
        ("industrial_score", 100.0),
    ):
        put(name, value)
    return out


@settings(max_examples=100, deadline=None)
@given(
    city=cities(),
    who=st.integers(0, N - 1),
    near=st.sets(st.sampled_from(sorted(NEAR)), max_size=5) | st.none(),
)
def test_improving_one_input_never_lowers_the_grade(
    city: dict[str, Any], who: int, near: set[str] | None
) -> None:
    if near is not None:
        city = near_threshold(city, who, near)
    for config in (CONFIG, SMALL_GROUPS, INDICATOR_ONLY):
        before = grade(Population.build(N, **city), AS_OF, config)
        for how, improve in IMPROVEMENTS.items():  # each improvement on its own
            better = dict(city)
            improve(better, who)
            after = grade(Population.build(N, **better), AS_OF, config)
            # Codes: smaller is better (高级 0 … 备选 2, 不予认证 3).
            was, now = int(before.grade[who]), int(after.grade[who])
            assert now <= was, (how, was, now)
            for k in range(12):  # no letter of its own worsens (NA → a letter may)
                b, a = int(before.letters.letters[who, k]), int(after.letters.letters[who, k])
                assert b == 0 or a == 0 or a <= b, (how, k + 1, b, a)
