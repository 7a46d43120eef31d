"""Migration 0005 (a service's last claim in jam_service_claims): a deployment upgraded
keeps each service's place in its account's round robin, and a downgrade puts it back."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic import command

from jamhost.store.migrate import alembic_config, upgrade
from jamhost.store.sql.engine import make_engine, postgres_url, sqlite_url

SERVICE = ("INSERT INTO jam_services (service_id, owner, code_hash, balance, min_item_gas, "
           "min_memo_gas, created_at, created_by, root, last_claimed) "
           "VALUES (:s, 'a', :h, 0, 0, 0, 0, 'x', :h, :at)")
CLAIMS = "SELECT service_id, last_claimed FROM jam_service_claims ORDER BY service_id"


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_last_claimed_moves_out_and_back(kind, tmp_path, request) -> None:
    url = (sqlite_url(str(tmp_path / "m.db")) if kind == "sqlite"
           else postgres_url(request.getfixturevalue("fresh_pg")))
    engine = make_engine(url)
    upgrade(engine, "0004")
    with engine.begin() as c:
        for sid, at in ((65536, 0), (65537, 7), (65538, 5)):
            c.execute(sa.text(SERVICE), {"s": sid, "h": bytes(32), "at": at})
    upgrade(engine)
    with engine.connect() as c:
        moved = [tuple(r) for r in c.execute(sa.text(CLAIMS))]
        columns = {col["name"] for col in sa.inspect(c).get_columns("jam_services")}
    assert moved == [(65537, 7), (65538, 5)]  # a never-claimed service has no row: 0
    assert "last_claimed" not in columns
    with engine.begin() as c:
        command.downgrade(alembic_config(c), "0004")
    with engine.connect() as c:
        back = [tuple(r) for r in c.execute(sa.text(
            "SELECT service_id, last_claimed FROM jam_services ORDER BY service_id"))]
        tables = sa.inspect(c).get_table_names()
    engine.dispose()
    assert back == [(65536, 0), (65537, 7), (65538, 5)]
    assert "jam_service_claims" not in tables
