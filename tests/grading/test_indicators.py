"""JY 附件2 三.1(3): every fixed indicator rule ③–⑪ on known answers, and the grade
the letters give (9 A, 6 A, one C, indicators that do not apply, the bonus step)."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from common.settings import Grading
from grading.engine import (
    ALTERNATE,
    FIRST,
    HIGH,
    anniversary_reached,
    bonus_points,
    indicator_grades,
    indicator_letters,
)
from grading.population import Population
from grading.ranking import NA, A, B, C
from tests.grading.conftest import AS_OF


def column(plain: Grading, k: int, **given: object) -> list[str]:
    """Indicator ``k`` (1-based) for enterprises built from ``given``."""
    n = len(next(iter(given.values())))  # type: ignore[arg-type]
    pop = Population.build(n, **given)
    got = indicator_letters(pop, AS_OF, plain).letters[:, k - 1]
    return ["-ABC"[x] for x in got.tolist()]


def test_3_all_five_insurances_paid_without_arrears(plain: Grading) -> None:
    got = column(
        plain, 3, insurances_paid=[5, 5, 4, 0, -1], insurance_arrears_months=[0, 2, 0, 0, np.nan]
    )
    assert got == ["A", "B", "B", "B", "B"]


def test_4_housing_fund_contributors_or_not_classified(plain: Grading) -> None:
    assert column(plain, 4, housing_contributors=[3, 0, np.nan]) == ["A", "-", "-"]


def test_5_three_years_in_business(plain: Grading) -> None:
    established = np.array(
        ["2022-06-30", "2022-07-01", "2010-01-01", "2025-01-01"], "datetime64[D]"
    )
    # The third anniversary on the grading day itself counts as three years (A).
    assert column(plain, 5, established=established) == ["A", "B", "A", "B"]


def test_anniversaries_of_29_february() -> None:
    born = np.array(["2020-02-29"], "datetime64[D]")
    assert not anniversary_reached(born, date(2023, 2, 28), 3)[0]
    assert anniversary_reached(born, date(2023, 3, 1), 3)[0]


def test_6_owned_premises_or_high_tech_leasing(plain: Grading) -> None:
    got = column(plain, 6, premises=[1, 0, 0, -1], high_tech=[False, False, True, False])
    assert got == ["A", "B", "A", "B"]


def test_7_personal_credit_a_or_better(plain: Grading) -> None:
    # AAA AA A B C D none
    assert column(plain, 7, personal_level=[0, 1, 2, 3, 4, 5, -1]) == list("AAABCCC")


def test_8_environment_colours_and_out_of_scope_left_out(plain: Grading) -> None:
    # green blue yellow red out_of_scope no-record
    assert column(plain, 8, environment=[0, 1, 2, 3, 4, -1]) == list("ABCC--")


def test_9_dishonesty_records(plain: Grading) -> None:
    got = column(
        plain,
        9,
        dishonesty_total=[0, 1, 1, 2, 3],
        dishonesty_open_24m=[0, 0, 1, 0, 0],
    )
    # none A; one repaired or old B; one open within two years C; two or more C.
    assert got == ["A", "B", "C", "C", "C"]


def test_10_financial_credit_record(plain: Grading) -> None:
    got = column(
        plain,
        10,
        loan_record=[1, 1, 1, 1, 1, 0, -1],
        default_records=[0, 1, 2, 2, 3, 0, 0],
        interest_arrears=[False, False, False, True, False, False, False],
    )
    assert got == ["A", "B", "B", "C", "C", "B", "B"]


def test_11_industry_policy_table() -> None:
    config = Grading(encouraged_divisions=("39",), restricted_divisions=("25",))
    got = column(config, 11, division=[39, 25, 52, 0])
    assert got == ["A", "C", "B", "B"]


def test_1_2_12_are_ranked_and_need_a_base(plain: Grading) -> None:
    pop = Population.build(
        6,
        division=[13] * 6,
        tax_paid=[200.0, 150, 110, 100, 90, 50],
        tax_paid_prev=[100.0] * 5 + [0.0],
        industrial_evaluated=[True, True, True, True, True, False],
        industrial_score=[90.0, 80, 70, 60, 50, 99],
    )
    out = indicator_letters(pop, AS_OF, plain)
    # Five ratios ranked (the sixth has no previous year): 2.0 A, 1.5 B, rest C.
    assert out.letters[:, 0].tolist() == [A, B, C, C, C, NA]
    assert out.letters[:, 1].tolist() == [NA] * 6  # no utility data at all
    assert out.letters[:, 11].tolist() == [A, B, C, C, C, NA]  # not evaluated: left out


def grade_of(row: str) -> int:
    """The indicator grade of one enterprise whose letters are ``row`` (12 chars of
    A/B/C/-)."""
    letters = np.array([["-ABC".index(c) for c in row]], dtype=np.int8)
    return int(indicator_grades(letters)[0])


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ("AAAAAAAAABBB", HIGH),  # 9 A, no C
        ("AAAAAAAAAAAA", HIGH),
        ("AAAAAAAABBBB", FIRST),  # 8 A: "6个A" read as 6 to 8
        ("AAAAAAABBBBB", FIRST),  # 7 A
        ("AAAAAABBBBBB", FIRST),  # exactly 6 A
        ("AAAAABBBBBBB", ALTERNATE),  # 5 A
        ("AAAAAAAAAAAC", ALTERNATE),  # one C bars every grade above 备选
        ("AAAAAAAAA---", HIGH),  # 9 A of the 9 that apply
        ("AAAAAA------", FIRST),  # 6 A, the rest not applicable
        ("AAAAA-------", ALTERNATE),
    ],
)
def test_the_letters_give_the_grade(row: str, expected: int) -> None:
    assert grade_of(row) == expected


def test_bonus_points_add_up_the_configured_honours() -> None:
    config = Grading.model_validate(
        {"bonus": {"threshold": 3, "points": {"famous_brand": 2, "high_tech": 1}}}
    )
    pop = Population.build(
        3, high_tech=[True, True, False], honours={"famous_brand": [True, False, True]}
    )
    assert bonus_points(pop, config).tolist() == [3.0, 1.0, 2.0]
