"""Objections and credit repair composed with the stores they touch (used by the API
and the web pages).

Invariants:
- an enterprise objects only about itself, to a feature of the catalog; the objection
  goes to the department that owns the feature, due on the official calendar;
- a correction, the records snapshot holding its value (provenance: file name
  ``objection:<id>``, actor the deciding department user) and the ``data.corrected``
  webhook events commit in ONE transaction, or none does;
- ``data.corrected`` goes to each institution whose allowed request about the
  enterprise used the feature in the last ``casework.notify_days`` days (from the audit
  log), naming the enterprise and the feature, never a value;
- a granted repair and its ``credit.repaired`` events (one per institution holding an
  active grant for the enterprise, naming enterprise and record) commit together;
- log lines name ids and codes, never a claim, a reason or a value.
"""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import date
from typing import Any, TypeVar
from urllib.parse import quote

from flask import Response
from sqlalchemy.exc import IntegrityError

from audit import store as audit_store
from casework import attachments, repairs, store
from casework import objections as core
from casework.errors import (
    AttachmentNotFound,
    NotOwningDepartment,
    NotRepairable,
    ObjectionNotFound,
    RepairNotFound,
)
from common.db import read_connection, read_session, write_session
from common.errors import Forbidden, InvalidInput
from common.logging import get_logger
from common.workdays import china_date
from consent import store as consent_store
from consent.service import Viewer
from gateway.auth import Principal
from gateway.services import Services
from records import store as records
from records.catalog import FeatureRule
from records.service import single_value

log = get_logger("gateway.casework")

EVENT_CORRECTED = "data.corrected"
EVENT_REPAIRED = "credit.repaired"

_Case = TypeVar("_Case")


def today() -> date:
    """Today in China Standard Time (the calendar deadlines are counted in)."""
    return china_date(time.time())


def _actor(principal: Principal) -> str:
    return f"{principal.kind}:{principal.login or principal.id}"


def _filing(svc: Services, principal: Principal, prefix: str, refusal: str) -> dict[str, Any]:
    """What every filing takes besides its kind's fields: a new id, the enterprise
    filing and its actor name, now, the calendar; raises Forbidden ``wrong_role`` with
    ``refusal`` unless ``principal`` is an enterprise."""
    if principal.kind != "enterprise" or principal.uscc is None:
        raise Forbidden(refusal, code="wrong_role")
    return {
        "id": prefix + uuid.uuid4().hex[:24],
        "enterprise": principal.uscc,
        "filed_by": _actor(principal),
        "now": int(time.time()),
        "calendar": svc.calendar,
    }


def _deciding_department(svc: Services, principal: Principal) -> str | None:
    """The department a decider speaks for (None: the caller is no department);
    raises Forbidden ``department_suspended`` when it is not active."""
    department = principal.department if principal.kind == "department" else None
    if department is not None:
        registered = svc.registry.get_department(department)
        if registered is None or registered.status != "active":
            raise Forbidden("the department is suspended", code="department_suspended")
    return department


def _visible(
    svc: Services,
    principal: Principal,
    lister: Callable[..., list[_Case]],
    status: str | None,
    what: str,
) -> list[_Case]:
    """Enterprise: its own cases; department: those it decides; operator: all;
    institutions: none (Forbidden ``wrong_role``)."""
    with read_session(svc.engine) as s:
        if principal.kind == "enterprise":
            return lister(s, enterprise=principal.uscc or "", status=status)
        if principal.kind == "department":
            return lister(s, department=principal.department or "", status=status)
        if principal.kind == "operator":
            return lister(s, status=status)
    raise Forbidden(f"institutions do not see {what}", code="wrong_role")


def file_objection(
    svc: Services,
    principal: Principal,
    feature: str,
    claim: str,
    attachment: tuple[str, bytes] | None = None,
) -> core.Objection:
    """The enterprise ``principal`` objects to ``feature`` of its own data, with an
    optional ``(file name, bytes)`` attachment stored in the same transaction."""
    filing = _filing(svc, principal, "obj_", "only an enterprise files an objection")
    rule = svc.catalog.features.get(feature)
    if rule is None:
        raise InvalidInput(f"unknown feature {feature!r}", code="unknown_feature", field="feature")
    cfg = svc.settings.config.casework
    objection = core.file(
        feature=feature,
        department=rule.department,
        claim=claim,
        working_days=cfg.objection_working_days,
        max_claim_chars=cfg.max_claim_chars,
        **filing,
    )
    evidence = None
    if attachment is not None:
        evidence = attachments.check(*attachment, max_bytes=cfg.max_attachment_bytes)
    with write_session(svc.engine) as s:
        store.insert(s, objection)
        if evidence is not None:
            store.insert_attachment(s, objection.id, evidence)
    log.info(
        "objection_filed",
        objection=objection.id,
        feature=feature,
        department=rule.department,
        due=objection.due.isoformat(),
        attachment=evidence.content_type if evidence else None,
    )
    return objection


def objection_attachment(
    svc: Services, principal: Principal, objection_id: str
) -> attachments.Attachment:
    """An objection's attachment, for the enterprise that filed it and the department
    that owns the feature only (others: 404, or 403 for another department)."""
    with read_session(svc.engine) as s:
        objection = store.get(s, objection_id)
        found = store.attachment(s, objection_id) if objection is not None else None
    if objection is None or not _may_see(principal, objection) or principal.kind == "operator":
        raise ObjectionNotFound(f"no objection {objection_id}")
    if principal.kind == "department" and principal.department != objection.department:
        raise NotOwningDepartment("only the department that owns the feature sees the attachment")
    if found is None:
        raise AttachmentNotFound(f"objection {objection_id} has no attachment")
    return found


def attachments_listed(
    svc: Services, objections: Sequence[core.Objection]
) -> dict[str, attachments.Attachment]:
    """The attachments (without bytes) of these objections, by objection id."""
    if not objections:
        return {}
    with read_session(svc.engine) as s:
        return store.attachments_of(s, [o.id for o in objections])


def visible_objections(
    svc: Services, principal: Principal, *, status: str | None = None
) -> list[core.Objection]:
    """Enterprise: its own; department: about its features; operator: all."""
    return _visible(svc, principal, store.listing, status, "objections")


def resolve_objection(
    svc: Services,
    principal: Principal,
    objection_id: str,
    *,
    decision: str,
    reason: str,
    value: Any = None,
    has_value: bool = False,
) -> core.Objection:
    """The owning department decides; a correction stores ``value`` as the feature's
    next snapshot and tells the institutions that used the old value."""
    with read_session(svc.engine) as s:
        objection = store.get(s, objection_id)
    if objection is None or not _may_see(principal, objection):
        raise ObjectionNotFound(f"no objection {objection_id}")
    now = int(time.time())
    department = _deciding_department(svc, principal)
    resolution = core.decide(
        objection,
        department=department,
        decision=decision,
        reason=reason,
        has_value=has_value,
        by=_actor(principal),
        now=now,
    )
    recipients: set[str] = set()
    if resolution.decision == "corrected":
        checked = single_value(svc.catalog, objection.enterprise, objection.feature, value)
        try:
            with write_session(svc.engine) as s:
                # The decision first: its conditional UPDATE settles a race between two
                # deciders before anything else is written.
                store.record_resolution(s, objection.id, resolution)
                import_id, version = records.save_snapshot(
                    s.connection(),
                    checked,
                    file_name=f"objection:{objection.id}",
                    actor=resolution.by,
                    now=now,
                )
                resolution = dataclasses.replace(resolution, import_id=import_id, version=version)
                store.record_correction(s, objection.id, import_id, version)
                since = now - svc.settings.config.casework.notify_days * 86400
                recipients = audit_store.institutions_answered(
                    s, objection.enterprise, objection.feature, since
                )
                for institution in sorted(recipients):
                    _enqueue_corrected(s, institution, objection, now)
        except IntegrityError as e:  # an import of the department took the version
            raise records.ConcurrentImport(
                f"another import of {objection.department} committed meanwhile; decide again"
            ) from e
    else:
        with write_session(svc.engine) as s:
            store.record_resolution(s, objection.id, resolution)
    log.info(
        "objection_resolved",
        objection=objection.id,
        decision=resolution.decision,
        version=resolution.version,
        notified=len(recipients),
        overdue=china_date(now) > objection.due,
    )
    return core.resolved(objection, resolution)


def _may_see(principal: Principal, objection: core.Objection) -> bool:
    if principal.kind == "enterprise":
        return principal.uscc == objection.enterprise
    return principal.kind in ("department", "operator")


def _enqueue_corrected(s: Any, institution: str, objection: core.Objection, now: int) -> None:
    _enqueue(
        s,
        institution,
        now,
        type=EVENT_CORRECTED,
        enterprise=objection.enterprise,
        feature=objection.feature,
        objection=objection.id,
    )


def _enqueue(s: Any, institution: str, now: int, **fields: str) -> None:
    """One signed webhook event through the durable outbox (never a value)."""
    event_id = "evt_" + uuid.uuid4().hex
    payload = json.dumps({"event_id": event_id, "at": now, **fields}, sort_keys=True)
    consent_store.enqueue_event(
        s, institution_id=institution, event_id=event_id, payload=payload, now=now
    )


def disputed(svc: Services, enterprise: str, features: Iterable[str]) -> list[str]:
    """The ``features`` of one enterprise under an open objection, sorted."""
    return disputed_each(svc, [enterprise], features).get(enterprise, [])


def disputed_each(
    svc: Services, enterprises: Sequence[str], features: Iterable[str]
) -> dict[str, list[str]]:
    """For each enterprise, its ``features`` under an open objection (one query; a bare
    connection, not an ORM session: every grade and report read asks)."""
    with read_connection(svc.engine) as conn:
        return store.disputed(conn, enterprises, features)


def feature_of(svc: Services, objection_id: str, principal: Principal) -> FeatureRule | None:
    """The catalog rule of the feature an objection visible to ``principal`` is about."""
    with read_session(svc.engine) as s:
        objection = store.get(s, objection_id)
    if objection is None or not _may_see(principal, objection):
        return None
    return svc.catalog.features.get(objection.feature)


# Credit repair ---------------------------------------------------------------------------


def file_repair(svc: Services, principal: Principal, record: str, reason: str) -> repairs.Repair:
    """The enterprise ``principal`` applies to repair one of its records."""
    filing = _filing(svc, principal, "rep_", "only an enterprise applies for credit repair")
    cfg = svc.settings.config.casework
    rule = svc.catalog.features.get(record)
    if rule is None or record not in cfg.repairable:
        raise NotRepairable(f"record: one of {list(cfg.repairable)}", field="record")
    repair = repairs.file(
        record=record,
        department=rule.department,
        reason=reason,
        working_days=cfg.repair_working_days,
        max_reason_chars=cfg.max_claim_chars,
        **filing,
    )
    with write_session(svc.engine) as s:
        store.insert_repair(s, repair)
    log.info("repair_filed", repair=repair.id, record=record, department=rule.department)
    return repair


def visible_repairs(
    svc: Services, principal: Principal, *, status: str | None = None
) -> list[repairs.Repair]:
    """Enterprise: its own; department: about its records; operator: all."""
    return _visible(svc, principal, store.list_repairs, status, "repair applications")


def resolve_repair(
    svc: Services, principal: Principal, repair_id: str, *, decision: str, reason: str
) -> repairs.Repair:
    """The owning department decides; a granted repair tells each institution holding an
    active grant for the enterprise (``credit.repaired``)."""
    with read_session(svc.engine) as s:
        repair = store.get_repair(s, repair_id)
    if repair is None or (principal.kind == "enterprise" and principal.uscc != repair.enterprise):
        raise RepairNotFound(f"no repair application {repair_id}")
    department = _deciding_department(svc, principal)
    now = int(time.time())
    resolution = repairs.decide(
        repair,
        department=department,
        decision=decision,
        reason=reason,
        by=_actor(principal),
        now=now,
    )
    holders: set[str] = set()
    if resolution.decision == "repaired":
        active = svc.consent.list(Viewer("enterprise", repair.enterprise), "active")
        holders = {row.institution_id for row in active}
    with write_session(svc.engine) as s:
        store.record_repair_resolution(s, repair.id, resolution)
        for institution in sorted(holders):
            _enqueue(
                s,
                institution,
                now,
                type=EVENT_REPAIRED,
                enterprise=repair.enterprise,
                record=repair.record,
                repair=repair.id,
            )
    log.info(
        "repair_resolved", repair=repair.id, decision=resolution.decision, notified=len(holders)
    )
    return repairs.resolved(repair, resolution)


def repaired(svc: Services, enterprise: str, records: Iterable[str]) -> list[str]:
    """The ``records`` of one enterprise marked repaired (已修复), sorted."""
    with read_session(svc.engine) as s:
        return store.repaired(s, enterprise, records)


def attachment_response(found: attachments.Attachment) -> Response:
    """The file as a download that no browser renders in the gateway's origin."""
    resp = Response(found.data, mimetype=found.content_type)
    resp.headers["Content-Disposition"] = "attachment; filename*=UTF-8''" + quote(found.file_name)
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Content-Security-Policy"] = "sandbox; default-src 'none'"
    resp.headers["Cache-Control"] = "private, no-store"
    return resp
