"""The GP types of work packages and work reports, one type per module."""

from jamhost.domain.types.availability_spec import AvailabilitySpec, WorkPackageSpec
from jamhost.domain.types.extrinsic_spec import ExtrinsicSpec
from jamhost.domain.types.import_spec import ImportSpec
from jamhost.domain.types.refine_context import RefineContext
from jamhost.domain.types.refine_load import RefineLoad
from jamhost.domain.types.segment_root_lookup import SegmentRootLookupItem
from jamhost.domain.types.work_digest import WorkDigest, WorkResult
from jamhost.domain.types.work_exec_result import WorkExecKind, WorkExecResult
from jamhost.domain.types.work_item import WorkItem
from jamhost.domain.types.work_package import WorkPackage
from jamhost.domain.types.work_report import WorkReport

__all__ = [
    "AvailabilitySpec",
    "ExtrinsicSpec",
    "ImportSpec",
    "RefineContext",
    "RefineLoad",
    "SegmentRootLookupItem",
    "WorkDigest",
    "WorkExecKind",
    "WorkExecResult",
    "WorkItem",
    "WorkPackage",
    "WorkPackageSpec",
    "WorkReport",
    "WorkResult",
]
