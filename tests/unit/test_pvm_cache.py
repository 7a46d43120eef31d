"""The program cache is bounded by bytes and charges what a program really holds."""

from __future__ import annotations

from jamhost.pvm import interpreter, program
from jamhost.pvm.assembler import Assembler, build_blob
from jamhost.pvm.cache import ByteBudgetCache
from jamhost.pvm.interpreter import Interpreter
from jamhost.pvm.memory import Memory


def _loop() -> bytes:
    asm = Assembler()
    asm.op("fallthrough")
    asm.label("loop")
    asm.op("add_imm_64", a=2, b=2, x=1)
    asm.op("xor", d=3, a=3, b=2)
    asm.op("jump", target="loop")
    return asm.blob()


def _run(blob: bytes, gas: int) -> Interpreter:
    vm = Interpreter.from_blob(blob, pc=0, gas=gas, registers=[0] * 13, memory=Memory())
    vm.run()
    return vm


def test_compiled_blocks_are_charged_after_the_run(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(program, "PROGRAMS", ByteBudgetCache(1 << 30, program.Program.footprint))
    blob = _loop()
    vm = _run(blob, 5)  # cold: interpreted, nothing compiled
    prog = vm.program
    assert prog is not None and not prog.cache.get("blocks")
    cold = program.PROGRAMS.used
    assert cold == prog.footprint()
    _run(blob, 10_000)  # hot: the loop block is compiled on its 9th entry
    assert prog.cache.get("blocks")
    assert prog.compiled_bytes > 0
    assert program.PROGRAMS.used == prog.footprint() > cold


def test_the_cache_keeps_within_its_budget(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    budget = 3 * 1024 * 1024
    monkeypatch.setattr(program, "PROGRAMS", ByteBudgetCache(budget, program.Program.footprint))
    n = 600_000
    for i in range(8):  # eight distinct 0.7 MB blobs: more than the budget holds
        code = bytes([1]) * n + bytes([i % 2])
        _run(build_blob(code, [1] * (n + 1), []), 100)
        assert program.PROGRAMS.used <= budget
    assert 0 < len(program.PROGRAMS) < 8


def test_loading_a_large_blob_decodes_nothing_per_instruction() -> None:
    n = 1_000_000
    blob = build_blob(bytes([1]) * n, [1] * n, [])
    prog = program.decode_program(blob)
    assert prog.bitmask == b"\x01" * n
    assert not prog.decoded  # nothing decoded until it runs
    assert prog.is_block_start(n - 1) and prog.skip(n - 1) == 0
    vm = _run(blob, 1000)
    assert vm.gas == 0 and len(vm.program.decoded) == 1000  # type: ignore[union-attr]
    assert interpreter.HOT_BLOCK_ENTRIES > 0 and not vm.program.cache.get("blocks")  # type: ignore[union-attr]
