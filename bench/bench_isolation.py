"""What a tenant's code costs per gas: the worst program of each kind beside plain execution.

    .venv/bin/python bench/bench_isolation.py [--gas 400000] [--write-docs]

Every program is service code built with the project's assembler and run through the engine as
the pipeline runs it (refine_package / accumulate, the pipeline's per-package read cache):

- plain: an ALU loop (add, xor, shift, and, jump) until out of gas;
- plain host calls: `gas` (the cheapest host call) until out of gas: on the native core it is
  answered in C, on the Python engine it is what any host call costs per gas;
- log: `log` of a 60,000-octet message until out of gas (bytes kept: the lines kept);
- large code: a 3.9 MB blob of 3.5 M one-byte `fallthrough`s, each run once (a cold
  program every round: the program cache is cleared first);
- large code, one block: 1.75 M two-octet `move_reg`s in one basic block, run once (cold);
- historical_lookup: of an 8 MB preimage held in a SQLite file, until out of gas;
- plain accumulate: the ALU loop in one accumulate of the transfers kind's gas (68,007):
  an accumulate invocation's fixed set-up is a large share of so little gas;
- transfers: accumulate making 4,000 zero-value transfers to another service.

CPU microseconds per gas = process CPU time (time.process_time) / gas used; bytes kept per gas =
what the outcome holds (log lines, transfers) / gas used; CPU per charged unit = CPU time /
(gas used + the tariff units the kind is charged beyond GP gas, tenancy/tariff.py: code
loading for the large-code kinds, 100 per transfer for the transfers kind, none for the
others). Each kind is the best of `--rounds`;
what a client or the store does before the run (building the package, hashing the code) is
outside the timing, and garbage is collected between rounds.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import hashlib
import os
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import machine, write_section  # noqa: E402

from jamhost.app.lookup_cache import CachedLookup  # noqa: E402
from jamhost.domain.types import RefineContext, WorkItem, WorkPackage  # noqa: E402
from jamhost.engine import AccountState, accumulate, refine_package  # noqa: E402
from jamhost.engine.accumulate import AccumulateOutcome  # noqa: E402
from jamhost.engine.constants import HostCall  # noqa: E402
from jamhost.examples._asm import NONE, Program  # noqa: E402
from jamhost.pvm import native as pvm_native  # noqa: E402
from jamhost.pvm import program as pvm_program  # noqa: E402
from jamhost.pvm.engines import get_engine  # noqa: E402
from jamhost.pvm.interface import PvmEngine  # noqa: E402
from jamhost.tenancy.tariff import code_units, transfer_units  # noqa: E402

ENGINE: PvmEngine | None = None  # set per run by measure()


def _cold() -> None:
    """Every round starts with both engines' program caches empty, and with no garbage left
    by the previous round for the collector to find during this one (it stays enabled)."""
    pvm_program.PROGRAMS.clear()
    pvm_native._programs.clear()
    gc.collect()

SERVICE = 70_000
OTHER = 70_001
TRANSFERS = 4_000
MESSAGE = 60_000
ONE_BYTE_INSTRUCTIONS = 3_500_000
TWO_OCTET_INSTRUCTIONS = 1_750_000
PREIMAGE = 8 * 1024 * 1024
TRANSFER_GAS = 68_007  # what the transfers kind uses: 4,000 × 17 + 7


def _start(prog: Program) -> None:
    prog.entry_points("refine", "acc")


def _halt_accumulate(prog: Program) -> None:
    prog.block("acc")
    prog.halt()
    prog.block("refine")


def alu_loop() -> bytes:
    prog = Program()
    _start(prog)
    _halt_accumulate(prog)
    prog.block("loop")
    prog.op("add_imm_64", a=2, b=2, x=1)
    prog.op("xor", d=3, a=3, b=2)
    prog.op("shlo_l_imm_64", a=4, b=2, x=3)
    prog.op("and", d=5, a=4, b=3)
    prog.op("jump", target="loop")
    return prog.service_code(b"bench")


def gas_loop() -> bytes:
    """The cheapest host call (`gas`, 10 gas) forever: the floor of any host-call-bound kind."""
    prog = Program()
    _start(prog)
    _halt_accumulate(prog)
    prog.block("loop")
    prog.ecalli(HostCall.GAS)
    prog.op("jump", target="loop")
    return prog.service_code(b"bench")


def log_flood() -> bytes:
    prog = Program()
    _start(prog)
    _halt_accumulate(prog)
    for reg, value in ((7, 2), (8, 0), (9, 0), (10, prog.heap), (11, MESSAGE)):
        prog.op("load_imm", a=reg, x=value)
    prog.block("loop")
    prog.ecalli(HostCall.LOG)
    prog.op("jump", target="loop")
    return prog.service_code(b"bench")


def large_code() -> bytes:
    prog = Program()
    _start(prog)
    _halt_accumulate(prog)
    prog.asm.raw(bytes([1]) * ONE_BYTE_INSTRUCTIONS, [1] * ONE_BYTE_INSTRUCTIONS)
    prog.op("jump", target="refine")
    return prog.service_code(b"bench")


def large_block() -> bytes:
    """One basic block of 1.75 M two-octet `move_reg`s (3.9 MB with its mask), each run once:
    the block is decoded as far as it runs, not whole at its first entry."""
    prog = Program()
    _start(prog)
    _halt_accumulate(prog)
    prog.asm.raw(bytes([100, 0x32]) * TWO_OCTET_INSTRUCTIONS, [1, 0] * TWO_OCTET_INSTRUCTIONS)
    prog.op("jump", target="refine")
    return prog.service_code(b"bench")


def lookup_loop(hash_: bytes) -> bytes:
    prog = Program()
    where = prog.const(hash_)
    _start(prog)
    _halt_accumulate(prog)
    prog.block("loop")
    for reg, value in ((7, NONE), (8, where), (9, prog.heap), (10, 0), (11, 64)):
        prog.op("load_imm", a=reg, x=value)
    prog.ecalli(HostCall.HISTORICAL_LOOKUP)
    prog.op("jump", target="loop")
    return prog.service_code(b"bench")


def transfer_loop() -> bytes:
    """Accumulate: 4,000 transfers of 0 to OTHER with gas 0 and a zero memo, then halt."""
    prog = Program()
    _start(prog)
    prog.block("refine")
    prog.halt()
    prog.block("acc")
    prog.op("load_imm", a=2, x=TRANSFERS)
    prog.block("loop")
    for reg, value in ((7, OTHER), (8, 0), (9, 0), (10, prog.heap)):
        prog.op("load_imm", a=reg, x=value)
    prog.ecalli(HostCall.TRANSFER)
    prog.op("add_imm_64", a=2, b=2, x=-1)
    prog.op("branch_ne_imm", a=2, x=0, target="loop")
    prog.block("done")
    prog.halt()
    return prog.service_code(b"bench")


def accumulate_alu_loop() -> bytes:
    """Accumulate: the ALU loop until out of gas (plain execution in an accumulate)."""
    prog = Program()
    _start(prog)
    prog.block("refine")
    prog.halt()
    prog.block("acc")
    prog.block("loop")
    prog.op("add_imm_64", a=2, b=2, x=1)
    prog.op("xor", d=3, a=3, b=2)
    prog.op("shlo_l_imm_64", a=4, b=2, x=3)
    prog.op("and", d=5, a=4, b=3)
    prog.op("jump", target="loop")
    return prog.service_code(b"bench")


def h(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=32).digest()


def package(code: bytes, gas: int) -> WorkPackage:
    """A one-item package running `code` (built before the timing: a client's work)."""
    ctx = RefineContext(b"\x01" * 32, b"\x02" * 32, b"\x03" * 32, b"\x04" * 32, 9)
    return WorkPackage(5, bytes(32), ctx, b"t", b"c", (WorkItem(SERVICE, h(code), gas, 0, 0,
                                                                  b"x"),))


Cost = tuple[float, int, int, int]
"""(CPU seconds, gas used, bytes kept, tariff units charged) of one run."""


def refine_cost(code: bytes, gas: int, lookup: Callable[[int, bytes], bytes | None]) -> Cost:
    """One refine through a fresh per-package cache; its code units (tenancy/tariff.py)."""
    _cold()
    code_hash = h(code)  # the client's and the store's work, not the run's: outside the timing
    work = package(code, gas)
    window = WINDOWS[0]

    def window_read(s: int, x: bytes, at: int, n: int) -> tuple[int, bytes] | None:
        if x == code_hash:
            return len(code), code[at : at + n]
        return window(s, x, at, n) if window is not None else None

    cached = CachedLookup(lambda s, x: code if x == code_hash else lookup(s, x),
                          window_read=window_read)
    t = time.process_time()
    out = refine_package(work, code_lookup=cached, preimage_lookup=cached, engine=ENGINE)
    cpu = time.process_time() - t
    kept = sum(len(line.encode()) for line in out.logs)
    return cpu, out.gas_used, kept, code_units(len(code))


def accumulate_cost(code: bytes, gas_limit: int) -> tuple[float, AccumulateOutcome]:
    _cold()
    me = AccountState.create(h(code), 10**12, preimages={h(code): code},
                             requests={(h(code), len(code)): (0,)})
    other = AccountState.create(bytes(32), 0)
    t = time.process_time()
    out = accumulate(SERVICE, me, [], [], timeslot=1, gas_limit=gas_limit, entropy=bytes(32),
                     other_account=lambda s: other if s == OTHER else None, engine=ENGINE)
    return time.process_time() - t, out


def transfer_cost() -> Cost:
    cpu, out = accumulate_cost(transfer_loop(), 10**7)
    assert len(out.transfers) == TRANSFERS, len(out.transfers)
    kept = sum(len(t.memo) + 64 for t in out.transfers)  # memo + the transfer's fields
    return cpu, out.gas_used, kept, transfer_units(len(out.transfers))


def plain_accumulate_cost() -> Cost:
    """The ALU loop in one accumulate given the transfers kind's gas (like with like)."""
    cpu, out = accumulate_cost(accumulate_alu_loop(), TRANSFER_GAS)
    assert out.gas_used == TRANSFER_GAS, out.gas_used
    return cpu, out.gas_used, 0, 0


def sqlite_preimage(directory: str) -> tuple[bytes, Callable[[int, bytes], bytes | None]]:
    blob = os.urandom(PREIMAGE)
    path = Path(directory) / "preimages.db"
    db = sqlite3.connect(path, check_same_thread=False)
    db.execute("CREATE TABLE p (hash BLOB PRIMARY KEY, size INTEGER, blob BLOB)")
    db.execute("INSERT INTO p VALUES (?, ?, ?)", (h(blob), len(blob), blob))
    db.commit()

    def lookup(_service: int, hash_: bytes) -> bytes | None:
        row = db.execute("SELECT blob FROM p WHERE hash = ?", (hash_,)).fetchone()
        return row[0] if row else None

    def window(_service: int, hash_: bytes, at: int, n: int) -> tuple[int, bytes] | None:
        # the store's window read (store/sql/statements.py SERVICE_PREIMAGE_WINDOW)
        # (store/sql/adapter.py _sqlite_window: size column, rowid, incremental blob read)
        row = db.execute("SELECT size, rowid FROM p WHERE hash = ?", (hash_,)).fetchone()
        if row is None:
            return None
        start = min(at, row[0])
        with db.blobopen("p", "blob", row[1], readonly=True) as part:
            part.seek(start)
            return row[0], part.read(min(n, row[0] - start))

    WINDOWS[0] = window
    return h(blob), lookup


WINDOWS: list[Callable[[int, bytes, int, int], tuple[int, bytes] | None] | None] = [None]


Row = tuple[str, float, float, float]
"""(kind, CPU us per gas, bytes kept per gas, CPU us per charged unit = gas + tariff units)."""


def measure(gas: int, rounds: int, engine: str) -> list[Row]:
    """One row per kind on the PVM engine called `engine`."""
    global ENGINE
    ENGINE = get_engine(engine)
    with tempfile.TemporaryDirectory() as tmp:
        preimage_hash, lookup = sqlite_preimage(tmp)
        ones, block = large_code(), large_block()  # built once, each round runs them cold
        kinds: dict[str, Callable[[], Cost]] = {
            "plain (ALU loop)": lambda: refine_cost(alu_loop(), gas, lookup),
            "plain host calls (gas)": lambda: refine_cost(gas_loop(), gas, lookup),
            "log flood": lambda: refine_cost(log_flood(), gas, lookup),
            "large code": lambda: refine_cost(ones, gas, lookup),
            "large code, one block": lambda: refine_cost(block, gas, lookup),
            "historical_lookup 8 MB": lambda: refine_cost(lookup_loop(preimage_hash), gas,
                                                          lookup),
            f"plain accumulate ({TRANSFER_GAS:,} gas)": plain_accumulate_cost,
            f"transfers ({TRANSFERS:,})": transfer_cost,
        }
        rows = []
        for name, run in kinds.items():
            best: Row | None = None
            for _ in range(rounds):
                cpu, used, kept, units = run()
                row = (name, cpu * 1e6 / used, kept / used, cpu * 1e6 / (used + units))
                best = row if best is None or row[1] < best[1] else best
            assert best is not None
            rows.append(best)
    return rows


def table(rows: list[Row]) -> str:
    plain, calls = rows[0][1], rows[1][1]
    acc = next(r[1] for r in rows if r[0].startswith("plain accumulate"))
    out = ["| program | CPU us / gas | bytes kept / gas | CPU / plain | CPU / plain host calls "
           "| CPU us / charged unit | charged / plain | CPU / plain accumulate |",
           "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, cpu, kept, charged in rows:
        is_acc = name.startswith(("plain accumulate", "transfers"))
        out.append(f"| {name} | {cpu:.4f} | {kept:.2f} | {cpu / plain:.1f}x "
                   f"| {cpu / calls:.1f}x | {charged:.4f} | {charged / plain:.1f}x "
                   f"| {f'{cpu / acc:.1f}x' if is_acc else '-'} |")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gas", type=int, default=400_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--engines", default="native,python",
                        help="comma-separated PVM engines, each measured in the same run")
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    print(machine())
    parts = []
    for name in args.engines.split(","):
        text = table(measure(args.gas, args.rounds, name))
        print(f"\nengine {name}\n{text}")
        parts.append(f"Engine `{name}` (plain is the same engine's ALU loop):\n\n{text}\n")
    text = "\n".join(parts)
    if args.write_docs:
        section = (
            "## Isolation: CPU and memory per gas (bench_isolation.py)\n\n"
            f"{dt.date.today().isoformat()}, {machine()}, "
            f"`.venv/bin/python bench/bench_isolation.py --gas {args.gas} --rounds "
            f"{args.rounds} --engines {args.engines} --write-docs`. Refine gas {args.gas:,} "
            "for each refine kind; the "
            "transfers kind is one accumulate, beside a plain accumulate of the same gas. "
            "Target: no kind above 5x plain per gas. *charged unit*: gas + the units of "
            "tenancy/tariff.py the kind is charged (code loading, transfers).\n\n"
            f"{text}\n"
        )
        write_section("Isolation: CPU and memory per gas (bench_isolation.py)", section)


if __name__ == "__main__":
    main()
