"""Basic-block compiler: straight-line PVM code -> one Python function.

A block starts at any entry pc (a block start of ϖ, or the instruction after an ecalli on
resume, or an arbitrary initial pc) and runs to the first terminator (GP §A.3 T) or ecalli.
The fragments of instructions.py are joined into

    def blk(r, rp, wp, mem):
        r[1] = (r[2] + 16) & 0xFFFFFFFFFFFFFFFF
        r[3] = LD32(rp, (r[1] + 4) & 0xFFFFFFFF)
        if r[3] == 0: return 42
        return 17

compiled once with `compile`/`exec` and cached on the Program (programs are cached by blob,
so by content hash). A block is compiled only once hot (the interpreter runs it through the
shared per-opcode `step_handler`s the first times): compiling costs some 20 us per
instruction, running it well under one, so code that runs once is never compiled.
`line_index` maps each source line to the index of its instruction in
the block: a page fault raised inside the block is pinned to its instruction through the
traceback's line number, at no cost on the normal path.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from types import TracebackType
from typing import Any

from jamhost.pvm.gas import block_cost
from jamhost.pvm.instructions import NAMESPACE, BlockContext, Sym, SymContext, emit, ends_block
from jamhost.pvm.program import Instruction, Program

MAX_BLOCK_INSTRUCTIONS = 256
"""Longer straight-line runs are split (bounds compile time and single-step fallback)."""


class Block:
    """A compiled run of instructions.

    `written` lists the registers the fast form keeps in locals and stores back on exit; on
    a fault the driver stores them back from the block frame's locals (`fault_state`).
    `loop` marks a block whose terminator branches back to its own entry: it iterates inside
    the function, charging gas per iteration from `gb[0]` itself.
    """

    __slots__ = ("fn", "cost", "pcs", "index_of", "line_index", "source", "written", "loop")

    def __init__(  # noqa: PLR0913
        self,
        fn: Callable[..., int],
        pcs: tuple[int, ...],
        line_index: list[int],
        source: str,
        written: tuple[int, ...] = (),
        loop: bool = False,
    ) -> None:
        self.fn = fn
        self.pcs = pcs
        self.cost = block_cost(len(pcs))
        self.index_of = {pc: i for i, pc in enumerate(pcs)}
        self.line_index = line_index
        self.source = source
        self.written = written
        self.loop = loop

    def fault_state(self, tb: TracebackType | None) -> tuple[int, dict[str, Any]]:
        """(instruction index within the block, block frame locals) where `tb` was raised."""
        code = self.fn.__code__
        frame = None
        line = None
        while tb is not None:
            if tb.tb_frame.f_code is code:
                frame, line = tb.tb_frame, tb.tb_lineno
            tb = tb.tb_next
        if frame is None or line is None:
            raise RuntimeError("fault not raised from this block")
        return self.line_index[line], dict(frame.f_locals)


def _context(program: Program) -> BlockContext:
    ctx = program.cache.get("ctx")
    if not isinstance(ctx, BlockContext):
        ctx = BlockContext(program)
        program.cache["ctx"] = ctx
    return ctx


def branch_checker(program: Program) -> Callable[[int, int], int]:
    """`BT(target, pc)` of the step handlers: GP eq. A.17 branch validity for `program`."""
    return _context(program).branch_target


StepHandler = Callable[..., int]
"""handler(r, rp, wp, mem, JT, BT, a, b, d, x, y, pc, sk) -> next pc or exit code."""

STEP_HANDLERS: dict[int, StepHandler] = {}
_SYM_FIELDS = {name: Sym(name) for name in ("a", "b", "d", "x", "y", "pc", "sk")}


def step_handler(opcode: int) -> StepHandler:
    """One instruction of `opcode` as a function of its decoded fields, shared by every
    program: the step path runs cold code through these and so compiles nothing per pc.

    Its source is the instruction's fragment (instructions.emit) emitted for a symbolic
    instruction, so it has exactly the semantics of the compiled blocks."""
    fn = STEP_HANDLERS.get(opcode)
    if fn is None:
        f = _SYM_FIELDS
        # type-ignore reason: symbolic fields (Sym) in int slots: the fragment is emitted as source
        ins = Instruction(f["pc"], opcode, f["sk"], f["a"], f["b"], f["d"], f["x"], f["y"])  # type: ignore[arg-type]
        lines = ["def step(r, rp, wp, mem, JT, BT, a, b, d, x, y, pc, sk):"]
        # type-ignore reason: SymContext stands in for a program's BlockContext here
        lines += ["    " + t for t in emit(ins, SymContext())]  # type: ignore[arg-type]
        if not ends_block(ins):
            lines.append(f"    return {ins.next_pc}")
        namespace: dict[str, Any] = dict(NAMESPACE)
        exec(compile("\n".join(lines) + "\n", f"<pvm step {opcode}>", "exec"), namespace)  # noqa: S102
        made: StepHandler = namespace["step"]
        fn = STEP_HANDLERS[opcode] = made
    return fn


_REG = re.compile(r"r\[(\d+)\]")
_ASSIGNED = re.compile(r"(?:^|: |; )r(\d+) = ")
_WORD_REG = re.compile(r"\br(\d+)\b")
_RETURN = re.compile(r"^(?P<cond>if .*: )?return (?P<val>.+)$")
_LOOP_OPS = frozenset([40, 80, *range(81, 91), *range(170, 176)])


def _straight_line(program: Program, pc: int) -> list[tuple[int, list[str]]]:
    """[(pc, fragment lines)] from pc to the first terminator or ecalli."""
    ctx = _context(program)
    out: list[tuple[int, list[str]]] = []
    cur = pc
    while True:
        ins = program.instruction(cur)
        out.append((cur, emit(ins, ctx, True)))
        if ends_block(ins):
            return out
        cur = ins.next_pc
        if len(out) >= MAX_BLOCK_INSTRUCTIONS:
            out[-1][1].append(f"return {cur}")
            return out


def _is_self_loop(program: Program, pc: int, last_pc: int) -> bool:
    ins = program.instruction(last_pc)
    if ins.opcode not in _LOOP_OPS:
        return False
    target = ins.x if ins.opcode == 40 or ins.opcode >= 170 else ins.y
    return target == pc and program.is_block_start(pc)


def _build(program: Program, pc: int, name: str, source: str) -> Callable[..., int]:
    namespace: dict[str, Any] = dict(NAMESPACE)
    namespace["JT"] = program.jump_map()
    exec(compile(source, f"<pvm block @{pc}>", "exec"), namespace)  # noqa: S102 - our codegen
    fn: Callable[..., int] = namespace[name]
    return fn


def compile_block(program: Program, pc: int) -> Block:
    """Compile the straight-line run starting at pc.

    The fast form keeps registers in locals (r[3] becomes r3), loads those it uses on
    entry and stores those it writes before every return. What the block holds is added to
    `program.compiled_bytes` (an estimate, for the program cache's byte budget).
    """
    run = _straight_line(program, pc)
    pcs = tuple(p for p, _ in run)
    cost = block_cost(len(pcs))
    loop = _is_self_loop(program, pc, pcs[-1])
    bodies = [[_REG.sub(r"r\1", t) for t in frag] for _, frag in run]
    # Load on entry what is read, and what a cmov may leave unwritten (it is stored back).
    used = sorted(
        {
            int(n)
            for frag in bodies
            for t in frag
            for n in _WORD_REG.findall(_ASSIGNED.sub(" ", t) if not t.startswith("if ") else t)
        }
    )
    written = tuple(sorted({int(n) for frag in bodies for t in frag for n in _ASSIGNED.findall(t)}))
    store = "; ".join(f"r[{n}] = r{n}" for n in written)
    save = ("gb[0] = g; " if loop else "") + (store + "; " if store else "")

    lines = ["def blk(r, rp, wp, mem, gb):" if loop else "def blk(r, rp, wp, mem):"]
    line_index = [0, 0]
    prologue = [f"r{n} = r[{n}]" for n in used] + (["g = gb[0]"] if loop else [])
    if prologue:
        lines.append("    " + "; ".join(prologue))
        line_index.append(0)
    indent = "    "
    if loop:
        lines.append("    while True:")
        line_index.append(0)
        indent = "        "
    for index, frag in enumerate(bodies):
        for text in frag:
            m = _RETURN.match(text)
            if m is None:
                out = [text]
            elif loop and m["val"] == str(pc):
                again = [f"if g >= {cost}: g -= {cost}; continue", f"{save}return {pc}"]
                out = [m["cond"].rstrip()] + ["    " + a for a in again] if m["cond"] else again
            else:
                out = [f"{m['cond'] or ''}{save}return {m['val']}"]
            for o in out:
                lines.append(indent + o)
                line_index.append(index)
    source = "\n".join(lines) + "\n"
    block = Block(_build(program, pc, "blk", source), pcs, line_index, source, written, loop)
    program.compiled_bytes += block_footprint(block)
    return block


def block_footprint(block: Block) -> int:
    """Octets a compiled block keeps alive, estimated: its source, code object (bytecode,
    constants, line table: about 4x the source), the pc tables and fixed object overhead."""
    return 5 * len(block.source) + 100 * len(block.pcs) + 2048


def block_table(program: Program) -> dict[int, tuple[Any, ...]]:
    """The program's cache of compiled blocks: entry pc -> (fn, cost, loop, Block)."""
    table = program.cache.get("blocks")
    if not isinstance(table, dict):
        table = {}
        program.cache["blocks"] = table
    return table
