"""Per-package read caches between the engine's host calls and the store.

A host call costs 10 gas whatever the size of what it reads (GP 0.7.2 §B.6), and a tenant's
code can repeat it as often as its gas allows: `historical_lookup` of an 8 MB preimage read
the whole blob from the store on every call (100 calls: 0.6 s of CPU on SQLite, 4 s on
PostgreSQL). Reads for one package go through one of these caches instead, so a blob is read
from the store once per package, and each repeated call costs only the copy into guest
memory. The caches hold at most `budget` octets (least recently used dropped first); a blob
larger than the whole budget is read every time, which `max_preimage_bytes` (10 MiB) below the
default budget rules out.

The caches live as long as the package's processing (all attestors' refines and the
accumulate that follows them, or one accumulate of queued inputs) and are never shared between
packages: no tenant sees another's reads through them, and nothing stale outlives the state
they were read from. A package's own preimages (`own_preimages`) are one cache for its refines
and its first accumulate: the code blob is read from the store once per package, not once for
refine and again for accumulate. Everything the cache holds was read after the service row the
package's processing started from, so a change since is a change of that row's receipt_seq, and
the finish refuses the stale outcome (StateConflict); the accumulate run again on the fresh row
reads through a new cache.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator, Mapping
from typing import Generic, TypeVar

from jamhost.engine.hostio import window_around
from jamhost.pvm.cache import ByteBudgetCache
from jamhost.tenancy.view import TenantView

K = TypeVar("K", bound=Hashable)

PACKAGE_READ_BUDGET = 64 * 1024 * 1024
"""Octets of store reads one package's processing keeps for its repeated host calls."""

_ENTRY_OVERHEAD = 128
"""What an entry costs beyond its value (key, tuple, list node), so misses count too."""


def _cost(entry: tuple[bytes | None]) -> int:
    value = entry[0]
    return _ENTRY_OVERHEAD + (len(value) if value is not None else 0)


def _window_cost(entry: tuple[tuple[int, int, bytes] | None]) -> int:
    held = entry[0]
    return _ENTRY_OVERHEAD + (len(held[2]) if held is not None else 0)


WINDOW_OCTETS = 64 * 1024
"""Least octets a window read takes from the store (short reads of a scan share one)."""

WindowRead = Callable[[int, bytes, int, int], tuple[int, bytes] | None]
"""`window(service, hash, at, n)`: (|v|, v[at..at+n]) read from the store, or None."""


class CachedLookup:
    """`lookup(service, hash)` (refine's code and preimage lookups) read once per key.

    With `window_read` (the store's window read), `window(service, hash, f, l)` answers a
    historical_lookup from |v| and a window of at least WINDOW_OCTETS around [f, f+l) instead
    of the whole blob: the first call on an 8 MB preimage reads 64 KiB, not 8 MB. The last
    window of each key is kept (its octets count in the budget); a whole value already read
    (code, or a lookup without a window) answers every window."""

    def __init__(self, lookup: Callable[[int, bytes], bytes | None],
                 budget: int = PACKAGE_READ_BUDGET, window_read: WindowRead | None = None,
                 ) -> None:
        self._lookup = lookup
        self._cache: ByteBudgetCache[tuple[int, bytes], tuple[bytes | None]] = \
            ByteBudgetCache(budget, _cost)
        self._windows: ByteBudgetCache[tuple[int, bytes], tuple[tuple[int, int, bytes] | None]] \
            = ByteBudgetCache(budget, _window_cost)
        self._window_read = window_read
        self.misses = 0
        if window_read is not None:
            self.window = self._window  # refine's historical_lookup uses it when present

    def _window(self, service: int, hash_: bytes, offset: int, limit: int) \
            -> tuple[int, int, bytes] | None:
        key = (service, bytes(hash_))
        whole = self._cache.get(key)
        if whole is not None:
            return None if whole[0] is None else (len(whole[0]), 0, whole[0])
        hit = self._windows.get(key)
        if hit is not None:
            held = hit[0]
            if held is None:
                return None
            total, at, octets = held
            start = min(offset, total)
            length = min(limit, total - start)
            if not length or (at <= start and start + length <= at + len(octets)):
                return held
            at, n = window_around(total, offset, limit, WINDOW_OCTETS)
        else:
            at, n = offset, max(limit, WINDOW_OCTETS)
        self.misses += 1
        assert self._window_read is not None
        read = self._window_read(service, hash_, at, n)
        if read is None:
            self._windows.put(key, (None,))
            return None
        total, octets = read
        held = (total, min(at, total), octets)
        self._windows.put(key, (held,))
        return held

    def __call__(self, service: int, hash_: bytes) -> bytes | None:
        key = (service, bytes(hash_))
        hit = self._cache.get(key)
        if hit is None:
            self.misses += 1
            hit = (self._lookup(service, hash_),)
            self._cache.put(key, hit)
        return hit[0]


class CachedMapping(Mapping[K, bytes], Generic[K]):
    """A read-only mapping (a store view) whose lookups, misses included, are read once."""

    def __init__(self, base: Mapping[K, bytes], budget: int = PACKAGE_READ_BUDGET) -> None:
        self._base = base
        self._cache: ByteBudgetCache[K, tuple[bytes | None]] = ByteBudgetCache(budget, _cost)
        self.misses = 0

    def _get(self, key: K) -> bytes | None:
        hit = self._cache.get(key)
        if hit is None:
            self.misses += 1
            hit = (self._base.get(key),)
            self._cache.put(key, hit)
        return hit[0]

    def __getitem__(self, key: K) -> bytes:
        value = self._get(key)
        if value is None:
            raise KeyError(key)
        return value

    def __contains__(self, key: object) -> bool:
        try:
            hash(key)
        except TypeError:
            return False
        # type-ignore reason: `in` takes any hashable; a key of another type is simply absent
        return self._get(key) is not None  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[K]:
        return iter(self._base)

    def __len__(self) -> int:
        return len(self._base)


def own_preimages(view: TenantView, service_id: int) -> CachedLookup:
    """The preimages of `service_id` (its code among them) as one package's processing reads
    them through `view`, the service's account view: any other service's answer is None
    (refine sees only its own service's preimages, code included)."""

    def own(service: int, hash_: bytes) -> bytes | None:
        return view.service_preimage(service, hash_) if service == service_id else None

    def own_window(service: int, hash_: bytes, at: int, n: int) -> tuple[int, bytes] | None:
        if service != service_id:
            return None
        return view.service_preimage_window(service, hash_, at, n)

    return CachedLookup(own, window_read=own_window)


class ServicePreimages(Mapping[bytes, bytes]):
    """One service's entries of a CachedLookup as a read-only mapping by hash: accumulate's
    preimages (`AccountState.preimages`) over the cache its package's refines filled."""

    def __init__(self, lookup: CachedLookup, service_id: int) -> None:
        self._lookup, self._sid = lookup, service_id

    def __getitem__(self, hash_: bytes) -> bytes:
        blob = self._lookup(self._sid, hash_)
        if blob is None:
            raise KeyError(hash_)
        return blob

    def __contains__(self, hash_: object) -> bool:
        return isinstance(hash_, bytes) and self._lookup(self._sid, hash_) is not None

    def __iter__(self) -> Iterator[bytes]:  # never needed by host calls
        return iter(())

    def __len__(self) -> int:
        return 0
