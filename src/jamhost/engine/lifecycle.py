"""Services made and removed by accumulate: new (18) and eject (21) (GP 0.7.2 §B.8), and the
identifiers new hands out (GP 0.7.2 eq. newserviceindex, the `check` function).

Both work on the implications context's view of the service accounts: `ServiceView` answers
what exists in it (the caller, the services it made in this invocation, those it ejected, and
the rest of the state through the caller-given `service_exists` / `other_account`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from jamhost.domain.codec import encode_fixed, encode_natural
from jamhost.domain.footprint import REQUEST_ITEMS, lone_request_length, request_octets
from jamhost.domain.hashing import blake2b_256
from jamhost.engine.account import AccountState, threshold_balance
from jamhost.engine.constants import CASH, FULL, HUH, OK, WHO, ProtocolConstants
from jamhost.engine.hostio import HostPanic, read
from jamhost.pvm.interface import PvmInstance, Status

#: S: the least public service id; smaller ones only the registrar may ask for (GP 0.7.2).
MIN_PUBLIC_SERVICE_ID = 1 << 16
#: 2^32 - S - 2^8: the size of the cycle new's identifiers run through.
_ID_CYCLE = (1 << 32) - MIN_PUBLIC_SERVICE_ID - (1 << 8)


def first_candidate(service_id: int, entropy: bytes, timeslot: int) -> int:
    """(E_4^-1(H(E(s, η'_0, H_t))) mod (2^32 - S - 2^8)) + S (GP 0.7.2 eq. accinvocation, I),
    before `check`; s and H_t in the natural (compact) encoding."""
    out = bytearray()
    encode_natural(out, service_id)
    out += entropy
    encode_natural(out, timeslot)
    return int.from_bytes(blake2b_256(bytes(out))[:4], "little") % _ID_CYCLE + MIN_PUBLIC_SERVICE_ID


def check(candidate: int, exists: Callable[[int], bool]) -> int:
    """check(i) (GP 0.7.2 eq. newserviceindex): the first free id from i on, in the cycle."""
    i = candidate
    while exists(i):
        i = (i - MIN_PUBLIC_SERVICE_ID + 1) % _ID_CYCLE + MIN_PUBLIC_SERVICE_ID
    return i


def bump(service_id: int) -> int:
    """S + (i - S + 42) mod (2^32 - S - 2^8): where new looks after handing out i."""
    return MIN_PUBLIC_SERVICE_ID + (service_id - MIN_PUBLIC_SERVICE_ID + 42) % _ID_CYCLE


def service_id_hash(service_id: int) -> bytes:
    """E_32(s): the code hash a service sets so that service s may eject it."""
    out = bytearray()
    encode_fixed(out, service_id, 32)
    return bytes(out)


@dataclass(slots=True)
class ServiceView:
    """The accounts of the context (x_e)_d beyond the caller: what it made and ejected."""

    created: dict[int, AccountState] = field(default_factory=dict)
    ejected: list[int] = field(default_factory=list)
    next_id: int | None = None
    """x_i: the id the next `new` hands out (already checked); None until the first `new`
    needs it, so an invocation that makes no service asks `service_exists` nothing."""

    def copy(self) -> ServiceView:
        return ServiceView(dict(self.created), list(self.ejected), self.next_id)


class Lifecycle:
    """new and eject for one invocation; `host` gives the caller's id, x and the lookups."""

    def __init__(  # noqa: PLR0913
        self,
        service_id: int,
        timeslot: int,
        constants: ProtocolConstants,
        exists: Callable[[int], bool],
        account: Callable[[int], AccountState | None],
        first_id: Callable[[], int],
        can_create: Callable[[], bool] = lambda: True,
    ) -> None:
        self.service_id = service_id
        self.timeslot = timeslot
        self.constants = constants
        self.exists = exists
        """Whether an id is taken in the context's state (x_e)_d."""
        self.account = account
        """d[i] in the context, None when missing (or not visible to the caller)."""
        self.first_id = first_id
        """x_i of the initial context (GP 0.7.2 I), computed when first needed."""
        self.can_create = can_create
        """False when the caller's account may own no more services (jamhost's
        runtime.jam.max_services_per_account): `new` then answers CASH, the GP's answer for a
        service the caller cannot afford to make, with nothing changed."""

    def new(self, vm: PvmInstance, me: AccountState, view: ServiceView, manager: int | None,
            registrar: int | None) -> Status | None:  # fmt: skip
        """Ω_N: [o, l, g, m, f, i] = ω7..12. Panic if μ[o..+32] is unreadable or l ≥ 2^32;
        HUH if f ≠ 0 and the caller is not the manager; CASH if paying the new account's
        threshold would leave the caller below its own; the registrar may ask for an id
        i < S (FULL if taken); otherwise the id is x_i and x_i moves on (check(bump(x_i)))."""
        o, length, min_item, min_memo, gratis, wanted = (vm.get_register(i) for i in range(7, 13))
        code_hash = read(vm, o, 32)
        if length >= 1 << 32:
            raise HostPanic
        if gratis != 0 and self.service_id != manager:
            vm.set_register(7, HUH)
            return None
        balance = threshold_balance(REQUEST_ITEMS, request_octets(length), gratis)
        if me.balance - balance < me.threshold:
            vm.set_register(7, CASH)
            return None
        by_registrar = self.service_id == registrar and wanted < MIN_PUBLIC_SERVICE_ID
        if by_registrar and self.exists(wanted):
            vm.set_register(7, FULL)
            return None
        if not self.can_create():
            vm.set_register(7, CASH)
            return None
        if view.next_id is None:
            view.next_id = self.first_id()
        new_id = wanted if by_registrar else view.next_id
        view.created[new_id] = AccountState(
            code_hash=code_hash,
            balance=balance,
            min_item_gas=min_item,
            min_memo_gas=min_memo,
            requests={(code_hash, length): ()},
            gratis=gratis,
            created=self.timeslot,
            last_accumulation=0,
            parent=self.service_id,
            items=REQUEST_ITEMS,
            octets=request_octets(length),
        )
        me.balance -= balance
        if not by_registrar:
            view.next_id = check(bump(new_id), self.exists)
        vm.set_register(7, new_id)
        return None

    def eject(self, vm: PvmInstance, me: AccountState, view: ServiceView) -> Status | None:
        """Ω_J: [d, o] = ω7, ω8. Panic if μ[o..+32] is unreadable; WHO unless d is another
        existing service whose code hash is E_32(caller); HUH unless d holds only the request
        (h, max(81, d_o) - 81) and that request is [x, y] with y < t - D; else OK: d is
        removed and its balance goes to the caller."""
        d, o = vm.get_register(7), vm.get_register(8)
        h = read(vm, o, 32)
        target = self.account(d) if d != self.service_id else None
        if target is None or target.code_hash != service_id_hash(self.service_id):
            vm.set_register(7, WHO)
            return None
        length = lone_request_length(target.octets)
        slots = target.requests.get((h, length)) if target.items == REQUEST_ITEMS else None
        expired = self.timeslot - self.constants.expunge_period
        if slots is None or len(slots) != 2 or not slots[1] < expired:
            vm.set_register(7, HUH)
            return None
        if view.created.pop(d, None) is None:
            view.ejected.append(d)
        me.balance += target.balance
        vm.set_register(7, OK)
        return None
