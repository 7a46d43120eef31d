"""Python client of the jamhost HTTP API (httpx): `JamClient` (sync) and `AsyncJamClient`.

Both clients are the same class body (`_Endpoints`): each endpoint method builds a `Call` (the
request and how to read its answer) and hands it to the client's `_send`, which is the only
place that does I/O. So the two clients cannot drift apart: `JamClient.service(7)` returns the
service, `await AsyncJamClient.service(7)` too. Listings return iterators that follow
`next_cursor` (`for p in c.packages(...)` / `async for p in ac.packages(...)`).

A refused request raises a `JamHostError` subclass named after its SPEC §3 code (`NotFound`,
`RateLimited` with `retry_after`, ...). Hashes are computed locally and checked against what
the server answers: a preimage upload or download whose hash differs, or a submitted package
whose id is not blake2b-256 of its GP encoding, raises `VerificationError`. A server that
cannot be reached raises `Unreachable`.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any, Generic, TypeVar

import httpx

from jamhost.domain.hashing import blake2b_256

__all__ = [
    "AsyncJamClient", "BadRequest", "Forbidden", "GasQuotaExceeded", "HashMismatch",
    "JamClient", "JamHostError", "NotFound", "PendingLimit", "RateLimited", "ServerError",
    "StorageQuotaExceeded", "TooLarge", "Unauthenticated", "Unreachable",
    "UnsupportedMediaType", "VerificationError", "package_id", "preimage_hash",
]

CHUNK = 256 * 1024
Progress = Callable[[int], None]  # called with the number of bytes just sent or received


# -- errors -----------------------------------------------------------------------------------

class JamHostError(Exception):
    """A request the server refused: HTTP status, SPEC code and message (and the raw body)."""

    code = "unknown"

    def __init__(self, status: int, code: str, message: str, body: Any = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.body = body if body is not None else {"error": message, "code": code}
        self.headers = headers or {}


class BadRequest(JamHostError):
    code = "jam_bad_request"


class HashMismatch(JamHostError):
    code = "jam_hash_mismatch"


class Unauthenticated(JamHostError):
    code = "jam_unauthenticated"


class Forbidden(JamHostError):
    code = "jam_authz"


class NotFound(JamHostError):
    code = "jam_not_found"


class PendingLimit(JamHostError):
    code = "jam_pending_limit"


class StorageQuotaExceeded(JamHostError):
    code = "jam_storage_quota"


class _RetryAfter(JamHostError):
    @property
    def retry_after(self) -> float | None:
        """Seconds to wait, from the `Retry-After` header (None when absent)."""
        value = self.headers.get("retry-after")
        try:
            return float(value) if value is not None else None
        except ValueError:
            return None


class GasQuotaExceeded(_RetryAfter):
    code = "jam_gas_quota"


class TooLarge(JamHostError):
    code = "jam_too_large"


class UnsupportedMediaType(JamHostError):
    code = "jam_unsupported_media_type"


class RateLimited(_RetryAfter):
    code = "jam_rate_limit"


class ServerError(JamHostError):
    """A 5xx: not a refusal of the SPEC table, a fault of the server."""

    code = "jam_internal"


ERRORS: dict[str, type[JamHostError]] = {cls.code: cls for cls in (
    BadRequest, HashMismatch, Unauthenticated, Forbidden, NotFound, PendingLimit,
    StorageQuotaExceeded, GasQuotaExceeded, TooLarge, UnsupportedMediaType, RateLimited)}


class VerificationError(Exception):
    """The server answered, but its answer does not match what was computed locally."""

    def __init__(self, what: str, expected: str, got: str | None) -> None:
        super().__init__(f"{what}: computed {expected}, server says {got}")
        self.what, self.expected, self.got = what, expected, got


class Unreachable(Exception):
    """The server could not be reached (connection refused, DNS, timeout, ...)."""

    def __init__(self, url: str, cause: Exception) -> None:
        super().__init__(f"cannot reach {url}: {type(cause).__name__}: {cause}")
        self.url, self.cause = url, cause


# A body-less answer (HEAD) still says what it is through its status, where that is unambiguous.
BY_STATUS: dict[int, type[JamHostError]] = {
    401: Unauthenticated, 403: Forbidden, 404: NotFound, 413: TooLarge,
    415: UnsupportedMediaType, 429: RateLimited}


def error_from(resp: httpx.Response) -> JamHostError:
    try:
        body = resp.json()
        code, message = str(body.get("code", "unknown")), str(body.get("error", ""))
    except (ValueError, AttributeError):
        body, code, message = None, "unknown", resp.text[:200]
    if resp.status_code >= 500:
        cls: type[JamHostError] = ServerError
    elif code in ERRORS:
        cls = ERRORS[code]
    elif body is None and resp.status_code in BY_STATUS:
        cls = BY_STATUS[resp.status_code]
        code = cls.code
    else:
        cls = JamHostError
    return cls(resp.status_code, code, message, body, dict(resp.headers))


# -- local hashes -----------------------------------------------------------------------------

def hx(data: bytes) -> str:
    return "0x" + data.hex()


def preimage_hash(data: bytes) -> str:
    """The preimage's address: blake2b-256 of its bytes, as `0x` hex."""
    return hx(blake2b_256(data))


def package_id(encoded_package: bytes) -> str:
    """A package's id: blake2b-256 of its GP encoding, as `0x` hex."""
    return hx(blake2b_256(encoded_package))


def file_hash(path: Path) -> str:
    """blake2b-256 of a file, read in chunks (large preimages are never held whole)."""
    h = hashlib.blake2b(digest_size=32)
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return "0x" + h.hexdigest()


def _norm(hash_: str) -> str:
    return hash_.lower() if hash_.startswith("0x") else "0x" + hash_.lower()


def _verify_package(resp: httpx.Response, expected: str | None) -> Any:
    """The server's package id must be the hash of the package it says it stored (and, when we
    sent GP bytes or a full w3f package, of what we sent)."""
    from jamhost.domain.types.work_package import WorkPackage

    body = resp.json()
    got = body.get("id")
    if expected is not None and got != expected:
        raise VerificationError("package id", expected, got)
    if body.get("package") is not None:
        computed = package_id(WorkPackage.from_json(body["package"]).encode())
        if got != computed:
            raise VerificationError("package id of the returned package", computed, got)
    return body


# -- requests ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Upload:
    """A request body streamed from a file (or bytes), reporting progress."""

    source: Path | bytes
    size: int
    progress: Progress | None = None

    def chunks(self) -> Iterator[bytes]:
        if isinstance(self.source, bytes):
            for i in range(0, max(len(self.source), 1), CHUNK):
                piece = self.source[i:i + CHUNK]
                if piece and self.progress:
                    self.progress(len(piece))
                yield piece
            return
        with self.source.open("rb") as f:
            while chunk := f.read(CHUNK):
                if self.progress:
                    self.progress(len(chunk))
                yield chunk

    async def achunks(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks():
            yield chunk


@dataclass(frozen=True)
class Call:
    """One HTTP request and how to turn its answer into a result."""

    method: str
    path: str
    params: dict[str, Any] = field(default_factory=dict)
    json: Any = None
    content: bytes | Upload | None = None
    headers: dict[str, str] = field(default_factory=dict)
    parse: Callable[[httpx.Response], Any] = lambda r: r.json() if r.content else None
    # downloads: stream the body into `sink` instead of reading it whole, checking that it
    # hashes to `sink_hash`
    sink: IO[bytes] | None = None
    sink_hash: str = ""
    sink_progress: Progress | None = None

    def with_cursor(self, cursor: str | None) -> Call:
        return replace(self, params={**self.params, "cursor": cursor})

    def kwargs(self) -> dict[str, Any]:
        kw: dict[str, Any] = {"params": {k: v for k, v in self.params.items() if v is not None},
                              "headers": self.headers}
        if self.json is not None:
            kw["json"] = self.json
        if isinstance(self.content, bytes):
            kw["content"] = self.content
        return kw


def _params(**kw: Any) -> dict[str, Any]:
    return {k: v for k, v in kw.items() if v is not None}


def _octets(media_type: str = "application/octet-stream") -> dict[str, str]:
    return {"Content-Type": media_type}


R = TypeVar("R")  # what an endpoint method returns: Any, or Awaitable[Any]
P = TypeVar("P")  # what a listing returns: Iterator[dict], or AsyncIterator[dict]


class _Endpoints(Generic[R, P]):
    """Every endpoint of SPEC §3, once. Subclasses provide `_send` and `_pages`."""

    def _send(self, call: Call) -> R:
        raise NotImplementedError

    def _pages(self, call: Call) -> P:
        raise NotImplementedError

    # system
    def health(self) -> R:
        return self._send(Call("GET", "/healthz"))

    def ready(self) -> R:
        """`{status, store}`; a store that cannot be reached answers 503 (`ServerError`)."""
        return self._send(Call("GET", "/readyz"))

    def status(self) -> R:
        return self._send(Call("GET", "/system/status"))

    def metrics(self) -> R:
        return self._send(Call("GET", "/metrics", parse=lambda r: r.text))

    # accounts and tokens
    def create_account(self, name: str) -> R:
        return self._send(Call("POST", "/jam/accounts", json={"name": name}))

    def me(self) -> R:
        return self._send(Call("GET", "/jam/accounts/me"))

    def create_token(self, account_id: str, name: str = "token",
                     scopes: list[str] | None = None, expires_at: str | int | None = None) -> R:
        """`{token, accessor, ...}`: the only time the token itself is shown."""
        body = _params(name=name, scopes=scopes, expires_at=expires_at)
        return self._send(Call("POST", f"/jam/accounts/{account_id}/tokens", json=body))

    def tokens(self, account_id: str) -> P:
        return self._pages(Call("GET", f"/jam/accounts/{account_id}/tokens"))

    def revoke_token(self, account_id: str, accessor: str) -> R:
        return self._send(Call("DELETE", f"/jam/accounts/{account_id}/tokens/{accessor}"))

    # services
    def create_service(self, code: bytes | None = None, balance: int | None = None,
                       min_item_gas: int | None = None, owner: str | None = None) -> R:
        body = _params(code=hx(code) if code is not None else None, balance=balance,
                       min_item_gas=min_item_gas, owner=owner)
        return self._send(Call("POST", "/jam/services", json=body))

    def services(self, limit: int | None = None) -> P:
        return self._pages(Call("GET", "/jam/services", params=_params(limit=limit)))

    def service(self, service_id: int) -> R:
        return self._send(Call("GET", f"/jam/services/{service_id}"))

    def upgrade_code(self, service_id: int, code: bytes) -> R:
        expected = hx(blake2b_256(code))

        def parse(r: httpx.Response) -> Any:
            body = r.json()
            if body.get("code_hash") != expected:
                raise VerificationError("code hash", expected, body.get("code_hash"))
            return body
        return self._send(Call("PUT", f"/jam/services/{service_id}/code", content=code,
                               headers=_octets(), parse=parse))

    def storage(self, service_id: int, key: bytes) -> R:
        """The value stored under `key` (bytes); `NotFound` when there is none."""
        return self._send(Call("GET", f"/jam/services/{service_id}/storage/{hx(key)}",
                               parse=lambda r: bytes.fromhex(r.json()["value"][2:])))

    def storage_items(self, service_id: int, prefix: bytes = b"",
                      limit: int | None = None) -> P:
        """`{key, value}` (hex) for every key starting with `prefix`, in key order."""
        return self._pages(Call("GET", f"/jam/services/{service_id}/storage",
                                params=_params(prefix=hx(prefix), limit=limit)))

    def add_delegate(self, service_id: int, *, accessor: str | None = None,
                     token: str | None = None, role: str | None = None) -> R:
        body = _params(accessor=accessor, token=token, role=role)
        return self._send(Call("POST", f"/jam/services/{service_id}/delegates", json=body))

    def delegates(self, service_id: int) -> P:
        return self._pages(Call("GET", f"/jam/services/{service_id}/delegates"))

    def remove_delegate(self, service_id: int, delegate_id: int) -> R:
        return self._send(Call("DELETE", f"/jam/services/{service_id}/delegates/{delegate_id}"))

    def quota(self, service_id: int) -> R:
        return self._send(Call("GET", f"/jam/services/{service_id}/quota"))

    def set_quota(self, service_id: int, *, pending_packages: int | None = None,
                  storage_bytes: int | None = None, gas_per_hour: int | None = None) -> R:
        """Operators only. A limit left out (None) falls back to the runtime's default."""
        body = {"pending_packages": pending_packages, "storage_bytes": storage_bytes,
                "gas_per_hour": gas_per_hour}
        return self._send(Call("PUT", f"/jam/services/{service_id}/quota", json=body))

    def credit(self, service_id: int, amount: int) -> R:
        return self._send(Call("POST", f"/jam/services/{service_id}/credit",
                               json={"amount": amount}))

    # preimages
    def put_preimage(self, data: bytes | Path, service_id: int | None = None,
                     media_type: str = "application/octet-stream",
                     progress: Progress | None = None) -> R:
        """Upload a blob (bytes, or a file streamed from disk) under its locally computed
        hash; the metadata the server answers must name that hash."""
        if isinstance(data, Path):
            expected, size = file_hash(data), data.stat().st_size
        else:
            expected, size = preimage_hash(data), len(data)
        body: bytes | Upload = (data if isinstance(data, bytes) and progress is None
                                else Upload(data, size, progress))

        def parse(r: httpx.Response) -> Any:
            meta = r.json()
            if meta.get("hash") != expected:
                raise VerificationError("preimage hash", expected, meta.get("hash"))
            return meta
        headers = _octets(media_type) | {"Content-Length": str(size)}
        return self._send(Call("PUT", f"/jam/preimages/{expected}",
                               params=_params(service_id=service_id), content=body,
                               headers=headers, parse=parse))

    def get_preimage(self, hash_: str) -> R:
        """The blob's bytes, checked to hash to `hash_`."""
        expected = _norm(hash_)

        def parse(r: httpx.Response) -> bytes:
            got = preimage_hash(r.content)
            if got != expected:
                raise VerificationError("preimage body", expected, got)
            return r.content
        return self._send(Call("GET", f"/jam/preimages/{hash_}", parse=parse))

    def download_preimage(self, hash_: str, out: IO[bytes],
                          progress: Progress | None = None) -> R:
        """Stream the blob into `out` (never held whole); returns
        `{hash, size}`. Raises `VerificationError` if the bytes do not hash to
        `hash_` (what was written is then not the preimage)."""
        return self._send(Call("GET", f"/jam/preimages/{hash_}", sink=out,
                               sink_hash=_norm(hash_), sink_progress=progress))

    def preimage_head(self, hash_: str) -> R:
        """`{hash, size, media_type}` from the `X-Preimage-*` headers of a HEAD request."""
        def parse(r: httpx.Response) -> dict[str, Any]:
            return {"hash": r.headers.get("x-preimage-hash"),
                    "size": int(r.headers.get("x-preimage-size", "0")),
                    "media_type": r.headers.get("x-preimage-media-type")}
        return self._send(Call("HEAD", f"/jam/preimages/{hash_}", parse=parse))

    def preimage_meta(self, hash_: str) -> R:
        return self._send(Call("GET", f"/jam/preimages/{hash_}/meta"))

    # packages, reports, receipts
    def submit_package(self, package: dict[str, Any] | bytes) -> R:
        """Submit GP bytes or package JSON (SPEC §3). Returns the stored package; its
        `created` key tells a new package (201) from one that already existed (200). The id
        is checked against blake2b-256 of the GP encoding computed here."""
        expected: str | None = None
        if isinstance(package, bytes | bytearray):
            expected = package_id(bytes(package))
        elif isinstance(package, dict) and "auth_code_host" in package:  # full w3f JSON
            from jamhost.domain.types.work_package import WorkPackage

            full = {k: v for k, v in package.items() if k != "service_id"}
            try:
                expected = package_id(WorkPackage.from_json(full).encode())
            except Exception:  # malformed: the server's 400 says what is wrong
                expected = None

        def parse(r: httpx.Response) -> Any:
            body = _verify_package(r, expected)
            body["created"] = r.status_code == 201
            return body
        if isinstance(package, bytes | bytearray):
            return self._send(Call("POST", "/jam/packages", content=bytes(package),
                                   headers=_octets(), parse=parse))
        return self._send(Call("POST", "/jam/packages", json=package, parse=parse))

    def package(self, package_id: str) -> R:
        return self._send(Call("GET", f"/jam/packages/{package_id}",
                               parse=lambda r: _verify_package(r, _norm(package_id))))

    def packages(self, service_id: int | None = None, status: str | None = None,
                 limit: int | None = None) -> P:
        return self._pages(Call("GET", "/jam/packages", params=_params(
            service_id=service_id, status=status, limit=limit)))

    def report(self, package_id: str) -> R:
        """`{report, report_hash, attestations, receipt}`; `report_hash` is checked to be
        blake2b-256 of the report's GP encoding."""
        def parse(r: httpx.Response) -> Any:
            from jamhost.domain.types.work_report import WorkReport

            body = r.json()
            computed = hx(blake2b_256(WorkReport.from_json(body["report"]).encode()))
            if body.get("report_hash") != computed:
                raise VerificationError("report hash", computed, body.get("report_hash"))
            return body
        return self._send(Call("GET", f"/jam/packages/{package_id}/report", parse=parse))

    def accumulation(self, package_id: str) -> R:
        """What the package's accumulation did: `{status, gas_used, gas_limit, yield, output,
        logs, logs_dropped, transfers, transfers_received, created_services,
        ejected_services, ...}`."""
        return self._send(Call("GET", f"/jam/packages/{package_id}/accumulation"))

    def accumulations(self, service_id: int, limit: int | None = None) -> P:
        """A service's accumulations, newest first (of queued inputs alone included)."""
        return self._pages(Call("GET", f"/jam/services/{int(service_id)}/accumulations",
                                params=_params(limit=limit)))

    def reports(self, service_id: int | None = None, limit: int | None = None) -> P:
        return self._pages(Call("GET", "/jam/reports",
                                params=_params(service_id=service_id, limit=limit)))

    def receipts(self, service_id: int | None = None, limit: int | None = None) -> P:
        return self._pages(Call("GET", "/jam/receipts",
                                params=_params(service_id=service_id, limit=limit)))

    def receipt(self, hash_: str) -> R:
        return self._send(Call("GET", f"/jam/receipts/{hash_}"))

    def process(self) -> R:
        """Operators: run the next pending package now. `{processed, id}`, or None if none."""
        return self._send(Call("POST", "/jam/process"))

    def audit(self, action: str | None = None, limit: int | None = None) -> P:
        """Operators: the audit log, newest first."""
        return self._pages(Call("GET", "/jam/audit", params=_params(action=action, limit=limit)))


def _headers(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


class JamClient(_Endpoints[Any, Iterator[dict[str, Any]]]):
    """Synchronous client. Use as a context manager, or call `close()`."""

    def __init__(self, url: str, token: str | None = None, *, timeout: float = 30.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.url = url.rstrip("/")
        self.http = httpx.Client(base_url=self.url, headers=_headers(token),
                                 timeout=timeout, transport=transport)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> JamClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _send(self, call: Call) -> Any:
        kw = call.kwargs()
        if isinstance(call.content, Upload):
            kw["content"] = call.content.chunks()
        try:
            if call.sink is None:
                resp = self.http.request(call.method, call.path, **kw)
            else:
                with self.http.stream(call.method, call.path, **kw) as resp:
                    if resp.status_code < 400:
                        sink = _Sink(call)
                        for chunk in resp.iter_bytes(CHUNK):
                            sink.write(chunk)
                        return sink.done()
                    resp.read()
        except httpx.TransportError as exc:
            raise Unreachable(self.url, exc) from exc
        if resp.status_code >= 400:
            raise error_from(resp)
        return call.parse(resp)

    def _pages(self, call: Call) -> Iterator[dict[str, Any]]:
        cursor = None
        while True:
            page = self._send(call.with_cursor(cursor))
            yield from page["items"]
            cursor = page.get("next_cursor")
            if not cursor:
                return


class _Sink:
    """Writes a downloaded body to the call's sink, hashing it on the way."""

    def __init__(self, call: Call) -> None:
        assert call.sink is not None
        self.call, self.out, self.size = call, call.sink, 0
        self.h = hashlib.blake2b(digest_size=32)

    def write(self, chunk: bytes) -> None:
        self.h.update(chunk)
        self.size += len(chunk)
        self.out.write(chunk)
        if self.call.sink_progress:
            self.call.sink_progress(len(chunk))

    def done(self) -> dict[str, Any]:
        got = "0x" + self.h.hexdigest()
        if got != self.call.sink_hash:
            raise VerificationError("preimage body", self.call.sink_hash, got)
        return {"hash": got, "size": self.size}


class AsyncJamClient(_Endpoints[Awaitable[Any], AsyncIterator[dict[str, Any]]]):
    """The async twin: every method of `JamClient`, awaited (listings: `async for`)."""

    def __init__(self, url: str, token: str | None = None, *, timeout: float = 30.0,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.url = url.rstrip("/")
        self.http = httpx.AsyncClient(base_url=self.url, headers=_headers(token),
                                      timeout=timeout, transport=transport)

    async def aclose(self) -> None:
        await self.http.aclose()

    async def __aenter__(self) -> AsyncJamClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _send(self, call: Call) -> Any:
        kw = call.kwargs()
        if isinstance(call.content, Upload):
            kw["content"] = call.content.achunks()
        try:
            if call.sink is None:
                resp = await self.http.request(call.method, call.path, **kw)
            else:
                async with self.http.stream(call.method, call.path, **kw) as resp:
                    if resp.status_code < 400:
                        sink = _Sink(call)
                        async for chunk in resp.aiter_bytes(CHUNK):
                            sink.write(chunk)
                        return sink.done()
                    await resp.aread()
        except httpx.TransportError as exc:
            raise Unreachable(self.url, exc) from exc
        if resp.status_code >= 400:
            raise error_from(resp)
        return call.parse(resp)

    async def _pages(self, call: Call) -> AsyncIterator[dict[str, Any]]:
        cursor = None
        while True:
            page = await self._send(call.with_cursor(cursor))
            for item in page["items"]:
                yield item
            cursor = page.get("next_cursor")
            if not cursor:
                return
