"""Example service `compute`: real arithmetic in refine, its result kept by accumulate.

refine: over the payload octets b_0..b_{n-1} computes
  sum  = Σ b_i (mod 2^64)
  fnv  = FNV-1a-64: h = 0xcbf29ce484222325; for each b: h = (h XOR b) · 0x100000001b3 mod 2^64
and returns the 16-octet output E_8(sum) ++ E_8(fnv) (little-endian).
For b"a": sum = 97, fnv = 0xaf63dc4c8601ec8c; for b"": sum = 0, fnv = 0xcbf29ce484222325.

accumulate: for every ok operand in order, writes its output under key b"result" (so the
last ok operand wins) and halts with no output.

    python -m jamhost.examples.compute > compute.pvm
"""

from __future__ import annotations

import sys

from jamhost.examples._asm import NONE, Program

KEY = b"result"
METADATA = b"jamhost-example:compute"
FNV_OFFSET = 0xCBF29CE484222325
FNV_PRIME = 0x100000001B3
INPUT_SIZE = 0x8000


def build() -> bytes:
    """The service code blob E(↕m, p) (GP §9.2)."""
    prog = Program()
    key = prog.const(KEY)
    buf = prog.heap
    out = prog.heap + INPUT_SIZE
    prog.entry_points("refine", "accumulate")

    # refine: ω5 = cursor, ω6 = remaining, ω9 = sum, ω10 = fnv, ω11 = prime
    prog.block("refine")
    prog.refine_payload(5, 6)
    prog.op("load_imm", a=9, x=0)
    prog.op("load_imm_64", a=10, x=FNV_OFFSET)
    prog.op("load_imm_64", a=11, x=FNV_PRIME)
    prog.block("byte")
    prog.op("branch_eq_imm", a=6, x=0, target="emit")
    prog.op("load_ind_u8", a=2, b=5, x=0)
    prog.op("add_64", d=9, a=9, b=2)
    prog.op("xor", d=10, a=10, b=2)
    prog.op("mul_64", d=10, a=10, b=11)
    prog.op("add_imm_64", a=5, b=5, x=1)
    prog.op("add_imm_64", a=6, b=6, x=-1)
    prog.op("jump", target="byte")
    prog.block("emit")
    prog.op("load_imm", a=2, x=out)
    prog.op("store_ind_u64", a=9, b=2, x=0)
    prog.op("store_ind_u64", a=10, b=2, x=8)
    prog.halt(out, 16)

    # accumulate: ω6 = input index, ω5 = cursor, ω12 = output length
    prog.block("accumulate")
    prog.op("load_imm", a=6, x=0)
    prog.block("inputs")
    prog.fetch_input(buf, 6, INPUT_SIZE)
    prog.op("branch_eq_imm", a=7, x=NONE, target="done")
    prog.op("add_imm_64", a=6, b=6, x=1)
    prog.op("branch_gt_u_imm", a=7, x=INPUT_SIZE, target="inputs")
    prog.op("load_imm", a=5, x=buf)
    prog.operand_output(5, 12, skip="inputs")
    prog.op("load_imm", a=2, x=key)
    prog.op("load_imm", a=3, x=len(KEY))
    prog.storage_write(2, 3, 5, 12)
    prog.op("jump", target="inputs")
    prog.block("done")
    prog.halt()
    return prog.service_code(METADATA)


if __name__ == "__main__":
    from jamhost.examples._cli import main

    sys.exit(main("compute", __doc__, build))
