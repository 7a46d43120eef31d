"""The runtime's domain model: accounts, tokens, services, packages, reports, receipts,
transfers and accumulations as plain records, what the store keeps and the use cases answer.
No I/O. Times are integer microseconds since the Unix epoch."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from jamhost.domain.receipts import Entry, package_entries

T = TypeVar("T")

SCOPES = ("read", "submit", "manage")
ROLES = ("reader", "submitter")
PACKAGE_STATUSES = ("pending", "refining", "reported", "applied", "disputed", "failed")
ZERO_HASH = bytes(32)


def now_us() -> int:
    return time.time_ns() // 1000


@dataclass(frozen=True)
class Account:
    id: str
    name: str
    created_at: int


@dataclass(frozen=True)
class TokenRecord:
    """An account token. Only the HMAC of the token is kept (SPEC §1)."""

    accessor: str
    account_id: str
    token_hash: bytes
    name: str
    scopes: tuple[str, ...]
    created_at: int
    expires_at: int | None = None
    revoked_at: int | None = None

    def usable(self, at_us: int) -> bool:
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or self.expires_at > at_us


@dataclass(frozen=True)
class Credentials:
    """What one token hash grants, read in one store call per request: the account token it
    is (if any) and the services it is a delegate of (service id -> role)."""

    token: TokenRecord | None
    delegations: dict[int, str]


@dataclass(frozen=True)
class QuotaLimits:
    pending_packages: int
    storage_bytes: int
    gas_per_hour: int


@dataclass(frozen=True)
class QuotaOverride:
    """Per-service limits; None means "the configured default"."""

    pending_packages: int | None = None
    storage_bytes: int | None = None
    gas_per_hour: int | None = None

    def resolve(self, default: QuotaLimits) -> QuotaLimits:
        return QuotaLimits(
            pending_packages=_pick(self.pending_packages, default.pending_packages),
            storage_bytes=_pick(self.storage_bytes, default.storage_bytes),
            gas_per_hour=_pick(self.gas_per_hour, default.gas_per_hour),
        )


def _pick(value: int | None, default: int) -> int:
    return default if value is None else value


@dataclass(frozen=True)
class Usage:
    pending_packages: int = 0
    storage_bytes: int = 0
    gas_window: int = 0  # hour number (unix seconds // 3600) the gas counter belongs to
    gas_used: int = 0

    def gas_used_in(self, window: int) -> int:
        return self.gas_used if self.gas_window == window else 0


@dataclass(frozen=True)
class ServiceRecord:
    service_id: int
    owner: str
    code_hash: bytes
    balance: int
    min_item_gas: int
    min_memo_gas: int
    created_at: int
    created_by: str
    quota: QuotaOverride = field(default_factory=QuotaOverride)
    usage: Usage = field(default_factory=Usage)
    root: bytes = ZERO_HASH
    receipt_seq: int = 0
    state_items: int = 0
    state_octets: int = 0
    last_yield: bytes | None = None


@dataclass(frozen=True)
class Delegate:
    id: int
    service_id: int
    token_hash: bytes
    role: str
    created_at: int
    created_by: str


@dataclass(frozen=True)
class PreimageMeta:
    hash: bytes
    size: int
    media_type: str
    service_id: int | None
    created_at: int


@dataclass(frozen=True)
class PackageRecord:
    id: bytes
    service_id: int
    status: str
    body: bytes
    size: int
    refine_gas: int
    accumulate_gas: int
    created_at: int
    updated_at: int
    seq: int = 0
    failure_reason: str | None = None
    report_hash: bytes | None = None
    attempts: int = 0
    detail: str | None = None  # JSON text, e.g. the diverging report hashes of a dispute
    started_at: int | None = None  # when the latest claim began


@dataclass(frozen=True)
class ReportRecord:
    package_id: bytes
    service_id: int
    report_hash: bytes
    body: bytes
    created_at: int
    seq: int = 0
    logs: tuple[str, ...] = ()
    """Refine's `log` lines (JIP-1), bounded by runtime.jam.max_log_bytes_per_invocation."""


@dataclass(frozen=True)
class Attestation:
    package_id: bytes
    attestor: bytes
    signature: bytes
    engine: str
    engine_version: str
    report_hash: bytes
    created_at: int


@dataclass(frozen=True)
class Receipt:
    service_id: int
    seq: int
    prev_root: bytes
    new_root: bytes
    entry_type: str
    hash: bytes
    processed_at: int


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: object | None  # int seq or bytes key; the API makes it opaque


RECEIPT_SEQ_SPAN = 2**40  # receipts per service, far beyond any real chain


def receipt_cursor(r: Receipt) -> int:
    """A receipts listing is ordered by (service_id, seq); its cursor packs both."""
    return r.service_id * RECEIPT_SEQ_SPAN + r.seq


@dataclass(frozen=True)
class Transfer:
    """A deferred transfer (GP X) waiting for its destination's next accumulate."""

    source: int
    destination: int
    amount: int
    memo: bytes
    gas: int
    id: int = 0
    created_at: int = 0


@dataclass(frozen=True)
class StateChanges:
    """What one accumulate did to its service, applied atomically with the receipts."""

    storage: dict[bytes, bytes | None] = field(default_factory=dict)  # None deletes
    preimages: list[bytes] = field(default_factory=list)  # blobs provided to the service
    requests: dict[tuple[bytes, int], tuple[int, ...] | None] = field(default_factory=dict)
    balance: int | None = None
    code_hash: bytes | None = None  # the `upgrade` host call
    min_item_gas: int | None = None
    min_memo_gas: int | None = None
    transfers_out: list[Transfer] = field(default_factory=list)
    transfers_consumed: list[int] = field(default_factory=list)
    yield_hash: bytes | None = None
    created: list[NewService] = field(default_factory=list)  # the `new` host call
    ejected: list[int] = field(default_factory=list)  # the `eject` host call
    # (count, gas) a destination's queue of inputs may hold (runtime.jam.max_queued_*): the
    # apply re-checks it under the destination's row lock, so concurrent senders cannot
    # pass it together (StateConflict: accumulate again, and the engine answers LOW).
    queue_limits: tuple[int, int] | None = None
    # runtime.jam.max_services_per_account for `created`: the apply takes each new service
    # from the account's counter under its row lock (StateConflict past it: accumulate
    # again, and `new` then answers CASH), so `new` and POST /jam/services share one bound.
    max_services: int | None = None


@dataclass(frozen=True)
class NewService:
    """A service made by `new` in an accumulation: it belongs to the caller's owner."""

    service_id: int
    code_hash: bytes
    balance: int
    min_item_gas: int
    min_memo_gas: int
    requests: dict[tuple[bytes, int], tuple[int, ...]] = field(default_factory=dict)
    storage: dict[bytes, bytes] = field(default_factory=dict)
    gratis: int = 0


@dataclass(frozen=True)
class AccumulationRecord:
    """What one accumulation of a service did, kept for the tenant to see (SPEC §4): of a
    package (`package_id`), or of the inputs others queued for it (`package_id` None)."""

    service_id: int
    package_id: bytes | None
    status: str  # halt, panic, out-of-gas, page-fault; "no-code"; "quota" (nothing applied)
    gas_limit: int
    gas_used: int
    inputs: int  # operands + transfers delivered
    yield_hash: bytes | None = None
    output: bytes | None = None
    logs: tuple[str, ...] = ()
    logs_dropped: int = 0
    transfers: tuple[Transfer, ...] = ()  # deferred transfers made
    transfers_in: tuple[Transfer, ...] = ()  # delivered as inputs
    created: tuple[int, ...] = ()
    ejected: tuple[int, ...] = ()
    created_at: int = 0
    seq: int = 0


SEGMENT_SIZE = 4104  # W_G
PAGE_SEGMENTS = 64  # exports per paged-proof page (GP eq. pagedproofs)


def export_set_bytes(count: int) -> int:
    """Storage bytes of a package's kept exports: its `count` segments and their
    ceil(count / 64) paged-proof pages, W_G octets each (s ++ P(s), what GP keeps)."""
    return SEGMENT_SIZE * (count + -(-count // PAGE_SEGMENTS))


@dataclass(frozen=True)
class ExportSet:
    """The segments one applied package exported, kept for imports until `expires_at`:
    `segments` is s ++ P(s) (the exports, then their paged proofs) when storing it, empty in
    a lookup's answer. Counted in the exporting service's storage usage."""

    service_id: int
    package_hash: bytes
    segments_root: bytes
    count: int
    created_at: int
    expires_at: int
    segments: tuple[bytes, ...] = ()

    @property
    def stored_bytes(self) -> int:
        return export_set_bytes(self.count)


@dataclass(frozen=True)
class PackageOutcome:
    """The end of one processing attempt: `applied`, `disputed` or `failed`."""

    package_id: bytes
    service_id: int
    worker: str
    status: str
    report: ReportRecord | None = None
    attestations: list[Attestation] = field(default_factory=list)
    changes: StateChanges | None = None
    failure_reason: str | None = None
    detail: str | None = None
    # The service's receipt_seq the accumulate read its state at; the apply is refused with
    # StateConflict if another apply came in between (optimistic concurrency per service).
    expected_seq: int | None = None
    # Virtual time given back to the account: declared gas it was charged at claim but did
    # not use (tenancy/fairness.py `refund`).
    refund: int = 0
    refine_gas_used: int | None = None  # per attestor's run (they agree), when refined
    # Units charged after the run (tenancy/tariff.py: the accumulate's transfers), added to
    # the service's gas usage of hour `units_window` when the package is applied.
    after_units: int = 0
    units_window: int = 0
    accumulation: AccumulationRecord | None = None
    exports: ExportSet | None = None  # kept with an `applied` outcome

    @property
    def receipt_entries(self) -> tuple[Entry, ...]:
        """The receipts the finish appends to the service's chain: those of an applied
        package (domain/receipts.py `package_entries`), none otherwise. The store persists
        them as given."""
        if self.status != "applied":
            return ()
        return package_entries(self.package_id,
                               self.report.report_hash if self.report is not None else None)


class StateConflict(Exception):
    """The service's state moved on since the accumulate read it: run it again."""


@dataclass(frozen=True)
class AuditEvent:
    actor: str
    action: str
    service_id: int | None = None
    target: str | None = None
    detail: str | None = None
    at: int = 0
    seq: int = 0
