"""Exported segments kept for imports: jamhost's D³L (GP 0.7.2 §14.3), one tenant at a time.

An applied package's exports are kept as s ++ P(s) (the segments and their paged proofs) for
the exporting service, found by the report's segments root and by the package hash, until
`runtime.jam.segment_retention_seconds` after the apply; they count in the service's storage
usage until they expire. A package's imports resolve among the exports of its owner's
services only (the account view of the package's service, `Runtime.account_view`, scoped by
`Policy.import_scope`): another tenant's segment is answered exactly as one that does not
exist, at submission (400) and in the worker (`failed`).
"""

from __future__ import annotations

import time

from jamhost.app.runtime import Runtime
from jamhost.domain.model import ExportSet, ServiceRecord, now_us
from jamhost.domain.refusals import BadRequest
from jamhost.domain.types import ImportSpec, WorkPackage
from jamhost.engine.constants import ProtocolConstants
from jamhost.engine.erasure import paged_proofs
from jamhost.engine.segments import (
    MAX_SEGMENT_ROOT_LOOKUPS,
    PAGE_LEAVES,
    ImportedSegment,
    ImportLookup,
    ProofPage,
    unavailable,
)
from jamhost.observability import get_logger
from jamhost.tenancy.view import TenantView

log = get_logger("jamhost.segments")

#: How often (seconds) at most a worker sweeps expired segments.
SWEEP_EVERY = 10.0


def export_set(rt: Runtime, service_id: int, package_hash: bytes, segments_root: bytes,
               exports: list[bytes]) -> ExportSet | None:
    """What to keep of an applied package's exports (None when it exported nothing)."""
    if not exports:
        return None
    at = now_us()
    return ExportSet(service_id, package_hash, segments_root, len(exports), at,
                     at + rt.settings.segment_retention_seconds * 1_000_000,
                     tuple(exports) + tuple(paged_proofs(exports, len(exports[0]))))


def _export_set(view: TenantView, key: tuple[bool, bytes], now: int) -> ExportSet | None:
    """The kept set an import's h names: (True, package hash) or (False, segments root)."""
    by_package, h = key
    if by_package:
        return view.find_export_set(now, package_hash=h)
    return view.find_export_set(now, segments_root=h)



def import_lookup(rt: Runtime, svc: ServiceRecord) -> ImportLookup:
    """The worker's D³L for one package of `svc`: each import read once (the attestors share
    it), its export set found once per root or package hash, each proof page read once, and
    J_0 derived from the page."""
    view = rt.account_view(svc)
    now = now_us()
    answers: dict[ImportSpec, ImportedSegment | None] = {}
    sets: dict[tuple[bool, bytes], ExportSet | None] = {}
    pages: dict[tuple[int, bytes, int], ProofPage | None] = {}

    def lookup(spec: ImportSpec) -> ImportedSegment | None:
        if spec not in answers:
            answers[spec] = _read(spec)
        return answers[spec]

    def _read(spec: ImportSpec) -> ImportedSegment | None:
        key = (spec.is_package_hash, spec.tree_root)
        if key not in sets:
            sets[key] = _export_set(view, key, now)
        found = sets[key]
        n = spec.segment_index
        if found is None or n >= found.count:
            return None
        page_key = (found.service_id, found.package_hash, found.count + n // PAGE_LEAVES)
        wanted = [n] if page_key in pages else [n, page_key[2]]
        rows = view.read_segments(found.service_id, found.package_hash, wanted)
        if page_key not in pages:
            raw = rows.get(page_key[2])
            pages[page_key] = None if raw is None else ProofPage.decode(raw, found.count)
        page = pages[page_key]
        if n not in rows or page is None:
            return None  # expired and swept in between
        return ImportedSegment(rows[n], tuple(page.justification(n)), found.segments_root)

    return lookup


def check_segments(rt: Runtime, svc: ServiceRecord, pkg: WorkPackage) -> None:
    """At submission: at most W_X exports in all; every import must name a kept, unexpired
    export of the submitter's owner's services (BadRequest otherwise, one message for a
    foreign, a missing and an expired segment), within GP's W_M and |l| ≤ 8. The worker
    checks again (the segment may expire in between) and fails the package with the same
    message."""
    constants = ProtocolConstants.full()
    if sum(item.export_count for item in pkg.items) > constants.max_package_exports:
        raise BadRequest(f"the package exports more than W_X = "
                         f"{constants.max_package_exports} segments")
    specs = [(i, j, spec) for i, item in enumerate(pkg.items)
             for j, spec in enumerate(item.import_segments)]
    if not specs:
        return
    limit = constants.max_package_imports
    if len(specs) > limit:
        raise BadRequest(f"the package imports more than W_M = {limit} segments")
    if len({s.tree_root for _, _, s in specs if s.is_package_hash}) > MAX_SEGMENT_ROOT_LOOKUPS:
        raise BadRequest(f"the package names more than {MAX_SEGMENT_ROOT_LOOKUPS} exporting "
                         "packages by hash")
    view, now = rt.account_view(svc), now_us()
    sets: dict[tuple[bool, bytes], ExportSet | None] = {}
    for i, j, spec in specs:
        key = (spec.is_package_hash, spec.tree_root)
        if key not in sets:
            sets[key] = _export_set(view, key, now)
        found = sets[key]
        if found is None or spec.segment_index >= found.count:
            raise BadRequest(unavailable(i, j))


def sweep(rt: Runtime, *, now: bool = False) -> int:
    """Drop expired segments and give their bytes back, at most every SWEEP_EVERY seconds
    per runtime (the first call sweeps at once; `now`: whatever the time since the last),
    on the clock segments expire by: space held by an expired segment comes back within
    SWEEP_EVERY of its expiry, busy or idle, off the path of each package. A package whose
    apply the storage quota refuses sweeps `now` and tries once more (app/pipeline.py), so
    expired segments never count against a package. Lookups never see an expired segment
    either way: this frees the space."""
    last = rt.extras.get("segments_swept_at")
    clock = time.time()
    if not now and last is not None and 0 <= clock - last < SWEEP_EVERY:
        return 0
    rt.extras["segments_swept_at"] = clock
    try:
        gone = rt.store.expire_segments(now_us())
    except Exception as exc:  # a store hiccup must not cost the claimed package: next time
        log.error("segment sweep failed", error=type(exc).__name__)
        return 0
    if gone:
        log.info("expired exported segments", sets=gone)
    return gone
