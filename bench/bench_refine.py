"""Refine as a JAM guarantor computes it: erasure coding and roots, inner-machine invokes.

    .venv/bin/python bench/bench_refine.py [--repeat 3] [--invokes 20000] [--write-docs]

1. Erasure coding (GP 0.7.2 appendix H, engine/erasure.py): `chunks` of random data of
   684 octets (one piece), 1 MiB and W_B = 13,791,360 octets, and `erasure_root` of a small
   package's bundle with no exports (what every report now pays) and of 64 exported segments.
2. Inner machines (GP 0.7.2 §B.7): a refine loop making K `invoke`s of a guest whose first
   instruction is an ecalli (each invoke is one HOST exit and one re-entry), against the same
   loop making K `gas` host calls, so the difference is the invoke's own cost; and a guest's
   ALU loop run inside an inner machine against the same loop as refine code itself.
Best of `--repeat` runs after a warm-up, in process CPU time (`time.process_time`): the
work is single-threaded Python, so on an idle machine this equals wall time, and on the
shared machine it does not count the time other processes held the cores.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import machine, write_section  # noqa: E402

from jamhost.domain.types import RefineContext, WorkItem, WorkPackage  # noqa: E402
from jamhost.engine import erasure, refine_package  # noqa: E402
from jamhost.engine.constants import HostCall  # noqa: E402
from jamhost.engine.erasure import chunks  # noqa: E402
from jamhost.examples._asm import Program  # noqa: E402
from jamhost.pvm.assembler import Assembler  # noqa: E402

NOTE = """
What it means: every report now pays its erasure root once (a small package: one bundle
piece, about 7 ms of CPU; the second attestor finds the kept root). A bundle of W_B costs
about 3.3 s, 1 MiB a third of a second; exported segments about 4 ms each. numpy was not
needed for these sizes: the one-piece case, which every report pays, is bound by Python's
per-operation overhead rather than arithmetic, and the W_B case is within a refine's own
running time for that much data. An `invoke` that ends in a HOST exit costs about 4-5
plain host calls; code inside an inner machine runs at the speed of refine code (both
figures include the refine invocation's own setup, a larger share of the shorter run).
"""
W_B = 13_791_360
W_G = 4104
HALT_ADDRESS = (1 << 32) - (1 << 16)


def best(fn: Callable[[], object], repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.process_time()
        fn()
        times.append(time.process_time() - t0)
    return min(times)


def h(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=32).digest()


def refine_seconds(code: bytes, repeat: int) -> tuple[float, int]:
    item = WorkItem(1, h(code), 10**12, 0, 0, b"")
    ctx = RefineContext(bytes(32), bytes(32), bytes(32), bytes(32), 0)
    package = WorkPackage(1, bytes(32), ctx, b"", b"", (item,))
    gas = [0]

    def run() -> None:
        outcome = refine_package(package, code_lookup=lambda s, c: code,
                                 preimage_lookup=lambda s, x: None)
        assert outcome.report.results[0].result.is_ok, outcome.report.results[0].result
        gas[0] = outcome.gas_used

    return best(run, repeat), gas[0]


def _loop(prog: Program, count: int, body: Callable[[], None]) -> None:
    prog.op("load_imm", a=12, x=count)
    prog.block("loop")
    body()
    prog.op("add_imm_64", a=12, b=12, x=-1)
    prog.op("branch_ne_imm", a=12, x=0, target="loop")
    prog.block("done")
    prog.halt()


def gas_calls(count: int) -> bytes:
    prog = Program()
    prog.const(b"\0")
    prog.entry_points("refine", "refine")
    prog.block("refine")
    _loop(prog, count, lambda: prog.ecalli(HostCall.GAS))
    return prog.service_code(b"bench")


def invokes(count: int, guest: bytes, per_invoke_gas: int) -> bytes:
    prog = Program()
    blob = prog.const(guest)
    args = prog.heap
    prog.entry_points("refine", "refine")
    prog.block("refine")
    prog.op("load_imm", a=7, x=blob)
    prog.op("load_imm", a=8, x=len(guest))
    prog.op("load_imm", a=9, x=0)
    prog.ecalli(HostCall.MACHINE)
    prog.op("move_reg", d=6, a=7)
    prog.op("load_imm", a=2, x=args)
    prog.op("load_imm_64", a=3, x=HALT_ADDRESS)
    prog.op("store_ind_u64", a=3, b=2, x=8)

    def body() -> None:
        prog.op("load_imm", a=2, x=args)
        prog.op("load_imm_64", a=3, x=per_invoke_gas)
        prog.op("store_ind_u64", a=3, b=2, x=0)
        prog.op("move_reg", d=7, a=6)
        prog.op("load_imm", a=8, x=args)
        prog.ecalli(HostCall.INVOKE)

    _loop(prog, count, body)
    return prog.service_code(b"bench")


def host_call_guest() -> bytes:
    asm = Assembler()
    asm.label("top")
    asm.op("ecalli", x=1)
    asm.op("jump", target="top")
    return asm.blob()


def alu_guest(iterations: int) -> bytes:
    asm = Assembler()
    asm.op("load_imm", a=5, x=iterations)
    asm.op("fallthrough")
    asm.label("loop")
    asm.op("add_imm_64", a=4, b=4, x=3)
    asm.op("xor", d=3, a=3, b=4)
    asm.op("add_imm_64", a=5, b=5, x=-1)
    asm.op("branch_ne_imm", a=5, x=0, target="loop")
    asm.op("jump_ind", a=0, x=0)
    return asm.blob()


def alu_outer(iterations: int) -> bytes:
    prog = Program()
    prog.const(b"\0")
    prog.entry_points("refine", "refine")
    prog.block("refine")
    prog.op("load_imm", a=5, x=iterations)
    prog.block("loop")
    prog.op("add_imm_64", a=4, b=4, x=3)
    prog.op("xor", d=3, a=3, b=4)
    prog.op("add_imm_64", a=5, b=5, x=-1)
    prog.op("branch_ne_imm", a=5, x=0, target="loop")
    prog.block("done")
    prog.halt()
    return prog.service_code(b"bench")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--invokes", type=int, default=20_000)
    parser.add_argument("--alu", type=int, default=300_000)
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    rng = os.urandom
    rows = []
    for label, size in (("one piece (684 octets)", 684), ("1 MiB", 1 << 20), ("W_B", W_B)):
        data = rng(size)
        seconds = best(lambda d=data: chunks(d), args.repeat if size < W_B else 1)
        rows.append(f"| `chunks`, {label} | {seconds * 1000:,.1f} ms | "
                    f"{size / seconds / 1e6:,.2f} MB/s |")
    def erasure_root(bundle: bytes, segments: list[bytes]) -> bytes:
        erasure._ROOTS.clear()  # measure the coding, not the kept root
        return erasure.erasure_root(bundle, segments)

    small = rng(200)
    seconds = best(lambda: erasure_root(small, []), args.repeat)
    rows.append(f"| `erasure_root`, 200-octet bundle, no exports | {seconds * 1000:,.1f} ms | |")
    segments = [rng(W_G) for _ in range(64)]
    seconds = best(lambda: erasure_root(small, segments), args.repeat)
    rows.append(f"| `erasure_root`, 200-octet bundle, 64 exported segments (+1 proof page) | "
                f"{seconds * 1000:,.1f} ms | {64 * W_G / seconds / 1e6:,.2f} MB/s of segments |")

    k = args.invokes
    t_gas, _ = refine_seconds(gas_calls(k), args.repeat)
    t_inv, _ = refine_seconds(invokes(k, host_call_guest(), 1000), args.repeat)
    per_gas = t_gas / k * 1e6
    per_inv = t_inv / k * 1e6
    t_outer, g_outer = refine_seconds(alu_outer(args.alu), args.repeat)
    t_inner, g_inner = refine_seconds(invokes(1, alu_guest(args.alu), 10**12), args.repeat)
    inner_rows = [
        f"| refine loop of {k:,} `gas` host calls | {t_gas * 1000:,.1f} ms | "
        f"{per_gas:,.2f} µs per call |",
        f"| refine loop of {k:,} `invoke`s, each a HOST exit of the guest | "
        f"{t_inv * 1000:,.1f} ms | {per_inv:,.2f} µs per invoke, "
        f"{per_inv - per_gas:,.2f} µs above a plain host call |",
        f"| ALU loop of {args.alu:,} iterations as refine code | {t_outer * 1000:,.1f} ms | "
        f"{g_outer / t_outer / 1e6:,.1f} M gas/s |",
        f"| the same loop in an inner machine (one invoke) | {t_inner * 1000:,.1f} ms | "
        f"{g_inner / t_inner / 1e6:,.1f} M gas/s |",
    ]
    today = dt.date.today().isoformat()
    text = (
        "## Refine: erasure coding and inner machines\n\n"
        f"Machine: {machine()}. Command: `.venv/bin/python bench/bench_refine.py "
        f"--repeat {args.repeat} --invokes {k} --alu {args.alu} --write-docs`. Date: {today}. "
        "Best of the repeats (W_B: one run) after a warm-up, in process CPU time (the "
        "machine was shared; single-threaded, so equal to wall time when idle).\n\n"
        "Erasure coding (GP 0.7.2 appendix H, pure Python, engine/erasure.py):\n\n"
        "| what | time | rate |\n|---|---|---|\n" + "\n".join(rows) + "\n\n"
        "Inner machines (GP 0.7.2 §B.7), Python PVM; refine gas includes the inner gas:\n\n"
        "| what | time | per unit |\n|---|---|---|\n" + "\n".join(inner_rows) + "\n"
        + NOTE
    )
    print(text)
    if args.write_docs:
        write_section("Refine: erasure coding and inner machines", text)


if __name__ == "__main__":
    main()
