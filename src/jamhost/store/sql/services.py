"""Services (with their code, balance and quota), their delegates, and reads of their state."""

from __future__ import annotations

import sqlalchemy as sa

from jamhost.domain.model import ZERO_HASH, Delegate, Page, QuotaOverride, ServiceRecord, now_us
from jamhost.domain.refusals import BadRequest, Forbidden
from jamhost.domain.scopes import ServiceScope
from jamhost.store.sql import statements as stmts
from jamhost.store.sql import tables as t
from jamhost.store.sql.base import MAX_I64, retry_on_deadlock
from jamhost.store.sql.direct import Direct
from jamhost.store.sql.preimages import Preimages
from jamhost.store.sql.rows import delegate_record, prefix_upper, service_record
from jamhost.store.sql.scoped import page

_STORAGE_VALUE = Direct(stmts.STORAGE_VALUE)  # per package: store/sql/direct.py


class Services(Preimages):
    """The services, delegates and storage tables (reads; accumulate writes state)."""

    @retry_on_deadlock
    def create_service(self, *, owner: str, code: bytes | None, code_hash: bytes, balance: int,
                       min_item_gas: int, min_memo_gas: int, created_by: str,
                       storage_limit: int, media_type: str = "application/octet-stream",
                       max_services: int | None = None) -> ServiceRecord:
        at = now_us()
        with self._write() as conn:
            while True:
                service_id = conn.execute(
                    t.counters.update().where(t.counters.c.name == "next_service_id")
                    .values(value=t.counters.c.value + 1).returning(t.counters.c.value)
                ).scalar_one() - 1
                if self._service(conn, service_id) is None:  # else taken by `new`
                    break
            conn.execute(t.services.insert().values(
                service_id=service_id, owner=owner, code_hash=code_hash, balance=balance,
                min_item_gas=min_item_gas, min_memo_gas=min_memo_gas, created_at=at,
                created_by=created_by, root=ZERO_HASH, pending_count=0, storage_used=0,
                gas_window=0, gas_used=0, receipt_seq=0))
            if code is not None:
                self._put_preimage(conn, code_hash, code, media_type, service_id, storage_limit, at)
            # The owner's row last (the lock order: store/sql/claims.py, _record_finish): the
            # code's blob row may be one a finish of this account inserts, and that finish
            # takes the account row last. The count is taken by a conditional UPDATE, so
            # replicas cannot pass the limit; a refusal rolls the service back.
            self._ensure_owner(conn, owner)
            if conn.execute(stmts.TAKE_ACCOUNT_SERVICE, {
                    "acct": owner, "max_services": MAX_I64 if max_services is None
                    else max_services}).rowcount != 1:
                raise Forbidden("the account already owns max_services_per_account services")
            return self._written_service(conn, service_id)

    def get_service(self, service_id: int) -> ServiceRecord | None:
        with self._read() as conn:
            return self._service(conn, service_id)

    def list_services(self, scope: ServiceScope, *, owner: str | None = None,
                      cursor: int | None = None, limit: int = 50) -> Page[ServiceRecord]:
        c = t.services.c
        q = sa.select(t.services).order_by(c.service_id)
        if owner is not None:
            q = q.where(c.owner == owner)
        if cursor is not None:
            q = q.where(c.service_id > cursor)
        rows = self._in_order(q, c.service_id, scope, None, limit)
        return page(rows, limit, service_record, lambda s: s.service_id)

    def owned_service_ids(self, owner: str) -> set[int]:
        with self._read() as conn:
            rows = conn.execute(stmts.OWNED, {"owner": owner})
            return {r[0] for r in rows}

    @retry_on_deadlock
    def set_code(self, service_id: int, code: bytes, code_hash: bytes, storage_limit: int,
                 media_type: str = "application/octet-stream") -> ServiceRecord:
        at = now_us()
        with self._write() as conn:
            self._put_preimage(conn, code_hash, code, media_type, service_id, storage_limit, at)
            conn.execute(t.services.update().where(t.services.c.service_id == service_id)
                         .values(code_hash=code_hash))
            return self._written_service(conn, service_id)

    def credit(self, service_id: int, amount: int) -> ServiceRecord:
        with self._write() as conn:
            res = conn.execute(t.services.update().where(
                t.services.c.service_id == service_id,
                t.services.c.balance <= MAX_I64 - amount,
            ).values(balance=t.services.c.balance + amount))
            if res.rowcount != 1:
                raise BadRequest("the balance would pass 2^63-1")
            return self._written_service(conn, service_id)

    def set_quota(self, service_id: int, quota: QuotaOverride) -> ServiceRecord:
        with self._write() as conn:
            conn.execute(t.services.update().where(t.services.c.service_id == service_id).values(
                quota_pending_packages=quota.pending_packages,
                quota_storage_bytes=quota.storage_bytes,
                quota_gas_per_hour=quota.gas_per_hour))
            return self._written_service(conn, service_id)

    def add_delegate(self, service_id: int, token_hash: bytes, role: str,
                     created_by: str) -> Delegate:
        """Grant (or re-grant with a new role) a token on one service."""
        with self._write() as conn:
            ins = self._insert(t.delegates).values(
                service_id=service_id, token_hash=token_hash, role=role,
                created_at=now_us(), created_by=created_by)
            conn.execute(ins.on_conflict_do_update(
                index_elements=["service_id", "token_hash"], set_={"role": role}))
            row = conn.execute(sa.select(t.delegates).where(
                t.delegates.c.service_id == service_id,
                t.delegates.c.token_hash == token_hash)).one()
        return delegate_record(row)

    def list_delegates(self, service_id: int) -> list[Delegate]:
        with self._read() as conn:
            rows = conn.execute(sa.select(t.delegates)
                                .where(t.delegates.c.service_id == service_id)
                                .order_by(t.delegates.c.id))
            return [delegate_record(r) for r in rows]

    def remove_delegate(self, service_id: int, delegate_id: int) -> bool:
        with self._write() as conn:
            res = conn.execute(t.delegates.delete().where(
                t.delegates.c.service_id == service_id, t.delegates.c.id == delegate_id))
            return res.rowcount == 1

    def storage_get(self, service_id: int, key: bytes) -> bytes | None:
        with self._read() as conn:
            value: bytes | None = _STORAGE_VALUE.scalar(conn, {"sid": service_id, "key": key})
            return value

    def storage_list(self, service_id: int, prefix: bytes = b"", cursor: bytes | None = None,
                     limit: int = 50) -> Page[tuple[bytes, bytes]]:
        s = t.storage.c
        q = sa.select(s.key, s.value).where(s.service_id == service_id)
        if prefix:
            q = q.where(s.key >= prefix)
            upper = prefix_upper(prefix)
            if upper is not None:
                q = q.where(s.key < upper)
        if cursor is not None:
            q = q.where(s.key > cursor)
        q = q.order_by(s.key).limit(limit + 1)
        with self._read() as conn:
            rows = conn.execute(q).all()
        items = [(bytes(r.key), bytes(r.value)) for r in rows[:limit]]
        return Page(items, None) if len(rows) <= limit else Page(items, items[-1][0])
