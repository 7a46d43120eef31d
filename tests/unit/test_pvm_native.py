"""The native PVM core: engine choice, blob checking, lazy decoding, cache budget, memory."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jamhost.config import JamSettings
from jamhost.pvm import _native, get_engine, native
from jamhost.pvm.assembler import Assembler
from jamhost.pvm.cache import ByteBudgetCache
from jamhost.pvm.engines import ENGINE_CHOICES
from jamhost.pvm.interface import PvmEngine, PvmInstance, Status
from jamhost.pvm.interpreter import PythonPvm
from jamhost.pvm.memory import Memory, MemoryPanic, PageFault
from jamhost.pvm.native import NativePvm
from jamhost.pvm.program import ProgramError, decode_program


def test_get_engine_names() -> None:
    assert get_engine().name == "jamhost-pvm-native"  # built by pip install here and in CI
    assert get_engine("auto") is get_engine()
    assert get_engine("native").name == "jamhost-pvm-native"
    assert get_engine("python").name == "jamhost-pvm-py"
    for name in ENGINE_CHOICES:
        assert isinstance(get_engine(name), PvmEngine)
    with pytest.raises(ValueError, match="unknown PVM engine"):
        get_engine("wasm")


def test_runtime_engine_follows_the_config_key(tmp_path) -> None:  # noqa: ANN001
    from jamhost.app.runtime import build_runtime

    for key, expected in (("python", "jamhost-pvm-py"), ("native", "jamhost-pvm-native"),
                          ("auto", "jamhost-pvm-native")):  # fmt: skip
        jam = JamSettings(store="sqlite", sqlite_path=str(tmp_path / f"{key}.db"), pvm_engine=key)
        rt = build_runtime(jam)
        try:
            assert rt.pvm.name == expected
        finally:
            rt.close()


def _loop(n: int) -> bytes:
    asm = Assembler()
    asm.op("load_imm", a=1, x=n)
    asm.label("top")
    asm.op("fallthrough")
    asm.label("body")
    asm.op("add_imm_64", a=2, b=2, x=3)
    asm.op("add_imm_64", a=1, b=1, x=-1)
    asm.op("branch_ne_imm", a=1, x=0, target="body")
    asm.op("trap")
    return asm.blob()


def test_blocks_are_decoded_once_on_first_entry() -> None:
    program = _native.load(_loop(1000))
    assert program.decoded() == 0  # loading checks the blob; nothing is decoded yet
    vm = native.NativeInstance(program)
    vm.gas = 10_000
    vm.pc = 0
    assert vm.run().status is Status.PANIC
    after = program.decoded()
    # blocks: [load_imm, fallthrough], [add, add, branch], [trap]: 3 headers + 6 instructions
    assert after == 9
    vm2 = native.NativeInstance(program)
    vm2.gas, vm2.pc = 10_000, 0
    vm2.run()
    assert program.decoded() == after  # a second run decodes nothing
    assert vm2.get_register(2) == 3000 and vm2.gas == 10_000 - 2 - 3 * 1000 - 1


def test_program_cache_is_bounded_by_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    small = ByteBudgetCache(20_000, lambda p: p.cost())
    monkeypatch.setattr(native, "_programs", small)
    blobs = [_loop(n) for n in range(1, 200)]
    for blob in blobs:
        native.load(blob)
        assert small.used <= 20_000
    assert 0 < len(small) < len(blobs)
    assert native.load(blobs[-1]) is native.load(blobs[-1])  # cached: the same object


@settings(max_examples=300, deadline=None)
@given(blob=st.one_of(st.binary(max_size=40), st.builds(lambda b: b"\x00\x00" + b, st.binary())))
def test_blob_checking_agrees_with_deblob(blob: bytes) -> None:
    try:
        decode_program(blob)
        ok = True
    except ProgramError:
        ok = False
    assert (_native.load(blob) is not None) == ok
    runs = []
    for engine in (PythonPvm(), NativePvm()):
        vm = engine.instantiate(blob, pc=0, gas=50, registers=[1] * 13, memory=Memory())
        ex = vm.run()
        runs.append((ex, vm.gas, vm.get_registers()))
    assert runs[0] == runs[1]


def test_memory_from_python_and_back() -> None:
    mem = Memory()
    mem.map(0x20000, 0x2000, writable=True)
    mem.map(0x30000, 0x1000, writable=False)
    mem.load(0x20FFE, b"abcd")  # crosses two pages
    mem.heap_top = 0x40000
    vm = NativePvm().instantiate(b"\x00\x00\x00", pc=0, gas=1, registers=[0] * 13, memory=mem)
    assert isinstance(vm, PvmInstance)
    assert vm.read_memory(0x20FFE, 4) == b"abcd"
    assert vm.is_readable(0x30000, 4096) and not vm.is_writable(0x30000, 1)
    assert not vm.is_readable(0xFFFFF000, 0x2000)  # beyond 2^32
    assert vm.is_readable(0x10, 0)  # the empty range
    with pytest.raises(MemoryPanic):
        vm.read_memory(0xFFFF, 2)
    with pytest.raises(PageFault) as err:
        vm.write_memory(0x21FFF, b"xy")
    assert err.value.address == 0x22000
    assert vm.read_memory(0x21FFF, 1) == b"\0"  # nothing written
    with pytest.raises(ValueError):
        vm.map_memory(0x8000, 4096, True)
    with pytest.raises(ValueError):
        vm.map_memory(0xFFFFF000, 0x2000, True)
    vm.map_memory(0x30000, 1, True)  # an allocated page keeps its content, becomes writable
    vm.write_memory(0x30000, b"z")
    snap = vm.memory
    assert snap.heap_top == 0x40000
    assert [(a, w) for a, w, _ in snap.pages()] == [(0x20000, True), (0x21000, True),
                                                     (0x30000, True)]  # fmt: skip
    assert snap.read(0x30000, 1) == b"z" and snap.read(0x20FFE, 4) == b"abcd"


def test_sbrk_maps_heap_pages_like_the_python_engine() -> None:
    asm = Assembler()
    asm.op("load_imm", a=2, x=0x3000)
    asm.op("sbrk", d=3, a=2)
    asm.op("store_ind_u32", a=2, b=3, x=0x2FFC)
    asm.op("sbrk", d=4, a=0)  # size 0: the break
    asm.op("trap")
    outs = []
    for engine in (PythonPvm(), NativePvm()):
        mem = Memory()
        mem.heap_top = 0x50000
        vm = engine.instantiate(asm.blob(), pc=0, gas=100, registers=[0] * 13, memory=mem)
        ex = vm.run()
        outs.append((ex, vm.gas, vm.get_registers(), [(a, w, bytes(p)) for a, w, p in
                                                       vm.memory.pages()]))  # type: ignore[attr-defined]
    assert outs[0] == outs[1]
    assert outs[1][2][3] == 0x50000 and outs[1][2][4] == 0x53000
    assert outs[1][0].status is Status.PANIC and outs[1][1] == 95


def test_a_long_run_lets_other_threads_run() -> None:
    """The core holds the GIL but lets it go every 2^16 gas: a tenant's long refine in an
    in-process worker must not stall the server's threads."""
    import threading

    blob = _loop(3_000_000)  # about 9 M instructions: several yields
    # Whether this thread gets the GIL during one run depends on the OS scheduler (a loaded
    # machine may run the whole 30 ms slice uninterrupted): a few runs, one must be seen.
    seen_while_running = 0
    for _attempt in range(20):
        vm = NativePvm().instantiate(blob, pc=0, gas=10**8, registers=[0] * 13,
                                     memory=Memory())
        state = {"running": False, "done": False}

        def work(vm=vm, state=state) -> None:  # type: ignore[no-untyped-def]
            state["running"] = True
            vm.run()
            state["running"] = False
            state["done"] = True

        thread = threading.Thread(target=work)
        thread.start()
        while not state["done"]:
            if state["running"]:
                seen_while_running += 1
        thread.join()
        assert vm.get_register(2) == 9_000_000
        assert vm.yields == (10**8 - vm.gas) // _native.YIELD_GAS  # once per 2^16 gas
        assert _native.YIELD_GAS == 1 << 16
        if seen_while_running:
            break
    assert seen_while_running > 0


def test_a_thread_waiting_for_the_gil_gets_it_during_a_long_run() -> None:
    """The other thread is not starved: every GIL_EVERY safe points the core hands the GIL
    to a thread that asked for it. (With a hand-over every 2^16 gas, each drop-and-retake
    reset CPython's switch clock, so the waiter never asked: a quiet tenant's package on
    the other worker waited for the whole of another tenant's refine.) Counted in GIL
    acquisitions of the other thread (each `sleep(0)` gives the GIL up and takes it back),
    against the hand-overs the run made; no clock."""
    import sys
    import threading

    from jamhost.app.worker import SWITCH_INTERVAL

    blob = _loop(12_000_000)  # about 36 M instructions
    vm = NativePvm().instantiate(blob, pc=0, gas=10**9, registers=[0] * 13, memory=Memory())
    state = {"running": True, "taken": 0}

    def other() -> None:
        while state["running"]:
            state["taken"] += 1
            time.sleep(0)

    old = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_INTERVAL)  # as worker.settle_process sets it
    try:
        thread = threading.Thread(target=other)
        thread.start()
        time.sleep(0.01)
        before = state["taken"]
        vm.run()
        during = state["taken"] - before
        state["running"] = False
        thread.join()
    finally:
        sys.setswitchinterval(old)
    handovers = vm.yields // _native.GIL_EVERY
    assert handovers >= 20
    assert during >= handovers // 4, (during, handovers)


@pytest.mark.parametrize("gas", [0, 1, 2, 499, 500, 501, 1_000])
def test_runs_of_fallthrough_charge_and_stop_like_the_python_engine(gas: int) -> None:
    """Blocks of one fallthrough are decoded as their header alone (cold code made of them
    costs most to run once); gas, pc at out-of-gas and the jump into the middle of the run
    must be the Python engine's. The run then traps at its end."""
    asm = Assembler()
    asm.op("jump", target="mid")
    for _ in range(300):
        asm.op("fallthrough")
    asm.label("mid")
    for _ in range(300):
        asm.op("fallthrough")
    asm.op("load_imm", a=7, x=5)
    asm.op("trap")
    blob = asm.blob()
    outs = []
    for engine in (NativePvm(), PythonPvm()):
        vm = engine.instantiate(blob, pc=0, gas=gas, registers=[0] * 13, memory=Memory())
        ex = vm.run()
        outs.append((ex.status, ex.pc, vm.gas, vm.get_register(7)))
    assert outs[0] == outs[1]
    assert outs[0][0] is (Status.OUT_OF_GAS if gas < 303 else Status.PANIC)


def _straight_line(count: int, tail: str) -> bytes:
    """`count` add_imm_64 in one basic block, then a faulting load or a trap."""
    asm = Assembler()
    for _ in range(count):
        asm.op("add_imm_64", a=2, b=2, x=1)
    if tail == "fault":
        asm.op("load_u64", a=3, x=0x30000)  # unmapped: a page fault mid-way through nothing
    asm.op("trap")
    return asm.blob()


@pytest.mark.parametrize(
    "gas", [0, 1, 63, 64, 65, 66, 127, 128, 129, 130, 299, 300, 301, 302, 10_000])
@pytest.mark.parametrize("tail", ["fault", "trap"])
def test_long_blocks_are_decoded_in_pieces_with_the_same_gas(gas: int, tail: str) -> None:
    """A basic block longer than the core's piece (64 instructions) is decoded piece by piece
    (a long block entered with little gas was decoded whole); gas, pc and registers at every
    boundary must be the Python engine's, at an out-of-gas, a fault and a trap."""
    blob = _straight_line(300, tail)
    outs = []
    for engine in (NativePvm(), PythonPvm()):
        vm = engine.instantiate(blob, pc=0, gas=gas, registers=[0] * 13, memory=Memory())
        ex = vm.run()
        outs.append((ex.status, ex.pc, ex.address, vm.gas, vm.get_register(2)))
    assert outs[0] == outs[1]


def test_a_block_longer_than_the_first_instruction_array_decodes_whole() -> None:
    """30,000 instructions in one block: the instruction array moves from the heap to a
    mapping while the block is being decoded (a crash before the copy took it all)."""
    blob = _straight_line(30_000, "trap")
    outs = []
    for engine in (NativePvm(), PythonPvm()):
        vm = engine.instantiate(blob, pc=0, gas=40_000, registers=[0] * 13, memory=Memory())
        ex = vm.run()
        outs.append((ex.status, ex.pc, vm.gas, vm.get_register(2)))
    assert outs[0] == outs[1] == (Status.PANIC, outs[1][1], 40_000 - 30_001, 30_000)


def test_program_cache_hit_needs_the_same_blob(monkeypatch: pytest.MonkeyPatch) -> None:
    """The cache is keyed by a 64-bit digest: two blobs whose keys collide must each get
    their own program (the blob is compared on a hit)."""
    monkeypatch.setattr(native, "_programs", ByteBudgetCache(10**6, lambda p: p.cost()))
    monkeypatch.setattr(native._native, "digest", lambda blob: 7)  # every key collides
    a, b = _loop(3), _loop(4)
    pa, pb = native.load(a), native.load(b)
    assert pa is not None and pb is not None and pa is not pb
    assert pa.blob == a and pb.blob == b  # type: ignore[attr-defined]
    assert native.load(b) is pb  # a hit when the blob is the same


@pytest.mark.parametrize("gas", [5, 150, 151, 152, 420, 421, 899, 900, 901, 2_000, 10_000])
def test_cold_fallthroughs_run_undecoded_then_decoded_on_a_jump(gas: int) -> None:
    """Fallthroughs never entered are run without being decoded; a later jump into the
    middle of the run (a block start) decodes from there. Three passes of a loop over
    fallthroughs, with out of gas anywhere, must agree with the Python engine."""
    asm = Assembler()
    asm.op("load_imm", a=8, x=0)
    for _ in range(150):
        asm.op("fallthrough")
    asm.label("inner")  # a block start inside the run, entered only from the second pass
    for _ in range(150):
        asm.op("fallthrough")
    asm.op("add_imm_64", a=8, b=8, x=1)
    asm.op("branch_ne_imm", a=8, x=3, target="inner")
    asm.label("end")
    asm.op("trap")
    blob = asm.blob()
    outs = []
    for engine in (NativePvm(), PythonPvm()):
        vm = engine.instantiate(blob, pc=0, gas=gas, registers=[0] * 13, memory=Memory())
        ex = vm.run()
        outs.append((ex.status, ex.pc, vm.gas, vm.get_register(8)))
    assert outs[0] == outs[1]
