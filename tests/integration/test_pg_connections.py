"""Pooled PostgreSQL connections that the server closed are never handed to a request.

The pool checks liveness on checkout without a round trip (store/sql/engine.py): this kills
every backend of the server's database, as a PostgreSQL restart or failover would, and then
expects every request to succeed; and it fills every connection slot of a database while
requests arrive, which must wait for a slot rather than fail.
"""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from tests.conftest import PG_ADMIN_DSN, _pg_admin, make_tenant, simple_package

LIMIT = 6  # connections the test database accepts from its owner


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


def _backends(datname: str) -> int:
    import psycopg

    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
                           "AND pid <> pg_backend_pid()", (datname,)).fetchone()
    assert row is not None
    return int(row[0])


def test_requests_after_every_backend_was_terminated(server_factory, fresh_pg):
    server = server_factory(store="postgres", pg_dsn=fresh_pg, workers=0)
    tenant = make_tenant(server, "conn")
    before = _requests(server, tenant, 0, 48)  # fills the pool with several connections
    assert all(code in (200, 201) for code in before), repr(before) + server.logs()[-3000:]

    name = fresh_pg.rsplit("/", 1)[1]
    _pg_admin("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
              f"WHERE datname = '{name}' AND pid <> pg_backend_pid()")
    # pg_terminate_backend only signals: wait until every backend has exited, as after a
    # restart (a request whose backend dies under it fails, as docs/operations.md says).
    deadline = time.monotonic() + 10
    while _backends(name) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _backends(name) == 0

    after = _requests(server, tenant, 1000, 48)
    assert all(code in (200, 201) for code in after), repr(after) + server.logs()[-3000:]
    assert "Traceback" not in server.logs()


def test_requests_wait_for_a_connection_slot(server_factory):
    """A server at its connection limit refuses new connections ("too many connections",
    SQLSTATE 53300) until one closes: requests wait for a slot instead of answering 500.

    The limit is the test database's own (`CONNECTION LIMIT`, which binds a role that is not
    a superuser), so the PostgreSQL that parallel tests share keeps its free slots."""
    import psycopg

    suffix = uuid.uuid4().hex[:12]
    role, name = f"jamhost_r_{suffix}", f"jamhost_t_{suffix}"
    _pg_admin(f'CREATE ROLE "{role}" LOGIN')
    _pg_admin(f'CREATE DATABASE "{name}" OWNER "{role}" CONNECTION LIMIT {LIMIT}')
    dsn = f"postgresql://{role}@127.0.0.1:5432/{name}"
    held: list[psycopg.Connection] = []
    try:
        server = server_factory(store="postgres", pg_dsn=dsn, workers=0)
        tenant = make_tenant(server, "slots")
        while True:  # every slot the server does not hold already
            try:
                held.append(psycopg.connect(dsn, autocommit=True))
            except psycopg.OperationalError as exc:
                assert "too many connections" in str(exc), exc
                break
        assert 0 < len(held) < LIMIT
        release = threading.Timer(1.5, lambda: [c.close() for c in held])
        release.start()
        try:
            codes = _requests(server, tenant, 0, 48)
        finally:
            release.join()
        assert all(code in (200, 201) for code in codes), repr(codes) + server.logs()[-3000:]
        assert "Traceback" not in server.logs()
    finally:
        for c in held:
            c.close()
        _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        _pg_admin(f'DROP ROLE IF EXISTS "{role}"')
