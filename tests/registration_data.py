"""Test helper: a market-regulation registration record with the legal representative's
name and id, stored exactly as the registration import keeps it (the id as
``records.pseudonyms.legal_rep_id_hash`` under the instance's pseudonym key)."""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

from records import identity
from records import store as records
from records.importer import Checked
from records.pseudonyms import legal_rep_id_hash


def resident_id(body17: str) -> str:
    """A valid resident id: ``body17`` (17 digits) and its check character."""
    return body17 + identity.resident_id_check(body17)


def seed_registration(svc: Any, people: dict[str, tuple[str, str]]) -> None:
    """Store one registration snapshot: ``{uscc: (name, raw id)}``."""
    key = svc.identity_key()
    rows = [
        (
            uscc,
            json.dumps([name, legal_rep_id_hash(key, raw_id)], ensure_ascii=False),
        )
        for uscc, (name, raw_id) in sorted(people.items())
    ]
    checked = Checked(
        department="market_regulation",
        features=(identity.NAME_FEATURE, identity.ID_FEATURE),
        rows=rows,
        rejects=[],
        row_count=len(rows),
        sha256=hashlib.sha256(repr(rows).encode()).hexdigest(),
    )
    records.save_loaded(
        svc.engine, checked, file_name="registration.csv", actor="test", now=int(time.time())
    )
