"""WorkDigest D, one item's result in a report (GP 0.7.0 §11.1.4; codec E(d ∈ D) in §C.2).

The w3f vectors call it `work_result` (from before GP 0.6.5 renamed it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from jamhost.domain.fields import HASH, U32, U64, Field, Nested
from jamhost.domain.record import Record
from jamhost.domain.types.refine_load import RefineLoad
from jamhost.domain.types.work_exec_result import WorkExecResult


@dataclass(frozen=True, slots=True)
class WorkDigest(Record):
    """The digest of one refined work item (w3f `work_result`)."""

    service_id: int
    """`s`: the service whose item this was, E_4."""
    code_hash: bytes
    """`c`: hash of the service code at the time of reporting."""
    payload_hash: bytes
    """`y`: blake2b-256 of the item's payload."""
    accumulate_gas: int
    """`g`: gas limit for accumulating this digest, E_8."""
    result: WorkExecResult
    """`l`: the output blob or error, O(l)."""
    refine_load: RefineLoad = field(default_factory=RefineLoad)
    """`u, i, x, z, e`: refine statistics, each E."""

    FIELDS = (
        Field("service_id", U32),
        Field("code_hash", HASH),
        Field("payload_hash", HASH),
        Field("accumulate_gas", U64),
        Field("result", Nested(WorkExecResult)),
        Field("refine_load", Nested(RefineLoad, min_size=5)),
    )


#: The name used by the w3f vectors and ASN.1 schema.
WorkResult = WorkDigest
