"""Safe points (pvm/safepoint.py): a run with a hook called every YIELD_GAS gas ends exactly as
the same run without one (status, pc, gas, registers, memory, host calls), on both engines,
whatever the hook does meanwhile, including running another machine of the same program."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Callable

import pytest

from jamhost.pvm import safepoint
from jamhost.pvm.assembler import Assembler
from jamhost.pvm.host import run_with_host
from jamhost.pvm.interface import PvmEngine, PvmInstance, Status
from jamhost.pvm.interpreter import PythonPvm
from jamhost.pvm.memory import Memory, MemoryPanic, PageFault
from jamhost.pvm.native import NativePvm

ENGINES: list[PvmEngine] = [NativePvm(), PythonPvm()]
IDS = ["native", "python"]


def _program(steps: int) -> bytes:
    """A self-looping block (add, add, branch) with a store every iteration, then a host
    call in a second loop, then halt: both engines' hot paths and a resume after ecalli."""
    asm = Assembler()
    asm.op("load_imm", a=1, x=steps)
    asm.op("load_imm", a=3, x=0x20000)
    asm.op("fallthrough")  # a branch target starts a basic block (GP §A.3)
    asm.label("body")
    asm.op("add_imm_64", a=2, b=2, x=3)
    asm.op("store_ind_u32", a=2, b=3, x=0)
    asm.op("add_imm_64", a=1, b=1, x=-1)
    asm.op("branch_ne_imm", a=1, x=0, target="body")
    asm.op("load_imm", a=4, x=5)
    asm.op("fallthrough")
    asm.label("calls")
    asm.op("ecalli", x=7)
    asm.op("add_imm_64", a=4, b=4, x=-1)
    asm.op("branch_ne_imm", a=4, x=0, target="calls")
    asm.op("trap")
    return asm.blob()


def _memory() -> Memory:
    mem = Memory()
    mem.map(0x20000, 4096, writable=True)
    return mem


def _outcome(engine: PvmEngine, blob: bytes, gas: int) -> tuple[object, ...]:
    vm = engine.instantiate(blob, pc=0, gas=gas, registers=[0] * 13, memory=_memory())
    calls: list[int] = []

    def handler(host_id: int, instance: PvmInstance) -> Status | None:
        calls.append(host_id)
        instance.set_register(5, instance.get_register(5) + 1)
        return None

    exit_, served = run_with_host(vm, handler)
    return (exit_.status, exit_.pc, vm.gas, vm.get_registers(), vm.read_memory(0x20000, 8),
            served, calls)


def _with_hook(engine: PvmEngine, blob: bytes, gas: int,
               hook: Callable[[], None]) -> tuple[object, ...]:
    with safepoint.installed(hook):
        return _outcome(engine, blob, gas)


@pytest.mark.parametrize("engine", ENGINES, ids=IDS)
@pytest.mark.parametrize("gas", [
    10**7,  # ends at the trap
    # out of gas in the loop, at or next to a safe point (the block there not yet charged)
    4 * safepoint.YIELD_GAS, 4 * safepoint.YIELD_GAS + 1, 4 * safepoint.YIELD_GAS + 3,
    4 * safepoint.YIELD_GAS - 1, 3 * safepoint.YIELD_GAS + 517])
def test_a_hook_at_every_safe_point_changes_nothing(engine: PvmEngine, gas: int) -> None:
    blob = _program(1_000_000)
    plain = _outcome(engine, blob, gas)
    seen: list[int] = []
    hooked = _with_hook(engine, blob, gas, lambda: seen.append(1))
    assert hooked == plain
    assert plain[0] is (Status.PANIC if gas == 10**7 else Status.OUT_OF_GAS)
    # a safe point about every YIELD_GAS gas: the run used most of `gas`
    used = gas - int(plain[2])  # type: ignore[call-overload]
    assert used // safepoint.YIELD_GAS - 2 <= len(seen) <= used // safepoint.YIELD_GAS


@pytest.mark.parametrize("engine", ENGINES, ids=IDS)
def test_a_hook_running_the_same_program_meanwhile_changes_nothing(engine: PvmEngine) -> None:
    """The hook runs other machines of the same program (a nested package of the same
    code): the native core decodes new blocks into the shared arrays, moving them, and
    the Python engine compiles blocks into the shared table; the suspended run goes on
    unchanged. Machines made inside the hook get no hook of their own (depth 1)."""
    blob = _program(600_000)
    plain = _outcome(engine, blob, 10**7)
    inner: list[tuple[object, ...]] = []
    expected_inner = [_outcome(engine, _program(n), 50_000 + n) for n in (1, 2, 3)]

    def hook() -> None:
        if len(inner) < 3:
            with safepoint.installed(None):
                inner.append(_outcome(engine, _program(len(inner) + 1),
                                      50_000 + len(inner) + 1))

    assert _with_hook(engine, blob, 10**7, hook) == plain
    assert inner == expected_inner


def test_native_hand_overs_are_counted_every_yield_gas() -> None:
    blob = _program(3_000_000)
    vm = NativePvm().instantiate(blob, pc=0, gas=10**8, registers=[0] * 13, memory=_memory())
    run_with_host(vm, lambda _id, _vm: None)
    assert vm.yields == (10**8 - vm.gas) // safepoint.YIELD_GAS > 100


@pytest.mark.parametrize("engine", ENGINES, ids=IDS)
@pytest.mark.parametrize("error", [KeyError("stop"), PageFault(0x30000), MemoryPanic(16)],
                         ids=["KeyError", "PageFault", "MemoryPanic"])
def test_a_hook_that_raises_ends_the_run_with_its_error(engine: PvmEngine,
                                                        error: Exception) -> None:
    """The hook's exception ends the run as itself, even a memory exception (the Python
    engine calls the hook outside the block's fault handler, which would otherwise take it
    for a fault of the block)."""
    def hook() -> None:
        raise error

    with safepoint.installed(hook):
        vm = engine.instantiate(_program(10**6), pc=0, gas=10**7, registers=[0] * 13,
                                memory=_memory())
    with pytest.raises(type(error)) as raised:
        vm.run()
    assert raised.value is error
    # stopped at the first safe point, before charging its block
    assert 10**7 - safepoint.YIELD_GAS - 8 <= vm.gas < 10**7 - safepoint.YIELD_GAS


def test_reach_calls_the_installed_hook_only() -> None:
    seen: list[int] = []
    safepoint.reach()
    with safepoint.installed(lambda: seen.append(1)):
        safepoint.reach()
        with safepoint.installed(None):
            safepoint.reach()
        safepoint.reach()
    safepoint.reach()
    assert seen == [1, 1]


@pytest.mark.parametrize("engine", ENGINES, ids=IDS)
def test_code_run_once_reaches_safe_points_too(engine: PvmEngine) -> None:
    """Straight-line code of many small blocks, each run once: the Python engine interprets
    it without compiling (cold), and stops there for the safe points as well."""
    asm = Assembler()
    for i in range(100_000):
        asm.op("add_imm_64", a=2, b=2, x=i % 7 + 1)
        asm.op("add_imm_64", a=3, b=2, x=1)
        asm.op("fallthrough")
    asm.op("trap")
    blob = asm.blob()
    plain = _outcome(engine, blob, 10**6)
    seen: list[int] = []
    assert _with_hook(engine, blob, 10**6, lambda: seen.append(1)) == plain
    used = 10**6 - int(plain[2])  # type: ignore[call-overload]
    assert used == 300_001
    assert used // safepoint.YIELD_GAS - 1 <= len(seen) <= used // safepoint.YIELD_GAS == 4


def _host_call_loop(times: int) -> bytes:
    """20 adds and a host call, `times` times: a host call every 23 gas, far more often than
    every YIELD_GAS."""
    asm = Assembler()
    asm.op("load_imm", a=1, x=times)
    asm.op("fallthrough")
    asm.label("body")
    for _ in range(20):
        asm.op("add_imm_64", a=2, b=2, x=1)
    asm.op("ecalli", x=7)
    asm.op("add_imm_64", a=1, b=1, x=-1)
    asm.op("branch_ne_imm", a=1, x=0, target="body")
    asm.op("trap")
    return asm.blob()


@pytest.mark.parametrize("engine", ENGINES, ids=IDS)
def test_host_calls_do_not_reset_the_safe_point_budget(engine: PvmEngine) -> None:
    """The gas to the next safe point is the machine's, kept across host-call exits: a run
    that calls the host every 23 gas still reaches one every YIELD_GAS gas (a budget reset
    at every entry gave none at all)."""
    blob = _host_call_loop(20_000)
    plain = _outcome(engine, blob, 10**7)
    seen: list[int] = []
    assert _with_hook(engine, blob, 10**7, lambda: seen.append(1)) == plain
    assert plain[0] is Status.PANIC and plain[5] == 20_000
    used = 10**7 - int(plain[2])  # type: ignore[call-overload]
    assert used == 460_003
    assert used // safepoint.YIELD_GAS - 1 <= len(seen) <= used // safepoint.YIELD_GAS == 7


@pytest.mark.parametrize("engine", ENGINES, ids=IDS)
def test_a_hook_closing_over_its_machine_is_collected(engine: PvmEngine) -> None:
    """machine -> safe_point -> closure -> machine is a cycle the garbage collector frees
    (the native Machine traverses and clears its safe_point)."""

    class Marker:
        pass

    def make() -> weakref.ref[Marker]:
        marker = Marker()
        vm = engine.instantiate(_program(10), pc=0, gas=10**5, registers=[0] * 13,
                                memory=_memory())

        def hook() -> None:
            assert vm is not None and marker is not None

        vm.safe_point = hook  # type: ignore[attr-defined]
        run_with_host(vm, lambda _id, _vm: None)
        return weakref.ref(marker)

    gc.collect()
    ref = make()
    gc.collect()
    assert ref() is None
