"""Program blob decoding: GP 0.7.2 §A.1-A.3 (`deblob`, skip, basic blocks ϖ).

A program blob is `E(|j|) ++ E_1(z) ++ E(|c|) ++ E_z(j) ++ c ++ k` where `j` is the dynamic
jump table, `c` the instruction data and `k` the opcode bitmask (|k| = |c| bits, packed LSB
first). Decoding a blob costs bytes-level operations only; `Program` then answers every static
question the interpreter and the block compiler ask (opcode at a pc, skip ℓ, immediates, is
a pc a block start) on demand, so loading a large blob costs CPU at memory speed and what
never runs is never decoded.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from jamhost.pvm.cache import DEFAULT_PROGRAM_CACHE_BYTES, ByteBudgetCache
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


@dataclass(slots=True, eq=False)
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


DECODE_MEMO_ENTRIES = 32_768
"""Decoded instructions a program keeps (about 8 MiB at most)."""
DECODED_ENTRY_BYTES = 256
"""What one memoized instruction costs: the object, its ints, the dict entry."""


class JumpMap(dict[int, int]):
    """GP eq. A.18's j lookup for djump: address (i+1)·Z_A -> j_i when j_i ∈ ϖ, else -1.

    Resolved on demand from the raw table (an entry count may be huge for zero-width
    entries, which cost no blob octets), and memoized only for the entries that exist, so it
    never holds more than the table itself."""

    def __init__(self, program: Program) -> None:
        super().__init__()
        self._program = program

    def __missing__(self, address: int) -> int:
        program = self._program
        index = address // 2 - 1
        if address % 2 or index < 0 or index >= program.jump_count:
            return -1
        target = program.jump_entry(index)
        resolved = target if program.is_block_start(target) else -1
        if program.jump_width:  # bounded by the blob: one entry per z octets
            self[address] = resolved
        return resolved


@dataclass(eq=False)
class Program:
    """A decoded program (c, k, j). Decoding is lazy: what is computed for the whole blob is
    done with bytes-level operations (C speed), the rest per pc when execution reaches it.

    `bitmask` is k unpacked to one octet (0 or 1) per code octet; the jump table stays in its
    encoded form (`jump_raw`, `jump_width` z, `jump_count` |j|). `heat` counts how often each
    pc was entered as a block (capped at 255): blocks are compiled only once hot. `cache` holds
    what execution engines derive (compiled blocks, the jump map); `compiled_bytes` is their
    estimated footprint, which the program cache charges (see `footprint`)."""

    code: bytes
    bitmask: bytes  # one octet (0 or 1) per code octet: k_n
    jump_raw: bytes = b""
    jump_width: int = 0
    jump_count: int = 0
    blob_hash: bytes = b""
    cache: dict[str, object] = field(default_factory=dict, repr=False)
    """Per-program derived data owned by execution engines (e.g. compiled blocks)."""
    heat: bytearray = field(default_factory=bytearray, repr=False)
    compiled_bytes: int = 0
    decoded: dict[int, Instruction] = field(default_factory=dict, repr=False)
    charged: int = 0
    """The footprint the program cache last charged (see `recharge`)."""

    def __post_init__(self) -> None:
        if not self.heat:
            self.heat = bytearray(len(self.code))

    @property
    def jump_table(self) -> tuple[int, ...]:
        """j decoded whole (for tools and tests; execution uses `jump_entry`)."""
        return tuple(self.jump_entry(i) for i in range(self.jump_count))

    def jump_entry(self, index: int) -> int:
        z = self.jump_width
        return int.from_bytes(self.jump_raw[index * z : (index + 1) * z], "little")

    def footprint(self) -> int:
        """Octets this program holds: code, bitmask, heat, jump table, compiled blocks."""
        return (
            len(self.code) + len(self.bitmask) + len(self.heat) + len(self.jump_raw)
            + self.compiled_bytes + DECODED_ENTRY_BYTES * len(self.decoded) + 1024
        )

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
        n = len(self.bitmask)
        i = self.bitmask.find(1, pc + 1, pc + 1 + MAX_SKIP)
        if i >= 0:
            return i - pc - 1
        return max(0, min(MAX_SKIP, n - pc - 1))

    def is_block_start(self, pc: int) -> bool:
        """pc ∈ ϖ (GP eq. A.5): 0 or the instruction after a terminator, if a valid opcode.

        The n with n + 1 + skip(n) = pc is the last set bit of k before pc, at most 25 back,
        so membership is decided in O(1) without computing ϖ for the whole blob."""
        code, k = self.code, self.bitmask
        if not 0 <= pc < len(code) or k[pc] != 1 or code[pc] not in ARG_KIND:
            return False
        if pc == 0:
            return True
        prev = k.rfind(1, max(0, pc - 1 - MAX_SKIP), pc)
        return prev >= 0 and code[prev] in TERMINATORS

    @property
    def block_starts(self) -> frozenset[int]:
        """ϖ whole (for tools and tests: O(|c|); execution uses `is_block_start`)."""
        return frozenset(pc for pc in range(len(self.code)) if self.is_block_start(pc))

    def jump_map(self) -> JumpMap:
        jm = self.cache.get("jump_map")
        if not isinstance(jm, JumpMap):
            jm = self.cache["jump_map"] = JumpMap(self)
        return jm

    def _zeta(self, start: int, length: int) -> int:
        """E^-1 of ζ_{start..+length}: little-endian, zero-extended past the code (GP eq. A.4)."""
        code = self.code
        if start >= len(code) or length <= 0:
            return 0
        return int.from_bytes(code[start : start + length], "little")

    def _octet(self, i: int) -> int:
        return self.code[i] if 0 <= i < len(self.code) else 0

    def instruction(self, pc: int) -> Instruction:
        """The instruction at pc, decoded on first use and memoized in `decoded`, which holds
        at most DECODE_MEMO_ENTRIES (then starts over): what a program holds stays bounded
        whatever its size, and code that runs once costs one decode."""
        ins = self.decoded.get(pc)
        if ins is None:
            if len(self.decoded) >= DECODE_MEMO_ENTRIES:
                self.decoded.clear()
            ins = self.decoded[pc] = self._decode(pc)
        return ins

    def _decode(self, pc: int) -> Instruction:
        # opcode(pc) and skip(pc) inline: cold code pays this once per instruction it runs.
        code, k = self.code, self.bitmask
        n = len(code)
        if 0 <= pc < n and k[pc] == 1:
            op = code[pc]
            if op not in ARG_KIND:
                op = 0
        else:
            op = 0
        if pc >= 0:
            i = k.find(1, pc + 1, pc + 1 + MAX_SKIP)
            ell = i - pc - 1 if i >= 0 else max(0, min(MAX_SKIP, n - pc - 1))
        else:
            ell = 0
        kind = ARG_KIND[op]
        if kind is ArgKind.NONE:
            return Instruction(pc, op, ell)
        o1 = code[pc + 1] if pc + 1 < n else 0
        z = self._zeta
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

_BIT_PLANES = tuple(bytes((v >> j) & 1 for v in range(256)) for j in range(8))
"""For bit j: octet v -> bit j of v. Unpacking k is then 8 `translate`s (C speed)."""


def _unpack_bitmask(packed: bytes, n: int) -> bytes:
    """k packed LSB first -> one octet (0 or 1) per code octet, without a per-bit loop."""
    out = bytearray(len(packed) * 8)
    for j, plane in enumerate(_BIT_PLANES):
        out[j::8] = packed.translate(plane)
    del out[n:]
    return bytes(out)


def decode_program(blob: bytes, blob_hash: bytes | None = None) -> Program:
    """GP eq. A.2 deblob. Raises ProgramError when the blob is malformed.

    O(|blob|) at memory speed: nothing here runs Python code per instruction."""
    blob = bytes(blob)
    jlen, off = decode_natural(blob, 0)
    if off >= len(blob):
        raise ProgramError("truncated jump table entry size")
    z = blob[off]
    off += 1
    clen, off = decode_natural(blob, off)
    # Zero-width entries are legal in the encoding (every entry decodes to 0), so |j| is not
    # bounded by the blob: the table stays encoded and entries are read on demand.
    jt_end = off + jlen * z
    code_end = jt_end + clen
    mask_len = (clen + 7) // 8
    if code_end + mask_len != len(blob):
        raise ProgramError(
            f"blob length {len(blob)} does not match header (expected {code_end + mask_len})"
        )
    code = blob[jt_end:code_end]
    bitmask = _unpack_bitmask(blob[code_end:], clen)
    return Program(
        code,
        bitmask,
        jump_raw=blob[off:jt_end],
        jump_width=z,
        jump_count=jlen,
        blob_hash=blob_hash or hashlib.blake2b(blob, digest_size=32).digest(),
    )


PROGRAM_CACHE_BYTES = DEFAULT_PROGRAM_CACHE_BYTES
"""Budget of the per-process program cache (64 MiB): decoded programs with their compiled
blocks, each charged `Program.footprint()`. Programs are content-addressed, so equal blobs
share one entry; a tenant's large blobs push others out instead of growing the process."""

PROGRAMS: ByteBudgetCache[bytes, Program] = ByteBudgetCache(
    PROGRAM_CACHE_BYTES, Program.footprint
)


def load_program(blob: bytes) -> Program:
    """decode_program through the program cache, keyed by the blob's hash."""
    key = hashlib.blake2b(blob, digest_size=32).digest()
    program = PROGRAMS.get(key)
    if program is None:
        program = decode_program(blob, key)
        PROGRAMS.put(key, program)
        program.charged = program.footprint()
    return program


def recharge(program: Program) -> None:
    """Charge the program cache again for what `program` holds now (blocks compiled and
    instructions decoded since it was put); a no-op when nothing changed (every host call
    ends a run) or the program is no longer cached."""
    size = program.footprint()
    if size != program.charged and PROGRAMS.get(program.blob_hash) is program:
        PROGRAMS.put(program.blob_hash, program)
        program.charged = size
