"""The audit entry: what is recorded about one access, and its canonical bytes.

Invariants:
- an entry has exactly the fields below (unknown fields are refused, so a raw data
  value can never ride along under another name) and each field has its type;
- the log adds ``salt`` (16 random bytes, hex) so that nobody can confirm a guessed
  entry from its leaf hash; a caller never supplies it;
- the bytes hashed into the tree are the RFC 8785 canonical JSON of the entry, so
  anyone can recompute a leaf hash from the entry a query returns.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from typing import Any

from audit.errors import EntryInvalid
from common.canonical import canonical_json

MAX_TEXT = 200
MAX_ITEMS = 512

# field -> (types allowed, required)
_TEXT = (str,)
_OPTIONAL_TEXT = (str, type(None))
_LIST = (list, tuple)
FIELDS: dict[str, tuple[tuple[type, ...], bool]] = {
    "request_id": (_TEXT, True),  # the gateway's own id of the request
    # The caller's X-Request-Id when it was plain and short: a label, trusted for nothing.
    "client_request_id": (_OPTIONAL_TEXT, False),
    "time": ((int,), True),  # POSIX seconds claimed by the gateway
    "institution": (_OPTIONAL_TEXT, True),
    "enterprise": (_OPTIONAL_TEXT, True),  # USCC
    "departments": (_LIST, True),
    "categories": (_LIST, True),
    "features": (_LIST, True),  # feature ids, never values
    "operation": (_TEXT, True),
    "grant_id": (_OPTIONAL_TEXT, True),
    "model_id": (_OPTIONAL_TEXT, True),
    "decision": (_TEXT, True),  # "allowed" or a refusal code
}
SALT = "salt"


def _check_text(name: str, value: str) -> None:
    if not value or len(value) > MAX_TEXT:
        raise EntryInvalid(f"audit entry field {name!r} must be 1 to {MAX_TEXT} characters")


def validate(entry: Mapping[str, Any]) -> dict[str, Any]:
    """A plain dict of the entry's fields, lists sorted; raises EntryInvalid."""
    if not isinstance(entry, Mapping):
        raise EntryInvalid("an audit entry is a mapping")
    unknown = sorted(set(entry) - set(FIELDS))
    if unknown:
        raise EntryInvalid(f"audit entries have no field {unknown[0]!r}", field=unknown[0])
    out: dict[str, Any] = {}
    for name, (types, required) in FIELDS.items():
        if name not in entry:
            if required:
                raise EntryInvalid(f"audit entry field {name!r} is missing", field=name)
            continue
        value = entry[name]
        if not isinstance(value, types) or isinstance(value, bool):
            raise EntryInvalid(f"audit entry field {name!r} has the wrong type", field=name)
        if isinstance(value, str):
            _check_text(name, value)
        elif isinstance(value, list | tuple):
            if len(value) > MAX_ITEMS or not all(isinstance(v, str) for v in value):
                raise EntryInvalid(f"audit entry field {name!r} is a list of names", field=name)
            for v in value:
                _check_text(name, v)
            value = sorted(set(value))
        elif isinstance(value, int) and value < 0:
            raise EntryInvalid("audit entry time is POSIX seconds", field=name)
        out[name] = value
    return out


def seal(entry: Mapping[str, Any]) -> tuple[dict[str, Any], bytes]:
    """Validate, add a fresh salt, and return the entry with its canonical bytes."""
    fields = validate(entry)
    fields[SALT] = secrets.token_hex(16)
    return fields, canonical_json(fields)


def decode(raw: bytes) -> dict[str, Any]:
    """The entry stored as canonical bytes."""
    value = json.loads(raw)
    if not isinstance(value, dict):
        raise EntryInvalid("a stored audit entry is not a JSON object")
    return value
