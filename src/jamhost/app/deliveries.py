"""Delivery of deferred transfers: the destination's accumulation runs when it has inputs,
with or without a package of its own (GP 0.7.1+: transfers are accumulation inputs).

The queue is the store's `jam_transfers` rows, written in the sender's apply transaction:
it is the durable record of the work to do. After applying a package whose accumulation made
transfers, the worker runs each destination's accumulation on its queued inputs right away
(`deliver_follow_ups`, bounded per package); an idle worker delivers whatever is left, oldest
first (`deliver_due`), which covers a worker that died in between. Each delivery is one
transaction that consumes the transfers it ran on, under the destination's receipt_seq
(optimistic concurrency): two workers delivering to the same service at once apply once, and
the other finds nothing left. A delivery never fails for good: when its state changes do not
fit the storage quota, the amounts are still credited and the transfers consumed (status
`quota`), so a full service cannot wedge its queue. docs/pipeline.md tells the whole flow.
"""

from __future__ import annotations

from dataclasses import replace

from jamhost.app.accumulation import accumulate_service
from jamhost.app.runtime import Runtime
from jamhost.domain.hashing import blake2b_256
from jamhost.domain.model import StateChanges, StateConflict
from jamhost.domain.receipts import inputs_entries
from jamhost.domain.refusals import StorageQuotaExceeded
from jamhost.observability import get_logger

log = get_logger("jamhost.deliveries")

MAX_FOLLOW_UPS = 16  # destinations one package's worker delivers to before moving on
MAX_CONFLICT_RETRIES = 20


def deliver_follow_ups(rt: Runtime, changes: StateChanges) -> int:
    """Deliver the transfers an apply just queued (and the chains they start). Returns how
    many deliveries ran; what is left waits for `deliver_due`."""
    todo = list(dict.fromkeys(t.destination for t in changes.transfers_out))
    ran = 0
    while todo and ran < MAX_FOLLOW_UPS:
        made = deliver(rt, todo.pop(0))
        ran += 1
        if made is not None:
            todo += [d for d in dict.fromkeys(t.destination for t in made.transfers_out)
                     if d not in todo]
    return ran


def deliver_due(rt: Runtime) -> int | None:
    """Deliver to the service holding the oldest queued transfer; its id, or None."""
    dest = rt.store.next_transfer_destination()
    if dest is None:
        return None
    deliver(rt, dest)
    return dest


def deliver(rt: Runtime, service_id: int) -> StateChanges | None:
    """Accumulate `service_id` on its queued inputs alone; the changes applied, or None when
    there was nothing to deliver."""
    for _ in range(MAX_CONFLICT_RETRIES):
        found = rt.service_view(service_id)
        if found is None:
            return None
        svc, view = found
        if view.queued_inputs(service_id)[0] == 0:
            return None
        entropy = blake2b_256(b"jamhost/entropy/inputs" + service_id.to_bytes(4, "little")
                              + svc.receipt_seq.to_bytes(8, "little"))
        # `fresh`: `svc` was just read (service_view), for this delivery: not read again.
        changes, seq, record = accumulate_service(rt, svc, [], entropy=entropy,
                                                  package_id=None, fresh=True)
        if not changes.transfers_consumed:
            return None
        # The receipt entry of a delivery: the ids of the transfers it consumed.
        inputs = inputs_entries(t.id for t in record.transfers_in)
        limit = svc.quota.resolve(rt.default_quota).storage_bytes
        try:
            rt.store.apply_accumulation(service_id, changes, seq, limit, record, inputs)
            return changes
        except StateConflict:
            continue
        except StorageQuotaExceeded:
            # Credit the amounts, consume the inputs, keep nothing else (GP: a transfer's
            # amount is the destination's whatever its code does).
            fresh = view.get_service(service_id)
            if fresh is None or fresh.receipt_seq != seq:
                continue
            amount = sum(t.amount for t in record.transfers_in)
            credit = StateChanges(balance=fresh.balance + amount,
                                  transfers_consumed=changes.transfers_consumed)
            kept = replace(record, status="quota", transfers=(), created=(), ejected=())
            try:
                rt.store.apply_accumulation(service_id, credit, seq, None, kept, inputs)
            except StateConflict:
                continue
            log.warning("inputs delivered without their state changes: storage quota",
                        service_id=service_id, inputs=len(record.transfers_in))
            return None
    log.warning("delivery kept conflicting; left queued", service_id=service_id)
    return None
