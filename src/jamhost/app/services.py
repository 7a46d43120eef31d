"""Use cases: services, their code, state, balance, quotas and delegates."""

from __future__ import annotations

from jamhost.app import audit
from jamhost.app.runtime import Runtime
from jamhost.domain.hashing import blake2b_256
from jamhost.domain.model import (
    ROLES,
    ZERO_HASH,
    Delegate,
    Page,
    QuotaLimits,
    QuotaOverride,
    ServiceRecord,
)
from jamhost.domain.refusals import BadRequest, NotFound, TooLarge
from jamhost.tenancy.principal import Principal

U64 = 2**64 - 1
MAX_BALANCE = 2**63 - 1  # stored as a signed 64-bit column on every back end


def service_for(rt: Runtime, who: Principal, service_id: int, action: str) -> ServiceRecord:
    """The service, if `who` may `action` it (the view decides: tenancy/view.py); its rate
    budget charged once authorized."""
    return rt.view(who).service(service_id, action)


def create_service(rt: Runtime, who: Principal, *, code: bytes | None = None,
                   balance: int | None = None, min_item_gas: int = 0, min_memo_gas: int = 0,
                   owner: str | None = None) -> ServiceRecord:
    """Owner: the caller's account (owner_is_account), or what an operator names; the view
    decides it, and whether it must be an existing account (`TenantView.service_creation`)."""
    creation = rt.view(who).service_creation(owner)
    if balance is not None and not creation.sets_balance:
        # A malformed balance is still a bad request, before the refusal to set one.
        if not 0 <= balance <= MAX_BALANCE:
            raise BadRequest(f"balance must be between 0 and {MAX_BALANCE}")
        creation.require_balance_setter()
    owner = creation.owner
    given = balance is not None
    balance = rt.settings.initial_service_balance if balance is None else balance
    for name, value, top in (("balance", balance, MAX_BALANCE),
                             ("min_item_gas", min_item_gas, MAX_BALANCE),
                             ("min_memo_gas", min_memo_gas, MAX_BALANCE)):
        if not 0 <= value <= top:
            raise BadRequest(f"{name} must be between 0 and {top}")
    code_hash = ZERO_HASH
    if code is not None:
        _check_code_size(rt, code)
        code_hash = blake2b_256(code)
    svc = creation.create(
        code=code, code_hash=code_hash, balance=balance, balance_given=given,
        min_item_gas=min_item_gas, min_memo_gas=min_memo_gas,
        storage_limit=rt.default_quota.storage_bytes,
        max_services=rt.settings.max_services_per_account)
    audit.record(rt, who, "service.created", service_id=svc.service_id, target=owner)
    return svc


def _check_code_size(rt: Runtime, code: bytes) -> None:
    if len(code) > rt.settings.max_preimage_bytes:
        raise TooLarge("code is larger than max_preimage_bytes")


def list_services(rt: Runtime, who: Principal, cursor: int | None,
                  limit: int) -> Page[ServiceRecord]:
    return rt.view(who).list_services(cursor=cursor, limit=limit)


def show_service(rt: Runtime, who: Principal, service_id: int) -> ServiceRecord:
    """One service for an operator or the admin CLI (`jamhost services show`)."""
    return rt.view(who).existing_service(service_id)


def code_upgrade(rt: Runtime, who: Principal, service_id: int) -> ServiceRecord:
    """Decide an upgrade before a single body byte is read."""
    return rt.view(who).administered(service_id, "upgrade code")


def set_code(rt: Runtime, who: Principal, service_id: int, code: bytes) -> ServiceRecord:
    writes = rt.view(who).manager(service_id, "upgrade code")
    _check_code_size(rt, code)
    limits = writes.service.quota.resolve(rt.default_quota)
    updated = writes.set_code(code, blake2b_256(code), limits.storage_bytes)
    audit.record(rt, who, "service.code_upgraded", service_id=service_id,
                 target="0x" + updated.code_hash.hex())
    return updated


def authorize_operate(rt: Runtime, who: Principal) -> None:
    """Before a body is read: balance and quota changes are for operators (and the admin
    CLI), whether or not the service exists; the change itself finds the service
    (`TenantView.operated`)."""
    rt.view(who).require_operator()


def credit(rt: Runtime, who: Principal, service_id: int, amount: int) -> ServiceRecord:
    writes = rt.view(who).operated(service_id)
    if amount <= 0 or writes.service.balance + amount > MAX_BALANCE:
        raise BadRequest(f"amount must be positive and keep the balance <= {MAX_BALANCE}")
    svc = writes.credit(amount)
    audit.record(rt, who, "service.credited", service_id=service_id, amount=amount)
    return svc


def quota_of(rt: Runtime, svc: ServiceRecord) -> QuotaLimits:
    return svc.quota.resolve(rt.default_quota)


def set_quota(rt: Runtime, who: Principal, service_id: int,
              quota: QuotaOverride) -> ServiceRecord:
    writes = rt.view(who).operated(service_id)
    for value in (quota.pending_packages, quota.storage_bytes, quota.gas_per_hour):
        if value is not None and not 0 <= value <= MAX_BALANCE:
            raise BadRequest("quota values must be between 0 and 2^63-1")
    svc = writes.set_quota(quota)
    audit.record(rt, who, "quota.changed", service_id=service_id,
                 pending_packages=quota.pending_packages, storage_bytes=quota.storage_bytes,
                 gas_per_hour=quota.gas_per_hour)
    return svc


def storage_get(rt: Runtime, who: Principal, service_id: int, key: bytes) -> bytes:
    view = rt.view(who)
    view.service(service_id, "read")
    value = view.storage_get(service_id, key)
    if value is None:
        raise NotFound("no such key")
    return value


def storage_list(rt: Runtime, who: Principal, service_id: int, prefix: bytes,
                 cursor: bytes | None, limit: int) -> Page[tuple[bytes, bytes]]:
    view = rt.view(who)
    view.service(service_id, "read")
    return view.storage_list(service_id, prefix, cursor, limit)


# -- delegates ------------------------------------------------------------------------------

def managed_service(rt: Runtime, who: Principal, service_id: int) -> ServiceRecord:
    """Delegates are managed by the owner (with `manage`) or an operator."""
    return rt.view(who).administered(service_id, "manage delegates")


def add_delegate(rt: Runtime, who: Principal, service_id: int, *,
                 accessor: str | None = None, token: str | None = None,
                 role: str = "submitter") -> Delegate:
    view = rt.view(who)
    writes = view.manager(service_id, "manage delegates")
    if role not in ROLES:
        raise BadRequest(f"role must be one of {list(ROLES)}")
    if (accessor is None) == (token is None):
        raise BadRequest("give exactly one of accessor or token")
    if accessor is not None:
        found = view.delegate_token(service_id, accessor)
        if found is None:
            raise BadRequest("no token with that accessor")
        token_hash = found
    else:
        assert token is not None
        if not 16 <= len(token) <= 512:
            raise BadRequest("token must be 16 to 512 characters")
        token_hash = rt.hasher.hash(token)
    delegate = writes.add_delegate(token_hash, role)
    audit.record(rt, who, "delegate.granted", service_id=writes.service_id,
                 target=str(delegate.id), role=role)
    return delegate


def list_delegates(rt: Runtime, who: Principal, service_id: int) -> list[Delegate]:
    return rt.view(who).delegates(service_id)


def remove_delegate(rt: Runtime, who: Principal, service_id: int,
                    delegate_id: int) -> None:
    writes = rt.view(who).manager(service_id, "manage delegates")
    if not writes.remove_delegate(delegate_id):
        raise NotFound("no such delegate")
    audit.record(rt, who, "delegate.removed", service_id=writes.service_id,
                 target=str(delegate_id))
