"""Risk alerts composed with the stores they read and write (JS 9; AH 9; YX 四(四)一;
docs/alerts.md).

A *sweep* looks at every loaded import and every month's grades it has not looked at
yet: for the enterprises under an active ``monitor`` grant, and only for them, it reads
the watched features' values before and after (``records.store.changes``: rows by
primary key, never a scan of the import), applies the configured rules
(``alerts.rules``, columnar) and records one alert per grant that covers the feature's
category. *Publishing* gives each recorded alert its audit log index, its place
(``seq``) and its signed ``risk.alert`` webhook event. Both run in every worker's
background loop (``Services.start_background``); tools and tests call them directly.

Invariants:
- an alert goes only to an institution whose grant, at sweep time, is active (not
  paused, revoked or expired), names op ``monitor`` and the feature's category (any
  category for a grade), was valid when the change was made (an import made before
  the grant was approved alerts nobody), and whose institution is active;
- each alert is an access: its audit entry (operation ``monitor``, the institution,
  the enterprise, the category and feature, the grant; never a value) is queued in the
  transaction that records it, so the enterprise sees it among its accesses;
- an alert carries a kind and band labels (the catalog's bands, or the rule's; enum and
  boolean values a rule names; grade names), never a value;
- a swept import or month, its alerts and their audit entries commit together.
"""

from __future__ import annotations

import json
import secrets
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from alerts import rules, store
from audit import store as audit_store
from audit.service import AuditLog
from common.db import read_connection, write_session
from common.logging import get_logger
from common.settings import AlertRule, Feature, Settings
from consent import store as consent_store
from consent.store import Monitor
from grading.engine import GRADES
from grading.service import grade_runs, grades
from records import store as records
from records.catalog import Value, bands

log = get_logger("gateway.alerts")

EVENT_ALERT = "risk.alert"
OPERATION = "monitor"
GRADE_DOWN = "grade_down"
CERTIFIED = 4  # grade codes 0..3 (高级 … 不予认证); 4 is 不在认证范围
LATE_COMMIT_WINDOW = 1000  # imports an uncommitted one may fall behind and still be swept
_IN_CHUNK = 500


@dataclass(frozen=True)
class Found:
    """One change of one enterprise that a rule turned into an alert (no value)."""

    enterprise: str
    kind: str
    category: str | None  # None: the grade
    feature: str | None
    from_band: str | None
    to_band: str


def band_label(settings: Settings, rule: AlertRule, value: Value | None) -> str | None:
    """What an alert says about one value: the band it falls in (numeric), or the
    value itself for an enum or boolean rule (values the config names). None: none."""
    if value is None:
        return None
    if rule.when == "becomes":
        return ("true" if value else "false") if isinstance(value, bool) else str(value)
    _, _, spec = settings.feature(rule.feature)
    if rule.bands is not None:
        spec = Feature.model_validate({**spec.model_dump(), "bands": rule.bands})
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    for b in bands(spec):
        if (b.lower is None or value >= b.lower) and (b.upper is None or value < b.upper):
            return b.label
    return None


def detect_import(
    settings: Settings, changes: records.Changes, watched: Sequence[AlertRule]
) -> list[Found]:
    """The alerts one import's changes fire (columnar over the monitored enterprises)."""
    found: list[Found] = []
    for rule in watched:
        if rule.feature not in changes.new:
            continue
        old, new = changes.old[rule.feature], changes.new[rule.feature]
        for i in np.flatnonzero(rules.fired(rule, old, new)).tolist():
            to = band_label(settings, rule, new[i])
            if to is None:
                continue
            found.append(
                Found(
                    enterprise=changes.usccs[i],
                    kind=rule.kind,
                    category=rule.feature.partition(".")[0],
                    feature=rule.feature,
                    from_band=band_label(settings, rule, old[i]),
                    to_band=to,
                )
            )
    return found


def _entry(settings: Settings, monitor: Monitor, found: Found, now: int) -> dict[str, Any]:
    """The audit entry of one alert: an access by the institution, under its grant."""
    categories = [found.category] if found.category else []
    cats = settings.config.categories
    return {
        "request_id": "alert-" + secrets.token_hex(10),
        "time": now,
        "institution": monitor.institution_id,
        "enterprise": monitor.enterprise,
        "departments": sorted({cats[c].department for c in categories if c in cats}),
        "categories": categories,
        "features": [found.feature] if found.feature else [],
        "operation": OPERATION,
        "grant_id": monitor.grant_id,
        "model_id": None,
        "decision": "allowed",
    }


def _record(
    s: Any,
    settings: Settings,
    audit: AuditLog,
    monitors: Sequence[Monitor],
    found: Sequence[Found],
    *,
    source: str,
    changed_at: int,
    now: int,
) -> int:
    """One alert (and its audit entry) per grant that covers each change; the count."""
    by_enterprise: dict[str, list[Monitor]] = {}
    for m in monitors:
        if m.since <= changed_at:  # the change was made while the grant was valid
            by_enterprise.setdefault(m.enterprise, []).append(m)
    rows: list[dict[str, Any]] = []
    for f in found:
        for m in by_enterprise.get(f.enterprise, ()):
            if f.category is not None and f.category not in m.categories:
                continue
            rows.append(
                {
                    "institution_id": m.institution_id,
                    "enterprise": f.enterprise,
                    "grant_id": m.grant_id,
                    "kind": f.kind,
                    "feature": f.feature,
                    "from_band": f.from_band,
                    "to_band": f.to_band,
                    "source": source,
                    "at": now,
                    "audit_queue_id": audit.enqueue(s, _entry(settings, m, f, now)),
                }
            )
    store.insert(s, rows)
    return len(rows)


def sweep(engine: Engine, settings: Settings, audit: AuditLog) -> int:
    """Look at every import and month of grades not looked at yet; returns how many
    alerts were recorded. Safe in several workers at once (one wins each source)."""
    total = 0
    now = int(time.time())
    with read_connection(engine) as conn:
        monitors = consent_store.monitoring(conn, now)
        latest = records.last_import_id(conn)
        imports = records.loaded_after(
            conn, max(latest - LATE_COMMIT_WINDOW, 0), LATE_COMMIT_WINDOW
        )
        done = store.swept_import_ids(conn, [r.id for r in imports])
    for record in imports:
        if record.id not in done:
            total += _sweep_import(engine, settings, audit, monitors, record, now)
    if settings.config.alerts.grade_down:
        total += _sweep_grades(engine, settings, audit, monitors, now)
    return total


def _sweep_import(
    engine: Engine,
    settings: Settings,
    audit: AuditLog,
    monitors: Sequence[Monitor],
    record: records.ImportRecord,
    now: int,
) -> int:
    watched = [r for r in settings.config.alerts.rules if r.feature in record.features]
    relevant = [
        m
        for m in monitors
        if m.since <= record.imported_at
        and any(r.feature.partition(".")[0] in m.categories for r in watched)
    ]
    usccs = sorted({m.enterprise for m in relevant})
    started = time.monotonic()
    try:
        with write_session(engine) as s:
            store.mark_import_swept(s, record.id, now)
            found: list[Found] = []
            if usccs:
                changes = records.changes(
                    s.connection(), record.id, [r.feature for r in watched], usccs
                )
                found = detect_import(settings, changes, watched)
            count = _record(
                s,
                settings,
                audit,
                relevant,
                found,
                source=f"import:{record.id}",
                changed_at=record.imported_at,
                now=now,
            )
    except IntegrityError:
        return 0  # another worker swept this import
    if count or usccs:
        log.info(
            "alerts_swept_import",
            import_id=record.id,
            monitored=len(usccs),
            alerts=count,
            seconds=round(time.monotonic() - started, 3),
        )
    return count


def _month_grades(conn: sa.Connection, month: str, usccs: Sequence[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for start in range(0, len(usccs), _IN_CHUNK):
        chunk = list(usccs[start : start + _IN_CHUNK])
        q = sa.select(grades.c.uscc, grades.c.grade).where(
            grades.c.month == month, grades.c.uscc.in_(chunk)
        )
        out.update({str(u): int(g) for u, g in conn.execute(q)})
    return out


def _sweep_grades(
    engine: Engine, settings: Settings, audit: AuditLog, monitors: Sequence[Monitor], now: int
) -> int:
    with read_connection(engine) as conn:
        runs = [
            (str(m), int(at))
            for m, at in conn.execute(
                sa.select(grade_runs.c.month, grade_runs.c.computed_at).order_by(grade_runs.c.month)
            )
        ]
        done = store.swept_month_names(conn)
    total = 0
    for k, (month, computed_at) in enumerate(runs):
        if month in done:
            continue
        previous = runs[k - 1][0] if k else None
        relevant = [m for m in monitors if m.since <= computed_at]
        usccs = sorted({m.enterprise for m in relevant})
        try:
            with write_session(engine) as s:
                store.mark_month_swept(s, month, now)
                found: list[Found] = []
                if usccs and previous is not None:
                    conn = s.connection()
                    new = _month_grades(conn, month, usccs)
                    old = _month_grades(conn, previous, usccs)
                    codes = sorted(new)
                    before = np.array([old.get(u, -1) for u in codes], dtype=np.int16)
                    after = np.array([new[u] for u in codes], dtype=np.int16)
                    for i in np.flatnonzero(rules.grade_down(before, after, CERTIFIED)).tolist():
                        found.append(
                            Found(
                                codes[i],
                                GRADE_DOWN,
                                None,
                                None,
                                GRADES[int(before[i])],
                                GRADES[int(after[i])],
                            )
                        )
                total += _record(
                    s,
                    settings,
                    audit,
                    relevant,
                    found,
                    source=f"grades:{month}",
                    changed_at=computed_at,
                    now=now,
                )
        except IntegrityError:
            continue  # another worker swept this month
    return total


def publish(engine: Engine, audit: AuditLog, limit: int = 1000) -> int:
    """Give recorded alerts their log index, place and webhook event, oldest first;
    stops at the first whose audit entry is not integrated yet (order is kept).
    Returns how many were published."""
    audit.integrate_pending()
    with read_connection(engine) as conn:
        waiting = store.unpublished(conn, limit)
        ready: list[tuple[store.Alert, int]] = []
        for alert in waiting:
            index = audit_store.index_of(conn, alert.audit_queue_id)
            if index is None:
                break
            ready.append((alert, int(index)))
    if not ready:
        return 0
    try:
        with write_session(engine) as s:
            seq = store.last_seq(s)
            for alert, index in ready:
                seq += 1
                event_id = "evt_" + uuid.uuid4().hex
                if not store.publish(s, alert.id, seq=seq, audit_index=index, event_id=event_id):
                    raise IntegrityError("publish", {}, Exception("published meanwhile"))
                published = store.Alert(
                    **{**alert.__dict__, "seq": seq, "audit_index": index, "event_id": event_id}
                )
                payload = json.dumps(
                    {"event_id": event_id, "type": EVENT_ALERT, **published.as_json()},
                    sort_keys=True,
                    ensure_ascii=False,
                )
                consent_store.enqueue_event(
                    s,
                    institution_id=alert.institution_id,
                    event_id=event_id,
                    payload=payload,
                    now=alert.at,
                )
    except IntegrityError:
        return 0  # another worker published these; the next round goes on from there
    return len(ready)


def page(engine: Engine, institution: str, after: int, limit: int) -> list[store.Alert]:
    """An institution's published alerts after ``after`` (its ``next``)."""
    with read_connection(engine) as conn:
        return store.page(conn, institution, after, limit)
