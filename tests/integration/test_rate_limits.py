"""Rate limits per token, per client IP and per service: memory storage in one process, and
the real Redis shared by two server processes on one PostgreSQL."""

from __future__ import annotations

from tests.conftest import REDIS_URL, make_tenant, simple_package


def _statuses(client, n, path):
    return [client.get(path).status_code for _ in range(n)]


def test_token_limit_memory_headers_and_isolation(server_factory):
    srv = server_factory(rate_limit_per_minute=5, service_rate_limit_per_minute=0)
    a = make_tenant(srv, "a")
    b = make_tenant(srv, "b")
    # make_tenant spent one request of each token (creating the service).
    with srv.client(a.token) as ca, srv.client(b.token) as cb:
        assert _statuses(ca, 4, "/jam/accounts/me") == [200] * 4
        refused = ca.get("/jam/accounts/me")
        assert refused.status_code == 429
        assert refused.json()["code"] == "jam_rate_limit"
        assert int(refused.headers["retry-after"]) >= 1
        assert refused.headers["ratelimit-policy"] == '"caller";q=5;w=60'
        assert refused.headers["ratelimit"].startswith('"caller";r=0;t=')
        # A tenant at its limit does not touch another tenant's budget.
        assert _statuses(cb, 4, "/jam/accounts/me") == [200] * 4
    with srv.op() as op:  # operators are exempt (break-glass)
        assert _statuses(op, 8, "/system/status") == [200] * 8


def test_refused_by_rate_changes_nothing(server_factory):
    srv = server_factory(rate_limit_per_minute=3, service_rate_limit_per_minute=0)
    a = make_tenant(srv, "a")  # make_tenant spends one request of a's token
    with srv.client(a.token) as c:
        assert c.post("/jam/packages", json=simple_package(a.service_id, b"1")).status_code == 201
        assert c.post("/jam/packages", json=simple_package(a.service_id, b"2")).status_code == 201
        over = c.post("/jam/packages", json=simple_package(a.service_id, b"3"))
        assert over.status_code == 429
    with srv.op() as op:
        pkgs = op.get("/jam/packages", params={"service_id": a.service_id}).json()["items"]
        assert len(pkgs) == 2


def test_unauthenticated_callers_limited_per_ip(server_factory):
    srv = server_factory(rate_limit_per_minute=4, service_rate_limit_per_minute=0)
    with srv.client("not-a-token") as c:
        assert _statuses(c, 4, "/jam/services") == [401] * 4
        assert c.get("/jam/services").status_code == 429
    with srv.client() as anon:  # same IP, no token
        assert anon.get("/jam/services").status_code == 429
        assert anon.get("/healthz").status_code == 200  # liveness is never limited


def test_service_limit_counts_all_tokens_and_only_authorized_requests(server_factory):
    srv = server_factory(rate_limit_per_minute=0, service_rate_limit_per_minute=4)
    a = make_tenant(srv, "a")
    b = make_tenant(srv, "b")
    with srv.client(a.token) as c:
        second = c.post(f"/jam/accounts/{a.account_id}/tokens", json={"name": "2"}).json()
    path = f"/jam/services/{a.service_id}"
    with srv.client(b.token) as cb:  # foreign requests are refused and consume nothing
        assert _statuses(cb, 6, path) == [403] * 6
    with srv.client(a.token) as c1, srv.client(second["token"]) as c2:
        assert _statuses(c1, 2, path) + _statuses(c2, 2, path) == [200] * 4
        assert c1.get(path).status_code == 429
        refused = c2.get(path)
        assert refused.status_code == 429
        assert refused.headers["ratelimit-policy"] == '"service";q=4;w=60'
    with srv.client(b.token) as cb:  # b's own service has its own budget
        assert _statuses(cb, 4, f"/jam/services/{b.service_id}") == [200] * 4


def test_redis_limits_shared_by_two_replicas(server_factory, fresh_pg):
    keys = dict(store="postgres", pg_dsn=fresh_pg, rate_limit_per_minute=6,
                service_rate_limit_per_minute=0, rate_limit_storage=REDIS_URL)
    one = server_factory(**keys)
    two = server_factory(**keys)
    a = make_tenant(one, "a")  # 1 request of a's token spent on replica one
    with one.client(a.token) as c1, two.client(a.token) as c2:
        got = _statuses(c1, 3, "/jam/accounts/me") + _statuses(c2, 2, "/jam/accounts/me")
        assert got == [200] * 5
        assert c2.get("/jam/accounts/me").status_code == 429
        assert c1.get("/jam/accounts/me").status_code == 429


def test_redis_limit_exact_under_concurrency(server_factory, fresh_pg):
    from concurrent.futures import ThreadPoolExecutor

    keys = dict(store="postgres", pg_dsn=fresh_pg, rate_limit_per_minute=0,
                service_rate_limit_per_minute=20, rate_limit_storage=REDIS_URL)
    one = server_factory(**keys)
    two = server_factory(**keys)
    a = make_tenant(one, "a")
    path = f"/jam/services/{a.service_id}"

    def hit(i):
        srv = one if i % 2 else two
        with srv.client(a.token) as c:
            return c.get(path).status_code

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(hit, range(60)))
    assert results.count(200) == 20
    assert results.count(429) == 40


def test_each_request_charges_its_service_once(server_factory):
    """A submit checks the service twice (default code hash, then the submit itself) and an
    upload twice too: the budget must still count requests, not checks."""
    import hashlib

    srv = server_factory(rate_limit_per_minute=0, service_rate_limit_per_minute=6)
    a = make_tenant(srv, "a")
    with srv.client(a.token) as c:
        subs = [c.post("/jam/packages", json=simple_package(a.service_id, bytes([i])))
                .status_code for i in range(3)]
        blobs = [bytes([i]) * 10 for i in range(3)]
        ups = [c.put("/jam/preimages/" + hashlib.blake2b(b, digest_size=32).hexdigest(),
                     params={"service_id": a.service_id}, content=b).status_code for b in blobs]
        assert subs + ups == [201] * 6
        assert c.get(f"/jam/services/{a.service_id}").status_code == 429
