"""One enterprise's explanation: every indicator's letter and why, ⑬ as reference
only, the methods' results, and what would raise the grade."""

from __future__ import annotations

from common.settings import Grading
from grading.engine import grade
from grading.explain import explain
from grading.population import Population
from tests.grading.conftest import AS_OF


def test_the_explanation_names_every_indicator_and_the_way_up() -> None:
    n = 6
    pop = Population.build(
        n,
        division=[13] * n,
        tax_paid=[300.0, 200, 150, 120, 110, 100],
        tax_paid_prev=[100.0] * n,
        insurances_paid=[4] * n,
        environment=[4] * n,
        dishonesty_total=[1] + [0] * 5,
        public_grade=[2] * n,
    )
    config = Grading.model_validate({"min_group": 5})
    out = explain(pop, grade(pop, AS_OF, config), 0)
    assert set(out["indicators"]) == {str(k) for k in range(1, 14)}
    first = out["indicators"]["1"]
    assert (first["letter"], first["rank"], first["of"], first["group"]) == ("A", 1, 6, "division")
    assert first["value"] == 3.0
    assert out["indicators"]["2"]["letter"] is None  # no utility data: not used
    assert out["indicators"]["8"]["letter"] is None
    assert "out of scope" in out["indicators"]["8"]["reason_en"]
    assert out["indicators"]["13"] == {
        "name": "信用互认及其他信息",
        "name_en": "Mutual recognition and other information",
        "letter": None,
        "reason": "仅作参考依据，不评定类别",
        "reason_en": "reference only: no letter",
    }
    # One repaired-or-old record caps at 一级; public credit grade B gives 一级 directly.
    assert (out["grade"], out["method"], out["cap"]) == ("一级", "direct", "一级")
    assert out["direct_grade"] == "一级" and out["public_credit_grade"] == "B"
    hints = {h["indicator"] for h in out["raise"]}
    assert {"3", "9"} <= hints and "1" not in hints
