"""The rate gate: a caller whose budget is spent is answered 429 before routing.

Over-limit requests then cost an HMAC and a limiter lookup, not a route, a dependency chain,
a thread-pool hop and a token lookup in the store, so a tenant flooding at many times its
limit barely slows other tenants (docs/benchmarks.md, noisy neighbour). The gate only tests a
budget, it never spends one: spending happens once the caller is authenticated
(`api.deps.principal`). Operators are never charged, so their budget never runs out here.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool

from jamhost.api.errors import refusal_response
from jamhost.domain.refusals import RateLimited

UNGATED = ("/healthz", "/readyz", "/metrics")


class RateGate:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("path", "") in UNGATED:
            await self.app(scope, receive, send)
            return
        rt = scope["app"].state.runtime
        if rt.limiter is not None:
            key = _caller_key(rt, scope)
            try:
                if rt.limiter.local:
                    rt.limiter.check_caller(key)
                else:  # Redis: a network round trip, off the event loop
                    await run_in_threadpool(rt.limiter.check_caller, key)
            except RateLimited as refusal:
                await refusal_response(refusal)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _caller_key(rt: Any, scope: dict[str, Any]) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            token = token.strip()
            if scheme.lower() == "bearer" and token and len(token) <= 512:
                return "t:" + rt.hasher.hash(token).hex()[:32]
            break
    client = scope.get("client")
    return "ip:" + (client[0] if client else "?")
