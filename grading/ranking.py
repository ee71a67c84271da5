"""Percentile ranks within industry groups: JY 附件2 三.1(3) ①②⑫.

"排名在前20%的企业列入A类，排名在20%—50%的企业列入B类，其余列入C类", read as
(docs/grading.md "Ranking"):

- rank 1 is the largest value; tied values share the best rank of their block
  (competition ranking, 1-2-2-4), so ties are never split and never pushed down;
- with ``r`` the rank and ``n`` the enterprises ranked in the group: A when
  ``r <= 0.2 n``, B when ``r <= 0.5 n``, otherwise C; the comparisons are made in
  integers (``5r <= n``, ``2r <= n``) so exactly 20% and 50% are inside;
- the group is the enterprise's GB/T 4754 division; a division with fewer than
  ``min_group`` ranked enterprises falls back to its whole section, a section with too
  few to the whole city (ranked however few it has);
- an enterprise without a value (NaN) is not ranked and gets no letter.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from grading.population import section_of

NA, A, B, C = 0, 1, 2, 3
DIVISION, SECTION, CITY = 0, 1, 2


@dataclass(frozen=True)
class Ranked:
    """Per enterprise: the letter (NA/A/B/C), the rank, the group's size and level
    (DIVISION/SECTION/CITY; -1 when not ranked)."""

    letter: np.ndarray  # int8
    rank: np.ndarray  # int32, 0 when not ranked
    size: np.ndarray  # int32, 0 when not ranked
    level: np.ndarray  # int8


def _ranks(values: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Competition ranks (1 = largest) of ``values`` within equal ``keys`` (small
    non-negative ints), and each one's group size."""
    n = len(values)
    if n == 0:
        return np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.int32)
    order = np.lexsort((-values, keys))
    k = keys[order]
    v = values[order]
    positions = np.arange(n)
    new_group = np.r_[True, k[1:] != k[:-1]]
    group_start = np.maximum.accumulate(np.where(new_group, positions, 0))
    new_tie = new_group | np.r_[True, v[1:] != v[:-1]]
    tie_start = np.maximum.accumulate(np.where(new_tie, positions, 0))
    rank = np.empty(n, dtype=np.int32)
    rank[order] = tie_start - group_start + 1
    size = np.bincount(keys).astype(np.int32)[keys]
    return rank, size


def rank_in_groups(values: np.ndarray, division: np.ndarray, min_group: int) -> Ranked:
    """Letters for ``values`` (NaN: not ranked) grouped by ``division``."""
    n = len(values)
    letter = np.zeros(n, dtype=np.int8)
    rank = np.zeros(n, dtype=np.int32)
    size = np.zeros(n, dtype=np.int32)
    level = np.full(n, -1, dtype=np.int8)
    ranked = np.flatnonzero(~np.isnan(values))
    if len(ranked) == 0:
        return Ranked(letter, rank, size, level)
    v = values[ranked].astype(np.float64)
    div = np.asarray(division, dtype=np.int64)[ranked]
    sec = section_of(div) + 1  # 0: unknown division, ranked with the city
    div_count = np.bincount(div, minlength=98)
    sec_count = np.bincount(sec, minlength=21)
    chosen = np.where(
        (div > 0) & (div_count[div] >= min_group),
        DIVISION,
        np.where((sec > 0) & (sec_count[sec] >= min_group), SECTION, CITY),
    ).astype(np.int8)
    r = np.zeros(len(ranked), dtype=np.int32)
    s = np.zeros(len(ranked), dtype=np.int32)
    for lvl, keys in ((DIVISION, div), (SECTION, sec), (CITY, np.zeros_like(div))):
        here = chosen == lvl
        if not here.any():
            continue
        # Rank every enterprise at this level's grouping: a small division's members
        # are ranked among their whole section (or city), big divisions included.
        all_r, all_s = _ranks(v, keys)
        r[here], s[here] = all_r[here], all_s[here]
    rank[ranked], size[ranked], level[ranked] = r, s, chosen
    r64, s64 = r.astype(np.int64), s.astype(np.int64)
    letter[ranked] = np.where(5 * r64 <= s64, A, np.where(2 * r64 <= s64, B, C))
    return Ranked(letter, rank, size, level)


def ratio(current: np.ndarray, previous: np.ndarray) -> np.ndarray:
    """This period over the same period last year; NaN when last year's is missing
    or not positive (nothing to compare with: the indicator does not apply)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out: np.ndarray = np.where(previous > 0, current / previous, np.nan)
    return out
