"""GP footprints of service state (GP 0.7 §9.3, a_o): what each item adds to the octets."""

from __future__ import annotations


def storage_footprint(key: bytes, value: bytes) -> int:
    """A storage item counts 34 + |k| + |v| octets (and one item)."""
    return 34 + len(key) + len(value)


def request_footprint(length: int) -> int:
    """A lookup request (h, z) counts 81 + z octets (and two items)."""
    return 81 + length


REQUEST_ROW_BYTES = 81
"""What one lookup-request row (solicit) adds to a service's storage usage: the GP's per-
request octets (hash, length, up to three timeslots and their keys). The z octets of the
preimage itself are counted when it arrives, as a preimage."""
