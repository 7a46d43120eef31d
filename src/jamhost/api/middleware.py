"""ASGI middleware: one structured log line and metrics per request, by route template."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qs

from starlette.concurrency import run_in_threadpool

from jamhost.api.deps import parsed_service_id
from jamhost.app import system
from jamhost.observability import (
    BUSY_ACCOUNTS,
    LATENCY,
    QUEUE_DEPTH,
    QUEUE_STATE,
    REQUESTS,
    get_logger,
)
from jamhost.tenancy.tokens import hash_prefix

log = get_logger("jamhost.http")

# A client may send any method name: only these become label values, the rest `other`.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})


def _service_id(scope: dict[str, Any]) -> int | None:
    """The service a request names, from the path or else the `service_id` query parameter.
    Only a u32 is logged: anything else a caller typed there is not worth a log field."""
    raw = (scope.get("path_params") or {}).get("service_id")
    if raw is None:
        values = parse_qs((scope.get("query_string") or b"").decode("latin-1")).get("service_id")
        raw = values[0] if values else None
    return parsed_service_id(raw)


class RequestLog:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope.get("path") == "/metrics":
            await self._refresh_gauges(scope)
        start = time.perf_counter()
        status = {"code": 500}

        async def send_wrapper(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - start
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "?")
            method = method if method in METHODS else "other"
            REQUESTS.labels(template, method, f"{status['code'] // 100}xx").inc()
            LATENCY.labels(template, method).observe(elapsed)
            state = scope.get("state") or {}
            who = state.get("principal") if isinstance(state, dict) else None
            log.info("request", route=template, method=method, status=status["code"],
                     duration_ms=round(elapsed * 1000, 3),
                     token_hash=hash_prefix(who.token_hash) if who is not None else None,
                     service_id=_service_id(scope))

    @staticmethod
    async def _refresh_gauges(scope: dict[str, Any]) -> None:
        """Gauges computed at scrape time; a store hiccup must not break the scrape."""
        app = scope.get("app")
        rt = getattr(getattr(app, "state", None), "runtime", None)
        if rt is None:
            return
        try:
            depth, states = await run_in_threadpool(system.queue_gauges, rt)
            QUEUE_DEPTH.set(depth)
            for state in ("queued", "running"):
                QUEUE_STATE.labels(state).set(states[state])
            BUSY_ACCOUNTS.set(states["busy_accounts"])
        except Exception as exc:  # the scrape still answers the other metrics
            log.warning("queue depth unavailable", error=type(exc).__name__)
