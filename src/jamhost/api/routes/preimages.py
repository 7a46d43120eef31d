"""Preimages: PUT streamed with a size cap and hash check; GET streamed; HEAD; metadata."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from jamhost.api.bodies import media_type, read_capped
from jamhost.api.deps import principal, runtime, service_id_param
from jamhost.api.models import openapi_body
from jamhost.app import preimages, views
from jamhost.app.package_input import parse_hash
from jamhost.app.runtime import Runtime
from jamhost.domain.model import PreimageMeta
from jamhost.domain.refusals import NotFound
from jamhost.tenancy.principal import Principal

router = APIRouter(prefix="/jam/preimages", tags=["preimages"])
CHUNK = 64 * 1024


def _hash(text: str) -> bytes:
    """A malformed hash names nothing: answer exactly like a missing preimage."""
    try:
        return parse_hash(text)
    except Exception:
        raise NotFound("no such preimage") from None


def _headers(meta: PreimageMeta) -> dict[str, str]:
    return {"X-Preimage-Hash": views.hx(meta.hash) or "", "X-Preimage-Size": str(meta.size),
            "X-Preimage-Media-Type": meta.media_type}


@router.put("/{hash}", status_code=201, openapi_extra=openapi_body(
    media="application/octet-stream", binary=True))
async def put_preimage(hash: str, request: Request, service_id: str | None = None,
                       rt: Runtime = Depends(runtime),
                       who: Principal = Depends(principal)) -> JSONResponse:
    """Upload a preimage; its id is its blake2b-256 hash, checked as it streams."""
    h = parse_hash(hash)
    sid = service_id_param(service_id)
    await run_in_threadpool(preimages.authorize_upload, rt, who, sid)
    data = await read_capped(request, rt.settings.max_preimage_bytes, "preimage")
    kind = media_type(request) or "application/octet-stream"
    if len(kind) > 200 or not kind.isprintable():
        kind = "application/octet-stream"
    meta = await run_in_threadpool(preimages.put_preimage, rt, who, h, data, kind, sid)
    return JSONResponse(views.preimage(meta), status_code=201, headers=_headers(meta))


@router.get("/{hash}/meta")
def preimage_meta(hash: str, rt: Runtime = Depends(runtime),
                  who: Principal = Depends(principal)) -> dict[str, Any]:
    """A preimage's size, media type and service, without its bytes."""
    return views.preimage(preimages.find_preimage(rt, who, _hash(hash)))


@router.head("/{hash}")
def head_preimage(hash: str, rt: Runtime = Depends(runtime),
                  who: Principal = Depends(principal)) -> Response:
    """Whether a preimage exists, with its size and media type in headers."""
    meta = preimages.find_preimage(rt, who, _hash(hash))
    headers = _headers(meta) | {"Content-Length": str(meta.size)}
    return Response(status_code=200, headers=headers, media_type=meta.media_type)


@router.get("/{hash}")
def get_preimage(hash: str, rt: Runtime = Depends(runtime),
                 who: Principal = Depends(principal)) -> StreamingResponse:
    """A preimage's bytes, streamed."""
    meta, data = preimages.read_preimage(rt, who, _hash(hash))

    def chunks() -> Iterator[bytes]:
        view = memoryview(data)
        for i in range(0, len(view), CHUNK):
            yield bytes(view[i:i + CHUNK])

    headers = _headers(meta) | {"Content-Length": str(meta.size)}
    return StreamingResponse(chunks(), media_type=meta.media_type, headers=headers)
