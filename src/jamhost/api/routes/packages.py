"""Work packages, reports, receipts and the operator's process trigger."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from jamhost.api import views
from jamhost.api.bodies import media_type, read_capped
from jamhost.api.deps import page_limit, principal, runtime, service_id_param
from jamhost.app import packages
from jamhost.app.package_input import parse_hash
from jamhost.app.runtime import Runtime
from jamhost.domain.refusals import BadRequest, NotFound, UnsupportedMediaType
from jamhost.domain.types.work_package import WorkPackage
from jamhost.domain.types.work_report import WorkReport
from jamhost.store.records import PackageRecord
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
                "export_count": {"type": "integer", "minimum": 0}},
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
    import json

    kind = media_type(request)
    if kind not in ("application/json", "application/octet-stream", ""):
        raise UnsupportedMediaType("send application/json or application/octet-stream")
    rt.policy.require_scope(who, "submit")
    body = await read_capped(request, rt.settings.max_package_bytes, "package")
    if kind == "application/octet-stream":
        record, created = await run_in_threadpool(packages.submit_bytes, rt, who, body)
    else:
        try:
            obj = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise BadRequest("the body is not valid JSON") from None
        record, created = await run_in_threadpool(packages.submit_json, rt, who, obj)
    return JSONResponse(_view(record), status_code=201 if created else 200)


@router.get("/jam/packages")
def list_packages(service_id: str | None = None, status: str | None = None,
                  cursor: str | None = None, limit: str | None = None,
                  rt: Runtime = Depends(runtime),
                  who: Principal = Depends(principal)) -> dict[str, Any]:
    page = packages.list_packages(rt, who, service_id=service_id_param(service_id),
                                  status=status or None,
                                  cursor=views.decode_cursor(cursor, int),
                                  limit=page_limit(limit))
    return views.page([views.package(p) for p in page.items], page.next_cursor)


@router.get("/jam/packages/{package_id}")
def get_package(package_id: str, rt: Runtime = Depends(runtime),
                who: Principal = Depends(principal)) -> dict[str, Any]:
    return _view(packages.get_package(rt, who, _id(package_id, "no such package")))


@router.get("/jam/packages/{package_id}/report")
def get_report(package_id: str, rt: Runtime = Depends(runtime),
               who: Principal = Depends(principal)) -> dict[str, Any]:
    report, attestations, receipt = packages.get_report(
        rt, who, _id(package_id, "no report for that package"))
    return {"package_id": views.hx(report.package_id), "service_id": report.service_id,
            "report": WorkReport.decode(report.body).to_json(),
            "report_hash": views.hx(report.report_hash),
            "attestations": [views.attestation(a) for a in attestations],
            "receipt": views.receipt(receipt) if receipt else None}


@router.get("/jam/reports", tags=["reports"])
def list_reports(service_id: str | None = None, cursor: str | None = None,
                 limit: str | None = None, rt: Runtime = Depends(runtime),
                 who: Principal = Depends(principal)) -> dict[str, Any]:
    page = packages.list_reports(rt, who, service_id=service_id_param(service_id),
                                 cursor=views.decode_cursor(cursor, int),
                                 limit=page_limit(limit))
    return views.page([{"package_id": views.hx(r.package_id), "service_id": r.service_id,
                        "report_hash": views.hx(r.report_hash),
                        "created_at": views.ts(r.created_at)} for r in page.items],
                      page.next_cursor)


@router.get("/jam/receipts", tags=["receipts"])
def list_receipts(service_id: str | None = None, cursor: str | None = None,
                  limit: str | None = None, rt: Runtime = Depends(runtime),
                  who: Principal = Depends(principal)) -> dict[str, Any]:
    page = packages.list_receipts(rt, who, service_id=service_id_param(service_id),
                                  cursor=views.decode_cursor(cursor, int),
                                  limit=page_limit(limit))
    return views.page([views.receipt(r) for r in page.items], page.next_cursor)


@router.get("/jam/receipts/{hash}", tags=["receipts"])
def get_receipt(hash: str, rt: Runtime = Depends(runtime),
                who: Principal = Depends(principal)) -> dict[str, Any]:
    found = packages.get_receipts(rt, who, _id(hash, "no such receipt"))
    return {**views.receipt(found[0]), "items": [views.receipt(r) for r in found]}


@router.post("/jam/process", tags=["packages"])
async def process(rt: Runtime = Depends(runtime),
                  who: Principal = Depends(principal)) -> Response:
    rt.policy.require_operator(who)
    processor = rt.extras.get("processor")
    if processor is None:
        return Response(status_code=204)
    done = await run_in_threadpool(processor)
    if done is None:
        return Response(status_code=204)
    return JSONResponse({"processed": True, "id": views.hx(done)})
