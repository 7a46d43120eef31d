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


def test_cached_lookup_windows_read_a_part_of_the_blob() -> None:
    """historical_lookup through `window`: |v| and at least WINDOW_OCTETS (64 KiB) from f
    are read, a call inside the last window reads nothing, and the whole blob never."""
    blob = bytes(range(256)) * 32 * 1024  # 8 MiB
    reads: list[tuple[int, int]] = []

    def whole(service: int, hash_: bytes) -> bytes | None:
        raise AssertionError("the whole blob was read")

    def window_read(service: int, hash_: bytes, at: int, n: int) -> tuple[int, bytes] | None:
        reads.append((at, n))
        if hash_ != b"a":
            return None
        return len(blob), blob[min(at, len(blob)) : at + n]

    cached = CachedLookup(whole, window_read=window_read)
    assert cached.window(1, b"a", 10, 64) == (8 << 20, 10, blob[10 : 10 + 65536])
    assert cached.window(1, b"a", 1000, 2000)[1] == 10  # inside: no read
    assert cached.window(1, b"a", 5 << 20, 10)[1:] == (5 << 20, blob[5 << 20 : (5 << 20) + 65536])
    assert cached.window(1, b"a", 1 << 40, 10) is not None  # an empty copy: any window does
    assert cached.window(1, b"b", 0, 10) is None
    assert cached.window(1, b"b", 0, 10) is None  # a miss is kept too
    assert reads == [(10, 65536), (5 << 20, 65536), (0, 65536)]
