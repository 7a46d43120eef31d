"""Gas model: GP 0.7.2 §A.5, ϱ_Δ = 1 for every instruction.

GP 0.7.2 charges per instruction (the ϱ_Δ column of the instruction tables is 1 throughout);
it defines no per-basic-block charge. The fast path charges a whole block up front when the
remaining gas covers it and refunds the instructions that did not run when the block exits
early (host call, page fault, panic on a low address), so the observable gas is always the
per-instruction figure. When the gas does not cover the block, execution single-steps.

Out of gas (ε = ∞, GP eq. A.1): an instruction is attempted with less gas than its cost; the
machine stops *before* it with the state unchanged, pc at it and gas reported as 0 (GP's
signed ϱ' would be -1; Ψ_M clamps with max(ϱ', 0), and anan-as reports 0 too).

A faulting instruction (page fault or panic on an index below 2^16) is charged: GP 0.7.2
§A.1 "some gas is always charged whenever execution is attempted", as anan-as does.
"""

from __future__ import annotations

INSTRUCTION_COST = 1
"""ϱ_Δ for every opcode in GP 0.7.2 §A.5."""


def block_cost(instruction_count: int) -> int:
    """Gas of a straight-line run of instructions (sum of ϱ_Δ)."""
    return instruction_count * INSTRUCTION_COST
