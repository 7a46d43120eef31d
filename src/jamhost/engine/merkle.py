"""Binary Merkle roots of GP 0.7.2 appendix E: the node function N, the well-balanced root
M_B and the constant-depth root M (used for a package's exports root, eq.
constantdepthmerkleroot)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from jamhost.domain.hashing import blake2b_256

Hasher = Callable[[bytes], bytes]
ZERO_HASH = bytes(32)


def node(values: Sequence[bytes], hasher: Hasher = blake2b_256) -> bytes:
    """N(v, H): H("node" ++ N(left half) ++ N(right half)), the zero hash for no values."""
    if not values:
        return ZERO_HASH
    if len(values) == 1:
        return values[0]
    mid = (len(values) + 1) // 2
    return hasher(b"node" + node(values[:mid], hasher) + node(values[mid:], hasher))


def well_balanced_root(values: Sequence[bytes], hasher: Hasher = blake2b_256) -> bytes:
    """M_B(v, H) (GP eq. simplemerkleroot): H(v0) for one value, else N(v, H)."""
    if len(values) == 1:
        return hasher(values[0])
    return node(values, hasher)


def constant_depth_root(values: Sequence[bytes], hasher: Hasher = blake2b_256) -> bytes:
    """M(v, H) = N(C(v, H), H): leaves H("leaf" ++ v_i), padded with zero hashes to a power
    of two (GP eq. constantdepthmerkleroot)."""
    size = 1
    while size < len(values):
        size *= 2
    leaves = [hasher(b"leaf" + v) for v in values] + [ZERO_HASH] * (size - len(values))
    return node(leaves, hasher)
