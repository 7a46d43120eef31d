"""What applying an accumulation changes, planned once from the engine's results: the apply
planner. Pure (no I/O): the store reads what the plan needs under the service's row lock
(`Before`), asks `plan_apply`, and persists the `ApplyPlan` in the same transaction.

The rules that live here, and nowhere else:
- the storage and lookup-request rows written and deleted, and the footprint deltas they make
  (a_i, a_o: domain/footprint.py) and the storage usage delta (bytes, what the quota counts);
- which provided preimages are new to the service (and so charged);
- the storage quota verdict of an apply (the rule itself: tenancy/storage_quota.py): an
  apply that grows the service's usage past its limit is refused (`StorageQuotaExceeded`)
  and nothing of it is written; one that shrinks or keeps it passes even over the limit (so
  a service over quota can always clean up); the kept exports of an applied package are
  charged after its changes (`SegmentQuotaExceeded`);
- the receipt rows of the entries given (which entries: domain/receipts.py, carried by the
  outcome) chained onto the service's head, and its new root;
- the service columns the apply sets (balance, code hash, gas minimums, last yield);
- the footprint and usage of services made by `new`.

What stays in the adapters is what only the database can decide atomically: the expected
sequence number guard (a conditional UPDATE locks the row or finds the service moved on), the
account's service count, the destinations' queue bounds and the owner check of `eject`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from jamhost.domain.footprint import (
    REQUEST_ROW_BYTES,
    RequestKey,
    footprint,
    request_delta,
    state_bytes,
    storage_delta,
    storage_item_bytes,
)
from jamhost.domain.hashing import blake2b_256
from jamhost.domain.model import NewService, StateChanges
from jamhost.domain.receipts import Entry, chain_root
from jamhost.domain.refusals import SegmentQuotaExceeded, StorageQuotaExceeded
from jamhost.tenancy.storage_quota import fits


@dataclass(frozen=True)
class Before:
    """The service as the apply finds it, read under its row lock: the chain head, its usage,
    and the current rows of the keys the changes touch (keys absent here do not exist)."""

    root: bytes
    seq: int
    storage_used: int
    storage: Mapping[bytes, bytes] = field(default_factory=dict)
    requests: frozenset[RequestKey] = frozenset()
    preimages: frozenset[bytes] = frozenset()  # hashes of provided blobs the service has


@dataclass(frozen=True)
class ReceiptRow:
    seq: int
    prev_root: bytes
    new_root: bytes
    entry_type: str
    hash: bytes


@dataclass(frozen=True)
class NewServicePlan:
    """A service made by `new`, with its footprint and storage usage."""

    service: NewService
    items: int
    octets: int
    storage_used: int


@dataclass(frozen=True)
class ApplyPlan:
    storage_deleted: tuple[bytes, ...] = ()  # keys whose current row goes (deleted or replaced)
    storage_written: tuple[tuple[bytes, bytes], ...] = ()
    requests_deleted: tuple[RequestKey, ...] = ()  # current rows that go (or are replaced)
    requests_written: tuple[tuple[RequestKey, tuple[int, ...]], ...] = ()
    preimages: tuple[tuple[bytes, bytes], ...] = ()  # (hash, blob) new to the service
    d_items: int = 0
    d_octets: int = 0
    d_bytes: int = 0  # storage usage delta of the service (kept exports included)
    receipts: tuple[ReceiptRow, ...] = ()
    columns: Mapping[str, Any] = field(default_factory=dict)  # service columns set
    created: tuple[NewServicePlan, ...] = ()

    @property
    def root(self) -> bytes | None:
        return self.receipts[-1].new_root if self.receipts else None


def plan_apply(before: Before, changes: StateChanges | None, entries: Sequence[Entry], *,
               storage_limit: int | None, exports_bytes: int = 0) -> ApplyPlan:
    """Plan an apply of `changes` (None: receipts only) with `entries` appended to the chain
    and, for an applied package that exported segments, `exports_bytes` of them kept
    (domain/model.py export_set_bytes), charged after the changes. Raises
    StorageQuotaExceeded if the changes would grow the service's usage past `storage_limit`,
    SegmentQuotaExceeded if the exports then would (tenancy/storage_quota.py decides)."""
    d_items = d_octets = d_bytes = 0
    deleted: list[bytes] = []
    written: list[tuple[bytes, bytes]] = []
    req_deleted: list[RequestKey] = []
    req_written: list[tuple[RequestKey, tuple[int, ...]]] = []
    blobs: dict[bytes, bytes] = {}
    columns: dict[str, Any] = {}
    created: tuple[NewServicePlan, ...] = ()
    if changes is not None:
        for key, value in changes.storage.items():
            old = before.storage.get(key)
            di, do = storage_delta(key, old, value)
            d_items, d_octets = d_items + di, d_octets + do
            if old is not None:
                deleted.append(key)
                d_bytes -= storage_item_bytes(key, old)
            if value is not None:
                written.append((key, value))
                d_bytes += storage_item_bytes(key, value)
        for rkey, slots in changes.requests.items():
            was, now = rkey in before.requests, slots is not None
            di, do = request_delta(rkey[1], was, now)
            d_items, d_octets = d_items + di, d_octets + do
            d_bytes += REQUEST_ROW_BYTES * (int(now) - int(was))
            if was:
                req_deleted.append(rkey)
            if slots is not None:
                req_written.append((rkey, tuple(slots)))
        for blob in changes.preimages:
            h = blake2b_256(blob)
            if h not in before.preimages and h not in blobs:
                blobs[h] = blob
                d_bytes += len(blob)
        for name in ("balance", "code_hash", "min_item_gas", "min_memo_gas"):
            if getattr(changes, name) is not None:
                columns[name] = getattr(changes, name)
        if changes.yield_hash is not None:
            columns["last_yield"] = changes.yield_hash
        created = tuple(plan_new_service(new) for new in changes.created)
    if storage_limit is not None:
        if not fits(before.storage_used, d_bytes, storage_limit):
            raise StorageQuotaExceeded("accumulate would exceed the service's storage quota")
        if not fits(before.storage_used + d_bytes, exports_bytes, storage_limit):
            raise SegmentQuotaExceeded("the exports would exceed the service's storage quota")
    d_bytes += exports_bytes
    return ApplyPlan(
        storage_deleted=tuple(deleted), storage_written=tuple(written),
        requests_deleted=tuple(req_deleted), requests_written=tuple(req_written),
        preimages=tuple(blobs.items()), d_items=d_items, d_octets=d_octets, d_bytes=d_bytes,
        receipts=chain_entries(before.root, before.seq, entries), columns=columns,
        created=created)


def chain_entries(root: bytes, seq: int, entries: Sequence[Entry]) -> tuple[ReceiptRow, ...]:
    """The receipts that append `entries` to a chain whose head is (root, seq)."""
    rows = []
    for entry_type, hash_ in entries:
        seq += 1
        new_root = chain_root(root, seq, entry_type, hash_)
        rows.append(ReceiptRow(seq, root, new_root, entry_type, hash_))
        root = new_root
    return tuple(rows)


def plan_new_service(new: NewService) -> NewServicePlan:
    """A service made by `new`: its (a_i, a_o) and its storage usage from its initial state."""
    items, octets = footprint(new.storage, new.requests)
    return NewServicePlan(new, items, octets, state_bytes(new.storage, len(new.requests)))


def touched(changes: StateChanges | None) -> tuple[list[bytes], list[RequestKey], list[bytes]]:
    """The storage keys, request keys and preimage hashes whose current rows `Before` needs."""
    if changes is None:
        return [], [], []
    return (list(changes.storage), list(changes.requests),
            sorted({blake2b_256(b) for b in changes.preimages}))
