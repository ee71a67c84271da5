"""RFC 9162 Merkle tree hashing and proofs (pure: bytes in, bytes out).

Invariants:
- leaf hash = SHA-256(0x00 || entry), node hash = SHA-256(0x01 || left || right), the
  empty tree's root = SHA-256("") (RFC 9162 §2.1.1);
- a node is addressed by ``(level, index)``: the complete subtree of ``2**level``
  leaves starting at leaf ``index * 2**level``. Only complete subtrees are ever
  stored; the hash of an incomplete ("ephemeral") right border is the right fold of
  the complete subtrees that cover it, exactly as MTH defines it;
- proofs are generated from complete-subtree hashes alone, reading O(log n) nodes,
  and are byte-for-byte the PATH and PROOF lists of RFC 9162 §2.1.3.1 and §2.1.4.1;
- verification follows the algorithms of §2.1.3.2 and §2.1.4.2 step by step and
  refuses any hash that is not 32 bytes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

NodeId = tuple[int, int]  # (level, index)
# Reads the hashes of complete subtrees; must return every requested node.
NodeReader = Callable[[Sequence[NodeId]], Mapping[NodeId, bytes]]

_sha256 = hashlib.sha256


class ProofError(ValueError):
    """A proof, a size or an index is not valid for the tree it claims."""


def leaf_hash(entry: bytes) -> bytes:
    return _sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return _sha256(b"\x01" + left + right).digest()


def _largest_power_of_two_below(n: int) -> int:
    """The k of RFC 9162: the largest power of two smaller than ``n`` (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def subtrees(begin: int, end: int) -> list[NodeId]:
    """The complete subtrees covering leaves ``[begin, end)``, left to right, each as
    large as alignment allows. For ``[0, n)`` this is one node per set bit of n."""
    out: list[NodeId] = []
    while begin < end:
        level = (begin & -begin).bit_length() - 1 if begin else (end - begin).bit_length()
        while (1 << level) > end - begin:
            level -= 1
        out.append((level, begin >> level))
        begin += 1 << level
    return out


def fold(hashes: Sequence[bytes]) -> bytes:
    """MTH of a range given its complete-subtree decomposition (left to right)."""
    if not hashes:
        return EMPTY_ROOT
    acc = hashes[-1]
    for h in reversed(hashes[:-1]):
        acc = _sha256(b"\x01" + h + acc).digest()
    return acc


def root_from_leaves(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH(D[n]) from leaf hashes (reference implementation; O(n) memory)."""
    level = list(leaf_hashes)
    if not level:
        return EMPTY_ROOT
    # Pair up level by level; an odd node at the end of a level moves up unchanged,
    # which yields exactly the RFC's left-balanced tree.
    while len(level) > 1:
        nxt = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


# Appending ---------------------------------------------------------------------------


def append_leaves(
    size: int, frontier: Sequence[bytes], leaves: Iterable[bytes]
) -> tuple[list[tuple[int, int, bytes]], list[bytes]]:
    """Append leaf hashes to a tree of ``size`` leaves whose right frontier (the hashes
    of ``subtrees(0, size)``) is given. Returns every newly completed subtree as
    ``(level, index, hash)`` (the leaves themselves at level 0) and the new frontier."""
    levels = [lvl for lvl, _ in subtrees(0, size)]
    if len(levels) != len(frontier):
        raise ProofError(f"a tree of {size} leaves has {len(levels)} frontier nodes")
    stack_levels = list(levels)
    stack = list(frontier)
    created: list[tuple[int, int, bytes]] = []
    index = size
    for h in leaves:
        if len(h) != HASH_SIZE:
            raise ProofError("a leaf hash must be 32 bytes")
        created.append((0, index, h))
        level = 0
        while stack_levels and stack_levels[-1] == level:
            stack_levels.pop()
            h = _sha256(b"\x01" + stack.pop() + h).digest()
            level += 1
            created.append((level, index >> level, h))
        stack.append(h)
        stack_levels.append(level)
        index += 1
    return created, stack


# Proof generation ----------------------------------------------------------------------


def inclusion_plan(index: int, size: int) -> list[list[NodeId]]:
    """The nodes of PATH(index, D[size]) bottom-up; each element of the proof is the
    fold of its list (a single node, or the subtrees of the ephemeral right border)."""
    if not 0 <= index < size:
        raise ProofError(f"index {index} is not in a tree of size {size}")
    siblings: list[list[NodeId]] = []
    lo, hi = 0, size
    while hi - lo > 1:
        mid = lo + _largest_power_of_two_below(hi - lo)
        if index < mid:
            siblings.append(subtrees(mid, hi))
            hi = mid
        else:
            siblings.append(subtrees(lo, mid))
            lo = mid
    siblings.reverse()
    return siblings


def consistency_plan(first: int, second: int) -> list[list[NodeId]]:
    """The nodes of PROOF(first, D[second]) in RFC order (empty when first is 0 or
    equals second)."""
    if not 0 <= first <= second:
        raise ProofError(f"no consistency proof from size {first} to size {second}")
    if first == 0 or first == second:
        return []
    siblings: list[list[NodeId]] = []
    lo, hi, whole = 0, second, True
    while first != hi:
        mid = lo + _largest_power_of_two_below(hi - lo)
        if first <= mid:
            siblings.append(subtrees(mid, hi))
            hi = mid
        else:
            siblings.append(subtrees(lo, mid))
            lo = mid
            whole = False
    base = [] if whole else [subtrees(lo, hi)]
    return base + siblings[::-1]


def _materialize(plan: list[list[NodeId]], read: NodeReader) -> list[bytes]:
    wanted = sorted({node for element in plan for node in element})
    found = read(wanted) if wanted else {}
    try:
        return [fold([found[node] for node in element]) for element in plan]
    except KeyError as e:
        raise ProofError(f"the tree store has no node {e.args[0]}") from e


def inclusion_proof(index: int, size: int, read: NodeReader) -> list[bytes]:
    return _materialize(inclusion_plan(index, size), read)


def consistency_proof(first: int, second: int, read: NodeReader) -> list[bytes]:
    return _materialize(consistency_plan(first, second), read)


def root_at(size: int, read: NodeReader) -> bytes:
    """MTH(D[size]) from stored complete subtrees."""
    nodes = subtrees(0, size)
    if not nodes:
        return EMPTY_ROOT
    found = read(nodes)
    return fold([found[n] for n in nodes])


# Proof verification (RFC 9162 §2.1.3.2 and §2.1.4.2) ---------------------------------------


def _all_hashes(*hashes: bytes) -> bool:
    return all(len(h) == HASH_SIZE for h in hashes)


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> bool:
    """True iff ``proof`` shows the leaf hash ``leaf`` at ``index`` of the tree of
    ``size`` leaves whose root is ``root``."""
    if not (0 <= index < size) or not _all_hashes(leaf, root, *proof):
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = _sha256(b"\x01" + p + r).digest()
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = _sha256(b"\x01" + r + p).digest()
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]
) -> bool:
    """True iff ``proof`` shows the tree of ``first`` leaves with root ``first_root``
    is a prefix of the tree of ``second`` leaves with root ``second_root``."""
    if not (0 <= first <= second) or not _all_hashes(*proof):
        return False
    if first == 0:
        # Every tree extends the empty one; the proof is empty by definition.
        return not proof and (second > 0 or first_root == second_root)
    if not _all_hashes(first_root, second_root):
        return False
    if first == second:
        return not proof and first_root == second_root
    if not proof:
        return False
    path = list(proof)
    if first & (first - 1) == 0:
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = _sha256(b"\x01" + c + fr).digest()
            sr = _sha256(b"\x01" + c + sr).digest()
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = _sha256(b"\x01" + sr + c).digest()
        fn >>= 1
        sn >>= 1
    return fr == first_root and sr == second_root and sn == 0
