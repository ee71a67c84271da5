"""Which changes are risk alerts: pure, columnar.

The gateway reads, for the monitored enterprises only, each watched feature's value
before and after a change (an import, a month's grades) and hands them here as columns;
a rule answers with a mask of the positions that fire. No value leaves this module:
what an alert carries (a kind and two band labels) is built by the caller from the
catalog's bands.

Rules (``alerts.rules`` in the config, ``common.settings.AlertRule``):
- ``increase``: a count rose (an enterprise with no earlier value counts from 0);
- ``becomes``: the value became one of ``values`` and was not one before (an enum
  value, or ``true``/``false`` for a boolean);
- ``reaches``: a numeric value is at or above ``threshold`` and was below it (or had
  no value) before;
- grade down (built in): the month's grade is worse than the previous month's, both
  being certification grades (an enterprise graded for the first time, or out of
  scope either month, fires nothing).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from common.settings import AlertRule


def _numbers(values: Sequence[Any]) -> np.ndarray:
    """Numbers as floats, NaN where there is no number (absent, or not numeric)."""
    out = np.full(len(values), np.nan)
    for i, v in enumerate(values):  # the monitored enterprises only, never an import
        if isinstance(v, int | float) and not isinstance(v, bool):
            out[i] = float(v)
    return out


def _texts(values: Sequence[Any]) -> np.ndarray:
    """Values as the strings a ``becomes`` rule names (booleans as true/false)."""
    return np.array(
        [
            ("true" if v else "false") if isinstance(v, bool) else ("" if v is None else str(v))
            for v in values
        ],
        dtype=object,
    )


def fired(rule: AlertRule, old: Sequence[Any], new: Sequence[Any]) -> np.ndarray:
    """A boolean mask: which (old, new) pairs the rule turns into an alert. ``old`` is
    None where the enterprise had no earlier value."""
    if len(old) != len(new):
        raise ValueError("old and new must be aligned")
    if rule.when == "becomes":
        watched = list(rule.values)
        now_in = np.isin(_texts(new), watched)
        was_in = np.isin(_texts(old), watched)
        result: np.ndarray = now_in & ~was_in
        return result
    before, after = _numbers(old), _numbers(new)
    if rule.when == "increase":
        rose: np.ndarray = np.nan_to_num(after, nan=0.0) > np.nan_to_num(before, nan=0.0)
        return rose
    assert rule.when == "reaches" and rule.threshold is not None
    t = rule.threshold
    with np.errstate(invalid="ignore"):
        return (after >= t) & ~(before >= t)


def grade_down(old: np.ndarray, new: np.ndarray, certified: int) -> np.ndarray:
    """Grades worse than the month before: both among the first ``certified`` grade
    codes (0 is the best) and the new code higher. ``old`` is -1 where the enterprise
    was not graded the month before."""
    old = np.asarray(old)
    new = np.asarray(new)
    known = (old >= 0) & (old < certified) & (new >= 0) & (new < certified)
    result: np.ndarray = known & (new > old)
    return result
