"""Instruction semantics, GP 0.7.2 §A.5 tables, as Python source fragments.

Every instruction is translated to a few lines of Python operating on a register list `r`
(unsigned 64-bit ints), the readable/writable page dicts `rp`/`wp` and the `Memory` `mem`.
The same fragments serve both execution paths: compiler.py joins the fragments of a whole
basic block into one function (the fast path), and also wraps a single instruction into a
function (the step path). Keeping one definition per instruction keeps the paths in step.

A terminator fragment ends in `return <int>`: a next pc (>= 0) or an exit code from
`exit_code` (< 0). Memory instructions are a single line each, so a fault raised inside a
block is attributed to its instruction through the traceback line number.
"""

from __future__ import annotations

from collections.abc import Callable

from jamhost.pvm import memory as _mem
from jamhost.pvm.opcodes import NAMES, TERMINATORS
from jamhost.pvm.program import Instruction, Program

M64 = 0xFFFFFFFFFFFFFFFF
M32 = 0xFFFFFFFF
SIGN64 = 0x8000000000000000
HALT_ADDRESS = 0xFFFF0000
"""2^32 - 2^16: a dynamic jump here halts (GP eq. A.18)."""
JUMP_ALIGNMENT = 2
"""Z_A (GP §A.3)."""

EXIT_HALT = 0
EXIT_PANIC = 1
EXIT_HOST = 2


def exit_code(kind: int, pc: int) -> int:
    """Encode an exit of `kind` at instruction `pc` as a negative int returned by a block."""
    return -((pc << 2) | kind) - 1


def decode_exit(code: int) -> tuple[int, int]:
    """Inverse of exit_code: (kind, pc)."""
    v = -code - 1
    return v & 3, v >> 2


# --- helpers available to generated code ---------------------------------------------------


def _s64(x: int) -> int:
    return (x ^ SIGN64) - SIGN64


def _s32(x: int) -> int:
    return ((x & M32) ^ 0x80000000) - 0x80000000


def _sx32(x: int) -> int:
    return (((x & M32) ^ 0x80000000) + 0xFFFFFFFF80000000) & M64


def _div_u_32(a: int, b: int) -> int:
    b &= M32
    return M64 if b == 0 else _sx32((a & M32) // b)


def _div_s_32(a: int, b: int) -> int:
    a, b = _s32(a), _s32(b)
    if b == 0:
        return M64
    if a == -(1 << 31) and b == -1:
        return a & M64
    q = abs(a) // abs(b)
    return (-q if (a < 0) != (b < 0) else q) & M64


def _rem_u_32(a: int, b: int) -> int:
    b &= M32
    return _sx32(a) if b == 0 else _sx32((a & M32) % b)


def _rem_s_32(a: int, b: int) -> int:
    a, b = _s32(a), _s32(b)
    if a == -(1 << 31) and b == -1:
        return 0
    if b == 0:
        return a & M64
    m = abs(a) % abs(b)
    return (-m if a < 0 else m) & M64


def _div_u_64(a: int, b: int) -> int:
    return M64 if b == 0 else a // b


def _div_s_64(a: int, b: int) -> int:
    if b == 0:
        return M64
    sa, sb = _s64(a), _s64(b)
    if sa == -(1 << 63) and sb == -1:
        return a
    q = abs(sa) // abs(sb)
    return (-q if (sa < 0) != (sb < 0) else q) & M64


def _rem_u_64(a: int, b: int) -> int:
    return a if b == 0 else a % b


def _rem_s_64(a: int, b: int) -> int:
    sa, sb = _s64(a), _s64(b)
    if sa == -(1 << 63) and sb == -1:
        return 0
    if sb == 0:
        return a
    m = abs(sa) % abs(sb)
    return (-m if sa < 0 else m) & M64


def _ctz64(x: int) -> int:
    return (x & -x).bit_length() - 1 if x else 64


def _ctz32(x: int) -> int:
    x &= M32
    return (x & -x).bit_length() - 1 if x else 32


def _rotr64(x: int, s: int) -> int:
    s &= 63
    return ((x >> s) | (x << (64 - s))) & M64 if s else x


def _rotr32(x: int, s: int) -> int:
    x &= M32
    s &= 31
    return _sx32((x >> s) | (x << (32 - s)))


def _rotl64(x: int, s: int) -> int:
    return _rotr64(x, (64 - (s & 63)) & 63)


def _rotl32(x: int, s: int) -> int:
    return _rotr32(x, (32 - (s & 31)) & 31)


def _rev(x: int) -> int:
    return int.from_bytes(x.to_bytes(8, "little"), "big")


def _sbrk(mem: _mem.Memory, size: int) -> int:
    return mem.sbrk(size)


NAMESPACE: dict[str, object] = {
    "LD8": _mem.ld_u8,
    "LD16": _mem.ld_u16,
    "LD32": _mem.ld_u32,
    "LD64": _mem.ld_u64,
    "ST8": _mem.st_u8,
    "ST16": _mem.st_u16,
    "ST32": _mem.st_u32,
    "ST64": _mem.st_u64,
    "DIVU32": _div_u_32,
    "DIVS32": _div_s_32,
    "REMU32": _rem_u_32,
    "REMS32": _rem_s_32,
    "DIVU64": _div_u_64,
    "DIVS64": _div_s_64,
    "REMU64": _rem_u_64,
    "REMS64": _rem_s_64,
    "CTZ64": _ctz64,
    "CTZ32": _ctz32,
    "ROTR64": _rotr64,
    "ROTR32": _rotr32,
    "ROTL64": _rotl64,
    "ROTL32": _rotl32,
    "REV": _rev,
    "SBRK": _sbrk,
    "U16": _mem._U16.unpack_from,
    "U32": _mem._U32.unpack_from,
    "U64": _mem._U64.unpack_from,
    "P16": _mem._U16.pack_into,
    "P32": _mem._U32.pack_into,
    "P64": _mem._U64.pack_into,
    "P8": _mem._U8.pack_into,
}
"""Globals of every generated function (plus `JT`, the program's dynamic jump map)."""


# --- source-fragment builders ------------------------------------------------------------


def _sx32e(e: str) -> str:
    """X_4 of (e mod 2^32) as an unsigned 64-bit value."""
    return f"(((({e}) & 0xFFFFFFFF) ^ 0x80000000) + 0xFFFFFFFF80000000) & 0xFFFFFFFFFFFFFFFF"


def _si32e(e: str) -> str:
    """Z_4 of (e mod 2^32) as a Python int."""
    return f"(((({e}) & 0xFFFFFFFF) ^ 0x80000000) - 0x80000000)"


def _s64e(e: str) -> str:
    return f"((({e}) ^ 0x8000000000000000) - 0x8000000000000000)"


def _sx(e: str, bits: int) -> str:
    """Sign-extend an expression already `bits` wide to 64 bits."""
    sign = 1 << (bits - 1)
    return f"((({e}) ^ {sign}) + {(1 << 64) - sign}) & 0xFFFFFFFFFFFFFFFF"


def _signed_const(x: int) -> int | str:
    if not isinstance(x, int):  # a Sym: the same value, computed at run time
        return _s64e(f"{x}")
    return x - (1 << 64) if x & SIGN64 else x


class BlockContext:
    """What fragments need to know about the program: valid targets and the jump map."""

    def __init__(self, program: Program) -> None:
        self.program = program
        self.jump_map = program.jump_map()

    def branch_target(self, target: int, pc: int) -> int:
        """GP eq. A.17 branch(b, ⊤): b if b ∈ ϖ, else panic at pc."""
        if self.program.is_block_start(target):
            return target
        return exit_code(EXIT_PANIC, pc)


class Sym:
    """A symbolic operand: emitting an instruction whose fields are `Sym`s gives the source of
    a handler generic in those fields (compiler.step_handler), from the same fragments as
    compiled blocks. Arithmetic on a Sym builds the expression it stands for."""

    __slots__ = ("expr",)

    def __init__(self, expr: str) -> None:
        self.expr = expr

    def __str__(self) -> str:
        return self.expr

    def __format__(self, spec: str) -> str:
        return self.expr

    def _op(self, op: str, other: object) -> Sym:
        return Sym(f"({self.expr} {op} {other})")

    def _rop(self, op: str, other: object) -> Sym:
        return Sym(f"({other} {op} {self.expr})")

    def __and__(self, o: object) -> Sym:
        return self._op("&", o)

    def __or__(self, o: object) -> Sym:
        return self._op("|", o)

    def __xor__(self, o: object) -> Sym:
        return self._op("^", o)

    def __mod__(self, o: object) -> Sym:
        return self._op("%", o)

    def __add__(self, o: object) -> Sym:
        return self._op("+", o)

    def __radd__(self, o: object) -> Sym:
        return self._rop("+", o)

    def __sub__(self, o: object) -> Sym:
        return self._op("-", o)

    def __lshift__(self, o: object) -> Sym:
        return self._op("<<", o)

    def __neg__(self) -> Sym:
        return Sym(f"(-{self.expr})")


class SymContext:
    """BlockContext for symbolic instructions: branch validity is checked at run time by the
    program's `BT` (its BlockContext.branch_target)."""

    def branch_target(self, target: object, pc: object) -> Sym:
        return Sym(f"BT({target}, {pc})")


def _djump(addr_expr: str, pc: int) -> list[str]:
    """GP eq. A.18 djump(a); JT answers -1 for an address that is not a valid entry."""
    return [
        f"t = {addr_expr}",
        f"if t == {HALT_ADDRESS}: return {exit_code(EXIT_HALT, pc)}",
        "t = JT[t]",
        f"return t if t >= 0 else {exit_code(EXIT_PANIC, pc)}",
    ]


_LOADS = {
    52: ("LD8", 0),
    53: ("LD8", 8),
    54: ("LD16", 0),
    55: ("LD16", 16),
    56: ("LD32", 0),
    57: ("LD32", 32),
    58: ("LD64", 0),
}
_IND_LOADS = {124 + i: v for i, v in enumerate(_LOADS.values())}
_STORE_FN = {0: "ST8", 1: "ST16", 2: "ST32", 3: "ST64"}
_STORE_MASK = {0: 0xFF, 1: 0xFFFF, 2: M32, 3: M64}


_WIDTH = {"LD8": 1, "LD16": 2, "LD32": 4, "LD64": 8}
_UNPACK = {2: "U16", 4: "U32", 8: "U64"}
_PACK = {1: "P8", 2: "P16", 4: "P32", 8: "P64"}

# Inline forms (fast path): the common case -- an access inside one mapped page -- costs a
# dict lookup and a struct call; anything else falls to the helper, which raises or crosses
# pages. Pages below 2^16 are never mapped, so a hit is never a low address. One source line
# per load (and the store's lines all belong to it), so faults map to the instruction.


def _load(fn: str, sign_bits: int, addr: str, dest: int, inline: bool = False) -> list[str]:
    if not inline:
        value = f"{fn}(rp, {addr})"
        return [f"r[{dest}] = {_sx(value, sign_bits) if sign_bits else value}"]
    n = _WIDTH[fn]
    if n == 1:
        value = f"(p[a & 4095] if p is not None else {fn}(rp, a))"
    else:
        value = (
            f"({_UNPACK[n]}(p, a & 4095)[0] if p is not None and a & 4095 <= {4096 - n} "
            f"else {fn}(rp, a))"
        )
    if sign_bits:
        value = _sx(value, sign_bits)
    return [f"a = {addr}; p = rp.get(a >> 12); r[{dest}] = {value}"]


def _store(width: int, addr: str, value: str, inline: bool = False) -> list[str]:
    fn = _STORE_FN[width]
    if not inline:
        return [f"{fn}(wp, {addr}, {value})"]
    n = 1 << width
    return [
        f"a = {addr}; p = wp.get(a >> 12)",
        f"if p is not None and a & 4095 <= {4096 - n}: "
        f"{_PACK[n]}(p, a & 4095, {value if n == 8 else f'({value}) & {_STORE_MASK[width]}'})",
        f"else: {fn}(wp, a, {value})",
    ]


_BRANCH_IMM: dict[int, Callable[[str, int], str]] = {
    81: lambda ra, x: f"{ra} == {x}",
    82: lambda ra, x: f"{ra} != {x}",
    83: lambda ra, x: f"{ra} < {x}",
    84: lambda ra, x: f"{ra} <= {x}",
    85: lambda ra, x: f"{ra} >= {x}",
    86: lambda ra, x: f"{ra} > {x}",
    87: lambda ra, x: f"({ra} ^ 0x8000000000000000) < {x ^ SIGN64}",
    88: lambda ra, x: f"({ra} ^ 0x8000000000000000) <= {x ^ SIGN64}",
    89: lambda ra, x: f"({ra} ^ 0x8000000000000000) >= {x ^ SIGN64}",
    90: lambda ra, x: f"({ra} ^ 0x8000000000000000) > {x ^ SIGN64}",
}

_BRANCH_REG: dict[int, Callable[[str, str], str]] = {
    170: lambda a, b: f"{a} == {b}",
    171: lambda a, b: f"{a} != {b}",
    172: lambda a, b: f"{a} < {b}",
    173: lambda a, b: f"({a} ^ 0x8000000000000000) < ({b} ^ 0x8000000000000000)",
    174: lambda a, b: f"{a} >= {b}",
    175: lambda a, b: f"({a} ^ 0x8000000000000000) >= ({b} ^ 0x8000000000000000)",
}


def _two_reg_imm(op: int, a: int, b: int, x: int) -> list[str]:
    """GP §A.5.10 (opcodes 131-161); r[a] is the destination, r[b] the operand."""
    ra, rb = f"r[{a}]", f"r[{b}]"
    sx = _signed_const(x)
    s32, s64 = x % 32, x % 64
    exprs: dict[int, str] = {
        131: _sx32e(f"{rb} + {x & M32}"),
        132: f"{rb} & {x}",
        133: f"{rb} ^ {x}",
        134: f"{rb} | {x}",
        135: _sx32e(f"({rb} & 0xFFFFFFFF) * {x & M32}"),
        136: f"1 if {rb} < {x} else 0",
        137: f"1 if ({rb} ^ 0x8000000000000000) < {x ^ SIGN64} else 0",
        138: _sx32e(f"{rb} << {s32}"),
        139: _sx32e(f"({rb} & 0xFFFFFFFF) >> {s32}"),
        140: f"({_si32e(rb)} >> {s32}) & 0xFFFFFFFFFFFFFFFF",
        141: _sx32e(f"{x & M32} - {rb}"),
        142: f"1 if {rb} > {x} else 0",
        143: f"1 if ({rb} ^ 0x8000000000000000) > {x ^ SIGN64} else 0",
        144: _sx32e(f"{x & M32} << ({rb} & 31)"),
        145: _sx32e(f"{x & M32} >> ({rb} & 31)"),
        146: f"({((x & M32) ^ 0x80000000) - 0x80000000} >> ({rb} & 31)) & 0xFFFFFFFFFFFFFFFF",
        149: f"({rb} + {x}) & 0xFFFFFFFFFFFFFFFF",
        150: f"({rb} * {x}) & 0xFFFFFFFFFFFFFFFF",
        151: f"({rb} << {s64}) & 0xFFFFFFFFFFFFFFFF",
        152: f"{rb} >> {s64}",
        153: f"({_s64e(rb)} >> {s64}) & 0xFFFFFFFFFFFFFFFF",
        154: f"({x} - {rb}) & 0xFFFFFFFFFFFFFFFF",
        155: f"({x} << ({rb} & 63)) & 0xFFFFFFFFFFFFFFFF",
        156: f"{x} >> ({rb} & 63)",
        157: f"({sx} >> ({rb} & 63)) & 0xFFFFFFFFFFFFFFFF",
        158: f"ROTR64({rb}, {s64})",
        159: f"ROTR64({x}, {rb})",
        160: f"ROTR32({rb}, {s32})",
        161: f"ROTR32({x & M32}, {rb})",
    }
    if op == 147:
        return [f"if {rb} == 0: {ra} = {x}"]
    if op == 148:
        return [f"if {rb} != 0: {ra} = {x}"]
    return [f"{ra} = {exprs[op]}"]


def _three_reg(op: int, a: int, b: int, d: int) -> list[str]:
    """GP §A.5.13 (opcodes 190-230): r[d] = f(r[a], r[b])."""
    ra, rb, rd = f"r[{a}]", f"r[{b}]", f"r[{d}]"
    s = "0x8000000000000000"
    m = "0xFFFFFFFFFFFFFFFF"
    exprs: dict[int, str] = {
        190: _sx32e(f"{ra} + {rb}"),
        191: _sx32e(f"{ra} - {rb}"),
        192: _sx32e(f"({ra} & 0xFFFFFFFF) * ({rb} & 0xFFFFFFFF)"),
        193: f"DIVU32({ra}, {rb})",
        194: f"DIVS32({ra}, {rb})",
        195: f"REMU32({ra}, {rb})",
        196: f"REMS32({ra}, {rb})",
        197: _sx32e(f"{ra} << ({rb} & 31)"),
        198: _sx32e(f"({ra} & 0xFFFFFFFF) >> ({rb} & 31)"),
        199: f"({_si32e(ra)} >> ({rb} & 31)) & {m}",
        200: f"({ra} + {rb}) & {m}",
        201: f"({ra} - {rb}) & {m}",
        202: f"({ra} * {rb}) & {m}",
        203: f"DIVU64({ra}, {rb})",
        204: f"DIVS64({ra}, {rb})",
        205: f"REMU64({ra}, {rb})",
        206: f"REMS64({ra}, {rb})",
        207: f"({ra} << ({rb} & 63)) & {m}",
        208: f"{ra} >> ({rb} & 63)",
        209: f"({_s64e(ra)} >> ({rb} & 63)) & {m}",
        210: f"{ra} & {rb}",
        211: f"{ra} ^ {rb}",
        212: f"{ra} | {rb}",
        213: f"(({_s64e(ra)} * {_s64e(rb)}) >> 64) & {m}",
        214: f"({ra} * {rb}) >> 64",
        215: f"(({_s64e(ra)} * {rb}) >> 64) & {m}",
        216: f"1 if {ra} < {rb} else 0",
        217: f"1 if ({ra} ^ {s}) < ({rb} ^ {s}) else 0",
        220: f"ROTL64({ra}, {rb})",
        221: f"ROTL32({ra}, {rb})",
        222: f"ROTR64({ra}, {rb})",
        223: f"ROTR32({ra}, {rb})",
        224: f"{ra} & ({rb} ^ {m})",
        225: f"{ra} | ({rb} ^ {m})",
        226: f"{ra} ^ {rb} ^ {m}",
        227: f"{ra} if ({ra} ^ {s}) > ({rb} ^ {s}) else {rb}",
        228: f"{ra} if {ra} > {rb} else {rb}",
        229: f"{ra} if ({ra} ^ {s}) < ({rb} ^ {s}) else {rb}",
        230: f"{ra} if {ra} < {rb} else {rb}",
    }
    if op == 218:
        return [f"if {rb} == 0: {rd} = {ra}"]
    if op == 219:
        return [f"if {rb} != 0: {rd} = {ra}"]
    return [f"{rd} = {exprs[op]}"]


def _two_reg(op: int, d: int, a: int) -> list[str]:
    """GP §A.5.9 (opcodes 100-111): r[d] = f(r[a])."""
    ra, rd = f"r[{a}]", f"r[{d}]"
    exprs: dict[int, str] = {
        100: ra,
        101: f"SBRK(mem, {ra})",
        102: f"{ra}.bit_count()",
        103: f"({ra} & 0xFFFFFFFF).bit_count()",
        104: f"64 - {ra}.bit_length()",
        105: f"32 - ({ra} & 0xFFFFFFFF).bit_length()",
        106: f"CTZ64({ra})",
        107: f"CTZ32({ra})",
        108: _sx(f"{ra} & 0xFF", 8),
        109: _sx(f"{ra} & 0xFFFF", 16),
        110: f"{ra} & 0xFFFF",
        111: f"REV({ra})",
    }
    return [f"{rd} = {exprs[op]}"]


def emit(ins: Instruction, ctx: BlockContext, inline: bool = False) -> list[str]:
    """Python lines for one instruction. Terminators (and ecalli) end with `return`.

    `inline` expands memory accesses in place (fast path) instead of calling the helpers."""
    op, pc = ins.opcode, ins.pc
    a, b, d, x, y = ins.a, ins.b, ins.d, ins.x, ins.y
    if op == 0:
        return [f"return {exit_code(EXIT_PANIC, pc)}"]
    if op == 1:
        return [f"return {ins.next_pc}"]
    if op == 10:
        return [f"return {exit_code(EXIT_HOST, pc)}"]
    if op == 20:
        return [f"r[{a}] = {x}"]
    if 30 <= op <= 33:
        w = op - 30
        return _store(w, str(x & M32), str(y & _STORE_MASK[w]), inline)
    if op == 40:
        return [f"return {ctx.branch_target(x, pc)}"]
    if op == 50:
        return _djump(f"(r[{a}] + {x}) & 0xFFFFFFFF", pc)
    if op == 51:
        return [f"r[{a}] = {x}"]
    if op in _LOADS:
        fn, bits = _LOADS[op]
        return _load(fn, bits, str(x & M32), a, inline)
    if 59 <= op <= 62:
        return _store(op - 59, str(x & M32), f"r[{a}]", inline)
    if 70 <= op <= 73:
        w = op - 70
        return _store(w, f"(r[{a}] + {x}) & 0xFFFFFFFF", str(y & _STORE_MASK[w]), inline)
    if op == 80:
        return [f"r[{a}] = {x}", f"return {ctx.branch_target(y, pc)}"]
    if op in _BRANCH_IMM:
        cond = _BRANCH_IMM[op](f"r[{a}]", x)
        return [f"if {cond}: return {ctx.branch_target(y, pc)}", f"return {ins.next_pc}"]
    if 100 <= op <= 111:
        return _two_reg(op, d, a)
    if 120 <= op <= 123:
        return _store(op - 120, f"(r[{b}] + {x}) & 0xFFFFFFFF", f"r[{a}]", inline)
    if op in _IND_LOADS:
        fn, bits = _IND_LOADS[op]
        return _load(fn, bits, f"(r[{b}] + {x}) & 0xFFFFFFFF", a, inline)
    if 131 <= op <= 161:
        return _two_reg_imm(op, a, b, x)
    if op in _BRANCH_REG:
        cond = _BRANCH_REG[op](f"r[{a}]", f"r[{b}]")
        return [f"if {cond}: return {ctx.branch_target(x, pc)}", f"return {ins.next_pc}"]
    if op == 180:
        # The target uses the prior r[b] (r[a] may alias it).
        return [f"u = (r[{b}] + {y}) & 0xFFFFFFFF", f"r[{a}] = {x}", *_djump("u", pc)]
    if 190 <= op <= 230:
        return _three_reg(op, a, b, d)
    raise AssertionError(f"no semantics for opcode {op} ({NAMES.get(op)})")


_ENDS_BLOCK = TERMINATORS | {10}


def ends_block(ins: Instruction) -> bool:
    """True when the fragment always returns: terminators (T) and ecalli."""
    return ins.opcode in _ENDS_BLOCK
