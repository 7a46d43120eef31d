"""GP 0.7.2 appendix E's node function N and well-balanced root M_B, against the definition
written out here (split at ceil(n/2), H("node" ++ left ++ right), the value itself for one)."""

from __future__ import annotations

import hashlib
import random

import pytest

from jamhost.engine.merkle import ZERO_HASH, node, well_balanced_root


def h(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=32).digest()


def reference_node(values: list[bytes]) -> bytes:
    if not values:
        return bytes(32)
    if len(values) == 1:
        return values[0]
    mid = (len(values) + 1) // 2
    return h(b"node" + reference_node(values[:mid]) + reference_node(values[mid:]))


@pytest.mark.parametrize("count", [0, 1, 2, 3, 5, 8, 64, 1023, 1024])
def test_node_and_root_follow_the_definition(count: int) -> None:
    rng = random.Random(count)
    values = [rng.randbytes(rng.choice([32, 64])) for _ in range(count)]
    assert node(values) == reference_node(values)
    assert node(values, h) == reference_node(values)  # the general path, another hasher object
    if count:
        expected = h(values[0]) if count == 1 else reference_node(values)
        assert well_balanced_root(values) == expected
    else:
        assert node(values) == ZERO_HASH


@pytest.mark.parametrize("count", [1, 2, 3, 6, 64, 341, 1023])
def test_root_of_rows_with_blank_rows_follows_the_definition(count: int) -> None:
    """merkle.well_balanced_root_of_rows with a repeated `blank` value: runs of blanks (the
    subtrees hashed once by size), scattered blanks and none, against the definition."""
    from itertools import accumulate

    from jamhost.engine.merkle import well_balanced_root_of_rows

    rng = random.Random(count)
    blank = rng.randbytes(64)
    for pattern in ("run", "scattered", "all", "none"):
        if pattern == "run":
            is_blank = [count // 4 <= i < 3 * count // 4 for i in range(count)]
        elif pattern == "scattered":
            is_blank = [rng.random() < 0.5 for _ in range(count)]
        else:
            is_blank = [pattern == "all"] * count
        values = [blank if b else rng.randbytes(64) for b in is_blank]
        before = [0, *accumulate(is_blank)]
        want = h(values[0]) if count == 1 else reference_node(values)
        assert well_balanced_root_of_rows(b"".join(values), 64, blank, before) == want
        assert well_balanced_root_of_rows(b"".join(values), 64) == want
