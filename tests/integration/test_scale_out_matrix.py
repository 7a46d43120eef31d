"""The authorization matrix against each of two API replicas sharing one PostgreSQL and one
Redis (issue 7, scale-out): every cell must be the same whichever replica answers, including
for objects created through the other replica."""

from __future__ import annotations

from dataclasses import replace

from tests.conftest import REDIS_URL
from tests.integration.test_authz_matrix import build_world, run_matrix


def test_authz_matrix_on_each_replica(server_factory, fresh_pg):
    keys = dict(store="postgres", pg_dsn=fresh_pg, authz_enabled=True, owner_is_account=True,
                rate_limit_per_minute=0, service_rate_limit_per_minute=0,
                account_rate_limit_per_minute=0,
                rate_limit_storage=REDIS_URL)
    one = server_factory(**keys)
    two = server_factory(**keys)
    store_keys = {"store": "postgres", "pg_dsn": fresh_pg}
    world = build_world(one, store_keys, True)  # every object is created through replica one
    try:
        report = {}
        for name, srv in (("replica one", one), ("replica two", two)):
            mismatches, cells = run_matrix(replace(world, srv=srv))
            assert cells >= 800
            report[name] = mismatches
    finally:
        world.op.close()
    assert report == {"replica one": [], "replica two": []}, report
