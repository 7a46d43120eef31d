"""Health, readiness, status and metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from jamhost import __version__
from jamhost.api.deps import principal, runtime
from jamhost.app import system
from jamhost.app.runtime import Runtime
from jamhost.app.views import hx
from jamhost.observability import metrics_payload
from jamhost.tenancy.principal import Principal

router = APIRouter()


@router.get("/healthz", tags=["system"])
async def healthz() -> dict[str, str]:  # async: no thread-pool hop for a constant
    """Liveness: answers 200 while the process serves. No token needed."""
    return {"status": "ok"}


@router.get("/readyz", tags=["system"])
async def readyz(rt: Runtime = Depends(runtime)) -> JSONResponse:
    """Readiness: 200 when the store answers, 503 when it does not. No token needed."""
    ok = await run_in_threadpool(system.store_ready, rt)
    return JSONResponse({"status": "ready" if ok else "unavailable",
                         "store": system.store_kind(rt)},
                        status_code=200 if ok else 503)


@router.get("/system/status", tags=["system"])
def status(rt: Runtime = Depends(runtime), who: Principal = Depends(principal)) -> dict[str, Any]:
    """Version, store kind, limits and attestors; operators also see every root."""
    s = rt.settings
    out: dict[str, Any] = {
        "version": __version__,
        "store": system.store_kind(rt),
        "authz_enabled": s.authz_enabled,
        "owner_is_account": s.owner_is_account,
        "caller": {"kind": who.kind, "account_id": who.account_id, "accessor": who.accessor},
        "limits": {
            "rate_limit_per_minute": s.rate_limit_per_minute,
            "service_rate_limit_per_minute": s.service_rate_limit_per_minute,
            "max_preimage_bytes": s.max_preimage_bytes,
            "max_package_bytes": s.max_package_bytes,
            "max_pending_packages": s.max_pending_packages,
            "default_quota": s.default_quota.model_dump(),
        },
        "attestors": s.attestors,
        "attestation_threshold": s.attestation_threshold,
    }
    roots = system.accumulator_roots(rt, who)
    if roots is not None:
        out["accumulator_roots"] = {str(sid): hx(root) for sid, root in roots.items()}
    return out


@router.get("/metrics", tags=["system"])
def metrics() -> Response:
    """Prometheus metrics (bounded labels only). No token needed."""
    body, content_type = metrics_payload()
    return Response(body, media_type=content_type)
