"""Pooled PostgreSQL connections that the server closed are never handed to a request.

The pool checks liveness on checkout without a round trip (store/sql/engine.py): this kills
every backend of the server's database, as a PostgreSQL restart or failover would, and then
expects every request to succeed.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from tests.conftest import _pg_admin, make_tenant, simple_package


def _requests(server, tenant, start: int, count: int) -> list[int]:
    def one(i: int) -> int:
        with server.client(tenant.token) as c:
            if i % 3 == 0:
                r = c.post("/jam/packages",
                           json=simple_package(tenant.service_id, b"conn-%d" % i))
            elif i % 3 == 1:
                r = c.get("/jam/packages", params={"limit": 5})
            else:
                r = c.get(f"/jam/services/{tenant.service_id}")
            return r.status_code

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, range(start, start + count)))


def test_requests_after_every_backend_was_terminated(server_factory, fresh_pg):
    server = server_factory(store="postgres", pg_dsn=fresh_pg, workers=0)
    tenant = make_tenant(server, "conn")
    before = _requests(server, tenant, 0, 48)  # fills the pool with several connections
    assert all(code in (200, 201) for code in before), before

    name = fresh_pg.rsplit("/", 1)[1]
    _pg_admin("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
              f"WHERE datname = '{name}' AND pid <> pg_backend_pid()")

    after = _requests(server, tenant, 1000, 48)
    assert all(code in (200, 201) for code in after), after
    assert "Traceback" not in server.logs()
