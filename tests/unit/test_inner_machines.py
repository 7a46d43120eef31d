"""The inner-machine host calls of refine (GP 0.7.2 §B.7, ids 8-13), each answer of each
call, driven on a real outer PVM instance of the Python engine."""

from __future__ import annotations

import pytest

from jamhost.engine.constants import FULL, HUH, OK, OOB, WHO
from jamhost.engine.hostio import HostPanic
from jamhost.engine.inner_machines import (
    INVOKE_FAULT,
    INVOKE_HALT,
    INVOKE_HOST,
    INVOKE_OOG,
    INVOKE_PANIC,
    MAX_INNER_MACHINES,
    MAX_INNER_PAGES,
    InnerMachines,
)
from jamhost.pvm.assembler import Assembler
from jamhost.pvm.interpreter import PythonPvm
from jamhost.pvm.memory import Memory

OUTER_RW = 0x30000  # a writable page of the outer machine
OUTER_RO = 0x40000  # a read-only page
HALT_ADDRESS = (1 << 32) - (1 << 16)


def outer(gas: int = 1_000_000):  # type: ignore[no-untyped-def]
    memory = Memory()
    memory.map(OUTER_RW, 0x4000, True)
    memory.map(OUTER_RO, 0x1000, False)
    asm = Assembler()
    asm.op("trap")
    return PythonPvm().instantiate(asm.blob(), pc=0, gas=gas, registers=[0] * 13, memory=memory)


def call(fn, vm, *regs: int) -> int:  # type: ignore[no-untyped-def]
    for i, value in enumerate(regs):
        vm.set_register(7 + i, value)
    assert fn(vm) is None
    return vm.get_register(7)


def guest(*ops: tuple[str, dict[str, int]]) -> bytes:
    asm = Assembler()
    for name, kw in ops:
        asm.op(name, **kw)
    return asm.blob()


HALTS = guest(("jump_ind", {"a": 0, "x": 0}))


def new_machine(inner: InnerMachines, vm, blob: bytes = HALTS, pc: int = 0) -> int:  # type: ignore[no-untyped-def]
    vm.write_memory(OUTER_RW, blob)
    return call(inner.machine, vm, OUTER_RW, len(blob), pc)


def invoke(inner: InnerMachines, vm, n: int, gas: int, regs: list[int] | None = None):  # type: ignore[no-untyped-def]
    regs = regs or [HALT_ADDRESS] + [0] * 12
    at = OUTER_RW + 0x2000
    vm.write_memory(at, gas.to_bytes(8, "little") + b"".join(r.to_bytes(8, "little") for r in regs))
    code = call(inner.invoke, vm, n, at)
    back = vm.read_memory(at, 112)
    words = [int.from_bytes(back[i : i + 8], "little") for i in range(0, 112, 8)]
    return code, vm.get_register(8), words[0], words[1:]


@pytest.fixture
def inner() -> InnerMachines:
    return InnerMachines(PythonPvm())


def test_machine_ids_are_the_least_free_and_expunge_returns_the_pc(inner: InnerMachines) -> None:
    vm = outer()
    assert new_machine(inner, vm) == 0
    assert new_machine(inner, vm, pc=3) == 1
    assert call(inner.expunge, vm, 0) == 0
    assert new_machine(inner, vm) == 0
    assert call(inner.expunge, vm, 1) == 3
    assert call(inner.expunge, vm, 1) == WHO


def test_machine_answers_huh_for_a_bad_blob_and_panics_on_unreadable_code(
    inner: InnerMachines,
) -> None:
    vm = outer()
    vm.write_memory(OUTER_RW, b"\x05\x00")
    assert call(inner.machine, vm, OUTER_RW, 2, 0) == HUH
    with pytest.raises(HostPanic):
        call(inner.machine, vm, 0x90000, 8, 0)
    assert inner.machines == {}


def test_machines_are_bounded(inner: InnerMachines) -> None:
    vm = outer()
    for i in range(MAX_INNER_MACHINES):
        assert new_machine(inner, vm) == i
    assert new_machine(inner, vm) == FULL


def test_peek_and_poke(inner: InnerMachines) -> None:
    vm = outer()
    n = new_machine(inner, vm)
    assert call(inner.pages, vm, n, 32, 1, 2) == OK
    vm.write_memory(OUTER_RW + 100, b"hello")
    assert call(inner.poke, vm, n, OUTER_RW + 100, 0x20010, 5) == OK
    assert call(inner.peek, vm, n, OUTER_RW + 200, 0x2000F, 7) == OK
    assert vm.read_memory(OUTER_RW + 200, 7) == b"\0hello\0"
    assert call(inner.peek, vm, n + 1, OUTER_RW, 0x20000, 1) == WHO
    assert call(inner.poke, vm, n + 1, OUTER_RW, 0x20000, 1) == WHO
    assert call(inner.peek, vm, n, OUTER_RW, 0x21000, 1) == OOB  # page 33 inaccessible
    assert call(inner.poke, vm, n, OUTER_RW, 0x20FFF, 2) == OOB
    assert call(inner.peek, vm, n, OUTER_RW, 0x20000, 0) == OK  # the empty range
    with pytest.raises(HostPanic):  # peek into a read-only outer page
        call(inner.peek, vm, n, OUTER_RO, 0x20000, 1)
    with pytest.raises(HostPanic):  # poke from an inaccessible outer page
        call(inner.poke, vm, n, 0x90000, 0x20000, 1)


def test_pages_modes(inner: InnerMachines) -> None:
    vm = outer()
    n = new_machine(inner, vm)
    assert call(inner.pages, vm, n + 1, 32, 1, 2) == WHO
    assert call(inner.pages, vm, n, 32, 1, 5) == HUH
    assert call(inner.pages, vm, n, 15, 1, 2) == HUH
    assert call(inner.pages, vm, n, (1 << 20) - 1, 1, 2) == HUH
    assert call(inner.pages, vm, n, 32, 1, 4) == HUH  # r > 2 needs accessible pages
    assert call(inner.pages, vm, n, 32, 2, 2) == OK
    vm.write_memory(OUTER_RW, b"data")
    assert call(inner.poke, vm, n, OUTER_RW, 0x20000, 4) == OK
    assert call(inner.pages, vm, n, 32, 1, 3) == OK  # read-only, values kept
    assert call(inner.poke, vm, n, OUTER_RW, 0x20000, 4) == OOB
    assert call(inner.peek, vm, n, OUTER_RW + 8, 0x20000, 4) == OK
    assert vm.read_memory(OUTER_RW + 8, 4) == b"data"
    assert call(inner.pages, vm, n, 32, 1, 4) == OK  # writable again, values kept
    assert call(inner.peek, vm, n, OUTER_RW + 8, 0x20000, 4) == OK
    assert vm.read_memory(OUTER_RW + 8, 4) == b"data"
    assert call(inner.pages, vm, n, 32, 1, 1) == OK  # zeroed, read-only
    assert call(inner.peek, vm, n, OUTER_RW + 8, 0x20000, 4) == OK
    assert vm.read_memory(OUTER_RW + 8, 4) == bytes(4)
    assert call(inner.poke, vm, n, OUTER_RW, 0x20000, 4) == OOB
    assert call(inner.pages, vm, n, 32, 1, 0) == OK  # inaccessible
    assert call(inner.peek, vm, n, OUTER_RW, 0x20000, 1) == OOB
    assert call(inner.peek, vm, n, OUTER_RW, 0x21000, 1) == OK  # page 33 kept its access
    assert inner.pages_in_use() == 1


def test_pages_are_bounded_across_machines(inner: InnerMachines) -> None:
    vm = outer()
    a, b = new_machine(inner, vm), new_machine(inner, vm)
    assert call(inner.pages, vm, a, 16, MAX_INNER_PAGES - 1, 2) == OK
    assert call(inner.pages, vm, b, 16, 2, 2) == FULL
    assert call(inner.pages, vm, b, 16, 1, 2) == OK
    assert call(inner.pages, vm, a, 16, 1, 2) == OK  # already accessible: no new page
    assert call(inner.expunge, vm, b) == 0
    assert call(inner.pages, vm, a, 16 + MAX_INNER_PAGES - 1, 1, 2) == OK


def test_invoke_halt_writes_back_gas_and_registers_and_charges_the_caller(
    inner: InnerMachines,
) -> None:
    vm = outer(gas=1_000)
    blob = guest(("load_imm", {"a": 7, "x": 42}), ("add_imm_64", {"a": 8, "b": 8, "x": 1}),
                 ("jump_ind", {"a": 0, "x": 0}))  # fmt: skip
    n = new_machine(inner, vm, blob)
    before = vm.gas
    regs = [HALT_ADDRESS] + [0] * 7 + [9] + [0] * 4
    code, omega8, gas_left, regs = invoke(inner, vm, n, 500, regs)
    assert (code, omega8) == (INVOKE_HALT, OUTER_RW + 0x2000)  # ω8 unchanged: the address o
    assert gas_left == 497  # three instructions
    assert regs[7] == 42 and regs[8] == 10
    assert vm.gas == before - 3
    assert call(inner.expunge, vm, n) == 0  # GP Ψ: ı' = 0 after a halt


def test_invoke_host_exit_continues_after_the_ecalli(inner: InnerMachines) -> None:
    vm = outer()
    blob = guest(("ecalli", {"x": 9}), ("add_imm_64", {"a": 7, "b": 7, "x": 1}),
                 ("jump_ind", {"a": 0, "x": 0}))  # fmt: skip
    n = new_machine(inner, vm, blob)
    code, omega8, gas_left, regs = invoke(inner, vm, n, 100)
    assert (code, omega8, gas_left) == (INVOKE_HOST, 9, 99)
    assert call(inner.expunge, vm, n) == 2  # the instruction after `ecalli 9` (2 octets)
    n = new_machine(inner, vm, blob)
    invoke(inner, vm, n, 100)
    regs[7] = 41  # the host's answer
    code, _, _, regs = invoke(inner, vm, n, 100, regs)
    assert code == INVOKE_HALT and regs[7] == 42


def test_invoke_fault_then_mapped_page_retries(inner: InnerMachines) -> None:
    vm = outer()
    blob = guest(("load_imm", {"a": 2, "x": 0x25000}), ("load_ind_u64", {"a": 7, "b": 2, "x": 4}),
                 ("jump_ind", {"a": 0, "x": 0}))  # fmt: skip
    n = new_machine(inner, vm, blob)
    code, omega8, _, regs = invoke(inner, vm, n, 100)
    assert (code, omega8) == (INVOKE_FAULT, 0x25000)
    assert call(inner.pages, vm, n, 0x25, 1, 2) == OK
    vm.write_memory(OUTER_RW, (7).to_bytes(8, "little"))
    assert call(inner.poke, vm, n, OUTER_RW, 0x25004, 8) == OK
    code, _, _, regs = invoke(inner, vm, n, 100, regs)
    assert code == INVOKE_HALT and regs[7] == 7


def test_invoke_out_of_gas_panic_and_who(inner: InnerMachines) -> None:
    vm = outer()
    loop = guest(("jump", {"target": 0}))
    n = new_machine(inner, vm, loop)
    code, _, gas_left, _ = invoke(inner, vm, n, 50)
    assert (code, gas_left) == (INVOKE_OOG, 0)
    trap = new_machine(inner, vm, guest(("fallthrough", {}), ("trap", {})))
    code, _, gas_left, _ = invoke(inner, vm, trap, 50)
    assert (code, gas_left) == (INVOKE_PANIC, 48)
    assert call(inner.expunge, vm, trap) == 0
    assert invoke(inner, vm, 7, 50)[0] == WHO
    with pytest.raises(HostPanic):  # the 112 octets of gas and registers must be writable
        call(inner.invoke, vm, n, OUTER_RO)


def test_invoke_runs_on_no_more_gas_than_the_caller_has(inner: InnerMachines) -> None:
    vm = outer(gas=30)
    n = new_machine(inner, vm, guest(("jump", {"target": 0})))
    code, _, gas_left, _ = invoke(inner, vm, n, 10**12)
    assert code == INVOKE_OOG
    assert vm.gas == 0
    assert gas_left == 10**12 - 30


# sbrk d=9 a=8 (grow by ω8), then sbrk d=10 a=11 (ω11 = 0: read the break), then halt
SBRK = guest(("sbrk", {"d": 9, "a": 8}), ("sbrk", {"d": 10, "a": 11}),
             ("jump_ind", {"a": 0, "x": 0}))
LOW_PAGES = 16  # sbrk from h = 0 maps nothing below 2^16


def _grow(inner: InnerMachines, vm, n: int, pages: int) -> int:  # type: ignore[no-untyped-def]
    """Invoke the SBRK guest growing by (LOW_PAGES + pages) pages; its break afterwards."""
    regs = [HALT_ADDRESS] + [0] * 7 + [(LOW_PAGES + pages) * 4096] + [0] * 4
    code, _, _, regs = invoke(inner, vm, n, 1000, regs)
    assert code == INVOKE_HALT
    return regs[10]


@pytest.mark.parametrize("engine", ["python", "native"])
def test_pages_grown_with_sbrk_count_in_the_bound(engine: str) -> None:
    from jamhost.pvm.engines import get_engine, native_available

    if engine == "native" and not native_available():
        pytest.skip("native core not built")
    inner = InnerMachines(get_engine(engine))
    vm = outer()
    a, b = new_machine(inner, vm, SBRK), new_machine(inner, vm, SBRK)
    # past the bound: sbrk answers 0 and maps nothing (the break stays at 0)
    assert _grow(inner, vm, a, MAX_INNER_PAGES + 1) == 0
    assert inner.pages_in_use() == 0
    # within it: the pages it mapped are the machine's and count for everyone
    assert _grow(inner, vm, a, 10) == (LOW_PAGES + 10) * 4096
    assert inner.pages_in_use() == 10
    assert call(inner.peek, vm, a, OUTER_RW, LOW_PAGES * 4096, 16) == OK  # readable
    assert call(inner.pages, vm, b, 16, MAX_INNER_PAGES - 10, 2) == OK
    assert call(inner.pages, vm, b, 16 + MAX_INNER_PAGES, 1, 2) == FULL
    assert _grow(inner, vm, b, 1) == 0  # b's sbrk has no page left either
    assert call(inner.expunge, vm, b) == 0
    # a's pages stay writable, and turning them inaccessible keeps the break
    assert call(inner.poke, vm, a, OUTER_RW, (LOW_PAGES + 9) * 4096, 8) == OK
    assert call(inner.pages, vm, a, LOW_PAGES + 5, 5, 0) == OK
    assert inner.pages_in_use() == 5
    assert _grow(inner, vm, a, 0) == (2 * LOW_PAGES + 10) * 4096  # grew on from the break
    assert inner.pages_in_use() == 5 + LOW_PAGES
