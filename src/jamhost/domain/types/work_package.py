"""WorkPackage P (GP 0.7.0 §14.3, eq. workpackage; codec E(p ∈ P) in §C.2)."""

from __future__ import annotations

from dataclasses import dataclass

from jamhost.domain.constants import MAX_WORK_ITEMS
from jamhost.domain.fields import BLOB, HASH, U32, Field, Nested, SeqOf
from jamhost.domain.hashing import blake2b_256
from jamhost.domain.record import Record
from jamhost.domain.types.refine_context import RefineContext
from jamhost.domain.types.work_item import WorkItem


@dataclass(frozen=True, slots=True)
class WorkPackage(Record):
    """What a client submits: authorization, context and 1..I work items (w3f `work_package`).

    Field order is the GP 0.7.0 encoding order, not the order of the tuple in eq. workpackage.
    """

    auth_code_host: int
    """`h`: the service hosting the authorization code, E_4."""
    auth_code_hash: bytes
    """`u`: hash of the authorization code."""
    context: RefineContext
    """`c`: the refinement context."""
    authorization: bytes
    """`j`: the authorization token, ↕."""
    authorizer_config: bytes
    """`f`: the authorizer's configuration blob, ↕."""
    items: tuple[WorkItem, ...]
    """`w`: the work items, ↕, 1..I of them."""

    FIELDS = (
        Field("auth_code_host", U32),
        Field("auth_code_hash", HASH),
        Field("context", Nested(RefineContext)),
        Field("authorization", BLOB),
        Field("authorizer_config", BLOB),
        Field("items", SeqOf(Nested(WorkItem), min_len=1, max_len=MAX_WORK_ITEMS)),
    )

    def hash(self) -> bytes:
        """The package id: blake2b-256 of its GP encoding."""
        return blake2b_256(self.encode())
