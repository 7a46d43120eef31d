"""Core API flows against a real server process, on SQLite and on PostgreSQL."""

from __future__ import annotations

import hashlib

from tests.conftest import make_tenant, simple_package


def blake(data: bytes) -> str:
    return "0x" + hashlib.blake2b(data, digest_size=32).hexdigest()


def test_health_ready_status(server_factory, store_keys):
    srv = server_factory(**store_keys)
    with srv.client() as anon:
        assert anon.get("/healthz").json() == {"status": "ok"}
        ready = anon.get("/readyz")
        assert ready.status_code == 200 and ready.json()["store"] == store_keys["store"]
        denied = anon.get("/system/status")
        assert denied.status_code == 401
        assert denied.json()["code"] == "jam_unauthenticated"
        assert denied.headers["www-authenticate"] == "Bearer"
    with srv.op() as op:
        st = op.get("/system/status").json()
        assert st["store"] == store_keys["store"]
        assert st["authz_enabled"] is True and st["owner_is_account"] is True
        assert "accumulator_roots" in st


def test_package_submit_idempotent_get_list(server_factory, store_keys):
    srv = server_factory(**store_keys)
    t = make_tenant(srv, "alice")
    with srv.client(t.token) as c:
        first = c.post("/jam/packages", json=simple_package(t.service_id, b"abc"))
        assert first.status_code == 201, first.text
        pkg = first.json()
        again = c.post("/jam/packages", json=simple_package(t.service_id, b"abc"))
        assert again.status_code == 200 and again.json()["id"] == pkg["id"]
        # The id is blake2b-256 of the GP encoding, which the codec CLI reproduces.
        from jamhost.domain.types.work_package import WorkPackage

        wp = WorkPackage.from_json(pkg["package"])
        assert blake(wp.encode()) == pkg["id"]
        # The same bytes as octet-stream are the same package.
        raw = c.post("/jam/packages", content=wp.encode(),
                     headers={"Content-Type": "application/octet-stream"})
        assert raw.status_code == 200 and raw.json()["id"] == pkg["id"]
        got = c.get(f"/jam/packages/{pkg['id'][2:]}")
        assert got.status_code == 200 and got.json()["status"] == "pending"
        for i in range(5):
            assert c.post("/jam/packages", json=simple_package(t.service_id, bytes([i]))
                          ).status_code == 201
        seen, cursor = [], None
        while True:
            params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
            page = c.get("/jam/packages", params=params).json()
            seen += [p["id"] for p in page["items"]]
            cursor = page["next_cursor"]
            if not cursor:
                break
        assert len(seen) == 6 == len(set(seen))
        only = c.get("/jam/packages", params={"service_id": t.service_id, "status": "applied"})
        assert only.json()["items"] == []


def test_preimage_roundtrip(server_factory, store_keys):
    srv = server_factory(**store_keys)
    t = make_tenant(srv, "alice")
    data = b"x" * 200_000
    h = blake(data)
    with srv.client(t.token) as c:
        put = c.put(f"/jam/preimages/{h}", params={"service_id": t.service_id}, content=data,
                    headers={"Content-Type": "text/plain"})
        assert put.status_code == 201, put.text
        assert put.json() | {"created_at": None} == {
            "hash": h, "size": len(data), "media_type": "text/plain",
            "service_id": t.service_id, "created_at": None}
        got = c.get(f"/jam/preimages/{h}")
        assert got.status_code == 200 and got.content == data
        assert got.headers["x-preimage-hash"] == h
        assert got.headers["x-preimage-size"] == str(len(data))
        assert got.headers["x-preimage-media-type"] == "text/plain"
        head = c.head(f"/jam/preimages/{h[2:]}")
        assert head.status_code == 200 and head.headers["x-preimage-size"] == str(len(data))
        assert c.get(f"/jam/preimages/{h}/meta").json()["size"] == len(data)
        bad = c.put(f"/jam/preimages/{blake(b'other')}", params={"service_id": t.service_id},
                    content=data)
        assert bad.status_code == 400 and bad.json()["code"] == "jam_hash_mismatch"
        assert c.get(f"/jam/preimages/{blake(b'other')}").status_code == 404
        quota = c.get(f"/jam/services/{t.service_id}/quota").json()
        assert quota["usage"]["storage_bytes"] == len(data)


def test_tokens_revoke_and_scopes(server_factory, store_keys):
    srv = server_factory(**store_keys)
    t = make_tenant(srv, "alice")
    with srv.client(t.token) as c:
        ro = c.post(f"/jam/accounts/{t.account_id}/tokens",
                    json={"name": "ro", "scopes": ["read"]})
        assert ro.status_code == 201
        ro_token = ro.json()["token"]
        assert ro_token.startswith("jam_") and ro.json()["scopes"] == ["read"]
        listed = c.get(f"/jam/accounts/{t.account_id}/tokens").json()["items"]
        assert {x["accessor"] for x in listed} == {t.accessor, ro.json()["accessor"]}
        assert all("token" not in x for x in listed)
        assert ro_token not in c.get(f"/jam/accounts/{t.account_id}/tokens").text
    with srv.client(ro_token) as r:
        assert r.get(f"/jam/services/{t.service_id}").status_code == 200
        sub = r.post("/jam/packages", json=simple_package(t.service_id))
        assert sub.status_code == 403 and sub.json()["code"] == "jam_authz"
    with srv.client(t.token) as c:
        gone = c.delete(f"/jam/accounts/{t.account_id}/tokens/{ro.json()['accessor']}")
        assert gone.status_code == 204
    with srv.client(ro_token) as r:
        assert r.get(f"/jam/services/{t.service_id}").status_code == 401


def test_service_code_upgrade_and_storage(server_factory, store_keys):
    srv = server_factory(**store_keys)
    t = make_tenant(srv, "alice", code=b"\x00\x01\x02")
    with srv.client(t.token) as c:
        svc = c.get(f"/jam/services/{t.service_id}").json()
        assert svc["code_hash"] == blake(b"\x00\x01\x02")
        up = c.put(f"/jam/services/{t.service_id}/code", content=b"\x09\x09",
                   headers={"Content-Type": "application/octet-stream"})
        assert up.status_code == 200 and up.json()["code_hash"] == blake(b"\x09\x09")
        assert c.get(f"/jam/services/{t.service_id}/storage/0x01").status_code == 404
        assert c.get(f"/jam/services/{t.service_id}/storage").json() == {
            "items": [], "next_cursor": None}
