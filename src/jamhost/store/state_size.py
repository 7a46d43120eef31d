"""GP footprints of service state (GP 0.7 §9.3, a_o): what each item adds to the octets."""

from __future__ import annotations


def storage_footprint(key: bytes, value: bytes) -> int:
    """A storage item counts 34 + |k| + |v| octets (and one item)."""
    return 34 + len(key) + len(value)


def request_footprint(length: int) -> int:
    """A lookup request (h, z) counts 81 + z octets (and two items)."""
    return 81 + length
