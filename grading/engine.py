"""The three methods of JY 附件2 三 and how they combine, vectorised over a city.

- :func:`indicator_letters`: 三.1(3) ①–⑫ as letters A/B/C or not applicable (⑬ is
  reference only and never a letter);
- :func:`indicator_grades`: "9个以上A且无C" 高级, "6个A且无C" 一级 (read as 6, 7 or 8),
  otherwise 备选, then the 加分项 step;
- :func:`direct_grades`: 三.2(1) honours with three clean years, 三.2(2) the public
  credit grade;
- :func:`score_points`: 三.3 standard values, ≥ 90 高级, ≥ 75 一级;
- :func:`grade`: all of it, serious dishonesty filtered first (三.1(2)) and the
  standards of 二.2 as caps.

Invariants: pure (arrays in, arrays out; the grading day is an argument); improving
any one input of an enterprise never worsens its grade (tests/grading); a grade code
is one of :data:`GRADES`' indexes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np

from common.errors import ConfigError
from common.settings import Grading
from grading.population import HONOURS, Population, Statements, usable_statements
from grading.ranking import NA, A, B, C, Ranked, rank_in_groups, ratio

# Grade codes: smaller is better.
HIGH, FIRST, ALTERNATE, EXCLUDED, OUT_OF_SCOPE = 0, 1, 2, 3, 4
GRADES = ("高级", "一级", "备选", "不予认证", "不在认证范围")
GRADES_EN = ("Senior", "First", "Alternate", "Not certified", "Out of scope")
NO_GRADE = 9  # a method that does not apply to an enterprise
# Methods (CONTRACT: "indicator" | "direct" | "score"); FILTER for the excluded.
INDICATOR, DIRECT, SCORE, FILTER = 0, 1, 2, 3
METHODS = ("indicator", "direct", "score", "filter")
INDICATORS = 12  # ①–⑫ carry letters; ⑬ is reference only
RANKED = (0, 1, 11)  # ①, ②, ⑫
LETTERS = ("", "A", "B", "C")

# Values of the 100-point metrics for enum inputs (docs/grading.md "100-point method").
_LETTER_VALUE = np.array([np.nan, 1.0, 0.5, 0.0])
_PERSONAL_VALUE = np.array([1.0, 0.9, 0.8, 0.5, 0.2, 0.0, 0.0])  # AAA … D, none (-1)
_ENVIRONMENT_VALUE = np.array([1.0, 0.7, 0.3, 0.0, np.nan, np.nan])  # …, out of scope, none

METRICS = (
    "registered_capital",
    "operating_years",
    "industry_policy",
    "premises",
    "personal_credit",
    "tax_growth",
    "utility_growth",
    "social_insurance",
    "housing_fund",
    "debt_ratio",
    "current_ratio",
    "net_margin",
    "revenue_growth",
    "public_credit",
    "environment",
    "financial_credit",
    "honours",
    "industrial_performance",
)
BONUS_ITEMS = (*HONOURS, "high_tech")


def check_config(config: Grading) -> None:
    """Refuse a grading section naming metrics or bonus items the engine does not know."""
    for item in config.score_items:
        if item.metric not in METRICS:
            raise ConfigError(
                f"grading.score_items: unknown metric {item.metric!r}"
                f" (known: {', '.join(METRICS)})",
                path="grading.score_items",
            )
    for name in config.bonus.points:
        if name not in BONUS_ITEMS:
            raise ConfigError(
                f"grading.bonus.points: unknown item {name!r} (known: {', '.join(BONUS_ITEMS)})",
                path="grading.bonus.points",
            )


def _division_set(divisions: tuple[str, ...]) -> np.ndarray:
    mask = np.zeros(98, dtype=bool)
    mask[[int(d) for d in divisions]] = True
    return mask


def anniversary_reached(established: np.ndarray, as_of: date, years: int) -> np.ndarray:
    """Whether the ``years``-th anniversary of each date is on or before ``as_of``."""
    months = established.astype("datetime64[M]")
    year = established.astype("datetime64[Y]").astype(np.int64) + 1970
    month = months.astype(np.int64) % 12 + 1
    day = (established - months.astype("datetime64[D]")).astype(np.int64) + 1
    age = as_of.year - year
    md = month * 100 + day
    out: np.ndarray = (age > years) | ((age == years) & (md <= as_of.month * 100 + as_of.day))
    return out


@dataclass(frozen=True)
class Letters:
    """①–⑫ per enterprise (column k is indicator k+1) and the three rankings."""

    letters: np.ndarray  # int8 (n, 12): NA/A/B/C
    ranked: tuple[Ranked, Ranked, Ranked]  # ①, ②, ⑫
    values: tuple[np.ndarray, np.ndarray, np.ndarray]  # what was ranked


def indicator_letters(pop: Population, as_of: date, config: Grading) -> Letters:
    """JY 附件2 三.1(3) ①–⑫ (docs/grading.md "Indicators")."""
    n = len(pop)
    out = np.zeros((n, INDICATORS), dtype=np.int8)
    tax = ratio(pop.tax_paid, pop.tax_paid_prev)
    use = ratio(pop.utility_spend, pop.utility_spend_prev)
    perf = np.where(pop.industrial_evaluated, pop.industrial_score, np.nan)
    ranks = (
        rank_in_groups(tax, pop.division, config.min_group),
        rank_in_groups(use, pop.division, config.min_group),
        rank_in_groups(perf, pop.division, config.min_group),
    )
    out[:, 0], out[:, 1], out[:, 11] = ranks[0].letter, ranks[1].letter, ranks[2].letter
    # ③ all five insurances paid and no month in arrears; anything else (no record) B.
    arrears = np.nan_to_num(pop.insurance_arrears_months, nan=0.0)
    out[:, 2] = np.where((pop.insurances_paid == 5) & (arrears == 0), A, B)
    # ④ contributing: A; not: not classified.
    out[:, 3] = np.where(np.nan_to_num(pop.housing_contributors) > 0, A, NA)
    # ⑤ in business three years or more: A; less: B.
    out[:, 4] = np.where(anniversary_reached(pop.established, as_of, 3), A, B)
    # ⑥ owns its premises, or leases them as a high-tech enterprise: A; leases: B.
    out[:, 5] = np.where((pop.premises == 1) | pop.high_tech, A, B)
    # ⑦ personal credit A or better: A; B: B; lower or none: C.
    level = pop.personal_level
    out[:, 6] = np.where((level >= 0) & (level <= 2), A, np.where(level == 3, B, C))
    # ⑧ green A, blue B, yellow/red C, out of scope (or not listed): not used.
    env = pop.environment
    out[:, 7] = np.where(
        env == 0, A, np.where(env == 1, B, np.where((env == 2) | (env == 3), C, NA))
    )
    # ⑨ none: A; two or more: C; one: B unless it is open and within two years (C).
    total, open_recent = pop.dishonesty_total, pop.dishonesty_open_24m
    out[:, 8] = np.where(total == 0, A, np.where((total >= 2) | (open_recent > 0), C, B))
    # ⑩ loans and no default: A; loans, 1–2 defaults, no interest arrears, or no loans: B.
    loans = pop.loan_record == 1
    d = pop.default_records
    out[:, 9] = np.where(
        loans & (d == 0),
        A,
        np.where((loans & (d <= 2) & ~pop.interest_arrears) | ~loans, B, C),
    )
    # ⑪ encouraged A, restricted C, the rest B (config table by division).
    div = np.clip(pop.division.astype(np.int64), 0, 97)
    encouraged = _division_set(config.encouraged_divisions)[div]
    restricted = _division_set(config.restricted_divisions)[div]
    out[:, 10] = np.where(encouraged, A, np.where(restricted, C, B))
    return Letters(out, ranks, (tax, use, perf))


def indicator_grades(letters: np.ndarray) -> np.ndarray:
    """ "获得9个以上A且无C" 高级; "获得6个A且无C" 一级, read as 6 to 8 A; else 备选."""
    a = (letters == A).sum(axis=1)
    no_c = ~(letters == C).any(axis=1)
    out: np.ndarray = np.where(
        no_c & (a >= 9), HIGH, np.where(no_c & (a >= 6), FIRST, ALTERNATE)
    ).astype(np.int8)
    return out


def bonus_points(pop: Population, config: Grading) -> np.ndarray:
    """加分项: the configured points of each honour an enterprise holds."""
    total = np.zeros(len(pop))
    for name, points in config.bonus.points.items():
        held = pop.high_tech if name == "high_tech" else pop.honours[name]
        total += points * held
    return total


def direct_grades(pop: Population) -> np.ndarray:
    """三.2: (1) an honour and no negative record in three years: 高级; (2) public
    credit grade A+ or A: 高级, B: 一级, C or D: 备选. The better of the two;
    NO_GRADE when neither applies."""
    honoured = np.zeros(len(pop), dtype=bool)
    for name in HONOURS:
        honoured |= pop.honours[name]
    clean = (pop.dishonesty_36m == 0) & (pop.penalties_36m == 0) & ~pop.serious
    by_honours = np.where(honoured & clean, HIGH, NO_GRADE)
    g = pop.public_grade
    by_grade = np.where(
        (g == 0) | (g == 1), HIGH, np.where(g == 2, FIRST, np.where(g >= 3, ALTERNATE, NO_GRADE))
    )
    out: np.ndarray = np.minimum(by_honours, by_grade).astype(np.int8)
    return out


def metrics(pop: Population, letters: Letters, as_of: date) -> dict[str, np.ndarray]:
    """The values the 100-point method scores (NaN: does not apply)."""
    s = pop.statements or Statements.none(len(pop))
    days = (np.datetime64(as_of.isoformat(), "D") - pop.established).astype(np.int64)
    honours = np.zeros(len(pop))
    for name in HONOURS:
        honours += pop.honours[name]
    with np.errstate(divide="ignore", invalid="ignore"):
        debt = np.where(s.total_assets > 0, s.total_liabilities / s.total_assets, np.nan)
        current = np.where(
            s.current_liabilities > 0,
            s.current_assets / s.current_liabilities,
            np.where(s.current_liabilities == 0, np.inf, np.nan),
        )
        margin = np.where(s.revenue > 0, s.net_profit / s.revenue, np.nan)
    return {
        "registered_capital": pop.registered_capital.astype(np.float64),
        "operating_years": days / 365.25,
        "industry_policy": _LETTER_VALUE[letters.letters[:, 10]],
        "premises": _LETTER_VALUE[letters.letters[:, 5]] * 2 - 1,  # A 1, B 0
        "personal_credit": _PERSONAL_VALUE[pop.personal_level.astype(np.int64)],
        "tax_growth": letters.values[0],
        "utility_growth": letters.values[1],
        "social_insurance": np.clip(pop.insurances_paid, 0, 5) / 5.0,
        "housing_fund": (np.nan_to_num(pop.housing_contributors) > 0).astype(np.float64),
        "debt_ratio": debt,
        "current_ratio": current,
        "net_margin": margin,
        "revenue_growth": ratio(s.revenue, s.revenue_prev),
        "public_credit": _LETTER_VALUE[letters.letters[:, 8]],
        "environment": _ENVIRONMENT_VALUE[pop.environment.astype(np.int64)],
        "financial_credit": _LETTER_VALUE[letters.letters[:, 9]],
        "honours": honours,
        "industrial_performance": letters.values[2],
    }


def score_points(values: dict[str, np.ndarray], config: Grading) -> np.ndarray:
    """三.3 标准值法: each item earns ``points × clip((x − floor)/(standard − floor),
    0, 1)``; items that do not apply leave the total, and the earned points are scaled
    to 100 over the items that do (rounded to 0.01). NaN when no item applies."""
    n = len(next(iter(values.values())))
    earned = np.zeros(n)
    possible = np.zeros(n)
    for item in config.score_items:
        x = values[item.metric]
        applies = ~np.isnan(x)
        with np.errstate(invalid="ignore"):
            share = np.clip((x - item.floor) / (item.standard - item.floor), 0.0, 1.0)
        earned += np.where(applies, item.points * share, 0.0)
        possible += np.where(applies, item.points, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        out: np.ndarray = np.round(np.where(possible > 0, 100.0 * earned / possible, np.nan), 2)
    return out


def score_grades(score: np.ndarray) -> np.ndarray:
    """≥ 90 高级, ≥ 75 一级, below 备选; NO_GRADE where there is no score."""
    out: np.ndarray = np.where(
        np.isnan(score),
        NO_GRADE,
        np.where(score >= 90, HIGH, np.where(score >= 75, FIRST, ALTERNATE)),
    ).astype(np.int8)
    return out


def standards_cap(pop: Population) -> np.ndarray:
    """二.2 as caps: 高级 needs no dishonesty record; 一级 none within two years or all
    repaired; otherwise at best 备选."""
    out: np.ndarray = np.where(
        pop.dishonesty_total == 0, HIGH, np.where(pop.dishonesty_open_24m == 0, FIRST, ALTERNATE)
    ).astype(np.int8)
    return out


@dataclass(frozen=True)
class Grades:
    """A graded city: per enterprise the final grade and method, and what led to it."""

    as_of: date
    grade: np.ndarray  # int8 code (GRADES)
    method: np.ndarray  # int8 code (METHODS)
    letters: Letters
    indicator: np.ndarray  # the indicator method's grade before the bonus step
    bonus: np.ndarray  # bonus points
    direct: np.ndarray  # the direct method's grade (NO_GRADE: none)
    score: np.ndarray  # the 100-point score (NaN: not used)
    cap: np.ndarray  # the 二.2 cap (HIGH: none)
    statements_used: np.ndarray  # bool

    def counts(self) -> dict[str, int]:
        found = np.bincount(self.grade.astype(np.int64), minlength=len(GRADES))
        return {name: int(found[k]) for k, name in enumerate(GRADES)}


def grade(pop: Population, as_of: date, config: Grading) -> Grades:
    """Grade every enterprise of ``pop`` on ``as_of`` (docs/grading.md "Combining")."""
    check_config(config)
    n = len(pop)
    # 三.1(2): only enterprises in business are in scope; serious dishonesty is
    # filtered out before anything is ranked, so it never takes a place in a group.
    in_scope = pop.active
    filtered = in_scope & pop.serious
    graded = in_scope & ~filtered
    kept = _subset(pop, graded)
    letters_kept = indicator_letters(kept, as_of, config)
    letters = _expand_letters(letters_kept, graded, n)

    indicator = np.full(n, NO_GRADE, dtype=np.int8)
    indicator[graded] = indicator_grades(letters_kept.letters)
    bonus = np.zeros(n)
    bonus[graded] = bonus_points(kept, config)
    stepped = np.where(bonus >= config.bonus.threshold, np.maximum(indicator - 1, HIGH), indicator)

    statements = pop.statements or Statements.none(n)
    usable = usable_statements(statements, config.statements_tolerance) & graded
    score = np.full(n, np.nan)
    if config.combine.primary == "score_when_declared" and config.score_items and usable.any():
        values = metrics(pop, letters, as_of)
        score = np.where(usable, score_points(values, config), np.nan)
    by_score = score_grades(score)
    use_score = usable & (by_score != NO_GRADE)
    final = np.where(use_score, by_score, stepped).astype(np.int8)
    method = np.where(use_score, SCORE, INDICATOR).astype(np.int8)

    direct = np.where(graded, direct_grades(pop), NO_GRADE).astype(np.int8)
    if config.combine.direct != "off":
        better = direct < final
        final = np.where(better, direct, final)
        method = np.where(better, DIRECT, method).astype(np.int8)

    cap = standards_cap(pop) if config.combine.standards_cap else np.zeros(n, dtype=np.int8)
    final = np.maximum(final, cap).astype(np.int8)
    final[filtered] = EXCLUDED
    method[filtered] = FILTER
    final[~in_scope] = OUT_OF_SCOPE
    method[~in_scope] = FILTER
    return Grades(as_of, final, method, letters, indicator, bonus, direct, score, cap, usable)


def _subset(pop: Population, mask: np.ndarray) -> Population:
    def cut(x: np.ndarray) -> np.ndarray:
        out: np.ndarray = x[mask]
        return out

    statements = pop.statements or Statements.none(len(pop))
    return Population(
        **{
            name: cut(getattr(pop, name))
            for name in Population.__dataclass_fields__
            if name not in ("honours", "statements")
        },
        honours={k: cut(v) for k, v in pop.honours.items()},
        statements=Statements(**{k: cut(v) for k, v in statements.columns().items()}),
    )


def _expand_letters(part: Letters, mask: np.ndarray, n: int) -> Letters:
    letters = np.zeros((n, INDICATORS), dtype=np.int8)
    letters[mask] = part.letters

    def spread(r: Ranked) -> Ranked:
        out = Ranked(
            np.zeros(n, dtype=np.int8),
            np.zeros(n, dtype=np.int32),
            np.zeros(n, dtype=np.int32),
            np.full(n, -1, dtype=np.int8),
        )
        for full, cut in zip(
            (out.letter, out.rank, out.size, out.level),
            (r.letter, r.rank, r.size, r.level),
            strict=True,
        ):
            full[mask] = cut
        return out

    def values(v: np.ndarray) -> np.ndarray:
        full = np.full(n, np.nan)
        full[mask] = v
        return full

    r1, r2, r12 = (spread(r) for r in part.ranked)
    v1, v2, v12 = (values(v) for v in part.values)
    return Letters(letters, (r1, r2, r12), (v1, v2, v12))


__all__ = [
    "ALTERNATE",
    "EXCLUDED",
    "FIRST",
    "HIGH",
    "NA",
    "A",
    "B",
    "C",
    "Grades",
    "grade",
]
