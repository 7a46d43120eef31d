"""Host-call interface: run to ecalli, inspect and change state, resume (GP 0.7.2 §A.6, §A.8).

Every test runs on the Python engine's paths and on the native core (mode "native")."""

from __future__ import annotations

import pytest

from jamhost.pvm.assembler import Assembler
from jamhost.pvm.host import invoke, invoke_service_code, run_with_host
from jamhost.pvm.interface import PvmEngine, PvmInstance, Status
from jamhost.pvm.interpreter import PythonPvm
from jamhost.pvm.memory import Memory, MemoryPanic, PageFault
from jamhost.pvm.native import NativePvm
from jamhost.pvm.standard import StandardProgram, encode_standard_program

RW = 0x20000
MODES = ["fast", "step", "native"]
ENGINES = ["fast", "native"]


def _engine(mode: str) -> PvmEngine:
    return NativePvm() if mode == "native" else PythonPvm(mode)


def _from_blob(
    blob: bytes, mode: str, *, pc: int, gas: int, registers: list[int] | None = None,
    memory: Memory | None = None,
) -> PvmInstance:  # fmt: skip
    return _engine(mode).instantiate(
        blob, pc=pc, gas=gas, registers=registers or [0] * 13, memory=memory or Memory()
    )


def _host_program() -> bytes:
    asm = Assembler()
    asm.op("load_imm", a=7, x=5)  # pc 0
    asm.op("ecalli", x=3)  # host call 3
    asm.op("add_imm_64", a=8, b=7, x=1)  # r8 = r7 + 1 (r7 as the host left it)
    asm.op("load_imm", a=9, x=RW)
    asm.op("load_ind_u32", a=10, b=9, x=0)  # read what the host wrote
    asm.op("store_ind_u64", a=8, b=9, x=8)
    asm.op("jump_ind", a=0, x=0)  # ω0 = halt address
    return asm.blob()


def _vm(mode: str, gas: int = 100) -> PvmInstance:
    mem = Memory()
    mem.map(RW, 4096, writable=True)
    regs = [0] * 13
    regs[0] = 0xFFFF0000
    return _from_blob(_host_program(), mode, pc=0, gas=gas, registers=regs, memory=mem)


@pytest.mark.parametrize("mode", MODES)
def test_run_to_ecalli_modify_state_and_resume(mode: str) -> None:
    vm = _vm(mode)
    ex = vm.run()
    assert ex.status is Status.HOST and ex.host_id == 3
    ecalli_pc = ex.pc
    assert vm.pc == ecalli_pc and ecalli_pc > 0
    assert vm.gas == 98  # load_imm and the ecalli itself are charged
    assert vm.get_register(7) == 5
    # The host answers: a register, some memory and a gas charge.
    vm.set_register(7, 40)
    vm.write_memory(RW, (0xDEADBEEF).to_bytes(4, "little"))
    vm.gas -= 10
    ex = vm.resume()
    assert ex.status is Status.HALT
    assert vm.get_register(8) == 41
    assert vm.get_register(10) == 0xDEADBEEF
    assert vm.read_memory(RW + 8, 8) == (41).to_bytes(8, "little")
    assert vm.gas == 88 - 5  # five more instructions after the ecalli


@pytest.mark.parametrize("mode", MODES)
def test_run_again_reexecutes_the_ecalli(mode: str) -> None:
    vm = _vm(mode)
    first = vm.run()
    again = vm.run()
    assert again.status is Status.HOST and again.pc == first.pc
    assert vm.gas == 97


@pytest.mark.parametrize("mode", ENGINES)
def test_resume_without_host_call_is_an_error(mode: str) -> None:
    vm = _vm(mode)
    with pytest.raises(RuntimeError):
        vm.resume()


@pytest.mark.parametrize("mode", ENGINES)
def test_memory_access_reports_faults(mode: str) -> None:
    vm = _vm(mode)
    with pytest.raises(PageFault) as err:
        vm.read_memory(RW + 4090, 10)  # crosses into the unmapped next page
    assert err.value.address == RW + 4096
    with pytest.raises(MemoryPanic):
        vm.read_memory(0x8000, 1)
    vm.map_memory(RW + 4096, 4096, writable=False)
    assert vm.read_memory(RW + 4090, 10) == bytes(10)
    with pytest.raises(PageFault) as err:
        vm.write_memory(RW + 4094, b"abcd")  # the second page is read-only
    assert err.value.address == RW + 4096
    assert vm.read_memory(RW + 4094, 2) == b"\0\0"  # nothing written on a fault
    assert vm.is_readable(RW, 8192) and not vm.is_writable(RW, 8192)
    assert vm.is_writable(RW, 4096)


@pytest.mark.parametrize("mode", MODES)
def test_page_fault_is_resolved_by_mapping_then_retried(mode: str) -> None:
    asm = Assembler()
    asm.op("load_imm", a=1, x=0x50000)
    asm.op("store_imm_ind_u8", a=1, x=3, y=7)
    asm.op("trap")
    vm = _from_blob(asm.blob(), mode, pc=0, gas=10)
    ex = vm.run()
    assert ex.status is Status.PAGE_FAULT and ex.address == 0x50000
    assert vm.gas == 8  # the faulting store is charged (GP "some gas is always charged")
    vm.map_memory(0x50000, 4096, writable=True)
    assert vm.run().status is Status.PANIC  # store retried, then the trap
    assert vm.read_memory(0x50003, 1) == b"\x07"
    assert vm.gas == 6


@pytest.mark.parametrize("mode", MODES)
def test_out_of_gas_stops_before_the_unpaid_instruction(mode: str) -> None:
    asm = Assembler()
    for i in range(6):
        asm.op("add_imm_64", a=1, b=1, x=1 << i)
    asm.op("trap")
    vm = _from_blob(asm.blob(), mode, pc=0, gas=4)
    ex = vm.run()
    assert ex.status is Status.OUT_OF_GAS
    assert vm.get_register(1) == 0b1111
    assert vm.gas == 0
    assert ex.pc == 4 * 3  # the fifth add_imm_64 (3 octets each)


@pytest.mark.parametrize("mode", ENGINES)
def test_engine_implements_the_interface(mode: str) -> None:
    engine = _engine(mode)
    assert isinstance(engine, PvmEngine)
    vm = engine.instantiate(_host_program(), pc=0, gas=10, registers=[0] * 13, memory=Memory())
    assert isinstance(vm, PvmInstance)


@pytest.mark.parametrize("mode", ENGINES)
def test_undecodable_blob_panics_without_charging(mode: str) -> None:
    vm = _from_blob(b"\x05\x00", mode, pc=0, gas=10)
    assert vm.run().status is Status.PANIC
    assert vm.gas == 10


# --- Ψ_H and Ψ_M ----------------------------------------------------------------------------


def _standard(asm: Assembler, rw: bytes = b"") -> bytes:
    return encode_standard_program(StandardProgram(b"", rw, 1, 4096, asm.blob()))


def _echo_service() -> Assembler:
    """Calls host 1 with (ω7, ω8) = argument (address, length), then halts returning the
    argument reversed in place by the host (the host writes into the heap page)."""
    asm = Assembler()
    asm.op("ecalli", x=1)
    asm.op("jump_ind", a=0, x=0)
    return asm


@pytest.mark.parametrize("mode", MODES)
def test_invoke_runs_host_calls_and_returns_output(mode: str) -> None:
    seen: list[tuple[int, int, bytes]] = []

    def handler(host_id: int, vm: PvmInstance) -> Status | None:
        addr, length = vm.get_register(7), vm.get_register(8)
        data = vm.read_memory(addr, length)
        seen.append((host_id, vm.gas, data))
        out = 2 * 65536 + 0  # start of the rw/heap zone
        vm.write_memory(out, data[::-1])
        vm.set_register(7, out)
        vm.gas -= 10  # the GP's base host-call charge
        return None

    result = invoke(_standard(_echo_service()), 0, 1000, b"hello", handler, engine=_engine(mode))
    assert result.status is Status.HALT
    assert result.output == b"olleh" and result.result == b"olleh"
    assert seen == [(1, 999, b"hello")]
    assert result.gas_used == 1 + 10 + 1
    assert result.gas_remaining == 1000 - 12
    assert result.host_calls == 1


@pytest.mark.parametrize("mode", ENGINES)
def test_invoke_handler_outcomes(mode: str) -> None:
    blob = _standard(_echo_service())
    e = _engine(mode)
    res = invoke(blob, 0, 100, b"", lambda h, vm: Status.PANIC, engine=e)
    assert res.status is Status.PANIC and res.output is None and res.result == "panic"

    def drain(h: int, vm: PvmInstance) -> None:
        vm.gas -= 1000

    res = invoke(blob, 0, 100, b"", drain, engine=e)
    assert res.status is Status.OUT_OF_GAS and res.gas_used == 100 and res.gas_remaining == 0

    def bad_pointer(h: int, vm: PvmInstance) -> None:
        vm.read_memory(0x10, 4)  # the host touches inaccessible memory: panic

    assert invoke(blob, 0, 100, b"", bad_pointer, engine=e).status is Status.PANIC


def test_invoke_unreadable_output_is_empty_and_bad_blob_panics() -> None:
    asm = Assembler()
    asm.op("load_imm", a=7, x=0x30000)  # unmapped
    asm.op("load_imm", a=8, x=4)
    asm.op("jump_ind", a=0, x=0)
    res = invoke(_standard(asm), 0, 100, b"", lambda h, vm: None)
    assert res.status is Status.HALT and res.output == b""
    res = invoke(b"\x01\x02", 0, 100, b"", lambda h, vm: None)
    assert res.status is Status.PANIC and res.gas_used == 0
    res = invoke_service_code(b"\x7f", 0, 100, b"", lambda h, vm: None)
    assert res.status is Status.PANIC and res.gas_used == 0


@pytest.mark.parametrize("mode", ENGINES)
def test_run_with_host_counts_calls(mode: str) -> None:
    vm = _vm(mode)
    ex, calls = run_with_host(vm, lambda h, v: None)
    assert ex.status is Status.HALT and calls == 1
