"""The privileged part of the accumulation partial state (GP 0.7.2 eq. partialstate) and the
host calls that change it: bless (14), assign (15), designate (16) (GP 0.7.2 §B.8).

`Privileges` holds χ (manager m, assigners a, delegator v, registrar r, always-accumulate z)
and the two queues only privileged services write: the authorizer queue φ (per core) and the
staging validator keys ι. A holder of None means no service holds that privilege: jamhost's
services hold none (`Privileges.nobody`), unless an operator grants one to a service.

An invocation changes its own copy (the implications context); the block transition keeps
the changes of the privilege holders only (GP 0.7.2 eq. accpar, function R), see
`merge_privileges`. So a service without privilege gets the GP's answers (bless: OK, it may
rewrite its own copy; assign, designate: HUH) and changes nothing outside its invocation.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from jamhost.engine.constants import CORE, HUH, OK, WHO, ProtocolConstants
from jamhost.engine.hostio import HostPanic, read
from jamhost.pvm.interface import PvmInstance, Status

#: A validator key as designate copies it: 336 octets (GP 0.7.2 eq. valkey).
VALIDATOR_KEY_SIZE = 336
SERVICE_ID_LIMIT = 1 << 32


@dataclass(slots=True)
class Privileges:
    """χ with φ and ι (GP 0.7.2 eq. partialstate): who holds which privilege."""

    manager: int | None = None
    assigners: tuple[int | None, ...] = ()
    delegator: int | None = None
    registrar: int | None = None
    always_acc: dict[int, int] = field(default_factory=dict)
    auth_queue: tuple[tuple[bytes, ...], ...] | None = None
    """φ: per core, Q authorizer hashes; None when the caller does not track it."""
    staging: tuple[bytes, ...] | None = None
    """ι: V validator keys of 336 octets; None when the caller does not track it."""

    @classmethod
    def nobody(cls, core_count: int) -> Privileges:
        """No service holds any privilege (jamhost's default)."""
        return cls(assigners=(None,) * core_count)

    def copy(self) -> Privileges:
        return replace(self, always_acc=dict(self.always_acc))


def bless(vm: PvmInstance, me: Privileges, constants: ProtocolConstants) -> Status | None:
    """Ω_B: [m, a, v, r, o, n] = ω7..12; panic if μ[a..+4C] or μ[o..+12n] is unreadable, WHO
    if m, v or r is no service id, else OK and (m, a, v, r, z) become the context's χ."""
    m, a, v, r, o, n = (vm.get_register(i) for i in range(7, 13))
    cores = constants.core_count
    raw_assigners = read(vm, a, 4 * cores)
    if n > SERVICE_ID_LIMIT:  # 12n octets cannot all be readable in a 2^32 address space
        raise HostPanic
    raw_always = read(vm, o, 12 * n)
    if any(x >= SERVICE_ID_LIMIT for x in (m, v, r)):
        vm.set_register(7, WHO)
        return None
    me.manager, me.delegator, me.registrar = m, v, r
    me.assigners = tuple(_u(raw_assigners, 4 * i, 4) for i in range(cores))
    me.always_acc = {_u(raw_always, 12 * i, 4): _u(raw_always, 12 * i + 4, 8) for i in range(n)}
    vm.set_register(7, OK)
    return None


def _u(raw: bytes, at: int, size: int) -> int:
    return int.from_bytes(raw[at : at + size], "little")


def assign(
    vm: PvmInstance, me: Privileges, service_id: int, constants: ProtocolConstants
) -> Status | None:
    """Ω_A: [c, o, a] = ω7..9; panic if μ[o..+32Q] is unreadable, CORE if c ≥ C, HUH unless
    the caller is core c's assigner, WHO if a is no service id, else OK: φ[c] = q, a[c] = a."""
    c, o, a = (vm.get_register(i) for i in range(7, 10))
    size = constants.auth_queue_size
    raw = read(vm, o, 32 * size)
    if c >= constants.core_count:
        vm.set_register(7, CORE)
        return None
    if c >= len(me.assigners) or me.assigners[c] != service_id:
        vm.set_register(7, HUH)
        return None
    if a >= SERVICE_ID_LIMIT:
        vm.set_register(7, WHO)
        return None
    queue = tuple(raw[32 * i : 32 * i + 32] for i in range(size))
    if me.auth_queue is not None:
        me.auth_queue = tuple(queue if i == c else q for i, q in enumerate(me.auth_queue))
    me.assigners = tuple(a if i == c else x for i, x in enumerate(me.assigners))
    vm.set_register(7, OK)
    return None


def designate(
    vm: PvmInstance, me: Privileges, service_id: int, constants: ProtocolConstants
) -> Status | None:
    """Ω_D: panic if μ[ω7..+336V] is unreadable, HUH unless the caller is the delegator,
    else OK and ι becomes those V keys."""
    raw = read(vm, vm.get_register(7), VALIDATOR_KEY_SIZE * constants.validator_count)
    if me.delegator != service_id:
        vm.set_register(7, HUH)
        return None
    me.staging = tuple(
        raw[VALIDATOR_KEY_SIZE * i : VALIDATOR_KEY_SIZE * (i + 1)]
        for i in range(constants.validator_count)
    )
    vm.set_register(7, OK)
    return None


def _r(old: int | None, by_manager: int | None, by_holder: int | None) -> int | None:
    """R(o, a, b) (GP 0.7.2 eq. accpar): the manager's change wins, else the holder's."""
    return by_holder if by_manager == old else by_manager


def merge_privileges(prior: Privileges, post: dict[int, Privileges]) -> Privileges:
    """The χ', φ', ι' of one Δ* round (GP 0.7.2 eq. accpar) from each accumulated service's
    post-state privileges (`post`; a service not accumulated left the prior ones)."""

    def of(holder: int | None) -> Privileges:
        return post.get(holder, prior) if holder is not None else prior

    manager = of(prior.manager)
    assigners = tuple(
        _r(old, manager.assigners[c], of(old).assigners[c]) for c, old in enumerate(prior.assigners)
    )
    auth_queue = prior.auth_queue
    if auth_queue is not None:
        auth_queue = tuple(
            (of(prior.assigners[c]).auth_queue or auth_queue)[c] for c in range(len(auth_queue))
        )
    return Privileges(
        manager=manager.manager,
        assigners=assigners,
        delegator=_r(prior.delegator, manager.delegator, of(prior.delegator).delegator),
        registrar=_r(prior.registrar, manager.registrar, of(prior.registrar).registrar),
        always_acc=dict(manager.always_acc),
        auth_queue=auth_queue,
        staging=of(prior.delegator).staging,
    )
