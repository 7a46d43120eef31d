"""Accumulations applied: the plan of tenancy/apply_plan.py persisted under the service's row
lock, the transfers queued between services, services made and ejected, the records kept and
the receipt chain."""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from functools import cached_property
from typing import Any

import sqlalchemy as sa

from jamhost.domain.model import (
    RECEIPT_SEQ_SPAN,
    ZERO_HASH,
    AccumulationRecord,
    Page,
    Receipt,
    StateChanges,
    StateConflict,
    Transfer,
    now_us,
    receipt_cursor,
)
from jamhost.domain.receipts import Entry
from jamhost.domain.scopes import ServiceScope
from jamhost.store.sql import statements as stmts
from jamhost.store.sql import tables as t
from jamhost.store.sql.base import MAX_I64, retry_on_deadlock
from jamhost.store.sql.direct import Direct
from jamhost.store.sql.preimages import Preimages
from jamhost.store.sql.rows import accumulation_record, receipt_record, transfer_json
from jamhost.store.sql.scoped import in_scope, page
from jamhost.tenancy.apply_plan import Before, NewServicePlan, plan_apply, touched

# Built once: a statement built per call paid SQLAlchemy's construction and cache-key walk
# (about 50 us of Python) on every package, before the compiled form was found in its cache.
# On SQLite they run on the driver's cursor (store/sql/direct.py).
_RECEIPTS_INSERT = Direct(t.receipts.insert())
_ACCUMULATIONS_INSERT = Direct(t.accumulations.insert())
_PENDING_TRANSFERS = Direct(sa.select(t.transfers)
                            .where(t.transfers.c.destination == sa.bindparam("sid"))
                            .order_by(t.transfers.c.id))
_STORAGE_VALUE = Direct(stmts.STORAGE_VALUE)
_LOCK_SERVICE = {expected: Direct(stmt) for expected, stmt in stmts.LOCK_SERVICE.items()}


@functools.lru_cache(maxsize=256)
def _service_write(names: frozenset[str]) -> Direct:
    return Direct(stmts.service_write(names))


def _upsert_storage(insert: Any) -> Any:
    """Write storage rows, replacing a key's current row in the same statement: a replaced
    key needs no DELETE of its own (one statement less for every accumulate that overwrites
    a key, the common case)."""
    stmt = insert(t.storage)
    return stmt.on_conflict_do_update(index_elements=[t.storage.c.service_id, t.storage.c.key],
                                      set_={"value": stmt.excluded.value})


class Accumulations(Preimages):
    """The accumulations, transfers, lookup requests and receipts tables, and state writes."""

    @cached_property
    def _storage_upsert(self) -> Direct:
        return Direct(_upsert_storage(self._insert))

    @retry_on_deadlock
    def apply_accumulation(self, service_id: int, changes: StateChanges, expected_seq: int,
                           storage_limit: int | None, record: AccumulationRecord,
                           entries: Sequence[Entry]) -> None:
        """Apply an accumulation of queued inputs alone (no package): its changes, its
        receipt `entries` (domain/receipts.py `inputs_entries`), its record; StateConflict
        if the service moved on."""
        at = now_us()
        with self._write() as conn:
            self._apply(conn, service_id, changes, expected_seq, entries, at, storage_limit)
            self._keep_accumulation(conn, record, at)

    def _apply(self, conn: sa.Connection, sid: int, changes: StateChanges | None,
               expected_seq: int | None, entries: Sequence[Entry], at: int,
               storage_limit: int | None, service_params: dict[str, Any] | None = None,
               exports_bytes: int = 0) -> None:
        """Persist the plan of an apply (tenancy/apply_plan.py): the service row locked first
        (and the expected sequence number checked by the same UPDATE), the current rows of
        the touched keys read, the plan made, then written. `service_params`: more of the
        service row's one UPDATE (stmts.service_write: `d_pending`, `units` and `window`);
        `exports_bytes`: the kept exports of an applied package, charged by the plan."""
        # Lock the service row first: receipts of one service are appended one at a time.
        lock = _LOCK_SERVICE[expected_seq is not None]
        row = lock.first(conn, {"sid": sid} if expected_seq is None
                         else {"sid": sid, "expected_seq": expected_seq})
        if row is None:
            raise StateConflict
        plan = plan_apply(self._before(conn, sid, row, changes), changes, entries,
                          storage_limit=storage_limit, exports_bytes=exports_bytes)
        # storage_deleted holds the replaced keys too: those the upsert replaces in place
        written = {k for k, _ in plan.storage_written}
        deleted = [k for k in plan.storage_deleted if k not in written]
        if deleted:
            conn.execute(stmts.STORAGE_DELETE_MANY, {"sid": sid, "keys": deleted})
        if plan.storage_written:
            self._storage_upsert.run(conn, [{"service_id": sid, "key": k, "value": v}
                                                for k, v in plan.storage_written])
        if plan.requests_deleted:
            conn.execute(stmts.REQUESTS_DELETE, {"sid": sid, "keys": plan.requests_deleted})
        if plan.requests_written:
            conn.execute(t.lookup_requests.insert(), [
                {"service_id": sid, "hash": h, "length": length,
                 "slots": ",".join(str(x) for x in slots)}
                for (h, length), slots in plan.requests_written])
        if plan.preimages:
            conn.execute(t.preimages.insert(), [
                {"hash": h, "service_id": sid, "size": len(blob),
                 "media_type": "application/octet-stream", "created_at": at}
                for h, blob in plan.preimages])
            conn.execute(self._insert(t.blobs).on_conflict_do_nothing(), [
                {"hash": h, "size": len(blob), "data": blob} for h, blob in plan.preimages])
        if changes is not None:
            self._move_transfers(conn, sid, changes, at)
            for new in plan.created:
                self._create_from_accumulate(conn, row.owner, sid, new, at,
                                             changes.max_services)
            for gone in changes.ejected:
                self._eject(conn, row.owner, gone)
        if plan.receipts:
            _RECEIPTS_INSERT.run(conn, [
                {"service_id": sid, "seq": r.seq, "prev_root": r.prev_root,
                 "new_root": r.new_root, "entry_type": r.entry_type, "hash": r.hash,
                 "processed_at": at} for r in plan.receipts])
        params: dict[str, Any] = {f"v_{name}": v for name, v in plan.columns.items()}
        params.update((name, amount) for name, amount in (
            ("d_items", plan.d_items), ("d_octets", plan.d_octets), ("d_bytes", plan.d_bytes))
            if amount)
        if plan.receipts:
            params.update(v_root=plan.root, v_receipt_seq=plan.receipts[-1].seq)
        params.update(service_params or {})
        if params:
            _service_write(frozenset(params)).run(conn, {"sid": sid, **params})

    def _before(self, conn: sa.Connection, sid: int, row: Any,
                changes: StateChanges | None) -> Before:
        """What the planner needs of the service: its locked row and the current rows of the
        keys the changes touch (one statement per kind of row, none for untouched kinds)."""
        keys, requests, hashes = touched(changes)
        if len(keys) == 1:  # the common case: one key, by its primary key (store/sql/direct.py)
            value = _STORAGE_VALUE.scalar(conn, {"sid": sid, "key": keys[0]})
            storage = {} if value is None else {bytes(keys[0]): bytes(value)}
        else:
            storage = {bytes(k): bytes(v) for k, v in conn.execute(
                stmts.STORAGE_VALUES, {"sid": sid, "keys": keys})} if keys else {}
        have = frozenset((bytes(h), int(n)) for h, n in conn.execute(
            stmts.REQUESTS_PRESENT, {"sid": sid, "keys": requests})) if requests else frozenset()
        kept = frozenset(bytes(h) for h in conn.execute(
            stmts.PREIMAGES_PRESENT, {"sid": sid, "hashes": hashes}).scalars()) \
            if hashes else frozenset()
        return Before(bytes(row.root), row.receipt_seq, row.storage_used, storage, have, kept)

    def _move_transfers(self, conn: sa.Connection, sid: int, changes: StateChanges,
                        at: int) -> None:
        """The transfers the accumulation consumed go, those it made are queued (within the
        destinations' bounds, checked under their row locks)."""
        if changes.transfers_consumed:
            conn.execute(t.transfers.delete().where(
                t.transfers.c.id.in_(changes.transfers_consumed),
                t.transfers.c.destination == sid))
        if changes.transfers_out:
            conn.execute(t.transfers.insert(), [
                {"source": sid, "destination": tr.destination, "amount": tr.amount,
                 "memo": tr.memo, "gas": tr.gas, "created_at": at}
                for tr in changes.transfers_out])
            if changes.queue_limits is not None:
                self._check_queues(conn, sid, changes, changes.queue_limits)

    def _check_queues(self, conn: sa.Connection, sid: int, changes: StateChanges,
                      limits: tuple[int, int]) -> None:
        """The destinations' queues, this apply's transfers included, within the bounds;
        checked under each destination's row lock so concurrent senders serialize (and
        StateConflict makes the sender accumulate again: the engine then answers LOW)."""
        max_count, max_gas = limits
        tr = t.transfers.c
        for dest in sorted({x.destination for x in changes.transfers_out} - {sid}):
            conn.execute(t.services.update().where(t.services.c.service_id == dest)
                         .values(receipt_seq=t.services.c.receipt_seq))  # the row lock
            count, gas = conn.execute(sa.select(sa.func.count(),
                                                sa.func.coalesce(sa.func.sum(tr.gas), 0))
                                      .where(tr.destination == dest)).one()
            if count > max_count or gas > max_gas:
                raise StateConflict

    def _create_from_accumulate(self, conn: sa.Connection, owner: str, parent: int,
                                plan: NewServicePlan, at: int, max_services: int | None) -> None:
        """A service made by `new`: the caller's owner's, counted in its account's services
        like one created over the API. An id taken since the engine checked it, or an
        account that reached its limit meanwhile, is a conflict (accumulate again, with the
        fresh checks)."""
        self._ensure_owner(conn, owner)
        if conn.execute(stmts.TAKE_ACCOUNT_SERVICE, {
                "acct": owner, "max_services": MAX_I64 if max_services is None
                else max_services}).rowcount != 1:
            raise StateConflict
        new = plan.service
        inserted = conn.execute(self._insert(t.services).values(
            service_id=new.service_id, owner=owner, code_hash=new.code_hash,
            balance=new.balance, min_item_gas=new.min_item_gas, min_memo_gas=new.min_memo_gas,
            created_at=at, created_by=f"service:{parent}", root=ZERO_HASH, pending_count=0,
            storage_used=plan.storage_used, gas_window=0, gas_used=0, receipt_seq=0,
            state_items=plan.items, state_octets=plan.octets,
        ).on_conflict_do_nothing().returning(t.services.c.service_id)).first()
        if inserted is None:
            raise StateConflict
        if new.storage:
            conn.execute(t.storage.insert(), [{"service_id": new.service_id, "key": k,
                                               "value": v} for k, v in new.storage.items()])
        if new.requests:
            conn.execute(t.lookup_requests.insert(), [
                {"service_id": new.service_id, "hash": h, "length": length,
                 "slots": ",".join(str(x) for x in slots)}
                for (h, length), slots in new.requests.items()])

    def _eject(self, conn: sa.Connection, owner: str, service_id: int) -> None:
        """A service removed by `eject`, only one of the same owner: its row and state go;
        transfers queued to it are dropped (their amounts already left their senders)."""
        mine = conn.execute(t.services.update().where(  # the row lock, and the owner check
            t.services.c.service_id == service_id, t.services.c.owner == owner,
        ).values(receipt_seq=t.services.c.receipt_seq)).rowcount
        if not mine:
            return
        for table, column in ((t.storage, t.storage.c.service_id),
                              (t.lookup_requests, t.lookup_requests.c.service_id),
                              (t.preimages, t.preimages.c.service_id),
                              (t.segments, t.segments.c.service_id),
                              (t.export_sets, t.export_sets.c.service_id),
                              (t.delegates, t.delegates.c.service_id),  # references the row
                              (t.transfers, t.transfers.c.destination)):
            conn.execute(table.delete().where(column == service_id))
        conn.execute(t.services.delete().where(t.services.c.service_id == service_id))
        conn.execute(t.account_usage.update().where(t.account_usage.c.owner == owner)
                     .values(services=t.account_usage.c.services - 1))
        # After the account row: only claims holding that row write this one, so it is free.
        conn.execute(t.service_claims.delete().where(
            t.service_claims.c.service_id == service_id))

    def _keep_accumulation(self, conn: sa.Connection, r: AccumulationRecord, at: int) -> None:
        _ACCUMULATIONS_INSERT.run(conn, {
            "service_id": r.service_id, "package_id": r.package_id, "status": r.status,
            "gas_limit": r.gas_limit, "gas_used": r.gas_used, "inputs": r.inputs,
            "yield_hash": r.yield_hash, "output": r.output, "logs": json.dumps(list(r.logs)),
            "logs_dropped": r.logs_dropped,
            "transfers": json.dumps([transfer_json(x) for x in r.transfers]),
            "transfers_in": json.dumps([transfer_json(x) for x in r.transfers_in]),
            "created": json.dumps(list(r.created)), "ejected": json.dumps(list(r.ejected)),
            "created_at": at})

    def get_accumulation(self, package_id: bytes,
                         scope: ServiceScope) -> AccumulationRecord | None:
        a = t.accumulations.c
        q = (sa.select(t.accumulations).where(a.package_id == package_id,
                                               in_scope(a.service_id, scope))
             .order_by(a.seq.desc()).limit(1))
        with self._read() as conn:
            row = conn.execute(q).first()
        return accumulation_record(row) if row else None

    def list_accumulations(self, service_id: int, *, cursor: int | None = None,
                           limit: int = 50) -> Page[AccumulationRecord]:
        a = t.accumulations.c
        q = sa.select(t.accumulations).where(a.service_id == service_id)
        if cursor is not None:
            q = q.where(a.seq < cursor)
        with self._read() as conn:
            rows = conn.execute(q.order_by(a.seq.desc()).limit(limit + 1)).all()
        items = [accumulation_record(r) for r in rows[:limit]]
        return Page(items, items[-1].seq if len(rows) > limit else None)

    def queued_inputs(self, service_id: int) -> tuple[int, int]:
        tr = t.transfers.c
        with self._read() as conn:
            row = conn.execute(sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(tr.gas), 0))
                               .where(tr.destination == service_id)).one()
        return int(row[0]), int(row[1])

    def next_transfer_destination(self) -> int | None:
        tr = t.transfers.c
        q = (sa.select(tr.destination).join(t.services,
                                            t.services.c.service_id == tr.destination)
             .order_by(tr.id).limit(1))
        with self._read() as conn:
            return conn.execute(q).scalar_one_or_none()

    def pending_transfers(self, service_id: int) -> list[Transfer]:
        with self._read() as conn:
            rows = _PENDING_TRANSFERS.rows(conn, {"sid": service_id})
            return [Transfer(r.source, r.destination, r.amount, bytes(r.memo), r.gas, r.id,
                             r.created_at) for r in rows]

    def lookup_request(self, service_id: int, hash_: bytes,
                       length: int) -> tuple[int, ...] | None:
        with self._read() as conn:
            slots = conn.execute(sa.select(t.lookup_requests.c.slots).where(
                t.lookup_requests.c.service_id == service_id,
                t.lookup_requests.c.hash == hash_,
                t.lookup_requests.c.length == length)).scalar_one_or_none()
        return None if slots is None else tuple(int(x) for x in slots.split(",") if x)

    def list_receipts(self, scope: ServiceScope, *, service_id: int | None = None,
                      cursor: int | None = None, limit: int = 50) -> Page[Receipt]:
        r = t.receipts.c
        q = sa.select(t.receipts).order_by(r.service_id, r.seq)
        if cursor is not None:  # (service_id, seq) packed in one integer: see receipt_cursor
            after_sid, after_seq = divmod(cursor, RECEIPT_SEQ_SPAN)
            q = q.where(sa.or_(r.service_id > after_sid,
                               sa.and_(r.service_id == after_sid, r.seq > after_seq)))
        rows = self._in_order(q, r.service_id, scope, service_id, limit)
        return page(rows, limit, receipt_record, receipt_cursor)

    def find_receipts(self, hash_: bytes, scope: ServiceScope) -> list[Receipt]:
        with self._read() as conn:
            rows = conn.execute(sa.select(t.receipts).where(
                t.receipts.c.hash == hash_, in_scope(t.receipts.c.service_id, scope))
                .order_by(t.receipts.c.service_id, t.receipts.c.seq))
            return [receipt_record(r) for r in rows]
