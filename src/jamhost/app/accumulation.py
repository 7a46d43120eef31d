"""One service's accumulation (Ψ_A) on its persisted state: of a package's report, or of the
inputs other services queued for it. Both the pipeline and the delivery of queued transfers
(`jamhost.app.deliveries`) run it; the store applies the result in one transaction.
"""

from __future__ import annotations

import time

from jamhost.app.accumulation_record import record_of
from jamhost.app.lookup_cache import CachedLookup, ServicePreimages
from jamhost.app.runtime import Runtime
from jamhost.app.tenant_accounts import TenantAccounts, account_state
from jamhost.domain.hashing import blake2b_256
from jamhost.domain.model import (
    AccumulationRecord,
    NewService,
    ServiceRecord,
    StateChanges,
    Transfer,
)
from jamhost.domain.types.work_report import WorkReport
from jamhost.engine import (
    AccountState,
    AccumulateOperand,
    DeferredTransfer,
    accumulate,
    accumulate_gas,
)
from jamhost.engine.accumulate import provision
from jamhost.engine.constants import MEMO_SIZE
from jamhost.observability import GAS_USED, get_logger

log = get_logger("jamhost.pipeline")

JAM_EPOCH = 1_735_732_800  # 2025-01-01 12:00 UTC, the JAM common era (GP §4.4)
SLOT_SECONDS = 6


def note_dropped_logs(service_id: int, phase: str, dropped: int) -> None:
    """The operator's trace of a log flood: how many `log` lines the cap dropped."""
    if dropped:
        log.info("service log lines dropped past the cap", service_id=service_id, phase=phase,
                 dropped=dropped)


def current_timeslot() -> int:
    return max(0, int(time.time()) - JAM_EPOCH) // SLOT_SECONDS


def accumulate_package(rt: Runtime, svc: ServiceRecord, report: WorkReport, report_hash: bytes,
                       *, fresh: bool = False, own: CachedLookup | None = None,
                       ) -> tuple[StateChanges, int, AccumulationRecord]:
    """Ψ_A of a package's report: its digests for the service as operands. `own`: the
    service's preimages as the package's refines read them (its first accumulate only:
    app/lookup_cache.py), else read anew."""
    sid = svc.service_id
    operands = [AccumulateOperand.from_digest(report, d) for d in report.results
                if d.service_id == sid]
    return accumulate_service(rt, svc, operands, entropy=blake2b_256(
        b"jamhost/entropy" + report_hash), package_id=report.package_spec.hash, fresh=fresh,
        own=own)


def accumulate_service(rt: Runtime, svc: ServiceRecord, operands: list[AccumulateOperand], *,
                       entropy: bytes, package_id: bytes | None, fresh: bool = False,
                       own: CachedLookup | None = None,
                       ) -> tuple[StateChanges, int, AccumulationRecord]:
    """Ψ_A for one service: `operands` and every transfer queued for it as inputs (GP 0.7.2
    eq. accinput: transfers first). The engine reaches other services only through
    `TenantAccounts` (the caller's own account). Returns the changes, the receipt_seq they
    were computed against, and what is kept of the run. `fresh`: `svc` was read for this
    package (else it is read again); either way the store applies the changes only at that
    receipt_seq, so state that moved since is a conflict, accumulated again. `own`: the
    service's preimages as read since `svc` was (accumulate_package's), when `fresh`."""
    view = rt.account_view(svc)  # all the engine reaches: its own account's services
    if not fresh:
        svc = view.get_service(svc.service_id) or svc  # the freshest state to build on
    sid = svc.service_id
    queued = view.pending_transfers(sid)
    transfers = [DeferredTransfer(t.source, t.destination, t.amount,
                                  t.memo.ljust(MEMO_SIZE, b"\0")[:MEMO_SIZE], t.gas)
                 for t in queued]
    others = TenantAccounts(view, svc, rt.settings)
    slot = current_timeslot()
    gas_limit = accumulate_gas(operands, transfers)
    own_blobs = ServicePreimages(own, sid) if own is not None and fresh else None
    out = accumulate(sid, account_state(view, svc, own_blobs), operands, transfers, timeslot=slot,
                     gas_limit=gas_limit, entropy=entropy, other_account=others.account,
                     transfer_room=others.transfer_room, service_exists=others.exists,
                     can_create=others.can_create,
                     max_log_bytes=rt.settings.max_log_bytes_per_invocation, engine=rt.pvm)
    GAS_USED.labels("accumulate").inc(out.gas_used)
    note_dropped_logs(sid, "accumulate", out.logs_dropped)
    # Defence in depth: the view answered WHO/NONE for services out of reach, so the engine
    # cannot have queued for, or ejected, one; should it have, nothing of it is persisted.
    # Services this invocation made are the caller's account's too.
    made = {c.service_id for c in out.created}
    out.transfers = [t for t in out.transfers if others.reaches(t.dest) or t.dest in made]
    out.ejected = [e for e in out.ejected if others.reaches(e) or e in made]
    record = record_of(out, service_id=sid, package_id=package_id, gas_limit=gas_limit,
                       inputs=len(operands) + len(transfers), transfers_in=queued,
                       max_log_bytes=rt.settings.max_log_bytes_per_invocation)
    preimages = [blob for blob in out.preimage_changes.values() if blob is not None]
    requests = dict(out.request_changes)
    for service, blob in out.provided:
        # Provisions to sibling services are not integrated (jamhost applies one service's
        # state per transaction); to this service, by the engine's provide rule.
        entry = None if service != sid else provision(
            blob, slot, lambda k: requests[k] if k in requests else out.account.requests.get(k))
        if entry is not None:
            requests[entry[0]] = entry[1]
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
        created=[new_service(c.service_id, c.account) for c in out.created],
        ejected=list(out.ejected),
        queue_limits=others.queue_limits,
        max_services=rt.settings.max_services_per_account,
    ), svc.receipt_seq, record


def new_service(service_id: int, account: AccountState) -> NewService:
    """A service made by `new`, as the store persists it (GP 0.7.2 Ω_N: code hash, balance,
    gas minimums, gratis, the code's lookup request; storage normally empty)."""
    return NewService(service_id=service_id, code_hash=account.code_hash,
                      balance=account.balance, min_item_gas=account.min_item_gas,
                      min_memo_gas=account.min_memo_gas,
                      requests=dict(account.requests.items()),
                      storage=dict(account.storage.items()), gratis=account.gratis)
