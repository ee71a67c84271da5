"""``entry.seal`` builds its bytes from cached per-scope prefixes (issue 15, grade read
CPU); they must be exactly the bytes of the straightforward construction: the committed
entry, every part's commitment and the stored opening (docs/audit.md)."""

from __future__ import annotations

import hashlib
import itertools
from typing import Any

import pytest

from audit import entry as audit_entry
from audit.entry import PARTS, PRIVATE, SALT, VERSION, canonical, commitment, validate

DEPARTMENTS = {"tax": "tax", "social_security": "social_security", "registration": "market"}


def reference_seal(fields_in: dict[str, Any], salts: list[str]) -> audit_entry.Sealed:
    """The construction before the cache, salts taken in seal's order."""
    fields = validate(fields_in)
    own: dict[str, dict[str, Any]] = {
        d: {"categories": [], "features": []} for d in fields["departments"]
    }
    rest: dict[str, list[str]] = {"categories": [], "features": []}
    for key in ("categories", "features"):
        for name in fields[key]:
            category = name.partition(".")[0] if key == "features" else name
            department = DEPARTMENTS.get(category)
            (own[department][key] if department in own else rest[key]).append(name)
    it = iter(salts)
    parts = {d: {**own[d], SALT: next(it)} for d in sorted(own)}
    private = {
        "grant_id": fields.get("grant_id"),
        "model_id": fields.get("model_id"),
        **({"actor": fields["actor"]} if "actor" in fields else {}),
        **rest,
        SALT: next(it),
    }
    committed: dict[str, Any] = {k: fields[k] for k in audit_entry.CLEAR if k in fields}
    committed["v"] = VERSION
    committed[PARTS] = {d: commitment(p, d) for d, p in parts.items()}
    committed[PRIVATE] = commitment(private)
    committed[SALT] = next(it)
    return audit_entry.Sealed(canonical(committed), canonical({PARTS: parts, PRIVATE: private}))


def entry(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "request_id": "r-1",
        "time": 1700000000,
        "institution": "bank_a",
        "enterprise": "91320281MA1XXXXXX0",
        "departments": ["tax", "social_security", "market"],
        "categories": ["tax", "social_security", "registration", "personal_credit"],
        "features": ["tax.paid", "tax.last_year", "social_security.pension", "personal_credit.l"],
        "operation": "grade",
        "grant_id": "g-1",
        "model_id": None,
        "decision": "allowed",
    }
    base.update(over)
    return base


@pytest.mark.parametrize(
    "fields",
    [
        entry(),
        entry(actor="officer 王"),
        entry(departments=[], categories=["x"], features=[]),
        entry(grant_id=None, decision="grant_missing", client_request_id="abc"),
        entry(features=["tax.名称", 'tax.q"uote']),
    ],
)
def test_seal_bytes_are_canonical(monkeypatch: pytest.MonkeyPatch, fields: dict[str, Any]) -> None:
    salts = [hashlib.sha256(str(i).encode()).hexdigest()[:32] for i in range(40)]
    for _ in range(2):  # the second seal of the same scope reads the cached prefixes
        counter = itertools.count()
        monkeypatch.setattr(audit_entry, "_salt", lambda c=counter: salts[next(c)])
        got = audit_entry.seal(fields, DEPARTMENTS)
        assert got == reference_seal(fields, salts)


def test_each_seal_has_fresh_salts() -> None:
    a = audit_entry.seal(entry(), DEPARTMENTS)
    b = audit_entry.seal(entry(), DEPARTMENTS)
    assert a.committed != b.committed and a.opening != b.opening
