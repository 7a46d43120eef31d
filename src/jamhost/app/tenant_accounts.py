"""The other accounts one accumulation may reach: the handle the engine is given.

Accumulate's host calls name services by id (`info`, `read`, `lookup`, `transfer`, `provide`;
`query`, `solicit` and `forget` act on the caller alone, GP 0.7.2 §B.8). The engine resolves
every id other than the caller's through `TenantAccounts.account`, and this view answers
None, exactly as for a service that does not exist, for any service outside the caller's
account (with authz enabled): the engine then answers NONE or WHO with the same gas, so a
tenant's code can neither read, credit, queue inputs for, nor detect another tenant's
services. Isolation is a property of the handle, not of each host call remembering a filter
(the barrier view of STYLE.md).

The view also bounds what others may queue for a service (`transfer_room`: count and gas,
`runtime.jam.max_queued_transfers_per_service` and `max_queued_transfer_gas_per_service`),
gives `new` the store-wide id check it allocates with (`exists`) and the caller account's
service limit (`can_create`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from jamhost.app.lookup_cache import CachedMapping
from jamhost.app.state_views import PreimageView, RequestView, StorageView
from jamhost.config import JamSettings
from jamhost.domain.model import ServiceRecord
from jamhost.engine import AccountState, DeferredTransfer
from jamhost.tenancy.view import TenantView


def account_state(view: TenantView, svc: ServiceRecord,
                  preimages: Mapping[bytes, bytes] | None = None) -> AccountState:
    """δ[s] of a persisted service as the engine reads it: lazy views of its state through
    `view` (the running service's account view), each key read from the store once per
    accumulate however often read/lookup ask for it. `preimages`: the service's preimages
    as its package already read them (app/lookup_cache.py), else read anew."""
    sid = svc.service_id
    return AccountState(
        code_hash=svc.code_hash, balance=svc.balance, min_item_gas=svc.min_item_gas,
        min_memo_gas=svc.min_memo_gas,
        # type-ignore reason (the three): read-only views; accumulate writes only into its
        # Overlay over them
        storage=CachedMapping(StorageView(view, sid)),  # type: ignore[arg-type]
        preimages=(preimages if preimages is not None  # type: ignore[arg-type]
                   else CachedMapping(PreimageView(view, sid))),
        requests=RequestView(view, sid),  # type: ignore[arg-type]
        items=svc.state_items, octets=svc.state_octets)


class TenantAccounts:
    """The services an accumulation of `caller` may reach besides itself: those of the same
    owner (every service when authz is disabled), as `view`, the caller's account view
    (`Runtime.account_view`, tenancy/view.py), decides."""

    def __init__(self, view: TenantView, caller: ServiceRecord, settings: JamSettings) -> None:
        self._view = view
        self._caller = caller
        self._settings = settings
        self._queued: dict[int, tuple[int, int]] = {}
        self._made: dict[int, tuple[int, int]] = {}  # per destination, of `made[:_seen]`
        self._seen = 0
        self._created = 0
        self._owned: int | None = None
        self._accounts: dict[int, AccountState | None] = {}

    def reaches(self, service_id: int) -> bool:
        """Whether `service_id` is in the caller's reach (itself or a sibling)."""
        return self._view.sees(service_id)

    def account(self, service_id: int) -> AccountState | None:
        """`other_account` of the engine: a sibling's account, or None (as if missing)."""
        if service_id == self._caller.service_id:
            return None
        if service_id not in self._accounts:  # one read per sibling and invocation
            # None, with no store read, for another tenant's id: the view decides
            target = self._view.get_service(service_id)
            self._accounts[service_id] = (None if target is None
                                          else account_state(self._view, target))
        return self._accounts[service_id]

    def transfer_room(self, dest: int, made: Sequence[DeferredTransfer]) -> tuple[int, int]:
        """(transfers, gas) `dest`'s queue still takes, counting those already queued and
        those this invocation made (`made`: every transfer of the current context,
        append-only while the code runs, so it is summed incrementally: a call costs O(1)
        however many transfers came before). Negative when already past a bound."""
        for t in made[self._seen:]:
            c, g = self._made.get(t.dest, (0, 0))
            self._made[t.dest] = (c + 1, g + t.gas)
        self._seen = len(made)
        if dest not in self._queued:
            self._queued[dest] = self._view.queued_inputs(dest)
        count, queued_gas = self._queued[dest]
        made_count, made_gas = self._made.get(dest, (0, 0))
        return (self._settings.max_queued_transfers_per_service - count - made_count,
                self._settings.max_queued_transfer_gas_per_service - queued_gas - made_gas)

    def admit_transfer(self, dest: int, gas: int, made: Sequence[DeferredTransfer]) -> bool:
        """Room in `dest`'s queue for one more transfer of `gas` (see `transfer_room`)."""
        count, room_gas = self.transfer_room(dest, made)
        return count >= 1 and gas <= room_gas

    @property
    def queue_limits(self) -> tuple[int, int]:
        return (self._settings.max_queued_transfers_per_service,
                self._settings.max_queued_transfer_gas_per_service)

    def exists(self, service_id: int) -> bool:
        """Store-wide: `new` must not allocate an id any tenant holds (GP 0.7.2 check)."""
        return self._view.id_taken(service_id)

    def can_create(self) -> bool:
        """One more service for the caller's account (runtime.jam.max_services_per_account).
        Counts each `new` allowed in this invocation, so a rolled-back one is counted too:
        the bound errs on the safe side within one invocation."""
        if self._owned is None:
            self._owned = self._view.owned_count()
        if self._owned + self._created >= self._settings.max_services_per_account:
            return False
        self._created += 1
        return True
