"""The work pipeline: claim a package, refine it independently per attestor, attest, and
accumulate the report into its service's state, extending the receipt chain (SPEC §1, §4).

Equal report hashes from `attestation_threshold` attestors -> attestations stored and
accumulate runs once (`applied`); different hashes -> `disputed`, nothing applied, the hashes
kept in the package's `detail` and logged. A package that cannot be run is `failed` with a
reason. Every outcome is written in one transaction by the worker that holds the claim.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace

from jamhost.app import charges
from jamhost.app.accumulation import accumulate_package, note_dropped_logs
from jamhost.app.accumulation_record import bounded_logs
from jamhost.app.attestors import Attestor, attestors
from jamhost.app.deliveries import deliver_due, deliver_follow_ups
from jamhost.app.lookup_cache import CachedLookup
from jamhost.app.runtime import Runtime
from jamhost.app.segments import export_set, import_lookup, sweep
from jamhost.domain.hashing import blake2b_256
from jamhost.domain.model import (
    Attestation,
    PackageOutcome,
    PackageRecord,
    ReportRecord,
    ServiceRecord,
    StateChanges,
    StateConflict,
    now_us,
)
from jamhost.domain.refusals import SegmentQuotaExceeded, StorageQuotaExceeded
from jamhost.domain.types.work_package import WorkPackage
from jamhost.domain.types.work_report import WorkReport
from jamhost.engine import (
    RefineInputError,
    RefineOutcome,
    refine_package,
)
from jamhost.engine.attest import sign
from jamhost.engine.authorizer import names_authorizer
from jamhost.observability import (
    GAS_USED,
    PACKAGE_SECONDS,
    PACKAGES,
    QUEUE_WAIT,
    ServiceLabel,
    get_logger,
)
from jamhost.tenancy import fairness, tariff

log = get_logger("jamhost.pipeline")

MAX_ATTEMPTS = 5
MAX_CONFLICT_RETRIES = 20

Refine = Callable[..., RefineOutcome]


@dataclass
class Attested:
    attestor: Attestor
    outcome: RefineOutcome
    report_hash: bytes


def process_next(rt: Runtime, worker: str, *, refine: Refine = refine_package) -> bytes | None:
    """Claim and process one package; its id, or None when nothing is waiting.

    The claim is fair across accounts (tenancy/fairness.py) and leased for `lease_seconds`;
    a heartbeat renews the lease while the package runs, so a package longer than the lease
    finishes once, and a worker that dies stops renewing and leaves it to be retried."""
    lease_us = int(rt.settings.lease_seconds * 1_000_000)
    claimed = rt.store.claim_package(worker, now_us(), lease_us,
                                     max_running=rt.settings.workers_per_account,
                                     weights=rt.settings.account_weights)
    if claimed is None:
        # Idle: deliver inputs left queued (a follow-up that a crash or a conflict cut short),
        # and free the space of exported segments past their retention.
        deliver_due(rt)
        sweep(rt, idle=True)
        return None
    sweep(rt)  # the space of expired segments back before this package counts against it
    if claimed.attempts == 1:
        QUEUE_WAIT.observe(max(0.0, ((claimed.started_at or now_us()) - claimed.created_at)
                               / 1e6))
    with Heartbeat(rt, claimed.id, worker, lease_us):
        outcome = process_claimed(rt, claimed, worker, refine=refine)
        try:
            done = _finish(rt, outcome)
        except StorageQuotaExceeded as exc:
            reason = ("the exported segments would exceed the storage quota"
                      if isinstance(exc, SegmentQuotaExceeded)
                      else "accumulate would exceed the storage quota")
            outcome = PackageOutcome(claimed.id, claimed.service_id, worker, "failed",
                                     report=outcome.report, attestations=outcome.attestations,
                                     failure_reason=reason, refund=outcome.refund)
            done = rt.store.finish_package(outcome)
    if done:
        _observe(rt, claimed, outcome.status)
        if outcome.status == "applied" and outcome.changes is not None:
            deliver_follow_ups(rt, outcome.changes)
    else:
        log.warning("lost the claim before finishing", package=claimed.id.hex()[:16])
    return claimed.id


class Heartbeat:
    """Renews a claim every third of the lease while the package runs (a thread, so a long
    PVM run holding the GIL in bytecode still lets it through). Stops when the block ends;
    finishing still checks the claim, so a worker that lost it writes nothing."""

    def __init__(self, rt: Runtime, package_id: bytes, worker: str, lease_us: int) -> None:
        self._rt, self._id, self._worker, self._lease_us = rt, package_id, worker, lease_us
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f"jamhost-heartbeat-{worker}")

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self._lease_us / 3 / 1e6):
            try:
                if not self._rt.store.renew_claim(self._id, self._worker,
                                                  now_us() + self._lease_us):
                    log.warning("heartbeat: the claim is gone", package=self._id.hex()[:16])
                    return
            except Exception as exc:  # a store hiccup: try again at the next beat
                log.error("heartbeat error", error=type(exc).__name__)


def _refund(rt: Runtime, pkg: PackageRecord, package: WorkPackage, refine_gas_used: int,
            svc: ServiceRecord, after_units: int = 0) -> int:
    """Give back the declared refine gas the package did not use (tenancy/fairness.py); the
    units of its claim (tenancy/tariff.py: erasure coding, code loading) are spent whatever
    refine used. Only a refined package has any: an outcome without refine pays what it
    declared."""
    weight = fairness.weight_of(rt.settings.account_weights, svc.owner)
    used = refine_gas_used + charges.units(rt.account_view(svc), package, pkg.size) \
        + after_units
    return fairness.refund(pkg.refine_gas + pkg.accumulate_gas, used + pkg.accumulate_gas,
                           weight)


def _finish(rt: Runtime, outcome: PackageOutcome) -> bool:
    """Write the outcome; when another apply to the same service came in between, accumulate
    again on the fresh state (refine and attestations stay: they do not depend on state)."""
    for _ in range(MAX_CONFLICT_RETRIES):
        found = rt.service_view(outcome.service_id)
        svc = found[0] if found is not None else None
        limit = svc.quota.resolve(rt.default_quota).storage_bytes if svc else None
        try:
            return rt.store.finish_package(outcome, storage_limit=limit)
        except StateConflict:
            if svc is None or outcome.report is None:
                raise
            report = WorkReport.decode(outcome.report.body)
            changes, seq, record = accumulate_package(rt, svc, report,
                                                      outcome.report.report_hash)
            # the accumulate ran again: its transfers, and so the units after the run, may differ
            # (the scheduler's refund stays the first run's: vtime is an estimate, usage exact)
            outcome = replace(outcome, changes=changes, expected_seq=seq, accumulation=record,
                              after_units=after_run_units(changes),
                              units_window=rt.gas_window())
    raise RuntimeError("the service's state kept changing; the package will be retried")


def _observe(rt: Runtime, pkg: PackageRecord, status: str) -> None:
    label = rt.extras.setdefault("service_label", ServiceLabel(rt.settings.metrics_service_label))
    PACKAGES.labels(status, label(pkg.service_id)).inc()
    PACKAGE_SECONDS.labels(status).observe(max(0.0, (now_us() - pkg.created_at) / 1e6))
    log.info("package finished", package=pkg.id.hex()[:16], service_id=pkg.service_id,
             status=status, attempts=pkg.attempts)


def process_claimed(rt: Runtime, pkg: PackageRecord, worker: str, *,
                    refine: Refine = refine_package) -> PackageOutcome:
    def failed(reason: str) -> PackageOutcome:
        return PackageOutcome(pkg.id, pkg.service_id, worker, "failed", failure_reason=reason)

    if pkg.attempts > MAX_ATTEMPTS:
        return failed(f"gave up after {MAX_ATTEMPTS} attempts")
    found = rt.service_view(pkg.service_id)
    if found is None:
        return failed("the service no longer exists")
    svc = found[0]
    package = WorkPackage.decode(pkg.body)
    try:
        runs = attest_runs(rt, package, pkg.service_id, refine)
    except RefineInputError as exc:
        return failed(str(exc))
    hashes = {r.report_hash for r in runs}
    report = runs[0].outcome.report
    if len(hashes) != 1:
        detail = {"report_hashes": {"0x" + r.attestor.public_key.hex(): "0x" + r.report_hash.hex()
                                    for r in runs}}
        log.warning("attestors disagree: package disputed", package=pkg.id.hex()[:16],
                    service_id=pkg.service_id, hashes=sorted(detail["report_hashes"].values()))
        return PackageOutcome(pkg.id, pkg.service_id, worker, "disputed",
                              failure_reason="attestors computed different report hashes",
                              detail=json.dumps(detail))
    report_hash = runs[0].report_hash
    at = now_us()
    engine = rt.pvm  # attestations name the engine that computed the report
    attestations = [Attestation(pkg.id, r.attestor.public_key,
                                sign(r.attestor.private_key, report_hash), engine.name,
                                engine.version, report_hash, at) for r in runs]
    refine_logs, _dropped = bounded_logs(runs[0].outcome.logs,
                                         rt.settings.max_log_bytes_per_invocation)
    record = ReportRecord(pkg.id, pkg.service_id, report_hash, report.encode(), at,
                          logs=refine_logs)
    GAS_USED.labels("refine").inc(runs[0].outcome.gas_used)
    changes, seq, accumulation = accumulate_package(rt, svc, report, report_hash)
    spec = report.package_spec
    exports = export_set(rt, pkg.service_id, spec.hash, spec.exports_root,
                         runs[0].outcome.exports)
    after = after_run_units(changes)
    return PackageOutcome(pkg.id, pkg.service_id, worker, "applied", report=record,
                          attestations=attestations, changes=changes, expected_seq=seq,
                          refine_gas_used=runs[0].outcome.gas_used,
                          accumulation=accumulation, exports=exports,
                          refund=_refund(rt, pkg, package, runs[0].outcome.gas_used,
                                         svc, after),
                          after_units=after, units_window=rt.gas_window())


def after_run_units(changes: StateChanges | None) -> int:
    """The tariff's units known only after the run (tenancy/tariff.py): the transfers the
    service's accumulate made."""
    return tariff.transfer_units(len(changes.transfers_out)) if changes is not None else 0


def attest_runs(rt: Runtime, package: WorkPackage, service_id: int,
                refine: Refine) -> list[Attested]:
    """Each of the first `attestation_threshold` attestors refines the package on its own."""
    found = rt.service_view(service_id)  # the service's own account view (tenancy/view.py)
    svc, view = found if found is not None else (None, None)

    def own_preimage(service: int, hash_: bytes) -> bytes | None:
        # Refine sees only its own service's preimages (code included).
        if view is None or service != service_id:
            return None
        return view.service_preimage(service, hash_)

    def own_window(service: int, hash_: bytes, at: int, n: int) -> tuple[int, bytes] | None:
        if view is None or service != service_id:
            return None
        return view.service_preimage_window(service, hash_, at, n)

    # One read per blob for the whole package (every attestor, every historical_lookup), and
    # historical_lookup reads |v| and a window of the blob, not all of it.
    own = CachedLookup(own_preimage, window_read=own_window)
    auth_code = authorizer_code(rt, package, service_id)
    # Imports resolve once per package among the owner's exports (app/segments.py).
    imports = import_lookup(rt, svc) if svc is not None else None
    runs = []
    for attestor in attestors(rt)[: rt.settings.attestation_threshold]:
        outcome = refine(package, code_lookup=own, preimage_lookup=own,
                         max_log_bytes=rt.settings.max_log_bytes_per_invocation,
                         authorizer_code=auth_code, engine=rt.pvm, import_lookup=imports)
        note_dropped_logs(service_id, "refine", outcome.logs_dropped)
        runs.append(Attested(attestor, outcome, blake2b_256(outcome.report.encode())))
    return runs


def authorizer_code(rt: Runtime, package: WorkPackage, service_id: int) -> bytes | None:
    """The code preimage of the package's authorizer, if the package names one its service
    may use (tenancy.authz); None otherwise, which refine reports as not authorized."""
    if not names_authorizer(package):
        return None
    found = rt.service_view(service_id)
    if found is None:
        return None
    svc, view = found
    return view.authorizer_code(svc, package.auth_code_host, package.auth_code_hash)
