"""The pure-Python PVM: Ψ of GP 0.7.2 eq. A.1 over compiled blocks, with a single-step path.

Fast path: look up (or compile) the block at pc; if the gas covers the whole block, charge it
and call the block function; on an early exit refund the instructions that did not run.
Step path: charge and run one instruction at a time. The fast path drops to the step path
when the remaining gas does not cover the next block, so out-of-gas happens at exactly the
instruction GP says. `mode="step"` uses the step path only (reference behaviour, tests).
"""

from __future__ import annotations

from collections.abc import Sequence

from jamhost.pvm.compiler import Block, block_table, compile_block
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
from jamhost.pvm.program import Program, ProgramError, load_program

ENGINE_NAME = "jamhost-pvm-py"
ENGINE_VERSION = "0.1.0"


class Interpreter:
    """A machine state (ı, ϱ, ω, μ) for one program; implements interface.PvmInstance."""

    __slots__ = ("program", "registers", "memory", "gas", "pc", "mode", "_resume_pc", "_bad")

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
        self._resume_pc: int | None = None

    @classmethod
    def from_blob(cls, blob: bytes, **kwargs: object) -> Interpreter:
        """Load a generic program blob; an undecodable one panics on run (GP eq. A.1)."""
        try:
            program: Program | None = load_program(bytes(blob))
        except ProgramError:
            program = None
        return cls(program, **kwargs)  # type: ignore[arg-type]

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
        if self.mode == "step":
            return self._run_step()
        return self._run_fast()

    def step(self) -> Exit | None:
        """Execute exactly one instruction; None when execution continues."""
        self._resume_pc = None
        if self._bad:
            return Exit(Status.PANIC, self.pc)
        return self._run_step(limit=1)

    def _finish(self, kind: int, pc: int) -> Exit:
        self.pc = pc
        if kind == EXIT_HOST:
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
        program = self.program
        assert program is not None
        blocks = block_table(program, single=False)
        get = blocks.get
        r = self.registers
        mem = self.memory
        rp, wp = mem.rp, mem.wp
        gas = self.gas
        pc = self.pc
        gb = [0]  # gas box of self-looping blocks, which charge their own iterations
        blk: Block | None = None
        cost = 0
        try:
            while True:
                entry = get(pc)
                if entry is None:
                    blk = compile_block(program, pc)
                    entry = blocks[pc] = (blk.fn, blk.cost, blk.loop, blk)
                fn, cost, loop, blk = entry
                if gas < cost:
                    self.gas, self.pc = gas, pc
                    return self._run_step()
                gas -= cost
                if loop:
                    gb[0] = gas
                    npc = fn(r, rp, wp, mem, gb)
                    gas = gb[0]
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
            for n in blk.written:  # registers the block held in locals
                value = frame_locals.get(f"r{n}")
                if value is not None:
                    r[n] = value
            if blk.loop:
                gas = frame_locals["g"]
            self.gas = gas + cost - (index + 1) * INSTRUCTION_COST
            return self._memory_exit(err, blk.pcs[index])

    def _run_step(self, limit: int | None = None) -> Exit | None:  # type: ignore[return]
        program = self.program
        assert program is not None
        steps = block_table(program, single=True)
        get = steps.get
        r = self.registers
        mem = self.memory
        rp, wp = mem.rp, mem.wp
        gas = self.gas
        pc = self.pc
        count = 0
        while limit is None or count < limit:
            count += 1
            if gas < INSTRUCTION_COST:
                self.gas, self.pc = 0 if gas < 0 else gas, pc
                return Exit(Status.OUT_OF_GAS, pc)
            s = get(pc)
            if s is None:
                s = compile_block(program, pc, single=True)
                steps[pc] = s
            gas -= INSTRUCTION_COST
            try:
                npc = s.fn(r, rp, wp, mem)
            except MemoryAccessError as err:
                self.gas = gas
                return self._memory_exit(err, pc)
            if npc < 0:
                self.gas = gas
                kind, xpc = decode_exit(npc)
                return self._finish(kind, xpc)
            pc = npc
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
