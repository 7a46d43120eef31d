"""The headers a refusal is answered with: rendered by the API (api/errors.py) from the facts
the refusal carries (domain/refusals.py, tenancy/ratelimit.py), byte for byte what a client
has always read (tests/integration/test_rate_limits.py checks them over the wire)."""

from __future__ import annotations

import time

from jamhost.api.errors import refusal_response
from jamhost.domain.refusals import GasQuotaExceeded, RateLimited, Refusal, Unauthenticated
from jamhost.tenancy.ratelimit import rate_refusal


def raw_headers(exc: Refusal) -> list[tuple[bytes, bytes]]:
    response = refusal_response(exc)
    return [(k, v) for k, v in response.raw_headers
            if k not in (b"content-length", b"content-type")]


def test_a_spent_rate_budget_carries_facts_and_the_api_renders_its_headers() -> None:
    refusal = rate_refusal("service", limit=4, window=60, remaining=0, reset_time=1000.2,
                           now=990.0)
    assert (refusal.budget, refusal.limit, refusal.window, refusal.remaining,
            refusal.retry_after) == ("service", 4, 60, 0, 11)
    assert refusal.message == "rate limit of 4 requests per minute reached (service)"
    assert not hasattr(refusal, "headers")  # no HTTP below the API
    assert raw_headers(refusal) == [
        (b"retry-after", b"11"),
        (b"ratelimit-policy", b'"service";q=4;w=60'),
        (b"ratelimit", b'"service";r=0;t=11'),
    ]


def test_the_retry_is_at_least_a_second_and_a_short_window_is_named_in_seconds() -> None:
    refusal = rate_refusal("caller", limit=5, window=2, remaining=0, reset_time=99.0, now=100.0)
    assert refusal.retry_after == 1
    assert refusal.message == "rate limit of 5 requests per 2 s reached (caller)"
    assert dict(raw_headers(refusal))[b"ratelimit"] == b'"caller";r=0;t=1'


def test_gas_and_authentication_refusals_keep_their_headers() -> None:
    window = int(time.time()) // 3600
    retry = int(dict(raw_headers(GasQuotaExceeded("spent", gas_window=window)))[b"retry-after"])
    assert 1 <= retry <= 3600
    assert raw_headers(Unauthenticated("no token")) == [(b"www-authenticate", b"Bearer")]
    assert isinstance(rate_refusal("account", limit=1, window=60, remaining=0, reset_time=0,
                                   now=0), RateLimited)
