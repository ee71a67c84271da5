"""Entry format 2: the fast canonical bytes are RFC 8785, every view of a sealed entry
(full or any department's) rebuilds the leaf, and no view leaks another department's
part or the grant."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit import entry as entries
from audit import merkle
from common.canonical import canonical_json
from common.errors import InvalidInput

CATALOG = {"tax": "tax", "social_security": "hrss", "court": "court", "utilities": "utilities"}
names = st.text(min_size=1, max_size=12)
text_values = st.one_of(
    names, st.sampled_from(['q"uote', "back\\slash", "\n\t\x01", "中文", "😀", "\ud800 lone"])
)


@settings(max_examples=300, deadline=None)
@given(
    value=st.recursive(
        st.none() | st.booleans() | st.integers(-(2**60), 2**60) | text_values,
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.dictionaries(
                st.one_of(names, st.sampled_from(["é", "😀", "a", "B"])), inner, max_size=4
            )
        ),
        max_leaves=15,
    )
)
def test_the_fast_canonical_bytes_are_rfc8785(value: Any) -> None:
    try:
        expected: bytes | None = canonical_json(value)
    except InvalidInput:
        expected = None  # e.g. an integer beyond 2**53: refused by both
    if expected is None:
        with pytest.raises(InvalidInput):
            entries.canonical(value)
    else:
        assert entries.canonical(value) == expected


@st.composite
def access(draw: st.DrawFn) -> dict[str, Any]:
    categories = draw(st.lists(st.sampled_from([*CATALOG, "unknown"]), max_size=4, unique=True))
    features = [f"{c}.{draw(st.sampled_from(['a', 'b']))}" for c in categories]
    departments = sorted({CATALOG[c] for c in categories if c in CATALOG})
    if draw(st.booleans()):
        departments.append("zz_listed_without_categories")
    return {
        "request_id": "r-" + draw(st.text("abc123", min_size=1, max_size=8)),
        "time": draw(st.integers(0, 2**40)),
        "institution": draw(st.one_of(st.none(), st.just("bank_a"))),
        "enterprise": draw(st.one_of(st.none(), st.just("91330100716105852F"))),
        "departments": departments,
        "categories": categories,
        "features": features,
        "operation": draw(st.sampled_from(["verify", "report", "score", "consent.approve"])),
        "grant_id": draw(st.one_of(st.none(), st.just("grant-secret-id"))),
        "model_id": draw(st.one_of(st.none(), st.just("model-secret-id"))),
        "decision": "allowed",
    }


@settings(max_examples=200, deadline=None)
@given(fields=access())
def test_every_view_of_a_sealed_entry_rebuilds_its_leaf(fields: dict[str, Any]) -> None:
    sealed = entries.seal(fields, CATALOG)
    leaf = merkle.leaf_hash(sealed.committed)
    full = entries.view(sealed.committed, sealed.opening)
    assert merkle.leaf_hash(entries.leaf_bytes(full)) == leaf
    assert sorted(full["categories"]) == sorted(fields["categories"])
    assert full["grant_id"] == fields["grant_id"]
    for department in full["departments"]:
        shown = entries.view(sealed.committed, sealed.opening, department=department)
        assert merkle.leaf_hash(entries.leaf_bytes(shown)) == leaf
        own = {c for c, d in CATALOG.items() if d == department}
        assert set(shown["categories"]) <= own
        assert all(f.partition(".")[0] in own for f in shown["features"])
        text = json.dumps(shown, ensure_ascii=False)
        assert "secret-id" not in text
        for other in set(fields["categories"]) - own:
            assert f'"{other}.' not in text


def test_the_committed_entry_hides_parts_and_ids() -> None:
    fields = {
        "request_id": "r-1",
        "time": 1_800_000_000,
        "institution": "bank_a",
        "enterprise": "91330100716105852F",
        "departments": ["hrss", "tax"],
        "categories": ["social_security", "tax"],
        "features": ["social_security.insured_employees", "tax.paid_12m"],
        "operation": "report",
        "grant_id": "grant-secret-id",
        "model_id": None,
        "decision": "allowed",
    }
    a, b = entries.seal(fields, CATALOG), entries.seal(fields, CATALOG)
    committed = json.loads(a.committed)
    assert committed["v"] == 2
    assert set(committed["parts"]) == {"hrss", "tax"}
    assert b"paid_12m" not in a.committed and b"grant-secret-id" not in a.committed
    # Fresh salts: the same access seals to different commitments and leaves.
    assert json.loads(b.committed)["parts"] != committed["parts"]
    assert a.committed != b.committed
