"""Bad input of every shape, on every endpoint, against a real server (SQLite and PostgreSQL).

Each case asserts the SPEC §3 status and code, that the error body is exactly
`{"error": str, "code": str}`, and (per test) that the store is unchanged afterwards: every
row of every table is compared, except the operator-only audit log, which records refusals by
design. Size caps are configured small (4096 bytes) so that bodies far over them, sent with
Content-Length or chunked, stay cheap.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import Server, Tenant, make_tenant, simple_package

CAP = 4096
CONFIG = {"max_preimage_bytes": CAP, "max_package_bytes": CAP, "rate_limit_per_minute": 0,
          "service_rate_limit_per_minute": 0, "account_rate_limit_per_minute": 0}
SPEC_CODES = {
    400: {"jam_bad_request", "jam_hash_mismatch"}, 401: {"jam_unauthenticated"},
    403: {"jam_authz"}, 404: {"jam_not_found"},
    409: {"jam_pending_limit", "jam_storage_quota", "jam_gas_quota"}, 413: {"jam_too_large"},
    415: {"jam_unsupported_media_type"}, 429: {"jam_rate_limit"},
}
U64 = 2**64


def blake(data: bytes) -> str:
    return "0x" + hashlib.blake2b(data, digest_size=32).hexdigest()


# -- the store, row by row ----------------------------------------------------------------

def snapshot(store_keys: dict[str, object]) -> dict[str, list[str]]:
    """Every row of every table (reflected, so tables added later are covered too)."""
    from jamhost.store.sql.engine import make_engine, postgres_url, sqlite_url

    url = (sqlite_url(str(store_keys["sqlite_path"])) if store_keys["store"] == "sqlite"
           else postgres_url(str(store_keys["pg_dsn"])))
    engine = make_engine(url)
    try:
        meta = sa.MetaData()
        meta.reflect(engine)
        out = {}
        with engine.connect() as conn:
            for name, table in sorted(meta.tables.items()):
                if "audit" in name:
                    continue
                out[name] = sorted(repr(tuple(row)) for row in conn.execute(sa.select(table)))
        return out
    finally:
        engine.dispose()


def assert_unchanged(before: dict[str, list[str]], after: dict[str, list[str]]) -> None:
    changed = {t: (sorted(set(after.get(t, [])) - set(before.get(t, []))),
                   sorted(set(before.get(t, [])) - set(after.get(t, []))))
               for t in set(before) | set(after) if before.get(t) != after.get(t)}
    assert not changed, f"refused requests changed the store (added, removed): {changed}"


def error_shape(resp: httpx.Response) -> str | None:
    """None if `resp` is a well-formed SPEC error, else what is wrong with it."""
    if resp.request.method == "HEAD":
        return None
    try:
        body = resp.json()
    except ValueError:
        return f"not JSON: {resp.text[:80]!r}"
    if not (isinstance(body, dict) and set(body) == {"error", "code"}
            and isinstance(body["error"], str) and isinstance(body["code"], str)):
        return f"body is not exactly {{error, code}}: {body!r}"
    if body["code"] not in SPEC_CODES.get(resp.status_code, set()):
        return f"code {body['code']!r} is not a SPEC code for {resp.status_code}"
    return None


# -- the cases -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Case:
    label: str
    who: str            # op | a (tenant A's token)
    method: str
    path: str
    status: int
    code: str
    kw: tuple[tuple[str, Any], ...] = ()


def case(label: str, who: str, method: str, path: str, status: int, code: str,
         **kw: Any) -> Case:
    return Case(label, who, method, path, status, code, tuple(kw.items()))


JSON = {"Content-Type": "application/json"}
OCTET = {"Content-Type": "application/octet-stream"}
BAD = "jam_bad_request"


def raw_json(text: str | bytes) -> dict[str, Any]:
    return {"content": text, "headers": JSON}


def json_cases(who: str, method: str, path: str, good: dict[str, Any],
               wrong: list[tuple[str, Any]]) -> list[Case]:
    """The shapes every JSON endpoint must refuse, plus per-field wrong values."""
    name = f"{method} {path}"
    out = [
        case(f"{name}: malformed JSON", who, method, path, 400, BAD, **raw_json('{"a": ')),
        case(f"{name}: not UTF-8", who, method, path, 400, BAD, **raw_json(b"\xff\xfe{}")),
        case(f"{name}: empty body", who, method, path, 400, BAD, **raw_json(b"")),
        case(f"{name}: array", who, method, path, 400, BAD, json=[good]),
        case(f"{name}: string", who, method, path, 400, BAD, json="x"),
        case(f"{name}: null", who, method, path, 400, BAD, **raw_json("null")),
        case(f"{name}: number", who, method, path, 400, BAD, **raw_json("1e999")),
        case(f"{name}: unknown field", who, method, path, 400, BAD,
             json={**good, "surprise": 1}),
        case(f"{name}: text/plain", who, method, path, 415, "jam_unsupported_media_type",
             content=json.dumps(good), headers={"Content-Type": "text/plain"}),
        case(f"{name}: form", who, method, path, 415, "jam_unsupported_media_type",
             content=b"a=1", headers={"Content-Type": "application/x-www-form-urlencoded"}),
    ]
    for field_, value in wrong:
        out.append(case(f"{name}: {field_}={value!r:.40}", who, method, path, 400, BAD,
                        json={**good, field_: value}))
    return out


def bad_cases(a: Tenant, b: Tenant) -> list[Case]:
    sid, acc = a.service_id, a.account_id
    svc = f"/jam/services/{sid}"
    h = blake(b"some preimage")
    c: list[Case] = []
    # accounts and tokens
    c += json_cases("op", "POST", "/jam/accounts", {"name": "x"}, [
        ("name", ""), ("name", 5), ("name", None), ("name", ["x"]), ("name", "x" * 201),
        ("name", "   ")])
    c.append(case("POST /jam/accounts: {}", "op", "POST", "/jam/accounts", 400, BAD, json={}))
    c += json_cases("a", "POST", f"/jam/accounts/{acc}/tokens", {"name": "t"}, [
        ("name", 5), ("name", "x" * 201), ("scopes", []), ("scopes", ["admin"]),
        ("scopes", "read"), ("scopes", [1]), ("expires_at", "yesterday"), ("expires_at", 1),
        ("expires_at", -1), ("expires_at", 2**70), ("expires_at", 1.5), ("expires_at", True),
        ("expires_at", "2000-01-01T00:00:00Z"), ("expires_at", {})])
    # NUL characters: PostgreSQL text cannot hold them; they must still get a 4xx.
    c.append(case("POST /jam/accounts: NUL in name", "op", "POST", "/jam/accounts", 400, BAD,
                  json={"name": "a\u0000b"}))
    c.append(case("POST token: NUL in name", "a", "POST", f"/jam/accounts/{acc}/tokens", 400,
                  BAD, json={"name": "a\u0000b"}))
    c.append(case("GET tokens of account '\\0' (operator)", "op", "GET",
                  "/jam/accounts/%00/tokens", 404, "jam_not_found"))
    c.append(case("POST service for owner '\\0' (operator)", "op", "POST", "/jam/services",
                  400, BAD, json={"owner": "\u0000"}))
    for accessor in ("zz", "x" * 100, "0" * 16, "%00"):
        c.append(case(f"DELETE token {accessor!r}", "a", "DELETE",
                      f"/jam/accounts/{acc}/tokens/{accessor}", 404, "jam_not_found"))
    # services
    c += json_cases("a", "POST", "/jam/services", {}, [
        ("code", "0xzz"), ("code", "0x123"), ("code", 5), ("code", ["0x00"]),
        ("balance", -1), ("balance", 2**63), ("balance", U64), ("balance", "1"),
        ("balance", 1.5), ("min_item_gas", -5), ("min_item_gas", 2**64), ("owner", 7),
        ("owner", "")])
    c.append(case("POST /jam/services: code over the preimage cap", "a", "POST",
                  "/jam/services", 413, "jam_too_large", json={"code": "0x" + "00" * (CAP + 1)}))
    for bad_id in ("abc", "-1", "4294967296", "1.5", "9" * 100, "0x10000", " "):
        c.append(case(f"GET service {bad_id!r}", "a", "GET", f"/jam/services/{bad_id}",
                      400, BAD))
    for params in ({"limit": "abc"}, {"limit": "0"}, {"limit": "-1"}, {"limit": "1e3"},
                   {"cursor": "!!!"}, {"cursor": "zzzz"}, {"cursor": "%%"},
                   {"cursor": base64.urlsafe_b64encode(b"k:00").decode()},
                   {"cursor": base64.urlsafe_b64encode(b"i:-5").decode()},
                   {"cursor": base64.urlsafe_b64encode(b"i:" + b"9" * 30).decode()}):
        c.append(case(f"GET /jam/services {params}", "a", "GET", "/jam/services", 400, BAD,
                      params=params))
    c.append(case("PUT code: empty", "a", "PUT", f"{svc}/code", 400, BAD, content=b"",
                  headers=OCTET))
    for key in ("zz", "0x1", "0xg0"):
        c.append(case(f"GET storage key {key}", "a", "GET", f"{svc}/storage/{key}", 400, BAD))
    for params in ({"prefix": "zz"}, {"prefix": "0x1"}, {"cursor": "@@"}, {"limit": "x"},
                   {"cursor": base64.urlsafe_b64encode(b"i:5").decode()}):
        c.append(case(f"GET storage {params}", "a", "GET", f"{svc}/storage", 400, BAD,
                      params=params))
    c += json_cases("a", "POST", f"{svc}/delegates", {"token": "t" * 20}, [
        ("token", "short"), ("token", 5), ("token", "t" * 513), ("role", "admin"),
        ("role", "manager"), ("role", None), ("accessor", "0" * 16), ("accessor", "nothex")])
    for body in ({}, {"role": "reader"}, {"accessor": "zz"}, {"accessor": b.accessor[:-1]},
                 {"token": None, "accessor": None}):
        c.append(case(f"POST delegates {body}", "a", "POST", f"{svc}/delegates", 400, BAD,
                      json=body))
    for did in ("abc", "-1", "9" * 30, "1.0", "999999"):
        c.append(case(f"DELETE delegate {did!r}", "a", "DELETE", f"{svc}/delegates/{did}",
                      404, "jam_not_found"))
    c += json_cases("op", "PUT", f"{svc}/quota", {"pending_packages": 5}, [
        ("pending_packages", -1), ("pending_packages", 2**63), ("pending_packages", "5"),
        ("storage_bytes", 1.5), ("gas_per_hour", U64), ("gas_per_hour", [])])
    c += json_cases("op", "POST", f"{svc}/credit", {"amount": 1}, [
        ("amount", 0), ("amount", -1), ("amount", 2**63), ("amount", "1"), ("amount", None),
        ("amount", 2**63 - 1)])  # the last one would overflow the balance
    c.append(case("POST credit {}", "op", "POST", f"{svc}/credit", 400, BAD, json={}))
    # preimages
    data = b"some preimage"
    for bad_hash in ("zz", h[:-1], h[:-2], h + "00", "0x" + "g" * 64):
        c.append(case(f"PUT preimage {bad_hash[:12]}..", "a", "PUT",
                      f"/jam/preimages/{bad_hash}", 400, BAD, params={"service_id": sid},
                      content=data))
    for bad_sid in ("abc", "-1", str(2**32), "1e5"):
        c.append(case(f"PUT preimage service_id={bad_sid}", "a", "PUT", f"/jam/preimages/{h}",
                      400, BAD, params={"service_id": bad_sid}, content=data))
    c.append(case("PUT preimage without service_id", "a", "PUT", f"/jam/preimages/{h}", 400,
                  BAD, content=data))
    c.append(case("PUT preimage: body does not hash to the path", "a", "PUT",
                  f"/jam/preimages/{h}", 400, "jam_hash_mismatch", params={"service_id": sid},
                  content=data + b"!"))
    c.append(case("PUT preimage: empty body", "a", "PUT", f"/jam/preimages/{h}", 400,
                  "jam_hash_mismatch", params={"service_id": sid}, content=b""))
    # packages
    good = simple_package(sid)
    item = good["items"][0]  # type: ignore[index]
    c += json_cases("a", "POST", "/jam/packages", good, [
        ("service_id", "1"), ("service_id", -1), ("service_id", 2**32), ("service_id", True),
        ("service_id", None), ("service_id", 1.0), ("items", []), ("items", "x"),
        ("items", None), ("items", [1]), ("items", [[]]), ("items", [item] * 17),
        ("authorization", "zz"), ("authorization", "0x1"), ("authorization", 5),
        ("context", 5), ("context", {}), ("context", {"anchor": "0x00"})])
    for key, value in (("payload", "0xzz"), ("payload", "0x123"), ("payload", 5),
                       ("payload", None), ("refine_gas_limit", -1),
                       ("refine_gas_limit", U64), ("refine_gas_limit", "5"),
                       ("refine_gas_limit", 1.5), ("refine_gas_limit", None),
                       ("accumulate_gas_limit", True), ("code_hash", "0x" + "00" * 31),
                       ("code_hash", "0x" + "00" * 33), ("code_hash", "xyz"),
                       ("export_count", 2**16), ("export_count", -1), ("surprise", 1),
                       ("service", b.service_id), ("service_id", b.service_id),
                       ("service", "x"), ("service_id", -1)):
        c.append(case(f"POST /jam/packages item {key}={value!r:.30}", "a", "POST",
                      "/jam/packages", 400, BAD,
                      json={**good, "items": [{**item, key: value}]}))
    for missing in ("payload", "refine_gas_limit", "accumulate_gas_limit"):
        c.append(case(f"POST /jam/packages item without {missing}", "a", "POST",
                      "/jam/packages", 400, BAD,
                      json={**good, "items": [{k: v for k, v in item.items() if k != missing}]}))
    c.append(case("POST /jam/packages without service_id", "a", "POST", "/jam/packages", 400,
                  BAD, json={"items": good["items"]}))
    c.append(case("POST /jam/packages: full w3f form, garbage", "a", "POST", "/jam/packages",
                  400, BAD, json={"auth_code_host": "x", "items": []}))
    c.append(case("POST /jam/packages: full w3f form, missing fields", "a", "POST",
                  "/jam/packages", 400, BAD, json={"auth_code_host": sid}))
    for ctype in ("text/plain", "application/xml", "multipart/form-data; boundary=x"):
        c.append(case(f"POST /jam/packages as {ctype}", "a", "POST", "/jam/packages", 415,
                      "jam_unsupported_media_type", content=b"x",
                      headers={"Content-Type": ctype}))
    for params in ({"status": "bogus"}, {"service_id": "abc"}, {"service_id": "-5"},
                   {"limit": "x"}, {"limit": "0"}, {"cursor": "zz"},
                   {"cursor": base64.urlsafe_b64encode(b"k:00").decode()}):
        for path in ("/jam/packages", "/jam/reports", "/jam/receipts"):
            if path != "/jam/packages" and "status" in params:
                continue
            c.append(case(f"GET {path} {params}", "a", "GET", path, 400, BAD, params=params))
    return c


def package_octet_cases(a: Tenant, b: Tenant, code_hash: str) -> list[Case]:
    from jamhost.app.package_input import parse_package_json

    def encode(obj: dict[str, Any]) -> bytes:
        pkg, _ = parse_package_json(obj, lambda _s: bytes.fromhex(code_hash[2:]))
        return pkg.encode()

    good = encode(simple_package(a.service_id, b"octet"))
    two = simple_package(a.service_id, b"two services")
    two["items"] = [two["items"][0], simple_package(b.service_id)["items"][0]]  # type: ignore[index]
    from dataclasses import replace

    from jamhost.domain.types.work_package import WorkPackage
    base = WorkPackage.decode(encode(two))
    mixed = replace(base, items=(base.items[0], replace(base.items[1],
                                                        service=b.service_id))).encode()
    out = []
    for label, body in (("garbage", b"\x01\x02\x03"), ("empty", b""),
                        ("truncated", good[:-1]), ("trailing byte", good + b"\x00"),
                        ("all 0xff", b"\xff" * 200), ("items for two services", mixed)):
        out.append(case(f"POST /jam/packages octet-stream {label}", "a", "POST",
                        "/jam/packages", 400, BAD, content=body, headers=OCTET))
    return out


def send(client: httpx.Client, c: Case) -> httpx.Response:
    """One case on a connection of its own (`Connection: close`), so that a case the server
    mishandles cannot break the next one's connection."""
    kw = dict(c.kw)
    kw["headers"] = {**kw.get("headers", {}), "Connection": "close"}
    return client.request(c.method, c.path, **kw)


def setup(srv: Server) -> tuple[Tenant, Tenant]:
    a, b = make_tenant(srv, "alice", code=b"\x00\x01"), make_tenant(srv, "bob")
    with srv.client(a.token) as ca:
        assert ca.post("/jam/packages", json=simple_package(a.service_id)).status_code == 201
        assert ca.put(f"/jam/preimages/{blake(b'kept')}", params={"service_id": a.service_id},
                      content=b"kept").status_code == 201
    return a, b


def test_bad_input_is_refused_with_spec_codes_and_changes_nothing(server_factory, store_keys):
    srv = server_factory(**store_keys, **CONFIG)
    a, b = setup(srv)
    with srv.op() as op:
        code_hash = op.get(f"/jam/services/{a.service_id}").json()["code_hash"]
    cases = bad_cases(a, b) + package_octet_cases(a, b, code_hash)
    before = snapshot(store_keys)
    problems = []
    with srv.op() as op, srv.client(a.token) as ca:
        for i, c in enumerate(cases):
            try:
                resp = send(op if c.who == "op" else ca, c)
            except httpx.HTTPError as exc:
                problems.append(f"[{i}] {c.label}: no answer ({type(exc).__name__})")
                continue
            if (resp.status_code, resp.json().get("code")) != (c.status, c.code):
                problems.append(f"[{i}] {c.label}: expected {c.status} {c.code}, got "
                                f"{resp.status_code} {resp.text[:160]!r}")
            elif shape := error_shape(resp):
                problems.append(f"[{i}] {c.label}: {shape}")
    after = snapshot(store_keys)
    assert not problems, f"{len(problems)} of {len(cases)} cases:\n" + "\n".join(problems)
    assert_unchanged(before, after)


def test_unknown_routes_methods_and_auth_headers(server_factory, store_keys):
    srv = server_factory(**store_keys, **CONFIG)
    a, _ = setup(srv)
    before = snapshot(store_keys)
    problems = []

    def check(resp: httpx.Response, status: int, code: str) -> None:
        if resp.status_code != status or resp.json().get("code") != code or error_shape(resp):
            problems.append(f"{resp.request.method} {resp.request.url.path} "
                            f"{resp.request.headers.get('authorization', '')[:20]!r}: expected "
                            f"{status} {code}, got {resp.status_code} {resp.text[:120]!r}")

    with srv.client(a.token) as ca:
        check(ca.get("/jam/nothing-here"), 404, "jam_not_found")
        check(ca.get("/"), 404, "jam_not_found")
        for method, path in (("DELETE", "/jam/packages"), ("PUT", "/jam/accounts"),
                             ("PATCH", f"/jam/services/{a.service_id}"), ("POST", "/healthz")):
            resp = ca.request(method, path)
            # 405 is not in the SPEC table; what matters is a 4xx with a SPEC code (§6.5).
            if not 400 <= resp.status_code < 500 or resp.json().get("code") != BAD:
                problems.append(f"{method} {path}: got {resp.status_code} {resp.text[:120]!r}")
    for header in ("Basic dXNlcjpwYXNz", "Bearer", "bearer-ish x", "Bearer a b",
                   "Bearer " + "x" * 600, "Bearer " + a.token + "x", "Bearer " + a.token[:-1],
                   "Bearer " + a.token.upper(), "Token " + a.token):
        with httpx.Client(base_url=srv.url, headers={"Authorization": header}) as c:
            check(c.get("/system/status"), 401, "jam_unauthenticated")
            check(c.post("/jam/packages", json=simple_package(a.service_id, b"h")), 401,
                  "jam_unauthenticated")
    with httpx.Client(base_url=srv.url,
                      headers=[(b"Authorization", b"Bearer \xff\xfe\x80jam")]) as c:
        check(c.get("/system/status"), 401, "jam_unauthenticated")
    assert_unchanged(before, snapshot(store_keys))
    assert not problems, "\n".join(problems)


def chunks(total: int, size: int = 1024, data: bytes | None = None) -> Iterator[bytes]:
    """`total` bytes (of `data`, or b"x"s) as an iterator: httpx sends it chunked."""
    body = data if data is not None else b"x" * total
    for i in range(0, total, size):
        yield body[i:i + size]


def test_bodies_over_the_caps_are_refused_while_streaming(server_factory, store_keys):
    srv = server_factory(**store_keys, **CONFIG)
    a, _ = setup(srv)
    sid = a.service_id
    exact = b"e" * CAP
    before = snapshot(store_keys)
    problems = []
    far = 2 * 1024 * 1024  # 2 MiB: far over every cap here (also the 1 MiB JSON cap)

    targets = [
        ("PUT", f"/jam/preimages/{blake(b'x' * far)}", {"service_id": sid}, OCTET, CAP),
        ("PUT", f"/jam/preimages/{blake(b'x' * (CAP + 1))}", {"service_id": sid}, OCTET, CAP),
        ("POST", "/jam/packages", {}, OCTET, CAP),
        ("POST", "/jam/packages", {}, JSON, CAP),
        ("PUT", f"/jam/services/{sid}/code", {}, OCTET, CAP),
        ("POST", "/jam/services", {}, JSON, 3 * CAP),
        ("POST", f"/jam/services/{sid}/delegates", {}, JSON, 1 << 20),
        ("POST", f"/jam/accounts/{a.account_id}/tokens", {}, JSON, 1 << 20),
    ]
    with srv.client(a.token) as ca:
        for method, path, params, headers, cap in targets:
            for total in (cap + 1, far):
                for mode in ("content-length", "chunked"):
                    body = b"x" * total if mode == "content-length" else chunks(total)
                    label = f"{method} {path[:40]} {total} bytes, {mode}"
                    try:
                        resp = ca.request(method, path, params=params, content=body,
                                          headers=headers)
                    except httpx.HTTPError as exc:  # the server may hang up early: fine,
                        problems.append(f"{label}: no answer ({type(exc).__name__})")
                        continue                    # but it must answer first
                    if (resp.status_code, resp.json().get("code")) != (413, "jam_too_large"):
                        problems.append(f"{label}: got {resp.status_code} {resp.text[:120]!r}")
                    elif shape := error_shape(resp):
                        problems.append(f"{label}: {shape}")
    assert_unchanged(before, snapshot(store_keys))
    # Exactly at the cap is accepted, with Content-Length and chunked.
    with srv.client(a.token) as ca:
        for body in (exact, chunks(CAP, 1000, exact)):
            put = ca.put(f"/jam/preimages/{blake(exact)}", params={"service_id": sid},
                         content=body)
            assert put.status_code == 201 and put.json()["size"] == CAP, put.text
    assert not problems, "\n".join(problems)


def test_huge_quota_and_gas_values_do_not_overflow(server_factory, store_keys):
    """Quotas at the top of their range and packages declaring enormous gas: 201 or 409,
    never a 5xx from a 64-bit overflow in the store."""
    srv = server_factory(**store_keys, **CONFIG)
    a, _ = setup(srv)
    top = 2**63 - 1
    with srv.op() as op:
        q = op.put(f"/jam/services/{a.service_id}/quota", json={
            "pending_packages": top, "storage_bytes": top, "gas_per_hour": top})
        assert q.status_code == 200, q.text
        credit = op.post(f"/jam/services/{a.service_id}/credit",
                         json={"amount": top - op.get(f"/jam/services/{a.service_id}")
                               .json()["balance"]})
        assert credit.status_code == 200 and credit.json()["balance"] == top
        more = op.post(f"/jam/services/{a.service_id}/credit", json={"amount": 1})
        assert (more.status_code, more.json()["code"]) == (400, BAD)
    seen = []
    with srv.client(a.token) as ca:
        used = ca.get(f"/jam/services/{a.service_id}/quota").json()["usage"]["gas_this_hour"]
        for i, (refine, accumulate) in enumerate([(top - used, 0), (1, 0), (2**62, 2**62),
                                                  (U64 - 1, U64 - 1), (top, top),
                                                  (2**63, 0), (5, 5)]):
            pkg = simple_package(a.service_id, bytes([i]))
            pkg["items"][0].update(refine_gas_limit=refine,  # type: ignore[index]
                                   accumulate_gas_limit=accumulate)
            try:
                resp = ca.post("/jam/packages", json=pkg, headers={"Connection": "close"})
                seen.append((refine, accumulate, resp.status_code, resp.text[:120]))
            except httpx.HTTPError as exc:
                seen.append((refine, accumulate, 0, type(exc).__name__))
        usage = ca.get(f"/jam/services/{a.service_id}/quota").json()["usage"]
    statuses = [s for _, _, s, _ in seen]
    assert all(s in (201, 409) for s in statuses), "\n".join(map(str, seen))
    assert statuses[0] == 201, seen  # exactly what is left of the budget
    assert usage["gas_this_hour"] <= top, usage


# -- fuzzing ---------------------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12)


def near_packages(service_ids: list[int]) -> st.SearchStrategy[Any]:
    """Package-shaped JSON with wrong values in random places: reaches past the shape checks."""
    u = st.integers(min_value=-2, max_value=2**64 + 2)
    hexes = st.binary(max_size=40).map(lambda b: "0x" + b.hex()) | st.text(max_size=10)
    item = st.fixed_dictionaries(
        {"payload": hexes | JSON_VALUES, "refine_gas_limit": u | JSON_VALUES,
         "accumulate_gas_limit": u | JSON_VALUES},
        optional={"code_hash": hexes | st.none(), "export_count": u,
                  "service": st.sampled_from(service_ids) | u,
                  "service_id": st.sampled_from(service_ids)})
    return st.fixed_dictionaries(
        {"service_id": st.sampled_from(service_ids) | u | JSON_VALUES,
         "items": st.lists(item, max_size=3) | JSON_VALUES},
        optional={"authorization": hexes | JSON_VALUES, "context": JSON_VALUES,
                  "auth_code_host": u})


def test_random_json_packages_never_5xx(server_factory, store_keys):
    srv = server_factory(**store_keys, **CONFIG)
    a, b = setup(srv)
    ids = [a.service_id, b.service_id, 0, 2**32 - 1]
    failures: list[str] = []
    with srv.client(a.token) as ca:
        @settings(max_examples=150, deadline=None, database=None,
                  suppress_health_check=[HealthCheck.too_slow])
        @given(JSON_VALUES | near_packages(ids))
        def throw(value: Any) -> None:
            resp = ca.post("/jam/packages", content=json.dumps(value), headers=JSON)
            if resp.status_code in (200, 201):
                return
            problem = error_shape(resp)
            if resp.status_code >= 500 or problem:
                failures.append(f"{json.dumps(value)[:200]} -> {resp.status_code} "
                                f"{resp.text[:120]!r} {problem or ''}")

        throw()
    assert not failures, "\n".join(failures[:20])


def test_random_package_bytes_never_5xx(server_factory):
    srv = server_factory(**CONFIG)
    a, _ = setup(srv)
    failures: list[str] = []
    from jamhost.app.package_input import parse_package_json
    with srv.op() as op:
        code_hash = op.get(f"/jam/services/{a.service_id}").json()["code_hash"]
    pkg, _ = parse_package_json(simple_package(a.service_id, b"seed" * 8),
                                lambda _s: bytes.fromhex(code_hash[2:]))
    seed = pkg.encode()
    with srv.client(a.token) as ca:
        @settings(max_examples=150, deadline=None, database=None,
                  suppress_health_check=[HealthCheck.too_slow])
        @given(st.binary(max_size=300) | st.tuples(
            st.integers(0, len(seed) - 1), st.binary(min_size=1, max_size=8),
            st.booleans()).map(lambda t: seed[:t[0]] + t[1] + seed[t[0] + (len(t[1]) if t[2]
                                                                             else 0):]))
        def throw(body: bytes) -> None:
            resp = ca.post("/jam/packages", content=body, headers=OCTET)
            if resp.status_code in (200, 201):
                return
            problem = error_shape(resp)
            if resp.status_code >= 500 or problem:
                failures.append(f"{body.hex()[:200]} -> {resp.status_code} "
                                f"{resp.text[:120]!r} {problem or ''}")

        throw()
    assert not failures, "\n".join(failures[:20])
