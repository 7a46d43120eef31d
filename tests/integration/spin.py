"""A service for scheduling tests, written with the project's assembler: refine counts down
from the u32 at the start of its payload (two instructions, two gas, per step) and returns
nothing; accumulate halts. Its run time is set by the payload alone."""

from __future__ import annotations

from jamhost.examples._asm import Program

GAS_PER_STEP = 2


def build() -> bytes:
    prog = Program()
    prog.entry_points("refine", "accumulate")
    prog.block("refine")
    prog.refine_payload(5, 6)
    prog.op("load_ind_u32", a=9, b=5, x=0)
    prog.block("spin")
    prog.op("add_imm_64", a=9, b=9, x=-1)
    prog.op("branch_ne_imm", a=9, x=0, target="spin")
    prog.block("done")
    prog.halt()
    prog.block("accumulate")
    prog.halt()
    return prog.service_code(b"jamhost-test:spin")


def package(service_id: int, steps: int, tag: int = 0) -> dict[str, object]:
    """A package whose refine takes `steps` steps; `tag` makes otherwise equal ones differ."""
    payload = steps.to_bytes(4, "little") + tag.to_bytes(4, "little")
    gas = GAS_PER_STEP * steps + 1_000
    return {"service_id": service_id, "items": [{
        "payload": "0x" + payload.hex(), "refine_gas_limit": gas,
        "accumulate_gas_limit": 1_000}]}
