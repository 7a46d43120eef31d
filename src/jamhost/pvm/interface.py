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
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, runtime_checkable

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
