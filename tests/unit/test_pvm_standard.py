"""Standard program initialisation Y (GP 0.7.2 §A.7) and the service code blob (GP §9.2)."""

from __future__ import annotations

import pytest

from jamhost.pvm.assembler import Assembler, encode_natural
from jamhost.pvm.interface import Status
from jamhost.pvm.interpreter import Interpreter
from jamhost.pvm.memory import MemoryPanic, PageFault
from jamhost.pvm.standard import (
    INPUT_SIZE,
    ZONE_SIZE,
    StandardProgram,
    StandardProgramError,
    encode_standard_program,
    initialise,
    parse_standard_program,
    split_service_code,
)

TOP = 1 << 32


def _halt_program() -> bytes:
    asm = Assembler()
    asm.op("jump_ind", a=0, x=0)  # ω0 = 2^32 - 2^16: halt
    return asm.blob()


def _standard(o: bytes = b"", w: bytes = b"", z: int = 0, s: int = 0) -> bytes:
    return encode_standard_program(StandardProgram(o, w, z, s, _halt_program()))


def test_registers_follow_gp_a43() -> None:
    _code, regs, _mem = initialise(_standard(s=100), b"\x01\x02\x03")
    assert regs[0] == TOP - ZONE_SIZE
    assert regs[1] == TOP - 2 * ZONE_SIZE - INPUT_SIZE
    assert regs[7] == TOP - ZONE_SIZE - INPUT_SIZE
    assert regs[8] == 3
    assert [regs[i] for i in (2, 3, 4, 5, 6, 9, 10, 11, 12)] == [0] * 9


def test_memory_layout_follows_gp_a42() -> None:
    o = bytes(range(1, 200))
    w = b"\xaa" * 5000  # two pages once rounded
    args = b"args!"
    code, regs, mem = initialise(_standard(o=o, w=w, z=3, s=10_000), args)
    assert code == _halt_program()
    # Read-only data at Z_Z, padded to a page, not writable.
    assert mem.read(ZONE_SIZE, len(o)) == o
    assert mem.read(ZONE_SIZE + len(o), 4096 - len(o)) == bytes(4096 - len(o))
    assert not mem.is_writable(ZONE_SIZE, 1)
    assert not mem.is_readable(ZONE_SIZE + 4096, 1)
    # Read-write data at 2Z_Z + Q(|o|), then P(|w|) + z pages, writable.
    rw = 2 * ZONE_SIZE + ZONE_SIZE
    assert mem.read(rw, len(w)) == w
    assert mem.is_writable(rw, 2 * 4096 + 3 * 4096)
    assert not mem.is_readable(rw + 5 * 4096, 1)
    assert mem.heap_top == rw + 5 * 4096
    # Stack: P(s) below 2^32 - 2Z_Z - Z_I, writable, nothing above it.
    stack_top = regs[1]
    assert mem.is_writable(stack_top - 12_288, 12_288)
    assert not mem.is_readable(stack_top - 12_288 - 1, 1)
    assert not mem.is_readable(stack_top, 1)
    # Arguments at 2^32 - Z_Z - Z_I, read-only, zero-padded to a page.
    assert mem.read(regs[7], 4096) == args + bytes(4096 - len(args))
    assert not mem.is_writable(regs[7], 1)
    assert not mem.is_readable(regs[7] + 4096, 1)
    # Nothing below 2^16, and the first zone's tail is a gap.
    with pytest.raises(MemoryPanic):
        mem.read(0x100, 1)
    with pytest.raises(PageFault) as err:
        mem.read(ZONE_SIZE + 8192, 4)
    assert err.value.address == ZONE_SIZE + 8192


def test_empty_sections_map_nothing() -> None:
    _code, regs, mem = initialise(_standard(), b"")
    assert list(mem.pages()) == []
    assert regs[8] == 0


def test_bad_blobs_are_none() -> None:
    good = _standard(o=b"x", w=b"y", s=16)
    with pytest.raises(StandardProgramError):
        parse_standard_program(good[:-1])
    with pytest.raises(StandardProgramError):
        parse_standard_program(good + b"\0")
    with pytest.raises(StandardProgramError):
        initialise(good, b"\0" * (INPUT_SIZE + 1))
    with pytest.raises(StandardProgramError):
        parse_standard_program(good[:10])
    # The largest heap and stack the header can express still fit in 2^32 (GP eq. A.41).
    big = encode_standard_program(StandardProgram(b"", b"", 0xFFFF, 0xFFFFFF, _halt_program()))
    assert initialise(big, b"")[2].is_writable(2 * ZONE_SIZE, 0xFFFF * 4096)


def test_service_code_blob_strips_metadata() -> None:
    metadata = b"\x00\x0ctest-service"
    program = _standard(o=b"ro", w=b"rw", s=4096)
    preimage = encode_natural(len(metadata)) + metadata + program
    assert split_service_code(preimage) == (metadata, program)
    with pytest.raises(StandardProgramError):
        split_service_code(encode_natural(200) + b"short")


def test_initialised_program_runs_to_halt() -> None:
    code, regs, mem = initialise(_standard(s=4096), b"")
    vm = Interpreter.from_blob(code, pc=0, gas=10, registers=regs, memory=mem)
    assert vm.run().status is Status.HALT
    assert vm.gas == 9


def test_sbrk_grows_the_heap_from_the_end_of_rw_data() -> None:
    asm = Assembler()
    asm.op("load_imm", a=2, x=5000)
    asm.op("sbrk", d=3, a=2)  # r3 = old break, heap grows by 5000 octets
    asm.op("sbrk", d=4, a=5)  # r5 = 0: query the break
    asm.op("store_ind_u8", a=2, b=4, x=-1)  # last octet of the new heap is writable
    asm.op("jump_ind", a=0, x=0)
    sp = StandardProgram(b"", b"\x01", 0, 0, asm.blob())
    code, regs, mem = initialise(encode_standard_program(sp), b"")
    start = mem.heap_top
    vm = Interpreter.from_blob(code, pc=0, gas=100, registers=regs, memory=mem)
    assert vm.run().status is Status.HALT
    assert vm.get_register(3) == start
    assert vm.get_register(4) == start + 5000
    assert mem.read(start + 4999, 1) == bytes([5000 & 0xFF])
