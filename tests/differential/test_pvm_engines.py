"""Differential test: jamhost's two engines (native core, pure-Python reference) on random
programs, compared field by field after every exit.

Programs use every GP 0.7.2 opcode including `sbrk` and `ecalli`, over a memory with a
writable, a read-only and an unmapped-but-nearby region and a heap break, so loads and
stores page-fault and panic. A driver serves each exit the same way on both engines: a host
call changes registers, memory (possibly faulting) and gas, then resumes or re-runs the
ecalli; a page fault is resolved by mapping the page and retrying; and the same program is
re-run with every gas budget up to its first exit, so out-of-gas happens at every point.
Compared: status, pc, gas, host id, fault address, registers, every page (access and
content), the heap break and is_readable/is_writable probes.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jamhost.pvm.assembler import Assembler
from jamhost.pvm.interface import Exit, PvmEngine, PvmInstance, Status
from jamhost.pvm.interpreter import PythonPvm
from jamhost.pvm.memory import Memory, MemoryAccessError
from jamhost.pvm.native import NativePvm
from jamhost.pvm.opcodes import ARG_KIND, NAMES, OPCODES, ArgKind

RW_BASE, RW_LEN = 0x20000, 0x2000
RO_BASE, RO_LEN = 0x30000, 0x1000
LAZY_BASE, LAZY_LEN = 0x40000, 0x3000
HEAP_TOP = 0x50000
U64 = (1 << 64) - 1
ALL_NAMES = sorted(NAMES.values())
INTERESTING = [
    0, 1, 2, 7, 8, 16, 63, 64, 0xFF, 0xFFFF, 0x10000, 0x1000, 0x2000,
    RW_BASE, RW_BASE + 0xFFC, RW_BASE + RW_LEN - 4, RW_BASE - 1, RO_BASE, RO_BASE + RO_LEN - 2,
    LAZY_BASE + 0xFFE, LAZY_BASE + LAZY_LEN, HEAP_TOP - 2, HEAP_TOP + 0x1000,
    0x7FFFFFFF, -0x80000000, -1, -2, -0x10000, -0x20000,
]  # fmt: skip
imm32 = st.one_of(
    st.sampled_from(INTERESTING), st.integers(-16, 16), st.integers(-(1 << 31), (1 << 31) - 1)
)
reg_value = st.one_of(
    st.sampled_from([v & U64 for v in INTERESTING]),
    st.integers(0, U64),
    st.integers(0, 64),
    st.sampled_from([1 << 63, (1 << 63) - 1, U64, 0xFFFFFFFF, 0x80000000]),
)
register = st.integers(0, 15)


@st.composite
def program(draw: st.DrawFn) -> dict[str, Any]:
    n = draw(st.integers(1, 24))
    asm = Assembler()
    labels = [f"i{k}" for k in range(n)]
    starts = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    valid = [labels[k] for k in range(n) if starts[k]] or labels
    for k in range(n):
        if starts[k]:
            asm.op("fallthrough")
        asm.label(labels[k])
        name = draw(st.sampled_from(ALL_NAMES))
        kind = ARG_KIND[OPCODES[name]]
        x = draw(imm32)
        if kind is ArgKind.REG_EXT_IMM:
            x = draw(reg_value)
        if name == "ecalli":
            x = draw(st.integers(0, 5))
        target: str | int | None = None
        if kind in (ArgKind.OFFSET, ArgKind.REG_IMM_OFFSET, ArgKind.TWO_REG_OFFSET):
            t = draw(st.integers(0, 40))
            target = t - 8 if t >= 36 else (valid[t % len(valid)] if t % 5 else labels[t % n])
        asm.op(
            name, a=draw(register), b=draw(register), d=draw(register), x=x,
            y=draw(imm32), target=target,
        )  # fmt: skip
    if draw(st.integers(0, 9)) < 7:
        asm.op("jump", target=0)
    for k in draw(st.lists(st.integers(0, n - 1), max_size=4)):
        asm.jump_entry(valid[k % len(valid)] if k % 3 else labels[k])
    pcs = [asm.labels[label] for label in labels]
    return {
        "blob": asm.blob(),
        "regs": draw(st.lists(reg_value, min_size=13, max_size=13)),
        "fill": draw(st.binary(max_size=48)),
        "pc": draw(st.one_of(st.just(0), st.sampled_from(pcs), st.integers(0, len(asm.code) + 2))),
        "gas": draw(st.one_of(st.integers(0, 60), st.integers(0, 3_000))),
        "heap": draw(st.sampled_from([None, HEAP_TOP, RW_BASE + RW_LEN - 3])),
        "actions": draw(st.lists(st.integers(0, 7), min_size=1, max_size=8)),
    }


def memory_of(c: dict[str, Any]) -> Memory:
    mem = Memory()
    mem.map(RW_BASE, RW_LEN, True)
    mem.map(RO_BASE, RO_LEN, False)
    mem.map(LAZY_BASE, LAZY_LEN, True)
    mem.load(RW_BASE + 0xFF0, c["fill"])
    mem.load(RO_BASE, bytes(range(1, 33)))
    mem.heap_top = c["heap"]
    return mem


def _snapshot(vm: Any, ex: Exit) -> dict[str, Any]:
    mem = vm.memory
    probes = [RW_BASE - 4, RW_BASE + RW_LEN - 2, RO_BASE, LAZY_BASE + 0x1FFE, HEAP_TOP, 0xFFFE]
    return {
        "exit": ex,
        "gas": vm.gas,
        "pc": vm.pc,
        "regs": vm.get_registers(),
        "pages": [(a, w, bytes(p)) for a, w, p in mem.pages()],
        "heap": mem.heap_top,
        "readable": [vm.is_readable(a, 8) for a in probes],
        "writable": [vm.is_writable(a, 8) for a in probes],
    }


def _serve_host(vm: PvmInstance, ex: Exit, action: int) -> str:
    """What a host function might do; returns how to continue ('resume' or 'rerun')."""
    vm.set_register(7, vm.get_register(7) + (ex.host_id or 0) + action)
    try:
        data = vm.read_memory(vm.get_register(8) & 0xFFFFFFFF, action)
        vm.write_memory((vm.get_register(9) + action) & 0xFFFFFFFF, data + b"\x5a")
    except MemoryAccessError as err:
        vm.set_register(10, err.address)
    vm.gas = vm.gas - action * 3
    return "rerun" if action == 7 else "resume"


def drive(engine: PvmEngine, c: dict[str, Any], gas: int) -> list[dict[str, Any]]:
    vm = engine.instantiate(
        c["blob"], pc=c["pc"], gas=gas, registers=c["regs"], memory=memory_of(c)
    )
    states = []
    ex = vm.run()
    for action in c["actions"]:
        states.append(_snapshot(vm, ex))
        if ex.status is Status.HOST:
            how = _serve_host(vm, ex, action)
            ex = vm.run() if how == "rerun" or vm.gas < 0 else vm.resume()
        elif ex.status is Status.PAGE_FAULT:
            assert ex.address is not None
            vm.map_memory(ex.address, 4096, action % 2 == 0)
            ex = vm.run()
        elif ex.status is Status.OUT_OF_GAS:
            vm.gas = action * 5
            ex = vm.run()
        else:
            break
    states.append(_snapshot(vm, ex))
    return states


NATIVE, PYTHON = NativePvm(), PythonPvm()


@settings(
    max_examples=int(os.environ.get("JAMHOST_PVM_EXAMPLES", "250")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(c=program())
def test_engines_agree_after_every_exit(c: dict[str, Any]) -> None:
    reference = drive(PYTHON, c, c["gas"])
    assert drive(NATIVE, c, c["gas"]) == reference, c["blob"].hex()
    # Out of gas at every point up to the first exit.
    first = reference[0]
    used = c["gas"] - first["gas"] if first["exit"].status is not Status.OUT_OF_GAS else c["gas"]
    for gas in range(0, min(used, 48) + 1):
        one = dict(c, actions=[0])
        assert drive(NATIVE, one, gas) == drive(PYTHON, one, gas), (gas, c["blob"].hex())


def test_standard_program_with_host_calls_agrees() -> None:
    """Ψ_M over a standard program (sbrk with the A.7 heap, arguments, output) on both."""
    from jamhost.pvm.host import invoke
    from jamhost.pvm.standard import StandardProgram, encode_standard_program

    asm = Assembler()
    asm.op("load_imm", a=2, x=8192)
    asm.op("sbrk", d=3, a=2)  # r3 = old break
    asm.op("store_ind_u64", a=7, b=3, x=0)  # first heap word = argument address
    asm.op("ecalli", x=1)
    asm.op("load_ind_u64", a=4, b=3, x=0)
    asm.op("move_reg", d=7, a=3)
    asm.op("load_imm", a=8, x=8)
    asm.op("jump_ind", a=0, x=0)
    blob = encode_standard_program(StandardProgram(b"ro", b"rw", 1, 4096, asm.blob()))

    def handler(host_id: int, vm: PvmInstance) -> None:
        vm.set_register(5, host_id + vm.get_register(3))
        vm.gas -= 10

    results = [invoke(blob, 0, 1000, b"args", handler, engine=e) for e in (PYTHON, NATIVE)]
    assert results[0].status is Status.HALT and results[0].host_calls == 1
    assert results[0].output == (0xFEFF0000).to_bytes(8, "little")
    assert results[1] == results[0]


@pytest.mark.parametrize("gas", [0, 1, 5])
def test_tiny_gas_on_first_block(gas: int) -> None:
    asm = Assembler()
    for _ in range(4):
        asm.op("add_imm_64", a=1, b=1, x=1)
    asm.op("trap")
    c = {"blob": asm.blob(), "regs": [0] * 13, "fill": b"", "pc": 0, "gas": gas, "heap": None,
         "actions": [0]}  # fmt: skip
    native = drive(NATIVE, c, gas)
    assert native == drive(PYTHON, c, gas)
    status = native[0]["exit"].status
    assert status is (Status.PANIC if gas == 5 else Status.OUT_OF_GAS)
    assert native[0]["regs"][1] == min(gas, 4)
