"""Keyed hashes of personal identifiers (PIPL art. 51: de-identification; CONTRACT v2
sign-up: "the id is kept only as a keyed hash").

The legal representative's id number arrives in the market-regulation import file
(column ``registration.legal_representative_id``) and is stored only as
``legal_rep_id_hash(key, id)``: HMAC-SHA256 under the key store's pseudonym key
(``keys.KeyRing.pseudonym_key``), lowercase hex. The sign-up check computes the same
function over what the person types and compares. Pure: no key is read here.

Invariants: the same id under the same key always gives the same hash, whatever the
letter case of the check character or the spaces around it; an id that is not an
18-character resident id (17 digits and a digit or X) or a passport-like id of 6 to 20
letters and digits is refused (``CellProblem`` ``wrong_type``), its value never echoed.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from records.catalog import CellProblem

# The feature whose raw value is hashed, and the key store label its key is derived for.
LEGAL_REP_ID = "registration.legal_representative_id"

_ID = re.compile(r"[0-9]{17}[0-9X]|[A-Z0-9]{6,20}")
HASH_PATTERN = re.compile(r"[0-9a-f]{64}")


def normalize_id(raw: str) -> str:
    """The id as hashed: spaces dropped, letters upper case; raises CellProblem."""
    text = "".join(raw.split()).upper()
    if not _ID.fullmatch(text):
        raise CellProblem(
            "wrong_type",
            "the value is not an id number (18-character resident id or 6-20 letters and digits)",
        )
    return text


def legal_rep_id_hash(key: bytes, raw_id: str) -> str:
    """HMAC-SHA256 of the normalized id under ``key``, as 64 lowercase hex digits."""
    if len(key) < 32:
        raise ValueError("the pseudonym key must be at least 32 bytes")
    return hmac.new(key, normalize_id(raw_id).encode("ascii"), hashlib.sha256).hexdigest()
