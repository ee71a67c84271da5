"""The statistics of a network of nodes (issue 18; CONTRACT v2 "Nodes", last paragraph;
JY 三(三)3; docs/network.md "Statistics up"): what a child pushes to its parent, and
how a parent counts what its children pushed.

Invariants:
- a child pushes, per region it serves, the same figures ``GET /v1/statistics``
  answers for that region (``PUSHED``; a null figure is left out), plus its grade
  counts; a region's figures at a node that itself has children are its own rows and
  its children's merged (so a province counts a county through its city, once);
- a parent counts the LATEST push per (child, region, month)
  (``nodes.store.node_child_statistics``): its ``by_region`` lists its own rows and
  its children's, each marked by ``node``; its top-level figures are the sum of all
  of them (its own and its children's); ``by_institution`` stays its own (children
  push by region only);
- a weighted average rate goes back to its weight as ``weighted_rate × disbursed``:
  the rate is rounded to 4 decimals at the child, so a merged rate can differ from the
  exact one in its 4th decimal at most.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Engine

from common.db import read_connection
from financing import statistics
from nodes import store as node_store

PUSHED = (
    "registered",
    "real_name",
    "authorizing",
    "market_entities",
    "applications",
    "approved",
    "credit_lines",
    "disbursed",
    "credit_loan_disbursed",
    "first_loans",
    "weighted_rate",
)
"""The numeric figures of a ``GET /v1/statistics`` region row (shares and targets are
derived from them and the parent's own targets)."""


def sums_of(figures: Mapping[str, Any]) -> dict[str, Any]:
    """The additive sums (``financing.statistics.SUMS``) behind a region's figures."""
    sums: dict[str, Any] = {k: int(figures.get(k) or 0) for k in statistics.SUMS}
    rate = figures.get("weighted_rate")
    sums["rate_weight"] = float(rate) * sums["disbursed"] if rate is not None else 0.0
    return sums


def own_node(engine: Engine) -> str | None:
    """This instance's node name, or None when it is no node."""
    with read_connection(engine) as c:
        found = node_store.identity(c)
    return None if found is None else found.name


def children(
    engine: Engine, month: str, region: str | None
) -> list[tuple[str, str, dict[str, Any]]]:
    """``(child, region, sums)`` of what this node's children pushed for ``month``
    (only ``region`` when given), latest push each."""
    rows = node_store.children_statistics(engine, month)
    return [
        (str(r["node"]), str(r["region"]), sums_of(r))
        for r in rows
        if region is None or r["region"] == region
    ]


def with_children(
    engine: Engine,
    month: str,
    region: str | None,
    own: Mapping[str, Mapping[str, Any]],
    targets: Mapping[str, float],
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The top-level sums and the ``by_region`` rows of this node's statistics: its own
    regions (``own``: region → sums) and its children's pushed figures, each row marked
    by ``node`` when this instance is a node."""
    name = own_node(engine)
    pushed = children(engine, month, region)
    groups: dict[str, Mapping[str, Any]] = {f"{name}/{r}": s for r, s in own.items()}
    groups.update({f"{child}/{r}": s for child, r, s in pushed})
    mark: dict[str, Any] = {} if name is None else {"node": name}
    rows = [{"region": r, **mark, **statistics.figures(own[r], targets)} for r in own]
    rows += [
        {"region": r, "node": child, **statistics.figures(s, targets)} for child, r, s in pushed
    ]
    rows.sort(key=lambda row: (row["region"], row.get("node") or ""))
    return statistics.merge(groups), rows


def push_figures(
    by_region: Iterable[Mapping[str, Any]], grade_counts: Mapping[str, Mapping[str, int]]
) -> dict[str, dict[str, Any]]:
    """``{region: figures}`` to push up, from this node's ``by_region`` rows (its own and
    its children's, merged per region) and its grade counts by region."""
    merged: dict[str, dict[str, Any]] = {}
    for row in by_region:
        into = merged.setdefault(str(row["region"]), dict.fromkeys(statistics.SUMS, 0))
        for k, v in sums_of(row).items():
            into[k] += v
    out: dict[str, dict[str, Any]] = {}
    for r, sums in merged.items():
        figures = statistics.figures(sums, {})
        out[r] = {k: figures[k] for k in PUSHED if figures[k] is not None}
    for r, counts in grade_counts.items():
        out.setdefault(r, {}).update(counts)
    return out
