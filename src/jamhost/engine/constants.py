"""Protocol constants, host-call identifiers and host-call result codes (GP 0.7.2).

Host-call ids and results are those of GP 0.7.2 appendix B ("Host-Call Result Constants" and
the function tables of §B.6-§B.8); `log` (100) is JIP-1. The constants of `ProtocolConstants`
are those of GP 0.7.2 "Index of Notation: Constants" (the full parameter set) and of the w3f
tiny parameter set (`asn/tiny-const.asn`), which the accumulate test vectors use.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from enum import IntEnum
from typing import ClassVar

from jamhost.domain.codec import encode_fixed

U64 = 1 << 64
#: 2^64 - 1: the register value that means "this service" in read, lookup, info, provide.
SELF = U64 - 1

# Host-call result constants (GP 0.7.2 §B.1).
NONE = U64 - 1
WHAT = U64 - 2
OOB = U64 - 3
WHO = U64 - 4
FULL = U64 - 5
CORE = U64 - 6
CASH = U64 - 7
LOW = U64 - 8
HUH = U64 - 9
OK = 0


class HostCall(IntEnum):
    """Host-call identifiers ν_X (GP 0.7.2 §B.6-§B.8; `log` from JIP-1)."""

    GAS = 0
    FETCH = 1
    LOOKUP = 2
    READ = 3
    WRITE = 4
    INFO = 5
    HISTORICAL_LOOKUP = 6
    EXPORT = 7
    MACHINE = 8
    PEEK = 9
    POKE = 10
    PAGES = 11
    INVOKE = 12
    EXPUNGE = 13
    BLESS = 14
    ASSIGN = 15
    DESIGNATE = 16
    CHECKPOINT = 17
    NEW = 18
    UPGRADE = 19
    TRANSFER = 20
    EJECT = 21
    QUERY = 22
    SOLICIT = 23
    FORGET = 24
    YIELD = 25
    PROVIDE = 26
    LOG = 100


#: g = 10 for every GP host call (GP 0.7.2 §B.6-§B.8); transfer adds its gas argument.
HOST_CALL_GAS = 10
#: JIP-1 `log` costs 10 like any host call (the GP 0.7.2 vectors and traces charge it; the
#: older GP 0.7.0 w3f vectors charged 0, see `accumulate(..., gp_version="0.7.0")`).
LOG_GAS = 10

#: W_C: the largest service code preimage, in octets.
MAX_SERVICE_CODE_SIZE = 4_000_000
#: W_R: the largest total size of the unbounded blobs of a work report (outputs + trace).
MAX_REPORT_VAR_SIZE = 48 * 1024
#: W_G = W_P · W_E: the size of an exported segment.
SEGMENT_SIZE = 4104
#: W_X: the most segments one package may export.
MAX_PACKAGE_EXPORTS = 3072
#: W_T: the size of a transfer memo.
MEMO_SIZE = 128
#: B_I, B_L, B_S: deposits per item, per octet and the base deposit (GP eq. deposits).
ITEM_DEPOSIT = 10
BYTE_DEPOSIT = 1
BASE_DEPOSIT = 100
#: D: the preimage expunge period in timeslots (full parameter set).
EXPUNGE_PERIOD = 19_200
#: Entry points of service code (GP 0.7.2 §9.1, Ψ_R and Ψ_A).
REFINE_PC = 0
ACCUMULATE_PC = 5


@dataclass(frozen=True, slots=True)
class ProtocolConstants:
    """The constants that `fetch` selector 0 reveals (GP 0.7.2 Ω_Y, ω10 = 0), in its order."""

    item_deposit: int = ITEM_DEPOSIT  # B_I, E_8
    byte_deposit: int = BYTE_DEPOSIT  # B_L, E_8
    base_deposit: int = BASE_DEPOSIT  # B_S, E_8
    core_count: int = 341  # C, E_2
    expunge_period: int = EXPUNGE_PERIOD  # D, E_4
    epoch_length: int = 600  # E, E_4
    report_acc_gas: int = 10_000_000  # G_A, E_8
    package_auth_gas: int = 50_000_000  # G_I, E_8
    package_ref_gas: int = 5_000_000_000  # G_R, E_8
    block_acc_gas: int = 3_500_000_000  # G_T, E_8
    recent_history_len: int = 8  # H, E_2
    max_package_items: int = 16  # I, E_2
    max_report_deps: int = 8  # J, E_2
    max_block_tickets: int = 16  # K, E_2
    max_lookup_anchor_age: int = 14_400  # L, E_4
    ticket_entries: int = 2  # N, E_2
    auth_pool_size: int = 8  # O, E_2
    slot_seconds: int = 6  # P, E_2
    auth_queue_size: int = 80  # Q, E_2
    rotation_period: int = 10  # R, E_2
    max_package_extrinsics: int = 128  # T, E_2
    assurance_timeout: int = 5  # U, E_2
    validator_count: int = 1023  # V, E_2
    max_auth_code_size: int = 64_000  # W_A, E_4
    max_bundle_size: int = 13_791_360  # W_B, E_4
    max_service_code_size: int = MAX_SERVICE_CODE_SIZE  # W_C, E_4
    ec_piece_size: int = 684  # W_E, E_4
    max_package_imports: int = 3072  # W_M, E_4
    segment_ec_pieces: int = 6  # W_P, E_4
    max_report_var_size: int = MAX_REPORT_VAR_SIZE  # W_R, E_4
    memo_size: int = MEMO_SIZE  # W_T, E_4
    max_package_exports: int = MAX_PACKAGE_EXPORTS  # W_X, E_4
    epoch_tail_start: int = 500  # Y, E_4

    #: Octets of each field in the encoding, in field order.
    _WIDTHS: ClassVar[tuple[int, ...]] = tuple(map(int, "888244888822224222222224444444444"))

    def encode(self) -> bytes:
        """The blob `fetch` returns for ω10 = 0 (GP 0.7.2 Ω_Y, first case)."""
        out = bytearray()
        values = [getattr(self, f.name) for f in fields(self)]
        for value, width in zip(values, self._WIDTHS, strict=True):
            encode_fixed(out, value, width)
        return bytes(out)

    @classmethod
    def full(cls) -> ProtocolConstants:
        """The full (production) parameter set of GP 0.7.2."""
        return cls()

    @classmethod
    def tiny(cls) -> ProtocolConstants:
        """The w3f tiny parameter set (asn/tiny-const.asn), used by the STF test vectors."""
        return cls(
            core_count=2,
            expunge_period=32,
            epoch_length=12,
            report_acc_gas=10_000_000,
            package_ref_gas=1_000_000_000,
            block_acc_gas=20_000_000,
            max_block_tickets=3,
            ticket_entries=3,
            rotation_period=4,
            validator_count=6,
            ec_piece_size=4,
            segment_ec_pieces=1026,
            epoch_tail_start=10,
        )
