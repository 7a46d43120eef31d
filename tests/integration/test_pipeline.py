"""The work pipeline end to end on real servers and worker processes: refine, attest,
accumulate, receipts; workers never process a package twice; a killed worker loses nothing."""

from __future__ import annotations

import time

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from jamhost.domain.hashing import blake2b_256
from jamhost.domain.receipts import verify_chain
from jamhost.domain.types.work_report import WorkReport
from jamhost.examples import counter
from jamhost.tenancy.principal import ADMIN
from tests.conftest import make_tenant, simple_package, start_server


def submit(client, package):
    r = client.post("/jam/packages", json=package)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def wait_final(client, ids, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pkgs = [client.get(f"/jam/packages/{i}").json() for i in ids]
        if all(p["status"] not in ("pending", "refining") for p in pkgs):
            return pkgs
        time.sleep(0.1)
    raise AssertionError(f"not final after {timeout}s: {[p['status'] for p in pkgs]}")


def chain_holds(client, service_id):
    items = []
    cursor = None
    while True:
        params = {"service_id": service_id, **({"cursor": cursor} if cursor else {})}
        page = client.get("/jam/receipts", params=params).json()
        items += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            break
    h = bytes.fromhex
    entries = [(r["seq"], h(r["prev_root"][2:]), h(r["new_root"][2:]), r["entry_type"],
                h(r["hash"][2:])) for r in items]
    ok, root = verify_chain(entries)
    assert ok, root
    return items, root


def test_counter_end_to_end(server_factory, store_keys):
    srv = server_factory(workers=2, **store_keys)
    t = make_tenant(srv, "alice", code=counter.build())
    with srv.client(t.token) as c:
        ids = [submit(c, simple_package(t.service_id, bytes([i]), 10**6)) for i in range(4)]
        pkgs = wait_final(c, ids)
        assert [p["status"] for p in pkgs] == ["applied"] * 4
        assert all(p["attempts"] == 1 for p in pkgs)
        # 4 packages of one item each: the counter holds 4 (little-endian u64).
        value = c.get(f"/jam/services/{t.service_id}/storage/0x{b'count'.hex()}").json()
        assert value["value"] == "0x" + (4).to_bytes(8, "little").hex()
        status = c.get("/system/status").json()
        for i, pid in enumerate(ids):
            rep = c.get(f"/jam/packages/{pid}/report").json()
            report = WorkReport.from_json(rep["report"])
            assert rep["report_hash"] == "0x" + blake2b_256(report.encode()).hex()
            assert report.package_spec.hash.hex() == pid[2:]
            # refine of the counter returns the payload
            assert report.results[0].result.output == bytes([i])
            assert len(rep["attestations"]) == status["attestation_threshold"] == 2
            assert len({a["attestor"] for a in rep["attestations"]}) == 2
            for a in rep["attestations"]:
                key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(a["attestor"][2:]))
                key.verify(bytes.fromhex(a["signature"][2:]),
                           b"$jam_guarantee" + bytes.fromhex(rep["report_hash"][2:]))
                # the engine that computed the report: the native core (built by pip install)
                assert (a["engine"], a["engine_version"]) == ("jamhost-pvm-native", "0.1.0")
            assert rep["receipt"]["entry_type"] == "report"
            assert rep["receipt"]["hash"] == rep["report_hash"]
        items, root = chain_holds(c, t.service_id)
        assert len(items) == 8  # a package and a report entry per applied package
        assert c.get(f"/jam/services/{t.service_id}").json()["accumulator_root"] == root
        assert c.get(f"/jam/services/{t.service_id}/quota").json()["usage"][
            "pending_packages"] == 0


def test_same_package_same_report_hash_everywhere(server_factory, tmp_path, fresh_pg):
    """Two runtimes with different stores, keys and workers compute one report hash."""
    one = server_factory(workers=1, store="sqlite", sqlite_path=str(tmp_path / "a.db"))
    two = server_factory(workers=2, store="postgres", pg_dsn=fresh_pg)
    hashes = set()
    for srv in (one, two):
        t = make_tenant(srv, "alice", code=counter.build())
        with srv.client(t.token) as c:
            pkg = simple_package(t.service_id, b"same payload", 10**6)
            # Pin everything the runtime would default: the code hash and the service id
            # are equal (first service, same code) so the package bytes are equal.
            pid = submit(c, pkg)
            wait_final(c, [pid])
            hashes.add(c.get(f"/jam/packages/{pid}/report").json()["report_hash"])
    assert len(hashes) == 1


def test_two_worker_processes_never_process_twice(tmp_path, fresh_pg):
    keys = dict(store="postgres", pg_dsn=fresh_pg)
    api = start_server(tmp_path / "api", **keys)
    workers = []
    try:
        tenants = [make_tenant(api, f"t{i}", code=counter.build()) for i in range(2)]
        workers = [start_server(tmp_path / f"w{i}", command="worker", **keys) for i in range(2)]
        ids = {}
        for t in tenants:
            with api.client(t.token) as c:
                ids[t.service_id] = [submit(c, simple_package(
                    t.service_id, i.to_bytes(2, "little"), 10**6)) for i in range(15)]
        for t in tenants:
            with api.client(t.token) as c:
                pkgs = wait_final(c, ids[t.service_id], timeout=120)
                assert {p["status"] for p in pkgs} == {"applied"}
                assert all(p["attempts"] == 1 for p in pkgs)
                items, _root = chain_holds(c, t.service_id)
                assert len(items) == 30
                applied = [r["hash"] for r in items if r["entry_type"] == "package"]
                assert sorted(applied) == sorted(ids[t.service_id])  # each exactly once
                count = c.get(f"/jam/services/{t.service_id}/storage/0x{b'count'.hex()}")
                assert count.json()["value"] == "0x" + (15).to_bytes(8, "little").hex()
        logs = "".join(w.logs() for w in workers)
        assert logs.count('"package finished"') == 30
    finally:
        for w in workers:
            w.stop()
        api.stop()


def test_killed_worker_loses_nothing(tmp_path, fresh_pg):
    keys = dict(store="postgres", pg_dsn=fresh_pg)
    lease = {"JAMHOST_WORKER_LEASE_SECONDS": "2"}
    api = start_server(tmp_path / "api", **keys)
    try:
        t = make_tenant(api, "alice", code=counter.build())
        with api.client(t.token) as c:
            ids = [submit(c, simple_package(t.service_id, i.to_bytes(2, "little"), 10**6))
                   for i in range(40)]
        doomed = start_server(tmp_path / "w1", command="worker", extra_env=lease, **keys)
        with api.client(t.token) as c:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                done = len(c.get("/jam/packages", params={
                    "service_id": t.service_id, "status": "applied", "limit": 500}
                ).json()["items"])
                if done >= 3:
                    break
                time.sleep(0.02)
        doomed.stop(sig_kill=True)  # kill -9 in the middle of the queue
        survivor = start_server(tmp_path / "w2", command="worker", extra_env=lease, **keys)
        try:
            with api.client(t.token) as c:
                pkgs = wait_final(c, ids, timeout=120)
                assert {p["status"] for p in pkgs} == {"applied"}
                items, _ = chain_holds(c, t.service_id)
                assert len(items) == 80  # each package applied exactly once
                count = c.get(f"/jam/services/{t.service_id}/storage/0x{b'count'.hex()}")
                assert count.json()["value"] == "0x" + (40).to_bytes(8, "little").hex()
        finally:
            survivor.stop()
    finally:
        api.stop()


@pytest.mark.parametrize("mode", ["disputed", "failed"])
def test_dispute_and_failure_apply_nothing(tmp_path, mode):
    """Attestors that disagree leave the package disputed with both hashes visible."""
    from jamhost.app import packages, services
    from jamhost.app.pipeline import process_next
    from jamhost.app.runtime import build_runtime
    from jamhost.config import JamSettings
    from jamhost.engine import refine_package
    from jamhost.engine.refine import RefineInputError
    from jamhost.tenancy.principal import Principal
    from tests.store_scopes import EVERYTHING

    rt = build_runtime(JamSettings(store="memory", rate_limit_per_minute=0,
                                   service_rate_limit_per_minute=0,
                                   account_rate_limit_per_minute=0))
    op = Principal(kind="operator", token_hash=bytes(32))
    acc_svc = services.create_service(rt, ADMIN, code=counter.build(), owner="x") \
        if not rt.policy.owner_is_account else None
    if acc_svc is None:
        from jamhost.app.accounts import create_account

        acc = create_account(rt, ADMIN, "x")
        acc_svc = services.create_service(rt, ADMIN, code=counter.build(), owner=acc.id)
    sid = acc_svc.service_id
    rec, _ = packages.submit_json(rt, op, simple_package(sid, b"\x07", 10**6))
    calls = []

    def flaky(package, **kw):
        calls.append(1)
        if mode == "failed":
            raise RefineInputError("no such extrinsic")
        out = refine_package(package, **kw)
        if len(calls) == 2:  # the second attestor computes something else
            out.report = type(out.report)(**{**{f.name: getattr(out.report, f.name)
                                                for f in out.report.FIELDS},
                                             "core_index": 1})
        return out

    assert process_next(rt, "w", refine=flaky) == rec.id
    pkg = rt.store.get_package(rec.id, EVERYTHING)
    assert pkg.status == mode
    svc = rt.store.get_service(sid)
    assert svc.receipt_seq == 0 and rt.store.storage_get(sid, b"count") is None
    assert rt.store.get_report(rec.id, EVERYTHING) is None
    assert svc.usage.pending_packages == 0
    if mode == "disputed":
        import json

        hashes = json.loads(pkg.detail)["report_hashes"]
        assert len(set(hashes.values())) == 2
    else:
        assert pkg.failure_reason == "no such extrinsic"


def test_concurrent_submits_while_workers_finish(server_factory, fresh_pg):
    """Submit and finish touch the same counter and service rows: a lock-order inversion
    between them deadlocked PostgreSQL under load (a 500 on submit). All must be accepted."""
    from concurrent.futures import ThreadPoolExecutor

    srv = server_factory(workers=2, store="postgres", pg_dsn=fresh_pg, rate_limit_per_minute=0,
                         service_rate_limit_per_minute=0, account_rate_limit_per_minute=0)
    t = make_tenant(srv, "alice", code=counter.build())

    def go(i):
        with srv.client(t.token) as c:
            return c.post("/jam/packages", json=simple_package(
                t.service_id, i.to_bytes(4, "little"), 10**6)).status_code

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(go, range(80)))
    assert codes == [201] * 80
    with srv.client(t.token) as c:
        ids = [p["id"] for p in c.get("/jam/packages", params={"limit": 500}).json()["items"]]
        pkgs = wait_final(c, ids, timeout=120)
        assert {p["status"] for p in pkgs} == {"applied"}
    assert "unhandled" not in srv.logs()
