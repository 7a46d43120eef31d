"""SPEC §6.4: an acknowledged package or preimage survives `kill -9` of every process.

On SQLite and on PostgreSQL: a `jamhost serve` (with an in-process worker) and a `jamhost
worker` process take many concurrent package submissions and preimage uploads; both are killed
with SIGKILL in the middle. After a restart every acknowledged (200/201) package and preimage is
there exactly once, nothing is half-written (a stored preimage hashes to its id, a stored
package to its id), re-sending everything is harmless (200 for packages that exist, the same
metadata for preimages), and a restarted worker applies every package exactly once (the counter
example counts them; the receipt chain has two entries per package).
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections.abc import Callable

import httpx

from jamhost.examples import counter
from tests.conftest import Server, make_tenant, simple_package, start_server
from tests.integration.test_pipeline import chain_holds, wait_final

LEASE = {"JAMHOST_WORKER_LEASE_SECONDS": "2"}
THREADS = 6
ACKS_BEFORE_KILL = 40


def blake(data: bytes) -> str:
    return "0x" + hashlib.blake2b(data, digest_size=32).hexdigest()


class Load:
    """Threads that submit packages and upload preimages until told to stop; every request
    is remembered, with whether it was acknowledged."""

    def __init__(self, srv: Server, token: str, service_id: int) -> None:
        self.srv, self.token, self.sid = srv, token, service_id
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.attempts: list[dict[str, object]] = []  # every package JSON sent
        self.acked_packages: dict[str, dict[str, object]] = {}  # id -> JSON
        self.preimages: dict[str, bytes] = {}  # hash -> body sent
        self.acked_preimages: set[str] = set()
        # Refusals seen by the threads, checked by the test itself: an assert inside a thread
        # would only print a warning.
        self.server_errors: list[str] = []
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True)
                        for i in range(THREADS)]

    def acks(self) -> int:
        with self.lock:
            return len(self.acked_packages) + len(self.acked_preimages)

    def _run(self, n: int) -> None:
        i = 0
        with httpx.Client(base_url=self.srv.url, timeout=30,
                          headers={"Authorization": f"Bearer {self.token}"}) as c:
            while not self.stop.is_set():
                i += 1
                if i % 2:
                    self._package(c, n, i)
                else:
                    self._preimage(c)

    def _package(self, c: httpx.Client, n: int, i: int) -> None:
        pkg = simple_package(self.sid, n.to_bytes(2, "little") + i.to_bytes(4, "little"),
                             10**6)
        with self.lock:
            self.attempts.append(pkg)
        try:
            r = c.post("/jam/packages", json=pkg)
        except httpx.HTTPError:
            return  # the server died under it: unacknowledged
        if r.status_code in (200, 201):
            with self.lock:
                self.acked_packages[r.json()["id"]] = pkg
        else:
            self._refused(r)

    def _refused(self, r: httpx.Response) -> None:
        if r.status_code >= 500:
            with self.lock:
                self.server_errors.append(f"{r.status_code} {r.request.url.path}: {r.text}")

    def _preimage(self, c: httpx.Client) -> None:
        body = secrets.token_bytes(1 + secrets.randbelow(50_000))
        h = blake(body)
        with self.lock:
            self.preimages[h] = body
        try:
            r = c.put(f"/jam/preimages/{h}", content=body, params={"service_id": self.sid})
        except httpx.HTTPError:
            return
        if r.status_code in (200, 201):
            with self.lock:
                self.acked_preimages.add(h)
        else:
            self._refused(r)


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def all_packages(c: httpx.Client, sid: int) -> list[dict[str, object]]:
    items: list[dict[str, object]] = []
    cursor = None
    while True:
        params = {"service_id": sid, "limit": 500, **({"cursor": cursor} if cursor else {})}
        page = c.get("/jam/packages", params=params)
        assert page.status_code == 200, page.text
        items += page.json()["items"]
        cursor = page.json()["next_cursor"]
        if not cursor:
            return items


def test_kill_9_loses_no_acknowledged_write(tmp_path, store_keys):
    keys = dict(rate_limit_per_minute=0, service_rate_limit_per_minute=0, **store_keys)
    srv = start_server(tmp_path / "a", workers=1, extra_env=LEASE, **keys)
    worker = start_server(tmp_path / "w1", command="worker", extra_env=LEASE, **keys)
    try:
        t = make_tenant(srv, "alice", code=counter.build())
        with srv.op() as op:
            r = op.put(f"/jam/services/{t.service_id}/quota", json={"pending_packages": 100_000})
            assert r.status_code == 200, r.text
        load = Load(srv, t.token, t.service_id)
        for th in load.threads:
            th.start()
        wait_for(lambda: load.acks() >= ACKS_BEFORE_KILL, 120, "acknowledged writes")
        # kill -9 every process while the threads are still sending
        worker.stop(sig_kill=True)
        srv.stop(sig_kill=True)
    finally:
        if "load" in locals():
            load.stop.set()
            for th in load.threads:
                th.join(60)
        worker.stop(sig_kill=True)
        srv.stop(sig_kill=True)
    assert load.acked_packages and load.acked_preimages
    assert not load.server_errors, load.server_errors[:3]

    # The restarted server's in-process worker takes over the claims of the dead processes
    # (their leases were 2 s) while the checks below run.
    srv2 = start_server(tmp_path / "b", workers=1, extra_env=LEASE, **keys)
    try:
        with srv2.client(t.token) as c:
            before = [p["id"] for p in all_packages(c, t.service_id)]
            assert len(before) == len(set(before)), "a package is listed twice"
            lost = set(load.acked_packages) - set(before)
            assert not lost, f"acknowledged packages lost: {lost}"
            for pid in load.acked_packages:
                r = c.get(f"/jam/packages/{pid}")
                assert r.status_code == 200 and r.json()["id"] == pid, r.text
            for h, body in load.preimages.items():
                r = c.get(f"/jam/preimages/{h}")
                if h in load.acked_preimages:
                    assert r.status_code == 200, f"acknowledged preimage {h} lost: {r.text}"
                if r.status_code == 200:  # acknowledged or not: never half-written
                    assert blake(r.content) == h and r.content == body
                    meta = c.get(f"/jam/preimages/{h}/meta").json()
                    assert meta["size"] == len(body)
                else:
                    assert r.status_code == 404, r.text
            # Re-sending everything is harmless: a package answers 200 exactly when it was
            # stored (acknowledged ones always), 201 when it was not; the ids are the same.
            resent: set[str] = set()
            for pkg in load.attempts:
                r = c.post("/jam/packages", json=pkg)
                assert r.status_code in (200, 201), r.text
                pid = r.json()["id"]
                assert (r.status_code == 200) == (pid in before), (pid, r.status_code)
                if pid in load.acked_packages:
                    assert load.acked_packages[pid] == pkg
                resent.add(pid)
            assert set(before) <= resent, "a stored package nobody sent"
            for h, body in load.preimages.items():
                r = c.put(f"/jam/preimages/{h}", content=body,
                          params={"service_id": t.service_id})
                assert r.status_code in (200, 201), r.text
                assert r.json()["size"] == len(body)
                assert blake(c.get(f"/jam/preimages/{h}").content) == h
            ids = [p["id"] for p in all_packages(c, t.service_id)]
            assert len(ids) == len(set(ids)) and set(ids) == resent
        with srv2.client(t.token) as c:
            final = wait_final(c, ids, timeout=240)
            assert {p["status"] for p in final} == {"applied"}, {p["status"] for p in final}
            items, _root = chain_holds(c, t.service_id)
            assert len(items) == 2 * len(ids)
            applied = [r["hash"] for r in items if r["entry_type"] == "package"]
            assert sorted(applied) == sorted(ids)
            value = c.get(f"/jam/services/{t.service_id}/storage/0x{b'count'.hex()}").json()
            assert value["value"] == "0x" + len(ids).to_bytes(8, "little").hex()
            usage = c.get(f"/jam/services/{t.service_id}/quota").json()["usage"]
            assert usage["pending_packages"] == 0
    finally:
        srv2.stop()
    assert "Traceback" not in srv2.logs()

