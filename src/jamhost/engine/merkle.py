"""Binary Merkle roots of GP 0.7.2 appendix E: the node function N, the well-balanced root
M_B and the constant-depth root M (used for a package's exports root, eq.
constantdepthmerkleroot)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from functools import lru_cache

from jamhost.domain.hashing import blake2b_256

Hasher = Callable[[bytes], bytes]
ZERO_HASH = bytes(32)


def node(values: Sequence[bytes], hasher: Hasher = blake2b_256) -> bytes:
    """N(v, H): H("node" ++ N(left half) ++ N(right half)), the zero hash for no values."""
    if not values:
        return ZERO_HASH
    if hasher is blake2b_256:  # the JAM hash: by index, from the hashed prefix (no slices)
        return _node_blake2b(values, 0, len(values))
    if len(values) == 1:
        return values[0]
    mid = (len(values) + 1) // 2
    return hasher(b"node" + node(values[:mid], hasher) + node(values[mid:], hasher))


def _node_blake2b(values: Sequence[bytes], lo: int, hi: int) -> bytes:
    """N(values[lo:hi], blake2b) without copying the halves. A power-of-two range is the
    perfect tree (each half is half), hashed level by level in one `map` per level."""
    count = hi - lo
    if count & (count - 1) == 0:
        level = list(values[lo:hi])
        while len(level) > 1:
            level = list(map(node_pair, level[0::2], level[1::2]))
        return level[0]
    mid = lo + (count + 1) // 2
    h = _NODE_PREFIX.copy()
    h.update(_node_blake2b(values, lo, mid))
    h.update(_node_blake2b(values, mid, hi))
    return h.digest()


def well_balanced_root(values: Sequence[bytes], hasher: Hasher = blake2b_256) -> bytes:
    """M_B(v, H) (GP eq. simplemerkleroot): H(v0) for one value, else N(v, H)."""
    if len(values) == 1:
        return hasher(values[0])
    return node(values, hasher)


_NODE_PREFIX = hashlib.blake2b(b"node", digest_size=32)


def well_balanced_root_of_rows(rows: bytes, width: int, blank: bytes = b"",
                               blanks_before: Sequence[int] = ()) -> bytes:
    """M_B(v) (blake2b) of values of `width` octets each, laid end to end in `rows`: a node
    whose halves are two values hashes their 2 x `width` octets as they lie (the erasure
    root's 1023 validator pairs, engine/erasure.py).

    `blank`, `blanks_before`: a value that many rows equal, and how many of rows[:i] equal it
    (count + 1 entries). A subtree of blank rows only has a root that depends on its size
    alone, hashed once per process (`_blank_root`) instead of once per node (a one-piece
    bundle's zero padding: a third of the erasure root's nodes)."""
    count = len(rows) // width
    if count == 1:
        return blake2b_256(rows)
    before = blanks_before or None

    def build(lo: int, hi: int) -> bytes:
        span = hi - lo
        blanks = before[hi] - before[lo] if before is not None else 0
        if span == 1:
            return rows[lo * width : hi * width]
        if blanks == span:
            return _blank_root(blank, span)
        if blanks == 0 and span & (span - 1) == 0:  # the perfect tree, level by level
            level = _nodes_of(rows, lo * width, hi * width, 2 * width)
            while len(level) > 1:
                joined = b"".join(level)
                level = _nodes_of(joined, 0, len(joined), 64)
            return level[0]
        mid = lo + (span + 1) // 2
        return node_pair(build(lo, mid), build(mid, hi))

    return build(0, count)


def _nodes_of(pairs: bytes, start: int, stop: int, size: int) -> list[bytes]:
    """H("node" ++ pair) of each `size`-octet pair laid end to end in pairs[start:stop]."""
    copy = _NODE_PREFIX.copy
    out = []
    for at in range(start, stop, size):
        h = copy()
        h.update(pairs[at : at + size])
        out.append(h.digest())
    return out


@lru_cache(maxsize=64)
def _blank_root(value: bytes, count: int) -> bytes:
    """N of `count` copies of `value` (the split of N, each half's root once)."""
    if count == 1:
        return value
    half = (count + 1) // 2
    return node_pair(_blank_root(value, half), _blank_root(value, count - half))


def node_pair(left: bytes, right: bytes) -> bytes:
    """H("node" ++ left ++ right) from a copy of the hashed prefix (a third cheaper)."""
    h = _NODE_PREFIX.copy()
    h.update(left)
    h.update(right)
    return h.digest()


def _node_of(pair: bytes) -> bytes:
    """H("node" ++ pair) for the two values of a bottom node, given as one string."""
    h = _NODE_PREFIX.copy()
    h.update(pair)
    return h.digest()


def well_balanced_roots(
    count: int,
    values: Callable[[int], Sequence[bytes]],
    pairs: Callable[[int], Sequence[bytes]] | None = None,
) -> list[bytes]:
    """[M_B(v) for v in lists] (blake2b) of lists of `count` values each, given by position:
    `values(j)` is value j of every list; `pairs(j)`, if given, value j ++ value j + 1 of
    every list (one string per list, cheaper than two for a node whose halves are values).
    The trees share their shape, so each node is one `map` over all lists, and a position's
    values are asked for when its node is built (the erasure root's 1023 validator trees,
    engine/erasure.py)."""
    if count == 1:
        return [blake2b_256(v) for v in values(0)]

    def build(lo: int, hi: int) -> Sequence[bytes]:
        if hi - lo == 1:
            return values(lo)
        if hi - lo == 2 and pairs is not None:
            return list(map(_node_of, pairs(lo)))
        mid = lo + (hi - lo + 1) // 2
        return list(map(node_pair, build(lo, mid), build(mid, hi)))

    return list(build(0, count))


def constant_depth_root(values: Sequence[bytes], hasher: Hasher = blake2b_256) -> bytes:
    """M(v, H) = N(C(v, H), H): leaves H("leaf" ++ v_i), padded with zero hashes to a power
    of two (GP eq. constantdepthmerkleroot)."""
    size = 1
    while size < len(values):
        size *= 2
    leaves = [hasher(b"leaf" + v) for v in values] + [ZERO_HASH] * (size - len(values))
    return node(leaves, hasher)
