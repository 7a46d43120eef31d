"""The tenant view: the only handle through which use cases and the engine reach tenant data.

Like Vault's barrier view (STYLE.md), isolation is a property of the handle, not of each
query remembering a filter. A view is built for one principal (`view_for`: a token's holder,
an operator, the admin CLI) or for one service's own code (`account_view`: what refine and
accumulate of that service may reach), and carries the decision `authz.Policy` made for it:

- its `scope`, the services whose objects it answers about. Every read names a service or
  is filtered by the scope inside the store's query; a service outside it is answered
  exactly as a missing one (None, an empty page), so "not yours" and "does not exist" are
  the same answer;
- the authorization of an action on a named service (`service`, `administered`,
  `require_*`), decided by the policy, with the service's rate budget charged once the
  caller is authorized (tenancy/charging.py).

There is no public scope of every service: operators and the admin CLI get it from the
policy through their own views.

tenancy does no I/O of its own and imports no store: `TenantData` is the small port the view
reads through, `TenantWrites` (tenancy/writes.py) the one it writes through (the store
adapters satisfy both as they are: `jamhost.store.Store` is a superset). A use case writes
only through the view: a `ServiceWrites` handle the view gives once it has authorized the
service (`submitter`, `manager`, `operated`), a `ServiceCreation` from `service_creation`
(the new service's owner and the balance decision, made once) or an `UnscopedUploads` from
`unscoped_uploads`, which the policy allowed first. Accounts and tokens the same way: an
`AccountWrites` handle from `account_manager` once the policy let the principal act on that
account, or the view's own `create_account` (operators and the admin CLI).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from jamhost.domain.model import (
    Account,
    AccumulationRecord,
    Attestation,
    Delegate,
    ExportSet,
    PackageRecord,
    Page,
    PreimageMeta,
    Receipt,
    ReportRecord,
    ServiceRecord,
    TokenRecord,
    Transfer,
)
from jamhost.domain.refusals import Forbidden, NotFound
from jamhost.domain.scopes import ServiceScope
from jamhost.tenancy.authz import Policy
from jamhost.tenancy.charging import Charging
from jamhost.tenancy.principal import Principal, service_code
from jamhost.tenancy.tokens import ACCESSOR_RE, ACCOUNT_ID_RE
from jamhost.tenancy.writes import (
    ADMINISTER,
    OPERATE,
    SUBMIT,
    AccountWrites,
    ServiceCreation,
    ServiceWrites,
    TenantWrites,
    UnscopedUploads,
)


class TenantData(Protocol):
    """The reads a view makes: the store port's tenant-data methods, signatures unchanged."""

    def get_service(self, service_id: int) -> ServiceRecord | None: ...
    def list_services(self, scope: ServiceScope, *, owner: str | None = None,
                      cursor: int | None = None, limit: int = 50) -> Page[ServiceRecord]: ...
    def owned_service_ids(self, owner: str) -> set[int]: ...
    def list_delegates(self, service_id: int) -> list[Delegate]: ...
    def find_preimage(self, hash_: bytes, scope: ServiceScope) -> PreimageMeta | None: ...
    def service_preimage(self, service_id: int, hash_: bytes) -> bytes | None: ...
    def service_preimage_window(self, service_id: int, hash_: bytes, at: int, n: int,
                                ) -> tuple[int, bytes] | None: ...
    def read_blob(self, hash_: bytes) -> bytes | None: ...
    def queue_ahead(self, pkg: PackageRecord) -> int | None: ...
    def get_package(self, package_id: bytes, scope: ServiceScope) -> PackageRecord | None: ...
    def list_packages(self, scope: ServiceScope, *, service_id: int | None = None,
                      status: str | None = None, cursor: int | None = None,
                      limit: int = 50) -> Page[PackageRecord]: ...
    def get_report(self, package_id: bytes, scope: ServiceScope) -> ReportRecord | None: ...
    def list_reports(self, scope: ServiceScope, *, service_id: int | None = None,
                     cursor: int | None = None, limit: int = 50) -> Page[ReportRecord]: ...
    def attestations(self, package_id: bytes) -> list[Attestation]: ...
    def list_receipts(self, scope: ServiceScope, *, service_id: int | None = None,
                      cursor: int | None = None, limit: int = 50) -> Page[Receipt]: ...
    def find_receipts(self, hash_: bytes, scope: ServiceScope) -> list[Receipt]: ...
    def get_accumulation(self, package_id: bytes,
                         scope: ServiceScope) -> AccumulationRecord | None: ...
    def list_accumulations(self, service_id: int, *, cursor: int | None = None,
                           limit: int = 50) -> Page[AccumulationRecord]: ...
    def pending_transfers(self, service_id: int) -> list[Transfer]: ...
    def queued_inputs(self, service_id: int) -> tuple[int, int]: ...
    def lookup_request(self, service_id: int, hash_: bytes,
                       length: int) -> tuple[int, ...] | None: ...
    def find_export_set(self, scope: ServiceScope, now: int, *,
                        segments_root: bytes | None = None,
                        package_hash: bytes | None = None) -> ExportSet | None: ...
    def read_segments(self, service_id: int, package_hash: bytes,
                      indices: list[int]) -> dict[int, bytes]: ...
    def storage_get(self, service_id: int, key: bytes) -> bytes | None: ...
    def storage_list(self, service_id: int, prefix: bytes = b"", cursor: bytes | None = None,
                     limit: int = 50) -> Page[tuple[bytes, bytes]]: ...
    def get_account(self, account_id: str) -> Account | None: ...
    def list_accounts(self) -> list[Account]: ...
    def list_tokens(self, account_id: str) -> list[TokenRecord]: ...
    def token_by_accessor(self, accessor: str) -> TokenRecord | None: ...


class TenantStore(TenantData, TenantWrites, Protocol):
    """What a view is built on: the tenant reads and writes of the store port."""


_NOTHING: Page[tuple[bytes, bytes]] = Page([], None)


class TenantView:
    """What one principal may see and do. Build it with `view_for` or `account_view`."""

    def __init__(self, policy: Policy, who: Principal, data: TenantStore,
                 scope: Callable[[], ServiceScope], *, charging: Charging | None = None,
                 home: int | None = None) -> None:
        self.policy = policy
        self.principal = who
        self._data = data
        self._scope_of = scope
        self._scope: ServiceScope | None = None
        self._charging = charging
        self._home = home  # an account view's own service: always in reach, no read needed
        self._readable: set[int] = set()  # authorized for `read` in this view's life
        self._submittable: dict[int, ServiceRecord] = {}  # authorized for `submit`, as read
        self._administered: set[int] = set()  # authorized to administer in this view's life

    # -- the decision ----------------------------------------------------------------------

    @property
    def scope(self) -> ServiceScope:
        """The services this view answers about (computed once, on first use)."""
        if self._scope is None:
            self._scope = self._scope_of()
        return self._scope

    def sees(self, service_id: int | None) -> bool:
        """Whether objects of `service_id` are in this view."""
        return service_id is not None and (service_id == self._home
                                           or service_id in self._readable
                                           or self.scope.allows(service_id))

    def service(self, service_id: int, action: str) -> ServiceRecord:
        """The service, if the principal may `action` (read/submit/manage) it: 403 for a
        foreign or unknown id, whether or not it exists; 404 only for a caller who could see
        it if it existed. Charges the service's rate budget once authorized."""
        svc = self.policy.require_service(self.principal, self._data.get_service(service_id),
                                          action)
        if action == "read":  # a read authorization implies the read scope (authz.Policy)
            self._readable.add(service_id)
        elif action == "submit":
            self._submittable[service_id] = svc
        if self._charging is not None:
            self._charging.service(self.principal, service_id)
        return svc

    def administered(self, service_id: int, what: str) -> ServiceRecord:
        """The service, if the principal may administer it (code, delegates: `what`)."""
        svc = self.service(service_id, "manage")
        self.policy.require_administer(self.principal, svc, what)
        self._administered.add(service_id)
        return svc

    def require_scope(self, action: str) -> None:
        self.policy.require_scope(self.principal, action)

    def require_operator(self) -> None:
        self.policy.require_operator(self.principal)

    def require_account(self, account_id: str) -> None:
        self.policy.require_account(self.principal, account_id)

    def require_grantable(self, scopes: frozenset[str]) -> None:
        """A token cannot grant scopes it does not have (operators grant any)."""
        self.policy.require_grantable(self.principal, scopes)

    def sees_every_service(self) -> bool:
        """Operators and the admin CLI see every service's accumulator root."""
        return self.policy.sees_every_service(self.principal)

    def existing_service(self, service_id: int) -> ServiceRecord:
        """An operator's (or the admin CLI's) handle on any service: 403 for everyone else,
        404 for a missing id."""
        self.require_operator()
        svc = self.get_service(service_id)
        if svc is None:
            raise NotFound("no such service")
        return svc

    # -- writes: a handle on one authorized service (tenancy/writes.py) ---------------------

    def submitter(self, service_id: int) -> ServiceWrites:
        """Writes a `submit` authorizes (packages, the service's preimages)."""
        self.service(service_id, "submit")
        return self.writes(service_id)

    def writes(self, service_id: int) -> ServiceWrites:
        """The `submit` handle on a service this view already authorized for `submit` in
        this request, on the record it read then, without a second decision; refused for
        any other."""
        svc = self._submittable.get(service_id)
        if svc is None:
            raise Forbidden("not authorized for this service")
        return ServiceWrites(svc, self._data, SUBMIT, self.principal.label)

    def manager(self, service_id: int, what: str) -> ServiceWrites:
        """Writes only the owner or an operator make (code, delegates: `what`)."""
        return ServiceWrites(self.administered(service_id, what), self._data, ADMINISTER,
                             self.principal.label)

    def operated(self, service_id: int) -> ServiceWrites:
        """Writes for operators and the admin CLI (balance, quota); 404 for a missing id."""
        return ServiceWrites(self.existing_service(service_id), self._data, OPERATE,
                             self.principal.label)

    def service_creation(self, owner: str | None) -> ServiceCreation:
        """A new service's owner (authz.Policy.service_owner: what an operator names, else
        the caller's own account; a tenant naming another is refused here, an owner that is
        no account where it must be one too) and whether the principal may name its
        balance: both decided once, carried by the handle. Whether the owner names an
        account is read store-wide, deliberately (like `id_taken`): a tenant can name only
        its own, so it learns nothing."""
        chosen = self.policy.service_owner(
            self.principal, owner,
            is_account=lambda account_id: self._data.get_account(account_id) is not None)
        return ServiceCreation(chosen, self.policy.may_set_balance(self.principal),
                               self._data, self.principal.label)

    def unscoped_uploads(self) -> UnscopedUploads:
        """Uploads of preimages of no service, if the policy allows them to the principal
        (operators, or anyone with authz disabled: SPEC §3)."""
        self.policy.require_unscoped_upload(self.principal)
        return UnscopedUploads(self._data)

    # -- accounts and their tokens ---------------------------------------------------------

    def account(self, account_id: str) -> Account:
        """An account the principal may act on (operators, or its own token with `manage`):
        403 for another account's id whether or not it exists, 404 for a missing one."""
        self.policy.require_account(self.principal, account_id)
        # an id that cannot name an account is answered like a missing one, with no read
        account = (self._data.get_account(account_id) if ACCOUNT_ID_RE.match(account_id)
                   else None)
        if account is None:
            raise NotFound("no such account")
        return account

    def account_manager(self, account_id: str) -> AccountWrites:
        """The token writes of one account `account` authorizes."""
        return AccountWrites(self.account(account_id), self._data)

    def delegate_token(self, service_id: int, accessor: str) -> bytes | None:
        """The hash of the token `accessor` names, to make it a delegate of `service_id`:
        only once this view authorized the principal to administer that service (`manager`),
        and only the hash, never the token's account, name or scopes. Store-wide, on
        purpose: an owner may delegate to any token known by its accessor (the grantee gets
        more, never less: docs/operator-guide.md). None for an accessor that names no token,
        with no read for one that cannot name any."""
        if service_id not in self._administered:
            raise Forbidden("not authorized for this service")
        record = (self._data.token_by_accessor(accessor) if ACCESSOR_RE.match(accessor)
                  else None)
        return None if record is None else record.token_hash

    def tokens(self, account_id: str) -> list[TokenRecord]:
        return self._data.list_tokens(self.account(account_id).id)

    def own_account(self) -> Account | None:
        """The principal's own account; None for operators and delegates."""
        owner = self.principal.account_id
        return self._data.get_account(owner) if owner else None

    def list_accounts(self) -> list[Account]:
        self.require_operator()
        return self._data.list_accounts()

    def create_account(self, account: Account) -> Account:
        """Operators (and the admin CLI) create accounts."""
        self.require_operator()
        return self._data.create_account(account)

    # -- services --------------------------------------------------------------------------

    def get_service(self, service_id: int) -> ServiceRecord | None:
        """A service in the view, or None exactly as for a missing one."""
        if not self.sees(service_id):
            return None  # decided in memory: no store read for another tenant's id
        return self._data.get_service(service_id)

    def list_services(self, *, owner: str | None = None, cursor: int | None = None,
                      limit: int = 50) -> Page[ServiceRecord]:
        return self._data.list_services(self.scope, owner=owner, cursor=cursor, limit=limit)

    def delegates(self, service_id: int) -> list[Delegate]:
        """A service's delegates: for those who may administer it (`administered`), which
        is decided first; the read scope plays no part (an owner's `manage`-only token
        lists them too)."""
        return self._data.list_delegates(self.administered(service_id,
                                                           "manage delegates").service_id)

    def storage_get(self, service_id: int, key: bytes) -> bytes | None:
        return self._data.storage_get(service_id, key) if self.sees(service_id) else None

    def storage_list(self, service_id: int, prefix: bytes = b"", cursor: bytes | None = None,
                     limit: int = 50) -> Page[tuple[bytes, bytes]]:
        if not self.sees(service_id):
            return _NOTHING
        return self._data.storage_list(service_id, prefix, cursor, limit)

    def lookup_request(self, service_id: int, hash_: bytes,
                       length: int) -> tuple[int, ...] | None:
        if not self.sees(service_id):
            return None
        return self._data.lookup_request(service_id, hash_, length)

    def pending_transfers(self, service_id: int) -> list[Transfer]:
        return self._data.pending_transfers(service_id) if self.sees(service_id) else []

    def queued_inputs(self, service_id: int) -> tuple[int, int]:
        return self._data.queued_inputs(service_id) if self.sees(service_id) else (0, 0)

    def id_taken(self, service_id: int) -> bool:
        """Store-wide, deliberately: `new` must not allocate an id any tenant holds (GP 0.7.2
        check). Answers only whether the id is allocated, never what it holds."""
        return self._data.get_service(service_id) is not None

    def owned_count(self) -> int:
        """Services of the principal's account (its `max_services_per_account` bound)."""
        owner = self.principal.account_id
        return len(self._data.owned_service_ids(owner)) if owner is not None else 0

    # -- preimages -------------------------------------------------------------------------

    def find_preimage(self, hash_: bytes) -> PreimageMeta | None:
        return self._data.find_preimage(hash_, self.scope)

    def read_preimage(self, hash_: bytes) -> tuple[PreimageMeta, bytes] | None:
        """The metadata and the blob, only when the metadata is in the view."""
        meta = self.find_preimage(hash_)
        if meta is None:
            return None
        data = self._data.read_blob(hash_)
        return None if data is None else (meta, data)

    def service_preimage(self, service_id: int, hash_: bytes) -> bytes | None:
        if not self.sees(service_id):
            return None
        return self._data.service_preimage(service_id, hash_)

    def service_preimage_window(self, service_id: int, hash_: bytes, at: int, n: int,
                                ) -> tuple[int, bytes] | None:
        if not self.sees(service_id):
            return None
        return self._data.service_preimage_window(service_id, hash_, at, n)

    def code_size(self, service_id: int, code_hash: bytes) -> int | None:
        """|code| of a preimage of `service_id` from its metadata row (never the blob), for
        the tariff (tenancy/tariff.py): a service in the view, or a runtime-wide authorizer."""
        if not (self.sees(service_id) or service_id in self.policy.shared_authorizers):
            return None
        meta = self._data.find_preimage(code_hash, ServiceScope(frozenset({service_id})))
        return meta.size if meta is not None and meta.service_id == service_id else None

    def authorizer_code(self, package_service: ServiceRecord, host: int,
                        code_hash: bytes) -> bytes | None:
        """The code preimage of a package's authorizer (Ψ_I), if `authz.Policy` lets the
        package use it: for a request principal, also one it may submit to; for an account
        view (the worker), as the service's own code. None for a foreign, a missing service
        and a missing preimage alike. The host's record is read store-wide (a runtime-wide
        authorizer is the operator's) but never leaves the view."""
        if not self.policy.may_authorize_with(self.principal, package_service,
                                              self._data.get_service(host)):
            return None
        return self._data.service_preimage(host, code_hash)

    # -- packages, reports, receipts, accumulations ----------------------------------------

    def get_package(self, package_id: bytes) -> PackageRecord | None:
        return self._data.get_package(package_id, self.scope)

    def queue_ahead(self, pkg: PackageRecord) -> int | None:
        """Packages ahead of `pkg` in its own account's queue (None out of view)."""
        return self._data.queue_ahead(pkg) if self.sees(pkg.service_id) else None

    def list_packages(self, *, service_id: int | None = None, status: str | None = None,
                      cursor: int | None = None, limit: int = 50) -> Page[PackageRecord]:
        return self._data.list_packages(self.scope, service_id=service_id, status=status,
                                        cursor=cursor, limit=limit)

    def get_report(self, package_id: bytes,
                   ) -> tuple[ReportRecord, list[Attestation], Receipt | None] | None:
        """A package's report, its attestations and its receipt, or None out of view."""
        report = self._data.get_report(package_id, self.scope)
        if report is None:
            return None
        receipts = self._data.find_receipts(report.report_hash, self.scope)
        receipt = next((r for r in receipts if r.service_id == report.service_id), None)
        return report, self._data.attestations(package_id), receipt

    def list_reports(self, *, service_id: int | None = None, cursor: int | None = None,
                     limit: int = 50) -> Page[ReportRecord]:
        return self._data.list_reports(self.scope, service_id=service_id, cursor=cursor,
                                       limit=limit)

    def list_receipts(self, *, service_id: int | None = None, cursor: int | None = None,
                      limit: int = 50) -> Page[Receipt]:
        return self._data.list_receipts(self.scope, service_id=service_id, cursor=cursor,
                                        limit=limit)

    def find_receipts(self, hash_: bytes) -> list[Receipt]:
        return self._data.find_receipts(hash_, self.scope)

    def get_accumulation(self, package_id: bytes) -> AccumulationRecord | None:
        return self._data.get_accumulation(package_id, self.scope)

    def list_accumulations(self, service_id: int, *, cursor: int | None = None,
                           limit: int = 50) -> Page[AccumulationRecord]:
        if not self.sees(service_id):
            return Page([], None)
        return self._data.list_accumulations(service_id, cursor=cursor, limit=limit)

    # -- exported segments -----------------------------------------------------------------

    def find_export_set(self, now: int, *, segments_root: bytes | None = None,
                        package_hash: bytes | None = None) -> ExportSet | None:
        return self._data.find_export_set(self.scope, now, segments_root=segments_root,
                                          package_hash=package_hash)

    def read_segments(self, service_id: int, package_hash: bytes,
                      indices: list[int]) -> dict[int, bytes]:
        if not self.sees(service_id):
            return {}
        return self._data.read_segments(service_id, package_hash, indices)


def view_for(policy: Policy, who: Principal, data: TenantStore, *,
             charging: Charging | None = None) -> TenantView:
    """The view of a request's principal (or of the admin CLI): its read scope, per
    `Policy.scope`."""
    def scope() -> ServiceScope:
        owner = policy.scope_owner(who)
        return policy.scope(who, data.owned_service_ids(owner) if owner else set())
    return TenantView(policy, who, data, scope, charging=charging)


def service_view(policy: Policy, service_id: int,
                 data: TenantStore) -> tuple[ServiceRecord, TenantView] | None:
    """The worker's way in: a service whose work is due (a claimed package, queued
    transfers) and its account view; None when the service no longer exists."""
    service = data.get_service(service_id)
    return None if service is None else (service, account_view(policy, service, data))


def account_view(policy: Policy, service: ServiceRecord, data: TenantStore) -> TenantView:
    """What the code of `service` may reach when the runtime runs it (refine, Ψ_I,
    accumulate): its own account's services (`Policy.import_scope`; every service with authz
    disabled). The principal is the service's own code (`service_code`): its account, with
    no token."""
    who = service_code(service.owner)
    def scope() -> ServiceScope:
        return policy.import_scope(data.owned_service_ids(service.owner)
                                   if policy.authz_enabled else set())
    return TenantView(policy, who, data, scope, home=service.service_id)
