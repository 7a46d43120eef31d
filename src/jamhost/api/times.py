"""Times a client sends: ISO 8601 (with a zone; a naive time means UTC) or Unix seconds.

One parser for the API's JSON bodies and the CLI's options, so `2026-12-31T19:57:52Z`,
`2026-12-31T19:57:52+01:00`, `2026-12-31 19:57:52` and `1798747072` mean one thing everywhere.
Stored times are microseconds since the epoch.
"""

from __future__ import annotations

from datetime import UTC, datetime

from jamhost.domain.refusals import BadRequest

MAX_SECONDS = 2**40  # about the year 36812: past it a number is a mistake, not a time


def parse_time_us(value: object, name: str) -> int:
    """Microseconds since the epoch for an ISO 8601 string, Unix seconds (an integer, or a
    string of digits: what a shell passes), or a BadRequest naming the field."""
    if isinstance(value, bool):
        raise BadRequest(f"{name} must be an ISO 8601 time or Unix seconds")
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, int):
        if not 0 <= value < MAX_SECONDS:
            raise BadRequest(f"{name} is out of range")
        return value * 1_000_000
    if isinstance(value, str) and len(value) <= 64:
        try:
            at = datetime.fromisoformat(value.strip())
        except ValueError:
            pass
        else:
            if at.tzinfo is None:
                at = at.replace(tzinfo=UTC)
            seconds = at.timestamp()
            if not 0 <= seconds < MAX_SECONDS:
                raise BadRequest(f"{name} is out of range")
            return int(seconds * 1_000_000)
    raise BadRequest(f"{name} must be an ISO 8601 time (e.g. 2026-12-31T19:57:52Z) "
                     "or Unix seconds")
