"""Refine: Ψ_R per work item and the work report of a package (GP 0.7.2 §14.4, §B.4).

`refine_package` plays the guarantor of GP §14.4 (Ξ, eq. workdigestfunction) for one package:
every item runs its service's code at pc 0 with the GP refine arguments, its digest records
the output or the GP error, and the report is built per eq. workreport, after Ψ_I when the
package names an authorizer (engine/authorizer.py), with the imports its items name
(engine/segments.py: the segments, their justifications and the segment-root lookup), and
with the erasure root of its bundle and exports (engine/erasure.py). Where jamhost has no
chain (no data-availability network) the fields it fills differently are listed in
docs/engine.md.

Host calls in refine (GP 0.7.2 §B.6, §B.7): gas (0), fetch (1), historical_lookup (6),
export (7), the inner-PVM calls machine..expunge (8-13, engine/inner_machines.py) and JIP-1
log (100).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from jamhost.domain.codec import encode_blob, encode_natural
from jamhost.domain.hashing import blake2b_256
from jamhost.domain.types import (
    AvailabilitySpec,
    RefineLoad,
    WorkDigest,
    WorkExecResult,
    WorkItem,
    WorkPackage,
    WorkReport,
)
from jamhost.engine.authorizer import is_authorized, names_authorizer
from jamhost.engine.constants import (
    DEFAULT_MAX_LOG_BYTES,
    FULL,
    REFINE_PC,
    SELF,
    HostCall,
    ProtocolConstants,
)
from jamhost.engine.erasure import erasure_root
from jamhost.engine.fetch import FetchSource
from jamhost.engine.hostio import LogSink, PreimageCall, Window, dispatch, gas_call, read
from jamhost.engine.inner_machines import InnerMachines
from jamhost.engine.merkle import ZERO_HASH, constant_depth_root
from jamhost.engine.segments import ImportLookup, ImportUnavailable, resolve_imports
from jamhost.pvm import safepoint
from jamhost.pvm.host import _default_engine as default_engine
from jamhost.pvm.host import invoke_service_code
from jamhost.pvm.interface import PvmEngine, PvmInstance, Status

#: code_lookup(service, code_hash) and preimage_lookup(service, hash): a blob or None.
Lookup = Callable[[int, bytes], "bytes | None"]

__all__ = [
    "ItemRefinement",
    "RefineInputError",
    "RefineOutcome",
    "authorizer_hash",
    "refine_arguments",
    "refine_item",
    "refine_package",
]


class RefineInputError(ValueError):
    """The package cannot be refined at all (GP: a guarantor would not guarantee it)."""


@dataclass(frozen=True, slots=True)
class ItemRefinement:
    """What Ψ_R gave for one item, after the report rules I of GP 0.7.2 §14.4."""

    result: WorkExecResult
    gas_used: int
    exports: tuple[bytes, ...]
    logs: tuple[str, ...] = ()
    logs_dropped: int = 0


@dataclass(slots=True)
class RefineOutcome:
    """The report of a package, all segments it exported, total refine gas and the logs."""

    report: WorkReport
    exports: list[bytes]
    gas_used: int
    logs: list[str]
    items: list[ItemRefinement] = field(default_factory=list)
    logs_dropped: int = 0
    """`log` messages past each item's per-invocation cap, not kept (see hostio.LogSink)."""


def authorizer_hash(package: WorkPackage) -> bytes:
    """p_a = H(p_u ++ p_f) (GP 0.7.2 §14.3)."""
    return blake2b_256(package.auth_code_hash + package.authorizer_config)


def refine_arguments(core: int, index: int, item: WorkItem, package_hash: bytes) -> bytes:
    """a = E(c, i, w_s, ↕w_y, H(p)) (GP 0.7.2 eq. refinvocation)."""
    out = bytearray()
    encode_natural(out, core)
    encode_natural(out, index)
    encode_natural(out, item.service)
    encode_blob(out, item.payload)
    out += package_hash
    return bytes(out)


class _RefineHost:
    """The refine context (m, e) and the host calls of F (GP 0.7.2 eq. refinemutator)."""

    def __init__(
        self,
        item: WorkItem,
        index: int,
        fetch: FetchSource,
        preimage_lookup: Lookup,
        export_offset: int,
        constants: ProtocolConstants,
        engine: PvmEngine,
        max_log_bytes: int = DEFAULT_MAX_LOG_BYTES,
    ) -> None:
        self.item = item
        self.index = index
        self.preimage_lookup = preimage_lookup
        self.export_offset = export_offset
        self.constants = constants
        self.exports: list[bytes] = []
        self.log = LogSink(f"#{item.service} refine[{index}]", max_log_bytes)
        inner = InnerMachines(engine)
        self.handler = dispatch(
            {
                HostCall.GAS: gas_call,
                HostCall.FETCH: fetch,
                HostCall.HISTORICAL_LOOKUP: PreimageCall(
                    self.preimage, item.service,
                    self.preimage_window if hasattr(preimage_lookup, "window") else None),
                HostCall.EXPORT: self.export,
                HostCall.MACHINE: inner.machine,
                HostCall.PEEK: inner.peek,
                HostCall.POKE: inner.poke,
                HostCall.PAGES: inner.pages,
                HostCall.INVOKE: inner.invoke,
                HostCall.EXPUNGE: inner.expunge,
            },
            self.log,
        )

    def preimage(self, service: int, h: bytes) -> bytes | None:
        """What Ω_H (ω7 = service, 2^64-1: own; the hash at ω8) answers, the rest being
        hostio.PreimageCall's. jamhost answers only for the item's own service (a tenant's
        refine code must not read another tenant's preimages); any other id answers NONE."""
        if service in (SELF, self.item.service):
            return self.preimage_lookup(self.item.service, h)
        return None

    def preimage_window(self, service: int, h: bytes, offset: int, limit: int) \
            -> Window | None:
        """`preimage` read as a window (a lookup with a `window` method: app/lookup_cache.py's
        CachedLookup over the store's window read)."""
        if service in (SELF, self.item.service):
            # type-ignore reason: a Lookup is a plain callable; this one has a `window` method
            #   (hasattr, checked where this method is handed out), untyped
            return self.preimage_lookup.window(  # type: ignore[attr-defined, no-any-return]
                self.item.service, h, offset, limit)
        return None

    def export(self, vm: PvmInstance) -> Status | None:
        """Ω_E: export μ[ω7..+min(ω8, W_G)] zero-padded to W_G; ω7 = its segment index."""
        size = self.constants.ec_piece_size * self.constants.segment_ec_pieces
        data = read(vm, vm.get_register(7), min(vm.get_register(8), size))
        index = self.export_offset + len(self.exports)
        if index >= self.constants.max_package_exports:
            vm.set_register(7, FULL)
            return None
        self.exports.append(data + bytes(size - len(data)))
        vm.set_register(7, index)
        return None


def refine_item(  # noqa: PLR0913 - the arguments of Ψ_R
    package: WorkPackage,
    index: int,
    *,
    code_lookup: Lookup,
    preimage_lookup: Lookup,
    core_index: int,
    export_offset: int,
    extrinsics: Sequence[Sequence[bytes]],
    constants: ProtocolConstants,
    engine: PvmEngine | None = None,
    max_log_bytes: int = DEFAULT_MAX_LOG_BYTES,
    auth_trace: bytes = b"",
    imports: Sequence[Sequence[bytes]] | None = None,
    package_hash: bytes | None = None,
) -> tuple[WorkExecResult, list[bytes], int, list[str], int]:
    """Ψ_R(c, i, p, r, ī, ℓ) (GP 0.7.2 eq. refinvocation), ī = `imports` (S(w) per item):
    (result, exports, u, logs kept, logs dropped past `max_log_bytes`). `package_hash`:
    H(p) when the caller has it."""
    item = package.items[index]
    code = code_lookup(item.service, item.code_hash)
    if code is None:
        return WorkExecResult.bad_code(), [], 0, [], 0
    if len(code) > constants.max_service_code_size:
        return WorkExecResult.code_oversize(), [], 0, [], 0
    fetch = FetchSource(
        constants,
        package=package,
        entropy=ZERO_HASH,
        auth_trace=auth_trace,
        item_index=index,
        imports=imports if imports is not None else [[] for _ in package.items],
        extrinsics=extrinsics,
    )
    engine = engine or default_engine()  # the inner machines run on the same engine
    host = _RefineHost(
        item, index, fetch, preimage_lookup, export_offset, constants, engine, max_log_bytes
    )
    args = refine_arguments(core_index, index, item,
                            package_hash if package_hash is not None else package.hash())
    run = invoke_service_code(
        code, REFINE_PC, item.refine_gas_limit, args, host.handler, engine=engine
    )
    logs, dropped = host.log.lines, host.log.dropped
    if run.status is Status.HALT:
        return WorkExecResult.ok(run.output or b""), host.exports, run.gas_used, logs, dropped
    if run.status is Status.OUT_OF_GAS:
        return WorkExecResult.out_of_gas(), [], run.gas_used, logs, dropped
    return WorkExecResult.panic(), [], run.gas_used, logs, dropped


def _extrinsics(package: WorkPackage, preimage_lookup: Lookup) -> list[list[bytes]]:
    """x̄: each item's extrinsic blobs, found as preimages of the item's service by hash."""
    out: list[list[bytes]] = []
    for item in package.items:
        blobs: list[bytes] = []
        for spec in item.extrinsic:
            blob = preimage_lookup(item.service, spec.hash)
            if blob is None or len(blob) != spec.len or blake2b_256(blob) != spec.hash:
                raise RefineInputError(f"extrinsic 0x{spec.hash.hex()} is not available")
            blobs.append(blob)
        out.append(blobs)
    return out


def refine_package(
    package: WorkPackage,
    *,
    code_lookup: Lookup,
    preimage_lookup: Lookup,
    core_index: int = 0,
    engine: PvmEngine | None = None,
    constants: ProtocolConstants | None = None,
    max_log_bytes: int = DEFAULT_MAX_LOG_BYTES,
    authorizer_code: bytes | None = None,
    import_lookup: ImportLookup | None = None,
    encoded: bytes | None = None,
) -> RefineOutcome:
    """Refine every item of `package` and build its work report (GP 0.7.2 §14.4).

    `code_lookup(service, code_hash)` returns the code preimage E(↕m, c) or None (then the
    item's result is BAD); `preimage_lookup(service, hash)` serves historical_lookup and the
    item's extrinsics; `import_lookup(spec)` gives each imported segment with its
    justification (engine/segments.py). Raises RefineInputError when the package names an
    import or an extrinsic that is not available. Deterministic: no clock,
    no randomness, no state beyond the lookups. Each item keeps at most `max_log_bytes`
    octets of `log` lines (`runtime.jam.max_log_bytes_per_invocation`)..

    When the package names an authorizer (`names_authorizer`), `authorizer_code` is its code
    preimage (None: not available) and Ψ_I runs first; a package it does not authorize raises
    RefineInputError. `encoded`: E(p) when the caller has it (the stored package body),
    else encoded here."""
    constants = constants or ProtocolConstants.full()
    auth_trace, auth_gas = b"", 0
    if names_authorizer(package):
        auth = is_authorized(package, authorizer_code, core_index, constants, engine)
        if auth.output is None:
            raise RefineInputError(f"the authorizer did not authorize the package: {auth.error}")
        auth_trace, auth_gas = auth.output, auth.gas_used
    try:
        imports = resolve_imports(package, import_lookup, constants)
    except ImportUnavailable as exc:
        raise RefineInputError(str(exc)) from None
    extrinsics = _extrinsics(package, preimage_lookup)
    if encoded is None:
        encoded = package.encode()
    package_hash = blake2b_256(encoded)
    digests: list[WorkDigest] = []
    items: list[ItemRefinement] = []
    all_exports: list[bytes] = []
    logs: list[str] = []
    offset = 0
    outputs_size = len(auth_trace)  # z: |auth trace| + the ok outputs so far
    for index, item in enumerate(package.items):
        result, exports, used, item_logs, item_dropped = refine_item(
            package,
            index,
            code_lookup=code_lookup,
            preimage_lookup=preimage_lookup,
            core_index=core_index,
            export_offset=offset,
            extrinsics=extrinsics,
            constants=constants,
            engine=engine,
            max_log_bytes=max_log_bytes,
            auth_trace=auth_trace,
            imports=imports.segments,
            package_hash=package_hash,
        )
        # I(p, j) of GP 0.7.2 §14.4: oversize, then export-count mismatch.
        zero_exports = [bytes(constants.ec_piece_size * constants.segment_ec_pieces)]
        if len(result.output) + outputs_size > constants.max_report_var_size:
            result, exports = WorkExecResult.output_oversize(), zero_exports * item.export_count
        elif len(exports) != item.export_count:
            result, exports = WorkExecResult.bad_exports(), zero_exports * item.export_count
        elif not result.is_ok:
            exports = zero_exports * item.export_count
        if result.is_ok:
            outputs_size += len(result.output)
        offset += item.export_count
        all_exports += exports
        logs += item_logs
        items.append(
            ItemRefinement(result, used, tuple(exports), tuple(item_logs), item_dropped)
        )
        digests.append(
            WorkDigest(
                service_id=item.service,
                code_hash=item.code_hash,
                payload_hash=blake2b_256(item.payload),
                accumulate_gas=item.accumulate_gas_limit,
                result=result,
                refine_load=RefineLoad(
                    gas_used=used,
                    imports=len(item.import_segments),
                    extrinsic_count=len(item.extrinsic),
                    extrinsic_size=sum(x.len for x in item.extrinsic),
                    exports=item.export_count,
                ),
            )
        )
    # A safe point (pvm/safepoint.py) between the items' runs and the erasure root: the
    # root is a package's longest stretch of Python outside the PVM (about a third of a
    # one-step package's work), and nothing of this refine is held open across it
    safepoint.reach()
    # b = E(p, x̄, ī, j̄) (GP 0.7.2 §14.4): no length prefixes but the justifications'.
    bundle = (encoded + b"".join(blob for blobs in extrinsics for blob in blobs)
              + imports.bundle_part)
    report = WorkReport(
        package_spec=AvailabilitySpec(
            hash=package_hash,
            length=len(bundle),
            erasure_root=erasure_root(
                bundle, all_exports, constants.ec_piece_size, constants.validator_count
            ),
            exports_root=constant_depth_root(all_exports),
            exports_count=len(all_exports),
        ),
        context=package.context,
        core_index=core_index,
        authorizer_hash=authorizer_hash(package),
        auth_gas_used=auth_gas,
        auth_output=auth_trace,
        segment_root_lookup=imports.segment_root_lookup,
        results=tuple(digests),
    )
    return RefineOutcome(
        report=report,
        exports=all_exports,
        gas_used=sum(i.gas_used for i in items),
        logs=logs,
        items=items,
        logs_dropped=sum(i.logs_dropped for i in items),
    )
