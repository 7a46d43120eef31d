"""The storage quota verdict (SPEC: 409 `jam_storage_quota` when the service's storage bytes
"would exceed its quota"), written once for the apply planner and the store's charges.

A change of `delta` bytes to a service using `used` fits its `limit` when it does not grow
the usage (delta <= 0: a service over its quota, its limit lowered since, can always clean
up, and adding nothing is never refused), or when used + delta <= limit.
"""

from __future__ import annotations

from typing import Any


def fits(used: Any, delta: int, limit: int) -> Any:
    """Whether a change of `delta` bytes keeps a service using `used` within `limit`.

    Written once for two kinds of `used`: a Python int (the apply planner,
    tenancy/apply_plan.py) and the SQL column (the store's charge of preimage uploads, code
    and new services: one conditional UPDATE, store/sql/preimages.py `_charge_storage`).
    `delta` and `limit` are Python ints in both, so `delta <= 0` is decided here and the
    SQL condition, when there is one, is `used <= limit - delta` (no bigint overflow as
    `used + delta` could). tests/integration/test_store_contract.py checks both agree."""
    return delta <= 0 or used <= limit - delta
