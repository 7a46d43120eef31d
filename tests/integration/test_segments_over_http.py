"""Exported segments and imports, and the operator's runtime-wide authorizer, over HTTP on a
real `jamhost serve` (SQLite and PostgreSQL, one server per store kind for the module).

The service is `jamhost.examples.segments`, built with the project's assembler: refine
exports two segments, or reads its imports through `fetch` (selectors 5 and 6) and returns
their first octets. The server's clock is moved by the test through a sitecustomize on the
server's PYTHONPATH that adds the seconds written in a file to time.time and time.time_ns
(nothing of jamhost is patched), so retention runs out without waiting.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from jamhost.domain.types import ImportSpec, RefineContext, WorkItem, WorkPackage, WorkReport
from jamhost.examples import counter
from jamhost.examples import segments as example
from tests.conftest import PG_ADMIN_DSN, Server, _pg_admin, make_tenant, start_server
from tests.integration.test_pipeline import submit, wait_final

W_G = 4104
RETENTION = 3_600
AUTHORIZER_SERVICE = 65_536  # the operator's first service: created before any tenant's
UNLISTED_SERVICE = 65_537  # the same code, on an operator service not in shared_authorizers
MISSING_SERVICE = 4_000_000_000
CODE = example.build()
NULL = example.null_authorizer()
BY_HASH = 1 << 15
CLOCK = """import os, time
_path = os.environ["SEGMENTS_TEST_CLOCK"]
_time, _time_ns = time.time, time.time_ns


def _shift():
    try:
        with open(_path) as f:
            return float(f.read() or 0)
    except OSError:
        return 0.0


time.time = lambda: _time() + _shift()
time.time_ns = lambda: _time_ns() + int(_shift() * 1e9)
"""


def h(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=32).digest()


def hx(data: bytes) -> str:
    return "0x" + data.hex()


class Deployment:
    def __init__(self, server: Server, clock: Path) -> None:
        self.server, self.clock = server, clock

    def shift(self, seconds: float) -> None:
        self.clock.write_text(str(seconds))


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def deployment(request: pytest.FixtureRequest, tmp_path_factory) -> Iterator[Deployment]:
    tmp = tmp_path_factory.mktemp(f"segments-{request.param}")
    site = tmp / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(CLOCK)
    clock = tmp / "clock"
    clock.write_text("0")
    keys: dict[str, object] = {"workers": 1, "rate_limit_per_minute": 0,
                               "service_rate_limit_per_minute": 0,
                               "account_rate_limit_per_minute": 0,
                               "segment_retention_seconds": RETENTION,
                               "shared_authorizers": [AUTHORIZER_SERVICE]}
    name = None
    if request.param == "postgres":
        name = f"jamhost_t_{uuid.uuid4().hex[:12]}"
        _pg_admin(f'CREATE DATABASE "{name}"')
        keys.update(store="postgres", pg_dsn=f"{PG_ADMIN_DSN.rsplit('/', 1)[0]}/{name}")
    server = start_server(tmp / "srv", extra_env={"PYTHONPATH": str(site),
                                                  "SEGMENTS_TEST_CLOCK": str(clock)}, **keys)
    try:
        install_authorizers(server)
        yield Deployment(server, clock)
    finally:
        server.stop()
        if name is not None:
            _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def install_authorizers(server: Server) -> None:
    """The operator's own account and two services holding the null authorizer's code; only
    the first is listed in shared_authorizers."""
    with server.op() as op:
        acc = op.post("/jam/accounts", json={"name": "operator"}).json()["id"]
        for expected in (AUTHORIZER_SERVICE, UNLISTED_SERVICE):
            svc = op.post("/jam/services", json={"owner": acc})
            assert svc.status_code == 201 and svc.json()["service_id"] == expected, svc.text
            put = op.put(f"/jam/preimages/{hx(h(NULL))}", params={"service_id": expected},
                         content=NULL)
            assert put.status_code == 201, put.text


def usage(server: Server, token: str, service_id: int) -> int:
    with server.client(token) as c:
        return c.get(f"/jam/services/{service_id}/quota").json()["usage"]["storage_bytes"]


def export_package(service_id: int, text: bytes) -> dict[str, object]:
    return {"service_id": service_id, "items": [{
        "payload": hx(b"\x01" + text), "refine_gas_limit": 10**6,
        "accumulate_gas_limit": 1_000, "export_count": 2}]}


def import_package(service_id: int, imports: list[dict[str, object]],
                   read: bytes = b"\x06\x00\x00") -> dict[str, object]:
    return {"service_id": service_id, "items": [{
        "payload": hx(read), "refine_gas_limit": 10**6, "accumulate_gas_limit": 1_000,
        "import_segments": imports}]}


def report_of(c, package_id: str) -> WorkReport:  # type: ignore[no-untyped-def]
    r = c.get(f"/jam/packages/{package_id}/report")
    assert r.status_code == 200, r.text
    return WorkReport.from_json(r.json()["report"])


def test_exports_imports_tenancy_quota_and_retention(deployment: Deployment) -> None:
    srv = deployment.server
    alice = make_tenant(srv, "alice", code=CODE)
    bob = make_tenant(srv, "bob", code=CODE)
    before = usage(srv, alice.token, alice.service_id)

    # Package 1 of Alice exports two segments; they count in her service's storage usage:
    # two segments and one paged-proof page, W_G octets each.
    with srv.client(alice.token) as c:
        first = submit(c, export_package(alice.service_id, b"alice's data"))
        assert wait_final(c, [first])[0]["status"] == "applied"
        exported = report_of(c, first).package_spec
    root = exported.exports_root
    assert exported.exports_count == 2 and exported.hash == bytes.fromhex(first[2:])
    assert usage(srv, alice.token, alice.service_id) == before + 3 * W_G
    segment0 = b"alice's data".ljust(W_G, b"\0")
    segment1 = b"lice's data".ljust(W_G, b"\0")

    # Package 2 of Alice imports segment 1 by its root and segment 0 by package 1's hash,
    # sent as GP bytes so the test knows E(p); its refine reads them through fetch 6 (its
    # own item) and fetch 5 (item 0's, from a second item).
    context = RefineContext(bytes(32), bytes(32), bytes(32), bytes(32), 0)
    specs = (ImportSpec(root, 1), ImportSpec(exported.hash, 0 | BY_HASH))
    second = WorkPackage(alice.service_id, bytes(32), context, b"", b"", (
        WorkItem(alice.service_id, h(CODE), 10**6, 1_000, 0, b"\x06\x02\x0c",
                 import_segments=specs),
        WorkItem(alice.service_id, h(CODE), 10**6, 1_000, 0, b"\x05\x02\x05")))
    with srv.client(alice.token) as c:
        r = c.post("/jam/packages", content=second.encode(),
                   headers={"Content-Type": "application/octet-stream"})
        assert r.status_code == 201, r.text
        pid = r.json()["id"]
        assert wait_final(c, [pid])[0]["status"] == "applied"
        report = report_of(c, pid)
    own, other = report.results
    assert own.result.output == segment1[:12] + segment0[:12]
    assert other.result.output == segment1[:5] + segment0[:5]
    assert own.refine_load.imports == 2
    assert [(x.work_package_hash, x.segment_tree_root) for x in report.segment_root_lookup] \
        == [(exported.hash, root)]
    # b = E(p) ++ ī ++ j̄: two segments, then two justifications ↕J_0 (a tree of two: one
    # hash each, the other segment's leaf).
    leaf = [h(b"leaf" + s) for s in (segment0, segment1)]
    assert h(b"node" + leaf[0] + leaf[1]) == root
    assert report.package_spec.length == (len(second.encode()) + 2 * W_G
                                          + 2 * (1 + 32))

    # Bob naming Alice's segments is answered exactly like naming ones that do not exist.
    made_up = h(b"no such tree")
    with srv.client(bob.token) as c:
        answers = [c.post("/jam/packages", json=import_package(bob.service_id, imports))
                   for imports in ([{"segments_root": hx(root), "index": 0}],
                                   [{"segments_root": hx(made_up), "index": 0}],
                                   [{"package_hash": first, "index": 0}],
                                   [{"package_hash": hx(made_up), "index": 0}],
                                   [{"segments_root": hx(root), "index": 5}])]
    assert {a.status_code for a in answers} == {400}
    assert all(a.json() == answers[0].json() for a in answers), [a.text for a in answers]
    assert answers[0].json()["code"] == "jam_bad_request"
    assert usage(srv, bob.token, bob.service_id) == len(CODE)

    # A package whose exports do not fit the quota fails; its report stands, nothing is kept.
    carol = make_tenant(srv, "carol", code=CODE)
    with srv.op() as op:
        q = op.put(f"/jam/services/{carol.service_id}/quota",
                   json={"storage_bytes": len(CODE) + 3 * W_G - 1})
        assert q.status_code == 200, q.text
    with srv.client(carol.token) as c:
        big = submit(c, export_package(carol.service_id, b"carol's"))
        done = wait_final(c, [big])[0]
        assert done["status"] == "failed"
        assert done["failure_reason"] == "the exported segments would exceed the storage quota"
        carol_root = report_of(c, big).package_spec.exports_root
        refused = c.post("/jam/packages", json=import_package(
            carol.service_id, [{"segments_root": hx(carol_root), "index": 0}]))
        assert refused.status_code == 400 and refused.json() == answers[0].json()
    assert usage(srv, carol.token, carol.service_id) == len(CODE)

    # After the retention period the import is refused like a missing one and the space is
    # given back (the worker sweeps before the next package it runs).
    deployment.shift(RETENTION + 60)
    with srv.client(alice.token) as c:
        late = c.post("/jam/packages", json=import_package(
            alice.service_id, [{"segments_root": hx(root), "index": 0}]))
        assert late.status_code == 400 and late.json() == answers[0].json()
        plain = submit(c, import_package(alice.service_id, []))
        assert wait_final(c, [plain])[0]["status"] == "applied"
    assert usage(srv, alice.token, alice.service_id) == before


def with_authorizer(service_id: int, host: int, tag: bytes) -> dict[str, object]:
    pkg = import_package(service_id, [], b"\x06\x00\x00" + tag)
    pkg["authorizer"] = {"service_id": host, "code_hash": hx(h(NULL))}
    return pkg


def test_runtime_wide_null_authorizer(deployment: Deployment) -> None:
    srv = deployment.server
    dave = make_tenant(srv, "dave", code=counter.build())
    with srv.client(dave.token) as c:
        pid = submit(c, with_authorizer(dave.service_id, AUTHORIZER_SERVICE, b"a"))
        assert wait_final(c, [pid])[0]["status"] == "applied"
        report = report_of(c, pid)
        assert report.auth_output == b"" and report.auth_gas_used > 0
        assert report.authorizer_hash == h(h(NULL))
        # The same code on an operator service the operator did not list: refused, like an
        # authorizer on a service that does not exist.
        unlisted = c.post("/jam/packages",
                          json=with_authorizer(dave.service_id, UNLISTED_SERVICE, b"b"))
        missing = c.post("/jam/packages",
                         json=with_authorizer(dave.service_id, MISSING_SERVICE, b"b"))
        assert unlisted.status_code == missing.status_code == 400
        assert unlisted.json() == missing.json()
        # The authorizer's service itself stays the operator's: missing for Dave elsewhere.
        seen = c.get(f"/jam/services/{AUTHORIZER_SERVICE}")
        nothing = c.get(f"/jam/services/{MISSING_SERVICE}")
        assert seen.status_code == nothing.status_code and seen.json() == nothing.json()
        meta = c.get(f"/jam/preimages/{hx(h(NULL))}/meta")
        assert meta.status_code == 404


def test_gp_limits_and_malformed_imports_at_submission(deployment: Deployment) -> None:
    srv = deployment.server
    erin = make_tenant(srv, "erin", code=CODE)
    sid = erin.service_id
    root = {"segments_root": hx(h(b"r")), "index": 0}
    too_many_exports = export_package(sid, b"x")
    too_many_exports["items"][0]["export_count"] = 3073  # type: ignore[index]
    cases = {
        "W_X": too_many_exports,
        "W_M": import_package(sid, [root] * 3073),
        "more than 8": import_package(sid, [{"package_hash": hx(h(b"%d" % i)), "index": 0}
                                            for i in range(9)]),
        "import_segments[0] must be": import_package(
            sid, [{**root, "package_hash": hx(h(b"p"))}]),
        "index must be": import_package(sid, [{"segments_root": hx(h(b"r")), "index": 2**15}]),
    }
    with srv.client(erin.token) as c:
        for expected, body in cases.items():
            r = c.post("/jam/packages", json=body)
            assert r.status_code == 400, (expected, r.text)
            assert r.json()["code"] == "jam_bad_request" and expected in r.json()["error"]
        assert c.get("/jam/packages", params={"service_id": sid}).json()["items"] == []
