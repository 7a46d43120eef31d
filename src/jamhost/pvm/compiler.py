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
so by content hash). `line_index` maps each source line to the index of its instruction in
the block: a page fault raised inside the block is pinned to its instruction through the
traceback's line number, at no cost on the normal path.
"""

from __future__ import annotations

from types import TracebackType

from jamhost.pvm.gas import block_cost
from jamhost.pvm.instructions import NAMESPACE, BlockContext, emit, ends_block
from jamhost.pvm.program import Program

MAX_BLOCK_INSTRUCTIONS = 256
"""Longer straight-line runs are split (bounds compile time and single-step fallback)."""


class Block:
    """A compiled run of instructions."""

    __slots__ = ("fn", "cost", "pcs", "index_of", "line_index", "source")

    def __init__(self, fn, pcs: tuple[int, ...], line_index: list[int], source: str) -> None:  # noqa: ANN001
        self.fn = fn
        self.pcs = pcs
        self.cost = block_cost(len(pcs))
        self.index_of = {pc: i for i, pc in enumerate(pcs)}
        self.line_index = line_index
        self.source = source

    def index_at_fault(self, tb: TracebackType | None) -> int:
        """Instruction index (within the block) executing when the traceback was raised."""
        code = self.fn.__code__
        line = None
        while tb is not None:
            if tb.tb_frame.f_code is code:
                line = tb.tb_lineno
            tb = tb.tb_next
        if line is None:
            raise RuntimeError("fault not raised from this block")
        return self.line_index[line]


def _context(program: Program) -> BlockContext:
    ctx = program.cache.get("ctx")
    if ctx is None:
        ctx = BlockContext(program)
        program.cache["ctx"] = ctx
    return ctx  # type: ignore[return-value]


def compile_block(program: Program, pc: int, single: bool = False) -> Block:
    """Compile the straight-line run starting at pc (one instruction when `single`)."""
    ctx = _context(program)
    lines = ["def blk(r, rp, wp, mem):"]
    line_index = [0, 0]  # line numbers are 1-based; line 1 is the def
    pcs: list[int] = []
    cur = pc
    while True:
        ins = program.instruction(cur)
        for text in emit(ins, ctx):
            lines.append("    " + text)
            line_index.append(len(pcs))
        pcs.append(cur)
        if ends_block(ins):
            break
        cur = ins.next_pc
        if single or len(pcs) >= MAX_BLOCK_INSTRUCTIONS:
            lines.append(f"    return {cur}")
            line_index.append(len(pcs) - 1)
            break
    source = "\n".join(lines) + "\n"
    namespace = dict(NAMESPACE)
    namespace["JT"] = ctx.jump_map
    exec(compile(source, f"<pvm block @{pc}>", "exec"), namespace)  # noqa: S102 - our own codegen
    return Block(namespace["blk"], tuple(pcs), line_index, source)


def block_table(program: Program, single: bool) -> dict[int, Block]:
    """The program's cache of compiled blocks (or single-instruction steps)."""
    key = "steps" if single else "blocks"
    table = program.cache.get(key)
    if table is None:
        table = {}
        program.cache[key] = table
    return table  # type: ignore[return-value]
