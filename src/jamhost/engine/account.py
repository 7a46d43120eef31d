"""A service account δ[s] (GP 0.7.2 §9, eq. serviceaccount) as the engine reads and changes it.

`storage`, `preimages` and `requests` are `MutableMapping`s so that a caller can hand in lazy
views backed by a database; the engine reads only the keys a service touches. Because counting
a lazy mapping would read all of it, the footprint a_i (items) and a_o (octets) is carried as
two numbers that the host calls keep up to date (the state keeps them explicitly too, GP §D);
`AccountState.create` computes them once from complete mappings.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass, field, replace
from typing import TypeVar

from jamhost.domain.footprint import RequestKey, footprint, request_octets, storage_item_octets
from jamhost.engine.constants import BASE_DEPOSIT, BYTE_DEPOSIT, ITEM_DEPOSIT
from jamhost.engine.overlay import Overlay

K = TypeVar("K")
V = TypeVar("V")

# The footprint formulas live in domain/footprint.py (the apply planner reads them too);
# re-exported here for the engine's callers.
__all__ = ["AccountState", "RequestKey", "footprint", "request_octets", "storage_item_octets",
           "threshold_balance"]


def threshold_balance(items: int, octets: int, gratis: int) -> int:
    """a_t = max(0, B_S + B_I·a_i + B_L·a_o - a_f) (GP 0.7.2 eq. deposits)."""
    return max(0, BASE_DEPOSIT + ITEM_DEPOSIT * items + BYTE_DEPOSIT * octets - gratis)


@dataclass(slots=True)
class AccountState:
    """One service account δ[s] (GP 0.7.2 eq. serviceaccount)."""

    code_hash: bytes
    """a_c: hash of the code preimage E(↕m, c)."""
    balance: int
    """a_b."""
    min_item_gas: int = 0
    """a_g: least gas accumulate may be given per work item."""
    min_memo_gas: int = 0
    """a_m: least gas a transfer to this service must carry."""
    storage: MutableMapping[bytes, bytes] = field(default_factory=dict)
    """a_s: key -> value."""
    preimages: MutableMapping[bytes, bytes] = field(default_factory=dict)
    """a_p: hash -> blob."""
    requests: MutableMapping[RequestKey, tuple[int, ...]] = field(default_factory=dict)
    """a_l: (hash, length) -> up to three timeslots (requested / available / ...)."""
    gratis: int = 0
    """a_f: gratis storage offset."""
    created: int = 0
    """a_r: timeslot of creation."""
    last_accumulation: int = 0
    """a_a: timeslot of the most recent accumulation."""
    parent: int = 0
    """a_p: the service that created this one."""
    items: int = 0
    """a_i = 2|a_l| + |a_s|, kept up to date by the host calls."""
    octets: int = 0
    """a_o, kept up to date by the host calls."""

    @classmethod
    def create(
        cls,
        code_hash: bytes,
        balance: int,
        *,
        storage: MutableMapping[bytes, bytes] | None = None,
        preimages: MutableMapping[bytes, bytes] | None = None,
        requests: MutableMapping[RequestKey, tuple[int, ...]] | None = None,
        **fields: int,
    ) -> AccountState:
        """An account whose a_i and a_o are computed from complete `storage` and `requests`."""
        storage = {} if storage is None else storage
        requests = {} if requests is None else requests
        items, octets = footprint(storage, requests)
        return cls(
            code_hash=code_hash,
            balance=balance,
            storage=storage,
            preimages={} if preimages is None else preimages,
            requests=requests,
            items=items,
            octets=octets,
            **fields,
        )

    @property
    def threshold(self) -> int:
        """a_t = max(0, B_S + B_I·a_i + B_L·a_o - a_f) (GP 0.7.2 eq. deposits)."""
        return threshold_balance(self.items, self.octets, self.gratis)

    def code(self) -> bytes | None:
        """The code preimage a_p[a_c] (with its metadata prefix), if present."""
        return self.preimages.get(self.code_hash)

    def overlaid(self) -> AccountState:
        """A copy whose mappings are copy-on-write overlays of this account's mappings."""
        return replace(
            self,
            storage=Overlay(self.storage),
            preimages=Overlay(self.preimages),
            requests=Overlay(self.requests),
        )

    def snapshot(self) -> AccountState:
        """Copy an overlaid account (for a checkpoint): same bases, copied change sets."""
        return replace(
            self,
            storage=_snap(self.storage),
            preimages=_snap(self.preimages),
            requests=_snap(self.requests),
        )


def _snap(mapping: MutableMapping[K, V]) -> MutableMapping[K, V]:
    return mapping.snapshot() if isinstance(mapping, Overlay) else dict(mapping)
