"""verify.js, the in-page proof check, run in chromium against known answers: the RFC 6962
test tree (via the audit tests' published vectors), every proof of small trees from
``audit.merkle``, tampered proofs, SHA-256 against hashlib, canonical JSON against RFC
8785, and a real signed checkpoint of the live log."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from typing import Any

import pytest

from audit import entry as entries
from audit import merkle
from common.canonical import canonical_json
from tests.audit.test_merkle import INCLUSION, LEAVES, ROOTS
from tests.web.browser import Live


def b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


@pytest.fixture(scope="module")
def js(browser: Any, live: Live) -> Iterator[Any]:
    """A page of the live gateway with verify.js loaded (as the accesses page loads it);
    one for the module: the functions under test keep no state."""
    context = browser.new_context()
    page = context.new_page()
    page.goto(live.base + "/login")
    page.add_script_tag(url=live.base + "/static/web/verify.js")
    page.wait_for_function("window.XinyiVerify !== undefined")
    yield page
    context.close()


ROOT_OF = """async ([index, size, leaf, proof, forceJs]) => {
  const V = window.XinyiVerify;
  const r = await V.rootFromInclusionProof(index, size, V.b64decode(leaf),
                                           proof.map(V.b64decode), forceJs);
  return r === null ? null : V.b64encode(r);
}"""


@pytest.mark.parametrize("force_js", [False, True], ids=["webcrypto", "fallback-sha256"])
def test_published_rfc6962_inclusion_vectors(js: Any, force_js: bool) -> None:
    for index, size, proof in INCLUSION:
        leaf = merkle.leaf_hash(LEAVES[index])
        got = js.evaluate(ROOT_OF, [index, size, b64(leaf), [b64(p) for p in proof], force_js])
        assert got == b64(ROOTS[size - 1]), (index, size)


def test_every_proof_of_small_trees_and_tampering_fails(js: Any) -> None:
    cases = []
    for size in range(1, 34):
        leaves = [merkle.leaf_hash(f"entry {i}".encode()) for i in range(size)]
        nodes: dict[Any, bytes] = {}
        created, _ = merkle.append_leaves(0, [], leaves)
        nodes.update({(lvl, i): h for lvl, i, h in created})

        def read(ids: Any, nodes: dict[Any, bytes] = nodes) -> dict[Any, bytes]:
            return {i: nodes[i] for i in ids if i in nodes}

        root = merkle.root_at(size, read)
        for index in range(size):
            proof = merkle.inclusion_proof(index, size, read)
            cases.append((index, size, b64(leaves[index]), [b64(p) for p in proof], b64(root)))
    results = js.evaluate(
        """async (cases) => {
          const V = window.XinyiVerify, out = [];
          for (const [index, size, leaf, proof, root] of cases) {
            const P = proof.map(V.b64decode);
            const ok = await V.rootFromInclusionProof(index, size, V.b64decode(leaf), P);
            let tampered = null;
            if (P.length) {
              P[0] = P[0].slice(); P[0][0] ^= 1;
              tampered = await V.rootFromInclusionProof(index, size, V.b64decode(leaf), P);
            }
            const badLeaf = V.b64decode(leaf); badLeaf[31] ^= 1;
            const forged = await V.rootFromInclusionProof(index, size, badLeaf,
                                                          proof.map(V.b64decode));
            out.push([ok !== null && V.b64encode(ok) === root,
                      tampered === null || V.b64encode(tampered) !== root,
                      forged === null || V.b64encode(forged) !== root]);
          }
          return out;
        }""",
        cases,
    )
    assert len(results) == sum(range(1, 34))
    assert all(r == [True, True, True] for r in results), [
        (c[0], c[1], r) for c, r in zip(cases, results, strict=True) if r != [True, True, True]
    ][:5]


def test_fallback_sha256_matches_hashlib(js: Any) -> None:
    lengths = [0, 1, 3, 55, 56, 57, 63, 64, 65, 119, 120, 1000, 4099]
    inputs = [bytes((i * 7 + n) % 256 for i in range(n)) for n in lengths]
    got = js.evaluate(
        """(inputs) => inputs.map(b => window.XinyiVerify.hex(
             window.XinyiVerify.sha256js(window.XinyiVerify.b64decode(b))))""",
        [b64(x) for x in inputs],
    )
    assert got == [hashlib.sha256(x).hexdigest() for x in inputs]


def test_canonical_json_matches_rfc8785(js: Any) -> None:
    entries = [
        {
            "request_id": "r-1",
            "time": 1732300000,
            "institution": "浙商银行",
            "enterprise": "91330100716105852F",
            "departments": ["tax", "social_security"],
            "categories": [],
            "features": ["tax.paid_12m"],
            "operation": "verify",
            "grant_id": None,
            "model_id": None,
            "decision": "allowed",
            "salt": "00ff",
        },
        {"b": 'quote " and \\ backslash \n\t\u2028', "a": [1, -2, 0], "é": "ü", "\U0001f600": 9},
        {"z": {"y": {"x": True, "w": False}}, "10": 1, "2": 2},
    ]
    got = js.evaluate("(xs) => xs.map(x => window.XinyiVerify.canonical(x))", entries)
    assert [g.encode() for g in got] == [canonical_json(e) for e in entries]


def test_checkpoint_signature_is_checked_against_the_logs_key(js: Any, live: Live) -> None:
    note = live.svc.audit.latest_checkpoint().text()
    vkey = live.svc.audit.vkey()
    result = js.evaluate(
        """async ([note, vkey]) => {
          const V = window.XinyiVerify;
          const cp = V.parseCheckpoint(note), key = V.parseVkey(vkey);
          const good = await V.verifyCheckpointSignature(cp, key);
          const bump = (m, n) => "\\n" + (Number(n) + 1) + "\\n";
          const forged = V.parseCheckpoint(note.replace(/\\n(\\d+)\\n/, bump));
          const bad = await V.verifyCheckpointSignature(forged, key);
          return [good, bad, cp.size];
        }""",
        [note, vkey],
    )
    assert result[0] is True
    assert result[1] is False
    assert result[2] == int(note.split("\n")[1])


def test_format_2_views_rebuild_the_leaf_as_the_log_hashes_it(js: Any) -> None:
    """The full view (enterprise) and a department's view of the same format 2 entry
    both lead the browser to the leaf the log stored; a changed part does not."""
    categories = {"tax": "tax", "social_security": "social_security"}
    fields = {
        "request_id": "r-2",
        "client_request_id": "bank-ref-1",
        "time": 1732300000,
        "institution": "浙商银行",
        "enterprise": "91330100716105852F",
        "departments": ["social_security", "tax"],
        "categories": ["social_security", "tax"],
        "features": ["social_security.insured_employees", "tax.paid_12m"],
        "operation": "verify",
        "grant_id": "g-1",
        "model_id": None,
        "decision": "allowed",
    }
    sealed = entries.seal(fields, categories)
    leaf = b64(merkle.leaf_hash(sealed.committed))
    full = entries.view(sealed.committed, sealed.opening)
    tax = entries.view(sealed.committed, sealed.opening, department="tax")
    forged = {**tax, "parts": {**tax["parts"], "tax": {**tax["parts"]["tax"], "features": []}}}
    got = js.evaluate(
        """async (views) => {
          const V = window.XinyiVerify, out = [];
          for (const [view, forceJs] of views) {
            const committed = await V.committedEntry(view, forceJs);
            const leaf = await V.leafHash(V.entryBytes(committed), forceJs);
            out.push(V.b64encode(leaf));
          }
          return out;
        }""",
        [[full, False], [tax, False], [tax, True], [forged, False]],
    )
    assert got[:3] == [leaf, leaf, leaf]
    assert got[3] != leaf
