"""SegmentRootLookupItem, one entry of a report's `l ∈ D⟨H → H⟩` (GP 0.7.0 §11.1.1)."""

from __future__ import annotations

from dataclasses import dataclass

from jamhost.domain.fields import HASH, Field
from jamhost.domain.record import Record


@dataclass(frozen=True, slots=True)
class SegmentRootLookupItem(Record):
    """Work-package hash -> segment root, for imports named by package hash (h⊞)."""

    work_package_hash: bytes
    """Key: hash of the exporting work package."""
    segment_tree_root: bytes
    """Value: the segment root its report committed to."""

    FIELDS = (Field("work_package_hash", HASH), Field("segment_tree_root", HASH))
