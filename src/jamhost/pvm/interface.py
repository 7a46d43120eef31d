"""The engine interface: what callers (refine/accumulate invocations, CLI, tests) rely on.

A faster core (native or WASM) can replace the pure-Python one by implementing `PvmEngine`
and `PvmInstance`; callers only use these names. Semantics are those of GP 0.7.2 appendix A:

- `PvmInstance.run()` executes from `pc` until an exit: Ψ (GP eq. A.1). On `Status.HOST`
  the pc is that of the `ecalli` (already charged its ϱ_Δ = 1) and `Exit.host_id` is ν_X.
  The caller performs the host call by reading and writing registers and memory and
  adjusting `gas`, then calls `resume()`, which continues at the instruction after the
  ecalli (GP Ψ_H: ı'' = ı' + 1 + skip(ı')). Calling `run()` instead re-executes the ecalli.
- On `PAGE_FAULT` the state is that before the faulting instruction; `Exit.address` is the
  page address. After mapping the page, `run()` retries the instruction.
- On `OUT_OF_GAS` the state is that before the instruction that could not be paid; gas is 0.
- On `HALT`/`PANIC` the pc is that of the instruction that halted or panicked (the test
  vectors' convention; GP 0.7.2 Ψ reports 0 there, which no caller depends on).

Optional capability, `FastHostInstance`: an instance that can answer the frequent, cheap
host calls itself (gas, log, an unknown id, fetch and preimage lookups already resolved)
without a HOST exit. The host layer (engine/hostio.py `Dispatch`) configures it per
invocation with a `FastHostSpec` when the instance has `fast_host`; an engine without it
(the Python one) exits on every ecalli as above, with the same results.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, TypeVar, runtime_checkable

from jamhost.pvm.memory import Memory

REGISTER_COUNT = 13


class Status(StrEnum):
    """ε of GP eq. A.1, named as in the w3f PVM test vectors."""

    HALT = "halt"
    PANIC = "panic"
    OUT_OF_GAS = "out-of-gas"
    PAGE_FAULT = "page-fault"
    HOST = "host"


@dataclass(frozen=True, slots=True)
class Exit:
    """Why `run()` stopped. `pc` is the instruction that caused the exit."""

    status: Status
    pc: int
    host_id: int | None = None
    """ν_X of the ecalli when status is HOST."""
    address: int | None = None
    """Page address when status is PAGE_FAULT."""


@runtime_checkable
class PvmInstance(Protocol):
    """One machine state (ı, ϱ, ω, μ) of a loaded program."""

    gas: int
    pc: int
    heap_top: int | None
    """The sbrk break (GP §A.5.9; None: no standard layout, h = 0)."""
    heap_limit: int | None
    """The highest break sbrk may reach, past which it answers 0 (None: 2^32)."""

    def run(self) -> Exit: ...

    def resume(self) -> Exit:
        """Continue after a HOST exit, at the instruction following the ecalli."""
        ...

    def get_registers(self) -> list[int]: ...

    def set_registers(self, values: Sequence[int]) -> None: ...

    def get_register(self, index: int) -> int: ...

    def set_register(self, index: int, value: int) -> None:
        """value is reduced mod 2^64."""
        ...

    def read_memory(self, address: int, length: int) -> bytes:
        """Raises memory.PageFault / memory.MemoryPanic when not readable."""
        ...

    def write_memory(self, address: int, data: bytes) -> None:
        """Raises memory.PageFault / memory.MemoryPanic when not writable; writes nothing then."""
        ...

    def is_readable(self, address: int, length: int) -> bool: ...

    def is_writable(self, address: int, length: int) -> bool: ...

    def map_memory(self, address: int, length: int, writable: bool) -> None:
        """Make pages accessible (zero-filled when new), e.g. to resolve a page fault."""
        ...


@dataclass(frozen=True, slots=True)
class FastHostSpec:
    """Which host calls an instance answers itself for one invocation (GP 0.7.2 §B.6)."""

    call_gas: int
    """g of every GP host call (10)."""
    known: frozenset[int]
    """Ids that have a handler; an ecalli with any other id costs g and answers WHAT."""
    gas_id: int | None
    """Ω_G (0), or None when not served by the instance."""
    fetch_id: int | None
    """Ω_Y (1) from installed values, keyed by ω10 and, per `fetch_key_args`, ω11 / ω12."""
    fetch_key_args: bytes
    """32 octets: for selectors 0..31, bit 0 = ω11 is part of the key, bit 1 = ω12."""
    preimage_id: int | None
    """Ω_L (2) or Ω_H (6) from installed values keyed by (service, hash)."""
    self_id: int
    """The service that ω7 = 2^64-1 stands for in the preimage key."""
    log_id: int | None
    """JIP-1 log (100), kept as records up to `log_room` octets of lines."""
    log_gas: int
    log_where: str
    log_room: int
    table_budget: int
    """Octets of installed values the instance may reference."""


@runtime_checkable
class FastHostInstance(Protocol):
    """The optional capability (see the module docstring); values are installed by the host
    layer after it answered a key's first call in Python."""

    fast_calls: int
    """Host calls answered by the instance since `fast_host`."""

    def fast_host(self, spec: FastHostSpec) -> None: ...

    def fast_put_fetch(self, selector: int, a: int, b: int, value: bytes | None) -> bool:
        """False when the table is full: the key keeps exiting."""
        ...

    def fast_put_preimage(self, service: int, hash_: bytes, value: bytes | None) -> bool: ...

    def fast_put_preimage_window(self, service: int, hash_: bytes, window: bytes, total: int,
                                 at: int) -> bool:
        """The key's value has `total` octets of which `window` = v[at..+|window|] is held;
        a call copying octets outside it keeps exiting. A later window replaces this one."""
        ...

    def fast_clear_preimages(self) -> None: ...

    def fast_log_take(self) -> tuple[list[tuple[int, bytes, bytes]], int]:
        """The log records kept since the last take, (level, target, message), and the number
        dropped past the room; both emptied."""
        ...

    def fast_log_room(self, room: int) -> None:
        """Octets of log lines the invocation may still keep."""
        ...


T = TypeVar("T")


class FastTransferInstance(Protocol):
    """The fast Ω_T of the same instances, driven by accumulate's transfer handler
    (engine/accumulate.py `_TransferCall`, a hook of the host layer's fast path)."""

    def fast_transfer(self, transfer_id: int, memo_size: int, limited: bool) -> None:
        """Serve `transfer_id` for the destinations described by `fast_put_dest`."""
        ...

    def fast_spend(self, spendable: int | None) -> None:
        """The spendable balance a_b - a_t (negative: every amount is CASH; None: unknown)."""
        ...

    def fast_put_dest(self, dest: int, who: bool, min_memo_gas: int, count_room: int,
                      gas_room: int) -> bool:
        """Describe `dest` (replacing what was); False when it is left to Python."""
        ...

    def fast_clear_dests(self) -> None: ...

    def fast_transfers_take(self, cls: type[T], source: int) -> tuple[list[T], int]:
        """The transfers made since the last take, as `cls` instances, and their total
        amount; emptied."""
        ...


class FastHostVm(PvmInstance, FastHostInstance, FastTransferInstance, Protocol):
    """An instance with the fast host path (the native core's): what the host layer drives
    once it found `fast_host` on it."""


@runtime_checkable
class PvmEngine(Protocol):
    """A PVM implementation. `memory` describes the initial RAM (pages and contents)."""

    name: str
    version: str

    def instantiate(
        self,
        program: bytes,
        *,
        pc: int,
        gas: int,
        registers: Sequence[int],
        memory: Memory,
    ) -> PvmInstance:
        """Load a generic program blob (GP eq. A.2 deblob form). An undecodable blob still
        yields an instance, whose first run() panics (GP eq. A.1)."""
        ...
