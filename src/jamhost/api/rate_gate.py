"""The rate gate: a caller whose budget is spent is answered 429 before routing.

Over-limit requests then cost an HMAC and a limiter lookup, not a route, a dependency chain,
a thread-pool hop and a token lookup in the store, so a tenant flooding at many times its
limit barely slows other tenants (docs/benchmarks.md, noisy neighbour).

Which budget is charged, and when, is decided in tenancy/charging.py, and charged through it
(`Charging.gate`: the gate never reaches the limiter itself). A request with a
bearer token is charged here, once, to that token's budget (keyed by its
HMAC, so only the token's holder can spend it); `api.deps.principal` then sees
`CHARGED` in the request state and does not charge again. One limiter call per request
instead of a test here and a hit there: with Redis, one round trip less. Operators are never
charged. A request without a token is only tested here: it is charged to its client
address's budget once it fails authentication, as unknown tokens are (slows guessing).
"""

from __future__ import annotations

from typing import Any

from jamhost.api.errors import refusal_response
from jamhost.app.auth import MAX_TOKEN_LEN, is_operator_hash
from jamhost.domain.refusals import RateLimited

UNGATED = ("/healthz", "/readyz", "/metrics")
CHARGED = "caller_charged"  # request-state key: the gate has spent the caller's budget


class RateGate:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("path", "") in UNGATED:
            await self.app(scope, receive, send)
            return
        rt = scope["app"].state.runtime
        charging = rt.charging  # the rules and the only way to the limiter: tenancy/charging.py
        if charging.active:
            token_hash = _token_hash(rt, scope)
            client = scope.get("client")
            try:
                charged = await charging.gate(
                    token_hash, token_hash is not None and is_operator_hash(rt, token_hash),
                    client[0] if client else None)
            except RateLimited as refusal:
                await refusal_response(refusal)(scope, receive, send)
                return
            if charged:
                scope.setdefault("state", {})[CHARGED] = True
        await self.app(scope, receive, send)


def _token_hash(rt: Any, scope: dict[str, Any]) -> bytes | None:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            token = token.strip()
            if scheme.lower() == "bearer" and token and len(token) <= MAX_TOKEN_LEN:
                return rt.hasher.hash(token)
            break
    return None
