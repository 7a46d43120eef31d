"""The work pipeline: claim a package, refine it independently per attestor, attest, and
accumulate the report into its service's state, extending the receipt chain (SPEC §1, §4).

Equal report hashes from `attestation_threshold` attestors -> attestations stored and
accumulate runs once (`applied`); different hashes -> `disputed`, nothing applied, the hashes
kept in the package's `detail` and logged. A package that cannot be run is `failed` with a
reason. Every outcome is written in one transaction by the worker that holds the claim.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from jamhost.app.attestors import Attestor, attestors
from jamhost.app.runtime import Runtime
from jamhost.app.state_views import PreimageView, RequestView, StorageView
from jamhost.domain.hashing import blake2b_256
from jamhost.domain.refusals import StorageQuotaExceeded
from jamhost.domain.types.work_package import WorkPackage
from jamhost.domain.types.work_report import WorkReport
from jamhost.engine import (
    AccountState,
    AccumulateOperand,
    DeferredTransfer,
    RefineInputError,
    RefineOutcome,
    accumulate,
    accumulate_gas,
    refine_package,
)
from jamhost.engine.attest import sign
from jamhost.engine.constants import MEMO_SIZE
from jamhost.observability import GAS_USED, PACKAGE_SECONDS, PACKAGES, ServiceLabel, get_logger
from jamhost.store.records import (
    Attestation,
    PackageOutcome,
    PackageRecord,
    ReportRecord,
    ServiceRecord,
    StateChanges,
    StateConflict,
    Transfer,
    now_us,
)

log = get_logger("jamhost.pipeline")

# How long a claim is held before another worker may take the package over. An operational
# tuning knob, not a product setting: JAMHOST_WORKER_LEASE_SECONDS (default 120).
LEASE_US = int(float(os.environ.get("JAMHOST_WORKER_LEASE_SECONDS", "120")) * 1_000_000)
MAX_ATTEMPTS = 5
MAX_CONFLICT_RETRIES = 20
JAM_EPOCH = 1_735_732_800  # 2025-01-01 12:00 UTC, the JAM common era (GP §4.4)
SLOT_SECONDS = 6

Refine = Callable[..., RefineOutcome]


@dataclass
class Attested:
    attestor: Attestor
    outcome: RefineOutcome
    report_hash: bytes


def process_next(rt: Runtime, worker: str, *, refine: Refine = refine_package) -> bytes | None:
    """Claim and process one package; its id, or None when nothing is waiting."""
    claimed = rt.store.claim_package(worker, now_us(), LEASE_US)
    if claimed is None:
        return None
    outcome = process_claimed(rt, claimed, worker, refine=refine)
    try:
        done = _finish(rt, outcome)
    except StorageQuotaExceeded:
        outcome = PackageOutcome(claimed.id, claimed.service_id, worker, "failed",
                                 report=outcome.report, attestations=outcome.attestations,
                                 failure_reason="accumulate would exceed the storage quota")
        done = rt.store.finish_package(outcome)
    if done:
        _observe(rt, claimed, outcome.status)
    else:
        log.warning("lost the claim before finishing", package=claimed.id.hex()[:16])
    return claimed.id


def _finish(rt: Runtime, outcome: PackageOutcome) -> bool:
    """Write the outcome; when another apply to the same service came in between, accumulate
    again on the fresh state (refine and attestations stay: they do not depend on state)."""
    for _ in range(MAX_CONFLICT_RETRIES):
        svc = rt.store.get_service(outcome.service_id)
        limit = svc.quota.resolve(rt.default_quota).storage_bytes if svc else None
        try:
            return rt.store.finish_package(outcome, storage_limit=limit)
        except StateConflict:
            if svc is None or outcome.report is None:
                raise
            report = WorkReport.decode(outcome.report.body)
            changes, seq = accumulate_report(rt, svc, report, outcome.report.report_hash)
            outcome = replace(outcome, changes=changes, expected_seq=seq)
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
    svc = rt.store.get_service(pkg.service_id)
    if svc is None:
        return failed("the service no longer exists")
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
    record = ReportRecord(pkg.id, pkg.service_id, report_hash, report.encode(), at)
    GAS_USED.labels("refine").inc(runs[0].outcome.gas_used)
    changes, seq = accumulate_report(rt, svc, report, report_hash)
    return PackageOutcome(pkg.id, pkg.service_id, worker, "applied", report=record,
                          attestations=attestations, changes=changes, expected_seq=seq)


def attest_runs(rt: Runtime, package: WorkPackage, service_id: int,
                refine: Refine) -> list[Attested]:
    """Each of the first `attestation_threshold` attestors refines the package on its own."""
    store = rt.store

    def own(service: int, hash_: bytes) -> bytes | None:
        # Refine sees only its own service's preimages (code included).
        return store.service_preimage(service, hash_) if service == service_id else None

    runs = []
    for attestor in attestors(rt)[: rt.settings.attestation_threshold]:
        outcome = refine(package, code_lookup=own, preimage_lookup=own, engine=rt.pvm)
        runs.append(Attested(attestor, outcome, blake2b_256(outcome.report.encode())))
    return runs


def current_timeslot() -> int:
    return max(0, int(time.time()) - JAM_EPOCH) // SLOT_SECONDS


def accumulate_report(rt: Runtime, svc: ServiceRecord, report: WorkReport,
                      report_hash: bytes) -> tuple[StateChanges, int]:
    """Ψ_A for the report's service with its digests as operands and its queued transfers.
    Returns the changes and the service's receipt_seq they were computed against."""
    svc = rt.store.get_service(svc.service_id) or svc  # the freshest state to build on
    sid = svc.service_id
    operands = [AccumulateOperand.from_digest(report, d) for d in report.results
                if d.service_id == sid]
    queued = rt.store.pending_transfers(sid)
    transfers = [DeferredTransfer(t.source, t.destination, t.amount,
                                  t.memo.ljust(MEMO_SIZE, b"\0")[:MEMO_SIZE], t.gas)
                 for t in queued]
    account = AccountState(
        code_hash=svc.code_hash, balance=svc.balance, min_item_gas=svc.min_item_gas,
        min_memo_gas=svc.min_memo_gas, storage=StorageView(rt.store, sid),  # type: ignore[arg-type]
        preimages=PreimageView(rt.store, sid),  # type: ignore[arg-type]
        requests=RequestView(rt.store, sid),  # type: ignore[arg-type]
        items=svc.state_items, octets=svc.state_octets)

    def other(service: int) -> AccountState | None:
        # Another service exists for transfers, but its state is never visible: with authz
        # enabled its storage reads answer NONE and its balance and code are not shown.
        target = rt.store.get_service(service)
        if target is None:
            return None
        if not rt.settings.authz_enabled:
            return AccountState(code_hash=target.code_hash, balance=target.balance,
                                min_item_gas=target.min_item_gas,
                                min_memo_gas=target.min_memo_gas,
                                storage=StorageView(rt.store, service))  # type: ignore[arg-type]
        return AccountState(code_hash=bytes(32), balance=0, min_item_gas=target.min_item_gas,
                            min_memo_gas=target.min_memo_gas)

    slot = current_timeslot()
    out = accumulate(sid, account, operands, transfers, timeslot=slot,
                     gas_limit=accumulate_gas(operands, transfers),
                     entropy=blake2b_256(b"jamhost/entropy" + report_hash), other_account=other,
                     engine=rt.pvm)
    GAS_USED.labels("accumulate").inc(out.gas_used)
    preimages = [blob for blob in out.preimage_changes.values() if blob is not None]
    requests = dict(out.request_changes)
    for service, blob in out.provided:
        # GP provide integration: a blob provided to this service is kept only if the
        # service solicited it (request present and empty). Provisions to other services
        # are dropped: one tenant's code never writes another tenant's state.
        key = (blake2b_256(blob), len(blob))
        current = requests[key] if key in requests else out.account.requests.get(key)
        if service == sid and current == ():
            requests[key] = (slot,)
            preimages.append(blob)
    post = out.account
    return StateChanges(
        storage=dict(out.storage_changes),
        preimages=preimages,
        requests=requests,
        balance=post.balance,
        code_hash=post.code_hash if post.code_hash != svc.code_hash else None,
        min_item_gas=post.min_item_gas if post.min_item_gas != svc.min_item_gas else None,
        min_memo_gas=post.min_memo_gas if post.min_memo_gas != svc.min_memo_gas else None,
        transfers_out=[Transfer(t.source, t.dest, t.amount, t.memo, t.gas)
                       for t in out.transfers],
        transfers_consumed=[t.id for t in queued],
        yield_hash=out.yield_hash,
    ), svc.receipt_seq
