"""Lazy, read-only views of a service's persisted state for the engine.

Accumulate runs on copy-on-write overlays of these (`AccountState.overlaid`), so only the keys
a service touches are read from the store, and nothing is written until the whole outcome is
applied in one transaction (`Store.finish_package`). Each view is bound to one service and
reads through the account view of the service whose code runs (tenancy/view.py): the
engine cannot reach another service's state through it, nor, through a sibling's, the
state of a service of another account.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from jamhost.tenancy.view import TenantView

PAGE = 500


class StorageView(Mapping[bytes, bytes]):
    def __init__(self, view: TenantView, service_id: int) -> None:
        self._view, self._sid = view, service_id

    def __getitem__(self, key: bytes) -> bytes:
        value = self._view.storage_get(self._sid, key)
        if value is None:
            raise KeyError(key)
        return value

    def __contains__(self, key: object) -> bool:
        return isinstance(key, bytes) and self._view.storage_get(self._sid, key) is not None

    def __iter__(self) -> Iterator[bytes]:
        cursor: bytes | None = None
        while True:
            page = self._view.storage_list(self._sid, b"", cursor, PAGE)
            for key, _value in page.items:
                yield key
            if not isinstance(page.next_cursor, bytes):  # a storage listing pages by key
                return
            cursor = page.next_cursor

    def __len__(self) -> int:
        return sum(1 for _ in self)


class PreimageView(Mapping[bytes, bytes]):
    """The service's own preimages (its code among them)."""

    def __init__(self, view: TenantView, service_id: int) -> None:
        self._view, self._sid = view, service_id

    def __getitem__(self, hash_: bytes) -> bytes:
        blob = self._view.service_preimage(self._sid, hash_)
        if blob is None:
            raise KeyError(hash_)
        return blob

    def __contains__(self, hash_: object) -> bool:
        return isinstance(hash_, bytes) and self._view.service_preimage(self._sid, hash_) \
            is not None

    def __iter__(self) -> Iterator[bytes]:  # never needed by host calls
        return iter(())

    def __len__(self) -> int:
        return 0


class RequestView(Mapping[tuple[bytes, int], tuple[int, ...]]):
    def __init__(self, view: TenantView, service_id: int) -> None:
        self._view, self._sid = view, service_id

    def __getitem__(self, key: tuple[bytes, int]) -> tuple[int, ...]:
        slots = self._view.lookup_request(self._sid, key[0], key[1])
        if slots is None:
            raise KeyError(key)
        return slots

    def __contains__(self, key: object) -> bool:
        return (isinstance(key, tuple) and len(key) == 2
                and self._view.lookup_request(self._sid, key[0], key[1]) is not None)

    def __iter__(self) -> Iterator[tuple[bytes, int]]:
        return iter(())

    def __len__(self) -> int:
        return 0
