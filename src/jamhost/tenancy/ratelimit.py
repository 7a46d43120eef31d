"""What a spent rate budget answers: the facts of a `RateLimited` refusal, without I/O.

The counters themselves live in the limiter's storage (app/rate_limiter.py, Redis or memory);
which budget a request pays in tenancy/charging.py. The API renders the facts as `Retry-After`
and the IETF draft `RateLimit-Policy` / `RateLimit` headers (api/errors.py).
"""

from __future__ import annotations

import math

from jamhost.domain.refusals import RateLimited


def rate_refusal(policy: str, *, limit: int, window: int, remaining: int, reset_time: float,
                 now: float) -> RateLimited:
    """The refusal of budget `policy` (caller, account, service) of `limit` requests per
    `window` seconds, `remaining` left, whose window frees a request at `reset_time`."""
    retry = max(1, math.ceil(reset_time - now))
    per = "minute" if window == 60 else f"{window} s"
    return RateLimited(f"rate limit of {limit} requests per {per} reached ({policy})",
                       budget=policy, limit=limit, window=window, remaining=remaining,
                       retry_after=retry)
