"""Per-package read caches: each blob is read from the store once, misses included."""

from __future__ import annotations

from jamhost.app.lookup_cache import CachedLookup, CachedMapping
from jamhost.engine.constants import ProtocolConstants
from jamhost.engine.fetch import FetchSource


def test_cached_lookup_reads_each_key_once() -> None:
    reads: list[tuple[int, bytes]] = []

    def lookup(service: int, hash_: bytes) -> bytes | None:
        reads.append((service, hash_))
        return b"x" * 1000 if hash_ == b"a" else None

    cached = CachedLookup(lookup)
    for _ in range(100):
        assert cached(1, b"a") == b"x" * 1000
        assert cached(1, b"b") is None
    assert reads == [(1, b"a"), (1, b"b")]


def test_cached_lookup_is_bounded_by_bytes() -> None:
    cached = CachedLookup(lambda s, h: bytes(600), budget=1000)
    cached(1, b"a")
    cached(1, b"b")  # evicts a: both do not fit
    cached(1, b"a")
    assert cached.misses == 3
    assert cached._cache.used <= 1000


def test_cached_mapping_answers_like_its_base() -> None:
    from collections.abc import Mapping

    class Counting(Mapping):  # type: ignore[type-arg]
        gets = 0

        def __getitem__(self, key):  # type: ignore[no-untyped-def]
            Counting.gets += 1
            return {b"k": b"v"}[key]

        def __iter__(self):  # type: ignore[no-untyped-def]
            return iter([b"k"])

        def __len__(self) -> int:
            return 1

    view = CachedMapping(Counting())
    for _ in range(10):
        assert view[b"k"] == b"v"
        assert b"k" in view and b"z" not in view
        assert view.get(b"z") is None
    assert view.misses == 2
    assert Counting.gets == 2


def test_fetch_encodes_the_package_once() -> None:
    calls = []

    class Source(FetchSource):
        def _value(self, selector: int, a: int, b: int):  # type: ignore[no-untyped-def]
            calls.append(selector)
            return FetchSource._value(self, selector, a, b)

    src = Source(ProtocolConstants.full())
    for _ in range(5):
        assert src.value(0, 0, 0) == ProtocolConstants.full().encode()
    assert calls == [0]
