"""The pure-Python PVM: Ψ of GP 0.7.2 eq. A.1 over compiled blocks, with a single-step path.

Fast path: look up the compiled block at pc; if the gas covers the whole block, charge it and
call the block function; on an early exit refund the instructions that did not run. A block
not compiled yet is interpreted (the step path) until it has been entered HOT_BLOCK_ENTRIES
times, then compiled. Step path: decode, charge and run one instruction at a time through
per-opcode handlers shared by every program (no compilation per pc). The fast path drops to
the step path when the remaining gas does not cover the next block, so out-of-gas happens at
exactly the instruction GP says. `mode="step"` uses the step path only (reference behaviour, tests).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from jamhost.pvm import safepoint
from jamhost.pvm.compiler import (
    MAX_BLOCK_INSTRUCTIONS,
    STEP_HANDLERS,
    Block,
    block_table,
    branch_checker,
    compile_block,
    step_handler,
)
from jamhost.pvm.gas import INSTRUCTION_COST
from jamhost.pvm.instructions import (
    EXIT_HALT,
    EXIT_HOST,
    EXIT_PANIC,
    M64,
    decode_exit,
)
from jamhost.pvm.interface import REGISTER_COUNT, Exit, Status
from jamhost.pvm.memory import Memory, MemoryAccessError, MemoryPanic, PageFault
from jamhost.pvm.opcodes import TERMINATORS
from jamhost.pvm.program import Program, ProgramError, load_program, recharge
from jamhost.pvm.safepoint import YIELD_GAS

NO_FLOOR = -(1 << 127)  # below any gas a run can reach

HOT_BLOCK_ENTRIES = 8
"""A block is compiled on its 9th entry; before, it is interpreted. Compiling costs ~20 us
per instruction and interpreting ~2 us, so code that runs once (a tenant's blob of millions
of one-shot instructions) is never compiled, and compiling hot code costs a small share of
what its first runs already cost."""

ENGINE_NAME = "jamhost-pvm-py"
ENGINE_VERSION = "0.1.0"


class Interpreter:
    """A machine state (ı, ϱ, ω, μ) for one program; implements interface.PvmInstance."""

    __slots__ = ("program", "registers", "memory", "gas", "pc", "mode", "_resume_pc", "_bad",
                 "safe_point", "_yield_left")

    def __init__(
        self,
        program: Program | None,
        *,
        pc: int = 0,
        gas: int = 0,
        registers: Sequence[int] | None = None,
        memory: Memory | None = None,
        mode: str = "fast",
    ) -> None:
        if mode not in ("fast", "step"):
            raise ValueError("mode is 'fast' or 'step'")
        self.program = program
        self._bad = program is None
        regs = list(registers) if registers is not None else [0] * REGISTER_COUNT
        if len(regs) != REGISTER_COUNT:
            raise ValueError("13 registers expected")
        self.registers = [v & M64 for v in regs]
        self.memory = memory if memory is not None else Memory()
        self.gas = gas
        self.pc = pc
        self.mode = mode
        # called every YIELD_GAS gas of a fast run, between blocks (pvm/safepoint.py)
        self.safe_point: Callable[[], None] | None = safepoint.current()
        # gas the fast runs may still spend before the next safe point, kept across exits
        # (a host call every few gas must not reset it); YIELD_GAS again after each one
        self._yield_left = YIELD_GAS
        self._resume_pc: int | None = None

    @classmethod
    def from_blob(cls, blob: bytes, **kwargs: Any) -> Interpreter:
        """Load a generic program blob; an undecodable one panics on run (GP eq. A.1)."""
        try:
            program: Program | None = load_program(bytes(blob))
        except ProgramError:
            program = None
        return cls(program, **kwargs)

    # -- registers and memory (interface.PvmInstance) ---------------------------------------

    def get_registers(self) -> list[int]:
        return list(self.registers)

    def set_registers(self, values: Sequence[int]) -> None:
        if len(values) != REGISTER_COUNT:
            raise ValueError("13 registers expected")
        self.registers[:] = [v & M64 for v in values]

    def get_register(self, index: int) -> int:
        return self.registers[index]

    def set_register(self, index: int, value: int) -> None:
        self.registers[index] = value & M64

    @property
    def heap_top(self) -> int | None:
        """The sbrk break (interface.PvmInstance)."""
        return self.memory.heap_top

    @heap_top.setter
    def heap_top(self, value: int | None) -> None:
        self.memory.heap_top = value

    @property
    def heap_limit(self) -> int | None:
        """The highest break sbrk may reach (None: the address space)."""
        return self.memory.heap_limit

    @heap_limit.setter
    def heap_limit(self, value: int | None) -> None:
        self.memory.heap_limit = value

    def read_memory(self, address: int, length: int) -> bytes:
        return self.memory.read(address, length)

    def write_memory(self, address: int, data: bytes) -> None:
        self.memory.write(address, data)

    def is_readable(self, address: int, length: int) -> bool:
        return self.memory.is_readable(address, length)

    def is_writable(self, address: int, length: int) -> bool:
        return self.memory.is_writable(address, length)

    def map_memory(self, address: int, length: int, writable: bool) -> None:
        self.memory.map(address, length, writable)

    # -- execution --------------------------------------------------------------------------

    def resume(self) -> Exit:
        if self._resume_pc is None:
            raise RuntimeError("resume() is only valid after a host-call exit")
        self.pc = self._resume_pc
        self._resume_pc = None
        return self.run()

    def run(self) -> Exit:
        self._resume_pc = None
        if self._bad:
            return Exit(Status.PANIC, self.pc)
        try:
            if self.mode == "step":
                # type-ignore reason: without a limit the step loop returns only at an exit
                return self._run_step()  # type: ignore[return-value]
            return self._run_fast()
        finally:
            # type-ignore reason: not _bad here, so a program is loaded
            recharge(self.program)  # type: ignore[arg-type]

    def step(self) -> Exit | None:
        """Execute exactly one instruction; None when execution continues."""
        self._resume_pc = None
        if self._bad:
            return Exit(Status.PANIC, self.pc)
        return self._run_step(limit=1)

    def _finish(self, kind: int, pc: int) -> Exit:
        self.pc = pc
        if kind == EXIT_HOST:
            # type-ignore reason: a host exit comes from a loaded program
            ins = self.program.instruction(pc)  # type: ignore[union-attr]
            self._resume_pc = ins.next_pc
            return Exit(Status.HOST, pc, host_id=ins.x)
        return Exit(Status.HALT if kind == EXIT_HALT else Status.PANIC, pc)

    def _memory_exit(self, err: MemoryAccessError, pc: int) -> Exit:
        self.pc = pc
        if isinstance(err, PageFault):
            return Exit(Status.PAGE_FAULT, pc, address=err.address)
        assert isinstance(err, MemoryPanic)
        return Exit(Status.PANIC, pc)

    def _run_fast(self) -> Exit:
        """The fast path and its safe points: the blocks run until gas falls below the
        floor the machine's budget sets, the hook is called there (outside the blocks'
        fault handler: whatever it raises ends the run as itself), and the run goes on."""
        hook = self.safe_point
        if hook is None:
            # No safe points: a floor gas never reaches (gas may go below 0 at a block
            # boundary on the way to an out-of-gas exit), so only an exit returns.
            # type-ignore reason: with that floor _run_blocks never returns None
            return self._run_blocks(NO_FLOOR)  # type: ignore[return-value]
        while True:
            floor = self.gas - self._yield_left
            ex = self._run_blocks(floor)
            if ex is not None:
                left = self.gas - floor  # gas only falls: at most the budget at entry
                self._yield_left = left if left > 0 else 0
                return ex
            self._yield_left = YIELD_GAS
            hook()

    def _run_blocks(self, floor: int) -> Exit | None:  # noqa: C901 - the hot loop, one frame
        """Run blocks from pc to an exit, or return None at the first block boundary where
        gas is below `floor` (a safe point; gas and pc saved)."""
        program = self.program
        assert program is not None
        blocks = block_table(program)
        get = blocks.get
        heat = program.heat
        n = len(heat)
        r = self.registers
        mem = self.memory
        rp, wp = mem.rp, mem.wp
        gas = self.gas
        pc = self.pc
        gb = [0]  # gas box of self-looping blocks, which charge their own iterations
        blk: Block | None = None
        cost = 0
        # Safe points: when gas falls below `floor`, between two blocks. A self-looping block
        # is handed only the gas above `floor` (it returns to its entry when that runs out,
        # as before an out-of-gas), so the loop itself pays nothing for them.
        held = 0
        try:
            while True:
                if gas < floor:
                    self.gas, self.pc = gas, pc
                    return None
                entry = get(pc)
                if entry is None:
                    if 0 <= pc < n and heat[pc] >= HOT_BLOCK_ENTRIES:
                        blk = compile_block(program, pc)
                        entry = blocks[pc] = (blk.fn, blk.cost, blk.loop, blk)
                    else:
                        # Cold: interpret this one block; compile it once it is hot.
                        if 0 <= pc < n:
                            heat[pc] += 1
                        self.gas, self.pc = gas, pc
                        ex = self._run_step(block=True, floor=floor)
                        if ex is not None:
                            return ex
                        gas, pc = self.gas, self.pc
                        continue
                fn, cost, loop, blk = entry
                if gas < cost:
                    self.gas, self.pc = gas, pc
                    return self._run_step()  # without a limit: only at an exit
                gas -= cost
                if loop:
                    held = floor if floor > 0 else 0
                    gb[0] = gas - held
                    npc = fn(r, rp, wp, mem, gb)
                    gas = gb[0] + held
                else:
                    npc = fn(r, rp, wp, mem)
                if npc < 0:
                    kind, xpc = decode_exit(npc)
                    gas += cost - (blk.index_of[xpc] + 1) * INSTRUCTION_COST
                    self.gas = gas
                    return self._finish(kind, xpc)
                pc = npc
        except MemoryAccessError as err:
            assert blk is not None
            index, frame_locals = blk.fault_state(err.__traceback__)
            for i in blk.written:  # registers the block held in locals
                value = frame_locals.get(f"r{i}")
                if value is not None:
                    r[i] = value
            if blk.loop:
                gas = frame_locals["g"] + held
            self.gas = gas + cost - (index + 1) * INSTRUCTION_COST
            return self._memory_exit(err, blk.pcs[index])

    def _run_step(self, limit: int | None = None, block: bool = False,
                  floor: int = 0) -> Exit | None:
        """Interpret one instruction at a time through the shared step handlers (nothing is
        compiled per pc). `block` (the fast path's cold code): at each block boundary (a
        terminator, or MAX_BLOCK_INSTRUCTIONS), count the next block's entry and go on, or
        return None when that block is compiled or hot, or when gas fell below `floor` (the
        fast path's next safe point)."""
        program = self.program
        assert program is not None
        decode = program.instruction
        memo = program.decoded.get  # the memo's hit path inline: one call less per step
        handlers = STEP_HANDLERS
        jt = program.jump_map()
        bt = branch_checker(program)
        r = self.registers
        mem = self.memory
        rp, wp = mem.rp, mem.wp
        gas = self.gas
        pc = self.pc
        count = 0
        run = 0  # instructions since the last block boundary
        blocks = block_table(program)
        heat = program.heat
        n = len(heat)
        while limit is None or count < limit:
            count += 1
            if gas < INSTRUCTION_COST:
                self.gas, self.pc = 0 if gas < 0 else gas, pc
                return Exit(Status.OUT_OF_GAS, pc)
            ins = memo(pc) or decode(pc)
            op = ins.opcode
            step = handlers.get(op) or step_handler(op)
            gas -= INSTRUCTION_COST
            try:
                npc = step(r, rp, wp, mem, jt, bt, ins.a, ins.b, ins.d, ins.x, ins.y, pc, ins.skip)
            except MemoryAccessError as err:
                self.gas = gas
                return self._memory_exit(err, pc)
            if npc < 0:
                self.gas = gas
                kind, xpc = decode_exit(npc)
                return self._finish(kind, xpc)
            pc = npc
            if block:
                run += 1
                if op in TERMINATORS or run >= MAX_BLOCK_INSTRUCTIONS:
                    # A block boundary: back to the fast path if the next block is compiled
                    # or hot, else keep interpreting (no re-entry cost per cold block).
                    run = 0
                    if (pc in blocks or not 0 <= pc < n or heat[pc] >= HOT_BLOCK_ENTRIES
                            or gas < floor):
                        break
                    heat[pc] += 1
        self.gas, self.pc = gas, pc
        return None


class PythonPvm:
    """interface.PvmEngine for the pure-Python interpreter (`mode` 'fast' or 'step')."""

    name = ENGINE_NAME
    version = ENGINE_VERSION

    def __init__(self, mode: str = "fast") -> None:
        self.mode = mode

    def instantiate(
        self,
        program: bytes,
        *,
        pc: int,
        gas: int,
        registers: Sequence[int],
        memory: Memory,
    ) -> Interpreter:
        return Interpreter.from_blob(
            program, pc=pc, gas=gas, registers=registers, memory=memory, mode=self.mode
        )


__all__ = ["EXIT_PANIC", "Interpreter", "PythonPvm"]
