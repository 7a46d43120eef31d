"""The work pipeline: claim a package, refine it (its attestors' independence is
app/attestation.py's), attest, and accumulate the report into its service's state, extending
the receipt chain (SPEC §1, §4).

Equal report hashes from the `attestation_threshold` attestors -> attestations stored and
accumulate runs once (`applied`); different hashes -> `disputed`, nothing applied, the hashes
kept in the package's `detail` and logged. A package that cannot be run is `failed` with a
reason. Every outcome is written in one transaction by the worker that holds the claim.
"""

from __future__ import annotations

import json
from contextlib import ExitStack
from dataclasses import dataclass, replace
from functools import partial

from jamhost.app import charges
from jamhost.app.accumulation import accumulate_package
from jamhost.app.accumulation_record import bounded_logs
from jamhost.app.attestation import Refine, attest_runs, recheck_engine
from jamhost.app.decoded_packages import decoded
from jamhost.app.deliveries import deliver_due, deliver_follow_ups
from jamhost.app.heartbeat import Heartbeat
from jamhost.app.lookup_cache import own_preimages
from jamhost.app.preemption import Preemptor, safe_points
from jamhost.app.runtime import Runtime
from jamhost.app.segments import export_set, sweep
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
from jamhost.engine import RefineInputError, refine_package
from jamhost.engine.attest import sign
from jamhost.observability import (
    GAS_USED,
    PACKAGE_SECONDS,
    PACKAGES,
    QUEUE_WAIT,
    ServiceLabel,
    get_logger,
)
from jamhost.pvm import safepoint
from jamhost.tenancy import fairness, tariff

log = get_logger("jamhost.pipeline")

MAX_ATTEMPTS = 5
MAX_CONFLICT_RETRIES = 20

__all__ = ["Refine", "after_run_units", "process_claimed", "process_next", "run_claimed"]


def process_next(rt: Runtime, worker: str, *, refine: Refine = refine_package,
                 preempt: bool = False) -> bytes | None:
    """Claim and process one package; its id, or None when nothing is waiting.

    `preempt` (the worker pool's, with the `preempt` key on): the package lets other
    accounts' packages run nested at its safe points (app/preemption.py); without it (the
    operator's `POST /jam/process`, the demo) exactly one package is processed.

    The claim is fair across accounts (tenancy/fairness.py) and leased for `lease_seconds`;
    a heartbeat renews the lease while the package runs, so a package longer than the lease
    finishes once, and a worker that dies stops renewing and leaves it to be retried."""
    lease_us = int(rt.settings.lease_seconds * 1_000_000)
    seen = rt.work_ready.seen()  # before the claim: what its snapshot may have missed
    claimed = rt.store.claim_package(worker, now_us(), lease_us,
                                     max_running=rt.settings.workers_per_account,
                                     weights=rt.settings.account_weights)
    # Free the space of exported segments past their retention (at most every SWEEP_EVERY).
    sweep(rt)
    if claimed is None:
        # Idle: deliver inputs left queued (a follow-up that a crash or a conflict cut short).
        deliver_due(rt)
        return None
    run_claimed(rt, claimed, worker, refine=refine, preempt=preempt, seen=seen)
    return claimed.id


def run_claimed(rt: Runtime, claimed: PackageRecord, worker: str, *,
                refine: Refine = refine_package, preempt: bool = False,
                seen: int | None = None) -> None:
    """Run a package `worker` claimed to its end: heartbeat, process, finish (a claim of
    process_next, or one a running package's preemption took, app/preemption.py). `seen`:
    the WorkSignal's number read before the claim."""
    lease_us = int(rt.settings.lease_seconds * 1_000_000)
    if claimed.attempts == 1:
        QUEUE_WAIT.observe(max(0.0, ((claimed.started_at or now_us()) - claimed.created_at)
                               / 1e6))
    # `ahead`: open to the finish, the marks of the accounts this package is ahead of
    # (app/preemption.py, "Yielding"); their packages yield to it until then
    with Heartbeat(rt, claimed.id, worker, lease_us), ExitStack() as ahead:
        processed = _process(rt, claimed, worker, refine, preempt, seen, ahead)
        outcome = processed.outcome
        try:
            done = _finish_within_quota(rt, processed)
        except StorageQuotaExceeded as exc:
            reason = ("the exported segments would exceed the storage quota"
                      if isinstance(exc, SegmentQuotaExceeded)
                      else "accumulate would exceed the storage quota")
            outcome = PackageOutcome(claimed.id, claimed.service_id, worker, "failed",
                                     report=outcome.report, attestations=outcome.attestations,
                                     failure_reason=reason, refund=outcome.refund)
            done = rt.store.finish_package(outcome)
    if processed.hook is not None:  # its last safe point: before the follow-ups, the next claim
        processed.hook.after_finish()
    if done:
        _observe(rt, claimed, outcome.status)
        if outcome.status == "applied" and outcome.changes is not None:
            deliver_follow_ups(rt, outcome.changes)
    else:
        log.warning("lost the claim before finishing", package=claimed.id.hex()[:16])


def _refund(rt: Runtime, pkg: PackageRecord, package: WorkPackage, refine_gas_used: int,
            svc: ServiceRecord, after_units: int = 0) -> int:
    """Give back the declared refine gas the package did not use (tenancy/fairness.py); the
    units of its claim (tenancy/tariff.py: erasure coding, code loading) are spent whatever
    refine used: those the submit charged, kept in the package's claimed refine gas. Only a
    refined package has any: an outcome without refine pays what it declared."""
    weight = fairness.weight_of(rt.settings.account_weights, svc.owner)
    used = refine_gas_used + charges.claimed_units(pkg, package) + after_units
    return fairness.refund(pkg.refine_gas + pkg.accumulate_gas, used + pkg.accumulate_gas,
                           weight)


@dataclass
class Processed:
    """A claimed package's outcome, not yet written, with what its finish reuses: the
    service as read for it (once per package: refine, accumulate and the finish's storage
    quota use this one read) and the report as refine built it (a conflict accumulates it
    again without decoding the stored bytes)."""
    outcome: PackageOutcome
    svc: ServiceRecord | None = None
    report: WorkReport | None = None
    hook: Preemptor | None = None  # the package's safe-point hook, for its last one


def _finish_within_quota(rt: Runtime, done: Processed) -> bool:
    """`_finish`; when the storage quota refuses it and expired segments held space, once
    more after sweeping them (they never count against a package: app/segments.py)."""
    try:
        return _finish(rt, done.outcome, done.svc, done.report)
    except StorageQuotaExceeded:
        if not sweep(rt, now=True):
            raise
        return _finish(rt, done.outcome, None, done.report)


def _finish(rt: Runtime, outcome: PackageOutcome, svc: ServiceRecord | None,
            report: WorkReport | None) -> bool:
    """Write the outcome; when another apply to the same service came in between, accumulate
    again on the fresh state (refine and attestations stay: they do not depend on state).
    `svc`: the service as this package read it (its storage quota), None to read it;
    `report`: the outcome's report as refine built it, None to decode it."""
    for _ in range(MAX_CONFLICT_RETRIES):
        if svc is None:
            found = rt.service_view(outcome.service_id)
            svc = found[0] if found is not None else None
        limit = svc.quota.resolve(rt.default_quota).storage_bytes if svc else None
        try:
            return rt.store.finish_package(outcome, storage_limit=limit)
        except StateConflict:
            if svc is None or outcome.report is None:
                raise
            found = rt.service_view(outcome.service_id)
            if found is None:
                raise
            svc = found[0]
            if report is None:
                report = WorkReport.decode(outcome.report.body)
            changes, seq, record = accumulate_package(rt, svc, report,
                                                      outcome.report.report_hash, fresh=True)
            # the accumulate ran again: its transfers, and so the units after the run, may differ
            # (the scheduler's refund stays the first run's: vtime is an estimate, usage exact)
            outcome = replace(outcome, changes=changes, expected_seq=seq, accumulation=record,
                              after_units=after_run_units(changes),
                              units_window=rt.gas_window())
    raise RuntimeError("the service's state kept changing; the package will be retried")


def _observe(rt: Runtime, pkg: PackageRecord, status: str) -> None:
    label = rt.extras.get("service_label")
    if label is None:  # made once per runtime (setdefault would build one for every package)
        label = rt.extras.setdefault("service_label",
                                     ServiceLabel(rt.settings.metrics_service_label))
    PACKAGES.labels(status, label(pkg.service_id)).inc()
    PACKAGE_SECONDS.labels(status).observe(max(0.0, (now_us() - pkg.created_at) / 1e6))
    log.info("package finished", package=pkg.id.hex()[:16], service_id=pkg.service_id,
             status=status, attempts=pkg.attempts)


def process_claimed(rt: Runtime, pkg: PackageRecord, worker: str, *,
                    refine: Refine = refine_package) -> PackageOutcome:
    """The outcome of a claimed package, not yet written."""
    return _process(rt, pkg, worker, refine).outcome


def _process(rt: Runtime, pkg: PackageRecord, worker: str, refine: Refine,
             preempt: bool = False, seen: int | None = None,
             ahead: ExitStack | None = None) -> Processed:
    def failed(reason: str, svc: ServiceRecord | None = None) -> Processed:
        return Processed(PackageOutcome(pkg.id, pkg.service_id, worker, "failed",
                                        failure_reason=reason), svc)

    if pkg.attempts > MAX_ATTEMPTS:
        return failed(f"gave up after {MAX_ATTEMPTS} attempts")
    found = rt.service_view(pkg.service_id)
    if found is None:
        return failed("the service no longer exists")
    svc = found[0]
    # Safe points from here to the finish (app/preemption.py): before the package's decoding,
    # before each attestor's refine (attest_runs), inside every PVM run, before the erasure
    # root (engine/refine.py), before accumulate and before the finish.
    with safe_points(rt, worker, pkg, svc.owner, partial(run_claimed, refine=refine),
                     enabled=preempt, seen=seen, ahead=ahead) as hook:
        done = _run(rt, pkg, worker, refine, svc)
        done.hook = hook
        return done


def _run(rt: Runtime, pkg: PackageRecord, worker: str, refine: Refine,
         svc: ServiceRecord) -> Processed:
    def failed(reason: str) -> Processed:
        return Processed(PackageOutcome(pkg.id, pkg.service_id, worker, "failed",
                                        failure_reason=reason), svc)

    # The first safe point, right after the claim and the service's read: a package of an
    # account the fair rule serves first (submitted while this one was being claimed, or
    # running ahead of this account on another worker) waits no longer than that
    safepoint.reach()
    package = decoded(rt, pkg)
    # The service's preimages as this package reads them: its refines' and its accumulate's
    # (the code blob read once, app/lookup_cache.py).
    own = own_preimages(rt.account_view(svc), svc.service_id)
    try:
        runs = attest_runs(rt, package, svc, refine, encoded=pkg.body, own=own)
    except RefineInputError as exc:
        return failed(str(exc))
    hashes = {r.report_hash for r in runs}
    report = runs[0].outcome.report
    if len(hashes) != 1:
        detail = {"report_hashes": {"0x" + r.attestor.public_key.hex(): "0x" + r.report_hash.hex()
                                    for r in runs}}
        log.warning("attestors disagree: package disputed", package=pkg.id.hex()[:16],
                    service_id=pkg.service_id, hashes=sorted(detail["report_hashes"].values()),
                    engines=[rt.pvm.name, recheck_engine(rt.pvm).name])
        return Processed(PackageOutcome(
            pkg.id, pkg.service_id, worker, "disputed",
            failure_reason="attestors computed different report hashes",
            detail=json.dumps(detail)), svc)
    report_hash = runs[0].report_hash
    at = now_us()
    engine = rt.pvm  # attestations name the engine that computed the report stored
    attestations = [Attestation(pkg.id, r.attestor.public_key,
                                sign(r.attestor.private_key, report_hash), engine.name,
                                engine.version, report_hash, at) for r in runs]
    refine_logs, _dropped = bounded_logs(runs[0].outcome.logs,
                                         rt.settings.max_log_bytes_per_invocation)
    record = ReportRecord(pkg.id, pkg.service_id, report_hash, runs[0].encoded, at,
                          logs=refine_logs)
    GAS_USED.labels("refine").inc(runs[0].outcome.gas_used)
    safepoint.reach()
    changes, seq, accumulation = accumulate_package(rt, svc, report, report_hash, fresh=True,
                                                    own=own)
    spec = report.package_spec
    exports = export_set(rt, pkg.service_id, spec.hash, spec.exports_root,
                         runs[0].outcome.exports)
    after = after_run_units(changes)
    outcome = PackageOutcome(pkg.id, pkg.service_id, worker, "applied", report=record,
                             attestations=attestations, changes=changes, expected_seq=seq,
                             refine_gas_used=runs[0].outcome.gas_used,
                             accumulation=accumulation, exports=exports,
                             refund=_refund(rt, pkg, package, runs[0].outcome.gas_used,
                                            svc, after),
                             after_units=after, units_window=rt.gas_window())
    safepoint.reach()  # the last one before the finish: the outcome is complete
    return Processed(outcome, svc, report)


def after_run_units(changes: StateChanges | None) -> int:
    """The tariff's units known only after the run (tenancy/tariff.py): the transfers the
    service's accumulate made."""
    return tariff.transfer_units(len(changes.transfers_out)) if changes is not None else 0
