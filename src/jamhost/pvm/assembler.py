"""A small PVM assembler: builds generic program blobs (GP eq. A.2) for tests and benchmarks.

    asm = Assembler()
    asm.op("load_imm", a=0, x=10)
    asm.label("loop")
    asm.op("add_imm_64", a=0, b=0, x=-1)
    asm.op("branch_ne_imm", a=0, x=0, target="loop")
    asm.op("trap")
    blob = asm.blob()

Immediates are given as Python ints (negative allowed) and encoded in the fewest octets
whose sign extension (GP eq. A.16) gives them back; offsets to labels use 4 octets.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from jamhost.pvm.opcodes import ARG_KIND, OPCODES, ArgKind

M64 = (1 << 64) - 1


def encode_natural(x: int) -> bytes:
    """GP §C.1 variable-length natural encoding."""
    if x < 0:
        raise ValueError("natural expected")
    if x < 0x80:
        return bytes([x])
    for n in range(1, 8):
        if x < 1 << (7 * (n + 1)):
            prefix = (0xFF << (8 - n)) & 0xFF
            return bytes([prefix | (x >> (8 * n))]) + (x & ((1 << (8 * n)) - 1)).to_bytes(
                n, "little"
            )
    return b"\xff" + x.to_bytes(8, "little")


def encode_imm(value: int) -> bytes:
    """Shortest little-endian octets whose GP sign extension is `value` (mod 2^64)."""
    v = value & M64
    for n in range(0, 5):
        if n == 0:
            if v == 0:
                return b""
            continue
        low = v & ((1 << (8 * n)) - 1)
        ext = low + ((1 << 64) - (1 << (8 * n)) if low >> (8 * n - 1) else 0)
        if ext == v:
            return low.to_bytes(n, "little")
    raise ValueError(f"immediate {value:#x} does not fit a sign-extended 32-bit value")


def build_blob(code: bytes, bitmask: list[int], jump_table: list[int]) -> bytes:
    """E(|j|) ++ E_1(z) ++ E(|c|) ++ E_z(j) ++ c ++ k (GP eq. A.2)."""
    z = max((max(jump_table).bit_length() + 7) // 8, 1) if jump_table else 0
    out = bytearray(encode_natural(len(jump_table)))
    out.append(z)
    out += encode_natural(len(code))
    for entry in jump_table:
        out += entry.to_bytes(z, "little")
    out += code
    packed = bytearray((len(code) + 7) // 8)
    for i, bit in enumerate(bitmask):
        if bit:
            packed[i >> 3] |= 1 << (i & 7)
    out += packed
    return bytes(out)


@dataclass
class Assembler:
    code: bytearray = field(default_factory=bytearray)
    bitmask: list[int] = field(default_factory=list)
    labels: dict[str, int] = field(default_factory=dict)
    jump_table: list[str | int] = field(default_factory=list)
    _fixups: list[tuple[int, int, str]] = field(default_factory=list)

    @property
    def pc(self) -> int:
        return len(self.code)

    def label(self, name: str) -> None:
        self.labels[name] = self.pc

    def jump_entry(self, target: str | int) -> int:
        """Add a jump-table entry; returns the dynamic address ((index + 1) * 2) for it."""
        self.jump_table.append(target)
        return len(self.jump_table) * 2

    def raw(self, data: bytes, starts: list[int] | None = None) -> None:
        """Append raw octets; `starts` marks which of them begin instructions."""
        marks = starts if starts is not None else [1] + [0] * (len(data) - 1)
        self.code += data
        self.bitmask += marks

    def _offset(self, pc: int, target: str | int) -> bytes:
        if isinstance(target, int):
            return ((target - pc) & 0xFFFFFFFF).to_bytes(4, "little")
        self._fixups.append((pc, len(self.code), target))
        return b"\0\0\0\0"

    def op(  # noqa: PLR0913 - mirrors the GP argument names
        self,
        name: str,
        *,
        a: int = 0,
        b: int = 0,
        d: int = 0,
        x: int = 0,
        y: int = 0,
        target: str | int | None = None,
    ) -> int:
        """Emit one instruction; returns its pc."""
        op = OPCODES[name]
        kind = ARG_KIND[op]
        pc = self.pc
        buf = bytearray([op])
        self.code += buf
        self.bitmask.append(1)
        body = bytearray()
        if kind is ArgKind.NONE:
            pass
        elif kind is ArgKind.ONE_IMM:
            body += encode_imm(x)
        elif kind is ArgKind.REG_EXT_IMM:
            body += bytes([a]) + (x & M64).to_bytes(8, "little")
        elif kind is ArgKind.TWO_IMM:
            ix = encode_imm(x)
            body += bytes([len(ix)]) + ix + encode_imm(y)
        elif kind is ArgKind.OFFSET:
            self.code += self._offset(pc, target if target is not None else x)
            self.bitmask += [0] * 4
        elif kind is ArgKind.REG_IMM:
            body += bytes([a]) + encode_imm(x)
        elif kind is ArgKind.REG_TWO_IMM:
            ix = encode_imm(x)
            body += bytes([a | len(ix) << 4]) + ix + encode_imm(y)
        elif kind is ArgKind.REG_IMM_OFFSET:
            ix = encode_imm(x)
            self.code += bytes([a | len(ix) << 4]) + ix
            self.bitmask += [0] * (1 + len(ix))
            self.code += self._offset(pc, target if target is not None else y)
            self.bitmask += [0] * 4
        elif kind is ArgKind.TWO_REG:
            body += bytes([d | a << 4])
        elif kind is ArgKind.TWO_REG_IMM:
            body += bytes([a | b << 4]) + encode_imm(x)
        elif kind is ArgKind.TWO_REG_OFFSET:
            self.code += bytes([a | b << 4])
            self.bitmask.append(0)
            self.code += self._offset(pc, target if target is not None else x)
            self.bitmask += [0] * 4
        elif kind is ArgKind.TWO_REG_TWO_IMM:
            ix = encode_imm(x)
            body += bytes([a | b << 4, len(ix)]) + ix + encode_imm(y)
        else:  # THREE_REG
            body += bytes([a | b << 4, d])
        self.code += body
        self.bitmask += [0] * len(body)
        return pc

    def blob(self) -> bytes:
        code = bytearray(self.code)
        for pc, at, name in self._fixups:
            code[at : at + 4] = ((self.labels[name] - pc) & 0xFFFFFFFF).to_bytes(4, "little")
        table = [t if isinstance(t, int) else self.labels[t] for t in self.jump_table]
        return build_blob(bytes(code), self.bitmask, table)
