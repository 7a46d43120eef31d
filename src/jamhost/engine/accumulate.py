"""Accumulate: Ψ_A for one service (GP 0.7.2 §B.5, eq. accinvocation), entry pc 5.

The invocation runs on a copy-on-write view of the caller's `AccountState`, in two
dimensions as the GP has it: x, changed by every host call, and y, the state last
checkpointed (Ω_C) or the initial one. A regular halt keeps x; panic and out-of-gas keep y
(the collapse C). The caller persists the returned post-state (or just the recorded changes).

A service reads and writes only its own account. Reading another service (read, lookup, info,
and the destination of transfer/provide) goes through `other_account`, which jamhost makes
return None when authorization is enabled: the call then answers NONE (or WHO) exactly as for
a service that does not exist.

Host calls: gas 0, fetch 1, lookup 2, read 3, write 4, info 5, bless 14, assign 15,
designate 16, checkpoint 17, new 18, upgrade 19, transfer 20, eject 21, query 22, solicit 23,
forget 24, yield 25, provide 26 (GP 0.7.2 §B.6, §B.8), and log 100 (JIP-1). All cost 10 gas,
transfer 10 + its gas argument when it succeeds; log 10 (0 with `gp_version="0.7.0"`, as
the older w3f vectors charge it); an invocation keeps at most `max_log_bytes` of log lines.
The privileged calls answer as GP 0.7.2 does for the
privileges the caller passes (`privileges`; jamhost's services hold none), see
`jamhost.engine.privileges`; new and eject are in `jamhost.engine.lifecycle`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from jamhost.domain.codec import encode_fixed, encode_natural
from jamhost.domain.footprint import request_delta, storage_delta
from jamhost.domain.hashing import blake2b_256
from jamhost.engine.account import AccountState, RequestKey, threshold_balance
from jamhost.engine.constants import (
    ACCUMULATE_PC,
    CASH,
    DEFAULT_MAX_LOG_BYTES,
    FULL,
    HUH,
    LOG_GAS,
    LOG_GAS_0_7_0,
    LOW,
    MEMO_SIZE,
    NONE,
    OK,
    SELF,
    WHO,
    HostCall,
    ProtocolConstants,
)
from jamhost.engine.fetch import FetchSource
from jamhost.engine.hostio import LogSink, PreimageCall, answer_blob, dispatch, gas_call, read
from jamhost.engine.lifecycle import Lifecycle, ServiceView, check, first_candidate
from jamhost.engine.operands import AccumulateOperand, DeferredTransfer, encode_inputs
from jamhost.engine.overlay import Overlay
from jamhost.engine.privileges import Privileges, assign, bless, designate
from jamhost.pvm.host import invoke_service_code
from jamhost.pvm.interface import FastHostVm, PvmEngine, PvmInstance, Status

K = TypeVar("K")
V = TypeVar("V")

OtherAccount = Callable[[int], "AccountState | None"]
ServiceExists = Callable[[int], bool]
# (destination, gas, transfers made so far in the current context x, to any destination; an
# append-only list during the run) -> whether the destination's queue of inputs has room for
# one more: False answers LOW (jamhost's bound on queued inputs, docs/security.md; GP 0.7.2
# has no such bound, the caller sets it).
AdmitTransfer = Callable[[int, int, Sequence["DeferredTransfer"]], bool]
# (destination, transfers made so far in x) -> (transfers, gas) the destination's queue still
# takes: the same bound as AdmitTransfer (a transfer of g is admitted when count >= 1 and
# g <= gas), in a form an engine can keep counting down by itself (hostio fast path).
TransferRoom = Callable[[int, Sequence["DeferredTransfer"]], tuple[int, int]]

__all__ = [
    "AccumulateOutcome",
    "CreatedService",
    "accumulate",
    "accumulate_arguments",
    "accumulate_gas",
    "info_blob",
    "integrate_provision",
]


@dataclass(slots=True)
class AccumulateOutcome:
    """The result of Ψ_A for one service (GP 0.7.2 eq. acconeout, plus jamhost extras)."""

    account: AccountState
    """The post-state δ'[s]: overlays on the caller's mappings (read through to them)."""
    transfers: list[DeferredTransfer]
    """t: outgoing deferred transfers, in the order made; queue them for their receivers."""
    yield_hash: bytes | None
    """y: the accumulation output (yield, or a 32-octet halt output)."""
    gas_used: int
    """u."""
    provided: list[tuple[int, bytes]]
    """p: (service, blob) preimages provided; integrate with `integrate_provision`."""
    logs: list[str] = field(default_factory=list)
    status: Status | None = None
    """How the PVM stopped; None when there was no code to run."""
    output: bytes | None = None
    """The halt output μ[ω7..+ω8] (a yield when exactly 32 octets), None if not halted."""
    storage_changes: dict[bytes, bytes | None] = field(default_factory=dict)
    """key -> new value, or None for a deleted key: what to persist in storage."""
    preimage_changes: dict[bytes, bytes | None] = field(default_factory=dict)
    request_changes: dict[RequestKey, tuple[int, ...] | None] = field(default_factory=dict)
    created: list[CreatedService] = field(default_factory=list)
    """Services made by `new` (GP 0.7.2 Ω_N), in the order made; persist them in the caller's
    account."""
    ejected: list[int] = field(default_factory=list)
    """Services removed by `eject` (GP 0.7.2 Ω_J); their balance is already in `account`."""
    logs_dropped: int = 0
    """`log` messages (or bytes of them) past the per-invocation cap, not kept."""
    privileges: Privileges | None = None
    """The context's χ, φ, ι at the end (changed by bless/assign/designate); the block
    transition keeps only the holders' changes (`jamhost.engine.privileges.merge_privileges`)."""


@dataclass(slots=True)
class CreatedService:
    """One service made by `new`: its id and its initial account (code hash, balance, gas
    minimums, gratis, the code's lookup request)."""

    service_id: int
    account: AccountState


def accumulate_arguments(timeslot: int, service_id: int, count: int) -> bytes:
    """a = E(t, s, |i|) (GP 0.7.2 eq. accinvocation)."""
    out = bytearray()
    for value in (timeslot, service_id, count):
        encode_natural(out, value)
    return bytes(out)


def info_blob(account: AccountState) -> bytes:
    """v of Ω_I: E(a_c, E_8(a_b, a_t, a_g, a_m, a_o), E_4(a_i), E_8(a_f), E_4(a_r, a_a, a_p))."""
    out = bytearray(account.code_hash)
    for value in (
        account.balance,
        account.threshold,
        account.min_item_gas,
        account.min_memo_gas,
        account.octets,
    ):
        encode_fixed(out, value, 8)
    encode_fixed(out, account.items, 4)
    encode_fixed(out, account.gratis, 8)
    for value in (account.created, account.last_accumulation, account.parent):
        encode_fixed(out, value, 4)
    return bytes(out)


@dataclass(slots=True)
class _Context:
    """One dimension of the implications context L (GP 0.7.2 eq. implications)."""

    account: AccountState
    privileges: Privileges
    services: ServiceView
    transfers: list[DeferredTransfer] = field(default_factory=list)
    yield_hash: bytes | None = None
    provided: list[tuple[int, bytes]] = field(default_factory=list)

    def copy(self) -> _Context:
        return _Context(
            self.account.snapshot(),
            self.privileges.copy(),
            self.services.copy(),
            list(self.transfers),
            self.yield_hash,
            list(self.provided),
        )


CHANGE_PREIMAGES = frozenset((HostCall.FORGET, HostCall.NEW, HostCall.EJECT))
"""The host calls after which a lookup may answer differently: forget drops a preimage of
this service, new and eject add and remove services from the view. No other call changes
any account's preimages within an invocation (provide only queues; solicit and write touch
requests and storage), so an engine's installed lookups are emptied after these only."""


class _AccumulateHost:  # noqa: PLR0904 - one method per host call
    """The host calls of F (GP 0.7.2 eq. accinvocation) over the context pair (x, y)."""

    def __init__(  # noqa: PLR0913
        self,
        service_id: int,
        account: AccountState,
        fetch: FetchSource,
        timeslot: int,
        other_account: OtherAccount,
        constants: ProtocolConstants,
        gp_version: str,
        privileges: Privileges,
        service_exists: ServiceExists,
        entropy: bytes,
        max_log_bytes: int = DEFAULT_MAX_LOG_BYTES,
        admit_transfer: AdmitTransfer | None = None,
        can_create: Callable[[], bool] | None = None,
        transfer_room: TransferRoom | None = None,
    ) -> None:
        self.service_id = service_id
        self.admit_transfer = admit_transfer
        self.transfer_room = transfer_room
        self._last_dest: int | None = None
        self.timeslot = timeslot
        self.other_account = other_account
        self.service_exists = service_exists
        self.constants = constants
        self.gp_version = gp_version
        self.log = LogSink(f"#{service_id} accumulate", max_log_bytes)
        self.lifecycle = Lifecycle(
            service_id, timeslot, constants, self._exists, self._account,
            lambda: check(first_candidate(service_id, entropy, timeslot), self._base_exists),
            can_create or (lambda: True),
        )  # fmt: skip
        self.x = _Context(account, privileges.copy(), ServiceView())
        self.y = self.x.copy()
        self.handler = dispatch(
            {
                HostCall.GAS: gas_call,
                HostCall.FETCH: fetch,
                HostCall.LOOKUP: PreimageCall(self.preimage, service_id),
                HostCall.READ: self.read,
                HostCall.WRITE: self.write,
                HostCall.INFO: self.info,
                HostCall.BLESS: lambda vm: bless(vm, self.x.privileges, constants),
                HostCall.ASSIGN: lambda vm: assign(vm, self.x.privileges, service_id, constants),
                HostCall.DESIGNATE: lambda vm: designate(
                    vm, self.x.privileges, service_id, constants
                ),
                HostCall.CHECKPOINT: self.checkpoint,
                HostCall.NEW: self.new,
                HostCall.UPGRADE: self.upgrade,
                HostCall.TRANSFER: _TransferCall(self),
                HostCall.EJECT: self.eject,
                HostCall.QUERY: self.query,
                HostCall.SOLICIT: self.solicit,
                HostCall.FORGET: self.forget,
                HostCall.YIELD: self.yield_,
                HostCall.PROVIDE: self.provide,
            },
            self.log,
            LOG_GAS_0_7_0 if gp_version == "0.7.0" else LOG_GAS,
            CHANGE_PREIMAGES,
        )

    @property
    def me(self) -> AccountState:
        return self.x.account

    def _account(self, service: int) -> AccountState | None:
        """(x_e)_d[service] as this invocation may see it: itself, a service it made, or
        `other_account` (None for one it ejected)."""
        if service == self.service_id:
            return self.me
        view = self.x.services
        if service in view.created:
            return view.created[service]
        if service >= 1 << 32 or service in view.ejected:
            return None
        return self.other_account(service)

    def _base_exists(self, service: int) -> bool:
        """Whether an id is taken in the state the invocation started from."""
        return service == self.service_id or self.service_exists(service)

    def _exists(self, service: int) -> bool:
        """Whether an id is taken in the context's state (x_e)_d."""
        view = self.x.services
        if service in view.created:
            return True
        return service not in view.ejected and self._base_exists(service)

    # -- general functions (GP 0.7.2 §B.6) -------------------------------------------------

    def preimage(self, who: int, h: bytes) -> bytes | None:
        """What Ω_L answers for the hash at ω8 in service ω7 (2^64-1: self), the rest being
        hostio.PreimageCall's (out ω9, f ω10, l ω11)."""
        account = self.me if who == SELF else self._account(who)
        return account.preimages.get(h) if account is not None else None

    def read(self, vm: PvmInstance) -> Status | None:
        """Ω_R: storage[μ[ω8..+ω9]] of service ω7 (2^64-1: self); out ω10, f ω11, l ω12."""
        who = vm.get_register(7)
        key = read(vm, vm.get_register(8), vm.get_register(9))
        account = self.me if who == SELF else self._account(who)
        value = account.storage.get(key) if account is not None else None
        answer_blob(vm, value, vm.get_register(10), vm.get_register(11), vm.get_register(12))
        return None

    def write(self, vm: PvmInstance) -> Status | None:
        """Ω_W: storage[μ[ω7..+ω8]] = μ[ω9..+ω10] (delete when ω10 = 0); ω7 = old length,
        NONE if there was none, FULL if the new footprint would exceed the balance."""
        key = read(vm, vm.get_register(7), vm.get_register(8))
        v_len = vm.get_register(10)
        value = read(vm, vm.get_register(9), v_len) if v_len else None
        me = self.me
        old = me.storage.get(key)
        d_items, d_octets = storage_delta(key, old, value)
        items, octets = me.items + d_items, me.octets + d_octets
        if _threshold(me, items, octets) > me.balance:
            vm.set_register(7, FULL)
            return None
        if value is None:
            if old is not None:
                del me.storage[key]
        else:
            me.storage[key] = value
        me.items, me.octets = items, octets
        vm.set_register(7, NONE if old is None else len(old))
        return None

    def info(self, vm: PvmInstance) -> Status | None:
        """Ω_I: the account summary of service ω7 (2^64-1: self) to ω8; f ω9, l ω10
        (GP 0.7.0 read f and l from ω11, ω12)."""
        who = vm.get_register(7)
        account = self.me if who == SELF else self._account(who)
        value = info_blob(account) if account is not None else None
        f, lim = (11, 12) if self.gp_version == "0.7.0" else (9, 10)
        answer_blob(vm, value, vm.get_register(8), vm.get_register(f), vm.get_register(lim))
        return None

    # -- accumulate functions (GP 0.7.2 §B.8) -----------------------------------------------

    def checkpoint(self, vm: PvmInstance) -> Status | None:
        """Ω_C: y = x; ω7 = ϱ'."""
        self.y = self.x.copy()
        vm.set_register(7, vm.gas)
        return None

    def new(self, vm: PvmInstance) -> Status | None:
        """Ω_N, see `Lifecycle.new`."""
        p = self.x.privileges
        return self.lifecycle.new(vm, self.me, self.x.services, p.manager, p.registrar)

    def eject(self, vm: PvmInstance) -> Status | None:
        """Ω_J, see `Lifecycle.eject`."""
        return self.lifecycle.eject(vm, self.me, self.x.services)

    def upgrade(self, vm: PvmInstance) -> Status | None:
        """Ω_U: code hash μ[ω7..+32], a_g = ω8, a_m = ω9."""
        code_hash = read(vm, vm.get_register(7), 32)
        self.me.code_hash = code_hash
        self.me.min_item_gas = vm.get_register(8)
        self.me.min_memo_gas = vm.get_register(9)
        vm.set_register(7, OK)
        return None

    def transfer(self, vm: PvmInstance) -> Status | None:
        """Ω_T: send ω8 to service ω7 with gas ω9 and memo μ[ω10..+W_T]; costs 10 + ω9 on OK."""
        dest, amount, gas, memo_at = (vm.get_register(i) for i in range(7, 11))
        memo = read(vm, memo_at, self.constants.memo_size)
        self._last_dest = dest
        target = self._account(dest)
        me = self.me
        if target is None:
            code = WHO
        elif gas < target.min_memo_gas:
            code = LOW
        elif not self._admits(dest, gas):
            code = LOW  # the destination's queue of inputs is full (jamhost's bound)
        elif me.balance - amount < me.threshold:
            code = CASH
        else:
            code = OK
        if code != OK:
            vm.set_register(7, code)
            return None
        if vm.gas < gas:
            vm.gas -= gas
            return Status.OUT_OF_GAS
        vm.gas -= gas
        self.x.transfers.append(DeferredTransfer(self.service_id, dest, amount, memo, gas))
        me.balance -= amount
        vm.set_register(7, OK)
        return None

    def _admits(self, dest: int, gas: int) -> bool:
        if self.transfer_room is not None:
            count, room_gas = self.transfer_room(dest, self.x.transfers)
            return count >= 1 and gas <= room_gas
        if self.admit_transfer is not None:
            return self.admit_transfer(dest, gas, self.x.transfers)
        return True

    def query(self, vm: PvmInstance) -> Status | None:
        """Ω_Q: the request status of (μ[ω7..+32], ω8), packed into ω7 and ω8."""
        h = read(vm, vm.get_register(7), 32)
        slots = self.me.requests.get((h, vm.get_register(8)))
        if slots is None:
            r7, r8 = NONE, 0
        else:
            padded = list(slots) + [0, 0, 0]
            r7 = len(slots) + (padded[0] << 32) if slots else 0
            r8 = padded[1] + (padded[2] << 32) if len(slots) > 1 else 0
        vm.set_register(7, r7)
        vm.set_register(8, r8)
        return None

    def solicit(self, vm: PvmInstance) -> Status | None:
        """Ω_S: request the preimage (μ[ω7..+32], ω8): [] when new, [x, y] -> [x, y, t]."""
        h = read(vm, vm.get_register(7), 32)
        key = (h, vm.get_register(8))
        me = self.me
        slots = me.requests.get(key)
        items, octets = me.items, me.octets
        if slots is None:
            new: tuple[int, ...] = ()
            d_items, d_octets = request_delta(key[1], was=False, now=True)
            items, octets = items + d_items, octets + d_octets
        elif len(slots) == 2:
            new = (*slots, self.timeslot)
        else:
            vm.set_register(7, HUH)
            return None
        if _threshold(me, items, octets) > me.balance:
            vm.set_register(7, FULL)
            return None
        me.requests[key] = new
        me.items, me.octets = items, octets
        vm.set_register(7, OK)
        return None

    def forget(self, vm: PvmInstance) -> Status | None:
        """Ω_F: drop or mark unavailable the preimage (μ[ω7..+32], ω8)."""
        h = read(vm, vm.get_register(7), 32)
        key = (h, vm.get_register(8))
        me = self.me
        slots = me.requests.get(key)
        expired = self.timeslot - self.constants.expunge_period
        if slots is not None and (len(slots) == 0 or (len(slots) == 2 and slots[1] < expired)):
            del me.requests[key]
            if h in me.preimages:
                del me.preimages[h]
            d_items, d_octets = request_delta(key[1], was=True, now=False)
            me.items, me.octets = me.items + d_items, me.octets + d_octets
        elif slots is not None and len(slots) == 1:
            me.requests[key] = (slots[0], self.timeslot)
        elif slots is not None and len(slots) == 3 and slots[1] < expired:
            me.requests[key] = (slots[2], self.timeslot)
        else:
            vm.set_register(7, HUH)
            return None
        vm.set_register(7, OK)
        return None

    def yield_(self, vm: PvmInstance) -> Status | None:
        """Ω_♉ (yield): the accumulation output becomes μ[ω7..+32]."""
        self.x.yield_hash = read(vm, vm.get_register(7), 32)
        vm.set_register(7, OK)
        return None

    def provide(self, vm: PvmInstance) -> Status | None:
        """Ω_♈ (provide): supply μ[ω8..+ω9] for service ω7's request (2^64-1: self)."""
        who = vm.get_register(7)
        service = self.service_id if who == SELF else who
        blob = read(vm, vm.get_register(8), vm.get_register(9))
        account = self._account(service)
        if account is None:
            vm.set_register(7, WHO)
        elif account.requests.get((blake2b_256(blob), len(blob))) != ():
            vm.set_register(7, HUH)
        elif (service, blob) in self.x.provided:
            vm.set_register(7, HUH)
        else:
            self.x.provided.append((service, blob))
            vm.set_register(7, OK)
        return None


CHANGE_ACCOUNTS = frozenset((HostCall.NEW, HostCall.EJECT, HostCall.UPGRADE))
"""The host calls after which a transfer destination may be described differently: new and
eject add and remove services, upgrade changes this service's min memo gas."""


class _TransferCall:
    """Ω_T (`_AccumulateHost.transfer`) and its fast path (hostio.Dispatch hooks).

    An engine with the capability answers transfers to destinations described to it here
    after their first transfer (WHO, min memo gas, the room left in the queue) from the
    spendable balance a_b - a_t, and keeps the transfers it made as records. Before any
    other call reaches Python (`fast_take`) they become the context's DeferredTransfers,
    debiting the balance in the same order; after it (`fast_after`) the balance and what
    the call may have changed are given again."""

    __slots__ = ("host",)

    def __init__(self, host: _AccumulateHost) -> None:
        self.host = host

    def __call__(self, vm: PvmInstance) -> Status | None:
        return self.host.transfer(vm)

    def fast_begin(self, vm: FastHostVm) -> None:
        host = self.host
        if host.admit_transfer is not None and host.transfer_room is None:
            return  # a bound the engine cannot count down: every transfer goes to Python
        if host.constants.memo_size != MEMO_SIZE:
            return  # DeferredTransfer refuses such memos: the Python handler raises as before
        vm.fast_transfer(
            HostCall.TRANSFER, host.constants.memo_size, host.transfer_room is not None)
        self._spend(vm)

    def _spend(self, vm: FastHostVm) -> None:
        me = self.host.me
        vm.fast_spend(me.balance - me.threshold)

    def fast_take(self, vm: FastHostVm) -> None:
        host = self.host
        made: list[DeferredTransfer]
        made, amount = vm.fast_transfers_take(DeferredTransfer, host.service_id)
        if made:
            host.x.transfers += made
            host.me.balance -= amount

    def fast_after(self, vm: FastHostVm, host_id: int) -> None:
        host = self.host
        if host_id in CHANGE_ACCOUNTS:
            vm.fast_clear_dests()
        elif host_id == HostCall.TRANSFER and host._last_dest is not None:
            dest, host._last_dest = host._last_dest, None
            target = host._account(dest)
            count = gas = 0
            if target is not None and host.transfer_room is not None:
                count, gas = host.transfer_room(dest, host.x.transfers)
            vm.fast_put_dest(
                dest, target is None, target.min_memo_gas if target is not None else 0,
                count, gas)
        self._spend(vm)


def _threshold(account: AccountState, items: int, octets: int) -> int:
    """a_t of `account` with a changed footprint (a_i, a_o)."""
    return threshold_balance(items, octets, account.gratis)


def _changes(mapping: Mapping[K, V]) -> dict[K, V | None]:
    return mapping.effective_changes() if isinstance(mapping, Overlay) else {}


def accumulate(  # noqa: PLR0913 - the arguments of Ψ_A
    service_id: int,
    account: AccountState,
    operands: Sequence[AccumulateOperand],
    transfers: Sequence[DeferredTransfer] = (),
    *,
    timeslot: int,
    gas_limit: int,
    entropy: bytes,
    other_account: OtherAccount = lambda _: None,
    constants: ProtocolConstants | None = None,
    engine: PvmEngine | None = None,
    gp_version: str = "0.7.2",
    max_log_bytes: int = DEFAULT_MAX_LOG_BYTES,
    privileges: Privileges | None = None,
    service_exists: ServiceExists | None = None,
    admit_transfer: AdmitTransfer | None = None,
    can_create: Callable[[], bool] | None = None,
    transfer_room: TransferRoom | None = None,
) -> AccumulateOutcome:
    """Ψ_A(o, t, s, g, i) for service `service_id` (GP 0.7.2 eq. accinvocation).

    `operands` are this service's digests (AccumulateOperand.from_digest), `transfers` the
    deferred transfers queued for it; their amounts are credited before the code runs and
    they come first among the inputs `fetch` reveals. `gas_limit` is g (see
    `accumulate_gas`). `entropy` is η'_0 (32 octets). `account` is never modified: the
    post-state in the outcome is an overlay on it. `gp_version="0.7.0"` reproduces the
    encodings of GP 0.7.0 (operands without discriminator, info's f/l in ω11/ω12), which the
    w3f accumulate vectors were made with.

    `privileges` are the χ, φ, ι the invocation starts from (default: no service holds any
    privilege); the outcome carries the context's at the end. `service_exists(i)` says whether
    a service id is taken anywhere in the state (new's `check` skips those); by default
    `other_account(i) is not None`. A service `other_account` hides answers as a missing one.

    The handles the caller gives bound what the invocation reaches: `other_account` answers
    for any service id other than the caller (None: as a service that does not exist),
    `admit_transfer` may refuse a transfer (LOW) for room in the destination's queue
    (`transfer_room`, the same bound as counts, takes precedence and lets an engine answer
    transfers itself),
    `service_exists` is the store-wide id check `new` allocates with, and `can_create`
    False makes `new` answer as the GP does when a service cannot be made. jamhost's
    pipeline passes them from `jamhost.app.tenant_accounts.TenantAccounts`."""
    constants = constants or ProtocolConstants.full()
    privileges = privileges or Privileges.nobody(constants.core_count)
    if service_exists is None:
        service_exists = lambda i: other_account(i) is not None  # noqa: E731
    post = account.overlaid()
    post.balance += sum(t.amount for t in transfers)
    code = account.code()
    if code is None or len(code) > constants.max_service_code_size:
        return AccumulateOutcome(post, [], None, 0, [], privileges=privileges)
    inputs = encode_inputs(operands, transfers, gp_version)
    fetch = FetchSource(constants, entropy=entropy, inputs=inputs)
    host = _AccumulateHost(
        service_id, post, fetch, timeslot, other_account, constants, gp_version,
        privileges, service_exists, entropy, max_log_bytes, admit_transfer, can_create,
        transfer_room,
    )  # fmt: skip
    args = accumulate_arguments(timeslot, service_id, len(inputs))
    run = invoke_service_code(code, ACCUMULATE_PC, gas_limit, args, host.handler, engine=engine)
    if run.status is Status.HALT:
        ctx = host.x
        output = run.output or b""
        yield_hash = output if len(output) == 32 else ctx.yield_hash
    else:
        ctx = host.y
        yield_hash = ctx.yield_hash
    final = ctx.account
    return AccumulateOutcome(
        account=final,
        transfers=ctx.transfers,
        yield_hash=yield_hash,
        gas_used=run.gas_used,
        provided=ctx.provided,
        logs=host.log.lines,
        logs_dropped=host.log.dropped,
        status=run.status,
        output=run.output,
        storage_changes=_changes(final.storage),
        preimage_changes=_changes(final.preimages),
        request_changes=_changes(final.requests),
        created=[CreatedService(i, a) for i, a in ctx.services.created.items()],
        ejected=list(ctx.services.ejected),
        privileges=ctx.privileges,
    )


def accumulate_gas(
    operands: Sequence[AccumulateOperand],
    transfers: Sequence[DeferredTransfer] = (),
    free_gas: int = 0,
) -> int:
    """g = f_s + Σ t_g + Σ d_g (GP 0.7.2 eq. accone): the gas of one service's accumulation."""
    return free_gas + sum(t.gas for t in transfers) + sum(o.gas_limit for o in operands)


def provision(blob: bytes, timeslot: int,
              current: Callable[[RequestKey], object]) -> tuple[RequestKey, tuple[int]] | None:
    """The provide rule (GP 0.7.2 eq. provide integration): a provided blob is kept only if
    the service still solicits it, its request (H(i), |i|) present and empty (`current`
    answers a request's slots, None if absent). Returns the request entry it then sets,
    [] -> [t'], or None if the blob is not integrated."""
    key = (blake2b_256(blob), len(blob))
    if current(key) != ():
        return None
    return key, (timeslot,)


def integrate_provision(account: AccountState, blob: bytes, timeslot: int) -> bool:
    """I (GP 0.7.2 eq. provide integration): store a provided preimage if still requested.

    Returns whether it was stored (a_l[(H(i), |i|)] = [] -> [t'], a_p[H(i)] = i)."""
    entry = provision(blob, timeslot, account.requests.get)
    if entry is None:
        return False
    key, slots = entry
    account.requests[key] = slots
    account.preimages[key[0]] = blob
    return True
