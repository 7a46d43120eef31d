"""Inner PVM machines of refine: machine, peek, poke, pages, invoke, expunge (GP 0.7.2 §B.7,
ids 8-13, Ω_M Ω_P Ω_O Ω_Z Ω_K Ω_X) over the refine context's m ∈ ⟨N → G⟩.

Each inner machine runs on the same `PvmEngine` as the refine code that made it (the engine
refine was given), so a faster core serves both. Its state between calls is the GP's
(code, pc, RAM): the live `PvmInstance` holds the RAM; the pc and the access of each page
(which the engine interface does not enumerate) are kept here. Registers and gas come from
the caller's memory at each `invoke`, as the GP passes them.

Where the GP leaves a resource unbounded, jamhost bounds it so one tenant's refine cannot take
the host's CPU or memory (docs/engine.md, "Inner machines"):
- the gas an inner machine burns is charged to the refine invocation that invokes it, and an
  invoke runs at most on the gas the invocation has left;
- at most `MAX_INNER_MACHINES` machines live at once in one refine item, and at most
  `MAX_INNER_PAGES` pages are accessible across them; a `machine` or `pages` call beyond
  either bound answers FULL. Pages an inner program grows with `sbrk` count too: each
  invoke lets the break rise only by the pages left under the bound (`heap_limit`; past it
  sbrk answers 0 and maps nothing), and the pages it mapped join the machine's pages.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from jamhost.engine.constants import FULL, HUH, OK, OOB, WHO
from jamhost.engine.hostio import HostPanic, read, readable, writable
from jamhost.pvm.interface import REGISTER_COUNT, PvmEngine, PvmInstance, Status
from jamhost.pvm.memory import PAGE_SIZE, Memory
from jamhost.pvm.program import Program, ProgramError, decode_program

__all__ = [
    "INVOKE_FAULT",
    "INVOKE_HALT",
    "INVOKE_HOST",
    "INVOKE_OOG",
    "INVOKE_PANIC",
    "MAX_INNER_MACHINES",
    "MAX_INNER_PAGES",
    "InnerMachines",
]

#: Inner-invocation result codes (GP 0.7.2 §B.1, "Inner PVM invocations").
INVOKE_HALT = 0
INVOKE_PANIC = 1
INVOKE_FAULT = 2
INVOKE_HOST = 3
INVOKE_OOG = 4

#: Machines alive at once in one refine item (GP: unbounded).
MAX_INNER_MACHINES = 16
#: Accessible inner pages across one item's machines: 64 MiB of Z_P = 4096 (GP: unbounded).
MAX_INNER_PAGES = 16_384

_PAGE_LIMIT = (1 << 32) // PAGE_SIZE  # pages of the 32-bit address space
_FIRST_PAGE = 16  # pages below 2^16 are never accessible (GP §A.4; Ω_Z: p < 16 is HUH)
_INVOKE_ARGS = 8 + 8 * REGISTER_COUNT  # E_8(g) ++ E_8(ω): 112 octets


def _heap_page(top: int | None) -> int:
    """The first page sbrk would map from break `top` (GP §A.5.9: h = 0 without a layout;
    pages below 2^16 are never mapped)."""
    return max(-(-(top or 0) // PAGE_SIZE), _FIRST_PAGE)


@dataclass(slots=True)
class _Machine:
    """One element of m: code p, pc i, RAM u (its values live in `vm`, its access here)."""

    program: bytes
    decoded: Program
    pc: int
    vm: PvmInstance
    access: dict[int, bool] = field(default_factory=dict)
    """Accessible page index -> writable."""


def _new_instance(
    engine: PvmEngine, program: bytes, pages: dict[int, tuple[bool, bytes]]
) -> PvmInstance:
    memory = Memory()
    for index, (writable_, content) in pages.items():
        memory.map(index * PAGE_SIZE, PAGE_SIZE, writable_)
        if any(content):
            memory.load(index * PAGE_SIZE, content)
    return engine.instantiate(
        program, pc=0, gas=0, registers=[0] * REGISTER_COUNT, memory=memory
    )


class InnerMachines:
    """m of one refine item, and the six host calls over it (each after the common g = 10)."""

    def __init__(self, engine: PvmEngine) -> None:
        self.engine = engine
        self.machines: dict[int, _Machine] = {}

    def pages_in_use(self) -> int:
        return sum(len(m.access) for m in self.machines.values())

    # -- Ω_M, machine = 8 ---------------------------------------------------------------

    def machine(self, vm: PvmInstance) -> Status | None:
        """ω7 = p_O, ω8 = p_Z, ω9 = i: a new machine running blob μ[p_O..+p_Z] from pc i;
        ω7 = its id n (the least free), HUH when the blob does not deblob."""
        p_o, p_z, pc = (vm.get_register(r) for r in (7, 8, 9))
        program = read(vm, p_o, p_z)
        try:
            decoded = decode_program(program)
        except ProgramError:
            vm.set_register(7, HUH)
            return None
        if len(self.machines) >= MAX_INNER_MACHINES:
            vm.set_register(7, FULL)
            return None
        n = next(i for i in range(len(self.machines) + 1) if i not in self.machines)
        inner = _new_instance(self.engine, program, {})
        self.machines[n] = _Machine(program, decoded, pc, inner)
        vm.set_register(7, n)
        return None

    # -- Ω_P, peek = 9 and Ω_O, poke = 10 -------------------------------------------------

    def peek(self, vm: PvmInstance) -> Status | None:
        """ω7 = n, ω8 = o, ω9 = s, ω10 = z: μ[o..+z] = m[n].ram[s..+z]."""
        n, o, s, z = (vm.get_register(r) for r in (7, 8, 9, 10))
        if not writable(vm, o, z):
            raise HostPanic
        machine = self.machines.get(n)
        if machine is None:
            vm.set_register(7, WHO)
        elif not readable(machine.vm, s, z):
            vm.set_register(7, OOB)
        else:
            if z:
                vm.write_memory(o, machine.vm.read_memory(s, z))
            vm.set_register(7, OK)
        return None

    def poke(self, vm: PvmInstance) -> Status | None:
        """ω7 = n, ω8 = s, ω9 = o, ω10 = z: m[n].ram[o..+z] = μ[s..+z]."""
        n, s, o, z = (vm.get_register(r) for r in (7, 8, 9, 10))
        data = read(vm, s, z)
        machine = self.machines.get(n)
        if machine is None:
            vm.set_register(7, WHO)
        elif not writable(machine.vm, o, z):
            vm.set_register(7, OOB)
        else:
            if z:
                machine.vm.write_memory(o, data)
            vm.set_register(7, OK)
        return None

    # -- Ω_Z, pages = 11 ----------------------------------------------------------------

    def pages(self, vm: PvmInstance) -> Status | None:
        """ω7 = n, ω8 = p, ω9 = c, ω10 = r: pages p..+c of m[n] become inaccessible (r = 0),
        zeroed read-only (1), zeroed writable (2), or keep their values and become read-only
        (3) or writable (4), which needs them all accessible already."""
        n, p, c, r = (vm.get_register(i) for i in (7, 8, 9, 10))
        machine = self.machines.get(n)
        if machine is None:
            vm.set_register(7, WHO)
            return None
        if r > 4 or p < _FIRST_PAGE or p + c >= _PAGE_LIMIT:
            vm.set_register(7, HUH)
            return None
        span = range(p, p + c)
        if r > 2 and any(i not in machine.access for i in span):
            vm.set_register(7, HUH)
            return None
        if r in (1, 2):
            new = sum(1 for i in span if i not in machine.access)
            if self.pages_in_use() + new > MAX_INNER_PAGES:
                vm.set_register(7, FULL)
                return None
        if c:
            self._set_pages(machine, p, c, r)
        vm.set_register(7, OK)
        return None

    def _set_pages(self, machine: _Machine, p: int, c: int, r: int) -> None:
        address, length = p * PAGE_SIZE, c * PAGE_SIZE
        span = range(p, p + c)
        if r == 0:
            # The engine interface cannot unmap: rebuild the RAM without these pages.
            for i in span:
                machine.access.pop(i, None)
            kept = {
                i: (w, machine.vm.read_memory(i * PAGE_SIZE, PAGE_SIZE))
                for i, w in machine.access.items()
            }
            top = machine.vm.heap_top
            machine.vm = _new_instance(self.engine, machine.program, kept)
            machine.vm.heap_top = top  # the break stays where sbrk left it
            return
        writable_ = r in (2, 4)
        if r < 3:
            machine.vm.map_memory(address, length, True)
            machine.vm.write_memory(address, bytes(length))
        machine.vm.map_memory(address, length, writable_)
        for i in span:
            machine.access[i] = writable_

    # -- Ω_K, invoke = 12 ---------------------------------------------------------------

    def invoke(self, vm: PvmInstance) -> Status | None:
        """ω7 = n, ω8 = o: run m[n] with gas and registers E_8(g) ++ E_8(ω) = μ[o..+112] until
        it exits; write g', ω' back there. ω7 = HALT/PANIC/FAULT/HOST/OOG, ω8 = the host id
        (HOST) or the fault address (FAULT), else unchanged."""
        n, o = vm.get_register(7), vm.get_register(8)
        if not writable(vm, o, _INVOKE_ARGS):
            raise HostPanic
        args = vm.read_memory(o, _INVOKE_ARGS)
        machine = self.machines.get(n)
        if machine is None:
            vm.set_register(7, WHO)
            return None
        gas = int.from_bytes(args[:8], "little")
        registers = [int.from_bytes(args[8 + 8 * i : 16 + 8 * i], "little") for i in range(13)]
        # Charged to this invocation: the inner run may burn at most the gas left here.
        budget = min(gas, max(vm.gas, 0))
        inner = machine.vm
        inner.pc = machine.pc
        inner.gas = budget
        inner.set_registers(registers)
        heap_from = _heap_page(inner.heap_top)
        # sbrk may map at most the pages left under the bound, counted as all new (pages of
        # the range `pages` already made accessible count twice: the bound errs safe)
        room = MAX_INNER_PAGES - self.pages_in_use()
        inner.heap_limit = (heap_from + room) * PAGE_SIZE
        exit_ = inner.run()
        for i in range(heap_from, _heap_page(inner.heap_top)):
            machine.access.setdefault(i, True)  # sbrk maps new pages writable
        used = budget - max(inner.gas, 0)
        vm.gas -= used
        gas_after = gas - used
        code, omega8 = INVOKE_OOG, vm.get_register(8)
        if exit_.status is Status.HOST:
            code, omega8 = INVOKE_HOST, exit_.host_id or 0
            machine.pc = exit_.pc + 1 + machine.decoded.skip(exit_.pc)
        elif exit_.status is Status.PAGE_FAULT:
            code, omega8 = INVOKE_FAULT, exit_.address or 0
            machine.pc = exit_.pc
        elif exit_.status is Status.OUT_OF_GAS:
            machine.pc = exit_.pc
        else:  # GP Ψ: ı' = 0 after a halt or a panic
            code = INVOKE_HALT if exit_.status is Status.HALT else INVOKE_PANIC
            machine.pc = 0
        out = bytearray(gas_after.to_bytes(8, "little"))
        for value in inner.get_registers():
            out += value.to_bytes(8, "little")
        vm.write_memory(o, bytes(out))
        vm.set_register(7, code)
        vm.set_register(8, omega8)
        return None

    # -- Ω_X, expunge = 13 --------------------------------------------------------------

    def expunge(self, vm: PvmInstance) -> Status | None:
        """ω7 = n: remove m[n]; ω7 = its pc, WHO when there is none."""
        machine = self.machines.pop(vm.get_register(7), None)
        vm.set_register(7, WHO if machine is None else machine.pc)
        return None
