"""Example service `inner_vm`: refine runs a guest program in an inner PVM machine
(GP 0.7.2 §B.7: machine, pages, poke, invoke, peek, expunge), CoreVM-style.

The guest reads x (u64) at 0x20000, asks its host for a service with `ecalli 77`, adds 1 to
the ω7 the host handed back, stores it at 0x20008 and halts. The refine code (the guest's
host) makes the machine, maps page 32 writable, pokes the payload's first 8 octets there as x,
invokes the guest (which exits HOST 77), serves the call by tripling the guest's ω7, invokes
again (HALT), peeks the result and expunges the machine. Its output is seven u64s:

    E_8(3x + 1) ++ E_8(code₁) ++ E_8(host id) ++ E_8(code₂) ++ E_8(pc after expunge)
    ++ E_8(guest gas left) ++ E_8(machine id)

For payload E_8(5): 16, 3 (HOST), 77, 0 (HALT), 0 (GP: ı' = 0 after a halt), the gas left
of the 100_000 given, and 0. accumulate does nothing.

    python -m jamhost.examples.inner_vm > inner_vm.pvm
"""

from __future__ import annotations

import sys

from jamhost.engine.constants import HostCall
from jamhost.examples._asm import Program
from jamhost.pvm.assembler import Assembler

METADATA = b"jamhost-example:inner_vm"
GUEST_HOST_CALL = 77
GUEST_GAS = 100_000
GUEST_PAGE = 32  # 0x20000
HALT_ADDRESS = (1 << 32) - (1 << 16)


def guest() -> bytes:
    """The inner program: a generic blob (GP eq. A.2), no standard layout."""
    asm = Assembler()
    asm.op("load_imm", a=2, x=GUEST_PAGE * 4096)
    asm.op("load_ind_u64", a=7, b=2, x=0)
    asm.op("ecalli", x=GUEST_HOST_CALL)
    asm.op("add_imm_64", a=7, b=7, x=1)
    asm.op("store_ind_u64", a=7, b=2, x=8)
    asm.op("jump_ind", a=0, x=0)  # ω0 = the halt address, set by the host
    return asm.blob()


def build() -> bytes:
    """The service code blob E(↕m, p) (GP §9.2)."""
    prog = Program()
    code = guest()
    blob = prog.const(code)
    args = prog.heap  # E_8(g) ++ E_8(ω0..ω12) for invoke
    out = args + 256
    n = 6  # the machine id, kept across host calls (ω7-ω12 are their arguments)
    prog.entry_points("refine", "accumulate")

    prog.block("refine")
    prog.refine_payload(5, 6)  # ω5 = payload address
    prog.op("load_imm", a=7, x=blob)
    prog.op("load_imm", a=8, x=len(code))
    prog.op("load_imm", a=9, x=0)
    prog.ecalli(HostCall.MACHINE)
    prog.op("move_reg", d=n, a=7)
    prog.op("load_imm", a=2, x=out + 48)
    prog.op("store_ind_u64", a=7, b=2, x=0)

    prog.op("move_reg", d=7, a=n)
    prog.op("load_imm", a=8, x=GUEST_PAGE)
    prog.op("load_imm", a=9, x=1)
    prog.op("load_imm", a=10, x=2)  # zeroed, writable
    prog.ecalli(HostCall.PAGES)

    prog.op("move_reg", d=7, a=n)
    prog.op("move_reg", d=8, a=5)
    prog.op("load_imm", a=9, x=GUEST_PAGE * 4096)
    prog.op("load_imm", a=10, x=8)
    prog.ecalli(HostCall.POKE)

    prog.op("load_imm", a=2, x=args)
    prog.op("load_imm", a=3, x=GUEST_GAS)
    prog.op("store_ind_u64", a=3, b=2, x=0)
    prog.op("load_imm_64", a=3, x=HALT_ADDRESS)
    prog.op("store_ind_u64", a=3, b=2, x=8)  # guest ω0
    prog.op("move_reg", d=7, a=n)
    prog.op("load_imm", a=8, x=args)
    prog.ecalli(HostCall.INVOKE)
    prog.op("load_imm", a=2, x=out)
    prog.op("store_ind_u64", a=7, b=2, x=8)  # code₁
    prog.op("store_ind_u64", a=8, b=2, x=16)  # host id

    # Serve the guest's host call: its ω7 (at args + 8 + 7·8) times three.
    prog.op("load_imm", a=2, x=args)
    prog.op("load_ind_u64", a=3, b=2, x=8 + 7 * 8)
    prog.op("mul_imm_64", a=3, b=3, x=3)
    prog.op("store_ind_u64", a=3, b=2, x=8 + 7 * 8)
    prog.op("move_reg", d=7, a=n)
    prog.op("load_imm", a=8, x=args)
    prog.ecalli(HostCall.INVOKE)
    prog.op("load_imm", a=2, x=out)
    prog.op("store_ind_u64", a=7, b=2, x=24)  # code₂
    prog.op("load_imm", a=2, x=args)
    prog.op("load_ind_u64", a=3, b=2, x=0)
    prog.op("load_imm", a=2, x=out)
    prog.op("store_ind_u64", a=3, b=2, x=40)  # guest gas left

    prog.op("move_reg", d=7, a=n)
    prog.op("load_imm", a=8, x=out)
    prog.op("load_imm", a=9, x=GUEST_PAGE * 4096 + 8)
    prog.op("load_imm", a=10, x=8)
    prog.ecalli(HostCall.PEEK)

    prog.op("move_reg", d=7, a=n)
    prog.ecalli(HostCall.EXPUNGE)
    prog.op("load_imm", a=2, x=out)
    prog.op("store_ind_u64", a=7, b=2, x=32)  # pc after expunge
    prog.halt(out, 56)

    prog.block("accumulate")
    prog.halt()
    return prog.service_code(METADATA)


if __name__ == "__main__":
    sys.stdout.buffer.write(build())
