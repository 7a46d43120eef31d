"""RefineLoad: the refine statistics of a work digest (GP 0.7.0 §11.1.4, `u, i, x, z, e`)."""

from __future__ import annotations

from dataclasses import dataclass

from jamhost.domain.fields import Field, Natural
from jamhost.domain.record import Record


@dataclass(frozen=True, slots=True)
class RefineLoad(Record):
    """What refining one item cost (w3f `refine_load`).

    GP 0.7.0 encodes all five with the variable-length natural encoding (digests are never read
    by the PVM and space is at a premium); the ranges are those of the w3f ASN.1 schema.
    """

    gas_used: int = 0
    """`u`: gas refine actually used, E (below 2^64)."""
    imports: int = 0
    """`i`: number of segments imported, E (below 2^16)."""
    extrinsic_count: int = 0
    """`x`: number of extrinsics, E (below 2^16)."""
    extrinsic_size: int = 0
    """`z`: total size of those extrinsics in octets, E (below 2^32)."""
    exports: int = 0
    """`e`: number of segments exported, E (below 2^16)."""

    FIELDS = (
        Field("gas_used", Natural(64)),
        Field("imports", Natural(16)),
        Field("extrinsic_count", Natural(16)),
        Field("extrinsic_size", Natural(32)),
        Field("exports", Natural(16)),
    )
