"""WorkReport R (GP 0.7.0 §11.1.1, eq. workreport; codec E(r ∈ R) in §C.2)."""

from __future__ import annotations

from dataclasses import dataclass

from jamhost.domain.constants import MAX_WORK_ITEMS
from jamhost.domain.fields import BLOB, HASH, Field, Natural, Nested, SeqOf
from jamhost.domain.hashing import blake2b_256
from jamhost.domain.record import Record
from jamhost.domain.types.availability_spec import AvailabilitySpec
from jamhost.domain.types.refine_context import RefineContext
from jamhost.domain.types.segment_root_lookup import SegmentRootLookupItem
from jamhost.domain.types.work_digest import WorkDigest


def _lookup_key(item: SegmentRootLookupItem) -> bytes:
    return item.work_package_hash


@dataclass(frozen=True, slots=True)
class WorkReport(Record):
    """What refining a package produced, as guarantors sign it (w3f `work_report`).

    Field order is the GP 0.7.0 encoding order (g before t), not the tuple order of eq.
    workreport.
    """

    package_spec: AvailabilitySpec
    """`s`: the availability specification of the package."""
    context: RefineContext
    """`c` (bold): the refinement context of the package."""
    core_index: int
    """`c`: the core it was refined on, E (GP 0.7.0 encodes it variable-length), below 2^16."""
    authorizer_hash: bytes
    """`a`: hash of the authorizer (code hash ++ config)."""
    auth_gas_used: int
    """`g`: gas used by is-authorized, E."""
    auth_output: bytes
    """`t`: the authorization trace (is-authorized output), ↕."""
    segment_root_lookup: tuple[SegmentRootLookupItem, ...]
    """`l`: package hash -> segment root; a GP dictionary, so ↕ and ascending by key."""
    results: tuple[WorkDigest, ...]
    """`d`: one digest per work item, ↕, 1..I of them."""

    FIELDS = (
        Field("package_spec", Nested(AvailabilitySpec, min_size=102)),
        Field("context", Nested(RefineContext, min_size=133)),
        Field("core_index", Natural(16)),
        Field("authorizer_hash", HASH),
        Field("auth_gas_used", Natural(64)),
        Field("auth_output", BLOB),
        Field(
            "segment_root_lookup",
            SeqOf(Nested(SegmentRootLookupItem, min_size=64), sort_key=_lookup_key),
        ),
        Field("results", SeqOf(Nested(WorkDigest), min_len=1, max_len=MAX_WORK_ITEMS)),
    )

    def hash(self) -> bytes:
        """The report hash: blake2b-256 of its GP encoding."""
        return blake2b_256(self.encode())
