"""What service state costs: the GP footprint (a_i items, a_o octets; GP 0.7.2 §9.3 eq.
deposits) the engine keeps and the deposit is taken on, and jamhost's storage usage in bytes
(what the storage quota counts). One home for both: the engine, the apply planner and the
store's reconciliation read them from here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

#: Preimage request key (h, l): the blob's hash and its length (GP a_l).
RequestKey = tuple[bytes, int]

STORAGE_ITEMS = 1
"""Items one storage entry adds to a_i (GP 0.7.2 eq. deposits: a_i = 2|a_l| + |a_s|)."""
REQUEST_ITEMS = 2
"""Items one preimage request adds to a_i (GP 0.7.2 eq. deposits: a_i = 2|a_l| + |a_s|)."""
STORAGE_ITEM_BASE_OCTETS = 34
"""The octets of a_o one storage entry adds beyond |k| + |v| (GP 0.7.2 eq. deposits)."""
REQUEST_BASE_OCTETS = 81
"""The octets of a_o one preimage request (h, z) adds beyond z (GP 0.7.2 eq. deposits);
also what `eject` takes off d_o to find the length of the one request left: max(81, d_o) -
81 (GP 0.7.2 §B.7, Ω_J)."""

REQUEST_ROW_BYTES = REQUEST_BASE_OCTETS
"""What one lookup-request row (solicit) adds to a service's storage usage: the GP's per-
request octets (hash, length, up to three timeslots and their keys). The z octets of the
preimage itself are counted when it arrives, as a preimage."""


def storage_item_octets(key: bytes, value: bytes) -> int:
    """What one storage entry adds to a_o: 34 + |k| + |v| (GP 0.7.2 eq. deposits)."""
    return STORAGE_ITEM_BASE_OCTETS + len(key) + len(value)


def request_octets(length: int) -> int:
    """What one preimage request (h, z) adds to a_o: 81 + z (GP 0.7.2 eq. deposits)."""
    return REQUEST_BASE_OCTETS + length


def lone_request_length(octets: int) -> int:
    """The z of the one request of an account whose a_o is `octets` and that holds nothing
    else: max(81, d_o) - 81 (GP 0.7.2 §B.7, Ω_J's check of an ejected service)."""
    return max(REQUEST_BASE_OCTETS, octets) - REQUEST_BASE_OCTETS


def storage_delta(key: bytes, old: bytes | None, new: bytes | None) -> tuple[int, int]:
    """(Δa_i, Δa_o) of storage[key] going from `old` to `new` (None: absent). The engine's
    `write` and the apply planner both take a storage change's footprint from here."""
    items = octets = 0
    if old is not None:
        items, octets = items - STORAGE_ITEMS, octets - storage_item_octets(key, old)
    if new is not None:
        items, octets = items + STORAGE_ITEMS, octets + storage_item_octets(key, new)
    return items, octets


def request_delta(length: int, was: bool, now: bool) -> tuple[int, int]:
    """(Δa_i, Δa_o) of a request (h, `length`) present before (`was`) and after (`now`): a
    change of its timeslots alone costs nothing. The engine's `solicit` and `forget` and the
    apply planner (a replaced row: was and now) take a request's footprint from here."""
    return (REQUEST_ITEMS * (int(now) - int(was)),
            request_octets(length) * (int(now) - int(was)))


def footprint(storage: Mapping[bytes, bytes],
              requests: Iterable[RequestKey]) -> tuple[int, int]:
    """(a_i, a_o) = (2|a_l| + |a_s|, Σ 81 + z + Σ 34 + |k| + |v|) (GP 0.7.2 eq. deposits)."""
    keys = list(requests)
    items = REQUEST_ITEMS * len(keys) + STORAGE_ITEMS * len(storage)
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
