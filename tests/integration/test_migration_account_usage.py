"""Migration 0002 (per-account usage): a deployment upgraded with packages in flight starts
with account counters equal to its rows, so the new limits and the scheduler hold at once."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from jamhost.store.migrate import upgrade
from jamhost.store.sql.engine import make_engine, postgres_url, sqlite_url

SERVICE = ("INSERT INTO jam_services (service_id, owner, code_hash, balance, min_item_gas, "
           "min_memo_gas, created_at, created_by, root) VALUES (:s, :o, :h, 0, 0, 0, 0, 'x', :h)")
PACKAGE = ("INSERT INTO jam_packages (id, service_id, status, body, size, refine_gas, "
           "accumulate_gas, created_at, updated_at) VALUES (:id, :s, :st, :b, 1, 1, 1, 0, 0)")


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_upgrade_counts_existing_rows(kind, tmp_path, request) -> None:
    url = (sqlite_url(str(tmp_path / "m.db")) if kind == "sqlite"
           else postgres_url(request.getfixturevalue("fresh_pg")))
    engine = make_engine(url)
    upgrade(engine, "0001")
    with engine.begin() as c:
        for sid, owner in ((65536, "a"), (65537, "a"), (65538, "b")):
            c.execute(sa.text(SERVICE), {"s": sid, "o": owner, "h": bytes(32)})
        for i, (sid, status) in enumerate(((65536, "pending"), (65537, "refining"),
                                           (65537, "applied"), (65538, "pending"))):
            c.execute(sa.text(PACKAGE), {"id": bytes([i]) * 32, "s": sid, "st": status,
                                         "b": b"x"})
    upgrade(engine)
    with engine.connect() as c:
        got = sorted(tuple(r) for r in c.execute(sa.text(
            "SELECT owner, services, pending, queued, running, vtime FROM jam_account_usage")))
    engine.dispose()
    assert got == [("a", 2, 2, 1, 1, 0), ("b", 1, 1, 1, 0, 0)]
