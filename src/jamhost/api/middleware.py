"""ASGI middleware: one structured log line and metrics per request, by route template."""

from __future__ import annotations

import time
from typing import Any

from jamhost.observability import LATENCY, REQUESTS, get_logger
from jamhost.tenancy.tokens import hash_prefix

log = get_logger("jamhost.http")


class RequestLog:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
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
            REQUESTS.labels(template, method, f"{status['code'] // 100}xx").inc()
            LATENCY.labels(template, method).observe(elapsed)
            state = scope.get("state") or {}
            who = state.get("principal") if isinstance(state, dict) else None
            log.info("request", route=template, method=method, status=status["code"],
                     duration_ms=round(elapsed * 1000, 3),
                     token_hash=hash_prefix(who.token_hash) if who is not None else None,
                     service_id=(scope.get("path_params") or {}).get("service_id"))
