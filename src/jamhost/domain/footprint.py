"""What service state costs: the GP footprint (a_i items, a_o octets; GP 0.7.2 §9.3 eq.
deposits) the engine keeps and the deposit is taken on, and jamhost's storage usage in bytes
(what the storage quota counts). One home for both: the engine, the apply planner and the
store's reconciliation read them from here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

#: Preimage request key (h, l): the blob's hash and its length (GP a_l).
RequestKey = tuple[bytes, int]

REQUEST_ROW_BYTES = 81
"""What one lookup-request row (solicit) adds to a service's storage usage: the GP's per-
request octets (hash, length, up to three timeslots and their keys). The z octets of the
preimage itself are counted when it arrives, as a preimage."""


def storage_item_octets(key: bytes, value: bytes) -> int:
    """What one storage entry adds to a_o: 34 + |k| + |v| (GP 0.7.2 eq. deposits)."""
    return 34 + len(key) + len(value)


def request_octets(length: int) -> int:
    """What one preimage request (h, z) adds to a_o: 81 + z (GP 0.7.2 eq. deposits)."""
    return 81 + length


def footprint(storage: Mapping[bytes, bytes],
              requests: Iterable[RequestKey]) -> tuple[int, int]:
    """(a_i, a_o) = (2|a_l| + |a_s|, Σ 81 + z + Σ 34 + |k| + |v|) (GP 0.7.2 eq. deposits)."""
    keys = list(requests)
    items = 2 * len(keys) + len(storage)
    octets = sum(request_octets(z) for (_h, z) in keys)
    octets += sum(storage_item_octets(k, v) for k, v in storage.items())
    return items, octets


def storage_item_bytes(key: bytes, value: bytes) -> int:
    """What one storage entry adds to the service's storage usage: |k| + |v|."""
    return len(key) + len(value)


def state_bytes(storage: Mapping[bytes, bytes], requests: int) -> int:
    """Storage usage of a service's state: its storage entries and `requests` request rows
    (preimages and kept exports are counted apart, as they arrive)."""
    return sum(storage_item_bytes(k, v) for k, v in storage.items()) \
        + REQUEST_ROW_BYTES * requests
