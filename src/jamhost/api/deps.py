"""Request dependencies: the runtime and the calling principal."""

from __future__ import annotations

from fastapi import Request

from jamhost.api.rate_gate import CHARGED
from jamhost.app.auth import authenticate
from jamhost.app.runtime import Runtime
from jamhost.domain.refusals import BadRequest, Unauthenticated
from jamhost.tenancy.principal import Principal

MAX_LIMIT = 500


async def runtime(request: Request) -> Runtime:
    """Async on purpose: FastAPI runs sync dependencies in the thread pool, and this one only
    reads an attribute; a thread hop per request for it is pure overhead."""
    return request.app.state.runtime


def bearer(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def principal(request: Request) -> Principal:
    """Authenticate once per request; later dependencies reuse the result."""
    cached = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    rt: Runtime = request.app.state.runtime
    token = bearer(request)
    charging = rt.charging  # the rules: tenancy/charging.py
    try:
        who = authenticate(rt, token)
    except Unauthenticated:
        charging.unauthenticated(request.client.host if request.client else None)
        raise
    charging.authenticated(who, gate_charged=getattr(request.state, CHARGED, False))
    request.state.principal = who
    return who


def page_limit(limit: str | None) -> int:
    if limit is None:
        return 50
    try:
        value = int(limit)
    except ValueError:
        raise BadRequest("limit must be an integer") from None
    if value < 1:
        raise BadRequest("limit must be at least 1")
    return min(value, MAX_LIMIT)


def parsed_service_id(value: object) -> int | None:
    """The service a request names, parsed exactly as the routes parse it (`+65536`, ` 7 `
    are 65536 and 7), or None if the routes would refuse it: what audit rows and log lines
    record, so they name the service the request acted on."""
    if value is None:
        return None
    try:
        return service_id_param(str(value))
    except BadRequest:
        return None


def service_id_param(value: str | None, name: str = "service_id") -> int | None:
    if value is None or value == "":
        return None
    try:
        sid = int(value)
    except ValueError:
        raise BadRequest(f"{name} must be an integer") from None
    if not 0 <= sid < 2**32:
        raise BadRequest(f"{name} must be a u32")
    return sid
