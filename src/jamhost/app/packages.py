"""Use cases: work packages, reports and receipts, all read through the caller's barrier."""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any

from jamhost.app import charges
from jamhost.app.decoded_packages import remember
from jamhost.app.package_input import decode_package_bytes, package_service, parse_package_json
from jamhost.app.runtime import Runtime
from jamhost.app.segments import check_segments
from jamhost.domain.hashing import blake2b_256
from jamhost.domain.model import (
    PACKAGE_STATUSES,
    AccumulationRecord,
    Attestation,
    PackageRecord,
    Page,
    Receipt,
    ReportRecord,
    ServiceRecord,
    now_us,
)
from jamhost.domain.refusals import BadRequest, GasQuotaExceeded, NotFound, TooLarge
from jamhost.domain.types.work_package import WorkPackage
from jamhost.engine.authorizer import names_authorizer
from jamhost.tenancy.principal import Principal
from jamhost.tenancy.view import TenantView
from jamhost.tenancy.writes import ServiceWrites


def submit_json(rt: Runtime, who: Principal, obj: Any) -> tuple[PackageRecord, bool]:
    view = rt.view(who)
    seen: dict[int, ServiceRecord] = {}
    with ExitStack() as marks:  # the submit in flight, from the service's read (`submit`)
        def current_code_hash(service_id: int) -> bytes:
            first = not seen
            seen[service_id] = view.service(service_id, "submit")
            if first:
                marks.enter_context(rt.work_ready.submitting(seen[service_id].owner))
            return seen[service_id].code_hash

        pkg, service_id = parse_package_json(obj, current_code_hash)
        return submit(rt, who, pkg, service_id, view=view,
                      writes=view.writes(service_id) if service_id in seen else None)


def submit_bytes(rt: Runtime, who: Principal, body: bytes) -> tuple[PackageRecord, bool]:
    pkg = decode_package_bytes(body)
    return submit(rt, who, pkg, package_service(pkg, None))


def submit(rt: Runtime, who: Principal, pkg: WorkPackage, service_id: int, *,
           view: TenantView | None = None,
           writes: ServiceWrites | None = None) -> tuple[PackageRecord, bool]:
    """Store a pending package once (idempotent by hash), within the service's quotas.
    `view` and `writes`: the caller's view and its `submit` handle on the service, when this
    request already authorized it.

    From the service's read to the notify the submit counts as in flight in this process
    (`WorkSignal.submitting`): other accounts' running packages yield to it at their safe
    points while the service's owner has none running here (docs/scheduling.md,
    "Preemption")."""
    view = view or rt.view(who)
    if writes is None or writes.service_id != service_id:
        writes = view.submitter(service_id)
    svc = writes.service
    with rt.work_ready.submitting(svc.owner):
        return _store(rt, view, pkg, service_id, writes, svc)


def _store(rt: Runtime, view: TenantView, pkg: WorkPackage, service_id: int,
           writes: ServiceWrites, svc: ServiceRecord) -> tuple[PackageRecord, bool]:
    _require_authorizer(view, pkg, svc)
    check_segments(rt, svc, pkg)
    body = pkg.encode()
    if len(body) > rt.settings.max_package_bytes:
        raise TooLarge("the encoded package is larger than max_package_bytes")
    limits = svc.quota.resolve(rt.default_quota)
    # Work GP gas does not price (erasure coding, code loading), in jamhost's units
    # (tenancy/tariff.py), on top of the declared gas; the refund finds them there
    refine = charges.declared_refine_gas(pkg) + charges.units(rt.account_view(svc), pkg, len(body))
    accumulate = sum(i.accumulate_gas_limit for i in pkg.items)
    if refine + accumulate > limits.gas_per_hour:
        raise GasQuotaExceeded("the package declares more gas than the service's hourly budget",
                               gas_window=rt.gas_window())
    at = now_us()
    record = PackageRecord(id=blake2b_256(body), service_id=service_id, status="pending", body=body,
                           size=len(body), refine_gas=refine, accumulate_gas=accumulate,
                           created_at=at, updated_at=at)
    stored, created = writes.submit_package(
        record, limits, rt.settings.max_pending_packages, rt.gas_window(),
        account_pending=rt.settings.max_pending_per_account,
        weights=rt.settings.account_weights)
    if created:
        remember(rt, stored, pkg)
        rt.work_ready.notify(svc.owner)
    return stored, created


def authorize_submit(rt: Runtime, who: Principal) -> None:
    """Before a single body byte is read: the token must have the `submit` scope."""
    rt.view(who).require_scope("submit")


def package_and_position(rt: Runtime, who: Principal,
                         package_id: bytes) -> tuple[PackageRecord, int | None]:
    """A package and how many packages of its own account's queue are ahead of it (never
    counts another account's: the position says nothing about other tenants; None once it
    has started)."""
    view = rt.view(who)
    pkg = view.get_package(package_id)
    if pkg is None:
        raise NotFound("no such package")
    return pkg, view.queue_ahead(pkg)


def _require_authorizer(view: TenantView, pkg: WorkPackage, svc: ServiceRecord) -> None:
    """A named authorizer must be code the submitter may use (tenancy.authz): one refusal
    for a foreign service, a missing service and a missing preimage alike."""
    if not names_authorizer(pkg):
        return
    if view.authorizer_code(svc, pkg.auth_code_host, pkg.auth_code_hash) is None:
        raise BadRequest("the package's authorizer is not available: it must be a preimage "
                         "of a service of the package's owner or of a runtime-wide "
                         "authorizer")


def get_package(rt: Runtime, who: Principal, package_id: bytes) -> PackageRecord:
    pkg = rt.view(who).get_package(package_id)
    if pkg is None:
        raise NotFound("no such package")
    return pkg


def _listing(rt: Runtime, who: Principal, service_id: int | None) -> TenantView:
    """The caller's view, after a named service is found readable (403 otherwise); without
    one the view's scope applies."""
    view = rt.view(who)
    if service_id is not None:
        view.service(service_id, "read")
    return view


def list_packages(rt: Runtime, who: Principal, *, service_id: int | None, status: str | None,
                  cursor: int | None, limit: int) -> Page[PackageRecord]:
    if status is not None and status not in PACKAGE_STATUSES:
        raise BadRequest(f"status must be one of {list(PACKAGE_STATUSES)}")
    return _listing(rt, who, service_id).list_packages(service_id=service_id, status=status,
                                                       cursor=cursor, limit=limit)


def get_report(rt: Runtime, who: Principal,
               package_id: bytes) -> tuple[ReportRecord, list[Attestation], Receipt | None]:
    found = rt.view(who).get_report(package_id)
    if found is None:
        raise NotFound("no report for that package")
    return found


def get_accumulation(rt: Runtime, who: Principal, package_id: bytes) -> AccumulationRecord:
    """What the package's accumulation did, through the barrier exactly as its report: another
    tenant's package answers as a missing one."""
    record = rt.view(who).get_accumulation(package_id)
    if record is None:
        raise NotFound("no accumulation for that package")
    return record


def list_accumulations(rt: Runtime, who: Principal, service_id: int, *, cursor: int | None,
                       limit: int) -> Page[AccumulationRecord]:
    """A service's accumulations, newest first, those of queued inputs alone included."""
    view = rt.view(who)
    view.service(service_id, "read")
    return view.list_accumulations(service_id, cursor=cursor, limit=limit)


def list_reports(rt: Runtime, who: Principal, *, service_id: int | None, cursor: int | None,
                 limit: int) -> Page[ReportRecord]:
    return _listing(rt, who, service_id).list_reports(service_id=service_id, cursor=cursor,
                                                      limit=limit)


def list_receipts(rt: Runtime, who: Principal, *, service_id: int | None, cursor: int | None,
                  limit: int) -> Page[Receipt]:
    return _listing(rt, who, service_id).list_receipts(service_id=service_id, cursor=cursor,
                                                       limit=limit)


def get_receipts(rt: Runtime, who: Principal, hash_: bytes) -> list[Receipt]:
    found = rt.view(who).find_receipts(hash_)
    if not found:
        raise NotFound("no such receipt")
    return found


def process_now(rt: Runtime, who: Principal) -> bytes | None:
    """`POST /jam/process` (operators): run the next pending package in this process with
    the processor the server registered; its id, or None when nothing ran."""
    rt.view(who).require_operator()
    processor = rt.extras.get("processor")
    return processor() if processor is not None else None
