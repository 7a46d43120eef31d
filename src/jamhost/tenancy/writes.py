"""The write side of the tenant view: what a use case may change, and only where the view
decided it may.

A use case never names the service it writes: it asks its view for a `ServiceWrites`
(`TenantView.submitter`, `.manager`, `.operated`), which the view hands out only once
`authz.Policy` has authorized the principal for that service, and every write goes to that
one service. So a use case cannot write another tenant's service by forgetting a check: the
handle it holds has no service id to get wrong, and a write beyond what was granted (a
submitter's handle asked to upgrade code) is refused here too. The service-less writes have
handles of their own, handed out the same way: `ServiceCreation` (a new service, its owner
and the balance decision made once) and `UnscopedUploads` (preimages of no service); a new
account is a method of the view, for operators.

Accounts and their tokens have the same shape: `TenantView.account_manager` hands out an
`AccountWrites` on one account once `authz.Policy.require_account` let the principal act on
it (an operator, or that account's own `manage` token), and the handle writes tokens of that
account only.

`TenantWrites` is the port the handle writes through: the store port's tenant writes,
signatures unchanged (`jamhost.store.Store` satisfies it). The worker's claim, finish and
apply path is not here: it writes what the engine's account view computed (app/pipeline.py).
"""

from __future__ import annotations

from typing import Protocol

from jamhost.domain.model import (
    Account,
    Delegate,
    PackageRecord,
    PreimageMeta,
    QuotaLimits,
    QuotaOverride,
    ServiceRecord,
    TokenRecord,
)
from jamhost.domain.refusals import Forbidden


class TenantWrites(Protocol):
    """The writes a view makes: the store port's tenant-data writes, signatures unchanged."""

    def create_service(self, *, owner: str, code: bytes | None, code_hash: bytes, balance: int,
                       min_item_gas: int, min_memo_gas: int, created_by: str,
                       storage_limit: int, media_type: str = ...,
                       max_services: int | None = None) -> ServiceRecord: ...
    def set_code(self, service_id: int, code: bytes, code_hash: bytes, storage_limit: int,
                 media_type: str = ...) -> ServiceRecord: ...
    def credit(self, service_id: int, amount: int) -> ServiceRecord: ...
    def set_quota(self, service_id: int, quota: QuotaOverride) -> ServiceRecord: ...
    def add_delegate(self, service_id: int, token_hash: bytes, role: str,
                     created_by: str) -> Delegate: ...
    def remove_delegate(self, service_id: int, delegate_id: int) -> bool: ...
    def put_preimage(self, hash_: bytes, data: bytes, media_type: str, service_id: int | None,
                     storage_limit: int | None) -> tuple[PreimageMeta, bool]: ...
    def submit_package(self, pkg: PackageRecord, limits: QuotaLimits, max_pending: int,
                       gas_window: int, account_pending: int | None = None,
                       weights: dict[str, int] | None = None) -> tuple[PackageRecord, bool]: ...
    def create_account(self, account: Account) -> Account: ...
    def add_token(self, token: TokenRecord) -> TokenRecord: ...
    def revoke_token(self, account_id: str, accessor: str, at: int) -> bool: ...


#: What a handle may do, by how it was authorized: `submit` (packages, preimages),
#: `administer` (code, delegates: the owner or an operator), `operate` (balance, quota, and
#: the delegates the config seeds: operators and the admin CLI). Each grant is exactly what
#: its decision checked: a handle from `manager` or `operated` submits nothing (a token
#: scoped to `manage` is no submitter), so a submit always goes through `submitter`, whose
#: decision checks the token's `submit` scope.
SUBMIT = frozenset({"submit"})
ADMINISTER = frozenset({"administer"})
OPERATE = frozenset({"administer", "operate"})


class ServiceWrites:
    """The writes to one authorized service. Built by `TenantView` only (the barrier test
    holds it: tests/unit/test_barrier.py)."""

    def __init__(self, service: ServiceRecord, data: TenantWrites, grants: frozenset[str],
                 actor: str) -> None:
        self.service = service
        self._data = data
        self._grants = grants
        self._actor = actor  # who writes, for `created_by` columns (Principal.label)

    @property
    def service_id(self) -> int:
        return self.service.service_id

    def _need(self, grant: str) -> None:
        if grant not in self._grants:
            raise Forbidden("not authorized for this change to the service")

    def submit_package(self, pkg: PackageRecord, limits: QuotaLimits, max_pending: int,
                       gas_window: int, *, account_pending: int | None = None,
                       weights: dict[str, int] | None = None) -> tuple[PackageRecord, bool]:
        self._need("submit")
        if pkg.service_id != self.service_id:
            raise Forbidden("not authorized for this service")
        return self._data.submit_package(pkg, limits, max_pending, gas_window,
                                         account_pending=account_pending, weights=weights)

    def put_preimage(self, hash_: bytes, data: bytes, media_type: str,
                     storage_limit: int | None) -> tuple[PreimageMeta, bool]:
        self._need("submit")
        return self._data.put_preimage(hash_, data, media_type, self.service_id, storage_limit)

    def set_code(self, code: bytes, code_hash: bytes, storage_limit: int) -> ServiceRecord:
        self._need("administer")
        return self._data.set_code(self.service_id, code, code_hash, storage_limit)

    def add_delegate(self, token_hash: bytes, role: str, *,
                     created_by: str | None = None) -> Delegate:
        self._need("administer")
        return self._data.add_delegate(self.service_id, token_hash, role,
                                       created_by or self._actor)

    def remove_delegate(self, delegate_id: int) -> bool:
        self._need("administer")
        return self._data.remove_delegate(self.service_id, delegate_id)

    def credit(self, amount: int) -> ServiceRecord:
        self._need("operate")
        return self._data.credit(self.service_id, amount)

    def set_quota(self, quota: QuotaOverride) -> ServiceRecord:
        self._need("operate")
        return self._data.set_quota(self.service_id, quota)


class AccountWrites:
    """The token writes of one authorized account. Built by `TenantView` only (the barrier
    test holds it: tests/unit/test_barrier.py)."""

    def __init__(self, account: Account, data: TenantWrites) -> None:
        self.account = account
        self._data = data

    def add_token(self, token: TokenRecord) -> TokenRecord:
        if token.account_id != self.account.id:
            raise Forbidden("not authorized for this account")
        return self._data.add_token(token)

    def revoke_token(self, accessor: str, at: int) -> bool:
        return self._data.revoke_token(self.account.id, accessor, at)


class ServiceCreation:
    """A new service for the owner the view decided (`TenantView.service_creation`), with
    the balance decision made once: `sets_balance` is whether the principal may name the
    new service's balance (operators: `authz.Policy.may_set_balance`), and the one place
    that refuses it (`require_balance_setter`). Built by `TenantView` only."""

    def __init__(self, owner: str, sets_balance: bool, data: TenantWrites,
                 actor: str) -> None:
        self.owner = owner
        self.sets_balance = sets_balance
        self._data = data
        self._actor = actor

    def require_balance_setter(self) -> None:
        if not self.sets_balance:
            raise Forbidden("only operators may set a balance")

    def create(self, *, code: bytes | None, code_hash: bytes, balance: int,
               balance_given: bool, min_item_gas: int, min_memo_gas: int,
               storage_limit: int, max_services: int | None) -> ServiceRecord:
        """The service, owned by `owner`; its balance named only by who may set one."""
        if balance_given:
            self.require_balance_setter()
        return self._data.create_service(
            owner=self.owner, code=code, code_hash=code_hash, balance=balance,
            min_item_gas=min_item_gas, min_memo_gas=min_memo_gas, created_by=self._actor,
            storage_limit=storage_limit, max_services=max_services)


class UnscopedUploads:
    """Preimages of no service (an operator's upload, or anyone's with authz disabled:
    SPEC §3), handed out by `TenantView.unscoped_uploads` once the policy allowed them.
    Built by `TenantView` only."""

    def __init__(self, data: TenantWrites) -> None:
        self._data = data

    def put_preimage(self, hash_: bytes, data: bytes,
                     media_type: str) -> tuple[PreimageMeta, bool]:
        return self._data.put_preimage(hash_, data, media_type, None, None)
