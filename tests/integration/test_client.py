"""`jamhost.client` against a real server: every endpoint, every reachable SPEC error code as
its typed exception, sync and async; local hash verification; cursor following.

One server per module (plus a small rate-limited one for 429). Each test makes its own
tenants, so tests do not depend on each other.
"""

from __future__ import annotations

import asyncio
import inspect
import io
import json
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from jamhost import client as jc
from jamhost.client import AsyncJamClient, Call, JamClient
from jamhost.domain.hashing import blake2b_256
from jamhost.domain.types.work_package import WorkPackage
from jamhost.examples import counter, kvstore
from tests.conftest import (
    OPERATOR_TOKEN,
    Server,
    free_port,
    make_tenant,
    simple_package,
    start_server,
)

MAX_PREIMAGE = 64 * 1024
MAX_PACKAGE = 4096


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s = start_server(tmp_path_factory.mktemp("client"), max_preimage_bytes=MAX_PREIMAGE,
                     max_package_bytes=MAX_PACKAGE, rate_limit_per_minute=0,
                     service_rate_limit_per_minute=0, account_rate_limit_per_minute=0)
    yield s
    s.stop()


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s = start_server(tmp_path_factory.mktemp("limited"), rate_limit_per_minute=4,
                     service_rate_limit_per_minute=0)
    yield s
    s.stop()


# The same test body drives both clients: `w(x)` awaits x when the client is async, `items(i)`
# drains a sync or an async iterator.

async def w(x: Any) -> Any:
    return await x if inspect.isawaitable(x) else x


async def items(it: Any) -> list[Any]:
    if hasattr(it, "__aiter__"):
        return [i async for i in it]
    return list(it)


Factory = Callable[[str, str | None], Any]


def run(kind: str, body: Callable[[Factory], Awaitable[None]]) -> None:
    """Run `body(make_client)` with sync or async clients, closing them afterwards."""
    async def main() -> None:
        made: list[Any] = []

        def make(url: str, token: str | None) -> Any:
            c = JamClient(url, token) if kind == "sync" else AsyncJamClient(url, token)
            made.append(c)
            return c
        try:
            await body(make)
        finally:
            for c in made:
                await w(c.close() if kind == "sync" else c.aclose())
    asyncio.run(main())


KINDS = ["sync", "async"]


async def _drain(op: Any) -> int:
    """Process every pending package of the server (other tests' too)."""
    n = 0
    while await w(op.process()) is not None:
        n += 1
    return n


@pytest.mark.parametrize("kind", KINDS)
def test_every_endpoint(srv: Server, kind: str, tmp_path: Path) -> None:
    async def body(make: Factory) -> None:
        op = make(srv.url, OPERATOR_TOKEN)
        assert await w(op.health()) == {"status": "ok"}
        assert (await w(op.ready()))["status"] == "ready"
        assert "jamhost" in await w(op.metrics())
        acc = await w(op.create_account(f"client-{kind}"))
        tok = await w(op.create_token(acc["id"], name="main"))
        c = make(srv.url, tok["token"])

        me = await w(c.me())
        assert me["account"]["id"] == acc["id"] and me["accessor"] == tok["accessor"]
        assert (await w(c.status()))["caller"]["accessor"] == tok["accessor"]

        # tokens of the own account
        ci = await w(c.create_token(acc["id"], name="ci", scopes=["read"]))
        listed = {t["accessor"] for t in await items(c.tokens(acc["id"]))}
        assert {tok["accessor"], ci["accessor"]} <= listed
        assert await w(c.revoke_token(acc["id"], ci["accessor"])) is None
        with pytest.raises(jc.Unauthenticated):
            await w(make(srv.url, ci["token"]).me())

        # services
        code = counter.build()
        svc = await w(c.create_service(code))
        sid = svc["service_id"]
        assert svc["code_hash"] == jc.hx(blake2b_256(code)) and svc["owner"] == acc["id"]
        assert sid in [s["service_id"] for s in await items(c.services())]
        assert (await w(c.service(sid)))["service_id"] == sid
        other = kvstore.build()
        assert (await w(c.upgrade_code(sid, other)))["code_hash"] == jc.hx(blake2b_256(other))
        assert (await w(c.upgrade_code(sid, code)))["code_hash"] == svc["code_hash"]
        quota = await w(c.quota(sid))
        assert quota["usage"]["pending_packages"] == 0
        assert (await w(op.set_quota(sid, pending_packages=50)))["limits"][
            "pending_packages"] == 50
        assert (await w(op.credit(sid, 5)))["balance"] == svc["balance"] + 5

        # packages: JSON form, then the same again (idempotent), then GP bytes
        first = await w(c.submit_package(simple_package(sid, b"\x01")))
        assert first["created"] is True and first["status"] == "pending"
        again = await w(c.submit_package(simple_package(sid, b"\x01")))
        assert again["created"] is False and again["id"] == first["id"]
        raw = WorkPackage.from_json({**first["package"], "items": [
            {**first["package"]["items"][0], "payload": "0x02"}]}).encode()
        second = await w(c.submit_package(raw))
        assert second["id"] == jc.package_id(raw) and second["created"] is True
        assert await _drain(op) >= 2
        assert await w(op.process()) is None
        pkg = await w(c.package(first["id"]))
        assert pkg["status"] == "applied" and pkg["report_hash"]
        listed_pkgs = await items(c.packages(sid, status="applied"))
        assert {p["id"] for p in listed_pkgs} == {first["id"], second["id"]}
        assert await items(c.packages(sid, status="pending")) == []

        report = await w(c.report(first["id"]))
        assert report["report_hash"] == pkg["report_hash"] and len(report["attestations"]) >= 2
        assert {r["package_id"] for r in await items(c.reports(sid))} == {first["id"],
                                                                           second["id"]}
        chain = await items(c.receipts(sid))
        assert [r["seq"] for r in chain] == [1, 2, 3, 4]
        assert (await w(c.receipt(first["id"])))["hash"] == first["id"]

        # state written by the counter: two items accumulated
        assert await w(c.storage(sid, b"count")) == (2).to_bytes(8, "little")
        assert await items(c.storage_items(sid, b"co")) == [
            {"key": jc.hx(b"count"), "value": jc.hx((2).to_bytes(8, "little"))}]
        assert await items(c.storage_items(sid, b"zz")) == []
        with pytest.raises(jc.NotFound):
            await w(c.storage(sid, b"missing"))

        # preimages: bytes, and a file streamed with progress
        meta = await w(c.put_preimage(b"hello", sid, media_type="text/plain"))
        assert meta["hash"] == jc.preimage_hash(b"hello") and meta["media_type"] == "text/plain"
        assert await w(c.get_preimage(meta["hash"])) == b"hello"
        assert await w(c.get_preimage(meta["hash"][2:])) == b"hello"  # without 0x
        assert (await w(c.preimage_meta(meta["hash"])))["service_id"] == sid
        assert await w(c.preimage_head(meta["hash"])) == {
            "hash": meta["hash"], "size": 5, "media_type": "text/plain"}
        blob = tmp_path / f"blob-{kind}"
        blob.write_bytes(bytes(range(256)) * 200)
        sent: list[int] = []
        big = await w(c.put_preimage(blob, sid, progress=sent.append))
        assert big["hash"] == jc.file_hash(blob) and sum(sent) == blob.stat().st_size
        out, got = io.BytesIO(), []
        done = await w(c.download_preimage(big["hash"], out, progress=got.append))
        assert out.getvalue() == blob.read_bytes() and done["size"] == sum(got)

        # delegates: a raw shared token as reader
        shared = "shared-" + "ab" * 16
        d = await w(c.add_delegate(sid, token=shared, role="reader"))
        assert d["role"] == "reader"
        reader = make(srv.url, shared)
        assert (await w(reader.service(sid)))["service_id"] == sid
        with pytest.raises(jc.Forbidden):
            await w(reader.submit_package(simple_package(sid, b"\x09")))
        assert [x["id"] for x in await items(c.delegates(sid))] == [d["id"]]
        assert await w(c.remove_delegate(sid, d["id"])) is None
        assert await items(c.delegates(sid)) == []
        with pytest.raises(jc.Unauthenticated):
            await w(reader.service(sid))

        # operators: the audit log saw the quota change
        actions = {e["action"] for e in await items(op.audit(limit=100))}
        assert "quota.changed" in actions
    run(kind, body)


@pytest.mark.parametrize("kind", KINDS)
def test_cursor_following(srv: Server, kind: str) -> None:
    t = make_tenant(srv, f"pages-{kind}", kvstore.build())
    pairs = [(f"k{i:02d}".encode(), f"v{i}".encode()) for i in range(7)]

    async def body(make: Factory) -> None:
        c, op = make(srv.url, t.token), make(srv.url, OPERATOR_TOKEN)
        ids = set()
        for pair in pairs:
            p = await w(c.submit_package(simple_package(
                t.service_id, kvstore.entries([pair]), gas=1_000_000)))
            ids.add(p["id"])
        assert await _drain(op) >= 7
        # limit=2 makes the server answer 4 pages; the iterators follow next_cursor
        first_page = httpx.get(srv.url + "/jam/packages", params={
            "service_id": t.service_id, "limit": 2},
            headers={"Authorization": f"Bearer {t.token}"}).json()
        assert len(first_page["items"]) == 2 and first_page["next_cursor"]
        listed = await items(c.packages(t.service_id, limit=2))
        assert len(listed) == 7 and {p["id"] for p in listed} == ids
        assert len(await items(c.reports(t.service_id, limit=3))) == 7
        assert [r["seq"] for r in await items(c.receipts(t.service_id, limit=2))] == list(
            range(1, 15))
        kv = await items(c.storage_items(t.service_id, b"k", limit=2))
        assert [(bytes.fromhex(e["key"][2:]), bytes.fromhex(e["value"][2:])) for e in kv] == pairs
        assert t.service_id in [s["service_id"] for s in await items(op.services(limit=1))]
    run(kind, body)


@pytest.mark.parametrize("kind", KINDS)
def test_every_reachable_error_code(srv: Server, limited: Server, kind: str) -> None:
    a = make_tenant(srv, f"err-a-{kind}", counter.build())
    b = make_tenant(srv, f"err-b-{kind}", counter.build())

    async def expect(cls: type[jc.JamHostError], status: int,
                     call: Callable[[], Any]) -> jc.JamHostError:
        with pytest.raises(cls) as info:
            await w(call())
        err = info.value
        assert isinstance(err, jc.JamHostError)
        assert (err.status, err.code) == (status, cls.code)
        assert err.body == {"error": err.message, "code": cls.code}
        return err

    async def body(make: Factory) -> None:
        c, op = make(srv.url, a.token), make(srv.url, OPERATOR_TOKEN)
        await expect(jc.BadRequest, 400, lambda: c.submit_package({"service_id": a.service_id,
                                                           "items": []}))
        await expect(jc.BadRequest, 400, lambda: c.submit_package(b"\xff\x00"))
        await expect(jc.HashMismatch, 400, lambda: c._send(Call(
            "PUT", "/jam/preimages/0x" + "11" * 32, params={"service_id": a.service_id},
            content=b"not that")))
        await expect(jc.Unauthenticated, 401, lambda: make(srv.url, "jam_0000_nope").me())
        await expect(jc.Unauthenticated, 401, lambda: make(srv.url, None).services().__anext__()
                     if kind == "async" else _first(make(srv.url, None).services()))
        await expect(jc.Forbidden, 403, lambda: c.service(b.service_id))
        await expect(jc.Forbidden, 403, lambda: c.set_quota(a.service_id, pending_packages=1))
        await expect(jc.NotFound, 404, lambda: c.package("0x" + "00" * 32))
        await expect(jc.NotFound, 404, lambda: c.get_preimage("0x" + "00" * 32))
        with pytest.raises(jc.NotFound):  # HEAD: no body, the status says it
            await w(c.preimage_head("0x" + "00" * 32))
        await expect(jc.TooLarge, 413, lambda: c.put_preimage(b"x" * (MAX_PREIMAGE + 1),
                                                              a.service_id))
        await expect(jc.TooLarge, 413, lambda: c.submit_package(simple_package(
            a.service_id, b"p" * MAX_PACKAGE)))
        await expect(jc.UnsupportedMediaType, 415, lambda: c._send(Call(
            "POST", "/jam/services", content=b"code", headers={"Content-Type": "text/plain"})))

        await w(op.set_quota(a.service_id, pending_packages=1, storage_bytes=64,
                             gas_per_hour=10_000))
        await w(c.submit_package(simple_package(a.service_id, b"\x01")))
        await expect(jc.PendingLimit, 409, lambda: c.submit_package(simple_package(a.service_id,
                                                                          b"\x02")))
        await expect(jc.StorageQuotaExceeded, 409,
                     lambda: c.put_preimage(b"s" * 100, a.service_id))
        gas = await expect(jc.GasQuotaExceeded, 409, lambda: c.submit_package(simple_package(
            a.service_id, b"\x03", gas=1_000_000)))
        assert isinstance(gas, jc.GasQuotaExceeded) and (gas.retry_after or 0) > 0
        # nothing refused above was stored
        assert [p["status"] for p in await items(c.packages(a.service_id))] == ["pending"]

        # 429 on the rate-limited server (4 a minute per token)
        acc = await w(make(limited.url, OPERATOR_TOKEN).create_account(f"rl-{kind}"))
        tok = await w(make(limited.url, OPERATOR_TOKEN).create_token(acc["id"]))
        rl = make(limited.url, tok["token"])
        for _ in range(4):
            await w(rl.me())
        err = await expect(jc.RateLimited, 429, lambda: rl.me())
        assert isinstance(err, jc.RateLimited) and (err.retry_after or 0) >= 1
        assert "ratelimit-policy" in err.headers

        with pytest.raises(jc.Unreachable):
            await w(make(f"http://127.0.0.1:{free_port()}", a.token).health())
    run(kind, body)


def _first(it: Iterator[Any]) -> Any:
    return next(it)


# -- local verification: a server that lies is caught ----------------------------------------

def _lying(handler: Callable[[httpx.Request], httpx.Response]) -> tuple[JamClient, Any]:
    sync = JamClient("http://liar", "t", transport=httpx.MockTransport(handler))
    asyn = AsyncJamClient("http://liar", "t", transport=httpx.MockTransport(handler))
    return sync, asyn


def _both(handler: Callable[[httpx.Request], httpx.Response],
          call: Callable[[Any], Any]) -> list[jc.VerificationError]:
    sync, asyn = _lying(handler)
    errors = []
    with pytest.raises(jc.VerificationError) as info:
        call(sync)
    errors.append(info.value)

    async def go() -> None:
        with pytest.raises(jc.VerificationError) as ainfo:
            await call(asyn)
        errors.append(ainfo.value)
        await asyn.aclose()
    asyncio.run(go())
    sync.close()
    return errors


def test_preimage_hash_is_checked_locally() -> None:
    wrong = "0x" + "ee" * 32
    errs = _both(lambda r: httpx.Response(201, json={"hash": wrong, "size": 3}),
                 lambda c: c.put_preimage(b"abc", 1))
    assert all(e.expected == jc.preimage_hash(b"abc") and e.got == wrong for e in errs)
    # a blob whose bytes do not hash to the requested address
    _both(lambda r: httpx.Response(200, content=b"tampered"),
          lambda c: c.get_preimage(jc.preimage_hash(b"original")))
    _both(lambda r: httpx.Response(200, content=b"tampered"),
          lambda c: c.download_preimage(jc.preimage_hash(b"original"), io.BytesIO()))


def test_package_and_report_hashes_are_checked_locally(srv: Server) -> None:
    t = make_tenant(srv, "verify", counter.build())
    with JamClient(srv.url, t.token) as c, JamClient(srv.url, OPERATOR_TOKEN) as op:
        real = c.submit_package(simple_package(t.service_id, b"\x05"))
        while op.process() is not None:
            pass
        report = c.report(real["id"])
    raw = WorkPackage.from_json(real["package"]).encode()
    assert jc.package_id(raw) == real["id"]
    lie = {**real, "id": "0x" + "ab" * 32}
    # bytes input: the id must be blake2b-256 of what we sent
    errs = _both(lambda r: httpx.Response(201, json=lie), lambda c: c.submit_package(raw))
    assert all(e.expected == real["id"] for e in errs)
    # JSON input: the id must be the hash of the package the server says it stored
    _both(lambda r: httpx.Response(201, json=lie),
          lambda c: c.submit_package(simple_package(t.service_id, b"\x05")))
    _both(lambda r: httpx.Response(200, json={**real, "package": {
        **real["package"], "authorization": "0x01"}}), lambda c: c.package(real["id"]))
    _both(lambda r: httpx.Response(200, json={**report, "report_hash": "0x" + "cd" * 32}),
          lambda c: c.report(real["id"]))
    _both(lambda r: httpx.Response(200, json={"code_hash": "0x" + "00" * 32}),
          lambda c: c.upgrade_code(t.service_id, b"code"))
    # and an honest answer passes
    honest = JamClient("http://x", "t", transport=httpx.MockTransport(
        lambda r: httpx.Response(200, json=real)))
    assert honest.submit_package(raw)["created"] is False


def test_unknown_codes_and_5xx_keep_status_and_code() -> None:
    c = JamClient("http://x", "t", transport=httpx.MockTransport(lambda r: httpx.Response(
        500, json={"error": "internal error", "code": "jam_internal"})))
    with pytest.raises(jc.ServerError) as info:
        c.status()
    assert (info.value.status, info.value.code) == (500, "jam_internal")
    c = JamClient("http://x", "t", transport=httpx.MockTransport(lambda r: httpx.Response(
        418, text="teapot")))
    with pytest.raises(jc.JamHostError) as other:
        c.status()
    assert type(other.value) is jc.JamHostError and other.value.status == 418
    assert json.dumps(other.value.body)  # always a JSON-able body
