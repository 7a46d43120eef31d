"""ExtrinsicSpec, one extrinsic blob a work item brings (GP 0.7.0 §14.3; codec §C.2)."""

from __future__ import annotations

from dataclasses import dataclass

from jamhost.domain.fields import HASH, U32, Field
from jamhost.domain.record import Record


@dataclass(frozen=True, slots=True)
class ExtrinsicSpec(Record):
    """`(h, i)` of a work item's `x`: the blob's hash and length (w3f `extrinsic_spec`)."""

    hash: bytes
    """`h`: blake2b-256 of the extrinsic blob."""
    len: int
    """`i`: its length in octets, E_4."""

    FIELDS = (Field("hash", HASH), Field("len", U32))
