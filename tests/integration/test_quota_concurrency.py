"""SPEC §6 invariant 3 (issue 4): quotas hold under concurrency, also across API replicas.

Fifty requests are released at once (a barrier) against real `jamhost serve` processes: one
on SQLite, one on PostgreSQL, and two replicas sharing one PostgreSQL database with the
requests split between them. Exactly the quota is accepted, every other request gets the
quota's 409 code, usage equals what was accepted, and refused requests left nothing behind.
"""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import (
    PG_ADMIN_DSN,
    Server,
    _pg_admin,
    make_tenant,
    simple_package,
    start_server,
)

N = 50
QUOTA = 10
# Rate limits are off: they are not what these tests are about.
BASE_KEYS = {"rate_limit_per_minute": 0, "service_rate_limit_per_minute": 0,
             "account_rate_limit_per_minute": 0, "workers": 0}


@dataclass
class Deployment:
    servers: list[Server]

    @property
    def first(self) -> Server:
        return self.servers[0]

    def server_for(self, i: int) -> Server:
        """Request i goes to replica i mod R."""
        return self.servers[i % len(self.servers)]


KINDS = ["sqlite", "postgres", "postgres-2-replicas"]


def start_deployment(kind: str, tmp: Path, cleanups: list[Callable[[], None]],
                     **keys: object) -> Deployment:
    keys = {**BASE_KEYS, **keys}
    if kind == "sqlite":
        servers = [start_server(tmp, store="sqlite", sqlite_path=str(tmp / "quota.db"), **keys)]
    else:
        name = f"jamhost_t_{uuid.uuid4().hex[:12]}"
        _pg_admin(f'CREATE DATABASE "{name}"')
        cleanups.append(lambda: _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        dsn = f"{PG_ADMIN_DSN.rsplit('/', 1)[0]}/{name}"
        count = 2 if kind == "postgres-2-replicas" else 1
        servers = []
        for i in range(count):
            servers.append(start_server(tmp / f"replica{i}", store="postgres", pg_dsn=dsn,
                                        **keys))
            cleanups.insert(0, servers[-1].stop)
        return Deployment(servers)
    cleanups.insert(0, servers[0].stop)
    return Deployment(servers)


@pytest.fixture(scope="module", params=KINDS)
def shared(request: pytest.FixtureRequest, tmp_path_factory) -> Iterator[Deployment]:
    """One deployment per kind for the per-service quota tests: each test makes its own
    tenant and service, so they do not see each other (starting servers is the slow part)."""
    cleanups: list[Callable[[], None]] = []
    try:
        yield start_deployment(request.param, tmp_path_factory.mktemp(request.param), cleanups)
    finally:
        for fn in cleanups:
            fn()


@pytest.fixture(params=KINDS)
def deploy(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[..., Deployment]]:
    """A deployment of its own with extra config keys (for runtime-wide limits)."""
    cleanups: list[Callable[[], None]] = []
    try:
        yield lambda **keys: start_deployment(request.param, tmp_path, cleanups, **keys)
    finally:
        for fn in cleanups:
            fn()


Send = Callable[[httpx.Client, int], httpx.Response]


def all_at_once(dep: Deployment, token: str | Callable[[int], str], send: Send
                ) -> list[httpx.Response]:
    """Run send(client, i) for i < N on N threads released together; replicas alternate."""
    barrier = threading.Barrier(N)
    results: list[httpx.Response | BaseException | None] = [None] * N
    limits = httpx.Limits(max_connections=N, max_keepalive_connections=N)
    clients = [httpx.Client(base_url=s.url, timeout=60, limits=limits) for s in dep.servers]

    def run(i: int) -> None:
        tok = token(i) if callable(token) else token
        client = clients[i % len(clients)]
        barrier.wait(timeout=60)
        try:
            results[i] = send(_Authed(client, tok), i)  # type: ignore[arg-type]
        except BaseException as exc:  # noqa: BLE001 (reported below)
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(N)]
    try:
        for th in threads:
            th.start()
        for th in threads:
            th.join(timeout=120)
    finally:
        for c in clients:
            c.close()
    assert all(isinstance(r, httpx.Response) for r in results), results
    return results  # type: ignore[return-value]


class _Authed:
    """The shared client of a replica, sending one tenant's bearer token."""

    def __init__(self, client: httpx.Client, token: str) -> None:
        self._client, self._auth = client, {"Authorization": f"Bearer {token}"}

    def get(self, url: str, **kw: object) -> httpx.Response:
        return self._client.get(url, headers=self._auth, **kw)  # type: ignore[arg-type]

    def post(self, url: str, **kw: object) -> httpx.Response:
        return self._client.post(url, headers=self._auth, **kw)  # type: ignore[arg-type]

    def put(self, url: str, **kw: object) -> httpx.Response:
        headers = {**kw.pop("headers", {}), **self._auth}  # type: ignore[dict-item]
        return self._client.put(url, headers=headers, **kw)  # type: ignore[arg-type]


def outcome(responses: list[httpx.Response]) -> Counter[tuple[int, str]]:
    return Counter((r.status_code, r.json().get("code", "ok") if r.status_code >= 400 else "ok")
                   for r in responses)


def set_quota(server: Server, service_id: int, **limits: int) -> None:
    with server.op() as op:
        r = op.put(f"/jam/services/{service_id}/quota", json=limits)
        assert r.status_code == 200, r.text
        for key, value in limits.items():
            assert r.json()["limits"][key] == value


def usage(server: Server, token: str, service_id: int) -> dict[str, int]:
    with server.client(token) as c:
        r = c.get(f"/jam/services/{service_id}/quota")
        assert r.status_code == 200, r.text
        return r.json()["usage"]


def stored_package_ids(server: Server, service_id: int | None = None) -> list[str]:
    """The packages in the store (of one service, or all), as the operator lists them."""
    ids: list[str] = []
    cursor = None
    base = {"limit": 500} if service_id is None else {"limit": 500, "service_id": service_id}
    with server.op() as op:
        while True:
            page = op.get("/jam/packages", params={**base, **(
                {"cursor": cursor} if cursor else {})}).json()
            ids += [p["id"] for p in page["items"]]
            cursor = page["next_cursor"]
            if not cursor:
                return ids


def submit(service_id: int, tag: bytes, gas: int = 1000) -> Send:
    def send(c: httpx.Client, i: int) -> httpx.Response:
        return c.post("/jam/packages",
                      json=simple_package(service_id, tag + i.to_bytes(2, "big"), gas))
    return send


def test_pending_packages_quota(shared: Deployment) -> None:
    dep = shared
    t = make_tenant(dep.first, "alice")
    set_quota(dep.first, t.service_id, pending_packages=QUOTA)

    responses = all_at_once(dep, t.token, submit(t.service_id, b"pending"))

    assert outcome(responses) == {(201, "ok"): QUOTA, (409, "jam_pending_limit"): N - QUOTA}
    accepted = {r.json()["id"] for r in responses if r.status_code == 201}
    assert len(accepted) == QUOTA
    for server in dep.servers:
        assert usage(server, t.token, t.service_id)["pending_packages"] == QUOTA
        assert sorted(stored_package_ids(server, t.service_id)) == sorted(accepted)


def test_global_pending_cap_across_two_services(deploy: Callable[..., Deployment]) -> None:
    dep = deploy(max_pending_packages=QUOTA)
    a = make_tenant(dep.first, "alice")
    b = make_tenant(dep.first, "bob")
    # Requests 0..24 are alice's, 25..49 bob's; each tenant's requests alternate replicas.
    tenant = [a] * (N // 2) + [b] * (N - N // 2)

    def send(c: httpx.Client, i: int) -> httpx.Response:
        return submit(tenant[i].service_id, b"global")(c, i)

    responses = all_at_once(dep, lambda i: tenant[i].token, send)

    accepted = {r.json()["id"] for r in responses if r.status_code == 201}
    assert outcome(responses) == {(201, "ok"): len(accepted),
                                  (409, "jam_pending_limit"): N - len(accepted)}
    by_service = Counter(r.json()["service_id"] for r in responses if r.status_code == 201)
    # The cap is shared (tenancy/fairness.py): an account holds at most ceil(10 / 2) = 5
    # alone and ceil(10 / 3) = 4 once the other holds some, and each gets at least that.
    assert 4 <= by_service[a.service_id] <= 5 and 4 <= by_service[b.service_id] <= 5
    assert len(accepted) <= QUOTA
    for server in dep.servers:
        ua = usage(server, a.token, a.service_id)["pending_packages"]
        ub = usage(server, b.token, b.service_id)["pending_packages"]
        assert (ua, ub) == (by_service[a.service_id], by_service[b.service_id])
        assert sorted(stored_package_ids(server)) == sorted(accepted)


def test_storage_bytes_quota(shared: Deployment) -> None:
    dep = shared
    t = make_tenant(dep.first, "alice")
    size = 1000
    limit = QUOTA * size + size // 2  # room for exactly floor(limit / size) = 10 blobs
    set_quota(dep.first, t.service_id, storage_bytes=limit)
    blobs = [bytes([i]) * size for i in range(N)]
    hashes = ["0x" + hashlib.blake2b(b, digest_size=32).hexdigest() for b in blobs]

    def send(c: httpx.Client, i: int) -> httpx.Response:
        return c.put(f"/jam/preimages/{hashes[i]}", params={"service_id": t.service_id},
                     content=blobs[i], headers={"Content-Type": "application/octet-stream"})

    responses = all_at_once(dep, t.token, send)

    assert outcome(responses) == {(201, "ok"): limit // size,
                                  (409, "jam_storage_quota"): N - limit // size}
    accepted = {hashes[i] for i, r in enumerate(responses) if r.status_code == 201}
    assert {r.json()["hash"] for r in responses if r.status_code == 201} == accepted
    for server in dep.servers:
        assert usage(server, t.token, t.service_id)["storage_bytes"] == QUOTA * size
        with server.op() as op:
            for h in hashes:
                meta = op.get(f"/jam/preimages/{h}/meta")
                assert meta.status_code == (200 if h in accepted else 404), (h, meta.text)


def seconds_into_hour() -> float:
    return time.time() % 3600


def test_gas_per_hour_quota(shared: Deployment) -> None:
    # The budget is per clock hour: keep the burst away from the hour boundary.
    if seconds_into_hour() > 3600 - 60:
        time.sleep(3600 - seconds_into_hour() + 1)
    dep = shared
    t = make_tenant(dep.first, "alice")
    gas = 1000  # per item and phase: a package declares 2000
    set_quota(dep.first, t.service_id, gas_per_hour=QUOTA * 2 * gas + gas,
              pending_packages=N)

    responses = all_at_once(dep, t.token, submit(t.service_id, b"gas", gas))

    assert outcome(responses) == {(201, "ok"): QUOTA, (409, "jam_gas_quota"): N - QUOTA}
    accepted = {r.json()["id"] for r in responses if r.status_code == 201}
    for server in dep.servers:
        used = usage(server, t.token, t.service_id)
        assert used["gas_this_hour"] == QUOTA * 2 * gas
        assert used["pending_packages"] == QUOTA
        assert sorted(stored_package_ids(server, t.service_id)) == sorted(accepted)
    # SPEC §3: 409 jam_gas_quota comes with Retry-After (seconds until the budget renews).
    refused = [r for r in responses if r.status_code == 409]
    for r in refused:
        assert "retry-after" in r.headers, f"no Retry-After on {r.json()}"
        assert 1 <= int(r.headers["retry-after"]) <= 3600


def test_gas_refusal_for_a_package_over_the_whole_budget_has_retry_after(
        shared: Deployment) -> None:
    srv = shared.first
    t = make_tenant(srv, "alice")
    set_quota(srv, t.service_id, gas_per_hour=1999)
    with srv.client(t.token) as c:
        r = c.post("/jam/packages", json=simple_package(t.service_id, b"x", 1000))
    assert r.status_code == 409 and r.json()["code"] == "jam_gas_quota"
    assert 1 <= int(r.headers["retry-after"]) <= 3600
    assert usage(srv, t.token, t.service_id) == {"pending_packages": 0, "storage_bytes": 0,
                                                 "gas_this_hour": 0}
