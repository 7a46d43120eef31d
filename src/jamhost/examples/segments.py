"""Example service `segments`: refine exports segments, or reads its imports through `fetch`
(GP 0.7.2 §B.6: selector 5, ī[ω11][ω12], and selector 6, ī[this item][ω11]).

The payload's first octet says what refine does:

- 1 (export): exports μ[y + 1..] and then μ[y + 2..] (the payload without its first one and
  two octets), each zero-padded to W_G = 4104 octets: two segments, export indices 0 and 1
  (the item declares `export_count` 2). Output: none.
- 5 or 6 (read imports): y = [s, k, l]: for i < k, fetch with selector s (5: item 0's import
  i; 6: this item's import i) the first l octets of that segment; the output is those k·l
  octets in order.

accumulate does nothing.

    python -m jamhost.examples.segments > segments.pvm
"""

from __future__ import annotations

import sys

from jamhost.engine.constants import HostCall
from jamhost.examples._asm import Program

METADATA = b"jamhost-example:segments"
EXPORT = 1


def build() -> bytes:
    """The service code blob E(↕m, p) (GP §9.2)."""
    prog = Program()
    prog.const(b"\0")
    out = prog.heap
    i, k, size, selector, dest = 2, 3, 4, 5, 6
    prog.entry_points("refine", "accumulate")

    prog.block("refine")
    prog.refine_payload(5, 6)  # ω5 = y's address, ω6 = |y|
    prog.op("load_ind_u8", a=2, b=5, x=0)
    prog.op("branch_eq_imm", a=2, x=EXPORT, target="export")
    prog.op("load_ind_u8", a=k, b=5, x=1)
    prog.op("load_ind_u8", a=size, b=5, x=2)
    prog.op("move_reg", d=selector, a=2)
    prog.op("load_imm", a=dest, x=out)
    prog.op("load_imm", a=i, x=0)

    prog.block("loop")
    prog.op("branch_eq", a=i, b=k, target="done")
    prog.op("move_reg", d=7, a=dest)
    prog.op("load_imm", a=8, x=0)
    prog.op("move_reg", d=9, a=size)
    prog.op("move_reg", d=10, a=selector)
    prog.op("branch_eq_imm", a=selector, x=6, target="own")
    prog.op("load_imm", a=11, x=0)  # selector 5: item 0, segment i
    prog.op("move_reg", d=12, a=i)
    prog.op("jump", target="call")
    prog.block("own")
    prog.op("move_reg", d=11, a=i)  # selector 6: this item's segment i
    prog.block("call")
    prog.ecalli(HostCall.FETCH)
    prog.op("add_64", d=dest, a=dest, b=size)
    prog.op("add_imm_64", a=i, b=i, x=1)
    prog.op("jump", target="loop")

    prog.block("done")
    prog.op("load_imm", a=7, x=out)
    prog.op("sub_64", d=8, a=dest, b=7)
    prog.op("jump_ind", a=0, x=0)  # halt: output μ[out..+k·l]

    prog.block("export")
    prog.op("add_imm_64", a=7, b=5, x=1)
    prog.op("add_imm_64", a=8, b=6, x=-1)
    prog.ecalli(HostCall.EXPORT)
    prog.op("add_imm_64", a=7, b=5, x=2)
    prog.op("add_imm_64", a=8, b=6, x=-2)
    prog.ecalli(HostCall.EXPORT)
    prog.halt()

    prog.block("accumulate")
    prog.halt()
    return prog.service_code(METADATA)


def null_authorizer() -> bytes:
    """A null authorizer: Ψ_I code that halts at once with an empty trace (authorizes any
    package); what an operator installs as a runtime-wide authorizer."""
    prog = Program()
    prog.const(b"\0")
    prog.halt()
    return prog.service_code(b"jamhost-example:null_authorizer")


if __name__ == "__main__":
    sys.stdout.buffer.write(build())
