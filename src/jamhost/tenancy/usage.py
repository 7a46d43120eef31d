"""Usage reconciliation, planned once: what each counter should be, recomputed from the
rows (`jamhost reconcile` repairs drift with it). Pure: the store sums the rows and writes
the counters that differ in one transaction; what the sums add up to is decided here.

- a service's pending count: its packages not yet finished (`PENDING_STATUSES`);
- its storage usage, what the storage quota counts: its preimages' bytes, its storage
  entries (|k| + |v|, domain/footprint.py), a fixed size per lookup-request row, and its
  kept exported segments with their proof pages (domain/model.py `export_set_bytes`), the
  same amounts an apply charges (tenancy/apply_plan.py);
- an account's counts: services owned, and packages pending, of which queued (not yet
  claimed) and running.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from jamhost.domain.footprint import REQUEST_ROW_BYTES
from jamhost.domain.model import export_set_bytes

#: A package holds its service's and account's pending quota until it is reported.
PENDING_STATUSES = ("pending", "refining")


@dataclass(frozen=True)
class ServiceRows:
    """What a service's rows sum to."""

    pending: int  # packages in PENDING_STATUSES
    preimage_bytes: int
    storage_bytes: int  # sum of |k| + |v| of its storage entries
    requests: int  # lookup-request rows
    export_sets: tuple[int, ...] = ()  # segments per kept export set


@dataclass(frozen=True)
class ServiceUsage:
    pending: int
    storage_used: int


@dataclass(frozen=True)
class AccountCounts:
    services: int = 0
    pending: int = 0
    queued: int = 0
    running: int = 0


def service_usage(rows: ServiceRows) -> ServiceUsage:
    """The counters a service's rows call for."""
    used = (rows.preimage_bytes + rows.storage_bytes + REQUEST_ROW_BYTES * rows.requests
            + sum(export_set_bytes(n) for n in rows.export_sets))
    return ServiceUsage(rows.pending, used)


def account_counts(services: Iterable[tuple[str, int]],
                   packages: Iterable[tuple[str, str, int]]) -> dict[str, AccountCounts]:
    """Each account's counts from (owner, services owned) and (owner, status, packages) of
    its unfinished packages; an owner of packages but no service row still gets counts."""
    raw: dict[str, list[int]] = {owner: [n, 0, 0, 0] for owner, n in services}
    for owner, status, n in packages:
        if status not in PENDING_STATUSES:
            continue
        c = raw.setdefault(owner, [0, 0, 0, 0])
        c[1] += n
        c[2 if status == "pending" else 3] += n
    return {owner: AccountCounts(*c) for owner, c in raw.items()}
