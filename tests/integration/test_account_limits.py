"""Issue 12, the attacks a tenant makes with its own services, tokens and quotas only, against
real `jamhost serve` processes (SQLite, PostgreSQL, and two replicas on one PostgreSQL):

- it names its own balance when creating a service;
- it creates services (and so per-service quotas) without bound;
- it spreads pending packages over many services past any per-account bound;
- it mints tokens to multiply its request rate;
- it fills the global pending cap with its own services' quotas, so others get 409.

Each limit is taken with requests released together (a barrier), so it must hold exactly
under concurrency and across replicas; refused requests leave nothing behind.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import REDIS_URL, Server, make_tenant
from tests.integration.test_quota_concurrency import (
    KINDS,
    Deployment,
    N,
    all_at_once,
    outcome,
    start_deployment,
    stored_package_ids,
    submit,
)

MAX_BALANCE = 2**63 - 1


@pytest.fixture
def deploy(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[..., Deployment]]:
    """A deployment of the kind the test is parametrized with (`kind`)."""
    cleanups: list[Callable[[], None]] = []
    kind = request.node.callspec.params["kind"]
    try:
        yield lambda **keys: start_deployment(kind, tmp_path, cleanups, **keys)
    finally:
        for fn in cleanups:
            fn()


ONE_EACH = ["sqlite", "postgres"]  # no concurrency in the test: one server per store kind


def token_of(server: Server, account_id: str, name: str = "extra") -> str:
    with server.op() as op:
        r = op.post(f"/jam/accounts/{account_id}/tokens", json={"name": name})
        assert r.status_code == 201, r.text
        return str(r.json()["token"])


def new_service(server: Server, token: str) -> int:
    with server.client(token) as c:
        r = c.post("/jam/services", json={})
        assert r.status_code == 201, r.text
        return int(r.json()["service_id"])


@pytest.mark.parametrize("kind", ONE_EACH)
def test_tenant_cannot_set_a_balance(deploy: Callable[..., Deployment], kind: str) -> None:
    dep = deploy(initial_service_balance=12_345)
    t = make_tenant(dep.first, "alice")
    with dep.first.client(t.token) as c:
        r = c.post("/jam/services", json={"balance": MAX_BALANCE})
        assert r.status_code == 403, r.text
        assert r.json()["code"] == "jam_authz"
        plain = c.post("/jam/services", json={})
        assert plain.status_code == 201, plain.text
        assert plain.json()["balance"] == 12_345  # runtime.jam.initial_service_balance
        mine = c.get("/jam/services").json()["items"]
    # the refused request created nothing; the balance only the operator grants
    assert sorted(s["service_id"] for s in mine) == sorted(
        [t.service_id, plain.json()["service_id"]])
    assert {s["balance"] for s in mine} == {12_345}
    with dep.first.op() as op:
        sid = plain.json()["service_id"]
        credited = op.post(f"/jam/services/{sid}/credit", json={"amount": 5})
        assert credited.status_code == 200, credited.text
        assert credited.json()["balance"] == 12_350
        own = op.post("/jam/services", json={"owner": t.account_id, "balance": 7})
        assert own.status_code == 201 and own.json()["balance"] == 7


@pytest.mark.parametrize("kind", KINDS)
def test_services_per_account_exact(deploy: Callable[..., Deployment], kind: str) -> None:
    limit = 10
    dep = deploy(max_services_per_account=limit)
    a = make_tenant(dep.first, "alice")  # owns one service already
    b = make_tenant(dep.first, "bob")
    tokens = [a.token, token_of(dep.first, a.account_id)]

    def send(c: httpx.Client, i: int) -> httpx.Response:
        return c.post("/jam/services", json={})

    responses = all_at_once(dep, lambda i: tokens[i % 2], send)

    assert outcome(responses) == {(201, "ok"): limit - 1, (403, "jam_authz"): N - limit + 1}
    for server in dep.servers:
        with server.client(a.token) as c:
            assert len(c.get("/jam/services", params={"limit": 500}).json()["items"]) == limit
    # the operator cannot exceed it for the account either, and another account is not held
    with dep.first.op() as op:
        r = op.post("/jam/services", json={"owner": a.account_id})
        assert r.status_code == 403 and r.json()["code"] == "jam_authz"
    new_service(dep.first, b.token)


@pytest.mark.parametrize("kind", KINDS)
def test_pending_per_account_across_services_exact(deploy: Callable[..., Deployment],
                                                   kind: str) -> None:
    limit = 10
    dep = deploy(max_pending_per_account=limit)
    a = make_tenant(dep.first, "alice")
    services = [a.service_id] + [new_service(dep.first, a.token) for _ in range(4)]
    b = make_tenant(dep.first, "bob")

    def send(c: httpx.Client, i: int) -> httpx.Response:
        return submit(services[i % len(services)], b"acct")(c, i)

    responses = all_at_once(dep, a.token, send)

    assert outcome(responses) == {(201, "ok"): limit, (409, "jam_pending_limit"): N - limit}
    accepted = sorted(r.json()["id"] for r in responses if r.status_code == 201)
    for server in dep.servers:
        stored = [p for sid in services for p in stored_package_ids(server, sid)]
        assert sorted(stored) == accepted
    with dep.first.client(b.token) as c:  # bob's own limit is untouched
        assert submit(b.service_id, b"bob")(c, 0).status_code == 201


@pytest.mark.parametrize("kind", ["sqlite", "postgres-2-replicas"])
def test_account_rate_limit_all_tokens_together(deploy: Callable[..., Deployment],
                                                kind: str) -> None:
    limit = 10
    dep = deploy(account_rate_limit_per_minute=limit, rate_limit_storage=REDIS_URL)
    a = make_tenant(dep.first, "alice")
    b = make_tenant(dep.first, "bob")
    tokens = [a.token] + [token_of(dep.first, a.account_id, f"t{i}") for i in range(4)]
    spent_before = 1  # make_tenant's service creation; operator calls are never charged

    def send(c: httpx.Client, i: int) -> httpx.Response:
        return c.get("/jam/accounts/me")

    responses = all_at_once(dep, lambda i: tokens[i % len(tokens)], send)

    allowed = limit - spent_before
    assert outcome(responses) == {(200, "ok"): allowed, (429, "jam_rate_limit"): N - allowed}
    assert all("Retry-After" in r.headers for r in responses if r.status_code == 429)
    with dep.first.client(b.token) as c:  # another account's budget is its own
        assert c.get("/jam/accounts/me").status_code == 200


@pytest.mark.parametrize("kind", KINDS)
def test_global_cap_is_shared(deploy: Callable[..., Deployment], kind: str) -> None:
    """Alice fills what she can of a global cap of 20 with five services' quotas, all at
    once; bob and carol, arriving after, still get their own packages in."""
    cap = 20
    dep = deploy(max_pending_packages=cap)
    a = make_tenant(dep.first, "alice")
    services = [a.service_id] + [new_service(dep.first, a.token) for _ in range(4)]

    def send(c: httpx.Client, i: int) -> httpx.Response:
        return submit(services[i % len(services)], b"fill")(c, i)

    responses = all_at_once(dep, a.token, send)
    # alone, an account holds at most ceil(cap / 2)
    assert outcome(responses) == {(201, "ok"): cap // 2, (409, "jam_pending_limit"): N - cap // 2}

    others = [make_tenant(dep.first, name) for name in ("bob", "carol")]
    got: Counter[tuple[str, int]] = Counter()
    for t in others:
        with dep.servers[-1].client(t.token) as c:
            for i in range(10):
                r = submit(t.service_id, b"late")(c, i)
                got[(t.account_id, r.status_code)] += 1
    # bob: ceil(20 / 3) = 7; carol: what is left of the cap (3), not a 409 at the first try
    assert got[(others[0].account_id, 201)] == 7
    assert got[(others[1].account_id, 201)] == 3


def test_admin_cli_honours_services_per_account(tmp_path: Path) -> None:
    """The admin hooks work on the store directly, and the limit is the store's."""
    import json
    import subprocess
    import sys

    from tests.conftest import write_config

    config = write_config(tmp_path / "c.toml", store="sqlite",
                          sqlite_path=str(tmp_path / "s.db"), max_services_per_account=2)

    def jamhost(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "jamhost.cli.main", *args, "--config",
                               str(config)], capture_output=True, text=True, timeout=120)

    account = json.loads(jamhost("accounts", "create", "alice").stdout)["id"]
    for _ in range(2):
        assert jamhost("services", "create", "--owner", account).returncode == 0
    refused = jamhost("services", "create", "--owner", account)
    assert refused.returncode != 0
    assert json.loads(refused.stderr.strip().splitlines()[-1])["code"] == "jam_authz"
    listed = json.loads(jamhost("services", "list", "--owner", account).stdout)
    assert len(listed) == 2
