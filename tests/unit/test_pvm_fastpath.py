"""The compiled-block path matches the single-step path exactly at every kind of early exit.

Blocks keep registers in locals and self-looping blocks charge their own iterations, so the
cases that stress that bookkeeping are pinned here: faults in a later loop iteration, gas
running out mid-iteration, long straight-line runs split into several blocks, conditional
moves whose target is stored back, and host calls in the middle of a block.
"""

from __future__ import annotations

import pytest

from jamhost.pvm.assembler import Assembler
from jamhost.pvm.compiler import MAX_BLOCK_INSTRUCTIONS
from jamhost.pvm.interface import Status
from jamhost.pvm.interpreter import Interpreter
from jamhost.pvm.memory import Memory

RW = 0x20000


def _run(blob: bytes, mode: str, gas: int, regs: list[int] | None = None):  # noqa: ANN202
    if mode == "compiled":  # every block compiled at its first entry
        from jamhost.pvm import interpreter, program

        saved = interpreter.HOT_BLOCK_ENTRIES
        interpreter.HOT_BLOCK_ENTRIES = 0
        program.PROGRAMS.clear()
        try:
            return _run(blob, "fast", gas, regs)
        finally:
            interpreter.HOT_BLOCK_ENTRIES = saved
            program.PROGRAMS.clear()
    mem = Memory()
    mem.map(RW, 4096, writable=True)
    vm = Interpreter.from_blob(
        blob, pc=0, gas=gas, registers=regs or [0] * 13, memory=mem, mode=mode
    )
    ex = vm.run()
    return ex, vm.gas, vm.get_registers(), mem.nonzero_chunks()


def _both(blob: bytes, gas: int, regs: list[int] | None = None):  # noqa: ANN202
    fast = _run(blob, "fast", gas, regs)
    assert fast == _run(blob, "step", gas, regs)
    assert fast == _run(blob, "compiled", gas, regs)
    return fast


def _store_loop() -> bytes:
    """Stores 8 octets per iteration walking up from RW until it leaves the page."""
    asm = Assembler()
    asm.op("load_imm", a=1, x=RW)
    asm.op("fallthrough")
    asm.label("loop")
    asm.op("add_imm_64", a=2, b=2, x=1)
    asm.op("store_ind_u64", a=2, b=1, x=0)
    asm.op("add_imm_64", a=1, b=1, x=8)
    asm.op("jump", target="loop")
    return asm.blob()


def test_fault_in_a_later_loop_iteration() -> None:
    ex, gas, regs, mem = _both(_store_loop(), 100_000)
    assert ex.status is Status.PAGE_FAULT and ex.address == RW + 4096
    assert regs[1] == RW + 4096 and regs[2] == 513  # the 513th store faulted
    # 2 set-up instructions, 512 full iterations of 4, then add + faulting store.
    assert gas == 100_000 - 2 - 512 * 4 - 2
    assert dict(mem)[RW + 4089] == (512).to_bytes(8, "little")[1:2]  # last good store: 512


@pytest.mark.parametrize("gas", [0, 1, 2, 3, 5, 6, 7, 41, 42, 43, 44, 45])
def test_out_of_gas_inside_a_loop(gas: int) -> None:
    ex, left, regs, _ = _both(_store_loop(), gas)
    assert ex.status is Status.OUT_OF_GAS and left == 0
    # Set-up takes 2 gas; each started iteration's add runs before its store.
    assert regs[2] == (max(0, gas - 2) + 3) // 4


def test_long_straight_line_is_split_and_equal() -> None:
    asm = Assembler()
    n = MAX_BLOCK_INSTRUCTIONS * 2 + 17
    for i in range(n):
        asm.op("add_imm_64", a=i % 13, b=(i + 1) % 13, x=i)
    asm.op("store_imm_u8", x=0x100, y=1)  # below 2^16: panics
    ex, gas, regs, _ = _both(asm.blob(), 10_000)
    assert ex.status is Status.PANIC and gas == 10_000 - n - 1
    for budget in (n - 1, n, n + 1, MAX_BLOCK_INSTRUCTIONS, MAX_BLOCK_INSTRUCTIONS + 1):
        _both(asm.blob(), budget)


def test_cmov_then_fault_stores_back_registers() -> None:
    asm = Assembler()
    asm.op("cmov_iz_imm", a=3, b=4, x=77)  # r4 == 0: r3 = 77
    asm.op("cmov_nz_imm", a=5, b=4, x=88)  # r4 == 0: r5 unchanged
    asm.op("load_ind_u8", a=6, b=7, x=0)  # r7 unmapped: fault
    ex, gas, regs, _ = _both(asm.blob(), 100, regs=[0, 0, 0, 1, 0, 9] + [0, 0x50000] + [0] * 5)
    assert ex.status is Status.PAGE_FAULT and ex.address == 0x50000
    assert regs[3] == 77 and regs[5] == 9 and gas == 97


def test_host_call_mid_block_refunds_the_rest() -> None:
    asm = Assembler()
    asm.op("load_imm", a=1, x=1)
    asm.op("ecalli", x=9)
    asm.op("load_imm", a=2, x=2)
    asm.op("trap")
    ex, gas, regs, _ = _both(asm.blob(), 10)
    assert ex.status is Status.HOST and ex.host_id == 9 and gas == 8 and regs[1:3] == [1, 0]
