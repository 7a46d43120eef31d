"""Test helper: the fair scheduler's state of an account as the store keeps it."""

from __future__ import annotations

import sqlalchemy as sa

from jamhost.store import Store
from jamhost.store.sql import tables


def account_vtime(store: Store, owner: str) -> int:
    """The account's virtual time (tenancy/fairness.py) in its `account_usage` row."""
    with store.engine.connect() as conn:  # type: ignore[attr-defined]
        return int(conn.execute(sa.select(tables.account_usage.c.vtime).where(
            tables.account_usage.c.owner == owner)).scalar_one())
