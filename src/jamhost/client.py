"""Python client of the jamhost HTTP API (httpx), sync and async.

Refusals raise `JamHostError` carrying the SPEC `code`; package and preimage hashes are
computed locally (`package_id`, `preimage_hash`) so callers can check what the server says.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx

from jamhost.domain.hashing import blake2b_256


class JamHostError(Exception):
    """A refused request: HTTP status, SPEC code and message."""

    def __init__(self, status: int, code: str, message: str, body: Any = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.body = body


def preimage_hash(data: bytes) -> str:
    return "0x" + blake2b_256(data).hex()


def package_id(encoded_package: bytes) -> str:
    return "0x" + blake2b_256(encoded_package).hex()


def _check(resp: httpx.Response) -> httpx.Response:
    if resp.status_code < 400:
        return resp
    try:
        body = resp.json()
        code, message = body.get("code", "unknown"), body.get("error", "")
    except ValueError:
        body, code, message = resp.text, "unknown", resp.text[:200]
    raise JamHostError(resp.status_code, code, message, body)


def _json(resp: httpx.Response) -> Any:
    _check(resp)
    return resp.json() if resp.content else None


class _Routes:
    """The request shapes, shared by the sync and async clients."""

    @staticmethod
    def params(**kw: Any) -> dict[str, Any]:
        return {k: v for k, v in kw.items() if v is not None}


class JamClient:
    def __init__(self, url: str, token: str | None = None, *, timeout: float = 30.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=timeout,
                                 transport=transport)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> JamClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _get(self, path: str, **params: Any) -> Any:
        return _json(self.http.get(path, params=_Routes.params(**params)))

    def _paged(self, path: str, **params: Any) -> Iterator[dict[str, Any]]:
        cursor = None
        while True:
            page = self._get(path, cursor=cursor, **params)
            yield from page["items"]
            cursor = page.get("next_cursor")
            if not cursor:
                return

    # system
    def health(self) -> Any:
        return self._get("/healthz")

    def status(self) -> Any:
        return self._get("/system/status")

    # accounts and tokens
    def create_account(self, name: str) -> Any:
        return _json(self.http.post("/jam/accounts", json={"name": name}))

    def me(self) -> Any:
        return self._get("/jam/accounts/me")

    def create_token(self, account_id: str, name: str = "token",
                     scopes: list[str] | None = None, expires_at: str | None = None) -> Any:
        body = _Routes.params(name=name, scopes=scopes, expires_at=expires_at)
        return _json(self.http.post(f"/jam/accounts/{account_id}/tokens", json=body))

    def list_tokens(self, account_id: str) -> list[Any]:
        return self._get(f"/jam/accounts/{account_id}/tokens")["items"]  # type: ignore[no-any-return]

    def revoke_token(self, account_id: str, accessor: str) -> None:
        _check(self.http.delete(f"/jam/accounts/{account_id}/tokens/{accessor}"))

    # services
    def create_service(self, code: bytes | None = None, balance: int | None = None,
                       min_item_gas: int | None = None, owner: str | None = None) -> Any:
        body = _Routes.params(code="0x" + code.hex() if code is not None else None,
                              balance=balance, min_item_gas=min_item_gas, owner=owner)
        return _json(self.http.post("/jam/services", json=body))

    def services(self) -> Iterator[dict[str, Any]]:
        return self._paged("/jam/services")

    def service(self, service_id: int) -> Any:
        return self._get(f"/jam/services/{service_id}")

    def upgrade_code(self, service_id: int, code: bytes) -> Any:
        return _json(self.http.put(f"/jam/services/{service_id}/code", content=code,
                                   headers={"Content-Type": "application/octet-stream"}))

    def storage(self, service_id: int, key: bytes) -> bytes:
        value = self._get(f"/jam/services/{service_id}/storage/0x{key.hex()}")["value"]
        return bytes.fromhex(value[2:])

    def storage_items(self, service_id: int, prefix: bytes = b"") -> Iterator[dict[str, Any]]:
        return self._paged(f"/jam/services/{service_id}/storage", prefix="0x" + prefix.hex())

    def add_delegate(self, service_id: int, *, accessor: str | None = None,
                     token: str | None = None, role: str | None = None) -> Any:
        body = _Routes.params(accessor=accessor, token=token, role=role)
        return _json(self.http.post(f"/jam/services/{service_id}/delegates", json=body))

    def delegates(self, service_id: int) -> list[Any]:
        return self._get(f"/jam/services/{service_id}/delegates")["items"]  # type: ignore[no-any-return]

    def remove_delegate(self, service_id: int, delegate_id: int) -> None:
        _check(self.http.delete(f"/jam/services/{service_id}/delegates/{delegate_id}"))

    def quota(self, service_id: int) -> Any:
        return self._get(f"/jam/services/{service_id}/quota")

    def set_quota(self, service_id: int, **limits: int | None) -> Any:
        return _json(self.http.put(f"/jam/services/{service_id}/quota", json=limits))

    def credit(self, service_id: int, amount: int) -> Any:
        return _json(self.http.post(f"/jam/services/{service_id}/credit",
                                    json={"amount": amount}))

    # preimages
    def put_preimage(self, data: bytes, service_id: int | None = None,
                     media_type: str = "application/octet-stream") -> Any:
        params = _Routes.params(service_id=service_id)
        return _json(self.http.put(f"/jam/preimages/{preimage_hash(data)}", content=data,
                                   params=params, headers={"Content-Type": media_type}))

    def get_preimage(self, hash_: str) -> bytes:
        return _check(self.http.get(f"/jam/preimages/{hash_}")).content

    def preimage_meta(self, hash_: str) -> Any:
        return self._get(f"/jam/preimages/{hash_}/meta")

    # packages, reports, receipts
    def submit_package(self, package: dict[str, Any] | bytes) -> Any:
        if isinstance(package, bytes):
            return _json(self.http.post("/jam/packages", content=package,
                                        headers={"Content-Type": "application/octet-stream"}))
        return _json(self.http.post("/jam/packages", json=package))

    def package(self, package_id: str) -> Any:
        return self._get(f"/jam/packages/{package_id}")

    def packages(self, service_id: int | None = None,
                 status: str | None = None) -> Iterator[dict[str, Any]]:
        return self._paged("/jam/packages", service_id=service_id, status=status)

    def report(self, package_id: str) -> Any:
        return self._get(f"/jam/packages/{package_id}/report")

    def reports(self, service_id: int | None = None) -> Iterator[dict[str, Any]]:
        return self._paged("/jam/reports", service_id=service_id)

    def receipts(self, service_id: int | None = None) -> Iterator[dict[str, Any]]:
        return self._paged("/jam/receipts", service_id=service_id)

    def receipt(self, hash_: str) -> Any:
        return self._get(f"/jam/receipts/{hash_}")

    def process(self) -> Any:
        return _json(self.http.post("/jam/process"))


class AsyncJamClient:
    """The async twin for the hot paths (submit, read, list)."""

    def __init__(self, url: str, token: str | None = None, *, timeout: float = 30.0) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.AsyncClient(base_url=url.rstrip("/"), headers=headers,
                                      timeout=timeout)

    async def aclose(self) -> None:
        await self.http.aclose()

    async def submit_package(self, package: dict[str, Any] | bytes) -> Any:
        if isinstance(package, bytes):
            return _json(await self.http.post(
                "/jam/packages", content=package,
                headers={"Content-Type": "application/octet-stream"}))
        return _json(await self.http.post("/jam/packages", json=package))

    async def package(self, package_id: str) -> Any:
        return _json(await self.http.get(f"/jam/packages/{package_id}"))

    async def put_preimage(self, data: bytes, service_id: int | None = None) -> Any:
        params = _Routes.params(service_id=service_id)
        return _json(await self.http.put(f"/jam/preimages/{preimage_hash(data)}",
                                         content=data, params=params))

    async def packages(self, service_id: int | None = None,
                       status: str | None = None) -> AsyncIterator[dict[str, Any]]:
        cursor = None
        while True:
            page = _json(await self.http.get("/jam/packages", params=_Routes.params(
                service_id=service_id, status=status, cursor=cursor)))
            for item in page["items"]:
                yield item
            cursor = page.get("next_cursor")
            if not cursor:
                return
