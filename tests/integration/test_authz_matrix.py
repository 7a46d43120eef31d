"""The authorization matrix: every endpoint of SPEC §3 that touches a service or its objects,
called by every kind of caller, on its own tenant's target, another tenant's and a missing one.

One real server per (store, authz) combination: SQLite and PostgreSQL, `authz_enabled` true and
false (`owner_is_account` true). The expected answer of every cell is written by hand in
`EXPECTED`; the test runs every cell, collects every difference and fails listing them all.

Principals (all relative to tenant A, which owns service SA; tenant B owns SB):
- operator:  a token of `allowed_tokens`;
- owner:     a token of account A with every scope;
- noscope:   a token of account A lacking the scope the endpoint needs (see `Row.needs`);
- reader:    a raw string token, granted on SA through the API by `{token}`, role `reader`;
- submitter: the token of account C (owns nothing), granted on SA by `{accessor}`, `submitter`;
- other:     tenant B's token (so "other target" is B's own service for it);
- revoked, expired: tokens of account A, revoked through the API / past their `expires_at`;
- malformed: a bearer value that is not a token; none: no Authorization header.

Targets: `own` (SA, A's objects, A's account), `other` (SB, B's objects, B's account),
`missing` (a service id, object hash or account id that does not exist).

Cell grammar: `STATUS[:LETTERS]`, alternatives joined by `|`, and `ON/OFF` when the answer
with authz enabled differs from the answer with authz disabled. LETTERS (`A`, `B`, `AB` or
`-` for none) is the set of tenant services a 200 answer shows: listing items, the accumulator
roots of /system/status, the delegations of /jam/accounts/me.
"""

from __future__ import annotations

import hashlib
import itertools
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from tests.conftest import OPERATOR_TOKEN, Server, simple_package

PRINCIPALS = ("operator", "owner", "noscope", "reader", "submitter", "other",
              "revoked", "expired", "malformed", "none")
TARGETS = ("own", "other", "missing")

EXPECTED = """
status
  operator                                   200:AB
  owner noscope reader submitter other       200:-
  revoked expired malformed none             401

me
  operator owner noscope other               200:-
  reader submitter                           200:A
  revoked expired malformed none             401

accounts.create
  operator                                   201
  owner noscope reader submitter other       403
  revoked expired malformed none             401

services.create
  operator owner                             201
  noscope reader submitter other             403
  revoked expired malformed none             401

services.list
  operator                                   200:AB
  owner reader submitter                     200:A/200:AB
  noscope                                    200:-
  other                                      200:B/200:AB
  revoked expired malformed none             401

packages.list_all
  operator                                   200:AB
  owner reader submitter                     200:A/200:AB
  noscope                                    200:-
  other                                      200:B/200:AB
  revoked expired malformed none             401

reports.list_all
  operator                                   200:AB
  owner reader submitter                     200:A/200:AB
  noscope                                    200:-
  other                                      200:B/200:AB
  revoked expired malformed none             401

receipts.list_all
  operator                                   200:AB
  owner reader submitter                     200:A/200:AB
  noscope                                    200:-
  other                                      200:B/200:AB
  revoked expired malformed none             401

services.get
  operator                                   200      200          404
  owner reader submitter                     200      403/200      403/404
  noscope                                    403      403          403
  other                                      403/200  200          403/404
  revoked expired malformed none             401      401          401

storage.get
  operator                                   200      200          404
  owner reader submitter                     200      403/200      403/404
  noscope                                    403      403          403
  other                                      403/200  200          403/404
  revoked expired malformed none             401      401          401

storage.list
  operator                                   200      200          404
  owner reader submitter                     200      403/200      403/404
  noscope                                    403      403          403
  other                                      403/200  200          403/404
  revoked expired malformed none             401      401          401

accumulations.list
  operator                                   200      200          404
  owner reader submitter                     200      403/200      403/404
  noscope                                    403      403          403
  other                                      403/200  200          403/404
  revoked expired malformed none             401      401          401

quota.get
  operator                                   200      200          404
  owner reader submitter                     200      403/200      403/404
  noscope                                    403      403          403
  other                                      403/200  200          403/404
  revoked expired malformed none             401      401          401

packages.list
  operator                                   200:A    200:B        404
  owner reader submitter                     200:A    403/200:B    403/404
  noscope                                    403      403          403
  other                                      403/200:A 200:B       403/404
  revoked expired malformed none             401      401          401

reports.list
  operator                                   200:A    200:B        404
  owner reader submitter                     200:A    403/200:B    403/404
  noscope                                    403      403          403
  other                                      403/200:A 200:B       403/404
  revoked expired malformed none             401      401          401

receipts.list
  operator                                   200:A    200:B        404
  owner reader submitter                     200:A    403/200:B    403/404
  noscope                                    403      403          403
  other                                      403/200:A 200:B       403/404
  revoked expired malformed none             401      401          401

delegates.list
  operator                                   200      200          404
  owner                                      200      403/200      403/404
  noscope                                    403      403          403
  reader submitter                           403/200  403/200      403/404
  other                                      403/200  200          403/404
  revoked expired malformed none             401      401          401

package.get
  operator                                   200      200          404
  owner reader submitter                     200      404/200      404
  noscope                                    404      404          404
  other                                      404/200  200          404
  revoked expired malformed none             401      401          401

package.report
  operator                                   200      200          404
  owner reader submitter                     200      404/200      404
  noscope                                    404      404          404
  other                                      404/200  200          404
  revoked expired malformed none             401      401          401

package.accumulation
  operator                                   200      200          404
  owner reader submitter                     200      404/200      404
  noscope                                    404      404          404
  other                                      404/200  200          404
  revoked expired malformed none             401      401          401

receipt.get
  operator                                   200      200          404
  owner reader submitter                     200      404/200      404
  noscope                                    404      404          404
  other                                      404/200  200          404
  revoked expired malformed none             401      401          401

preimage.get
  operator                                   200      200          404
  owner reader submitter                     200      404/200      404
  noscope                                    404      404          404
  other                                      404/200  200          404
  revoked expired malformed none             401      401          401

preimage.head
  operator                                   200      200          404
  owner reader submitter                     200      404/200      404
  noscope                                    404      404          404
  other                                      404/200  200          404
  revoked expired malformed none             401      401          401

preimage.meta
  operator                                   200      200          404
  owner reader submitter                     200      404/200      404
  noscope                                    404      404          404
  other                                      404/200  200          404
  revoked expired malformed none             401      401          401

tokens.list
  operator                                   200      200          404
  owner                                      200      403          403
  noscope reader submitter                   403      403          403
  other                                      403      200          403
  revoked expired malformed none             401      401          401

tokens.create
  operator                                   201      201          404
  owner                                      201      403          403
  noscope reader submitter                   403      403          403
  other                                      403      201          403
  revoked expired malformed none             401      401          401

tokens.revoke
  operator                                   204      204          404
  owner                                      204      403          403
  noscope reader submitter                   403      403          403
  other                                      403      204          403
  revoked expired malformed none             401      401          401

packages.submit
  operator                                   201      201          404
  owner submitter                            201      403/201      403/404
  noscope                                    403      403          403
  reader                                     403/201  403/201      403/404
  other                                      403/201  201          403/404
  revoked expired malformed none             401      401          401

preimage.put
  operator                                   201      201          404
  owner submitter                            201      403/201      403/404
  noscope                                    403      403          403
  reader                                     403/201  403/201      403/404
  other                                      403/201  201          403/404
  revoked expired malformed none             401      401          401

code.put
  operator                                   200      200          404
  owner                                      200      403/200      403/404
  noscope                                    403      403          403
  reader submitter                           403/200  403/200      403/404
  other                                      403/200  200          403/404
  revoked expired malformed none             401      401          401

delegates.add
  operator                                   201      201          404
  owner                                      201      403/201      403/404
  noscope                                    403      403          403
  reader submitter                           403/201  403/201      403/404
  other                                      403/201  201          403/404
  revoked expired malformed none             401      401          401

delegates.remove
  operator                                   204      204          404
  owner                                      204      403/204      403/404
  noscope                                    403      403          403
  reader submitter                           403/204  403/204      403/404
  other                                      403/204  204          403/404
  revoked expired malformed none             401      401          401

quota.put
  operator                                   200      200          404
  owner noscope reader submitter other       403      403          403
  revoked expired malformed none             401      401          401

credit
  operator                                   200      200          404
  owner noscope reader submitter other       403      403          403
  revoked expired malformed none             401      401          401

process
  operator                                   200|204
  owner noscope reader submitter other       403
  revoked expired malformed none             401
"""


def parse_expected(text: str) -> dict[str, dict[str, list[str]]]:
    """{row: {principal: [cell per target]}}; every row must name every principal once."""
    table: dict[str, dict[str, list[str]]] = {}
    row: dict[str, list[str]] | None = None
    for line in text.splitlines():
        if not line.strip():
            continue
        if not line.startswith(" "):
            row = table.setdefault(line.strip(), {})
            continue
        assert row is not None
        words = line.split()
        names = [w for w in words if w in PRINCIPALS]
        cells = words[len(names):]
        for name in names:
            assert name not in row, f"{name} twice in a row"
            row[name] = cells
    return table


# -- the world: two tenants, their services and objects, one per server ---------------------

MISSING_SERVICE = 3_999_999_999
MISSING_HASH = "0x" + "ab" * 32
MISSING_ACCOUNT = "acc_" + "0" * 16


def blake(data: bytes) -> str:
    return "0x" + hashlib.blake2b(data, digest_size=32).hexdigest()


@dataclass
class World:
    srv: Server
    authz: bool
    acc: dict[str, str]            # own/other/missing -> account id
    sid: dict[str, int]            # own/other/missing -> service id
    package: dict[str, str]        # own/other/missing -> package id
    preimage: dict[str, str]       # own/other/missing -> preimage hash
    receipt: dict[str, str]        # own/other/missing -> receipt hash
    tokens: dict[str, str | None]  # principal -> bearer value
    noscope: dict[str, str]        # the scope a token lacks -> that token of account A
    op: httpx.Client
    counter: itertools.count = field(default_factory=lambda: itertools.count(1))

    def letter(self, service_id: Any) -> str | None:
        return {self.sid["own"]: "A", self.sid["other"]: "B"}.get(
            int(service_id) if service_id is not None else -1)

    def fresh(self) -> int:
        return next(self.counter)


def _ok(resp: httpx.Response, status: int = 201) -> dict[str, Any]:
    assert resp.status_code == status, f"{resp.request.method} {resp.request.url}: {resp.text}"
    return resp.json() if resp.content else {}


def sql_engine(store_keys: dict[str, object]) -> sa.Engine:
    from jamhost.store.sql.engine import make_engine, postgres_url, sqlite_url

    if store_keys["store"] == "sqlite":
        return make_engine(sqlite_url(str(store_keys["sqlite_path"])))
    return make_engine(postgres_url(str(store_keys["pg_dsn"])))


def seed_storage(store_keys: dict[str, object], service_ids: list[int]) -> None:
    """One storage key per service, written to the store directly: the services' code here is
    not a real program, so accumulate never writes state."""
    from jamhost.store.sql import tables as t

    engine = sql_engine(store_keys)
    try:
        with engine.begin() as conn:
            for i, sid in enumerate(service_ids):
                conn.execute(t.storage.insert().values(service_id=sid, key=b"\x01",
                                                       value=bytes([i + 1])))
    finally:
        engine.dispose()


def build_world(srv: Server, store_keys: dict[str, object], authz: bool) -> World:
    op = srv.op()
    accounts = {name: _ok(op.post("/jam/accounts", json={"name": name}))["id"]
                for name in ("tenant-a", "tenant-b", "tenant-c")}
    a, b, c = accounts["tenant-a"], accounts["tenant-b"], accounts["tenant-c"]

    def token(account: str, **body: object) -> dict[str, Any]:
        return _ok(op.post(f"/jam/accounts/{account}/tokens", json={"name": "t", **body}))

    expires_at = int(time.time()) + 2
    expired = token(a, expires_at=expires_at)["token"]
    owner = token(a)
    b_tok, c_tok = token(b), token(c)
    noscope = {"read": token(a, scopes=["submit", "manage"])["token"],
               "submit": token(a, scopes=["read", "manage"])["token"],
               "manage": token(a, scopes=["read", "submit"])["token"]}
    revoked = token(a)
    _ok(op.delete(f"/jam/accounts/{a}/tokens/{revoked['accessor']}"), 204)

    with srv.client(owner["token"]) as ca, srv.client(b_tok["token"]) as cb:
        sa_ = _ok(ca.post("/jam/services", json={"code": "0x000102"}))["service_id"]
        sb_ = _ok(cb.post("/jam/services", json={"code": "0x000103"}))["service_id"]
        reader = "raw-reader-" + secrets.token_hex(16)
        _ok(ca.post(f"/jam/services/{sa_}/delegates", json={"token": reader, "role": "reader"}))
        _ok(ca.post(f"/jam/services/{sa_}/delegates",
                    json={"accessor": c_tok["accessor"], "role": "submitter"}))
        pa = _ok(ca.post("/jam/packages", json=simple_package(sa_, b"pkg-a")))["id"]
        pb = _ok(cb.post("/jam/packages", json=simple_package(sb_, b"pkg-b")))["id"]
        ha, hb = blake(b"blob of a"), blake(b"blob of b")
        _ok(ca.put(f"/jam/preimages/{ha}", params={"service_id": sa_}, content=b"blob of a"))
        _ok(cb.put(f"/jam/preimages/{hb}", params={"service_id": sb_}, content=b"blob of b"))
    # Run both packages through the engine: reports, attestations and receipts, for real.
    for _ in range(10):
        done = op.post("/jam/process")
        assert done.status_code in (200, 204), done.text
        if done.status_code == 204:
            break
    for pid in (pa, pb):
        assert _ok(op.get(f"/jam/packages/{pid}"), 200)["status"] == "applied"
    seed_storage(store_keys, [sa_, sb_])
    # The expired token must be past its expiry before the matrix runs.
    time.sleep(max(0.0, expires_at + 1.1 - time.time()))
    return World(
        srv=srv, authz=authz,
        acc={"own": a, "other": b, "missing": MISSING_ACCOUNT},
        sid={"own": sa_, "other": sb_, "missing": MISSING_SERVICE},
        package={"own": pa, "other": pb, "missing": MISSING_HASH},
        preimage={"own": ha, "other": hb, "missing": MISSING_HASH},
        receipt={"own": pa, "other": pb, "missing": MISSING_HASH},  # their package receipts
        tokens={"operator": OPERATOR_TOKEN, "owner": owner["token"], "reader": reader,
                "submitter": c_tok["token"], "other": b_tok["token"],
                "revoked": revoked["token"], "expired": expired,
                "malformed": "jam_!!_not-a-token", "none": None},
        noscope=noscope, op=op)


# -- the rows: how to make each request ---------------------------------------------------

Call = Callable[[World, httpx.Client, str | None], httpx.Response]


@dataclass(frozen=True)
class Row:
    call: Call
    needs: str = "manage"          # the scope the `noscope` principal lacks
    targeted: bool = True          # False: one cell per principal, no target
    letters: Callable[[World, Any], set[str]] | None = None
    kind: str = "service"          # service | object | account | none: for the 404/403 checks


def _items(w: World, body: Any) -> set[str]:
    return {x for x in (w.letter(i.get("service_id")) for i in body["items"]) if x}


def _roots(w: World, body: Any) -> set[str]:
    return {x for x in (w.letter(k) for k in body.get("accumulator_roots", {})) if x}


def _delegations(w: World, body: Any) -> set[str]:
    return {x for x in (w.letter(d["service_id"]) for d in body["delegations"]) if x}


def _fresh_delegate(w: World, target: str) -> str:
    if target == "missing":
        return "1"
    sid = w.sid[target]
    d = _ok(w.op.post(f"/jam/services/{sid}/delegates",
                      json={"token": "victim-" + secrets.token_hex(12), "role": "reader"}))
    return str(d["id"])


def _fresh_accessor(w: World, target: str) -> str:
    if target == "missing":
        return "0" * 16
    return _ok(w.op.post(f"/jam/accounts/{w.acc[target]}/tokens",
                         json={"name": "victim"}))["accessor"]


def _blob(w: World) -> bytes:
    return b"matrix blob %d" % w.fresh()


def _preimage_put(w: World, c: httpx.Client, t: str | None) -> httpx.Response:
    data = _blob(w)
    return c.put(f"/jam/preimages/{blake(data)}", params={"service_id": w.sid[t]}, content=data)


S = "/jam/services"
ROWS: dict[str, Row] = {
    "status": Row(lambda w, c, t: c.get("/system/status"), "read", False, _roots, "none"),
    "me": Row(lambda w, c, t: c.get("/jam/accounts/me"), "read", False, _delegations, "none"),
    "accounts.create": Row(lambda w, c, t: c.post("/jam/accounts", json={"name": "x"}),
                           "manage", False, kind="none"),
    "services.create": Row(lambda w, c, t: c.post(S, json={"owner": w.acc["own"]}),
                           "manage", False, kind="none"),
    "services.list": Row(lambda w, c, t: c.get(S, params={"limit": 500}), "read", False, _items),
    "packages.list_all": Row(lambda w, c, t: c.get("/jam/packages", params={"limit": 500}),
                             "read", False, _items),
    "reports.list_all": Row(lambda w, c, t: c.get("/jam/reports", params={"limit": 500}),
                            "read", False, _items),
    "receipts.list_all": Row(lambda w, c, t: c.get("/jam/receipts", params={"limit": 500}),
                             "read", False, _items),
    "services.get": Row(lambda w, c, t: c.get(f"{S}/{w.sid[t]}"), "read"),
    "storage.get": Row(lambda w, c, t: c.get(f"{S}/{w.sid[t]}/storage/0x01"), "read"),
    "storage.list": Row(lambda w, c, t: c.get(f"{S}/{w.sid[t]}/storage"), "read"),
    "accumulations.list": Row(lambda w, c, t: c.get(f"{S}/{w.sid[t]}/accumulations"),
                              "read"),
    "quota.get": Row(lambda w, c, t: c.get(f"{S}/{w.sid[t]}/quota"), "read"),
    "packages.list": Row(lambda w, c, t: c.get("/jam/packages",
                                               params={"service_id": w.sid[t], "limit": 500}),
                         "read", letters=_items),
    "reports.list": Row(lambda w, c, t: c.get("/jam/reports",
                                              params={"service_id": w.sid[t], "limit": 500}),
                        "read", letters=_items),
    "receipts.list": Row(lambda w, c, t: c.get("/jam/receipts",
                                               params={"service_id": w.sid[t], "limit": 500}),
                         "read", letters=_items),
    "delegates.list": Row(lambda w, c, t: c.get(f"{S}/{w.sid[t]}/delegates"), "manage"),
    "package.get": Row(lambda w, c, t: c.get(f"/jam/packages/{w.package[t]}"), "read",
                       kind="object"),
    "package.report": Row(lambda w, c, t: c.get(f"/jam/packages/{w.package[t]}/report"),
                          "read", kind="object"),
    "package.accumulation": Row(
        lambda w, c, t: c.get(f"/jam/packages/{w.package[t]}/accumulation"), "read",
        kind="object"),
    "receipt.get": Row(lambda w, c, t: c.get(f"/jam/receipts/{w.receipt[t]}"), "read",
                       kind="object"),
    "preimage.get": Row(lambda w, c, t: c.get(f"/jam/preimages/{w.preimage[t]}"), "read",
                        kind="object"),
    "preimage.head": Row(lambda w, c, t: c.head(f"/jam/preimages/{w.preimage[t]}"), "read",
                         kind="object"),
    "preimage.meta": Row(lambda w, c, t: c.get(f"/jam/preimages/{w.preimage[t]}/meta"), "read",
                         kind="object"),
    "tokens.list": Row(lambda w, c, t: c.get(f"/jam/accounts/{w.acc[t]}/tokens"),
                       kind="account"),
    "tokens.create": Row(lambda w, c, t: c.post(f"/jam/accounts/{w.acc[t]}/tokens",
                                                json={"name": "made-in-matrix"}),
                         kind="account"),
    "tokens.revoke": Row(lambda w, c, t: c.delete(
        f"/jam/accounts/{w.acc[t]}/tokens/{_fresh_accessor(w, t)}"), kind="account"),
    "packages.submit": Row(lambda w, c, t: c.post(
        "/jam/packages", json=simple_package(w.sid[t], b"cell %d" % w.fresh())), "submit"),
    "preimage.put": Row(_preimage_put, "submit"),
    "code.put": Row(lambda w, c, t: c.put(
        f"{S}/{w.sid[t]}/code", content=b"\x00\x01\x02" + bytes([w.fresh() % 256]),
        headers={"Content-Type": "application/octet-stream"})),
    "delegates.add": Row(lambda w, c, t: c.post(
        f"{S}/{w.sid[t]}/delegates", json={"token": "grant-" + secrets.token_hex(12),
                                           "role": "reader"})),
    "delegates.remove": Row(lambda w, c, t: c.delete(
        f"{S}/{w.sid[t]}/delegates/{_fresh_delegate(w, t)}")),
    "quota.put": Row(lambda w, c, t: c.put(f"{S}/{w.sid[t]}/quota", json={
        "pending_packages": 1000, "storage_bytes": 10**9, "gas_per_hour": 10**13})),
    "credit": Row(lambda w, c, t: c.post(f"{S}/{w.sid[t]}/credit", json={"amount": 1})),
    "process": Row(lambda w, c, t: c.post("/jam/process"), "manage", False, kind="none"),
}


def cell_ok(w: World, row: Row, expected: str, resp: httpx.Response) -> bool:
    on, _, off = expected.partition("/")
    wanted = on if w.authz or not off else off
    for alternative in wanted.split("|"):
        status, _, letters = alternative.partition(":")
        if resp.status_code != int(status):
            continue
        if letters:
            assert row.letters is not None
            if row.letters(w, resp.json()) != (set() if letters == "-" else set(letters)):
                continue
        return True
    return False


def describe(resp: httpx.Response) -> str:
    return f"{resp.status_code} {resp.text[:160]!r}"


def comparable(resp: httpx.Response) -> tuple[int, str, list[tuple[str, str]]]:
    """Everything a caller can observe of an answer, except the Date header."""
    headers = sorted((k.lower(), v) for k, v in resp.headers.items() if k.lower() != "date")
    return resp.status_code, resp.text, headers


def run_matrix(w: World) -> tuple[list[str], int]:
    table = parse_expected(EXPECTED)
    assert set(table) == set(ROWS), set(table) ^ set(ROWS)
    mismatches: list[str] = []
    cells = 0
    clients = {p: w.srv.client(tok) for p, tok in w.tokens.items() if p != "noscope"}
    noscope = {need: w.srv.client(tok) for need, tok in w.noscope.items()}
    try:
        for name, row in ROWS.items():
            expected = table[name]
            assert set(expected) == set(PRINCIPALS), f"{name}: {set(PRINCIPALS) - set(expected)}"
            for principal in PRINCIPALS:
                client = noscope[row.needs] if principal == "noscope" else clients[principal]
                cells_exp = expected[principal]
                targets = TARGETS if row.targeted else (None,)
                assert len(cells_exp) == len(targets), f"{name}/{principal}: {cells_exp}"
                seen: dict[str | None, httpx.Response] = {}
                for target, exp in zip(targets, cells_exp, strict=True):
                    resp = row.call(w, client, target)
                    seen[target] = resp
                    cells += 1
                    if not cell_ok(w, row, exp, resp):
                        mismatches.append(f"{name} {principal} {target or '-'}: expected {exp}, "
                                          f"got {describe(resp)}")
                    if resp.status_code >= 400 and resp.request.method != "HEAD":
                        body = resp.json()
                        if set(body) != {"error", "code"}:
                            mismatches.append(f"{name} {principal} {target}: error body "
                                              f"{body!r} is not {{error, code}}")
                    if resp.status_code == 401 and resp.headers.get("www-authenticate") != "Bearer":
                        mismatches.append(f"{name} {principal} {target}: 401 without "
                                          "WWW-Authenticate: Bearer")
                mismatches += no_oracle(name, row, principal, w.authz, seen)
    finally:
        for c in [*clients.values(), *noscope.values()]:
            c.close()
    mismatches += malformed_like_missing(w)
    return mismatches, cells


def no_oracle(name: str, row: Row, principal: str, authz: bool,
              seen: dict[str | None, httpx.Response]) -> list[str]:
    """With authz on, another tenant's object (or, for non-operators, service or account) must
    be answered exactly like a missing one: same status, body and headers."""
    other, missing = seen.get("other"), seen.get("missing")
    if other is None or missing is None or principal == "operator" or not authz:
        return []
    if row.kind == "object" and other.status_code == 404 or (
            row.kind in ("service", "account") and other.status_code == 403):
        if comparable(other) != comparable(missing):
            return [f"{name} {principal}: other tenant's target answered {comparable(other)}, "
                    f"missing one {comparable(missing)}"]
    return []


def malformed_like_missing(w: World) -> list[str]:
    """A malformed package id / preimage hash / receipt hash in a path names nothing: the
    answer is byte-identical to a missing object's."""
    out = []
    with w.srv.client(w.tokens["owner"]) as c:
        for bad in ("zz", "0x1234", "0x" + "ab" * 31 + "a", "g" * 64, "0x" + "ab" * 33):
            for path, method in (("/jam/packages/{}", "GET"), ("/jam/packages/{}/report", "GET"),
                                 ("/jam/packages/{}/accumulation", "GET"),
                                 ("/jam/receipts/{}", "GET"), ("/jam/preimages/{}", "GET"),
                                 ("/jam/preimages/{}", "HEAD"), ("/jam/preimages/{}/meta", "GET")):
                got = c.request(method, path.format(bad))
                missing = c.request(method, path.format(MISSING_HASH))
                if comparable(got) != comparable(missing):
                    out.append(f"{method} {path.format(bad)}: {comparable(got)} differs from a "
                               f"missing object's {comparable(missing)}")
    return out


@pytest.mark.parametrize("authz", [True, False], ids=["authz_on", "authz_off"])
def test_authz_matrix(server_factory, store_keys, authz):
    srv = server_factory(**store_keys, authz_enabled=authz, owner_is_account=True,
                         rate_limit_per_minute=0, service_rate_limit_per_minute=0,
                         account_rate_limit_per_minute=0)
    world = build_world(srv, store_keys, authz)
    try:
        mismatches, cells = run_matrix(world)
    finally:
        world.op.close()
    assert cells >= 800
    assert not mismatches, f"{len(mismatches)} of {cells} cells differ:\n" + "\n".join(mismatches)


def test_expected_table_is_complete():
    """Every row names each principal once, with one cell per target (or one when untargeted)."""
    table = parse_expected(EXPECTED)
    assert set(table) == set(ROWS)
    for name, row in ROWS.items():
        assert set(table[name]) == set(PRINCIPALS), name
        for principal, cells in table[name].items():
            assert len(cells) == (3 if row.targeted else 1), (name, principal)
