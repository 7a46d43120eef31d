"""Building blocks for the example services: a program skeleton with the two GP entry points,
macros for the host calls they use, and the GP §9.2 service-code blob.

Register use: ω0 keeps the halt address the standard initialisation put there (GP eq. A.43)
and ω1 the stack pointer; the macros use ω2-ω6 as scratch and ω7-ω12 for host-call
arguments. Every branch target starts a basic block (GP §A.3), so `block()` emits a
`fallthrough` before placing a label.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import count

from jamhost.domain.codec import encode_blob, encode_fixed
from jamhost.engine.constants import HostCall
from jamhost.pvm.assembler import Assembler
from jamhost.pvm.standard import ZONE_SIZE, zone_round

NONE = -1  # 2^64 - 1 as a sign-extended immediate: NONE, and "this service" for read
HEAP_PAGES = 16
_ids: Iterator[int] = count()


@dataclass
class Program:
    """An assembler plus the read-only data it refers to."""

    asm: Assembler = field(default_factory=Assembler)
    ro: bytearray = field(default_factory=bytearray)

    def const(self, data: bytes) -> int:
        """Place `data` in the read-only segment; returns its address (GP eq. A.42: Z_Z)."""
        address = ZONE_SIZE + len(self.ro)
        self.ro += data
        return address

    @property
    def heap(self) -> int:
        """First writable address: 2·Z_Z + Q(|o|) (GP eq. A.42). Valid once all consts are
        placed (callers place them first)."""
        return 2 * ZONE_SIZE + zone_round(len(self.ro))

    def op(self, name: str, **kw: int | str) -> None:
        # type-ignore reason: str only for `target`; the assembler checks each argument's kind
        self.asm.op(name, **kw)  # type: ignore[arg-type]

    def block(self, label: str) -> None:
        """Start a basic block named `label` (after a fallthrough)."""
        self.asm.op("fallthrough")
        self.asm.label(label)

    def fresh(self, stem: str) -> str:
        return f"{stem}_{next(_ids)}"

    def ecalli(self, call: HostCall) -> None:
        self.asm.op("ecalli", x=int(call))

    def halt(self, out: int | None = None, length: int = 0) -> None:
        """Halt with output μ[out..+length] (ω7, ω8), or with no output."""
        self.op("load_imm", a=7, x=out or 0)
        self.op("load_imm", a=8, x=length)
        self.op("jump_ind", a=0, x=0)

    def entry_points(self, refine: str, accumulate: str) -> None:
        """pc 0: jump to refine; pc 5: jump to accumulate (GP Ψ_R at 0, Ψ_A at 5)."""
        self.op("jump", target=refine)
        assert self.asm.pc == 5
        self.op("jump", target=accumulate)

    def decode_natural(self, ptr: int, out: int) -> None:
        """out = the GP natural E⁻¹ at μ[ptr] (GP §C.1.1); ptr moves past it. Uses ω2-ω4."""
        n, t, u = 2, 3, 4
        done, loop = self.fresh("nat_done"), self.fresh("nat_loop")
        self.op("load_ind_u8", a=out, b=ptr, x=0)
        self.op("add_imm_64", a=ptr, b=ptr, x=1)
        self.op("branch_lt_u_imm", a=out, x=0x80, target=done)
        # l = leading ones of the first octet = number of octets that follow.
        self.op("xor_imm", a=t, b=out, x=0xFF)
        self.op("leading_zero_bits_64", d=n, a=t)
        self.op("add_imm_64", a=n, b=n, x=-56)
        # high part: (octet & (0xff >> (l + 1))) << 8l
        self.op("add_imm_64", a=t, b=n, x=1)
        self.op("load_imm", a=u, x=0xFF)
        self.op("shlo_r_64", d=u, a=u, b=t)
        self.op("and", d=out, a=out, b=u)
        self.op("shlo_l_imm_64", a=t, b=n, x=3)
        self.op("shlo_l_64", d=out, a=out, b=t)
        # low part: the next l octets, little-endian.
        self.op("load_imm", a=t, x=0)
        self.block(loop)
        self.op("branch_eq_imm", a=n, x=0, target=done)
        self.op("load_ind_u8", a=u, b=ptr, x=0)
        self.op("shlo_l_64", d=u, a=u, b=t)
        self.op("or", d=out, a=out, b=u)
        self.op("add_imm_64", a=ptr, b=ptr, x=1)
        self.op("add_imm_64", a=t, b=t, x=8)
        self.op("add_imm_64", a=n, b=n, x=-1)
        self.op("jump", target=loop)
        self.block(done)

    def refine_payload(self, ptr: int, length: int) -> None:
        """From the refine arguments E(c, i, s, ↕y, H(p)) at ω7: ptr, length of y."""
        self.op("move_reg", d=ptr, a=7)
        for _ in range(3):  # c, i, s
            self.decode_natural(ptr, length)
        self.decode_natural(ptr, length)  # |y|

    def fetch_input(self, out: int, index: int, size: int) -> None:
        """fetch(ω10 = 15, ω11 = ω[index]) of up to `size` octets to `out`; ω7 = its length or
        NONE (GP 0.7.2 Ω_Y: one accumulation input)."""
        self.op("load_imm", a=7, x=out)
        self.op("load_imm", a=8, x=0)
        self.op("load_imm", a=9, x=size)
        self.op("load_imm", a=10, x=15)
        self.op("move_reg", d=11, a=index)
        self.ecalli(HostCall.FETCH)

    def operand_output(self, ptr: int, length: int, skip: str) -> None:
        """Given ptr at an encoded accumulation input (GP 0.7.2 §C.2: 0 ++ E_U(o)), move ptr
        to the output blob of an ok operand and set `length`; jump to `skip` for a transfer
        or an error result. Uses ω2-ω4."""
        self.op("load_ind_u8", a=length, b=ptr, x=0)
        self.op("branch_ne_imm", a=length, x=0, target=skip)  # 1: a deferred transfer
        self.op("add_imm_64", a=ptr, b=ptr, x=1 + 4 * 32)  # p, e, a, y
        self.decode_natural(ptr, length)  # g
        self.op("load_ind_u8", a=length, b=ptr, x=0)
        self.op("add_imm_64", a=ptr, b=ptr, x=1)
        self.op("branch_ne_imm", a=length, x=0, target=skip)  # an error: no output
        self.decode_natural(ptr, length)  # |output|

    def storage_write(self, key: int, key_len: int, value: int, value_len: int) -> None:
        """write (GP Ω_W): ω7..ω10 = key address/length, value address/length (registers)."""
        self.op("move_reg", d=7, a=key)
        self.op("move_reg", d=8, a=key_len)
        self.op("move_reg", d=9, a=value)
        self.op("move_reg", d=10, a=value_len)
        self.ecalli(HostCall.WRITE)

    def service_code(self, metadata: bytes, stack_size: int = 4096) -> bytes:
        """E(↕m, p) with p the standard program (GP §9.2, eq. A.41)."""
        p = bytearray()
        encode_fixed(p, len(self.ro), 3)
        encode_fixed(p, 0, 3)
        encode_fixed(p, HEAP_PAGES, 2)
        encode_fixed(p, stack_size, 3)
        p += self.ro
        code = self.asm.blob()
        encode_fixed(p, len(code), 4)
        p += code
        out = bytearray()
        encode_blob(out, metadata)
        return bytes(out + p)


#: Where a `script` program's scratch buffer starts (its read-only data is never empty).
SCRATCH = 3 * ZONE_SIZE + 0x1000
Arg = int | bytes | tuple[str, int]


def script(steps: list[tuple[int, dict[int, Arg]]], *, end: str = "halt") -> bytes:
    """A service whose refine and accumulate both make the host calls `steps` in order.

    Each step is (host-call id, {register: value}); a value is an int, a bytes constant
    (passed as its address), or ("scratch", offset) for SCRATCH + offset (writable). After
    each call ω7 and ω8 are saved; the program then halts with output E_8(ω7) ++ E_8(ω8) per
    step (`end="halt"`) or panics (`end="trap"`). For tests and experiments."""
    prog = Program()
    resolved: list[tuple[int, dict[int, int]]] = []
    for call, regs in steps:
        values: dict[int, int] = {}
        for reg, value in regs.items():
            if isinstance(value, bytes):
                values[reg] = prog.const(value)
            elif isinstance(value, tuple):
                values[reg] = SCRATCH + value[1]
            else:
                values[reg] = value
        resolved.append((call, values))
    prog.const(b"\0")
    assert prog.heap == 3 * ZONE_SIZE
    results = prog.heap
    prog.entry_points("main", "main")
    prog.block("main")
    for i, (call, values) in enumerate(resolved):
        for reg, value in values.items():
            prog.op("load_imm_64", a=reg, x=value)
        prog.op("ecalli", x=call)
        prog.op("load_imm", a=2, x=results + 16 * i)
        prog.op("store_ind_u64", a=7, b=2, x=0)
        prog.op("store_ind_u64", a=8, b=2, x=8)
    if end == "trap":
        prog.op("trap")
    else:
        prog.halt(results, 16 * len(resolved))
    return prog.service_code(b"jamhost-script")
