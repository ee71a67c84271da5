"""What a node pushes up: its own and its children's figures merged per region (so a
province counts a county once, through its city), nulls left out, grade counts beside,
and the weighted rate carried back to its weight."""

from __future__ import annotations

from typing import Any

from financing import statistics
from gateway.node_statistics import PUSHED, push_figures, sums_of


def row(region: str, disbursed: int, rate: float | None, **more: int) -> dict[str, Any]:
    sums: dict[str, Any] = dict.fromkeys(statistics.SUMS, 0)
    sums.update(more, disbursed=disbursed, approved=1 if disbursed else 0)
    sums["rate_weight"] = (rate or 0.0) * disbursed
    return {"region": region, **statistics.figures(sums, {})}


def test_rows_of_one_region_merge_and_the_weighted_rate_is_recomputed() -> None:
    own = row("320281", 600_000, 4.0, registered=3)
    county = {**row("320281", 200_000, 3.0, registered=2), "node": "county"}
    other = row("320282", 0, None, registered=7)
    out = push_figures(
        [own, county, other], {"320281": {"grade_高级": 2}, "320299": {"grade_一级": 1}}
    )
    assert set(out) == {"320281", "320282", "320299"}
    a = out["320281"]
    assert a["disbursed"] == 800_000 and a["approved"] == 2 and a["registered"] == 5
    assert a["weighted_rate"] == round((4.0 * 600_000 + 3.0 * 200_000) / 800_000, 4)
    assert a["grade_高级"] == 2
    # Nothing disbursed: no rate (the parent refuses anything but numbers).
    assert "weighted_rate" not in out["320282"] and out["320282"]["registered"] == 7
    assert out["320299"] == {"grade_一级": 1}
    assert set(a) == set(PUSHED) | {"grade_高级"}


def test_pushed_figures_go_back_to_their_sums() -> None:
    figures = push_figures([row("320281", 500_000, 3.85, registered=4)], {})["320281"]
    sums = sums_of(figures)
    assert sums["disbursed"] == 500_000 and sums["registered"] == 4
    assert sums["rate_weight"] == 3.85 * 500_000
    assert statistics.figures(sums, {})["weighted_rate"] == 3.85
