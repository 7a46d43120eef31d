"""Example authorizer `token_authorizer`: Ψ_I code (GP 0.7.2 §B.3) that authorizes a package
whose authorization token p_j is not empty, and makes the token its trace (the report's
`auth_output`, refine's fetch selector 2). An empty token panics: the package is refused.

It is uploaded as a preimage of one of the tenant's services and named by a package's
`authorizer` {service_id, code_hash}. Only pc 0 is used (Ψ_I has one entry point).

    python -m jamhost.examples.token_authorizer > token_authorizer.pvm
"""

from __future__ import annotations

import sys

from jamhost.engine.constants import HostCall
from jamhost.examples._asm import Program

METADATA = b"jamhost-example:token_authorizer"
MAX_TOKEN = 1024
TOKEN_SELECTOR = 9  # Ω_Y: p_j


def build() -> bytes:
    """The code preimage E(↕m, p) (GP §14.3: p_c is stripped of its metadata like code)."""
    prog = Program()
    prog.const(b"\0")  # a non-empty read-only segment keeps the standard layout simple
    buf = prog.heap
    prog.op("load_imm", a=7, x=buf)
    prog.op("load_imm", a=8, x=0)
    prog.op("load_imm", a=9, x=MAX_TOKEN)
    prog.op("load_imm", a=10, x=TOKEN_SELECTOR)
    prog.ecalli(HostCall.FETCH)
    prog.op("branch_eq_imm", a=7, x=0, target="refuse")
    prog.op("load_imm", a=2, x=MAX_TOKEN)
    prog.op("min_u", d=8, a=7, b=2)
    prog.op("load_imm", a=7, x=buf)
    prog.op("jump_ind", a=0, x=0)  # halt: output μ[ω7..+ω8]
    prog.block("refuse")
    prog.op("trap")
    return prog.service_code(METADATA)


if __name__ == "__main__":
    sys.stdout.buffer.write(build())
