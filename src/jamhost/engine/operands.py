"""The inputs of an accumulation: operand tuples U and deferred transfers X (GP 0.7.2 §12.2).

In GP 0.7.2 (eq. accinput) accumulate receives both kinds as one sequence, transfers first,
each encoded with a discriminator: 0 ++ E_U(o) or 1 ++ E_X(t) (GP §C.2). GP 0.7.0 passed only
operands, without a discriminator, and sent transfers to a separate on-transfer entry point;
`encode_inputs(..., gp_version="0.7.0")` reproduces that for the w3f 0.7.0 test vectors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from jamhost.domain.codec import encode_blob, encode_fixed, encode_natural
from jamhost.domain.types import WorkDigest, WorkExecResult, WorkReport
from jamhost.engine.constants import MEMO_SIZE


@dataclass(frozen=True, slots=True)
class AccumulateOperand:
    """One work digest as accumulate sees it, U (GP 0.7.2 eq. operandtuple)."""

    package_hash: bytes
    """p: the work-package hash."""
    exports_root: bytes
    """e: the package's segment root."""
    authorizer_hash: bytes
    """a: the authorizer hash of the report."""
    payload_hash: bytes
    """y: hash of the item's payload."""
    gas_limit: int
    """g: the digest's accumulate gas."""
    auth_trace: bytes
    """t: the report's authorizer trace."""
    result: WorkExecResult
    """l: refine's output blob or error."""

    @classmethod
    def from_digest(cls, report: WorkReport, digest: WorkDigest) -> AccumulateOperand:
        """The operand of one digest of a report (GP 0.7.2 eq. accone, i^U)."""
        return cls(
            package_hash=report.package_spec.hash,
            exports_root=report.package_spec.exports_root,
            authorizer_hash=report.authorizer_hash,
            payload_hash=digest.payload_hash,
            gas_limit=digest.accumulate_gas,
            auth_trace=report.auth_output,
            result=digest.result,
        )

    def encode(self) -> bytes:
        """E_U(o) = E(p, e, a, y, g, O(l), ↕t) (GP 0.7.2 §C.2)."""
        out = bytearray(self.package_hash + self.exports_root)
        out += self.authorizer_hash + self.payload_hash
        encode_natural(out, self.gas_limit)
        self.result.encode_into(out)
        encode_blob(out, self.auth_trace)
        return bytes(out)


@dataclass(frozen=True, slots=True)
class DeferredTransfer:
    """A balance transfer made by one accumulation for another, X (GP 0.7.2 eq. defxfer).

    The receiver sees it at its next accumulation: the caller queues it, and passes it in
    `accumulate(..., transfers=...)`, which credits the amount and lists it among the inputs."""

    source: int
    """s: the sending service."""
    dest: int
    """d: the receiving service."""
    amount: int
    """a: the balance moved."""
    memo: bytes
    """m: W_T = 128 octets."""
    gas: int
    """g: gas the sender gave for the receiver to process it."""

    def __post_init__(self) -> None:
        if len(self.memo) != MEMO_SIZE:
            raise ValueError(f"a memo has {MEMO_SIZE} octets, got {len(self.memo)}")

    def encode(self) -> bytes:
        """E_X(t) = E_4(s) ++ E_4(d) ++ E_8(a) ++ m ++ E_8(g) (GP 0.7.2 §C.2)."""
        out = bytearray()
        encode_fixed(out, self.source, 4)
        encode_fixed(out, self.dest, 4)
        encode_fixed(out, self.amount, 8)
        out += self.memo
        encode_fixed(out, self.gas, 8)
        return bytes(out)


def encode_inputs(
    operands: Sequence[AccumulateOperand],
    transfers: Sequence[DeferredTransfer],
    gp_version: str = "0.7.2",
) -> list[bytes]:
    """The encoded accumulation inputs i that `fetch` selectors 14 and 15 reveal.

    GP 0.7.2: i^T ⌢ i^U, each with its discriminator. GP 0.7.0: the operands alone, bare."""
    if gp_version == "0.7.0":
        return [o.encode() for o in operands]
    return [b"\x01" + t.encode() for t in transfers] + [b"\x00" + o.encode() for o in operands]
