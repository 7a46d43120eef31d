"""Example service `counter`: counts accumulated work items in storage.

refine: returns the item's payload unchanged (output = payload).

accumulate: counts the ok-or-error operands among its inputs (deferred transfers are not
counted) and adds that number to the little-endian u64 stored under key b"count" (absent
counts as 0), writing back 8 octets. It halts with no output (no yield).

So after accumulating packages with n1, n2, ... items in total N, storage[b"count"] is
N.to_bytes(8, "little").

    python -m jamhost.examples.counter > counter.pvm
"""

from __future__ import annotations

import sys

from jamhost.engine.constants import HostCall
from jamhost.examples._asm import NONE, Program

KEY = b"count"
METADATA = b"jamhost-example:counter"


def build() -> bytes:
    """The service code blob E(↕m, p) (GP §9.2)."""
    prog = Program()
    key = prog.const(KEY)
    buf, val = prog.heap, prog.heap + 0x100
    prog.entry_points("refine", "accumulate")

    prog.block("refine")
    prog.refine_payload(5, 6)
    prog.op("move_reg", d=7, a=5)
    prog.op("move_reg", d=8, a=6)
    prog.op("jump_ind", a=0, x=0)

    # accumulate: ω5 = operands counted, ω6 = input index
    prog.block("accumulate")
    prog.op("load_imm", a=5, x=0)
    prog.op("load_imm", a=6, x=0)
    prog.block("inputs")
    prog.fetch_input(buf, 6, 1)
    prog.op("branch_eq_imm", a=7, x=NONE, target="counted")
    prog.op("load_imm", a=4, x=buf)
    prog.op("load_ind_u8", a=3, b=4, x=0)
    prog.op("add_imm_64", a=6, b=6, x=1)
    prog.op("branch_ne_imm", a=3, x=0, target="inputs")
    prog.op("add_imm_64", a=5, b=5, x=1)
    prog.op("jump", target="inputs")
    prog.block("counted")
    # read(self, "count") into val: ω7 = length or NONE
    prog.op("load_imm", a=7, x=NONE)
    prog.op("load_imm", a=8, x=key)
    prog.op("load_imm", a=9, x=len(KEY))
    prog.op("load_imm", a=10, x=val)
    prog.op("load_imm", a=11, x=0)
    prog.op("load_imm", a=12, x=8)
    prog.ecalli(HostCall.READ)
    prog.op("load_imm", a=4, x=val)
    prog.op("load_imm", a=3, x=0)
    prog.op("branch_eq_imm", a=7, x=NONE, target="add")
    prog.op("load_ind_u64", a=3, b=4, x=0)
    prog.block("add")
    prog.op("add_64", d=3, a=3, b=5)
    prog.op("store_ind_u64", a=3, b=4, x=0)
    prog.op("load_imm", a=2, x=key)
    prog.op("load_imm", a=3, x=len(KEY))
    prog.op("load_imm", a=5, x=8)
    prog.storage_write(2, 3, 4, 5)
    prog.halt()
    return prog.service_code(METADATA)


if __name__ == "__main__":
    from jamhost.examples._cli import main

    sys.exit(main("counter", __doc__, build))
