"""The legal representative at sign-up: the PRC resident identity number (GB
11643-1999) an enterprise types, and its comparison with the registration record.

Invariants:
- a resident id is never stored, logged or compared in clear: the registration import
  stores ``records.pseudonyms.legal_rep_id_hash(key, id)`` in
  ``registration.legal_representative_id`` and sign-up compares the *same* function of
  what the enterprise typed (one function, one normal form, one key:
  ``KeyRing.pseudonym_key(LEGAL_REP_ID)``), so a copy of the database does not let
  anyone test guessed ids without that key;
- sign-up takes resident ids only (18 characters, a date of birth, the check
  character), stricter than the import, which also keeps other id documents;
- names are compared after Unicode NFKC normalisation with all whitespace removed
  (full-width and half-width forms, a stray space, are the same name).

Pure: no Flask, no SQL.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from datetime import date

from common.errors import InvalidInput
from records.pseudonyms import LEGAL_REP_ID, legal_rep_id_hash

# GB 11643-1999: 17 digits and a check character (0-9 or X).
_SHAPE = re.compile(r"^[0-9]{17}[0-9X]$")
_WEIGHTS = tuple(pow(2, 17 - i, 11) for i in range(17))
_CHECK = "10X98765432"
# The feature ids of the registration data (catalog ``registration``).
NAME_FEATURE = "registration.legal_representative"
ID_FEATURE = LEGAL_REP_ID


class InvalidResidentId(InvalidInput):
    code = "invalid_resident_id"


def normalise_resident_id(raw: str) -> str:
    """``raw`` without whitespace, ``x`` upper-cased (not yet validated)."""
    return "".join(raw.split()).upper()


def resident_id_check(body: str) -> str:
    """The check character of the first 17 digits of a resident id."""
    total = sum(int(c) * w for c, w in zip(body, _WEIGHTS, strict=True))
    return _CHECK[total % 11]


def resident_id_problem(raw: str) -> str | None:
    """Why ``raw`` is not an 18-character resident id, or None when it is."""
    value = normalise_resident_id(raw)
    if len(value) != 18:
        return f"must be 18 characters, got {len(value)}"
    if not _SHAPE.match(value):
        return "must be 17 digits and a check character (0-9 or X)"
    try:
        date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return "characters 7-14 must be a date of birth (YYYYMMDD)"
    if resident_id_check(value[:17]) != value[17]:
        return "the check character does not match (GB 11643-1999)"
    return None


def validate_resident_id(raw: str) -> str:
    """The normal form of ``raw``; raises ``InvalidResidentId`` (never echoing the
    value) when it is not a valid resident id."""
    why = resident_id_problem(raw)
    if why is not None:
        raise InvalidResidentId(
            f"legal_representative_id: not a PRC resident identity number: {why}",
            field="legal_representative_id",
        )
    return normalise_resident_id(raw)


def normalise_name(name: str) -> str:
    """A person's name as compared: NFKC, no whitespace, case-folded (Latin names)."""
    return "".join(unicodedata.normalize("NFKC", name).split()).casefold()


def legal_rep_matches(
    key: bytes,
    *,
    name: str,
    raw_id: str,
    recorded_name: object,
    recorded_id_hash: object,
) -> bool:
    """Whether the typed name and id match the registration record. Both comparisons
    are always made (constant time for the hash), so the answer takes the same time
    whichever part differs."""
    typed_hash = legal_rep_id_hash(key, raw_id)
    stored = recorded_id_hash if isinstance(recorded_id_hash, str) else ""
    id_ok = hmac.compare_digest(typed_hash.encode(), stored.encode())
    typed_name = hashlib.sha256(normalise_name(name).encode()).digest()
    stored_name = normalise_name(recorded_name) if isinstance(recorded_name, str) else ""
    name_ok = bool(stored_name) and hmac.compare_digest(
        typed_name, hashlib.sha256(stored_name.encode()).digest()
    )
    return id_ok and name_ok


__all__ = [
    "ID_FEATURE",
    "NAME_FEATURE",
    "InvalidResidentId",
    "legal_rep_matches",
    "normalise_name",
    "normalise_resident_id",
    "resident_id_check",
    "resident_id_problem",
    "validate_resident_id",
]
