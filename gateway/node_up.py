"""What a node sends up to its parent (issue 18; JS 14, JY 三(三)3): objections
overdue at this node, forwarded with their deadline, once each; the month's statistics
(the figures ``GET /v1/statistics`` answers, by region, with the grade counts) are
queued by ``xinyi node push-statistics`` (``push_statistics``).

Invariant: every message is queued in the node outbox in ONE transaction with the
check that it was not queued before (``dedup_key``), so forwarding runs any number of
times, in any number of workers, and each overdue objection goes up once.
"""

from __future__ import annotations

import time
from datetime import date
from typing import Any

from sqlalchemy import Engine

from casework import store as casework_store
from common.db import read_session, write_session
from common.logging import get_logger
from common.settings import Settings
from common.workdays import china_date
from gateway import node_statistics
from gateway.financing import statistics_report
from nodes import store as node_store

log = get_logger("gateway.node_up")


def forward_overdue_objections(engine: Engine, today: date | None = None) -> int:
    """Queue every open objection past its due date for the parent; returns how many
    were newly queued (0 when this node has no parent)."""
    today = today or china_date(int(time.time()))
    with read_session(engine) as s:
        if node_store.parent(s) is None:
            return 0
        overdue = [o for o in casework_store.listing(s, status="open") if o.due < today]
    queued = 0
    now = int(time.time())
    for o in overdue:
        with write_session(engine) as s:
            seq = node_store.enqueue_up(
                s,
                "objection_overdue",
                {
                    "id": o.id,
                    "enterprise": o.enterprise,
                    "feature": o.feature,
                    "department": o.department,
                    "due": o.due.isoformat(),
                    "filed_at": o.filed_at,
                },
                now,
                dedup_key=f"objection:{o.id}",
            )
        queued += seq is not None
    if queued:
        log.info("objections_forwarded_up", count=queued)
    return queued


def grade_counts_by_region(engine: Engine, month: str) -> dict[str, dict[str, int]]:
    """``{region: {"grade_高级": n, …}}`` of the grades computed for ``month`` (region =
    the USCC's division code); empty when the month was not graded."""
    import sqlalchemy as sa

    from grading.engine import GRADES
    from grading.service import grades

    region = sa.func.substr(grades.c.uscc, 3, 6)
    q = (
        sa.select(region.label("region"), grades.c.grade, sa.func.count().label("n"))
        .where(grades.c.month == month)
        .group_by(region, grades.c.grade)
    )
    out: dict[str, dict[str, int]] = {}
    with engine.connect() as c:
        for r in c.execute(q):
            out.setdefault(str(r.region), {})[f"grade_{GRADES[int(r.grade)]}"] = int(r.n)
    return out


def statistics_to_push(settings: Settings, engine: Engine, month: str) -> dict[str, dict[str, Any]]:
    """``{region: figures}`` this node pushes up for ``month``: the figures ``GET
    /v1/statistics`` answers here, by region (its own and its children's, merged per
    region), with the month's grade counts (``gateway.node_statistics``)."""
    report = statistics_report(settings, engine, month)
    return node_statistics.push_figures(report["by_region"], grade_counts_by_region(engine, month))


def push_statistics(settings: Settings, engine: Engine, month: str, now: int) -> int:
    """Queue ``month``'s statistics for the parent (one message per region, one
    transaction); returns how many (0 when this node has no parent)."""
    figures = statistics_to_push(settings, engine, month)
    with write_session(engine) as s:
        n = node_store.push_statistics(s, month, figures, now)
    log.info("statistics_pushed_up", month=month, messages=n)
    return n
