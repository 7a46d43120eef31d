"""AvailabilitySpec Y, a report's package spec (GP 0.7.0 §11.1.3; codec E(x ∈ Y) in §C.2)."""

from __future__ import annotations

from dataclasses import dataclass

from jamhost.domain.fields import HASH, U16, U32, Field
from jamhost.domain.record import Record


@dataclass(frozen=True, slots=True)
class AvailabilitySpec(Record):
    """How to find and check the package's data (w3f `package_spec`, ASN.1 WorkPackageSpec)."""

    hash: bytes
    """`p`: the work-package hash."""
    length: int
    """`l`: length of the auditable work bundle, E_4."""
    erasure_root: bytes
    """`u`: erasure root of the bundle and exported segments."""
    exports_root: bytes
    """`e`: segment root of the exported segments."""
    exports_count: int
    """`n`: number of exported segments, E_2."""

    FIELDS = (
        Field("hash", HASH),
        Field("length", U32),
        Field("erasure_root", HASH),
        Field("exports_root", HASH),
        Field("exports_count", U16),
    )


#: The name used by the w3f ASN.1 schema.
WorkPackageSpec = AvailabilitySpec
