"""Scale-out: two API replicas (`jamhost serve`, no in-process workers) and two `jamhost worker`
processes on one PostgreSQL and one Redis (shared rate-limit storage).

Several tenants submit concurrently through both replicas. Checked: the per-service pending
quota is exact across replicas (SPEC §6.3: `201`s equal the quota, the rest `409
jam_pending_limit`), no package is processed twice (attempts 1, two receipt entries per
package, the counter example's value equals the applied count), everything is applied, and no
tenant sees another's packages, reports or receipts through either replica (SPEC §6.1: listings
show only its own, another tenant's package id answers exactly like a missing one).
"""

from __future__ import annotations

import secrets
from concurrent.futures import ThreadPoolExecutor

from jamhost.examples import counter
from tests.conftest import REDIS_URL, Server, Tenant, make_tenant, simple_package, start_server
from tests.integration.test_pipeline import chain_holds, wait_final

TENANTS = 3
QUOTA = 5
ATTEMPTS = 15  # per tenant in the quota round: 5 must be accepted, 10 refused
ROUND_TWO = 5  # per tenant, submitted while the workers run


def listing(srv: Server, token: str, path: str, **params: object) -> list[dict[str, object]]:
    items: list[dict[str, object]] = []
    cursor = None
    with srv.client(token) as c:
        while True:
            page = c.get(path, params={"limit": 500, **params,
                                       **({"cursor": cursor} if cursor else {})})
            assert page.status_code == 200, page.text
            items += page.json()["items"]
            cursor = page.json()["next_cursor"]
            if not cursor:
                return items


def submit_all(replicas: list[Server], jobs: list[tuple[Tenant, int]]) -> list[tuple[Tenant,
                                                                                    int, str]]:
    """POST every (tenant, n) package at once, alternating replicas; (tenant, status, id|code)."""

    def go(k: int) -> tuple[Tenant, int, str]:
        tenant, n = jobs[k]
        srv = replicas[k % len(replicas)]
        with srv.client(tenant.token) as c:
            r = c.post("/jam/packages", json=simple_package(
                tenant.service_id, n.to_bytes(4, "little"), 10**6))
        assert r.status_code < 500, r.text
        body = r.json()
        return tenant, r.status_code, body.get("id") or body.get("code")

    with ThreadPoolExecutor(16) as pool:
        return list(pool.map(go, range(len(jobs))))


def scrape(srv: Server) -> tuple[float, float, float]:
    """(applied packages, answered POST /jam/packages, queue depth) from /metrics."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    applied = posts = depth = 0.0
    text = httpx.get(srv.url + "/metrics", timeout=30).text
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name == "jamhost_packages_total" and s.labels["status"] == "applied":
                applied += s.value
            elif (s.name == "jamhost_http_requests_total" and s.labels["method"] == "POST"
                  and s.labels["route"] == "/jam/packages"):
                posts += s.value
            elif s.name == "jamhost_queue_depth":
                depth = s.value
    return applied, posts, depth


def test_two_replicas_two_workers(tmp_path, fresh_pg):
    # All four processes share one prometheus_client multiprocess directory: either replica's
    # /metrics then counts what the worker processes did.
    prom = tmp_path / "prom"
    prom.mkdir()
    env = {"PROMETHEUS_MULTIPROC_DIR": str(prom)}
    keys = dict(store="postgres", pg_dsn=fresh_pg, workers=0, rate_limit_storage=REDIS_URL,
                rate_limit_per_minute=100_000, service_rate_limit_per_minute=100_000,
                account_rate_limit_per_minute=0)
    with ThreadPoolExecutor(2) as pool:
        replicas = list(pool.map(lambda i: start_server(tmp_path / f"api{i}", extra_env=env,
                                                           **keys), range(2)))
    workers: list[Server] = []
    try:
        tenants = [make_tenant(replicas[i % 2], f"tenant{i}", code=counter.build())
                   for i in range(TENANTS)]
        with replicas[1].op() as op:
            for t in tenants:
                r = op.put(f"/jam/services/{t.service_id}/quota",
                           json={"pending_packages": QUOTA})
                assert r.status_code == 200, r.text

        # Round one, nothing processing: the pending quota must hold exactly.
        jobs = [(t, n) for n in range(ATTEMPTS) for t in tenants]
        results = submit_all(replicas, jobs)
        accepted: dict[int, list[str]] = {t.service_id: [] for t in tenants}
        for t, status, what in results:
            if status == 201:
                accepted[t.service_id].append(what)
            else:
                assert (status, what) == (409, "jam_pending_limit"), (status, what)
        assert {sid: len(ids) for sid, ids in accepted.items()} == {
            t.service_id: QUOTA for t in tenants}
        assert scrape(replicas[1])[2] == TENANTS * QUOTA  # queue depth from the store counter

        workers = [start_server(tmp_path / f"w{i}", command="worker", extra_env=env,
                                **keys) for i in range(2)]
        with replicas[0].op() as op:
            for t in tenants:
                r = op.put(f"/jam/services/{t.service_id}/quota",
                           json={"pending_packages": 1000})
                assert r.status_code == 200, r.text
        # Round two, while both workers process: everything is accepted and applied once.
        results = submit_all(replicas, [(t, 1000 + n) for n in range(ROUND_TWO) for t in tenants])
        for t, status, what in results:
            assert status == 201, (status, what)
            accepted[t.service_id].append(what)

        for t in tenants:
            ids = accepted[t.service_id]
            with replicas[0].client(t.token) as c:
                pkgs = wait_final(c, ids, timeout=240)
                assert {p["status"] for p in pkgs} == {"applied"}
                assert [p["attempts"] for p in pkgs] == [1] * len(ids)
                items, _root = chain_holds(c, t.service_id)
                assert len(items) == 2 * len(ids)
                assert sorted(r["hash"] for r in items if r["entry_type"] == "package") == \
                    sorted(ids)
                value = c.get(f"/jam/services/{t.service_id}/storage/0x{b'count'.hex()}")
                assert value.json()["value"] == "0x" + len(ids).to_bytes(8, "little").hex()
        finished = "".join(w.logs() for w in workers).count('"package finished"')
        assert finished == TENANTS * (QUOTA + ROUND_TWO)
        for srv in replicas:
            applied, posts, depth = scrape(srv)
            assert applied == TENANTS * (QUOTA + ROUND_TWO)  # counted in the workers
            assert posts == TENANTS * (ATTEMPTS + ROUND_TWO)  # both replicas' requests
            assert depth == 0

        # No cross-tenant leak, through either replica.
        missing = "0x" + secrets.token_hex(32)
        for srv in replicas:
            for t in tenants:
                own = set(accepted[t.service_id])
                pkgs = listing(srv, t.token, "/jam/packages")
                assert {p["id"] for p in pkgs} == own
                assert {p["service_id"] for p in pkgs} == {t.service_id}
                reports = listing(srv, t.token, "/jam/reports")
                assert {r["package_id"] for r in reports} == own
                receipts = listing(srv, t.token, "/jam/receipts")
                assert {r["service_id"] for r in receipts} == {t.service_id}
                services = listing(srv, t.token, "/jam/services")
                assert [s["service_id"] for s in services] == [t.service_id]
                with srv.client(t.token) as c:
                    nothing = c.get(f"/jam/packages/{missing}")
                    assert nothing.status_code == 404
                    for other in tenants:
                        if other is t:
                            continue
                        for pid in accepted[other.service_id][:3]:
                            for path in (f"/jam/packages/{pid}", f"/jam/packages/{pid}/report",
                                         f"/jam/receipts/{pid}"):
                                r = c.get(path)
                                assert r.status_code == 404, (path, r.text)
                            r = c.get(f"/jam/packages/{pid}")
                            assert r.json() == nothing.json()
                        r = c.get("/jam/packages", params={"service_id": other.service_id})
                        assert r.status_code == 403 and r.json()["code"] == "jam_authz"
    finally:
        for w in workers:
            w.stop()
        for srv in replicas:
            srv.stop()
