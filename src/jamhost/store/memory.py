"""The memory store: the same contract as the SQL store, in dicts under one lock.

For the `memory` store mode and unit tests. One lock around every operation gives the same
atomicity the SQL store gets from its transactions; nothing survives the process.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import threading
from dataclasses import dataclass, replace
from typing import Any

from jamhost.domain.hashing import blake2b_256
from jamhost.domain.model import (
    Account,
    AccumulationRecord,
    Attestation,
    AuditEvent,
    Credentials,
    Delegate,
    ExportSet,
    NewService,
    PackageOutcome,
    PackageRecord,
    Page,
    PreimageMeta,
    QuotaLimits,
    QuotaOverride,
    Receipt,
    ReportRecord,
    ServiceRecord,
    StateChanges,
    StateConflict,
    TokenRecord,
    Transfer,
    Usage,
    now_us,
    receipt_cursor,
)
from jamhost.domain.receipts import chain_root
from jamhost.domain.refusals import (
    Forbidden,
    GasQuotaExceeded,
    PendingLimit,
    SegmentQuotaExceeded,
    StorageQuotaExceeded,
)
from jamhost.domain.scopes import ServiceScope
from jamhost.store.state_size import REQUEST_ROW_BYTES, request_footprint, storage_footprint
from jamhost.tenancy import fairness

FIRST_SERVICE_ID = 65536
UNSCOPED = 0


class MemoryStore:
    kind = "memory"

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._meta: dict[str, str] = {}
        self._accounts: dict[str, Account] = {}
        self._tokens: dict[str, TokenRecord] = {}  # by accessor
        self._token_hashes: dict[bytes, str] = {}
        self._services: dict[int, ServiceRecord] = {}
        self._next_service_id = FIRST_SERVICE_ID
        self._delegates: dict[int, Delegate] = {}
        self._next_delegate_id = 1
        self._blobs: dict[bytes, bytes] = {}
        self._preimages: dict[tuple[bytes, int], PreimageMeta] = {}
        self._packages: dict[bytes, PackageRecord] = {}
        self._package_seq = 0
        self._by_service: dict[int, list[bytes]] = {}  # package ids per service, seq order
        self._leases: dict[bytes, tuple[str, int]] = {}  # package id -> (worker, until)
        self._pending_total = 0
        self._reports: dict[bytes, ReportRecord] = {}
        self._report_seq = 0
        self._attestations: dict[bytes, list[Attestation]] = {}
        self._receipts: dict[int, list[Receipt]] = {}
        self._storage: dict[int, dict[bytes, bytes]] = {}
        self._requests: dict[int, dict[tuple[bytes, int], tuple[int, ...]]] = {}
        self._transfers: dict[int, Transfer] = {}
        self._transfer_seq = 0
        self._audit: list[AuditEvent] = []
        self._owners: dict[str, _OwnerUsage] = {}
        self._last_claimed: dict[int, int] = {}
        self._accumulations: list[AccumulationRecord] = []
        self._accumulation_of: dict[bytes, AccumulationRecord] = {}
        self._export_sets: dict[tuple[int, bytes], ExportSet] = {}  # with their segments

    def ping(self) -> bool:
        return True

    def close(self) -> None:
        pass

    def init_counters(self) -> None:
        pass

    def get_or_create_meta(self, key: str, value: str) -> str:
        with self._lock:
            return self._meta.setdefault(key, value)

    # -- accounts and tokens

    def create_account(self, account: Account) -> Account:
        with self._lock:
            if account.id in self._accounts:
                raise ValueError("duplicate account id")
            self._accounts[account.id] = account
            return account

    def get_account(self, account_id: str) -> Account | None:
        return self._accounts.get(account_id)

    def list_accounts(self) -> list[Account]:
        with self._lock:
            return sorted(self._accounts.values(), key=lambda a: a.created_at)

    def add_token(self, token: TokenRecord) -> TokenRecord:
        with self._lock:
            if token.accessor in self._tokens or token.token_hash in self._token_hashes:
                raise ValueError("duplicate token")
            self._tokens[token.accessor] = token
            self._token_hashes[token.token_hash] = token.accessor
            return token

    def credentials(self, token_hash: bytes) -> Credentials:
        with self._lock:
            accessor = self._token_hashes.get(token_hash)
            token = self._tokens.get(accessor) if accessor else None
            return Credentials(token, {d.service_id: d.role for d in self._delegates.values()
                                       if d.token_hash == token_hash})

    def token_by_accessor(self, accessor: str) -> TokenRecord | None:
        return self._tokens.get(accessor)

    def list_tokens(self, account_id: str) -> list[TokenRecord]:
        with self._lock:
            return sorted((t for t in self._tokens.values() if t.account_id == account_id),
                          key=lambda t: t.created_at)

    def revoke_token(self, account_id: str, accessor: str, at: int) -> bool:
        with self._lock:
            tok = self._tokens.get(accessor)
            if tok is None or tok.account_id != account_id or tok.revoked_at is not None:
                return False
            self._tokens[accessor] = replace(tok, revoked_at=at)
            return True

    # -- services

    def create_service(self, *, owner: str, code: bytes | None, code_hash: bytes, balance: int,
                       min_item_gas: int, min_memo_gas: int, created_by: str,
                       storage_limit: int, media_type: str = "application/octet-stream",
                       max_services: int | None = None) -> ServiceRecord:
        with self._lock:
            while self._next_service_id in self._services:  # taken by an accumulate `new`
                self._next_service_id += 1
            usage = self._owners.setdefault(owner, _OwnerUsage())
            if max_services is not None and usage.services >= max_services:
                raise Forbidden("the account already owns max_services_per_account services")
            sid = self._next_service_id
            svc = ServiceRecord(service_id=sid, owner=owner, code_hash=code_hash,
                                balance=balance, min_item_gas=min_item_gas,
                                min_memo_gas=min_memo_gas, created_at=now_us(),
                                created_by=created_by)
            self._services[sid] = svc
            if code is not None:
                try:
                    self._put_preimage(code_hash, code, media_type, sid, storage_limit)
                except StorageQuotaExceeded:
                    del self._services[sid]
                    raise
            self._next_service_id += 1
            usage.services += 1
            return self._services[sid]

    def get_service(self, service_id: int) -> ServiceRecord | None:
        return self._services.get(service_id)

    def list_services(self, scope: ServiceScope, *, owner: str | None = None,
                      cursor: int | None = None, limit: int = 50) -> Page[ServiceRecord]:
        with self._lock:
            rows = [s for sid, s in sorted(self._services.items())
                    if scope.allows(sid) and (owner is None or s.owner == owner)
                    and (cursor is None or sid > cursor)]
        return _page(rows, limit, lambda s: s.service_id)

    def owned_service_ids(self, owner: str) -> set[int]:
        with self._lock:
            return {sid for sid, s in self._services.items() if s.owner == owner}

    def set_code(self, service_id: int, code: bytes, code_hash: bytes, storage_limit: int,
                 media_type: str = "application/octet-stream") -> ServiceRecord:
        with self._lock:
            self._put_preimage(code_hash, code, media_type, service_id, storage_limit)
            return self._update(service_id, code_hash=code_hash)

    def credit(self, service_id: int, amount: int) -> ServiceRecord:
        with self._lock:
            return self._update(service_id, balance=self._services[service_id].balance + amount)

    def set_quota(self, service_id: int, quota: QuotaOverride) -> ServiceRecord:
        with self._lock:
            return self._update(service_id, quota=quota)

    def _update(self, service_id: int, **changes: Any) -> ServiceRecord:
        svc = replace(self._services[service_id], **changes)
        self._services[service_id] = svc
        return svc

    def _usage(self, service_id: int, **changes: int) -> None:
        svc = self._services[service_id]
        self._services[service_id] = replace(svc, usage=replace(svc.usage, **changes))

    # -- delegates

    def add_delegate(self, service_id: int, token_hash: bytes, role: str,
                     created_by: str) -> Delegate:
        with self._lock:
            for d in self._delegates.values():
                if d.service_id == service_id and d.token_hash == token_hash:
                    self._delegates[d.id] = replace(d, role=role)
                    return self._delegates[d.id]
            d = Delegate(self._next_delegate_id, service_id, token_hash, role, now_us(),
                         created_by)
            self._delegates[d.id] = d
            self._next_delegate_id += 1
            return d

    def list_delegates(self, service_id: int) -> list[Delegate]:
        with self._lock:
            return [d for _, d in sorted(self._delegates.items()) if d.service_id == service_id]

    def remove_delegate(self, service_id: int, delegate_id: int) -> bool:
        with self._lock:
            d = self._delegates.get(delegate_id)
            if d is None or d.service_id != service_id:
                return False
            del self._delegates[delegate_id]
            return True

    # -- preimages

    def put_preimage(self, hash_: bytes, data: bytes, media_type: str, service_id: int | None,
                     storage_limit: int | None) -> tuple[PreimageMeta, bool]:
        with self._lock:
            return self._put_preimage(hash_, data, media_type, service_id, storage_limit)

    def _put_preimage(self, hash_: bytes, data: bytes, media_type: str, service_id: int | None,
                      storage_limit: int | None) -> tuple[PreimageMeta, bool]:
        key = (hash_, UNSCOPED if service_id is None else service_id)
        if key in self._preimages:
            return self._preimages[key], False
        if service_id is not None and storage_limit is not None:
            used = self._services[service_id].usage.storage_bytes
            if used + len(data) > storage_limit:
                raise StorageQuotaExceeded("the service's storage quota would be exceeded")
            self._usage(service_id, storage_bytes=used + len(data))
        self._blobs.setdefault(hash_, bytes(data))
        meta = PreimageMeta(hash_, len(data), media_type, service_id, now_us())
        self._preimages[key] = meta
        return meta, True

    def find_preimage(self, hash_: bytes, scope: ServiceScope) -> PreimageMeta | None:
        with self._lock:
            found = [m for (h, sid), m in self._preimages.items()
                     if h == hash_ and (sid == UNSCOPED or scope.allows(sid))]
        return max(found, key=lambda m: m.service_id or 0) if found else None

    def service_preimage(self, service_id: int, hash_: bytes) -> bytes | None:
        with self._lock:
            if (hash_, service_id) in self._preimages:
                return self._blobs.get(hash_)
            return None

    def service_preimage_window(self, service_id: int, hash_: bytes, at: int, n: int,
                                ) -> tuple[int, bytes] | None:
        """(|v|, v[at..at+n]) of `service_preimage` (clamped to v), or None."""
        blob = self.service_preimage(service_id, hash_)
        if blob is None:
            return None
        start = min(at, len(blob))
        return len(blob), blob[start : start + n]

    def read_blob(self, hash_: bytes) -> bytes | None:
        return self._blobs.get(hash_)

    # -- packages

    def submit_package(self, pkg: PackageRecord, limits: QuotaLimits, max_pending: int,
                       gas_window: int, account_pending: int | None = None,
                       weights: dict[str, int] | None = None,
                       ) -> tuple[PackageRecord, bool]:
        with self._lock:
            if pkg.id in self._packages:
                return self._packages[pkg.id], False
            if self._pending_total >= max_pending:
                raise PendingLimit("the runtime's global pending-package cap is reached")
            owner = self._services[pkg.service_id].owner
            mine = self._owners.setdefault(owner, _OwnerUsage())
            others = [u for o, u in self._owners.items() if o != owner]
            share = fairness.share(max_pending, sum(1 for u in others if u.pending > 0))
            room = share if account_pending is None else min(share, account_pending)
            if mine.pending >= room:
                if account_pending is not None and room == account_pending:
                    raise PendingLimit("the account's pending-package limit is reached")
                raise PendingLimit(
                    "the account's share of the global pending-package cap is reached")
            usage = self._services[pkg.service_id].usage
            if usage.pending_packages >= limits.pending_packages:
                raise PendingLimit("the service's pending-package quota is reached")
            gas = pkg.refine_gas + pkg.accumulate_gas
            used = usage.gas_used_in(gas_window)
            if used + gas > limits.gas_per_hour:
                raise GasQuotaExceeded("the service's gas budget for this hour is spent",
                                       gas_window=gas_window)
            self._pending_total += 1
            if mine.queued == 0 and mine.running == 0:
                mine.vtime = fairness.start_vtime(
                    mine.vtime, self._in_service_starts(owner, weights or {}),
                    max((u.vtime for u in others), default=0))
            mine.pending += 1
            mine.queued += 1
            self._usage(pkg.service_id, pending_packages=usage.pending_packages + 1,
                        gas_window=gas_window, gas_used=used + gas)
            self._package_seq += 1
            rec = replace(pkg, status="pending", seq=self._package_seq, attempts=0)
            self._packages[pkg.id] = rec
            self._by_service.setdefault(pkg.service_id, []).append(pkg.id)
            return rec, True

    def _in_service_starts(self, owner: str, weights: dict[str, int]) -> list[int]:
        """The other busy accounts' `fairness.in_service_start` (the SQL store's rule)."""
        running: dict[str, list[tuple[int, int]]] = {}
        for p in self._packages.values():
            if p.status == "refining":
                who = self._services[p.service_id].owner
                running.setdefault(who, []).append(
                    (p.refine_gas + p.accumulate_gas, fairness.weight_of(weights, who)))
        return [fairness.in_service_start(u.vtime, running.get(o, ()))
                for o, u in self._owners.items() if o != owner and (u.queued or u.running)]

    def get_package(self, package_id: bytes, scope: ServiceScope) -> PackageRecord | None:
        pkg = self._packages.get(package_id)
        return pkg if pkg is not None and scope.allows(pkg.service_id) else None

    def list_packages(self, scope: ServiceScope, *, service_id: int | None = None,
                      status: str | None = None, cursor: int | None = None,
                      limit: int = 50) -> Page[PackageRecord]:
        """Newest first without sorting everything: each service's ids are kept in seq order,
        walked backwards from the cursor and merged (as the SQL store's index scans)."""
        with self._lock:
            if service_id is not None:
                sids = [service_id] if scope.allows(service_id) else []
            elif scope.everything:
                sids = list(self._by_service)
            else:
                sids = [s for s in scope.ids if s in self._by_service]

            def newest(sid: int):
                ids = self._by_service.get(sid, [])
                end = len(ids) if cursor is None else bisect.bisect_left(
                    ids, cursor, key=lambda i: self._packages[i].seq)
                for i in range(end - 1, -1, -1):
                    p = self._packages[ids[i]]
                    if status is None or p.status == status:
                        yield p

            merged = heapq.merge(*(newest(s) for s in sids), key=lambda p: -p.seq)
            rows = list(itertools.islice(merged, limit + 1))
        page = _page(rows, limit, lambda p: p.seq)
        return Page([replace(p, body=b"") for p in page.items], page.next_cursor)

    # -- reports, attestations, receipts

    def get_report(self, package_id: bytes, scope: ServiceScope) -> ReportRecord | None:
        rep = self._reports.get(package_id)
        return rep if rep is not None and scope.allows(rep.service_id) else None

    def list_reports(self, scope: ServiceScope, *, service_id: int | None = None,
                     cursor: int | None = None, limit: int = 50) -> Page[ReportRecord]:
        with self._lock:
            rows = sorted((r for r in self._reports.values()
                           if scope.allows(r.service_id)
                           and (service_id is None or r.service_id == service_id)
                           and (cursor is None or r.seq < cursor)),
                          key=lambda r: -r.seq)
        return _page(rows, limit, lambda r: r.seq)

    def attestations(self, package_id: bytes) -> list[Attestation]:
        with self._lock:
            return sorted(self._attestations.get(package_id, []), key=lambda a: a.attestor)

    def list_receipts(self, scope: ServiceScope, *, service_id: int | None = None,
                      cursor: int | None = None, limit: int = 50) -> Page[Receipt]:
        with self._lock:
            rows = [r for sid in sorted(self._receipts) for r in self._receipts[sid]
                    if scope.allows(sid) and (service_id is None or sid == service_id)
                    and (cursor is None or receipt_cursor(r) > cursor)]
        return _page(rows, limit, receipt_cursor)

    def find_receipts(self, hash_: bytes, scope: ServiceScope) -> list[Receipt]:
        with self._lock:
            return [r for sid in sorted(self._receipts) for r in self._receipts[sid]
                    if r.hash == hash_ and scope.allows(sid)]

    # -- audit

    def audit(self, event: AuditEvent) -> None:
        with self._lock:
            self._audit.append(replace(event, at=event.at or now_us(),
                                       seq=len(self._audit) + 1))

    def list_audit(self, *, action: str | None = None, cursor: int | None = None,
                   limit: int = 50) -> Page[AuditEvent]:
        with self._lock:
            rows = [e for e in reversed(self._audit)
                    if (action is None or e.action == action)
                    and (cursor is None or e.seq < cursor)]
        return _page(rows, limit, lambda e: e.seq)

    # -- pipeline

    def claim_package(self, worker: str, now: int, lease_us: int, *,
                      max_running: int | None = None,
                      weights: dict[str, int] | None = None) -> PackageRecord | None:
        """The SQL store's rule (see `SqlStore.claim_package`) over the dicts."""
        with self._lock:
            expired = [p for p in self._packages.values()
                       if p.status == "refining" and self._leases.get(p.id, (None, 0))[1] < now]
            chosen = (min(expired, key=lambda p: p.seq) if expired
                      else self._fair_next(max_running, weights or {}, now))
            if chosen is None:
                return None
            pkg = replace(chosen, status="refining", attempts=chosen.attempts + 1, updated_at=now,
                          started_at=max(now, now_us()))
            self._packages[pkg.id] = pkg
            self._leases[pkg.id] = (worker, now + lease_us)
            return pkg

    def _fair_next(self, max_running: int | None, weights: dict[str, int],
                   now: int) -> PackageRecord | None:
        ready = sorted((u.vtime, o) for o, u in self._owners.items()
                       if u.queued > 0 and (max_running is None or u.running < max_running))
        for _, owner in ready:
            heads = []
            for sid, svc in self._services.items():
                if svc.owner != owner:
                    continue
                head = next((self._packages[i] for i in self._by_service.get(sid, ())
                             if self._packages[i].status == "pending"), None)
                if head is not None:
                    heads.append((self._last_claimed.get(sid, 0), sid, head))
            usage = self._owners[owner]
            if not heads:
                usage.queued = 0  # drifted: repair, as the SQL store does
                continue
            _, sid, head = min(heads, key=lambda h: (h[0], h[1]))
            usage.running += 1
            usage.queued -= 1
            usage.vtime += fairness.cost(head.refine_gas + head.accumulate_gas,
                                         fairness.weight_of(weights, owner))
            self._last_claimed[sid] = now
            return head
        return None

    def renew_claim(self, package_id: bytes, worker: str, until: int) -> bool:
        with self._lock:
            held = self._leases.get(package_id)
            pkg = self._packages.get(package_id)
            if held is None or held[0] != worker or pkg is None or pkg.status != "refining":
                return False
            self._leases[package_id] = (worker, until)
            return True

    def extend_lease(self, package_id: bytes, worker: str, until: int) -> bool:
        return self.renew_claim(package_id, worker, until)

    def queue_ahead(self, pkg: PackageRecord) -> int | None:
        with self._lock:
            svc = self._services.get(pkg.service_id)
            if pkg.status != "pending" or svc is None:
                return None
            mine = {sid for sid, s in self._services.items() if s.owner == svc.owner}
            return sum(1 for p in self._packages.values()
                       if p.status == "pending" and p.seq < pkg.seq and p.service_id in mine)

    def queue_states(self) -> dict[str, int]:
        with self._lock:
            u = list(self._owners.values())
            return {"queued": sum(x.queued for x in u), "running": sum(x.running for x in u),
                    "busy_accounts": sum(1 for x in u if x.pending > 0)}

    def pending_transfers(self, service_id: int) -> list[Transfer]:
        with self._lock:
            return [tr for _, tr in sorted(self._transfers.items())
                    if tr.destination == service_id]

    def lookup_request(self, service_id: int, hash_: bytes,
                       length: int) -> tuple[int, ...] | None:
        return self._requests.get(service_id, {}).get((hash_, length))

    def finish_package(self, outcome: PackageOutcome, storage_limit: int | None = None) -> bool:
        with self._lock:
            pkg = self._packages.get(outcome.package_id)
            held = self._leases.get(outcome.package_id)
            if pkg is None or pkg.status != "refining" or held is None \
                    or held[0] != outcome.worker:
                return False
            if outcome.status == "applied":
                self._check_apply(outcome.service_id, outcome.changes, outcome.expected_seq,
                                  storage_limit)
                if outcome.exports is not None and storage_limit is not None:
                    used = (self._services[outcome.service_id].usage.storage_bytes
                            + self._storage_delta(outcome.service_id, outcome.changes))
                    if used + outcome.exports.stored_bytes > storage_limit:
                        raise SegmentQuotaExceeded(
                            "the service's storage quota would be exceeded")
            at = now_us()
            self._packages[pkg.id] = replace(
                pkg, status=outcome.status, updated_at=at,
                failure_reason=outcome.failure_reason, detail=outcome.detail,
                report_hash=outcome.report.report_hash if outcome.report else None)
            del self._leases[pkg.id]
            owner = self._owners.setdefault(self._services[outcome.service_id].owner,
                                            _OwnerUsage())
            owner.pending -= 1
            owner.running -= 1
            owner.vtime -= outcome.refund
            usage = self._services[outcome.service_id].usage
            self._usage(outcome.service_id, pending_packages=usage.pending_packages - 1)
            self._pending_total -= 1
            if outcome.report is not None:
                self._report_seq += 1
                self._reports[pkg.id] = replace(outcome.report, created_at=at,
                                                seq=self._report_seq)
                self._attestations[pkg.id] = [replace(a, created_at=at)
                                              for a in outcome.attestations]
            if outcome.status == "applied":
                entries = [("package", outcome.package_id)]
                if outcome.report is not None:
                    entries.append(("report", outcome.report.report_hash))
                self._apply(outcome.service_id, outcome.changes, entries, at)
                if outcome.after_units:  # tenancy/tariff.py, into the apply's hour
                    u = self._services[outcome.service_id].usage
                    self._usage(outcome.service_id, gas_window=outcome.units_window,
                                gas_used=u.gas_used_in(outcome.units_window)
                                + outcome.after_units)
                if outcome.accumulation is not None:
                    self._keep_accumulation(outcome.accumulation, at)
                if outcome.exports is not None:
                    x = outcome.exports
                    self._export_sets[(x.service_id, x.package_hash)] = x
                    used = self._services[x.service_id].usage.storage_bytes
                    self._usage(x.service_id, storage_bytes=used + x.stored_bytes)
            return True

    def find_export_set(self, scope: ServiceScope, now: int, *,
                        segments_root: bytes | None = None,
                        package_hash: bytes | None = None) -> ExportSet | None:
        with self._lock:
            found = [x for x in self._export_sets.values()
                     if scope.allows(x.service_id) and x.expires_at > now
                     and segments_root in (None, x.segments_root)
                     and package_hash in (None, x.package_hash)]
        if not found:
            return None
        best = min(found, key=lambda x: (-x.expires_at, x.service_id))
        return replace(best, segments=())

    def read_segments(self, service_id: int, package_hash: bytes,
                      indices: list[int]) -> dict[int, bytes]:
        with self._lock:
            x = self._export_sets.get((service_id, package_hash))
        if x is None:
            return {}
        return {i: x.segments[i] for i in indices if 0 <= i < len(x.segments)}

    def expire_segments(self, now: int) -> int:
        with self._lock:
            due = [k for k, x in self._export_sets.items() if x.expires_at <= now]
            for key in due:
                x = self._export_sets.pop(key)
                if x.service_id in self._services:
                    used = self._services[x.service_id].usage.storage_bytes
                    self._usage(x.service_id, storage_bytes=used - x.stored_bytes)
            return len(due)

    def apply_accumulation(self, service_id: int, changes: StateChanges, expected_seq: int,
                           storage_limit: int | None, record: AccumulationRecord,
                           inputs_hash: bytes) -> None:
        with self._lock:
            if service_id not in self._services:
                raise StateConflict
            self._check_apply(service_id, changes, expected_seq, storage_limit)
            at = now_us()
            self._apply(service_id, changes, [("inputs", inputs_hash)], at)
            self._keep_accumulation(record, at)

    def _keep_accumulation(self, record: AccumulationRecord, at: int) -> None:
        rec = replace(record, created_at=at, seq=len(self._accumulations) + 1)
        self._accumulations.append(rec)
        if rec.package_id is not None:
            self._accumulation_of[rec.package_id] = rec

    def get_accumulation(self, package_id: bytes,
                         scope: ServiceScope) -> AccumulationRecord | None:
        rec = self._accumulation_of.get(package_id)
        return rec if rec is not None and scope.allows(rec.service_id) else None

    def list_accumulations(self, service_id: int, *, cursor: int | None = None,
                           limit: int = 50) -> Page[AccumulationRecord]:
        with self._lock:
            rows = [r for r in reversed(self._accumulations) if r.service_id == service_id
                    and (cursor is None or r.seq < cursor)]
        return _page(rows, limit, lambda r: r.seq)

    def queued_inputs(self, service_id: int) -> tuple[int, int]:
        with self._lock:
            queued = [tr for tr in self._transfers.values() if tr.destination == service_id]
            return len(queued), sum(tr.gas for tr in queued)

    def next_transfer_destination(self) -> int | None:
        with self._lock:
            for _tid, tr in sorted(self._transfers.items()):
                if tr.destination in self._services:
                    return tr.destination
            return None

    def _storage_delta(self, sid: int, changes: StateChanges | None) -> int:
        """Bytes of storage usage an apply adds: storage keys and values, preimages, and
        REQUEST_ROW_BYTES per lookup-request row (solicit), net of what it removes."""
        if changes is None:
            return 0
        current = self._storage.get(sid, {})
        reqs = self._requests.get(sid, {})
        delta = 0
        for key, value in changes.storage.items():
            if key in current:
                delta -= len(key) + len(current[key])
            if value is not None:
                delta += len(key) + len(value)
        for req, slots in changes.requests.items():
            delta += REQUEST_ROW_BYTES * ((slots is not None) - (req in reqs))
        for blob in dict.fromkeys(changes.preimages):
            if (blake2b_256(blob), sid) not in self._preimages:
                delta += len(blob)
        return delta

    def _check_apply(self, sid: int, changes: StateChanges | None, expected_seq: int | None,
                     storage_limit: int | None) -> None:
        if expected_seq is not None and self._services[sid].receipt_seq != expected_seq:
            raise StateConflict
        delta = self._storage_delta(sid, changes)
        used = self._services[sid].usage.storage_bytes
        if storage_limit is not None and delta > 0 and used + delta > storage_limit:
            raise StorageQuotaExceeded("accumulate would exceed the service's storage quota")
        if changes is not None and any(n.service_id in self._services for n in changes.created):
            raise StateConflict  # the id was taken since: accumulate again
        if changes is not None and changes.created and changes.max_services is not None:
            owner = self._services[sid].owner
            have = self._owners.setdefault(owner, _OwnerUsage()).services
            if have + len(changes.created) > changes.max_services:
                raise StateConflict  # the account reached its limit since: accumulate again
        if changes is not None and changes.queue_limits is not None:
            max_count, max_gas = changes.queue_limits
            for dest in {tr.destination for tr in changes.transfers_out}:
                out = [tr for tr in changes.transfers_out if tr.destination == dest]
                count, gas = self.queued_inputs(dest)
                if dest == sid:  # its own queue is consumed by this very apply
                    count, gas = 0, 0
                if count + len(out) > max_count or gas + sum(t.gas for t in out) > max_gas:
                    raise StateConflict  # accumulate again: the engine answers LOW now

    def _apply(self, sid: int, changes: StateChanges | None,
               entries: list[tuple[str, bytes]], at: int) -> None:
        svc = self._services[sid]
        d_items = d_octets = 0
        d_bytes = self._storage_delta(sid, changes)
        updates: dict[str, Any] = {}
        if changes is not None:
            state = self._storage.setdefault(sid, {})
            for key, value in changes.storage.items():
                old = state.pop(key, None)
                if old is not None:
                    d_items -= 1
                    d_octets -= storage_footprint(key, old)
                if value is not None:
                    state[key] = value
                    d_items += 1
                    d_octets += storage_footprint(key, value)
            reqs = self._requests.setdefault(sid, {})
            for (h, length), slots in changes.requests.items():
                if reqs.pop((h, length), None) is not None:
                    d_items -= 2
                    d_octets -= request_footprint(length)
                if slots is not None:
                    reqs[(h, length)] = tuple(slots)
                    d_items += 2
                    d_octets += request_footprint(length)
            for blob in changes.preimages:
                blob_hash = blake2b_256(blob)
                if (blob_hash, sid) not in self._preimages:
                    self._blobs.setdefault(blob_hash, blob)
                    self._preimages[(blob_hash, sid)] = PreimageMeta(
                        blob_hash, len(blob), "application/octet-stream", sid, at)
            for tid in changes.transfers_consumed:
                tr = self._transfers.get(tid)
                if tr is not None and tr.destination == sid:
                    del self._transfers[tid]
            for tr in changes.transfers_out:
                self._transfer_seq += 1
                self._transfers[self._transfer_seq] = replace(tr, source=sid,
                                                              id=self._transfer_seq,
                                                              created_at=at)
            for name in ("balance", "code_hash", "min_item_gas", "min_memo_gas"):
                if getattr(changes, name) is not None:
                    updates[name] = getattr(changes, name)
            if changes.yield_hash is not None:
                updates["last_yield"] = changes.yield_hash
            for new in changes.created:
                self._create_from_accumulate(svc.owner, sid, new, at)
            for gone in changes.ejected:
                self._eject(svc.owner, gone)
        svc = self._services[sid]
        root, seq = svc.root, svc.receipt_seq
        chain = self._receipts.setdefault(sid, [])
        for entry_type, hash_ in entries:
            seq += 1
            new_root = chain_root(root, seq, entry_type, hash_)
            chain.append(Receipt(sid, seq, root, new_root, entry_type, hash_, at))
            root = new_root
        self._services[sid] = replace(
            svc, root=root, receipt_seq=seq, state_items=svc.state_items + d_items,
            state_octets=svc.state_octets + d_octets,
            usage=replace(svc.usage, storage_bytes=svc.usage.storage_bytes + d_bytes),
            **updates)

    def _create_from_accumulate(self, owner: str, parent: int, new: NewService,
                                at: int) -> None:
        """A service made by `new`: the caller's owner's, counted in its account's services;
        an id already taken is refused (the engine allocated it with the store-wide
        existence check)."""
        self._owners.setdefault(owner, _OwnerUsage()).services += 1  # checked in _check_apply
        items = len(new.storage) + 2 * len(new.requests)
        octets = sum(storage_footprint(k, v) for k, v in new.storage.items()) \
            + sum(request_footprint(z) for (_h, z) in new.requests)
        used = sum(len(k) + len(v) for k, v in new.storage.items()) \
            + REQUEST_ROW_BYTES * len(new.requests)
        self._services[new.service_id] = ServiceRecord(
            service_id=new.service_id, owner=owner, code_hash=new.code_hash,
            balance=new.balance, min_item_gas=new.min_item_gas,
            min_memo_gas=new.min_memo_gas, created_at=at, created_by=f"service:{parent}",
            usage=Usage(storage_bytes=used),
            state_items=items, state_octets=octets)
        self._storage[new.service_id] = dict(new.storage)
        self._requests[new.service_id] = {k: tuple(v) for k, v in new.requests.items()}

    def _eject(self, owner: str, service_id: int) -> None:
        """A service removed by `eject`: only one of the same owner. Its state goes; queued
        transfers to it are dropped (their amounts already left their senders)."""
        svc = self._services.get(service_id)
        if svc is None or svc.owner != owner:
            return
        del self._services[service_id]
        self._owners.setdefault(owner, _OwnerUsage()).services -= 1
        self._storage.pop(service_id, None)
        self._requests.pop(service_id, None)
        for preimage_key in [k for k in self._preimages if k[1] == service_id]:
            del self._preimages[preimage_key]
        for export_key in [k for k in self._export_sets if k[0] == service_id]:
            del self._export_sets[export_key]
        for tid in [i for i, tr in self._transfers.items() if tr.destination == service_id]:
            del self._transfers[tid]
        for did in [i for i, d in self._delegates.items() if d.service_id == service_id]:
            del self._delegates[did]

    def pending_total(self) -> int:
        return self._pending_total

    def reconcile_usage(self) -> int:
        with self._lock:
            changed = 0
            for sid, svc in list(self._services.items()):
                pending = sum(1 for p in self._packages.values()
                              if p.service_id == sid and p.status in ("pending", "refining"))
                used = sum(m.size for (_, s), m in self._preimages.items() if s == sid)
                used += sum(len(k) + len(v) for k, v in self._storage.get(sid, {}).items())
                used += REQUEST_ROW_BYTES * len(self._requests.get(sid, {}))
                used += sum(x.stored_bytes for (s, _), x in self._export_sets.items()
                            if s == sid)
                if (pending, used) != (svc.usage.pending_packages, svc.usage.storage_bytes):
                    changed += 1
                    self._usage(sid, pending_packages=pending, storage_bytes=used)
            self._pending_total = sum(1 for p in self._packages.values()
                                      if p.status in ("pending", "refining"))
            for owner, usage in self._owners.items():
                mine = {sid for sid, s in self._services.items() if s.owner == owner}
                rows = [p.status for p in self._packages.values() if p.service_id in mine]
                usage.services = len(mine)
                usage.queued = rows.count("pending")
                usage.running = rows.count("refining")
                usage.pending = usage.queued + usage.running
            return changed

    # -- service state

    def storage_get(self, service_id: int, key: bytes) -> bytes | None:
        return self._storage.get(service_id, {}).get(key)

    def storage_list(self, service_id: int, prefix: bytes = b"", cursor: bytes | None = None,
                     limit: int = 50) -> Page[tuple[bytes, bytes]]:
        with self._lock:
            rows = sorted((k, v) for k, v in self._storage.get(service_id, {}).items()
                          if k.startswith(prefix) and (cursor is None or k > cursor))
        return _page(rows, limit, lambda kv: kv[0])


@dataclass
class _OwnerUsage:
    """The memory form of a `jam_account_usage` row."""

    services: int = 0
    pending: int = 0
    queued: int = 0
    running: int = 0
    vtime: int = 0


def _page(rows: list, limit: int, key) -> Page:
    items = rows[:limit]
    return Page(items, key(items[-1]) if len(rows) > limit else None)
