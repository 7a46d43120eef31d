"""WorkItem W (GP 0.7.0 §14.3, eq. workitem; codec E(w ∈ W) in §C.2)."""

from __future__ import annotations

from dataclasses import dataclass

from jamhost.domain.fields import BLOB, HASH, U16, U32, U64, Field, Nested, SeqOf
from jamhost.domain.record import Record
from jamhost.domain.types.extrinsic_spec import ExtrinsicSpec
from jamhost.domain.types.import_spec import ImportSpec


@dataclass(frozen=True, slots=True)
class WorkItem(Record):
    """One unit of work for one service within a package (w3f `work_item`)."""

    service: int
    """`s`: the service whose refine code runs, E_4."""
    code_hash: bytes
    """`c`: hash of that service's code at the time of reporting."""
    refine_gas_limit: int
    """`g`: gas limit of refine, E_8."""
    accumulate_gas_limit: int
    """`a`: gas limit of accumulate, E_8."""
    export_count: int
    """`e`: number of segments this item exports, E_2."""
    payload: bytes
    """`y`: the payload blob, ↕."""
    import_segments: tuple[ImportSpec, ...] = ()
    """`i`: segments to import, ↕I#(i)."""
    extrinsic: tuple[ExtrinsicSpec, ...] = ()
    """`x`: extrinsic blobs to bring in, ↕[(h, E_4(i))]."""

    FIELDS = (
        Field("service", U32),
        Field("code_hash", HASH),
        Field("refine_gas_limit", U64),
        Field("accumulate_gas_limit", U64),
        Field("export_count", U16),
        Field("payload", BLOB),
        Field("import_segments", SeqOf(Nested(ImportSpec, min_size=34))),
        Field("extrinsic", SeqOf(Nested(ExtrinsicSpec, min_size=36))),
    )
