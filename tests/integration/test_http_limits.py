"""The HTTP layer against hostile input, on a real `jamhost serve` (docs/security.md, "HTTP-layer
limits"): nesting that blows the decoder's stack, oversized request heads, token-shaped field
names echoed back, the audit row of a denial naming the service as parsed, and list cursors
that must reveal nothing and work only in the listing that issued them."""

from __future__ import annotations

import base64
import re
import socket
from typing import Any

import pytest

from tests.conftest import OPERATOR_TOKEN, Server, Tenant, make_tenant, simple_package

NO_LIMITS = {"rate_limit_per_minute": 0, "service_rate_limit_per_minute": 0}
DEEP = b"[" * 100_000


def bad_request(resp: Any) -> None:
    assert resp.status_code == 400, (resp.request.method, resp.request.url, resp.text)
    assert resp.json()["code"] == "jam_bad_request"
    assert set(resp.json()) == {"error", "code"}


def json_endpoints(t: Tenant) -> list[tuple[str, str, str]]:
    """(who, method, path) of every endpoint that takes a JSON body."""
    sid = t.service_id
    return [("op", "POST", "/jam/accounts"), ("a", "POST", f"/jam/accounts/{t.account_id}/tokens"),
            ("a", "POST", "/jam/services"), ("a", "POST", f"/jam/services/{sid}/delegates"),
            ("op", "PUT", f"/jam/services/{sid}/quota"),
            ("op", "POST", f"/jam/services/{sid}/credit"), ("a", "POST", "/jam/packages")]


@pytest.fixture
def srv(server_factory, store_keys) -> Server:
    return server_factory(**store_keys, **NO_LIMITS)


def test_deep_nesting_is_400_on_every_json_endpoint(srv: Server) -> None:
    a = make_tenant(srv, "alice")
    for who, method, path in json_endpoints(a):
        with srv.client(OPERATOR_TOKEN if who == "op" else a.token) as c:
            for body in (DEEP, b'{"name": ' + DEEP):
                resp = c.request(method, path, content=body,
                                 headers={"Content-Type": "application/json"})
                bad_request(resp)
    with srv.client() as c:
        assert c.get("/healthz").status_code == 200


def test_request_head_size_and_count_are_bounded(srv: Server) -> None:
    with srv.client() as c:
        # Within the limits: answered as usual.
        assert c.get("/healthz", headers={"X-Pad": "a" * 8000}).status_code == 200
        for headers in ({"X-Pad": "a" * 100_000},                    # one header too large
                        {f"X-H{i}": "1" for i in range(200)},         # too many headers
                        {f"X-H{i}": "b" * 1000 for i in range(60)}):  # too large together
            resp = c.get("/healthz", headers=headers)
            assert resp.status_code == 431, resp.text
            assert resp.json()["code"] == "jam_bad_request"
    with srv.client() as c:  # the server is still fine
        assert c.get("/healthz").status_code == 200


def test_twenty_mib_header_is_not_read_and_answered(srv: Server) -> None:
    host, port = srv.url.removeprefix("http://").split(":")
    answer = b""
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        try:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ")
            chunk = b"a" * (1 << 20)
            for _ in range(20):
                sock.sendall(chunk)
            sock.sendall(b"\r\n\r\n")
        except OSError:
            pass  # the server may stop reading: what matters is that it never said 200
        try:
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                answer += data
        except OSError:
            pass
    assert not answer.startswith(b"HTTP/1.1 200"), answer[:200]
    assert answer.startswith(b"HTTP/1.1 431"), answer[:200]
    with srv.client() as c:
        assert c.get("/healthz").status_code == 200


def test_token_shaped_field_names_are_never_echoed(srv: Server) -> None:
    a = make_tenant(srv, "alice")
    secrets_ = [a.token, OPERATOR_TOKEN]
    good = {"/jam/accounts": {"name": "x"}, "tokens": {"name": "x"}, "/jam/services": {},
            "delegates": {"accessor": a.accessor}, "quota": {}, "credit": {"amount": 1},
            "/jam/packages": simple_package(a.service_id)}
    for who, method, path in json_endpoints(a):
        body = next(v for k, v in good.items() if path.endswith(k))
        with srv.client(OPERATOR_TOKEN if who == "op" else a.token) as c:
            for secret in secrets_:
                resp = c.request(method, path, json={**body, secret: 1})
                bad_request(resp)
                assert secret not in resp.text and "jam_" not in resp.json()["error"], resp.text
    with srv.client(a.token) as c:
        pkg = simple_package(a.service_id)
        pkg["items"][0][a.token] = 1  # type: ignore[index]
        resp = c.post("/jam/packages", json=pkg)
        bad_request(resp)
        assert a.token not in resp.text
        # The full w3f form goes through the GP codec's JSON reader.
        resp = c.post("/jam/packages", json={"auth_code_host": a.service_id, a.token: 1})
        bad_request(resp)
        assert a.token not in resp.text
        # A token as a value where an enum is expected.
        resp = c.post(f"/jam/accounts/{a.account_id}/tokens", json={"scopes": [a.token]})
        bad_request(resp)
        assert a.token not in resp.text


def test_denial_audit_row_names_the_service_as_parsed(srv: Server) -> None:
    a = make_tenant(srv, "alice")
    with srv.client(a.token) as c:
        resp = c.put(f"/jam/services/+{a.service_id}/quota", json={"pending_packages": 1})
        assert resp.status_code == 403, resp.text
    with srv.op() as op:
        rows = op.get("/jam/audit", params={"action": "authz.denied"}).json()["items"]
    assert rows, "the denial was not audited"
    assert rows[0]["service_id"] == a.service_id, rows[0]
    assert rows[0]["target"] == "PUT /jam/services/{service_id}/quota"


def _pages(c: Any, path: str, **params: Any) -> tuple[list[Any], list[str]]:
    items, cursors, cursor = [], [], None
    while True:
        resp = c.get(path, params={**params, "limit": 1, **({"cursor": cursor} if cursor else {})})
        assert resp.status_code == 200, resp.text
        items += resp.json()["items"]
        cursor = resp.json()["next_cursor"]
        if not cursor:
            return items, cursors
        cursors.append(cursor)


def test_cursors_are_opaque_and_bound_to_their_listing(srv: Server) -> None:
    a, b = make_tenant(srv, "alice"), make_tenant(srv, "bob")
    with srv.client(a.token) as ca, srv.client(b.token) as cb:
        a2 = ca.post("/jam/services", json={}).json()["service_id"]
        for i in range(3):  # Bob's packages interleave Alice's: the global sequence has gaps
            assert ca.post("/jam/packages", json=simple_package(a.service_id, bytes([i]))) \
                .status_code == 201
            for j in range(5):
                assert cb.post("/jam/packages", json=simple_package(b.service_id,
                                                                     bytes([i, j]))) \
                    .status_code == 201
        items, cursors = _pages(ca, "/jam/packages")
        assert len(items) == 3 and len(cursors) == 2
        for cursor in cursors:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            # Not the old plain form ("i:<seq>" / "k:<key>"): a sealed cursor is random bytes
            # (a ':' among its first bytes is chance, not structure).
            assert re.fullmatch(rb"[ik]:[\x20-\x7e]*", raw) is None, raw
            assert len(raw) >= 12 + 16, raw  # nonce and GCM tag at least
        # Same position, new seal: equal cursors would still let one compare positions.
        first = ca.get("/jam/packages", params={"limit": 1}).json()["next_cursor"]
        assert first != cursors[0]
        # The cursor works where it was issued ...
        assert ca.get("/jam/packages", params={"limit": 1, "cursor": first}).status_code == 200
        # ... and nowhere else: another listing, other filters, another caller, one bit off.
        bad_request(ca.get("/jam/reports", params={"cursor": first}))
        bad_request(ca.get("/jam/receipts", params={"cursor": first}))
        bad_request(ca.get("/jam/services", params={"cursor": first}))
        bad_request(ca.get("/jam/packages", params={"cursor": first, "status": "pending"}))
        bad_request(ca.get("/jam/packages", params={"cursor": first,
                                                    "service_id": a.service_id}))
        bad_request(cb.get("/jam/packages", params={"cursor": first}))
        bad_request(ca.get(f"/jam/services/{a.service_id}/storage", params={"cursor": first}))
        flipped = ("A" if first[5] != "A" else "B").join((first[:5], first[6:]))
        bad_request(ca.get("/jam/packages", params={"cursor": flipped}))
        # Services and filtered listings page completely through their own cursors.
        services_seen, svc_cursors = _pages(ca, "/jam/services")
        assert {s["service_id"] for s in services_seen} == {a.service_id, a2}
        bad_request(ca.get("/jam/packages", params={"cursor": svc_cursors[0]}))
        filtered, _ = _pages(ca, "/jam/packages", service_id=a.service_id, status="pending")
        assert len(filtered) == 3
    with srv.op() as op:
        audit_items, audit_cursors = _pages(op, "/jam/audit")
        assert audit_items and audit_cursors
        bad_request(op.get("/jam/packages", params={"cursor": audit_cursors[0]}))
