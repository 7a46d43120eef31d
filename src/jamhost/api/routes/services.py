"""Services: create, read, code upgrade, state, delegates, quota, credit."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from jamhost.api import cursors
from jamhost.api.bodies import read_capped, read_json
from jamhost.api.deps import page_limit, principal, runtime, service_id_param
from jamhost.api.models import (
    CreditIn,
    DelegateIn,
    QuotaIn,
    ServiceIn,
    openapi_body,
    validate,
)
from jamhost.app import packages, services, views
from jamhost.app.package_input import parse_hex
from jamhost.app.runtime import Runtime
from jamhost.domain.model import QuotaOverride
from jamhost.domain.refusals import BadRequest, NotFound
from jamhost.tenancy.principal import Principal

router = APIRouter(prefix="/jam/services", tags=["services"])


def _sid(service_id: str) -> int:
    sid = service_id_param(service_id, "service id")
    assert sid is not None
    return sid


def _service_view(rt: Runtime, svc: Any) -> dict[str, Any]:
    return views.service(svc, services.quota_of(rt, svc), rt.gas_window())


@router.post("", status_code=201, openapi_extra=openapi_body(ServiceIn))
async def create_service(request: Request, rt: Runtime = Depends(runtime),
                         who: Principal = Depends(principal)) -> JSONResponse:
    """Create a service, optionally with its PVM code (hex).

    Owned by the caller's account (an operator names the `owner`)."""
    # Two hex chars a byte, plus room for the other fields.
    body = validate(ServiceIn, await read_json(request, 2 * rt.settings.max_preimage_bytes
                                               + 4096))
    code = parse_hex(body.code, "code") if body.code is not None else None
    svc = await run_in_threadpool(
        lambda: services.create_service(rt, who, code=code, balance=body.balance,
                                        min_item_gas=body.min_item_gas,
                                        min_memo_gas=body.min_memo_gas, owner=body.owner))
    return JSONResponse(_service_view(rt, svc), status_code=201)


@router.get("")
def list_services(request: Request, cursor: str | None = None, limit: str | None = None,
                  rt: Runtime = Depends(runtime),
                  who: Principal = Depends(principal)) -> dict[str, Any]:
    """List the services the caller may read, with their quotas and usage."""
    page = services.list_services(rt, who, cursors.decode(request, cursor, int),
                                  page_limit(limit))
    return cursors.page(request, [_service_view(rt, s) for s in page.items], page.next_cursor)


@router.get("/{service_id}")
def get_service(service_id: str, rt: Runtime = Depends(runtime),
                who: Principal = Depends(principal)) -> dict[str, Any]:
    """One service: code hash, balance, gas minimums, accumulator root, quota."""
    return _service_view(rt, services.service_for(rt, who, _sid(service_id), "read"))


@router.put("/{service_id}/code", openapi_extra=openapi_body(
    media="application/octet-stream", binary=True))
async def put_code(service_id: str, request: Request, rt: Runtime = Depends(runtime),
                   who: Principal = Depends(principal)) -> dict[str, Any]:
    """Replace a service's PVM code (the program blob as the body)."""
    sid = _sid(service_id)
    await run_in_threadpool(services.code_upgrade, rt, who, sid)
    code = await read_capped(request, rt.settings.max_preimage_bytes, "code")
    if not code:
        raise BadRequest("the body must be a PVM program blob")
    svc = await run_in_threadpool(services.set_code, rt, who, sid, code)
    return _service_view(rt, svc)


@router.get("/{service_id}/storage")
def list_storage(request: Request, service_id: str, prefix: str = "",
                 cursor: str | None = None, limit: str | None = None,
                 rt: Runtime = Depends(runtime),
                 who: Principal = Depends(principal)) -> dict[str, Any]:
    """List a service's storage, by key order; filter by a key `prefix` (hex)."""
    sid = _sid(service_id)
    raw_prefix = parse_hex(prefix or "0x", "prefix")
    scope = {"service_id": sid, "prefix": raw_prefix}
    page = services.storage_list(rt, who, sid, raw_prefix,
                                 cursors.decode(request, cursor, bytes, **scope),
                                 page_limit(limit))
    return cursors.page(request, [{"key": views.hx(k), "value": views.hx(v)}
                                  for k, v in page.items], page.next_cursor, **scope)


@router.get("/{service_id}/accumulations")
def list_accumulations(request: Request, service_id: str, cursor: str | None = None,
                       limit: str | None = None, rt: Runtime = Depends(runtime),
                       who: Principal = Depends(principal)) -> dict[str, Any]:
    """The service's accumulations, newest first: of its packages and of the inputs other
    services of its account queued for it (package_id null)."""
    sid = _sid(service_id)
    page = packages.list_accumulations(
        rt, who, sid, cursor=cursors.decode(request, cursor, int, service_id=sid),
        limit=page_limit(limit))
    return cursors.page(request, [views.accumulation(a) for a in page.items], page.next_cursor,
                        service_id=sid)


@router.get("/{service_id}/storage/{key}")
def get_storage(service_id: str, key: str, rt: Runtime = Depends(runtime),
                who: Principal = Depends(principal)) -> dict[str, Any]:
    """One storage value of a service, by key (hex)."""
    sid = _sid(service_id)
    raw_key = parse_hex(key, "key")
    value = services.storage_get(rt, who, sid, raw_key)
    return {"service_id": sid, "key": views.hx(raw_key), "value": views.hx(value)}


@router.post("/{service_id}/delegates", status_code=201, openapi_extra=openapi_body(DelegateIn))
async def add_delegate(service_id: str, request: Request, rt: Runtime = Depends(runtime),
                       who: Principal = Depends(principal)) -> JSONResponse:
    """Let another token use this service, as `reader` or `submitter`."""
    sid = _sid(service_id)
    await run_in_threadpool(services.managed_service, rt, who, sid)
    body = validate(DelegateIn, await read_json(request))
    d = await run_in_threadpool(lambda: services.add_delegate(
        rt, who, sid, accessor=body.accessor, token=body.token, role=body.role))
    return JSONResponse(views.delegate(d), status_code=201)


@router.get("/{service_id}/delegates")
def list_delegates(service_id: str, rt: Runtime = Depends(runtime),
                   who: Principal = Depends(principal)) -> dict[str, Any]:
    """List the tokens delegated to use this service."""
    items = services.list_delegates(rt, who, _sid(service_id))
    return views.page([views.delegate(d) for d in items])


@router.delete("/{service_id}/delegates/{delegate_id}", status_code=204)
def remove_delegate(service_id: str, delegate_id: str, rt: Runtime = Depends(runtime),
                    who: Principal = Depends(principal)) -> Response:
    """Withdraw a delegation."""
    sid = _sid(service_id)
    services.managed_service(rt, who, sid)
    if not delegate_id.isdigit() or len(delegate_id) > 18:
        raise NotFound("no such delegate")
    services.remove_delegate(rt, who, sid, int(delegate_id))
    return Response(status_code=204)


@router.get("/{service_id}/quota")
def get_quota(service_id: str, rt: Runtime = Depends(runtime),
              who: Principal = Depends(principal)) -> dict[str, Any]:
    """A service's quota limits, usage and overrides."""
    svc = services.service_for(rt, who, _sid(service_id), "read")
    return views.quota(services.quota_of(rt, svc), svc, rt.gas_window())


@router.put("/{service_id}/quota", openapi_extra=openapi_body(QuotaIn))
async def put_quota(service_id: str, request: Request, rt: Runtime = Depends(runtime),
                    who: Principal = Depends(principal)) -> dict[str, Any]:
    """Override a service's quota limits (null: back to the default). Operator only."""
    sid = _sid(service_id)
    services.authorize_operate(rt, who)  # before the body is read
    body = validate(QuotaIn, await read_json(request))
    svc = await run_in_threadpool(services.set_quota, rt, who, sid, QuotaOverride(
        body.pending_packages, body.storage_bytes, body.gas_per_hour))
    return views.quota(services.quota_of(rt, svc), svc, rt.gas_window())


@router.post("/{service_id}/credit", openapi_extra=openapi_body(CreditIn))
async def credit(service_id: str, request: Request, rt: Runtime = Depends(runtime),
                 who: Principal = Depends(principal)) -> dict[str, Any]:
    """Credit a service's balance. Operator only."""
    sid = _sid(service_id)
    services.authorize_operate(rt, who)  # before the body is read
    body = validate(CreditIn, await read_json(request))
    svc = await run_in_threadpool(services.credit, rt, who, sid, body.amount)
    if svc is None:
        raise NotFound("no such service")
    return _service_view(rt, svc)
