"""The one table from refusal to HTTP status, and the handlers that apply it.

Every error body is `{"error": message, "code": code}`. Nothing here ever includes a token, a
request body or a stack trace: unexpected exceptions answer a generic 500 and are logged
(redacted) by the logging middleware.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from jamhost.domain.errors import CodecError
from jamhost.domain.refusals import (
    BadRequest,
    Forbidden,
    GasQuotaExceeded,
    HashMismatch,
    NotFound,
    PendingLimit,
    RateLimited,
    Refusal,
    StorageQuotaExceeded,
    TooLarge,
    Unauthenticated,
    UnsupportedMediaType,
)
from jamhost.observability import REJECTS, redact

log = logging.getLogger("jamhost.api")

STATUS: dict[type[Refusal], int] = {
    BadRequest: 400,
    HashMismatch: 400,
    Unauthenticated: 401,
    Forbidden: 403,
    NotFound: 404,
    PendingLimit: 409,
    StorageQuotaExceeded: 409,
    GasQuotaExceeded: 409,
    TooLarge: 413,
    UnsupportedMediaType: 415,
    RateLimited: 429,
}


# Anything shaped like a jam token, even mangled (another case, cut short): a message names
# what was wrong, never what the client sent that could be a secret.
TOKENISH = re.compile(r"(?i)jam_[0-9a-z]{4,}_[0-9a-z_-]*")


def safe_message(message: str) -> str:
    """Every error message passes here: token shapes and every registered secret (operator
    tokens, config delegate tokens, the HMAC key) are cut out, whatever produced the text."""
    return redact(TOKENISH.sub("[redacted]", message))


def error_response(status: int, code: str, message: str,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": safe_message(message), "code": code}, status_code=status,
                        headers=headers)


def gas_retry_after(gas_window: int) -> str:
    """`Retry-After` for a spent hourly gas budget: seconds until the next clock hour."""
    return str(max(1, (gas_window + 1) * 3600 - int(time.time())))


def refusal_headers(exc: Refusal, status: int) -> dict[str, str]:
    """The headers a refusal is answered with, rendered from the facts it carries: the
    refusals themselves (domain, tenancy) know no HTTP."""
    headers: dict[str, str] = {}
    if isinstance(exc, RateLimited):  # IETF draft-ietf-httpapi-ratelimit-headers, SF form
        headers["Retry-After"] = str(exc.retry_after)
        headers["RateLimit-Policy"] = f'"{exc.budget}";q={exc.limit};w={exc.window}'
        headers["RateLimit"] = f'"{exc.budget}";r={exc.remaining};t={exc.retry_after}'
    if isinstance(exc, GasQuotaExceeded):
        headers["Retry-After"] = gas_retry_after(exc.gas_window)
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return headers


def refusal_response(exc: Refusal) -> JSONResponse:
    status = STATUS.get(type(exc), 400)
    REJECTS.labels(exc.code).inc()
    headers = refusal_headers(exc, status)
    return error_response(status, exc.code, exc.message, headers or None)


def _audit_denial(request: Request) -> None:
    """Authorization denials are security events: who, which route, which service."""
    from jamhost.api.deps import parsed_service_id
    from jamhost.app.audit import record

    route = request.scope.get("route")
    params = request.scope.get("path_params") or {}
    sid = params.get("service_id")
    if sid is None:
        sid = request.query_params.get("service_id")
    record(request.app.state.runtime, getattr(request.state, "principal", None),
           "authz.denied", service_id=parsed_service_id(sid),
           target=f"{request.method} {getattr(route, 'path', '?')}")


class CatchAll:
    """Answer an unexpected exception with the generic 500 and end the request normally.
    Starlette's outermost middleware re-raises after answering, which makes the server drop
    the keep-alive connection; nothing should escape to it."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: dict[str, Any]) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception as exc:
            route = scope.get("route")
            log.error("unhandled error on %s %s: %s", scope.get("method"),
                      getattr(route, "path", "?"), type(exc).__name__)
            if started:
                return
            response = error_response(500, "jam_internal", "internal error")
            await response(scope, receive, send)


def install(app: FastAPI) -> None:
    @app.exception_handler(Refusal)
    async def _refusal(request: Request, exc: Refusal) -> JSONResponse:
        if isinstance(exc, Forbidden):
            await run_in_threadpool(_audit_denial, request)
        return refusal_response(exc)

    @app.exception_handler(RecursionError)
    async def _too_deep(_: Request, exc: RecursionError) -> JSONResponse:
        # Only client input nests deep enough (a JSON value decoded into our types).
        return error_response(400, "jam_bad_request", "the body nests too deep")

    @app.exception_handler(CodecError)
    async def _codec(_: Request, exc: CodecError) -> JSONResponse:
        return error_response(400, "jam_bad_request", f"bad encoding: {exc}")

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        loc = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        msg = first.get("msg", "invalid request")
        return error_response(400, "jam_bad_request", f"{loc}: {msg}" if loc else msg)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            return error_response(404, "jam_not_found", "no such route")
        if exc.status_code == 405:
            return error_response(405, "jam_bad_request", "method not allowed for this route",
                                  {"Allow": (exc.headers or {}).get("Allow", "")})
        return error_response(exc.status_code if 400 <= exc.status_code < 500 else 400,
                              "jam_bad_request", "bad request")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error on %s %s: %s", request.method,
                  getattr(request.scope.get("route"), "path", "?"),
                  type(exc).__name__)
        return error_response(500, "jam_internal", "internal error")
