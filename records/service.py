"""Importing a department file: check it against the catalog, then store it as the
department's next snapshot, or record the refusal. Used by ``xinyi data import`` and
the department import API alike.

Log lines name the department, counts and reason codes, never a cell's value.
"""

from __future__ import annotations

import csv
import io
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine

from common.errors import InvalidInput
from common.logging import get_logger
from records import importer, store
from records.catalog import Catalog, InvalidValue, parse_value
from records.importer import Checked, Reject
from records.pseudonyms import legal_rep_id_hash

log = get_logger("records")

# How many reasons an error body lists (the stored history and the CLI file have more).
REJECTS_SHOWN = 1000


class UnknownDepartment(InvalidInput):
    code = "unknown_department"


class ImportRejected(InvalidInput):
    """A file with problems: nothing was loaded. ``rejects`` holds every reason."""

    code = "import_rejected"

    def __init__(self, record: store.ImportRecord, rejects: list[Reject]) -> None:
        shown = [
            {"line": r.line, "column": r.column, "code": r.code, "reason": r.reason}
            for r in rejects[:REJECTS_SHOWN]
        ]
        more = "" if len(rejects) <= REJECTS_SHOWN else f" (the first {REJECTS_SHOWN} are listed)"
        super().__init__(
            f"{len(rejects)} problems in {record.department} file {record.file_name!r} "
            f"(import {record.id}); nothing was loaded{more}",
            rejects=shown,
            import_id=record.id,
        )
        self.record = record
        self.all_rejects = rejects


def import_csv(
    engine: Engine,
    catalog: Catalog,
    department: str,
    data: bytes,
    *,
    file_name: str,
    actor: str,
    on_checked: Callable[[int], None] | None = None,
    on_written: Callable[[int], None] | None = None,
    before_write: Callable[[Checked], None] | None = None,
    pseudonym_key: bytes | None = None,
) -> store.ImportRecord:
    """Check and load one CSV of ``department``: all or nothing. Raises
    :class:`ImportRejected` (after recording the attempt) when any row is bad."""
    if department not in catalog.departments:
        raise UnknownDepartment(
            f"unknown department {department!r}; the catalog has {sorted(catalog.departments)}"
        )
    started = time.monotonic()
    # Keyed-hash columns (the legal representative's id) are stored only as their
    # HMAC under the key store's pseudonym key; without it such a file is refused.
    keyed: dict[str, Callable[[str], str]] = {}
    if pseudonym_key is not None:
        key = pseudonym_key
        keyed = {
            fid: (lambda raw: legal_rep_id_hash(key, raw))
            for fid, rule in catalog.department_features(department).items()
            if rule.spec.keyed_hash
        }
    checked = importer.check(catalog, department, data, progress=on_checked, keyed=keyed)
    now = int(time.time())
    if not checked.ok:
        record = store.save_rejected(engine, checked, file_name=file_name, actor=actor, now=now)
        codes: dict[str, Any] = dict(Counter(r.code for r in checked.rejects))
        log.warning(
            "records_import_rejected",
            department=department,
            import_id=record.id,
            rows=checked.row_count,
            reject_count=len(checked.rejects),
            codes=codes,
        )
        raise ImportRejected(record, checked.rejects)
    if before_write is not None:
        before_write(checked)
    record = store.save_loaded(
        engine, checked, file_name=file_name, actor=actor, now=now, progress=on_written
    )
    log.info(
        "records_import_loaded",
        department=department,
        import_id=record.id,
        version=record.version,
        rows=record.row_count,
        features=list(record.features),
        seconds=round(time.monotonic() - started, 3),
    )
    return record


def single_value(catalog: Catalog, uscc: str, feature: str, raw: Any) -> Checked:
    """One enterprise's new value of one feature (a JSON value, as a department sends it
    when it corrects an objection) checked exactly as an import cell would be, ready for
    ``store.save_snapshot``. Raises InvalidValue (field ``value``, never echoing it)."""
    rule = catalog.rule(feature)
    value = parse_value(rule.spec, raw)
    if isinstance(value, bool):
        cell = "true" if value else "false"
    elif isinstance(value, float) and value.is_integer():
        cell = str(int(value))
    else:
        cell = str(value)
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerows([("uscc", feature), (uscc, cell)])
    checked = importer.check(catalog, rule.department, text.getvalue().encode("utf-8"))
    if not checked.ok:
        problem = checked.rejects[0]
        raise InvalidValue(f"value: {problem.reason}", field="value", reason_code=problem.code)
    return checked
