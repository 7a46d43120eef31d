"""A least-recently-used cache bounded by bytes, not entries.

Programs are content-addressed and a tenant chooses their size: a cache bounded by a count
keeps whatever the largest blobs cost (256 programs of 4 MB decoded is gigabytes). Each entry
is charged what its owner says it costs (`cost`), and the oldest entries are dropped until the
total fits the budget. An entry larger than the whole budget is not kept at all.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

DEFAULT_PROGRAM_CACHE_BYTES = 64 * 1024 * 1024


class ByteBudgetCache(Generic[K, V]):
    """get-or-build under a byte budget; safe to share between threads."""

    def __init__(self, budget: int, cost: Callable[[V], int]) -> None:
        self.budget = budget
        self._cost = cost
        self._entries: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self._used = 0
        self._lock = threading.Lock()

    @property
    def used(self) -> int:
        return self._used

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: K) -> V | None:
        with self._lock:
            hit = self._entries.get(key)
            if hit is None:
                return None
            self._entries.move_to_end(key)
            return hit[0]

    def put(self, key: K, value: V) -> None:
        size = max(1, self._cost(value))
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._used -= old[1]
            if size > self.budget:
                return
            self._entries[key] = (value, size)
            self._used += size
            while self._used > self.budget:
                _, (_, dropped) = self._entries.popitem(last=False)
                self._used -= dropped

    def get_or_build(self, key: K, build: Callable[[], V]) -> V:
        value = self.get(key)
        if value is None:
            value = build()
            self.put(key, value)
        return value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._used = 0
