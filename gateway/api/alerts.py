"""Risk alerts pulled by institutions (CONTRACT v2 "Objections, credit repair, risk
alerts"; JS 9; AH 9; YX 四(四)一; docs/alerts.md).

Invariants:
- an institution sees its own published alerts only, in the order they were published,
  a page at a time (``after`` = the previous page's ``next``);
- every alert listed was logged as an access when it was recorded (``audit_index``);
  listing it again reveals nothing the ``risk.alert`` event did not already carry, so
  the listing itself is not a new access;
- an alert carries a kind and bands, never a value.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from gateway import alerts
from gateway.api import schemas
from gateway.auth import authenticated, current_principal
from gateway.contract import operation
from gateway.services import services

bp = Blueprint("alerts", __name__)


@bp.get("/v1/alerts")
@authenticated("institution")
@operation(
    "The institution's risk alerts about enterprises it monitors (consent op monitor), "
    "oldest first after `after`; kinds and bands only; each one was logged as an access",
    tag="alerts",
    query=schemas.AlertsQuery,
    answer=schemas.Alerts,
)
def list_alerts(query: schemas.AlertsQuery) -> dict[str, Any]:
    svc = services()
    found = alerts.page(
        svc.engine, current_principal().id, query.after, svc.settings.config.alerts.page
    )
    return {
        "alerts": [a.as_json() for a in found],
        "next": found[-1].seq if found else query.after,
    }
