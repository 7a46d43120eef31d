"""PVM throughput: jamhost's pure-Python PVM (fast and step paths) against anan-as 1.2.0.

    .venv/bin/python bench/bench_pvm.py [--iterations 200000] [--write-docs]

Workloads (generic program blobs built with jamhost.pvm.assembler, identical for both):
1. ALU loop: 7 register instructions per iteration (add, xor, shift, and, branch).
2. Load/store loop: 10 instructions per iteration, 4 of them memory accesses (u64/u32).
3. Per-invocation overhead of a trivial program (one instruction, then halt): jamhost as
   `Interpreter` (load + run of a cached program) and as `invoke` (Ψ_M: standard program
   initialisation, run, output), anan-as as prepareProgram + runProgram.

Instructions per second = gas used / wall time (every instruction costs 1 gas). jamhost is
timed after a warm-up run, so block compilation (cached per program) is excluded; the cold
first run is reported separately. anan-as runs in one node process
(tests/differential/anan_runner.mjs) and is timed inside node, excluding node start-up.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "differential"))
sys.path.insert(0, str(REPO))

from anan_client import AnanAs  # noqa: E402
from bench.common import machine, write_section  # noqa: E402

from jamhost.pvm.assembler import Assembler  # noqa: E402
from jamhost.pvm.host import invoke  # noqa: E402
from jamhost.pvm.interpreter import Interpreter  # noqa: E402
from jamhost.pvm.memory import Memory  # noqa: E402
from jamhost.pvm.standard import StandardProgram, encode_standard_program  # noqa: E402

RW_BASE = 0x20000
GAS = 10**12


def alu_loop(iterations: int) -> bytes:
    asm = Assembler()
    asm.op("load_imm", a=0, x=iterations)
    asm.op("load_imm", a=1, x=1)
    asm.op("fallthrough")
    asm.label("loop")
    asm.op("add_64", a=1, b=2, d=2)
    asm.op("xor", a=2, b=1, d=3)
    asm.op("shlo_l_imm_64", a=4, b=3, x=3)
    asm.op("add_imm_64", a=1, b=1, x=7)
    asm.op("and_imm", a=5, b=4, x=0xFFFF)
    asm.op("add_imm_64", a=0, b=0, x=-1)
    asm.op("branch_ne_imm", a=0, x=0, target="loop")
    asm.op("trap")
    return asm.blob()


def load_store_loop(iterations: int) -> bytes:
    asm = Assembler()
    asm.op("load_imm", a=0, x=iterations)
    asm.op("load_imm", a=7, x=RW_BASE)
    asm.op("load_imm", a=6, x=0)
    asm.op("fallthrough")
    asm.label("loop")
    asm.op("add_64", a=7, b=6, d=2)  # r2 = base + offset
    asm.op("load_ind_u64", a=3, b=2, x=0)
    asm.op("add_64", a=3, b=0, d=3)
    asm.op("store_ind_u64", a=3, b=2, x=8)
    asm.op("load_ind_u32", a=4, b=2, x=4)
    asm.op("xor", a=5, b=4, d=5)
    asm.op("store_ind_u32", a=5, b=2, x=16)
    asm.op("add_imm_64", a=6, b=6, x=8)
    asm.op("and_imm", a=6, b=6, x=0x1FC0)  # stay inside the two pages
    asm.op("add_imm_64", a=0, b=0, x=-1)
    asm.op("branch_ne_imm", a=0, x=0, target="loop")
    asm.op("trap")
    return asm.blob()


def trivial() -> bytes:
    asm = Assembler()
    asm.op("load_imm", a=7, x=0)
    asm.op("jump_ind", a=0, x=0)  # ω0 = 2^32 - 2^16: halt
    return asm.blob()


PAGES = [(RW_BASE, 0x2000, True)]


def _memory() -> Memory:
    mem = Memory()
    for address, length, writable in PAGES:
        mem.map(address, length, writable)
    return mem


def run_jamhost(blob: bytes, mode: str, regs: list[int] | None = None) -> tuple[float, int]:
    """(seconds, gas used) of one run."""
    vm = Interpreter.from_blob(
        blob, pc=0, gas=GAS, registers=regs or [0] * 13, memory=_memory(), mode=mode
    )
    t0 = time.perf_counter()
    vm.run()
    return time.perf_counter() - t0, GAS - vm.gas


def run_anan(anan: AnanAs, blob: bytes, repeat: int, regs: list[int] | None = None) -> float:
    """Nanoseconds per run, timed inside node."""
    req: dict[str, Any] = {
        "program": blob.hex(),
        "regs": [str(r) for r in (regs or [0] * 13)],
        "pc": 0,
        "gas": str(GAS),
        "pages": [list(p) for p in PAGES],
        "memory": [],
    }
    anan.bench(req, max(1, repeat // 10))  # warm-up (JIT)
    out = anan.bench(req, repeat)
    return out["ns"] / out["repeat"]


def throughput(anan: AnanAs, name: str, blob: bytes) -> dict[str, float]:
    cold, used = run_jamhost(blob, "fast")
    fast = min(run_jamhost(blob, "fast")[0] for _ in range(3))
    step = run_jamhost(blob, "step")[0]
    anan_ns = run_anan(anan, blob, 5)
    row = {
        "instructions": used,
        "fast_mips": used / fast / 1e6,
        "step_mips": used / step / 1e6,
        "fast_cold_mips": used / cold / 1e6,
        "anan_mips": used / (anan_ns / 1e9) / 1e6,
    }
    row["ratio"] = row["fast_mips"] / row["anan_mips"]
    print(
        f"{name:16} {used:>10} instr   fast {row['fast_mips']:6.2f} M/s "
        f"(cold {row['fast_cold_mips']:5.2f})   step {row['step_mips']:5.2f} M/s   "
        f"anan-as {row['anan_mips']:7.2f} M/s   fast/anan-as {row['ratio']:.3f}"
    )
    return row


def overhead(anan: AnanAs, n: int) -> dict[str, float]:
    blob = trivial()
    std = encode_standard_program(StandardProgram(b"", b"", 0, 4096, blob))

    def interp() -> None:
        Interpreter.from_blob(blob, pc=0, gas=1000, registers=[0xFFFF0000] + [0] * 12).run()

    def psi_m() -> None:
        invoke(std, 0, 1000, b"args", lambda h, vm: None)

    out: dict[str, float] = {}
    for label, fn in (("interpreter_us", interp), ("invoke_us", psi_m)):
        fn()
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        out[label] = (time.perf_counter() - t0) / n * 1e6
    out["anan_us"] = run_anan(anan, blob, n, regs=[0xFFFF0000] + [0] * 12) / 1000
    print(
        f"{'invocation':16} jamhost Interpreter {out['interpreter_us']:.1f} us, "
        f"invoke (Ψ_M) {out['invoke_us']:.1f} us, anan-as prepare+run {out['anan_us']:.1f} us"
    )
    return out


def write_docs(text: str) -> None:
    write_section("PVM", text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=200_000)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    anan = AnanAs()
    print(machine())
    alu = throughput(anan, "ALU loop", alu_loop(args.iterations))
    mem = throughput(anan, "load/store loop", load_store_loop(args.iterations))
    inv = overhead(anan, args.calls)
    anan.close()
    if not args.write_docs:
        return
    cmd = "JAMHOST_ANAN_AS_DIR=.cache/anan-as .venv/bin/python bench/bench_pvm.py --write-docs"
    rows = "\n".join(
        f"| {name} | {r['instructions']:,} | {r['fast_mips']:.2f} | {r['fast_cold_mips']:.2f} | "
        f"{r['step_mips']:.2f} | {r['anan_mips']:.1f} | {r['ratio']:.3f} |"
        for name, r in (("ALU loop", alu), ("load/store loop", mem))
    )
    text = f"""## PVM

Pure-Python PVM (`jamhost.pvm`, compiled basic blocks = "fast", one instruction at a time =
"step") against the reference PVM anan-as 1.2.0 (AssemblyScript compiled to WASM, run in
node and timed inside node) on the same program blobs. M/s = million PVM instructions per
second (gas used / wall time). "cold" includes compiling the program's blocks on first run.

- Date: {dt.date.today().isoformat()}
- Machine: {machine()}; load average {os.getloadavg()[0]:.1f} at the end of the run (a shared
  machine: figures move by tens of percent between runs, the ratio less so)
- Command: `{cmd}` (iterations {args.iterations:,}, {args.calls:,} invocations)

| workload | instructions | fast M/s | fast cold M/s | step M/s | anan-as M/s | fast / anan-as |
|---|---|---|---|---|---|---|
{rows}

Per-invocation overhead of a trivial program (2 instructions, warm program cache):
jamhost `Interpreter` load + run {inv["interpreter_us"]:.1f} us; jamhost `invoke` (Ψ_M: standard
program initialisation, run, output) {inv["invoke_us"]:.1f} us; anan-as `prepareProgram` +
`runProgram` {inv["anan_us"]:.1f} us.

"""
    write_docs(text)
    print("wrote docs/benchmarks.md ## PVM")


if __name__ == "__main__":
    main()
