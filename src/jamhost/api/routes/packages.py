"""Work packages, reports, receipts and the operator's process trigger."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from jamhost.api import cursors
from jamhost.api.bodies import media_type, parse_json, read_capped
from jamhost.api.deps import page_limit, principal, runtime, service_id_param
from jamhost.app import packages, views
from jamhost.app.package_input import parse_hash
from jamhost.app.runtime import Runtime
from jamhost.domain.model import PackageRecord
from jamhost.domain.refusals import BadRequest, NotFound, UnsupportedMediaType
from jamhost.domain.types.work_package import WorkPackage
from jamhost.domain.types.work_report import WorkReport
from jamhost.tenancy.principal import Principal

router = APIRouter(tags=["packages"])

PACKAGE_BODY = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": {"type": "object", "properties": {
        "service_id": {"type": "integer", "minimum": 0, "maximum": 4294967295},
        "items": {"type": "array", "minItems": 1, "maxItems": 16, "items": {
            "type": "object", "properties": {
                "payload": {"type": "string"},
                "refine_gas_limit": {"type": "integer", "minimum": 0},
                "accumulate_gas_limit": {"type": "integer", "minimum": 0},
                "code_hash": {"type": "string"},
                "export_count": {"type": "integer", "minimum": 0},
                "import_segments": {"type": "array", "items": {
                    "type": "object", "properties": {
                        "segments_root": {"type": "string"},
                        "package_hash": {"type": "string"},
                        "index": {"type": "integer", "minimum": 0, "maximum": 32767}},
                    "required": ["index"]}}},
            "required": ["payload", "refine_gas_limit", "accumulate_gas_limit"]}},
        "authorization": {"type": "string"},
        "context": {"type": "object"},
        "authorizer": {"type": "object", "properties": {
            "service_id": {"type": "integer", "minimum": 0, "maximum": 4294967295},
            "code_hash": {"type": "string"},
            "config": {"type": "string"}},
            "required": ["code_hash"]}},
        "required": ["service_id", "items"]}},
    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}}


def _id(text: str, missing: str) -> bytes:
    """A malformed id names nothing: answer exactly what a missing object gets (`missing` is
    the use case's message for it)."""
    try:
        return parse_hash(text)
    except BadRequest:
        raise NotFound(missing) from None


def _view(p: PackageRecord) -> dict[str, Any]:
    body = WorkPackage.decode(p.body).to_json() if p.body else None
    return views.package(p, body)


@router.post("/jam/packages", status_code=201, openapi_extra=PACKAGE_BODY)
async def submit_package(request: Request, rt: Runtime = Depends(runtime),
                         who: Principal = Depends(principal)) -> JSONResponse:
    """Submit a work package: GP bytes (`application/octet-stream`) or JSON.

    JSON takes the w3f form or the short form (see the example). Answers 201 with the new
    package, or 200 with the existing one when the same package was already submitted.
    An item's `import_segments` name segments exported by earlier packages of the caller's
    own services, by segments root or package hash; one that is not kept (missing, expired,
    or another tenant's) is refused with 400 `jam_bad_request`."""
    kind = media_type(request)
    if kind not in ("application/json", "application/octet-stream", ""):
        raise UnsupportedMediaType("send application/json or application/octet-stream")
    packages.authorize_submit(rt, who)
    body = await read_capped(request, rt.settings.max_package_bytes, "package")
    if kind == "application/octet-stream":
        record, created = await run_in_threadpool(packages.submit_bytes, rt, who, body)
    else:
        obj = parse_json(body)
        record, created = await run_in_threadpool(packages.submit_json, rt, who, obj)
    return JSONResponse(_view(record), status_code=201 if created else 200)


@router.get("/jam/packages")
def list_packages(request: Request, service_id: str | None = None, status: str | None = None,
                  cursor: str | None = None, limit: str | None = None,
                  rt: Runtime = Depends(runtime),
                  who: Principal = Depends(principal)) -> dict[str, Any]:
    """List the caller's packages, newest first; filter by service and status.

    Page with `limit` and the `next_cursor` of the previous page (opaque, valid only for
    this listing, caller and filters)."""
    sid, wanted = service_id_param(service_id), status or None
    scope = {"service_id": sid, "status": wanted}
    page = packages.list_packages(rt, who, service_id=sid, status=wanted,
                                  cursor=cursors.decode(request, cursor, int, **scope),
                                  limit=page_limit(limit))
    return cursors.page(request, [views.package(p) for p in page.items], page.next_cursor,
                        **scope)


@router.get("/jam/packages/{package_id}")
def get_package(package_id: str, rt: Runtime = Depends(runtime),
                who: Principal = Depends(principal)) -> dict[str, Any]:
    """One package: status, gas used, attempts, failure reason, its JSON, and how many
    packages of its own account's queue are ahead of it."""
    pkg, ahead = packages.package_and_position(rt, who, _id(package_id, "no such package"))
    return {**_view(pkg), "queue_position": ahead}


@router.get("/jam/packages/{package_id}/report")
def get_report(package_id: str, rt: Runtime = Depends(runtime),
               who: Principal = Depends(principal)) -> dict[str, Any]:
    """The work report of a refined package, its attestations and its receipt."""
    report, attestations, receipt = packages.get_report(
        rt, who, _id(package_id, "no report for that package"))
    return {"package_id": views.hx(report.package_id), "service_id": report.service_id,
            "report": WorkReport.decode(report.body).to_json(),
            "report_hash": views.hx(report.report_hash),
            "attestations": [views.attestation(a) for a in attestations],
            "receipt": views.receipt(receipt) if receipt else None,
            "logs": list(report.logs)}


@router.get("/jam/packages/{package_id}/accumulation")
def get_accumulation(package_id: str, rt: Runtime = Depends(runtime),
                     who: Principal = Depends(principal)) -> dict[str, Any]:
    """What the package's accumulation did: status, gas, yield, output, logs (bounded),
    transfers made and received, services created and ejected. Scoped like `/report`."""
    return views.accumulation(packages.get_accumulation(
        rt, who, _id(package_id, "no accumulation for that package")))


@router.get("/jam/reports", tags=["reports"])
def list_reports(request: Request, service_id: str | None = None, cursor: str | None = None,
                 limit: str | None = None, rt: Runtime = Depends(runtime),
                 who: Principal = Depends(principal)) -> dict[str, Any]:
    """List the work reports of the caller's services, newest first."""
    scope = {"service_id": service_id_param(service_id)}
    page = packages.list_reports(rt, who, **scope,
                                 cursor=cursors.decode(request, cursor, int, **scope),
                                 limit=page_limit(limit))
    return cursors.page(request, [{"package_id": views.hx(r.package_id), "service_id": r.service_id,
                        "report_hash": views.hx(r.report_hash),
                        "created_at": views.ts(r.created_at)} for r in page.items],
                        page.next_cursor, **scope)


@router.get("/jam/receipts", tags=["receipts"])
def list_receipts(request: Request, service_id: str | None = None, cursor: str | None = None,
                  limit: str | None = None, rt: Runtime = Depends(runtime),
                  who: Principal = Depends(principal)) -> dict[str, Any]:
    """List the receipt-chain entries of the caller's services, newest first."""
    scope = {"service_id": service_id_param(service_id)}
    page = packages.list_receipts(rt, who, **scope,
                                  cursor=cursors.decode(request, cursor, int, **scope),
                                  limit=page_limit(limit))
    return cursors.page(request, [views.receipt(r) for r in page.items], page.next_cursor,
                        **scope)


@router.get("/jam/receipts/{hash}", tags=["receipts"])
def get_receipt(hash: str, rt: Runtime = Depends(runtime),
                who: Principal = Depends(principal)) -> dict[str, Any]:
    """The receipt-chain entries with this hash."""
    found = packages.get_receipts(rt, who, _id(hash, "no such receipt"))
    return {**views.receipt(found[0]), "items": [views.receipt(r) for r in found]}


@router.post("/jam/process", tags=["packages"])
async def process(rt: Runtime = Depends(runtime),
                  who: Principal = Depends(principal)) -> Response:
    """Process the next pending package now, in the server. Operator only.

    Answers 204 when nothing is pending."""
    done = await run_in_threadpool(packages.process_now, rt, who)
    if done is None:
        return Response(status_code=204)
    return JSONResponse({"processed": True, "id": views.hx(done)})
