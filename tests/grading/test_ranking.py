"""Percentile ranks within industry groups (JY 附件2 三.1(3) ①②⑫): boundaries at
exactly 20% and 50%, ties, small groups, values that cannot be ranked."""

from __future__ import annotations

import numpy as np

from grading.ranking import CITY, DIVISION, NA, SECTION, A, B, C, rank_in_groups, ratio


def letters(values: list[float], divisions: list[int], min_group: int = 5) -> list[str]:
    r = rank_in_groups(np.array(values, dtype=float), np.array(divisions), min_group)
    return ["-ABC"[x] for x in r.letter.tolist()]


def test_ten_distinct_values_split_at_exactly_20_and_50_percent() -> None:
    values = [10.0, 9, 8, 7, 6, 5, 4, 3, 2, 1]
    # rank 2 of 10 is exactly 20%: A; rank 5 is exactly 50%: B; rank 6: C.
    assert letters(values, [13] * 10) == list("AABBBCCCCC")


def test_order_of_input_does_not_matter() -> None:
    values = [3.0, 10, 1, 8, 5, 9, 2, 7, 4, 6]
    got = letters(values, [13] * 10)
    expected = {10: "A", 9: "A", 8: "B", 7: "B", 6: "B"}
    assert got == [expected.get(int(v), "C") for v in values]


def test_ties_share_the_best_rank_of_their_block() -> None:
    # Three tied at the top of ten: all rank 1, all A (more than 20% A by the tie rule).
    assert letters([5.0, 5, 5, 4, 3, 2, 1, 0, -1, -2], [13] * 10) == list("AAABBCCCCC")
    # Ranks 5 and 6 tied: both rank 5, both B; the next is rank 7: C.
    assert letters([10.0, 9, 8, 7, 6, 6, 4, 3, 2, 1], [13] * 10) == list("AABBBBCCCC")
    r = rank_in_groups(np.array([2.0, 2, 1]), np.array([13, 13, 13]), 1)
    assert r.rank.tolist() == [1, 1, 3]


def test_each_division_is_ranked_on_its_own() -> None:
    values = [5.0, 4, 3, 2, 1, 50.0, 40, 30, 20, 10]
    got = letters(values, [13] * 5 + [65] * 5)
    # Five in a group: rank 1 is 20% (A), rank 2 is 40% (B), rank 3 is 60% (C).
    assert got == list("ABCCC") * 2


def test_a_small_division_falls_back_to_its_section_then_the_city() -> None:
    # Division 13 has 5 (enough at min_group 5), division 14 has 2: ranked in section C
    # (13-43: all 7). Division 65 (section I) has 1 and its section has 1: the city (8).
    values = np.array([9.0, 8, 7, 6, 5, 10, 1, 4])
    divisions = np.array([13, 13, 13, 13, 13, 14, 14, 65])
    r = rank_in_groups(values, divisions, 5)
    assert r.level.tolist() == [DIVISION] * 5 + [SECTION] * 2 + [CITY]
    assert r.size.tolist() == [5] * 5 + [7, 7, 8]
    # In section C: 10 is rank 1 of 7 (1 <= 1.4: A); 1 is rank 7 of 7: C.
    # In the city: 4 is rank 7 of 8: C.
    assert r.rank.tolist()[5:] == [1, 7, 7]
    assert r.letter.tolist() == [A, B, C, C, C, A, C, C]


def test_a_lone_enterprise_of_a_tiny_city_is_ranked_c() -> None:
    r = rank_in_groups(np.array([3.0]), np.array([13]), 10)
    assert (r.level[0], r.rank[0], r.size[0], r.letter[0]) == (CITY, 1, 1, C)


def test_values_that_cannot_be_ranked_get_no_letter_and_do_not_count() -> None:
    values = [np.nan, 10, 9, 8, 7, 6, np.nan]
    r = rank_in_groups(np.array(values), np.array([13] * 7), 5)
    assert r.letter.tolist() == [NA, A, B, C, C, C, NA]
    assert r.size.tolist() == [0, 5, 5, 5, 5, 5, 0]


def test_ratio_is_this_period_over_last_years_and_needs_last_year() -> None:
    got = ratio(np.array([120.0, 0, 5, np.nan]), np.array([100.0, 50, 0, 10]))
    assert got[0] == 1.2 and got[1] == 0
    assert np.isnan(got[2]) and np.isnan(got[3])
