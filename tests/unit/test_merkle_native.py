"""The native erasure-root tree (pvm/_merkle.h, `merkle_rows`) against the Python one
(`engine.merkle.rows_root`) and hashlib: the same root for every shape of tree, and the
refusal of what it does not take. Skipped when the extension is not built (the Python tree
is then the only one, and tests/unit/test_erasure.py checks it against the vectors)."""

from __future__ import annotations

import hashlib
import random

import pytest

from jamhost.engine import merkle

native = pytest.importorskip("jamhost.pvm._native")


@pytest.mark.parametrize("width", [1, 7, 32, 63, 64, 65, 128, 200, 256])
def test_the_native_tree_is_the_python_tree(width: int) -> None:
    rng = random.Random(width)
    for count in (2, 3, 4, 5, 7, 8, 9, 16, 31, 33, 342, 1023):
        rows = rng.randbytes(width * count)
        assert native.merkle_rows(rows, width) == merkle.rows_root(rows, width), count


def test_one_node_is_blake2b_of_node_and_both_values() -> None:
    rows = bytes(range(128))  # two values of 64 octets: messages past one block
    want = hashlib.blake2b(b"node" + rows, digest_size=32).digest()
    assert native.merkle_rows(rows, 64) == want
    assert merkle.well_balanced_root_of_rows(rows, 64) == want


@pytest.mark.parametrize(("rows", "width"), [
    (b"x" * 64, 64),      # one value: M_B is H(v), the caller's case
    (b"x" * 100, 64),     # not whole values
    (b"x" * 600, 300),    # wider than the stack buffers
    (b"x" * 10, 0),
])
def test_what_the_native_tree_refuses(rows: bytes, width: int) -> None:
    with pytest.raises(ValueError):
        native.merkle_rows(rows, width)
