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
