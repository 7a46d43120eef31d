"""RefineContext, the work context C (GP 0.7.0 §11.1.2, eq. workcontext; codec §C.2)."""

from __future__ import annotations

from dataclasses import dataclass

from jamhost.domain.fields import HASH, U32, Field, SeqOf
from jamhost.domain.record import Record


@dataclass(frozen=True, slots=True)
class RefineContext(Record):
    """The chain state a work package is refined against (w3f `refine_context`)."""

    anchor: bytes
    """`a`: header hash of the anchor block."""
    state_root: bytes
    """`s`: posterior state root of the anchor block."""
    beefy_root: bytes
    """`b`: accumulation-output (BEEFY) root of the anchor block."""
    lookup_anchor: bytes
    """`l`: header hash of the block used for historical preimage lookups."""
    lookup_anchor_slot: int
    """`t`: timeslot of the lookup anchor, E_4."""
    prerequisites: tuple[bytes, ...] = ()
    """`p`: hashes of packages that must be reported first; a GP set, so ↕ and ascending."""

    FIELDS = (
        Field("anchor", HASH),
        Field("state_root", HASH),
        Field("beefy_root", HASH),
        Field("lookup_anchor", HASH),
        Field("lookup_anchor_slot", U32),
        Field("prerequisites", SeqOf(HASH, sort_key=bytes)),
    )
