"""ImportSpec, one imported segment of a work item (GP 0.7.0 §14.3; codec I(...) in §C.2)."""

from __future__ import annotations

from dataclasses import dataclass

from jamhost.domain.constants import IMPORT_PACKAGE_HASH_FLAG
from jamhost.domain.fields import HASH, U16, Field
from jamhost.domain.record import Record


@dataclass(frozen=True, slots=True)
class ImportSpec(Record):
    """A segment to import, `(h ∈ H ∪ H⊞, i)`, held in its encoded form (w3f `import_spec`).

    GP encodes `(h, i)` as `h ++ E_2(i)` for a segment root and `r ++ E_2(i + 2^15)` for a
    work-package hash `r⊞`. The w3f vectors keep the encoded 16-bit index, and so do we, so
    that every value round-trips byte for byte; `is_package_hash` and `segment_index` unpack it.
    """

    tree_root: bytes
    """`h`: the segment root, or the exporting work-package hash when bit 15 of `index` is set."""
    index: int
    """`i` (with the h⊞ flag in bit 15): E_2."""

    FIELDS = (Field("tree_root", HASH), Field("index", U16))

    @property
    def is_package_hash(self) -> bool:
        """True when `tree_root` names a work package (h⊞) rather than a segment root."""
        return bool(self.index & IMPORT_PACKAGE_HASH_FLAG)

    @property
    def segment_index(self) -> int:
        """The segment's index within its export tree, without the h⊞ flag."""
        return self.index & (IMPORT_PACKAGE_HASH_FLAG - 1)
