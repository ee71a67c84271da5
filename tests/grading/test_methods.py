"""The direct method (三.2), the 100-point method (三.3) and how the methods combine:
serious dishonesty filtered first, enterprises not in business out of scope, the
standards of 二.2 as caps, the bonus step, and the configured choice of method."""

from __future__ import annotations

import numpy as np
import pytest

from common.errors import ConfigError
from common.settings import Grading
from grading.engine import (
    ALTERNATE,
    DIRECT,
    EXCLUDED,
    FILTER,
    FIRST,
    HIGH,
    INDICATOR,
    NO_GRADE,
    OUT_OF_SCOPE,
    SCORE,
    direct_grades,
    grade,
    score_grades,
    score_points,
)
from grading.population import Population, Statements
from grading.ranking import NA, A
from tests.grading.conftest import AS_OF


def test_direct_by_honours_needs_three_clean_years() -> None:
    pop = Population.build(
        5,
        honours={"quality_award": [True, True, True, True, False]},
        dishonesty_36m=[0, 1, 0, 0, 0],
        penalties_36m=[0, 0, 1, 0, 0],
        serious=[False, False, False, True, False],
    )
    assert direct_grades(pop).tolist() == [HIGH, NO_GRADE, NO_GRADE, NO_GRADE, NO_GRADE]


def test_direct_by_public_credit_grade() -> None:
    # A+ A B C D none
    pop = Population.build(6, public_grade=[0, 1, 2, 3, 4, -1])
    assert direct_grades(pop).tolist() == [HIGH, HIGH, FIRST, ALTERNATE, ALTERNATE, NO_GRADE]


def test_direct_takes_the_better_of_its_two_parts() -> None:
    pop = Population.build(1, public_grade=[3], honours={"tax_a": [True]})
    assert direct_grades(pop).tolist() == [HIGH]


def score_config(**combine: object) -> Grading:
    return Grading.model_validate(
        {
            "score_items": [
                {"metric": "debt_ratio", "points": 60, "floor": 1.0, "standard": 0.5},
                {"metric": "environment", "points": 40, "floor": 0, "standard": 1},
            ],
            "combine": {"direct": "off", "standards_cap": False, **combine},
        }
    )


def statements(n: int, assets: list[float], liabilities: list[float]) -> Statements:
    ta, tl = np.array(assets), np.array(liabilities)
    return Statements(
        total_assets=ta,
        current_assets=ta / 2,
        total_liabilities=tl,
        current_liabilities=tl / 2,
        equity=ta - tl,
        revenue=np.full(n, 100.0),
        revenue_prev=np.full(n, 100.0),
        net_profit=np.full(n, 5.0),
    )


def test_standard_values_score_linearly_between_floor_and_standard() -> None:
    config = score_config()
    values = {
        # debt ratio 0.5 full 60, 0.75 half 30, 1.2 none; environment blue 0.7 of 40.
        "debt_ratio": np.array([0.5, 0.75, 1.2, 0.3]),
        "environment": np.array([1.0, 0.7, np.nan, 1.0]),
    }
    got = score_points(values, config)
    # Out of scope: only the 60 points that apply count, scaled to 100.
    assert got.tolist() == [100.0, 58.0, 0.0, 100.0]


def test_score_thresholds_include_90_and_75() -> None:
    got = score_grades(np.array([90.0, 89.99, 75.0, 74.99, np.nan]))
    assert got.tolist() == [HIGH, FIRST, FIRST, ALTERNATE, NO_GRADE]


def test_the_score_method_decides_when_statements_are_on_file_and_add_up() -> None:
    config = score_config()
    s = statements(3, [100.0, 100.0, np.nan], [50.0, 50.0, np.nan])
    s.equity[1] = 40.0  # does not add up: 100 != 50 + 40
    pop = Population.build(3, environment=[0, 0, 0], statements=s)
    out = grade(pop, AS_OF, config)
    assert out.method.tolist() == [SCORE, INDICATOR, INDICATOR]
    assert out.score[0] == 100.0 and np.isnan(out.score[1])
    assert out.grade[0] == HIGH
    assert out.statements_used.tolist() == [True, False, False]
    indicator_only = grade(pop, AS_OF, score_config(primary="indicator"))
    assert indicator_only.method.tolist() == [INDICATOR] * 3


def test_the_direct_method_raises_only_when_configured() -> None:
    pop = Population.build(2, public_grade=[0, 4])
    on = grade(pop, AS_OF, Grading.model_validate({"combine": {"standards_cap": False}}))
    assert on.grade.tolist() == [HIGH, ALTERNATE]
    assert on.method.tolist() == [DIRECT, INDICATOR]  # D never lowers: the indicator stands
    off = grade(pop, AS_OF, Grading.model_validate({"combine": {"direct": "off"}}))
    assert off.method.tolist() == [INDICATOR, INDICATOR]


def test_dishonesty_caps_every_method_by_the_standards() -> None:
    pop = Population.build(
        3,
        public_grade=[0, 0, 0],
        dishonesty_total=[0, 1, 1],
        dishonesty_open_24m=[0, 0, 1],
    )
    config = Grading()
    out = grade(pop, AS_OF, config)
    assert out.cap.tolist() == [HIGH, FIRST, ALTERNATE]
    assert out.grade.tolist() == [HIGH, FIRST, ALTERNATE]
    uncapped = grade(pop, AS_OF, Grading.model_validate({"combine": {"standards_cap": False}}))
    assert uncapped.grade.tolist() == [HIGH, HIGH, HIGH]


def test_serious_dishonesty_is_filtered_before_ranking_whatever_else_holds() -> None:
    n = 6
    pop = Population.build(
        n,
        division=[13] * n,
        tax_paid=[999.0, 5, 4, 3, 2, 1],
        tax_paid_prev=[1.0] * n,
        serious=[True] + [False] * 5,
        public_grade=[0] * n,
        honours={"famous_brand": [True] * n},
    )
    out = grade(pop, AS_OF, Grading(min_group=5))
    assert out.grade[0] == EXCLUDED and out.method[0] == FILTER
    assert out.letters.letters[0].tolist() == [NA] * 12
    # The filtered enterprise took no place: the best of the other five is rank 1 of 5.
    assert out.letters.ranked[0].rank.tolist() == [0, 1, 2, 3, 4, 5]
    assert out.letters.letters[1, 0] == A


def test_enterprises_not_in_business_are_out_of_scope() -> None:
    pop = Population.build(2, active=[False, True], public_grade=[0, 0])
    out = grade(pop, AS_OF, Grading())
    assert out.grade.tolist() == [OUT_OF_SCOPE, HIGH]
    assert out.counts()["不在认证范围"] == 1


def test_the_bonus_raises_the_indicator_grade_one_step() -> None:
    config = Grading.model_validate(
        {
            "bonus": {"threshold": 2, "points": {"famous_brand": 2, "high_tech": 1}},
            "combine": {"direct": "off", "standards_cap": False},
        }
    )
    pop = Population.build(
        3, high_tech=[True, True, False], honours={"famous_brand": [True, False, False]}
    )
    out = grade(pop, AS_OF, config)
    assert out.indicator.tolist() == [ALTERNATE] * 3
    assert out.grade.tolist() == [FIRST, ALTERNATE, ALTERNATE]


def test_unknown_metrics_and_bonus_items_are_refused() -> None:
    pop = Population.build(1)
    bad_metric = Grading.model_validate(
        {"score_items": [{"metric": "shoe_size", "points": 100, "floor": 0, "standard": 1}]}
    )
    with pytest.raises(ConfigError, match="shoe_size"):
        grade(pop, AS_OF, bad_metric)
    with pytest.raises(ConfigError, match="lucky"):
        grade(pop, AS_OF, Grading.model_validate({"bonus": {"points": {"lucky": 1}}}))


def test_score_items_must_add_up_to_100_points() -> None:
    with pytest.raises(ValueError, match="100"):
        Grading.model_validate(
            {"score_items": [{"metric": "honours", "points": 50, "floor": 0, "standard": 1}]}
        )


def test_the_bundled_config_is_complete(bundled: Grading) -> None:
    grade(Population.build(1), AS_OF, bundled)  # every metric and bonus item known
    assert sum(i.points for i in bundled.score_items) == 100
