"""Ψ_I over HTTP: a tenant's own authorizer (a preimage of its service) authorizes a package
and its trace lands in the report; a panicking authorizer fails the package; another
tenant's authorizer is refused at submission exactly like a missing one."""

from __future__ import annotations

from jamhost.domain.hashing import blake2b_256
from jamhost.domain.types.work_report import WorkReport
from jamhost.examples import counter, token_authorizer
from tests.conftest import make_tenant, simple_package
from tests.integration.test_pipeline import submit, wait_final

AUTH = token_authorizer.build()
AUTH_HASH = "0x" + blake2b_256(AUTH).hex()


def with_authorizer(service_id: int, token: bytes, host: int, code_hash: str = AUTH_HASH):
    pkg = simple_package(service_id, b"\x07", 10**6)
    pkg["authorization"] = "0x" + token.hex()
    pkg["authorizer"] = {"service_id": host, "code_hash": code_hash, "config": "0x01"}
    return pkg


def test_own_authorizer_authorizes_and_foreign_one_is_refused_like_missing(
    server_factory, store_keys
):
    srv = server_factory(workers=1, **store_keys)
    alice = make_tenant(srv, "alice", code=counter.build())
    bob = make_tenant(srv, "bob", code=counter.build())
    with srv.client(alice.token) as c:
        put = c.put(f"/jam/preimages/{AUTH_HASH}", params={"service_id": alice.service_id},
                    content=AUTH)
        assert put.status_code == 201, put.text
        ok = submit(c, with_authorizer(alice.service_id, b"alice-token", alice.service_id))
        refused = submit(c, with_authorizer(alice.service_id, b"", alice.service_id))
        done = {p["id"]: p for p in wait_final(c, [ok, refused])}
        assert done[ok]["status"] == "applied"
        report = WorkReport.from_json(c.get(f"/jam/packages/{ok}/report").json()["report"])
        assert report.auth_output == b"alice-token"
        assert report.auth_gas_used > 0
        assert report.authorizer_hash == blake2b_256(bytes.fromhex(AUTH_HASH[2:]) + b"\x01")
        assert done[refused]["status"] == "failed"
        assert "authorizer" in done[refused]["failure_reason"]
        assert c.get(f"/jam/packages/{refused}/report").status_code == 404

    with srv.client(bob.token) as c:
        # Bob's own service has no such preimage; Alice's service does but is not Bob's.
        missing = c.post("/jam/packages",
                         json=with_authorizer(bob.service_id, b"bob", bob.service_id))
        foreign = c.post("/jam/packages",
                         json=with_authorizer(bob.service_id, b"bob", alice.service_id))
        assert missing.status_code == foreign.status_code == 400
        assert missing.json() == foreign.json()
        assert foreign.json()["code"] == "jam_bad_request"
        # Once Bob uploads the same code to his own service, it authorizes his package.
        put = c.put(f"/jam/preimages/{AUTH_HASH}", params={"service_id": bob.service_id},
                    content=AUTH)
        assert put.status_code == 201, put.text
        pid = submit(c, with_authorizer(bob.service_id, b"bob", bob.service_id))
        assert wait_final(c, [pid])[0]["status"] == "applied"
