"""Typed refusals: every way jamhost says no, each with its SPEC §3 `code`.

Raised once, where the rule lives (tenancy, store, app); the HTTP layer maps each class to a
status in one table (`jamhost.api.errors`). Messages are for humans and never carry a token.
"""

from __future__ import annotations

from jamhost.domain.errors import JamError


class Refusal(JamError):
    """Base of every expected refusal. `code` is the stable SPEC code."""

    code = "jam_bad_request"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(Refusal):
    code = "jam_bad_request"


class HashMismatch(Refusal):
    code = "jam_hash_mismatch"


class Unauthenticated(Refusal):
    code = "jam_unauthenticated"


class Forbidden(Refusal):
    code = "jam_authz"


class NotFound(Refusal):
    code = "jam_not_found"


class PendingLimit(Refusal):
    code = "jam_pending_limit"


class StorageQuotaExceeded(Refusal):
    code = "jam_storage_quota"


class SegmentQuotaExceeded(StorageQuotaExceeded):
    """A package's exported segments would take its service past its storage quota (the
    worker marks the package `failed`: the report stands, nothing is applied or kept)."""


class GasQuotaExceeded(Refusal):
    code = "jam_gas_quota"

    def __init__(self, message: str, *, gas_window: int) -> None:
        super().__init__(message)
        self.gas_window = gas_window
        """The clock hour (Unix seconds // 3600) whose budget is spent: the API tells the
        client when the next one begins (`Retry-After`)."""


class TooLarge(Refusal):
    code = "jam_too_large"


class UnsupportedMediaType(Refusal):
    code = "jam_unsupported_media_type"


class RateLimited(Refusal):
    # A spent rate budget (tenancy/ratelimit.py), with the facts the API renders as headers
    # (api/errors.py). A comment, not a docstring: docs/api.md's error table shows those.
    code = "jam_rate_limit"

    def __init__(self, message: str, *, budget: str, limit: int, window: int, remaining: int,
                 retry_after: int) -> None:
        super().__init__(message)
        self.budget = budget
        """The budget spent: `caller` (token or client address), `account` or `service`."""
        self.limit = limit
        """Requests per window."""
        self.window = window
        """The moving window, in seconds."""
        self.remaining = remaining
        """Requests left in the window (0 when refused)."""
        self.retry_after = retry_after
        """Seconds, at least 1, until the window frees a request."""
