"""RFC 9162 hashing and proofs: published vectors, then properties over all sizes.

Vectors: transparency-dev/merkle ``proof/verify_test.go`` (the RFC 6962 / CT test
tree of eight leaves, its roots for sizes 1..8, inclusion and consistency proofs),
Apache-2.0, github.com/transparency-dev/merkle.
"""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit import merkle

LEAVES = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
ROOTS = [
    bytes.fromhex(h)
    for h in (
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    )
]


def h(hexes: str) -> list[bytes]:
    return [bytes.fromhex(x) for x in hexes.split()]


# (index, size, proof); indices are 0-based (the Go file numbers leaves from 1).
INCLUSION = [
    (0, 1, []),
    (
        0,
        8,
        h(
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7 "
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e "
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"
        ),
    ),
    (
        5,
        8,
        h(
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b "
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0 "
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"
        ),
    ),
    (2, 3, h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")),
    (
        1,
        5,
        h(
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d "
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e "
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"
        ),
    ),
]
CONSISTENCY = [
    (1, 1, []),
    (
        1,
        8,
        h(
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7 "
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e "
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"
        ),
    ),
    (
        6,
        8,
        h(
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a "
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0 "
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"
        ),
    ),
    (
        2,
        5,
        h(
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e "
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"
        ),
    ),
    (
        6,
        7,
        h(
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a "
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f "
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"
        ),
    ),
]


def stored(leaf_hashes: list[bytes]) -> merkle.NodeReader:
    """A node store built the way the sequencer builds it: appending in batches."""
    nodes: dict[merkle.NodeId, bytes] = {}
    frontier: list[bytes] = []
    size = 0
    for start in range(0, len(leaf_hashes), 3):
        batch = leaf_hashes[start : start + 3]
        created, frontier = merkle.append_leaves(size, frontier, batch)
        nodes.update({(lvl, i): node for lvl, i, node in created})
        size += len(batch)
    return lambda ids: {i: nodes[i] for i in ids if i in nodes}


LEAF_HASHES = [merkle.leaf_hash(leaf) for leaf in LEAVES]
READ = stored(LEAF_HASHES)


def test_hashes_are_domain_separated_sha256() -> None:
    assert hashlib.sha256(b"").digest() == merkle.EMPTY_ROOT
    assert merkle.leaf_hash(b"") == bytes.fromhex(
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    )
    assert merkle.node_hash(b"N123", b"N456") == hashlib.sha256(b"\x01N123N456").digest()


@pytest.mark.parametrize("size", range(1, 9))
def test_roots_match_the_published_vectors(size: int) -> None:
    assert merkle.root_from_leaves(LEAF_HASHES[:size]) == ROOTS[size - 1]
    assert merkle.root_at(size, READ) == ROOTS[size - 1]


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION)
def test_inclusion_proofs_match_the_published_vectors(
    index: int, size: int, proof: list[bytes]
) -> None:
    assert merkle.inclusion_proof(index, size, READ) == proof
    assert merkle.verify_inclusion(index, size, LEAF_HASHES[index], proof, ROOTS[size - 1])


@pytest.mark.parametrize(("first", "second", "proof"), CONSISTENCY)
def test_consistency_proofs_match_the_published_vectors(
    first: int, second: int, proof: list[bytes]
) -> None:
    assert merkle.consistency_proof(first, second, READ) == proof
    assert merkle.verify_consistency(first, second, ROOTS[first - 1], ROOTS[second - 1], proof)


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION[1:])
def test_corrupted_inclusion_proofs_fail(index: int, size: int, proof: list[bytes]) -> None:
    root, leaf = ROOTS[size - 1], LEAF_HASHES[index]
    some = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")
    probes = [
        (index - 1, size, leaf, proof, root),
        (index + 1, size, leaf, proof, root),
        (index ^ 2, size, leaf, proof, root),
        (index, size * 2, leaf, proof, root),
        (index, size // 2, leaf, proof, root),
        (index, size, b"WrongLeaf", proof, root),
        (index, size, leaf, proof, merkle.EMPTY_ROOT),
        (index, size, leaf, proof, some),
        (index, size, leaf, [*proof, b""], root),
        (index, size, leaf, [*proof, root], root),
        (index, size, leaf, [b"", *proof], root),
        (index, size, leaf, [root, *proof], root),
        (index, size, leaf, proof[:-1], root),
        (index, size, leaf, [proof[0], some, *proof[1:]], root),
    ]
    for i in range(len(proof)):
        flipped = list(proof)
        flipped[i] = bytes([flipped[i][0] ^ 8]) + flipped[i][1:]
        probes.append((index, size, leaf, flipped, root))
    for probe in probes:
        assert not merkle.verify_inclusion(*probe), probe[:2]


@pytest.mark.parametrize(("first", "second", "proof"), CONSISTENCY[1:])
def test_corrupted_consistency_proofs_fail(first: int, second: int, proof: list[bytes]) -> None:
    r1, r2 = ROOTS[first - 1], ROOTS[second - 1]
    probes = [
        (first - 1, second, r1, r2, proof),
        (first + 1, second, r1, r2, proof),
        (first ^ 2, second, r1, r2, proof),
        (first, second * 2, r1, r2, proof),
        (first, second // 2, r1, r2, proof),
        (first, second, b"WrongRoot" * 4, r2, proof),
        (first, second, r1, b"WrongRoot" * 4, proof),
        (first, second, r2, r1, proof),
        (first, second, r1, r2, []),
        (first, second, r1, r2, [*proof, b""]),
        (first, second, r1, r2, [*proof, r1]),
        (first, second, r1, r2, [*proof, r2]),
        (first, second, r1, r2, [b"", *proof]),
        (first, second, r1, r2, [r1, *proof]),
        (first, second, r1, r2, [r2, *proof]),
        (first, second, r1, r2, [proof[0], *proof]),
        (first, second, r1, r2, proof[:-1]),
    ]
    for i in range(len(proof)):
        flipped = list(proof)
        flipped[i] = bytes([flipped[i][0] ^ 16]) + flipped[i][1:]
        probes.append((first, second, r1, r2, flipped))
    for probe in probes:
        assert not merkle.verify_consistency(*probe), probe[:2]


def test_trivial_consistency_cases() -> None:
    a, b = ROOTS[0], ROOTS[1]
    assert merkle.verify_consistency(0, 0, a, a, [])
    assert not merkle.verify_consistency(0, 0, a, b, [])
    assert merkle.verify_consistency(0, 1, a, b, [])
    assert merkle.verify_consistency(1, 1, b, b, [])
    assert not merkle.verify_consistency(1, 1, a, b, [])
    assert not merkle.verify_consistency(1, 0, a, b, [])
    assert not merkle.verify_consistency(2, 1, a, b, [])
    assert not merkle.verify_consistency(1, 2, a, b, [])
    assert not merkle.verify_consistency(1, 1, a, a, [merkle.EMPTY_ROOT])
    assert not merkle.verify_consistency(0, 1, a, a, [merkle.EMPTY_ROOT])


def test_out_of_range_requests_are_refused() -> None:
    with pytest.raises(merkle.ProofError):
        merkle.inclusion_plan(3, 3)
    with pytest.raises(merkle.ProofError):
        merkle.consistency_plan(4, 3)
    assert not merkle.verify_inclusion(0, 0, LEAF_HASHES[0], [], ROOTS[0])
    assert not merkle.verify_inclusion(0, 1, b"", [], b"")  # hashes must be 32 bytes


# Properties over every size up to a few hundred -------------------------------------------

MAX = 300
BIG_LEAVES = [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(MAX)]
BIG_READ = stored(BIG_LEAVES)
BIG_ROOTS = [merkle.root_from_leaves(BIG_LEAVES[:n]) for n in range(MAX + 1)]


def test_incremental_roots_equal_the_recursive_definition() -> None:
    def mth(leaves: list[bytes]) -> bytes:
        if len(leaves) == 1:
            return leaves[0]
        k = 1 << ((len(leaves) - 1).bit_length() - 1)
        return merkle.node_hash(mth(leaves[:k]), mth(leaves[k:]))

    for n in range(1, 70):
        assert BIG_ROOTS[n] == mth(BIG_LEAVES[:n]) == merkle.root_at(n, BIG_READ)


def flip(data: bytes, bit: int) -> bytes:
    i = bit // 8 % len(data)
    return data[:i] + bytes([data[i] ^ (1 << (bit % 8))]) + data[i + 1 :]


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_every_inclusion_proof_verifies_and_any_bit_flip_fails(data: st.DataObject) -> None:
    size = data.draw(st.integers(1, MAX))
    index = data.draw(st.integers(0, size - 1))
    proof = merkle.inclusion_proof(index, size, BIG_READ)
    root, leaf = BIG_ROOTS[size], BIG_LEAVES[index]
    assert merkle.verify_inclusion(index, size, leaf, proof, root)
    bit = data.draw(st.integers(0, 255))
    assert not merkle.verify_inclusion(index, size, flip(leaf, bit), proof, root)
    assert not merkle.verify_inclusion(index, size, leaf, proof, flip(root, bit))
    if proof:
        which = data.draw(st.integers(0, len(proof) - 1))
        bad = [*proof[:which], flip(proof[which], bit), *proof[which + 1 :]]
        assert not merkle.verify_inclusion(index, size, leaf, bad, root)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_every_consistency_proof_verifies_and_any_bit_flip_fails(data: st.DataObject) -> None:
    second = data.draw(st.integers(1, MAX))
    first = data.draw(st.integers(1, second))
    proof = merkle.consistency_proof(first, second, BIG_READ)
    r1, r2 = BIG_ROOTS[first], BIG_ROOTS[second]
    assert merkle.verify_consistency(first, second, r1, r2, proof)
    bit = data.draw(st.integers(0, 255))
    assert not merkle.verify_consistency(first, second, flip(r1, bit), r2, proof)
    assert not merkle.verify_consistency(first, second, r1, flip(r2, bit), proof)
    if proof:
        which = data.draw(st.integers(0, len(proof) - 1))
        bad = [*proof[:which], flip(proof[which], bit), *proof[which + 1 :]]
        assert not merkle.verify_consistency(first, second, r1, r2, bad)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(1, 24), min_size=1, max_size=12))
def test_batched_appends_store_every_complete_subtree(batches: list[int]) -> None:
    size, frontier, nodes = 0, list[bytes](), dict[merkle.NodeId, bytes]()
    for n in batches:
        created, frontier = merkle.append_leaves(size, frontier, BIG_LEAVES[size : size + n])
        nodes.update({(lvl, i): node for lvl, i, node in created})
        size += n
    assert merkle.fold(frontier) == BIG_ROOTS[size]
    complete = {(lvl, i) for lvl in range(10) for i in range(size >> lvl)}
    assert set(nodes) == complete
    for lvl, i in complete:
        span = BIG_LEAVES[i << lvl : (i + 1) << lvl]
        assert nodes[(lvl, i)] == merkle.root_from_leaves(span)
