"""A small in-memory fake of `tenancy.view.TenantData` and `tenancy.writes.TenantWrites`
(cosmicpython's fake repository): enough rows to decide and scope on, each read counted,
each write kept as (method, service id), no store, no server."""

from __future__ import annotations

from collections import Counter

from jamhost.domain.model import (
    Account,
    AccumulationRecord,
    Attestation,
    Delegate,
    ExportSet,
    PackageRecord,
    Page,
    PreimageMeta,
    QuotaLimits,
    QuotaOverride,
    Receipt,
    ReportRecord,
    ServiceRecord,
    TokenRecord,
    Transfer,
)
from jamhost.domain.scopes import ServiceScope


def service(service_id: int, owner: str) -> ServiceRecord:
    return ServiceRecord(service_id, owner, bytes(32), 1000, 0, 0, 0, "test")


class FakeTenantData:
    """Services, and one object of each kind per service, keyed by the service id."""

    def __init__(self, *services: ServiceRecord) -> None:
        self.services = {s.service_id: s for s in services}
        self.reads: Counter[str] = Counter()
        self.writes: list[tuple[str, int | None]] = []
        self.accounts: dict[str, Account] = {}
        self.tokens: list[TokenRecord] = []
        self.account_writes: list[tuple[str, str]] = []  # (method, account id)

    # object ids derive from the service id, so a test can name another tenant's object
    @staticmethod
    def object_id(service_id: int) -> bytes:
        return service_id.to_bytes(4, "little") * 8

    def _has(self, name: str, service_id: int) -> bool:
        self.reads[name] += 1
        return service_id in self.services

    def get_service(self, service_id: int) -> ServiceRecord | None:
        self.reads["get_service"] += 1
        return self.services.get(service_id)

    def list_services(self, scope: ServiceScope, *, owner: str | None = None,
                      cursor: int | None = None, limit: int = 50) -> Page[ServiceRecord]:
        self.reads["list_services"] += 1
        return Page([s for sid, s in sorted(self.services.items()) if scope.allows(sid)
                     and (owner is None or s.owner == owner)], None)

    def owned_service_ids(self, owner: str) -> set[int]:
        self.reads["owned_service_ids"] += 1
        return {sid for sid, s in self.services.items() if s.owner == owner}

    def list_delegates(self, service_id: int) -> list[Delegate]:
        if not self._has("list_delegates", service_id):
            return []
        return [Delegate(1, service_id, b"\x01" * 32, "reader", 0, "test")]

    def _objects(self, scope: ServiceScope, object_id: bytes) -> int | None:
        for sid in self.services:
            if self.object_id(sid) == object_id and scope.allows(sid):
                return sid
        return None

    def find_preimage(self, hash_: bytes, scope: ServiceScope) -> PreimageMeta | None:
        self.reads["find_preimage"] += 1
        sid = self._objects(scope, hash_)
        return None if sid is None else PreimageMeta(hash_, 3, "x", sid, 0)

    def service_preimage(self, service_id: int, hash_: bytes) -> bytes | None:
        return b"code" if self._has("service_preimage", service_id) else None

    def service_preimage_window(self, service_id: int, hash_: bytes, at: int, n: int,
                                ) -> tuple[int, bytes] | None:
        return (4, b"code"[at:at + n]) if self._has("service_preimage_window",
                                                      service_id) else None

    def read_blob(self, hash_: bytes) -> bytes | None:
        self.reads["read_blob"] += 1
        return b"abc"

    def queue_ahead(self, pkg: PackageRecord) -> int | None:
        self.reads["queue_ahead"] += 1
        return 0

    def _package(self, sid: int) -> PackageRecord:
        return PackageRecord(self.object_id(sid), sid, "applied", b"", 0, 0, 0, 0, 0)

    def get_package(self, package_id: bytes, scope: ServiceScope) -> PackageRecord | None:
        self.reads["get_package"] += 1
        sid = self._objects(scope, package_id)
        return None if sid is None else self._package(sid)

    def list_packages(self, scope: ServiceScope, *, service_id: int | None = None,
                      status: str | None = None, cursor: int | None = None,
                      limit: int = 50) -> Page[PackageRecord]:
        self.reads["list_packages"] += 1
        return Page([self._package(sid) for sid in sorted(self.services) if scope.allows(sid)
                     and service_id in (None, sid)], None)

    def get_report(self, package_id: bytes, scope: ServiceScope) -> ReportRecord | None:
        self.reads["get_report"] += 1
        sid = self._objects(scope, package_id)
        return None if sid is None else ReportRecord(package_id, sid, package_id, b"", 0)

    def list_reports(self, scope: ServiceScope, *, service_id: int | None = None,
                     cursor: int | None = None, limit: int = 50) -> Page[ReportRecord]:
        self.reads["list_reports"] += 1
        return Page([ReportRecord(self.object_id(s), s, self.object_id(s), b"", 0)
                     for s in sorted(self.services) if scope.allows(s)], None)

    def attestations(self, package_id: bytes) -> list[Attestation]:
        self.reads["attestations"] += 1
        return [Attestation(package_id, b"k", b"s", "e", "1", package_id, 0)]

    def _receipt(self, sid: int) -> Receipt:
        return Receipt(sid, 1, bytes(32), bytes(32), "package", self.object_id(sid), 0)

    def list_receipts(self, scope: ServiceScope, *, service_id: int | None = None,
                      cursor: int | None = None, limit: int = 50) -> Page[Receipt]:
        self.reads["list_receipts"] += 1
        return Page([self._receipt(s) for s in sorted(self.services) if scope.allows(s)], None)

    def find_receipts(self, hash_: bytes, scope: ServiceScope) -> list[Receipt]:
        self.reads["find_receipts"] += 1
        sid = self._objects(scope, hash_)
        return [] if sid is None else [self._receipt(sid)]

    def get_accumulation(self, package_id: bytes,
                         scope: ServiceScope) -> AccumulationRecord | None:
        self.reads["get_accumulation"] += 1
        sid = self._objects(scope, package_id)
        return None if sid is None else AccumulationRecord(
            service_id=sid, package_id=package_id, status="halt", gas_limit=0, gas_used=0,
            inputs=0)

    def list_accumulations(self, service_id: int, *, cursor: int | None = None,
                           limit: int = 50) -> Page[AccumulationRecord]:
        if not self._has("list_accumulations", service_id):
            return Page([], None)
        return Page([AccumulationRecord(service_id=service_id, package_id=None, status="halt",
                                        gas_limit=0, gas_used=0, inputs=1)], None)

    def pending_transfers(self, service_id: int) -> list[Transfer]:
        if not self._has("pending_transfers", service_id):
            return []
        return [Transfer(1, service_id, 5, b"", 10)]

    def queued_inputs(self, service_id: int) -> tuple[int, int]:
        return (1, 10) if self._has("queued_inputs", service_id) else (0, 0)

    def lookup_request(self, service_id: int, hash_: bytes,
                       length: int) -> tuple[int, ...] | None:
        return (1,) if self._has("lookup_request", service_id) else None

    def find_export_set(self, scope: ServiceScope, now: int, *,
                        segments_root: bytes | None = None,
                        package_hash: bytes | None = None) -> ExportSet | None:
        self.reads["find_export_set"] += 1
        sid = self._objects(scope, package_hash or segments_root or b"")
        return None if sid is None else ExportSet(sid, self.object_id(sid),
                                                  self.object_id(sid), 1, 0, 1, (b"s",))

    def read_segments(self, service_id: int, package_hash: bytes,
                      indices: list[int]) -> dict[int, bytes]:
        return {i: b"s" for i in indices} if self._has("read_segments", service_id) else {}

    def storage_get(self, service_id: int, key: bytes) -> bytes | None:
        return b"value" if self._has("storage_get", service_id) else None

    def storage_list(self, service_id: int, prefix: bytes = b"", cursor: bytes | None = None,
                     limit: int = 50) -> Page[tuple[bytes, bytes]]:
        if not self._has("storage_list", service_id):
            return Page([], None)
        return Page([(b"key", b"value")], None)

    # -- writes (tenancy.writes.TenantWrites): kept, answered with the service's record ------

    def _wrote(self, name: str, service_id: int | None) -> ServiceRecord:
        self.writes.append((name, service_id))
        return self.services.get(service_id or 0) or service(service_id or 0, "?")

    def create_service(self, *, owner: str, code: bytes | None, code_hash: bytes, balance: int,
                       min_item_gas: int, min_memo_gas: int, created_by: str,
                       storage_limit: int, media_type: str = "",
                       max_services: int | None = None) -> ServiceRecord:
        self.writes.append(("create_service", None))
        new = service(max(self.services, default=65535) + 1, owner)
        self.services[new.service_id] = new
        return new

    def set_code(self, service_id: int, code: bytes, code_hash: bytes, storage_limit: int,
                 media_type: str = "") -> ServiceRecord:
        return self._wrote("set_code", service_id)

    def credit(self, service_id: int, amount: int) -> ServiceRecord:
        return self._wrote("credit", service_id)

    def set_quota(self, service_id: int, quota: QuotaOverride) -> ServiceRecord:
        return self._wrote("set_quota", service_id)

    def add_delegate(self, service_id: int, token_hash: bytes, role: str,
                     created_by: str) -> Delegate:
        self._wrote("add_delegate", service_id)
        return Delegate(1, service_id, token_hash, role, 0, created_by)

    def remove_delegate(self, service_id: int, delegate_id: int) -> bool:
        self._wrote("remove_delegate", service_id)
        return True

    def put_preimage(self, hash_: bytes, data: bytes, media_type: str, service_id: int | None,
                     storage_limit: int | None) -> tuple[PreimageMeta, bool]:
        self.writes.append(("put_preimage", service_id))
        return PreimageMeta(hash_, len(data), media_type, service_id, 0), True

    def submit_package(self, pkg: PackageRecord, limits: QuotaLimits, max_pending: int,
                       gas_window: int, account_pending: int | None = None,
                       weights: dict[str, int] | None = None) -> tuple[PackageRecord, bool]:
        self.writes.append(("submit_package", pkg.service_id))
        return pkg, True

    # -- accounts and tokens: rows kept, each write kept as (method, account id) ------------

    def get_account(self, account_id: str) -> Account | None:
        self.reads["get_account"] += 1
        return self.accounts.get(account_id)

    def list_accounts(self) -> list[Account]:
        self.reads["list_accounts"] += 1
        return list(self.accounts.values())

    def list_tokens(self, account_id: str) -> list[TokenRecord]:
        self.reads["list_tokens"] += 1
        return [t for t in self.tokens if t.account_id == account_id]

    def token_by_accessor(self, accessor: str) -> TokenRecord | None:
        self.reads["token_by_accessor"] += 1
        return next((t for t in self.tokens if t.accessor == accessor), None)

    def create_account(self, account: Account) -> Account:
        self.account_writes.append(("create_account", account.id))
        self.accounts[account.id] = account
        return account

    def add_token(self, token: TokenRecord) -> TokenRecord:
        self.account_writes.append(("add_token", token.account_id))
        self.tokens.append(token)
        return token

    def revoke_token(self, account_id: str, accessor: str, at: int) -> bool:
        self.account_writes.append(("revoke_token", account_id))
        return any(t.account_id == account_id and t.accessor == accessor for t in self.tokens)
