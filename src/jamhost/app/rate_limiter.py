"""The rate limiter's storage: moving-window counters per token (per client IP without one), per
account (all its tokens together) and per service, on the `limits` library.

A moving window of one minute. With `rate_limit_storage = "redis://..."` the counters live in
Redis (atomic Lua scripts), so every replica draws from the same budget; `memory://` keeps them
in the process. Keys are token-hash prefixes, client IPs, account and service ids: never raw
tokens. Which budget a request pays, and when, is decided in tenancy/charging.py (the only
caller of this limiter); what a refusal says in tenancy/ratelimit.py; the headers it is
answered with in api/errors.py.
"""

from __future__ import annotations

import functools
import os
import time

import anyio.to_thread
from limits import RateLimitItemPerSecond, WindowStats
from limits.aio.strategies import MovingWindowRateLimiter as AsyncMovingWindowRateLimiter
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from jamhost.domain.refusals import RateLimited
from jamhost.tenancy.ratelimit import rate_refusal

# One minute. The test suite shortens it through this environment variable (never set in a
# deployment, not a config key) so that a test can wait out a 429 without waiting a minute.
WINDOW_SECONDS = int(os.environ.get("JAMHOST_TEST_RATE_WINDOW_SECONDS", "60"))


class RateLimiter:
    def __init__(self, storage_uri: str, per_token: int, per_service: int,
                 namespace: str = "jamhost", per_account: int = 0) -> None:
        # The namespace is the store's instance id: replicas of one deployment share budgets,
        # two deployments sharing one Redis never do.
        self._namespace = namespace
        self.local = storage_uri.startswith("memory://")
        self._storage = storage_from_string(storage_uri)
        self._limiter = MovingWindowRateLimiter(self._storage)
        # The same Redis budgets through redis-py's asyncio client, for the ASGI rate gate: it
        # then awaits the round trip on the event loop instead of hopping to a thread.
        self._async = (AsyncMovingWindowRateLimiter(storage_from_string(
            "async+" + storage_uri, implementation="redispy"))
            if storage_uri.split("://", 1)[0] in ("redis", "rediss") else None)
        self._token = (RateLimitItemPerSecond(per_token, WINDOW_SECONDS) if per_token > 0
                       else None)
        self._service = (RateLimitItemPerSecond(per_service, WINDOW_SECONDS) if per_service > 0
                         else None)
        self._account = (RateLimitItemPerSecond(per_account, WINDOW_SECONDS) if per_account > 0
                         else None)
        self.per_token = per_token
        self.per_service = per_service
        self.per_account = per_account

    def hit_caller(self, key: str) -> None:
        """`key`: `t:<token hash prefix>` or `ip:<address>`."""
        if self._token is not None:
            self._hit(self._token, "caller", key)

    def check_caller(self, key: str) -> None:
        """Refuse at once, consuming nothing, when `key` has no budget left: lets a flood of
        over-limit requests be turned away before any database work."""
        if self._token is not None and not self._limiter.test(self._token, self._namespace,
                                                                key):
            self._refuse(self._token, "caller", key)

    async def spend_caller(self, key: str, *, consume: bool) -> None:
        """`hit_caller` (consume) or `check_caller`, for the ASGI rate gate: Redis through its
        asyncio client on the event loop, memory in place, another shared storage with its
        round trip off the event loop (in the thread pool)."""
        if self._token is None:
            return
        if self._async is not None:
            test = self._async.hit if consume else self._async.test
            if not await test(self._token, self._namespace, key):
                stats = await self._async.get_window_stats(self._token, self._namespace, key)
                raise self._refusal(self._token, "caller", stats)
        elif self.local:
            (self.hit_caller if consume else self.check_caller)(key)
        else:
            await anyio.to_thread.run_sync(functools.partial(
                self.hit_caller if consume else self.check_caller, key))

    def hit_account(self, account_id: str) -> None:
        """All of an account's tokens draw from one budget: minting tokens buys no rate."""
        if self._account is not None:
            self._hit(self._account, "account", f"a:{account_id}")

    def hit_service(self, service_id: int) -> None:
        if self._service is not None:
            self._hit(self._service, "service", f"s:{service_id}")

    def _hit(self, item: RateLimitItemPerSecond, policy: str, key: str) -> None:
        if self._limiter.hit(item, self._namespace, key):
            return
        self._refuse(item, policy, key)

    def _refuse(self, item: RateLimitItemPerSecond, policy: str, key: str) -> None:
        raise self._refusal(item, policy,
                            self._limiter.get_window_stats(item, self._namespace, key))

    @staticmethod
    def _refusal(item: RateLimitItemPerSecond, policy: str, stats: WindowStats) -> RateLimited:
        return rate_refusal(policy, limit=item.amount, window=WINDOW_SECONDS,
                            remaining=stats.remaining, reset_time=stats.reset_time,
                            now=time.time())

    def reset(self) -> None:
        self._storage.reset()
