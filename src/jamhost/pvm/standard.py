"""Standard program initialisation Y (GP 0.7.2 §A.7) and the service code blob (GP §9.2).

Standard program: p = E_3(|o|) ++ E_3(|w|) ++ E_2(z) ++ E_3(s) ++ o ++ w ++ E_4(|c|) ++ c,
with o the read-only data, w the read-write data, z extra heap pages, s the stack size and
c a generic program blob (GP eq. A.2). Service code preimage: E(↕m, c) = E(|m|) ++ m ++ p,
with m the metadata (GP §9.2, a_m / a_c).

Memory layout (GP eq. A.42, Z_Z = 2^16 zone, Z_I = 2^24 input, P/Q round to page/zone):

    [Z_Z, Z_Z + P(|o|))                        o, read-only
    [2Z_Z + Q(|o|), ... + P(|w|) + z·Z_P)       w then zeros, writable (heap start h)
    [2^32 - 2Z_Z - Z_I - P(s), 2^32 - 2Z_Z - Z_I) stack, writable
    [2^32 - Z_Z - Z_I, ... + P(|a|))           arguments, read-only

Registers (GP eq. A.43): ω0 = 2^32 - 2^16 (return to halt), ω1 = stack top, ω7 = argument
address, ω8 = |a|, the rest 0.
"""

from __future__ import annotations

from dataclasses import dataclass

from jamhost.pvm.interface import REGISTER_COUNT
from jamhost.pvm.memory import PAGE_SIZE, Memory
from jamhost.pvm.program import ProgramError, decode_natural

ZONE_SIZE = 1 << 16
"""Z_Z."""
INPUT_SIZE = 1 << 24
"""Z_I: the largest argument blob."""
ADDRESS_SPACE = 1 << 32


def page_round(x: int) -> int:
    """P(x) = Z_P ⌈x / Z_P⌉."""
    return -(-x // PAGE_SIZE) * PAGE_SIZE


def zone_round(x: int) -> int:
    """Q(x) = Z_Z ⌈x / Z_Z⌉."""
    return -(-x // ZONE_SIZE) * ZONE_SIZE


class StandardProgramError(ValueError):
    """Y(p, a) = ∅: the blob does not decode or the layout does not fit (GP eq. A.41)."""


@dataclass(frozen=True, slots=True)
class StandardProgram:
    """The parts of a standard program blob (GP eq. A.41)."""

    ro_data: bytes
    """o"""
    rw_data: bytes
    """w"""
    heap_pages: int
    """z"""
    stack_size: int
    """s"""
    code: bytes
    """c: a generic program blob (deblob form)."""

    @property
    def heap_start(self) -> int:
        """h = 2Z_Z + Q(|o|) (GP §A.5.9, for sbrk)."""
        return 2 * ZONE_SIZE + zone_round(len(self.ro_data))


def split_service_code(preimage: bytes) -> tuple[bytes, memoryview]:
    """GP §9.2: the code preimage is E(↕m, c); returns (metadata m, standard program c).

    c is a view into `preimage`, not a copy: a code blob is up to 4 MB, and it is copied
    once, when `parse_standard_program` takes the generic program out of it."""
    try:
        n, off = decode_natural(preimage, 0)
    except ProgramError as exc:
        raise StandardProgramError("bad metadata length") from exc
    if off + n > len(preimage):
        raise StandardProgramError("metadata longer than the blob")
    return bytes(preimage[off : off + n]), memoryview(preimage)[off + n :]


def parse_standard_program(p: bytes | memoryview) -> StandardProgram:
    """Split p per GP eq. A.41 (first line); raises StandardProgramError when it does not."""
    if len(p) < 11:
        raise StandardProgramError("standard program header truncated")
    o_len = int.from_bytes(p[0:3], "little")
    w_len = int.from_bytes(p[3:6], "little")
    z = int.from_bytes(p[6:8], "little")
    s = int.from_bytes(p[8:11], "little")
    off = 11
    o = p[off : off + o_len]
    off += o_len
    w = p[off : off + w_len]
    off += w_len
    if len(o) != o_len or len(w) != w_len or off + 4 > len(p):
        raise StandardProgramError("standard program truncated")
    c_len = int.from_bytes(p[off : off + 4], "little")
    off += 4
    if off + c_len != len(p):
        raise StandardProgramError("code length does not match the blob")
    return StandardProgram(bytes(o), bytes(w), z, s, bytes(p[off:]))


def initialise(p: bytes | memoryview, args: bytes) -> tuple[bytes, list[int], Memory]:
    """Y(p, a) (GP eq. A.41-A.43): (program blob c, registers ω, RAM μ).

    Raises StandardProgramError for Y = ∅ (the caller then panics with no gas used, GP Ψ_M).
    """
    sp = parse_standard_program(p)
    if len(args) > INPUT_SIZE:
        raise StandardProgramError("arguments larger than Z_I")
    o_len, w_len = len(sp.ro_data), len(sp.rw_data)
    total = (
        5 * ZONE_SIZE
        + zone_round(o_len)
        + zone_round(w_len + sp.heap_pages * PAGE_SIZE)
        + zone_round(sp.stack_size)
        + INPUT_SIZE
    )
    if total > ADDRESS_SPACE:
        raise StandardProgramError("memory layout exceeds the 32-bit address space")
    mem = Memory()
    # Read-only data.
    if o_len:
        mem.map(ZONE_SIZE, page_round(o_len), writable=False)
        mem.load(ZONE_SIZE, sp.ro_data)
    # Read-write data and the initial heap pages.
    rw_start = sp.heap_start
    rw_len = page_round(w_len) + sp.heap_pages * PAGE_SIZE
    if rw_len:
        mem.map(rw_start, rw_len, writable=True)
        mem.load(rw_start, sp.rw_data)
    mem.heap_top = rw_start + rw_len
    # Stack.
    stack_top = ADDRESS_SPACE - 2 * ZONE_SIZE - INPUT_SIZE
    stack_len = page_round(sp.stack_size)
    if stack_len:
        mem.map(stack_top - stack_len, stack_len, writable=True)
    # Arguments.
    args_start = ADDRESS_SPACE - ZONE_SIZE - INPUT_SIZE
    if args:
        mem.map(args_start, page_round(len(args)), writable=False)
        mem.load(args_start, bytes(args))
    regs = [0] * REGISTER_COUNT
    regs[0] = ADDRESS_SPACE - ZONE_SIZE
    regs[1] = stack_top
    regs[7] = args_start
    regs[8] = len(args)
    return sp.code, regs, mem


def encode_standard_program(sp: StandardProgram) -> bytes:
    """Inverse of parse_standard_program (GP eq. A.41, first line)."""
    return (
        len(sp.ro_data).to_bytes(3, "little")
        + len(sp.rw_data).to_bytes(3, "little")
        + sp.heap_pages.to_bytes(2, "little")
        + sp.stack_size.to_bytes(3, "little")
        + sp.ro_data
        + sp.rw_data
        + len(sp.code).to_bytes(4, "little")
        + sp.code
    )
