"""The audit entry: what is recorded about one access, and its canonical bytes.

Invariants:
- an entry has exactly the fields below (unknown fields are refused, so a raw data
  value can never ride along under another name) and each field has its type;
- the log adds ``salt`` (16 random bytes, hex) so that nobody can confirm a guessed
  entry from its leaf hash; a caller never supplies it;
- the bytes hashed into the tree are the RFC 8785 canonical JSON of the *committed*
  entry, so anyone given a view of it can recompute the leaf hash.

Format 2 (``"v": 2``, every entry sealed now): what each viewer may see differs, and
every viewer can still check its leaf hash.
- in clear: ``v``, ``request_id``, ``client_request_id`` (when the caller gave one),
  ``time``, ``institution``, ``enterprise``, ``departments``, ``operation``,
  ``decision``, ``salt``;
- ``parts``: for each department of ``departments``, the hex SHA-256 of the RFC 8785
  JSON of ``{"department", "categories", "features", "salt"}``: that department's
  categories and features (by the catalog) with 16 fresh random bytes;
- ``private``: the hex SHA-256 of ``{"grant_id", "model_id", "categories", "features",
  "salt"}``: the grant and model ids and any category or feature of no listed
  department.
The openings (parts and private with their salts) are stored beside the entry. A
department is shown its own part opened and the others as commitments; the
enterprise, the institution and the operator are shown everything opened. A view
carries, for convenience, ``categories`` and ``features`` (the union of the opened
parts) and, when opened, ``grant_id`` and ``model_id``; the leaf hash ignores those
copies (``committed_from_view``).

Format 1 (no ``v``, entries written before format 2) hashed the whole entry; it stays
verifiable as it is. A department is shown a format 1 entry redacted to its own part
(``"redacted": true``), with the leaf hash but nothing to recompute it from.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from audit.errors import EntryInvalid
from common.canonical import canonical_json

MAX_TEXT = 200
MAX_ITEMS = 512
VERSION = 2

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
    # The person of an institution's console who asked (its login), in the private
    # part; absent when the institution's own client asked (the financing bank console).
    "actor": (_OPTIONAL_TEXT, False),
}
SALT = "salt"
PARTS = "parts"
PRIVATE = "private"
# What a format 2 entry shows every viewer, and hashes, in clear.
CLEAR = (
    "request_id",
    "client_request_id",
    "time",
    "institution",
    "enterprise",
    "departments",
    "operation",
    "decision",
)
_MAX_SAFE_INT = 2**53  # RFC 8785 numbers are IEEE doubles


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
        elif isinstance(value, int) and not 0 <= value < _MAX_SAFE_INT:
            raise EntryInvalid("audit entry time is POSIX seconds", field=name)
        if value is None and not required:
            continue  # an optional field that is absent and one that is null are one
        out[name] = value
    return out


def canonical(value: Any) -> bytes:
    """RFC 8785 bytes of an entry-shaped value (objects with ASCII keys, strings,
    integers below 2**53, null, lists). For exactly these, Python's sorted, compact
    JSON without ASCII escaping *is* RFC 8785 (same key order, same string escapes),
    at a fraction of the cost; anything else goes through the general implementation."""
    try:
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        if _plain(value):
            return text.encode("utf-8")
    except (TypeError, ValueError, UnicodeEncodeError):
        pass
    return canonical_json(value)


def _plain(value: Any) -> bool:
    # Exact str (the common case: names, ids, hex digests) first; subclasses and the
    # rest take the general checks below.
    if type(value) is str:
        return True
    if isinstance(value, dict):
        return all(k.isascii() and _plain(v) for k, v in value.items())
    if isinstance(value, list):
        return all(type(v) is str or _plain(v) for v in value)
    if isinstance(value, bool) or value is None:
        return True
    if isinstance(value, int):
        return -_MAX_SAFE_INT < value < _MAX_SAFE_INT
    # A string is plain: a lone surrogate fails the UTF-8 encoding in ``canonical``,
    # which then falls back to the general implementation.
    return isinstance(value, str)


def commitment(opened: Mapping[str, Any], department: str | None = None) -> str:
    """The hex SHA-256 commitment of an opened part (``department`` given) or of the
    opened private part."""
    body = dict(opened) if department is None else {"department": department, **opened}
    return hashlib.sha256(canonical(body)).hexdigest()


@dataclass(frozen=True)
class Sealed:
    committed: bytes  # canonical bytes of the committed entry: what the tree hashes
    opening: bytes  # canonical JSON {"parts": {department: opened}, "private": opened}


def _salt() -> str:
    return secrets.token_hex(16)


# The canonical bytes of an opened part up to its salt, by the part's content. A part's
# ``salt`` key sorts after every other key it has ("actor", "categories", "department",
# "features", "grant_id", "model_id"), so its RFC 8785 bytes are this prefix, the hex salt
# (which needs no escaping) and ``"}``; only the salt is fresh per entry. Bounded: the
# gateway's requests name a few fixed scopes, and the cache is dropped when full.
_PREFIXES: dict[tuple[Any, ...], bytes] = {}
_MAX_PREFIXES = 4096
_SALT_TAIL = b'"}'


def _prefix(opened: dict[str, Any], key: tuple[Any, ...]) -> bytes:
    """The canonical bytes of ``opened`` plus a salt, up to the salt's value: ``opened``
    must not hold ``salt`` and all its keys must sort before it."""
    prefix = _PREFIXES.get(key)
    if prefix is None:
        empty = canonical({**opened, SALT: ""})
        if not empty.endswith(b'"salt":""}'):  # pragma: no cover - a key after "salt"
            raise AssertionError("the salt is the last key of an opened part")
        prefix = empty[: -len(_SALT_TAIL)]
        if len(_PREFIXES) >= _MAX_PREFIXES:
            _PREFIXES.clear()
        _PREFIXES[key] = prefix
    return prefix


def _keyed_prefix(department: str, opened: dict[str, Any], names: tuple[Any, ...]) -> bytes:
    """``"department":`` and the opening's prefix, as the stored opening lists it."""
    key = ("k", department, *names)
    prefix = _PREFIXES.get(key)
    if prefix is None:
        prefix = canonical(department) + b":" + _prefix(opened, ("o", *names))
        if len(_PREFIXES) >= _MAX_PREFIXES:
            _PREFIXES.clear()
        _PREFIXES[key] = prefix
    return prefix


def seal(entry: Mapping[str, Any], category_departments: Mapping[str, str]) -> Sealed:
    """Validate the entry, split it into per-department parts (``category_departments``:
    the catalog's category -> department) and commit to each with a fresh salt."""
    fields = validate(entry)
    departments: list[str] = fields["departments"]
    own: dict[str, dict[str, Any]] = {d: {"categories": [], "features": []} for d in departments}
    rest: dict[str, list[str]] = {"categories": [], "features": []}
    for key in ("categories", "features"):
        for name in fields[key]:
            category = name.partition(".")[0] if key == "features" else name
            department = category_departments.get(category)
            (own[department][key] if department in own else rest[key]).append(name)
    # Each opening's bytes are built from a per-content prefix (``_prefix``) and its
    # fresh salt: the same RFC 8785 bytes ``commitment`` and ``canonical`` produce, without
    # re-serializing ~60 names per entry (tests/audit: test_seal_bytes_are_canonical).
    digests: dict[str, str] = {}
    opened_parts: list[bytes] = []
    for d in sorted(own):
        p = own[d]
        names = (tuple(p["categories"]), tuple(p["features"]))
        salt = _salt().encode("ascii") + _SALT_TAIL
        committed_part = _prefix({"department": d, **p}, ("c", d, *names)) + salt
        digests[d] = hashlib.sha256(committed_part).hexdigest()
        # The stored opening has no "department" key: the parts map names it.
        opened_parts.append(_keyed_prefix(d, p, names) + salt)
    private: dict[str, Any] = {
        "grant_id": fields.get("grant_id"),
        "model_id": fields.get("model_id"),
        **({"actor": fields["actor"]} if "actor" in fields else {}),
        **rest,
    }
    private_key = ("p", *((k, tuple(v) if isinstance(v, list) else v) for k, v in private.items()))
    private_bytes = _prefix(private, private_key) + _salt().encode("ascii") + _SALT_TAIL
    committed: dict[str, Any] = {k: fields[k] for k in CLEAR if k in fields}
    committed["v"] = VERSION
    committed[PARTS] = digests
    committed[PRIVATE] = hashlib.sha256(private_bytes).hexdigest()
    committed[SALT] = _salt()
    opening = b'{"parts":{' + b",".join(opened_parts) + b'},"private":' + private_bytes + b"}"
    if not all(d.isascii() for d in own):  # RFC 8785 orders such keys by UTF-16 units
        opening = canonical(json.loads(opening))
    return Sealed(canonical(committed), opening)


def decode(raw: bytes) -> dict[str, Any]:
    """The entry stored as canonical bytes."""
    value = json.loads(raw)
    if not isinstance(value, dict):
        raise EntryInvalid("a stored audit entry is not a JSON object")
    return value


def _opened_parts(
    committed: Mapping[str, Any], opening: bytes | None
) -> tuple[dict[str, Any], Any]:
    """The openings that match the committed entry: {department: opened part} and the
    opened private part (None when missing or when it does not match its commitment:
    a tampered opening is never shown)."""
    parts: dict[str, Any] = {}
    private: Any = None
    if opening is None:
        return parts, private
    try:
        stored = json.loads(opening)
    except ValueError:
        return parts, private
    if not isinstance(stored, dict):
        return parts, private
    commitments = committed.get(PARTS)
    given = stored.get(PARTS)
    if isinstance(commitments, dict) and isinstance(given, dict):
        for department, opened in given.items():
            if (
                isinstance(opened, dict)
                and department in commitments
                and commitment(opened, department) == commitments[department]
            ):
                parts[department] = opened
    candidate = stored.get(PRIVATE)
    if isinstance(candidate, dict) and commitment(candidate) == committed.get(PRIVATE):
        private = candidate
    return parts, private


def _names(parts: Sequence[Mapping[str, Any]], key: str) -> list[str]:
    out: set[str] = set()
    for part in parts:
        values = part.get(key)
        if isinstance(values, list):
            out.update(str(v) for v in values)
    return sorted(out)


def view(
    raw: bytes,
    opening: bytes | None,
    *,
    department: str | None = None,
    category_departments: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """What a viewer is shown of a stored entry: everything (``department`` None) or
    one department's part (see the module docstring)."""
    committed = decode(raw)
    if committed.get("v") != VERSION:
        return (
            committed
            if department is None
            else _redacted_v1(committed, department, category_departments or {})
        )
    parts, private = _opened_parts(committed, opening)
    listed = committed.get(PARTS)
    commitments: dict[str, Any] = listed if isinstance(listed, dict) else {}
    shown_parts: dict[str, Any] = {}
    for name, digest in commitments.items():
        visible = department is None or name == department
        shown_parts[name] = parts[name] if visible and name in parts else digest
    opened = [p for p in shown_parts.values() if isinstance(p, dict)]
    out: dict[str, Any] = {k: v for k, v in committed.items() if k not in (PARTS, PRIVATE)}
    out[PARTS] = shown_parts
    show_private = department is None and private is not None
    out[PRIVATE] = private if show_private else committed.get(PRIVATE)
    if show_private:
        opened.append(private)
        out["grant_id"] = private.get("grant_id")
        out["model_id"] = private.get("model_id")
        if "actor" in private:
            out["actor"] = private["actor"]
    out["categories"] = _names(opened, "categories")
    out["features"] = _names(opened, "features")
    return out


def _redacted_v1(
    entry: Mapping[str, Any], department: str, category_departments: Mapping[str, str]
) -> dict[str, Any]:
    """A format 1 entry as a department may see it: no other department's part, no
    grant or model id. Its leaf hash cannot be recomputed from this (format 1 hashed
    the whole entry); its inclusion still can be proven from the stated leaf hash."""

    def mine(name: str) -> bool:
        return category_departments.get(name.partition(".")[0]) == department

    out = {k: entry[k] for k in (*CLEAR, SALT) if k in entry}
    out["departments"] = [department] if department in (entry.get("departments") or []) else []
    out["categories"] = [c for c in entry.get("categories") or [] if mine(c)]
    out["features"] = [f for f in entry.get("features") or [] if mine(f)]
    out["redacted"] = True
    return out


def committed_from_view(shown: Mapping[str, Any]) -> dict[str, Any]:
    """The committed entry a format 2 view stands for: opened parts replaced by their
    commitments, the convenience copies dropped. Its canonical bytes hash to the leaf."""
    committed: dict[str, Any] = {k: shown[k] for k in (*CLEAR, "v", SALT) if k in shown}
    parts = shown.get(PARTS)
    if isinstance(parts, dict):
        committed[PARTS] = {
            d: p if isinstance(p, str) else commitment(p, d) for d, p in parts.items()
        }
    private = shown.get(PRIVATE)
    committed[PRIVATE] = private if isinstance(private, str) else commitment(private or {})
    return committed


def leaf_bytes(shown: Mapping[str, Any]) -> bytes:
    """The bytes whose leaf hash a viewer checks: for format 2 recomputed from the view,
    for format 1 the (unredacted) entry itself."""
    if shown.get("v") == VERSION:
        return canonical(committed_from_view(shown))
    return canonical_json(dict(shown))
