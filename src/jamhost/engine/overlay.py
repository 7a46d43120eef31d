"""A copy-on-write view of a mapping: reads fall through to the base, writes stay on top.

Accumulate must be able to throw its changes away (panic, out-of-gas: GP 0.7.2 Ψ_A's collapse
C keeps the exceptional dimension y) and to checkpoint them (Ω_C sets y = x). Running on an
`Overlay` of the caller's mapping gives both without copying the base, which may be a lazy
view of a database: only the keys the service touches are ever read.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, MutableMapping
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class _Deleted:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<deleted>"


DELETED = _Deleted()


class Overlay(MutableMapping[K, V], Generic[K, V]):
    """`base` with `changes` applied; `changes` maps a key to its new value or `DELETED`."""

    def __init__(self, base: Mapping[K, V], changes: dict[K, V | _Deleted] | None = None) -> None:
        self.base = base
        self.changes: dict[K, V | _Deleted] = dict(changes or {})

    def __getitem__(self, key: K) -> V:
        if key in self.changes:
            value = self.changes[key]
            if isinstance(value, _Deleted):
                raise KeyError(key)
            return value
        return self.base[key]

    def __contains__(self, key: object) -> bool:
        if key in self.changes:
            return not isinstance(self.changes[key], _Deleted)
        return key in self.base

    def __setitem__(self, key: K, value: V) -> None:
        self.changes[key] = value

    def __delitem__(self, key: K) -> None:
        if key not in self:
            raise KeyError(key)
        self.changes[key] = DELETED

    def __iter__(self) -> Iterator[K]:
        for key in self.base:
            if key not in self.changes:
                yield key
        for key, value in self.changes.items():
            if not isinstance(value, _Deleted):
                yield key

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def snapshot(self) -> Overlay[K, V]:
        """An independent overlay over the same base with the same changes."""
        return Overlay(self.base, self.changes)

    def effective_changes(self) -> dict[K, V | None]:
        """The changes as key -> new value, or None for a deletion of a key the base had.

        Writes that restore the base value and deletions of keys the base never had are
        dropped, so the result is exactly what a caller must persist."""
        out: dict[K, V | None] = {}
        for key, value in self.changes.items():
            in_base = key in self.base
            if isinstance(value, _Deleted):
                if in_base:
                    out[key] = None
            elif not in_base or self.base[key] != value:
                out[key] = value
        return out
