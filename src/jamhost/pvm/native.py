"""The native PVM engine: `PvmEngine`/`PvmInstance` over the C core in `_native.c`.

The core executes; this module translates to the interface: exit kinds into `Exit`, memory
errors into `memory.PageFault`/`memory.MemoryPanic`, and the `Memory` description given to
`instantiate` into the core's page table (content is copied; `instance.memory` is a
snapshot built on demand, for test vectors and inspection). Checked programs are shared
through a byte-budgeted cache keyed by the blob (GP programs are content-addressed).
"""

from __future__ import annotations

from collections.abc import Sequence

from jamhost.pvm import safepoint

# type-ignore reason: the C extension ships no type stub
from jamhost.pvm import _native  # type: ignore[attr-defined]  # isort: skip
from jamhost.pvm.cache import DEFAULT_PROGRAM_CACHE_BYTES, ByteBudgetCache
from jamhost.pvm.interface import REGISTER_COUNT, Exit, FastHostSpec, Status
from jamhost.pvm.memory import (
    ADDRESS_SPACE,
    LOW_LIMIT,
    M32,
    PAGE_SHIFT,
    Memory,
    MemoryPanic,
    PageFault,
)

ENGINE_NAME = "jamhost-pvm-native"
ENGINE_VERSION = "0.1.0"

_STATUS = {
    _native.EXIT_HALT: Status.HALT,
    _native.EXIT_PANIC: Status.PANIC,
    _native.EXIT_OUT_OF_GAS: Status.OUT_OF_GAS,
    _native.EXIT_PAGE_FAULT: Status.PAGE_FAULT,
    _native.EXIT_HOST: Status.HOST,
}

_HOST = _native.EXIT_HOST
assert _native.YIELD_GAS == safepoint.YIELD_GAS

_programs: ByteBudgetCache[tuple[int, int], object] = ByteBudgetCache(
    # type-ignore reason: a native Program (untyped C object) reports its own cost
    DEFAULT_PROGRAM_CACHE_BYTES, lambda p: p.cost()  # type: ignore[attr-defined]
)
"""Checked programs by (length, `_native.digest` of the blob): Python's hash of a 4 MB blob
cost more than checking it. A hit is used only if its blob is the same octets."""


def load(blob: bytes) -> object | None:
    """The checked program of `blob` (cached), or None when GP eq. A.2 rejects it."""
    blob = bytes(blob)
    key = (len(blob), _native.digest(blob))
    hit = _programs.get(key)
    # type-ignore reason: a cached native Program (C object, no stub) keeps its blob
    if hit is not None and (hit.blob is blob or hit.blob == blob):  # type: ignore[attr-defined]
        return hit
    program = _native.load(blob)
    if program is not None:
        _programs.put(key, program)
    # type-ignore reason: _native.load answers a Program or None (no stub)
    return program  # type: ignore[no-any-return]


def _raise(error: tuple[int, int]) -> None:
    kind, address = error
    if kind == _native.EXIT_PAGE_FAULT:
        raise PageFault(address)
    raise MemoryPanic(address)


# type-ignore reason: subclassing the C extension's Machine, which has no stub (Any)
class NativeInstance(_native.Machine):  # type: ignore[misc]
    """A machine state of the native core; implements interface.PvmInstance.

    `gas`, `pc`, the register methods and the run loop live in C; an undecodable program
    panics on every run without charging gas, as the Python engine does."""

    __slots__ = ("_bad",)

    def __init__(self, program: object | None) -> None:
        self._bad = program is None
        super().__init__(program if program is not None else _EMPTY)

    def _exit(self, kind: int) -> Exit:
        status = _STATUS[kind]
        if status is Status.HOST:
            return Exit(status, self.pc, host_id=self.host_id)
        if status is Status.PAGE_FAULT:
            return Exit(status, self.pc, address=self.fault_address)
        return Exit(status, self.pc)

    def fast_host(self, spec: FastHostSpec) -> None:
        """interface.FastHostInstance: answer spec's host calls in the core (_fasthost.h)."""
        known = 0
        for host_id in spec.known:
            if 0 <= host_id < 128:
                known |= 1 << host_id
        none = (1 << 64) - 1

        def id_(value: int | None) -> int:
            return none if value is None else value

        self._fast_host(
            spec.call_gas, spec.log_gas, id_(spec.gas_id), id_(spec.fetch_id),
            id_(spec.preimage_id), id_(spec.log_id), known & none, known >> 64,
            spec.fetch_key_args, spec.self_id, len(spec.log_where),
            len(spec.log_where.encode("utf-8")), spec.log_room, spec.table_budget,
        )  # fmt: skip

    fast_put_fetch = _native.Machine._fast_put_fetch
    fast_put_preimage = _native.Machine._fast_put_preimage
    fast_put_preimage_window = _native.Machine._fast_put_preimage_window
    fast_clear_preimages = _native.Machine._fast_clear_preimages
    fast_log_take = _native.Machine._fast_log_take
    fast_log_room = _native.Machine._fast_log_room
    fast_transfer = _native.Machine._fast_transfer
    fast_spend = _native.Machine._fast_spend
    fast_put_dest = _native.Machine._fast_put_dest
    fast_clear_dests = _native.Machine._fast_clear_dests
    fast_transfers_take = _native.Machine._fast_transfers_take

    def run(self) -> Exit:
        if self._bad:
            return Exit(Status.PANIC, self.pc)
        return self._exit(self._run())

    def resume(self) -> Exit:
        return self._exit(self._resume())

    def run_host(self) -> int:
        """run() for pvm.host's loop: ν_X (>= 0) on a HOST exit, with no Exit object made;
        negative for any other exit, whose Exit `exit_of` gives."""
        if self._bad:
            # type-ignore reason: the C extension's constants are untyped (no stub)
            return -1 - _native.EXIT_PANIC  # type: ignore[no-any-return]
        # type-ignore reason: the C core's run answers an int (no stub)
        return self._run_host()  # type: ignore[no-any-return]

    resume_host = _native.Machine._resume_host
    """resume() as `run_host`."""

    def exit_of(self, code: int) -> Exit:
        """The Exit of a negative code of `run_host` / `resume_host`."""
        if self._bad:
            return Exit(Status.PANIC, self.pc)
        return self._exit(-1 - code)

    def read_memory(self, address: int, length: int) -> bytes:
        out = self._read(address & M32, length)
        if type(out) is not bytes:
            _raise(out)
        # type-ignore reason: the C core answers bytes, or a fault code raised just above
        return out  # type: ignore[no-any-return]

    def write_memory(self, address: int, data: bytes) -> None:
        err = self._write(address & M32, data)
        if err is not None:
            _raise(err)

    def is_readable(self, address: int, length: int) -> bool:
        if address + length > ADDRESS_SPACE:
            return False
        return bool(self._accessible(address & M32, length, False))

    def is_writable(self, address: int, length: int) -> bool:
        if address + length > ADDRESS_SPACE:
            return False
        return bool(self._accessible(address & M32, length, True))

    def map_memory(self, address: int, length: int, writable: bool) -> None:
        """Memory.map: whole pages from 2^16 to 2^32."""
        if length <= 0:
            return
        first = address >> PAGE_SHIFT
        last = (address + length - 1) >> PAGE_SHIFT
        if first < LOW_LIMIT >> PAGE_SHIFT:
            raise ValueError("pages below 2^16 are never accessible (GP §A.4)")
        if last >= ADDRESS_SPACE >> PAGE_SHIFT:
            raise ValueError("mapping beyond the 32-bit address space")
        self._map_pages(first, last, writable)

    @property
    def memory(self) -> Memory:
        """A snapshot of RAM as a `Memory` (pages never touched stay lazily mapped)."""
        mem = Memory()
        for index, state, content in self._pages():
            if content is None:
                mem.lazy[index] = state == "w"
            else:
                page = bytearray(content)
                mem.rp[index] = page
                if state == "W":
                    mem.wp[index] = page
        mem.heap_top = self.heap_top
        mem.heap_limit = self.heap_limit
        return mem


_EMPTY = _native.load(b"\x00\x00\x00")


class NativePvm:
    """interface.PvmEngine for the native core."""

    name = ENGINE_NAME
    version = ENGINE_VERSION

    def instantiate(
        self,
        program: bytes,
        *,
        pc: int,
        gas: int,
        registers: Sequence[int],
        memory: Memory,
    ) -> NativeInstance:
        regs = list(registers)
        if len(regs) != REGISTER_COUNT:
            raise ValueError("13 registers expected")
        vm = NativeInstance(load(program))
        hook = safepoint.current()
        if hook is not None:
            vm.safe_point = hook  # the core calls it every YIELD_GAS gas (pvm/safepoint.py)
        vm.set_registers(regs)
        vm.gas = gas
        vm.pc = pc
        wp = memory.wp
        for index, page in memory.rp.items():
            vm._load_page(index, page, index in wp)
        for index, writable in memory.lazy.items():
            vm._map_pages(index, index, writable)
        vm.heap_top = memory.heap_top
        vm.heap_limit = memory.heap_limit
        return vm
