"""Tenant isolation beyond status codes: a refused request leaves no trace, blob dedup is
invisible, listings default to the caller's services, `owner_is_account = false` works through
delegates, configured delegates survive restarts, and revocation bites on the next request.

Every test runs a real `jamhost serve` on SQLite and on PostgreSQL (`store_keys`).
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from jamhost.app.package_input import parse_package_json
from tests.conftest import Server, Tenant, make_tenant, simple_package

NO_LIMITS = {"rate_limit_per_minute": 0, "service_rate_limit_per_minute": 0,
             "account_rate_limit_per_minute": 0}


def blake(data: bytes) -> str:
    return "0x" + hashlib.blake2b(data, digest_size=32).hexdigest()


def package_bytes(service_id: int, code_hash: str, payload: bytes) -> tuple[bytes, str]:
    """The GP encoding and id the server computes for `simple_package(service_id, payload)`."""
    pkg, _ = parse_package_json(simple_package(service_id, payload),
                                lambda _sid: bytes.fromhex(code_hash[2:]))
    return pkg.encode(), "0x" + pkg.hash().hex()


def observe(srv: Server, *tenants: Tenant) -> dict[str, Any]:
    """Everything an operator can see of the tenants' services, accounts and objects."""
    out: dict[str, Any] = {}
    with srv.op() as op:
        for t in tenants:
            sid = t.service_id
            for path, params in ((f"/jam/services/{sid}", {}),
                                 (f"/jam/services/{sid}/quota", {}),
                                 (f"/jam/services/{sid}/delegates", {}),
                                 (f"/jam/services/{sid}/storage", {}),
                                 (f"/jam/accounts/{t.account_id}/tokens", {}),
                                 ("/jam/packages", {"service_id": sid, "limit": 500}),
                                 ("/jam/reports", {"service_id": sid, "limit": 500}),
                                 ("/jam/receipts", {"service_id": sid, "limit": 500})):
                resp = op.get(path, params=params)
                assert resp.status_code == 200, resp.text
                out[f"{path}?{params}"] = resp.json()
        out["services"] = op.get("/jam/services", params={"limit": 500}).json()
        out["packages"] = op.get("/jam/packages", params={"limit": 500}).json()
        out["roots"] = op.get("/system/status").json()["accumulator_roots"]
    return out


def refused(resp: Any, status: int, code: str) -> None:
    assert resp.status_code == status, (resp.request.method, resp.request.url, resp.text)
    assert resp.json() == {"error": resp.json()["error"], "code": code}


def test_denied_requests_change_nothing(server_factory, store_keys):
    srv = server_factory(**store_keys, **NO_LIMITS)
    a, b = make_tenant(srv, "alice", code=b"\x00\x01"), make_tenant(srv, "bob")
    reader = "reader-" + secrets.token_hex(16)
    with srv.client(a.token) as ca:
        assert ca.post("/jam/packages", json=simple_package(a.service_id, b"a0")).status_code == 201
        ro = ca.post(f"/jam/accounts/{a.account_id}/tokens",
                     json={"name": "ro", "scopes": ["read"]}).json()["token"]
        grant = ca.post(f"/jam/services/{a.service_id}/delegates",
                        json={"token": reader, "role": "reader"})
        assert grant.status_code == 201
    code_hash = observe(srv, a)[f"/jam/services/{a.service_id}?{{}}"]["code_hash"]
    before = observe(srv, a, b)

    blob = b"bob tries to park this in alice's service"
    raw, raw_id = package_bytes(a.service_id, code_hash, b"from bob, raw")
    _, json_id = package_bytes(a.service_id, code_hash, b"from bob, json")
    sid = a.service_id
    with srv.client(b.token) as cb:
        refused(cb.post("/jam/packages", json=simple_package(sid, b"from bob, json")),
                403, "jam_authz")
        refused(cb.post("/jam/packages", content=raw,
                        headers={"Content-Type": "application/octet-stream"}), 403, "jam_authz")
        refused(cb.put(f"/jam/preimages/{blake(blob)}", params={"service_id": sid},
                       content=blob), 403, "jam_authz")
        refused(cb.put(f"/jam/services/{sid}/code", content=b"\x09\x09"), 403, "jam_authz")
        refused(cb.post(f"/jam/services/{sid}/delegates", json={"token": b.token}),
                403, "jam_authz")
        refused(cb.post(f"/jam/services/{sid}/delegates", json={"accessor": b.accessor}),
                403, "jam_authz")
        refused(cb.delete(f"/jam/services/{sid}/delegates/1"), 403, "jam_authz")
        refused(cb.put(f"/jam/services/{sid}/quota", json={"pending_packages": 0}),
                403, "jam_authz")
        refused(cb.post(f"/jam/services/{sid}/credit", json={"amount": 5}), 403, "jam_authz")
        refused(cb.post(f"/jam/accounts/{a.account_id}/tokens", json={"name": "mine"}),
                403, "jam_authz")
        refused(cb.delete(f"/jam/accounts/{a.account_id}/tokens/{a.accessor}"),
                403, "jam_authz")
        refused(cb.post("/jam/services", json={"owner": a.account_id}), 403, "jam_authz")
        # Bob is still a stranger to Alice's service after all of that.
        refused(cb.get(f"/jam/services/{sid}"), 403, "jam_authz")
    with srv.client(reader) as cr:  # a reader delegate may not submit nor manage
        refused(cr.post("/jam/packages", json=simple_package(sid, b"from bob, json")),
                403, "jam_authz")
        refused(cr.put(f"/jam/preimages/{blake(blob)}", params={"service_id": sid},
                       content=blob), 403, "jam_authz")
        refused(cr.post(f"/jam/services/{sid}/delegates", json={"token": "x" * 20}),
                403, "jam_authz")
    with srv.client(ro) as c_ro:  # Alice's own token without `submit`/`manage`
        refused(c_ro.post("/jam/packages", content=raw,
                          headers={"Content-Type": "application/octet-stream"}),
                403, "jam_authz")
        refused(c_ro.put(f"/jam/services/{sid}/code", content=b"\x09"), 403, "jam_authz")
        refused(c_ro.post(f"/jam/accounts/{a.account_id}/tokens", json={}), 403, "jam_authz")
    with srv.client(a.token) as ca:  # tenants must name a service for a preimage
        refused(ca.put(f"/jam/preimages/{blake(blob)}", content=blob), 400, "jam_bad_request")

    assert observe(srv, a, b) == before
    with srv.op() as op:
        for pid in (raw_id, json_id):
            refused(op.get(f"/jam/packages/{pid}"), 404, "jam_not_found")
        refused(op.get(f"/jam/preimages/{blake(blob)}"), 404, "jam_not_found")
    with srv.client(a.token) as ca:
        assert ca.get(f"/jam/services/{sid}").status_code == 200  # Alice's token still works


def test_refused_for_quota_changes_nothing(server_factory, store_keys):
    srv = server_factory(**store_keys, **NO_LIMITS)
    a = make_tenant(srv, "alice")
    with srv.op() as op:
        assert op.put(f"/jam/services/{a.service_id}/quota", json={
            "pending_packages": 1, "storage_bytes": 100, "gas_per_hour": 10_000,
        }).status_code == 200
    with srv.client(a.token) as ca:
        assert ca.post("/jam/packages", json=simple_package(a.service_id, b"1")).status_code == 201
        assert ca.put(f"/jam/preimages/{blake(b'x' * 60)}", params={"service_id": a.service_id},
                      content=b"x" * 60).status_code == 201
    before = observe(srv, a)
    with srv.client(a.token) as ca:
        refused(ca.post("/jam/packages", json=simple_package(a.service_id, b"2")),
                409, "jam_pending_limit")
        big = b"y" * 41
        refused(ca.put(f"/jam/preimages/{blake(big)}", params={"service_id": a.service_id},
                       content=big), 409, "jam_storage_quota")
        gas = ca.post("/jam/packages", json=simple_package(a.service_id, b"3", gas=6_000))
        refused(gas, 409, "jam_gas_quota")
        assert int(gas.headers["retry-after"]) > 0
    assert observe(srv, a) == before
    with srv.op() as op:
        refused(op.get(f"/jam/preimages/{blake(b'y' * 41)}"), 404, "jam_not_found")


def test_blob_another_tenant_holds_is_answered_as_new(server_factory, store_keys):
    srv = server_factory(**store_keys, **NO_LIMITS)
    a, b, c = (make_tenant(srv, n) for n in ("alice", "bob", "carol"))
    shared, fresh = b"the same bytes in two tenants" * 10, b"bytes nobody had before" * 10
    with srv.client(a.token) as ca:
        put = ca.put(f"/jam/preimages/{blake(shared)}", params={"service_id": a.service_id},
                     content=shared, headers={"Content-Type": "text/plain"})
        assert put.status_code == 201
    usage = srv.op().get(f"/jam/services/{b.service_id}/quota").json()["usage"]["storage_bytes"]
    with srv.client(b.token) as cb:
        refused(cb.get(f"/jam/preimages/{blake(shared)}"), 404, "jam_not_found")
        answers = {}
        for data in (shared, fresh):
            resp = cb.put(f"/jam/preimages/{blake(data)}", params={"service_id": b.service_id},
                          content=data, headers={"Content-Type": "application/octet-stream"})
            body = resp.json()
            assert body.pop("created_at")
            assert body == {"hash": blake(data), "size": len(data),
                            "media_type": "application/octet-stream",
                            "service_id": b.service_id}
            answers[data] = (resp.status_code, sorted(resp.headers.keys()),
                             resp.headers["x-preimage-media-type"])
        assert answers[shared] == answers[fresh]
        assert answers[shared][0] == 201
        # Bob's copy is his own: his metadata, charged to his quota like any new blob.
        meta = cb.get(f"/jam/preimages/{blake(shared)}/meta").json()
        assert meta["service_id"] == b.service_id and meta["media_type"] != "text/plain"
        quota = cb.get(f"/jam/services/{b.service_id}/quota").json()
        assert quota["usage"]["storage_bytes"] == usage + len(shared) + len(fresh)
        assert cb.get(f"/jam/preimages/{blake(shared)}").content == shared
    with srv.client(a.token) as ca:  # Alice still sees her own row, not Bob's
        meta = ca.get(f"/jam/preimages/{blake(shared)}/meta").json()
        assert meta["service_id"] == a.service_id and meta["media_type"] == "text/plain"
        refused(ca.get(f"/jam/preimages/{blake(fresh)}"), 404, "jam_not_found")
    with srv.client(c.token) as cc:  # and a third tenant sees neither copy
        for data in (shared, fresh):
            refused(cc.get(f"/jam/preimages/{blake(data)}"), 404, "jam_not_found")
            assert cc.head(f"/jam/preimages/{blake(data)}").status_code == 404


def test_listings_default_to_callers_services(server_factory, store_keys):
    srv = server_factory(**store_keys, **NO_LIMITS)
    a, b = make_tenant(srv, "alice"), make_tenant(srv, "bob")
    with srv.client(a.token) as ca:
        a2 = ca.post("/jam/services", json={}).json()["service_id"]
    with srv.client(b.token) as cb:
        b2 = cb.post("/jam/services", json={}).json()["service_id"]
        # Bob lets Alice's token read (only) his second service.
        assert cb.post(f"/jam/services/{b2}/delegates",
                       json={"accessor": a.accessor, "role": "reader"}).status_code == 201
    mine = {a.service_id, a2, b2}
    for i, (token, sid) in enumerate([(a.token, a.service_id), (a.token, a2),
                                      (b.token, b.service_id), (b.token, b2)]):
        with srv.client(token) as c:
            assert c.post("/jam/packages", json=simple_package(sid, bytes([i]))).status_code == 201
    with srv.client(a.token) as ca:
        for path in ("/jam/services", "/jam/packages"):
            seen, cursor = [], None
            while True:  # page one item at a time: no page may leak a foreign item
                page = ca.get(path, params={"limit": 1, **({"cursor": cursor} if cursor else {})})
                assert page.status_code == 200, page.text
                seen += [item["service_id"] for item in page.json()["items"]]
                cursor = page.json()["next_cursor"]
                if not cursor:
                    break
            assert set(seen) == mine and len(seen) == 3, (path, seen)
        for path in ("/jam/reports", "/jam/receipts"):
            assert ca.get(path).status_code == 200
        refused(ca.get("/jam/packages", params={"service_id": b.service_id}), 403, "jam_authz")
        assert {p["service_id"] for p in ca.get("/jam/packages", params={"service_id": b2})
                .json()["items"]} == {b2}
        # Reading is all a reader delegation gives.
        refused(ca.post("/jam/packages", json=simple_package(b2, b"x")), 403, "jam_authz")
        me = ca.get("/jam/accounts/me").json()
        assert me["delegations"] == [{"service_id": b2, "role": "reader"}]
        status = ca.get("/system/status").json()
        assert "accumulator_roots" not in status


def test_owner_is_account_false_acts_through_delegates(server_factory, store_keys):
    srv = server_factory(**store_keys, **NO_LIMITS, owner_is_account=False)
    with srv.op() as op:
        acc = op.post("/jam/accounts", json={"name": "alice"}).json()["id"]
        tok = op.post(f"/jam/accounts/{acc}/tokens", json={"name": "main"}).json()
        refused(op.post("/jam/services", json={}), 400, "jam_bad_request")  # owner required
        labelled = op.post("/jam/services", json={"owner": "team-blue@example.com"})
        assert labelled.status_code == 201 and labelled.json()["owner"] == "team-blue@example.com"
        sid = labelled.json()["service_id"]
        # An owner that happens to be an account id is still only a label.
        named = op.post("/jam/services", json={"owner": acc}).json()["service_id"]
    with srv.client(tok["token"]) as c:
        refused(c.post("/jam/services", json={}), 403, "jam_authz")
        refused(c.post("/jam/services", json={"owner": acc}), 403, "jam_authz")
        for s in (sid, named):
            refused(c.get(f"/jam/services/{s}"), 403, "jam_authz")
        assert c.get("/jam/services").json()["items"] == []
    raw = "raw-reader-" + secrets.token_hex(16)
    with srv.op() as op:
        assert op.post(f"/jam/services/{sid}/delegates",
                       json={"accessor": tok["accessor"], "role": "submitter"}).status_code == 201
        assert op.post(f"/jam/services/{sid}/delegates",
                       json={"token": raw, "role": "reader"}).status_code == 201
    with srv.client(tok["token"]) as c:
        assert c.get(f"/jam/services/{sid}").status_code == 200
        assert c.post("/jam/packages", json=simple_package(sid)).status_code == 201
        assert [s["service_id"] for s in c.get("/jam/services").json()["items"]] == [sid]
        refused(c.get(f"/jam/services/{named}"), 403, "jam_authz")
        # Delegates never manage: code and delegates stay with operators.
        refused(c.put(f"/jam/services/{sid}/code", content=b"\x01"), 403, "jam_authz")
        refused(c.post(f"/jam/services/{sid}/delegates", json={"token": "y" * 20}), 403,
                "jam_authz")
        refused(c.get(f"/jam/services/{sid}/delegates"), 403, "jam_authz")
    with srv.client(raw) as c:
        assert c.get(f"/jam/services/{sid}").status_code == 200
        assert len(c.get("/jam/packages").json()["items"]) == 1
        refused(c.post("/jam/packages", json=simple_package(sid, b"2")), 403, "jam_authz")
        refused(c.get(f"/jam/services/{named}"), 403, "jam_authz")
        me = c.get("/jam/accounts/me").json()
        assert me["kind"] == "delegate" and me["account"] is None


def test_seeded_delegates_work_after_restart(server_factory, store_keys):
    first = server_factory(**store_keys, **NO_LIMITS)
    a, b = make_tenant(first, "alice"), make_tenant(first, "bob")
    first.stop()
    seeded, orphan = "seeded-" + secrets.token_hex(16), "orphan-" + secrets.token_hex(16)
    config = {**store_keys, **NO_LIMITS, "service_delegates": {
        str(a.service_id): [seeded], "3999999999": [orphan]}}
    for _restart in range(2):
        srv = server_factory(**config)
        with srv.client(seeded) as c:
            assert c.get(f"/jam/services/{a.service_id}").status_code == 200
            assert c.post("/jam/packages", json=simple_package(a.service_id, bytes([_restart]))
                          ).status_code == 201
            refused(c.get(f"/jam/services/{b.service_id}"), 403, "jam_authz")
            refused(c.put(f"/jam/services/{a.service_id}/code", content=b"\x01"), 403,
                    "jam_authz")
            assert c.get("/jam/accounts/me").json()["delegations"] == [
                {"service_id": a.service_id, "role": "submitter"}]
        with srv.client(orphan) as c:  # a seed for a service that does not exist grants nothing
            refused(c.get("/system/status"), 401, "jam_unauthenticated")
        with srv.client(a.token) as c:  # seeding is idempotent: one row however many starts
            rows = c.get(f"/jam/services/{a.service_id}/delegates").json()["items"]
            assert [(d["role"], d["created_by"]) for d in rows] == [("submitter", "config")]
            assert seeded not in c.get(f"/jam/services/{a.service_id}/delegates").text
        srv.stop()


def test_revocation_and_delegate_removal_bite_on_the_next_request(server_factory, store_keys):
    one = server_factory(**store_keys, **NO_LIMITS)
    two = server_factory(**store_keys, **NO_LIMITS)  # a second replica on the same store
    a, c = make_tenant(one, "alice"), make_tenant(one, "carol")
    raw = "raw-" + secrets.token_hex(16)
    with one.client(a.token) as ca:
        extra = ca.post(f"/jam/accounts/{a.account_id}/tokens", json={"name": "extra"}).json()
        grant_raw = ca.post(f"/jam/services/{a.service_id}/delegates",
                            json={"token": raw, "role": "submitter"}).json()
        grant_c = ca.post(f"/jam/services/{a.service_id}/delegates",
                          json={"accessor": c.accessor, "role": "reader"}).json()
    path = f"/jam/services/{a.service_id}"
    for srv in (one, two):
        for token in (extra["token"], raw, c.token):
            with srv.client(token) as x:
                assert x.get(path).status_code == 200
    with one.client(a.token) as ca:
        assert ca.delete(f"/jam/accounts/{a.account_id}/tokens/{extra['accessor']}"
                         ).status_code == 204
        assert ca.delete(f"{path}/delegates/{grant_raw['id']}").status_code == 204
        assert ca.delete(f"{path}/delegates/{grant_c['id']}").status_code == 204
        # Revoking twice: the token is gone, so the second is a 404.
        refused(ca.delete(f"/jam/accounts/{a.account_id}/tokens/{extra['accessor']}"),
                404, "jam_not_found")
    for srv in (two, one):
        with srv.client(extra["token"]) as x:
            refused(x.get(path), 401, "jam_unauthenticated")
        with srv.client(raw) as x:  # a raw token with no delegation left is no token at all
            refused(x.get(path), 401, "jam_unauthenticated")
        with srv.client(c.token) as x:  # Carol's token is valid, just not for this service
            refused(x.get(path), 403, "jam_authz")
            assert x.get(f"/jam/services/{c.service_id}").status_code == 200
    # A role change is immediate too: re-granting Carol as a submitter lets her submit.
    with one.client(a.token) as ca:
        assert ca.post(f"{path}/delegates", json={"accessor": c.accessor, "role": "reader"}
                       ).status_code == 201
    with two.client(c.token) as x:
        refused(x.post("/jam/packages", json=simple_package(a.service_id)), 403, "jam_authz")
    with one.client(a.token) as ca:
        assert ca.post(f"{path}/delegates", json={"accessor": c.accessor, "role": "submitter"}
                       ).status_code == 201
    with two.client(c.token) as x:
        assert x.post("/jam/packages", json=simple_package(a.service_id)).status_code == 201
