"""Example service `kvstore`: a key/value store written through work items.

refine: returns the item's payload unchanged (output = payload).

accumulate: for every ok operand, reads its output as a sequence of entries
`E_1(|k|) ++ k ++ E_1(|v|) ++ v` (one length octet each, so keys and values up to 255
octets) and writes storage[k] = v in order; an entry with |v| = 0 deletes k. Error results
and deferred transfers are skipped; a truncated last entry is ignored. Halts with no output.

So the payload b"\\x01a\\x02hi\\x01b\\x00" sets b"a" = b"hi" and deletes b"b".

    python -m jamhost.examples.kvstore > kvstore.pvm
"""

from __future__ import annotations

import sys

from jamhost.engine.constants import HostCall
from jamhost.examples._asm import NONE, Program

METADATA = b"jamhost-example:kvstore"
INPUT_SIZE = 0x8000


def entries(pairs: list[tuple[bytes, bytes]]) -> bytes:
    """Encode (key, value) pairs as the payload kvstore understands."""
    out = bytearray()
    for key, value in pairs:
        if len(key) > 255 or len(value) > 255:
            raise ValueError("kvstore keys and values have at most 255 octets")
        out += bytes([len(key)]) + key + bytes([len(value)]) + value
    return bytes(out)


def build() -> bytes:
    """The service code blob E(↕m, p) (GP §9.2)."""
    prog = Program()
    buf = prog.heap
    prog.entry_points("refine", "accumulate")

    prog.block("refine")
    prog.refine_payload(5, 6)
    prog.op("move_reg", d=7, a=5)
    prog.op("move_reg", d=8, a=6)
    prog.op("jump_ind", a=0, x=0)

    # accumulate: ω6 = input index, ω5 = cursor, ω12 = end of the output blob
    prog.block("accumulate")
    prog.op("load_imm", a=6, x=0)
    prog.block("inputs")
    prog.fetch_input(buf, 6, INPUT_SIZE)
    prog.op("branch_eq_imm", a=7, x=NONE, target="done")
    prog.op("add_imm_64", a=6, b=6, x=1)
    prog.op("branch_gt_u_imm", a=7, x=INPUT_SIZE, target="inputs")  # too large: skip
    prog.op("load_imm", a=5, x=buf)
    prog.operand_output(5, 12, skip="inputs")
    prog.op("add_64", d=12, a=12, b=5)
    prog.block("entry")
    # need 1 octet for |k|: cursor + 1 <= end
    prog.op("add_imm_64", a=2, b=5, x=1)
    prog.op("branch_lt_u", a=12, b=2, target="inputs")
    prog.op("load_ind_u8", a=8, b=5, x=0)  # |k|
    prog.op("add_imm_64", a=7, b=5, x=1)  # k
    prog.op("add_64", d=9, a=7, b=8)  # at |v|
    prog.op("add_imm_64", a=2, b=9, x=1)
    prog.op("branch_lt_u", a=12, b=2, target="inputs")
    prog.op("load_ind_u8", a=10, b=9, x=0)  # |v|
    prog.op("add_imm_64", a=9, b=9, x=1)  # v
    prog.op("add_64", d=5, a=9, b=10)  # next entry
    prog.op("branch_lt_u", a=12, b=5, target="inputs")
    prog.ecalli(HostCall.WRITE)
    prog.op("jump", target="entry")
    prog.block("done")
    prog.halt()
    return prog.service_code(METADATA)


if __name__ == "__main__":
    from jamhost.examples._cli import main

    sys.exit(main("kvstore", __doc__, build))
