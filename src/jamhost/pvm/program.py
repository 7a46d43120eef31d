"""Program blob decoding: GP 0.7.2 §A.1-A.3 (`deblob`, skip, basic blocks ϖ).

A program blob is `E(|j|) ++ E_1(z) ++ E(|c|) ++ E_z(j) ++ c ++ k` where `j` is the dynamic
jump table, `c` the instruction data and `k` the opcode bitmask (|k| = |c| bits, packed LSB
first). Decoding happens once per blob; `Program` then answers every static question the
interpreter and the block compiler ask (opcode at a pc, skip ℓ, immediates, block starts).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import lru_cache

from jamhost.pvm.opcodes import (
    ARG_KIND,
    TERMINATORS,
    ArgKind,
)

MAX_SKIP = 24
"""GP §A.2: skip(i) is capped at 24."""


class ProgramError(ValueError):
    """The blob is not a valid `deblob` input (GP eq. A.2 yields ∇); running it panics."""


def decode_natural(data: bytes, offset: int) -> tuple[int, int]:
    """GP §C.1 variable-length natural: returns (value, new offset)."""
    if offset >= len(data):
        raise ProgramError("truncated natural")
    first = data[offset]
    # Number of leading one bits in the first octet gives the count of extra octets.
    n = 0
    while n < 8 and first & (0x80 >> n):
        n += 1
    if offset + 1 + n > len(data):
        raise ProgramError("truncated natural")
    tail = int.from_bytes(data[offset + 1 : offset + 1 + n], "little")
    if n == 8:
        return tail, offset + 9
    high = first & ((1 << (7 - n)) - 1)
    return tail + (high << (8 * n)), offset + 1 + n


@dataclass(frozen=True, slots=True)
class Instruction:
    """One decoded instruction at `pc` (GP §A.5 argument conventions).

    `a`, `b`, `d` are register indices (r_A, r_B, r_D, already clamped to 12); `x`, `y` are the
    immediates ν_X, ν_Y as unsigned 64-bit values (sign-extended per GP eq. A.16), except for
    offsets, which are absolute target pcs (may be negative or out of range: then invalid).
    """

    pc: int
    opcode: int
    skip: int
    a: int = 0
    b: int = 0
    d: int = 0
    x: int = 0
    y: int = 0

    @property
    def next_pc(self) -> int:
        return self.pc + 1 + self.skip


def _sext(value: int, n: int) -> int:
    """GP eq. A.16 X_n: sign-extend an n-octet value to 64 bits (unsigned representation)."""
    if n == 0:
        return 0
    if value >> (8 * n - 1):
        return value + (1 << 64) - (1 << (8 * n))
    return value


def _signed(value: int, n: int) -> int:
    """GP eq. A.10 Z_n."""
    if n == 0:
        return 0
    return value - (1 << (8 * n)) if value >> (8 * n - 1) else value


@dataclass(eq=False)
class Program:
    """A decoded program (c, k, j) plus derived tables. Immutable once built."""

    code: bytes
    bitmask: bytes  # one octet (0 or 1) per code octet: k_n
    jump_table: tuple[int, ...]
    blob_hash: bytes = b""
    _instructions: dict[int, Instruction] = field(default_factory=dict, repr=False)
    cache: dict[str, object] = field(default_factory=dict, repr=False)
    """Per-program derived data owned by execution engines (e.g. compiled blocks)."""
    _block_starts: frozenset[int] | None = field(default=None, repr=False)

    def is_instruction_start(self, pc: int) -> bool:
        return 0 <= pc < len(self.code) and self.bitmask[pc] == 1

    def opcode(self, pc: int) -> int:
        """GP eq. A.19 opcode(n): c_n if k_n = 1 and c_n ∈ U, else 0 (trap)."""
        if 0 <= pc < len(self.code) and self.bitmask[pc] == 1:
            op = self.code[pc]
            return op if op in ARG_KIND else 0
        return 0

    def skip(self, pc: int) -> int:
        """GP eq. A.3: distance (minus one) to the next set bit of k ++ [1, 1, ...], max 24."""
        k = self.bitmask
        n = len(k)
        j = 0
        while j < MAX_SKIP:
            i = pc + 1 + j
            if i >= n or k[i] == 1:
                return j
            j += 1
        return MAX_SKIP

    def _zeta(self, start: int, length: int) -> int:
        """E^-1 of ζ_{start..+length}: little-endian, zero-extended past the code (GP eq. A.4)."""
        code = self.code
        if start >= len(code) or length <= 0:
            return 0
        return int.from_bytes(code[start : start + length], "little")

    def _octet(self, i: int) -> int:
        return self.code[i] if 0 <= i < len(self.code) else 0

    def instruction(self, pc: int) -> Instruction:
        """Decode the instruction at pc (cached)."""
        ins = self._instructions.get(pc)
        if ins is None:
            ins = self._decode(pc)
            self._instructions[pc] = ins
        return ins

    def _decode(self, pc: int) -> Instruction:
        op = self.opcode(pc)
        ell = self.skip(pc) if pc >= 0 else 0
        kind = ARG_KIND[op]
        o1 = self._octet(pc + 1)
        z = self._zeta
        if kind is ArgKind.NONE:
            return Instruction(pc, op, ell)
        if kind is ArgKind.ONE_IMM:
            lx = min(4, ell)
            return Instruction(pc, op, ell, x=_sext(z(pc + 1, lx), lx))
        if kind is ArgKind.REG_EXT_IMM:
            return Instruction(pc, op, ell, a=min(12, o1 % 16), x=z(pc + 2, 8))
        if kind is ArgKind.TWO_IMM:
            lx = min(4, o1 % 8)
            ly = min(4, max(0, ell - lx - 1))
            return Instruction(
                pc, op, ell, x=_sext(z(pc + 2, lx), lx), y=_sext(z(pc + 2 + lx, ly), ly)
            )
        if kind is ArgKind.OFFSET:
            lx = min(4, ell)
            return Instruction(pc, op, ell, x=pc + _signed(z(pc + 1, lx), lx))
        if kind is ArgKind.REG_IMM:
            lx = min(4, max(0, ell - 1))
            return Instruction(pc, op, ell, a=min(12, o1 % 16), x=_sext(z(pc + 2, lx), lx))
        if kind is ArgKind.REG_TWO_IMM:
            lx = min(4, (o1 // 16) % 8)
            ly = min(4, max(0, ell - lx - 1))
            return Instruction(
                pc,
                op,
                ell,
                a=min(12, o1 % 16),
                x=_sext(z(pc + 2, lx), lx),
                y=_sext(z(pc + 2 + lx, ly), ly),
            )
        if kind is ArgKind.REG_IMM_OFFSET:
            lx = min(4, (o1 // 16) % 8)
            ly = min(4, max(0, ell - lx - 1))
            return Instruction(
                pc,
                op,
                ell,
                a=min(12, o1 % 16),
                x=_sext(z(pc + 2, lx), lx),
                y=pc + _signed(z(pc + 2 + lx, ly), ly),
            )
        if kind is ArgKind.TWO_REG:
            return Instruction(pc, op, ell, d=min(12, o1 % 16), a=min(12, o1 // 16))
        if kind is ArgKind.TWO_REG_IMM:
            lx = min(4, max(0, ell - 1))
            return Instruction(
                pc, op, ell, a=min(12, o1 % 16), b=min(12, o1 // 16), x=_sext(z(pc + 2, lx), lx)
            )
        if kind is ArgKind.TWO_REG_OFFSET:
            lx = min(4, max(0, ell - 1))
            return Instruction(
                pc,
                op,
                ell,
                a=min(12, o1 % 16),
                b=min(12, o1 // 16),
                x=pc + _signed(z(pc + 2, lx), lx),
            )
        if kind is ArgKind.TWO_REG_TWO_IMM:
            lx = min(4, self._octet(pc + 2) % 8)
            ly = min(4, max(0, ell - lx - 2))
            return Instruction(
                pc,
                op,
                ell,
                a=min(12, o1 % 16),
                b=min(12, o1 // 16),
                x=_sext(z(pc + 3, lx), lx),
                y=_sext(z(pc + 3 + lx, ly), ly),
            )
        # THREE_REG
        return Instruction(
            pc,
            op,
            ell,
            a=min(12, o1 % 16),
            b=min(12, o1 // 16),
            d=min(12, self._octet(pc + 2)),
        )

    @property
    def block_starts(self) -> frozenset[int]:
        """GP eq. A.5 ϖ: 0 and every instruction following a terminator, if a valid opcode."""
        if self._block_starts is None:
            code, k = self.code, self.bitmask
            starts = {0}
            for n in range(len(code)):
                if k[n] == 1 and code[n] in TERMINATORS:
                    starts.add(n + 1 + self.skip(n))
            self._block_starts = frozenset(
                s for s in starts if s < len(code) and k[s] == 1 and code[s] in ARG_KIND
            )
        return self._block_starts


def _unpack_bitmask(packed: bytes, n: int) -> bytes:
    out = bytearray(n)
    for i in range(n):
        out[i] = (packed[i >> 3] >> (i & 7)) & 1
    return bytes(out)


def decode_program(blob: bytes) -> Program:
    """GP eq. A.2 deblob. Raises ProgramError when the blob is malformed."""
    blob = bytes(blob)
    jlen, off = decode_natural(blob, 0)
    if off >= len(blob):
        raise ProgramError("truncated jump table entry size")
    z = blob[off]
    off += 1
    clen, off = decode_natural(blob, off)
    if jlen and z == 0:
        # Zero-width entries are legal in the encoding; every entry decodes to 0.
        pass
    jt_end = off + jlen * z
    code_end = jt_end + clen
    mask_len = (clen + 7) // 8
    if code_end + mask_len != len(blob):
        raise ProgramError(
            f"blob length {len(blob)} does not match header (expected {code_end + mask_len})"
        )
    jump_table = tuple(
        int.from_bytes(blob[off + i * z : off + (i + 1) * z], "little") for i in range(jlen)
    )
    code = blob[jt_end:code_end]
    bitmask = _unpack_bitmask(blob[code_end:], clen)
    return Program(code, bitmask, jump_table, hashlib.blake2b(blob, digest_size=32).digest())


@lru_cache(maxsize=256)
def load_program(blob: bytes) -> Program:
    """decode_program with a per-process cache keyed by the blob itself (GP programs are
    content-addressed, so equal blobs are the same program)."""
    return decode_program(blob)
