"""Codec type names, as used by the w3f vectors and `jamhost codec`."""

from __future__ import annotations

from jamhost.domain.record import Codable
from jamhost.domain.types import (
    AvailabilitySpec,
    ExtrinsicSpec,
    ImportSpec,
    RefineContext,
    RefineLoad,
    SegmentRootLookupItem,
    WorkDigest,
    WorkExecResult,
    WorkItem,
    WorkPackage,
    WorkReport,
)

#: Name -> GP type. Names are the w3f file stems (`codec/*/work_result_0.json` is a
#: `work_result`) or, for the types without a vector, the ASN.1 field names.
CODEC_TYPES: dict[str, type[Codable]] = {
    "refine_context": RefineContext,
    "import_spec": ImportSpec,
    "extrinsic_spec": ExtrinsicSpec,
    "work_item": WorkItem,
    "work_package": WorkPackage,
    "package_spec": AvailabilitySpec,
    "work_exec_result": WorkExecResult,
    "refine_load": RefineLoad,
    "work_result": WorkDigest,
    "segment_root_lookup_item": SegmentRootLookupItem,
    "work_report": WorkReport,
}

#: Other accepted spellings: GP 0.7.0 names.
CODEC_TYPE_ALIASES: dict[str, str] = {
    "work_digest": "work_result",
    "availability_spec": "package_spec",
}


def codec_type(name: str) -> type[Codable] | None:
    """The GP type called `name` (or one of its aliases), or None if there is none."""
    return CODEC_TYPES.get(CODEC_TYPE_ALIASES.get(name, name))
