"""Opcode numbers, names and argument kinds: GP 0.7.2 §A.5 instruction tables (64-bit PVM).

U (every valid opcode) is the key set of `ARG_KIND`; T (block terminators, GP §A.3) is
`TERMINATORS`. Every instruction costs ϱ_Δ = 1 gas in GP 0.7.2 (see gas.py).
"""

from __future__ import annotations

from enum import Enum


class ArgKind(Enum):
    """The argument layouts of GP §A.5.1-A.5.13."""

    NONE = "none"
    ONE_IMM = "one_imm"
    REG_EXT_IMM = "reg_ext_imm"
    TWO_IMM = "two_imm"
    OFFSET = "offset"
    REG_IMM = "reg_imm"
    REG_TWO_IMM = "reg_two_imm"
    REG_IMM_OFFSET = "reg_imm_offset"
    TWO_REG = "two_reg"
    TWO_REG_IMM = "two_reg_imm"
    TWO_REG_OFFSET = "two_reg_offset"
    TWO_REG_TWO_IMM = "two_reg_two_imm"
    THREE_REG = "three_reg"


_TABLE: dict[ArgKind, dict[int, str]] = {
    ArgKind.NONE: {0: "trap", 1: "fallthrough"},
    ArgKind.ONE_IMM: {10: "ecalli"},
    ArgKind.REG_EXT_IMM: {20: "load_imm_64"},
    ArgKind.TWO_IMM: {
        30: "store_imm_u8",
        31: "store_imm_u16",
        32: "store_imm_u32",
        33: "store_imm_u64",
    },
    ArgKind.OFFSET: {40: "jump"},
    ArgKind.REG_IMM: {
        50: "jump_ind",
        51: "load_imm",
        52: "load_u8",
        53: "load_i8",
        54: "load_u16",
        55: "load_i16",
        56: "load_u32",
        57: "load_i32",
        58: "load_u64",
        59: "store_u8",
        60: "store_u16",
        61: "store_u32",
        62: "store_u64",
    },
    ArgKind.REG_TWO_IMM: {
        70: "store_imm_ind_u8",
        71: "store_imm_ind_u16",
        72: "store_imm_ind_u32",
        73: "store_imm_ind_u64",
    },
    ArgKind.REG_IMM_OFFSET: {
        80: "load_imm_jump",
        81: "branch_eq_imm",
        82: "branch_ne_imm",
        83: "branch_lt_u_imm",
        84: "branch_le_u_imm",
        85: "branch_ge_u_imm",
        86: "branch_gt_u_imm",
        87: "branch_lt_s_imm",
        88: "branch_le_s_imm",
        89: "branch_ge_s_imm",
        90: "branch_gt_s_imm",
    },
    ArgKind.TWO_REG: {
        100: "move_reg",
        101: "sbrk",
        102: "count_set_bits_64",
        103: "count_set_bits_32",
        104: "leading_zero_bits_64",
        105: "leading_zero_bits_32",
        106: "trailing_zero_bits_64",
        107: "trailing_zero_bits_32",
        108: "sign_extend_8",
        109: "sign_extend_16",
        110: "zero_extend_16",
        111: "reverse_bytes",
    },
    ArgKind.TWO_REG_IMM: {
        120: "store_ind_u8",
        121: "store_ind_u16",
        122: "store_ind_u32",
        123: "store_ind_u64",
        124: "load_ind_u8",
        125: "load_ind_i8",
        126: "load_ind_u16",
        127: "load_ind_i16",
        128: "load_ind_u32",
        129: "load_ind_i32",
        130: "load_ind_u64",
        131: "add_imm_32",
        132: "and_imm",
        133: "xor_imm",
        134: "or_imm",
        135: "mul_imm_32",
        136: "set_lt_u_imm",
        137: "set_lt_s_imm",
        138: "shlo_l_imm_32",
        139: "shlo_r_imm_32",
        140: "shar_r_imm_32",
        141: "neg_add_imm_32",
        142: "set_gt_u_imm",
        143: "set_gt_s_imm",
        144: "shlo_l_imm_alt_32",
        145: "shlo_r_imm_alt_32",
        146: "shar_r_imm_alt_32",
        147: "cmov_iz_imm",
        148: "cmov_nz_imm",
        149: "add_imm_64",
        150: "mul_imm_64",
        151: "shlo_l_imm_64",
        152: "shlo_r_imm_64",
        153: "shar_r_imm_64",
        154: "neg_add_imm_64",
        155: "shlo_l_imm_alt_64",
        156: "shlo_r_imm_alt_64",
        157: "shar_r_imm_alt_64",
        158: "rot_r_64_imm",
        159: "rot_r_64_imm_alt",
        160: "rot_r_32_imm",
        161: "rot_r_32_imm_alt",
    },
    ArgKind.TWO_REG_OFFSET: {
        170: "branch_eq",
        171: "branch_ne",
        172: "branch_lt_u",
        173: "branch_lt_s",
        174: "branch_ge_u",
        175: "branch_ge_s",
    },
    ArgKind.TWO_REG_TWO_IMM: {180: "load_imm_jump_ind"},
    ArgKind.THREE_REG: {
        190: "add_32",
        191: "sub_32",
        192: "mul_32",
        193: "div_u_32",
        194: "div_s_32",
        195: "rem_u_32",
        196: "rem_s_32",
        197: "shlo_l_32",
        198: "shlo_r_32",
        199: "shar_r_32",
        200: "add_64",
        201: "sub_64",
        202: "mul_64",
        203: "div_u_64",
        204: "div_s_64",
        205: "rem_u_64",
        206: "rem_s_64",
        207: "shlo_l_64",
        208: "shlo_r_64",
        209: "shar_r_64",
        210: "and",
        211: "xor",
        212: "or",
        213: "mul_upper_s_s",
        214: "mul_upper_u_u",
        215: "mul_upper_s_u",
        216: "set_lt_u",
        217: "set_lt_s",
        218: "cmov_iz",
        219: "cmov_nz",
        220: "rot_l_64",
        221: "rot_l_32",
        222: "rot_r_64",
        223: "rot_r_32",
        224: "and_inv",
        225: "or_inv",
        226: "xnor",
        227: "max",
        228: "max_u",
        229: "min",
        230: "min_u",
    },
}

ARG_KIND: dict[int, ArgKind] = {op: kind for kind, ops in _TABLE.items() for op in ops}
"""U: opcode -> argument kind."""

NAMES: dict[int, str] = {op: name for ops in _TABLE.values() for op, name in ops.items()}
OPCODES: dict[str, int] = {name: op for op, name in NAMES.items()}

TERMINATORS: frozenset[int] = frozenset([0, 1, 40, 50, 80, 180, *range(81, 91), *range(170, 176)])
"""T (GP §A.3): trap, fallthrough, jumps, load-and-jumps and branches."""

MEMORY_OPS: frozenset[int] = frozenset(
    [*range(30, 34), *range(52, 63), *range(70, 74), *range(120, 131), 101]
)
"""Instructions that may access RAM (and so may fault or panic mid-block)."""
