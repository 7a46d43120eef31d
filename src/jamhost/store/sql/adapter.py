"""The SQL store: one adapter for SQLite and PostgreSQL over SQLAlchemy 2 Core.

Every quota check is a conditional UPDATE inside the same transaction as the insert it
guards, never a read followed by a write, so concurrent requests (threads, processes or
replicas on one PostgreSQL) can never accept more than a limit allows. A refused request
rolls its whole transaction back and leaves no trace.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from jamhost.domain.footprint import REQUEST_ROW_BYTES
from jamhost.domain.model import (
    RECEIPT_SEQ_SPAN,
    ZERO_HASH,
    Account,
    AccumulationRecord,
    Attestation,
    AuditEvent,
    Credentials,
    Delegate,
    ExportSet,
    PackageOutcome,
    PackageRecord,
    Page,
    PreimageMeta,
    QuotaLimits,
    QuotaOverride,
    Receipt,
    ReportRecord,
    ServiceRecord,
    StateChanges,
    StateConflict,
    TokenRecord,
    Transfer,
    Usage,
    export_set_bytes,
    now_us,
    receipt_cursor,
)
from jamhost.domain.refusals import (
    BadRequest,
    Forbidden,
    GasQuotaExceeded,
    NotFound,
    PendingLimit,
    SegmentQuotaExceeded,
    StorageQuotaExceeded,
)
from jamhost.domain.scopes import ServiceScope
from jamhost.store.sql import statements as stmts
from jamhost.store.sql import tables as t
from jamhost.store.sql.engine import is_memory, writer_lock
from jamhost.store.sql.statements import MAX_MERGED_SERVICES
from jamhost.tenancy import fairness
from jamhost.tenancy.apply_plan import Before, NewServicePlan, plan_apply, touched

FIRST_SERVICE_ID = 65536
MAX_I64 = 2**63 - 1
UNSCOPED = 0


RETRYABLE_PGCODES = {"40P01", "40001"}  # deadlock detected, serialization failure


def _retry_on_deadlock(fn):
    """Re-run a whole store transaction that the database aborted to break a deadlock.
    Safe because each method is one transaction that was rolled back entirely."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        for attempt in range(5):
            try:
                return fn(*args, **kwargs)
            except sa.exc.DBAPIError as exc:
                code = getattr(getattr(exc, "orig", None), "sqlstate", None)
                if code not in RETRYABLE_PGCODES or attempt == 4:
                    raise
                time.sleep(0.01 * (attempt + 1))
        raise AssertionError("unreachable")
    return wrapper


class _Lost(Exception):
    """Raised inside a transaction to roll it back: the worker no longer holds the package."""


class SqlStore:
    """Store port implemented over a SQLAlchemy engine (see `jamhost.store.ports.Store`)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        # `dialect` picks the SQL; `kind` names the store mode (memory: SQLite in memory).
        self.dialect = "sqlite" if engine.dialect.name == "sqlite" else "postgres"
        self.kind = "memory" if is_memory(engine) else self.dialect
        self._insert = sqlite.insert if self.dialect == "sqlite" else postgresql.insert
        # PostgreSQL reads run in autocommit: under READ COMMITTED every statement takes its
        # own snapshot anyway, so BEGIN and COMMIT would only add two round trips per read.
        # SQLite reads keep their transaction (one snapshot for all of a read's statements).
        self._reader = (engine if self.dialect == "sqlite"
                        else engine.execution_options(isolation_level="AUTOCOMMIT"))
        self._writer_lock = writer_lock(engine)
        self._shared_lock = self._writer_lock if self.kind == "memory" else None

    # -- plumbing -----------------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[sa.Connection]:
        if self._writer_lock is None:
            with self.engine.connect().execution_options(jam_write=True) as conn, conn.begin():
                yield conn
            return
        with self._writer_lock, self.engine.connect().execution_options(jam_write=True) \
                as conn, conn.begin():
            yield conn

    @contextmanager
    def _read(self) -> Iterator[sa.Connection]:
        if self._shared_lock is not None:  # memory: one connection, one transaction at a time
            with self._shared_lock, self._reader.connect() as conn, conn.begin():
                yield conn
            return
        with self._reader.connect() as conn, conn.begin():
            yield conn

    def ping(self) -> bool:
        try:
            with self._read() as conn:
                conn.execute(sa.text("SELECT 1"))
            return True
        except sa.exc.SQLAlchemyError:
            return False

    def close(self) -> None:
        self.engine.dispose()

    def init_counters(self) -> None:
        """Create the counter rows once (idempotent; called after migrations)."""
        with self._write() as conn:
            for name, value in (("next_service_id", FIRST_SERVICE_ID), ("pending", 0)):
                conn.execute(self._insert(t.counters).values(name=name, value=value)
                             .on_conflict_do_nothing())

    # -- meta ---------------------------------------------------------------------------

    def get_or_create_meta(self, key: str, value: str) -> str:
        with self._write() as conn:
            conn.execute(self._insert(t.meta).values(key=key, value=value)
                         .on_conflict_do_nothing())
            return conn.execute(sa.select(t.meta.c.value).where(t.meta.c.key == key)).scalar_one()

    # -- accounts and tokens --------------------------------------------------------------

    def create_account(self, account: Account) -> Account:
        with self._write() as conn:
            conn.execute(t.accounts.insert().values(
                id=account.id, name=account.name, created_at=account.created_at))
        return account

    def get_account(self, account_id: str) -> Account | None:
        with self._read() as conn:
            row = conn.execute(sa.select(t.accounts).where(t.accounts.c.id == account_id)).first()
        return Account(row.id, row.name, row.created_at) if row else None

    def list_accounts(self) -> list[Account]:
        with self._read() as conn:
            rows = conn.execute(sa.select(t.accounts).order_by(t.accounts.c.created_at))
            return [Account(r.id, r.name, r.created_at) for r in rows]

    def add_token(self, token: TokenRecord) -> TokenRecord:
        with self._write() as conn:
            conn.execute(t.tokens.insert().values(
                accessor=token.accessor, account_id=token.account_id, token_hash=token.token_hash,
                name=token.name, scopes=",".join(token.scopes), created_at=token.created_at,
                expires_at=token.expires_at, revoked_at=token.revoked_at))
        return token

    def credentials(self, token_hash: bytes) -> Credentials:
        with self._read() as conn:
            rows = conn.execute(stmts.CREDENTIALS, {"h": token_hash}).all()
        token = _token(rows[0]) if rows[0].accessor is not None else None
        return Credentials(token, {r.delegated_service: r.delegated_role
                                   for r in rows if r.delegated_service is not None})

    def token_by_accessor(self, accessor: str) -> TokenRecord | None:
        with self._read() as conn:
            row = conn.execute(sa.select(t.tokens).where(t.tokens.c.accessor == accessor)).first()
        return _token(row) if row else None

    def list_tokens(self, account_id: str) -> list[TokenRecord]:
        with self._read() as conn:
            rows = conn.execute(sa.select(t.tokens).where(t.tokens.c.account_id == account_id)
                                .order_by(t.tokens.c.created_at))
            return [_token(r) for r in rows]

    def revoke_token(self, account_id: str, accessor: str, at: int) -> bool:
        with self._write() as conn:
            res = conn.execute(t.tokens.update()
                               .where(t.tokens.c.account_id == account_id,
                                      t.tokens.c.accessor == accessor,
                                      t.tokens.c.revoked_at.is_(None))
                               .values(revoked_at=at))
            return res.rowcount == 1

    # -- services -------------------------------------------------------------------------

    @_retry_on_deadlock
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
            # The owner's row after the counter (the lock order of submit and finish); the
            # count is taken by a conditional UPDATE, so replicas cannot pass the limit.
            self._ensure_owner(conn, owner)
            if conn.execute(stmts.TAKE_ACCOUNT_SERVICE, {
                    "acct": owner, "max_services": MAX_I64 if max_services is None
                    else max_services}).rowcount != 1:
                raise Forbidden("the account already owns max_services_per_account services")
            conn.execute(t.services.insert().values(
                service_id=service_id, owner=owner, code_hash=code_hash, balance=balance,
                min_item_gas=min_item_gas, min_memo_gas=min_memo_gas, created_at=at,
                created_by=created_by, root=ZERO_HASH, pending_count=0, storage_used=0,
                gas_window=0, gas_used=0, receipt_seq=0))
            if code is not None:
                self._put_preimage(conn, code_hash, code, media_type, service_id, storage_limit, at)
            return self._written_service(conn, service_id)

    def _ensure_owner(self, conn: sa.Connection, owner: str) -> None:
        conn.execute(self._insert(t.account_usage).values(owner=owner).on_conflict_do_nothing())

    def get_service(self, service_id: int) -> ServiceRecord | None:
        with self._read() as conn:
            return self._service(conn, service_id)

    def list_services(self, scope: ServiceScope, *, owner: str | None = None,
                      cursor: int | None = None, limit: int = 50) -> Page[ServiceRecord]:
        q = sa.select(t.services).where(_in_scope(t.services.c.service_id, scope))
        if owner is not None:
            q = q.where(t.services.c.owner == owner)
        if cursor is not None:
            q = q.where(t.services.c.service_id > cursor)
        q = q.order_by(t.services.c.service_id).limit(limit + 1)
        with self._read() as conn:
            rows = conn.execute(q).all()
        items = [_service(r) for r in rows[:limit]]
        return Page(items, items[-1].service_id if len(rows) > limit else None)

    def owned_service_ids(self, owner: str) -> set[int]:
        with self._read() as conn:
            rows = conn.execute(stmts.OWNED, {"owner": owner})
            return {r[0] for r in rows}

    @_retry_on_deadlock
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

    def _written_service(self, conn: sa.Connection, service_id: int) -> ServiceRecord:
        """The service row this transaction has just written, so it exists."""
        svc = self._service(conn, service_id)
        if svc is None:
            raise NotFound("no such service")
        return svc

    def _service(self, conn: sa.Connection, service_id: int) -> ServiceRecord | None:
        row = conn.execute(stmts.SERVICE, {"sid": service_id}).first()
        return _service(row) if row else None

    # -- delegates ------------------------------------------------------------------------

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
        return _delegate(row)

    def list_delegates(self, service_id: int) -> list[Delegate]:
        with self._read() as conn:
            rows = conn.execute(sa.select(t.delegates)
                                .where(t.delegates.c.service_id == service_id)
                                .order_by(t.delegates.c.id))
            return [_delegate(r) for r in rows]

    def remove_delegate(self, service_id: int, delegate_id: int) -> bool:
        with self._write() as conn:
            res = conn.execute(t.delegates.delete().where(
                t.delegates.c.service_id == service_id, t.delegates.c.id == delegate_id))
            return res.rowcount == 1

    # -- preimages ------------------------------------------------------------------------

    @_retry_on_deadlock
    def put_preimage(self, hash_: bytes, data: bytes, media_type: str, service_id: int | None,
                     storage_limit: int | None) -> tuple[PreimageMeta, bool]:
        with self._write() as conn:
            return self._put_preimage(conn, hash_, data, media_type, service_id,
                                      storage_limit, now_us())

    def _put_preimage(self, conn: sa.Connection, hash_: bytes, data: bytes, media_type: str,
                      service_id: int | None, storage_limit: int | None,
                      at: int) -> tuple[PreimageMeta, bool]:
        scope = UNSCOPED if service_id is None else service_id
        if service_id is not None:  # service row first: the lock order of apply
            conn.execute(t.services.update().where(t.services.c.service_id == service_id)
                         .values(storage_used=t.services.c.storage_used))
        inserted = conn.execute(self._insert(t.preimages).values(
            hash=hash_, service_id=scope, size=len(data), media_type=media_type, created_at=at,
        ).on_conflict_do_nothing().returning(t.preimages.c.hash)).first()
        if inserted is not None:
            if service_id is not None and storage_limit is not None:
                self._charge_storage(conn, service_id, len(data), storage_limit)
            conn.execute(self._insert(t.blobs).values(hash=hash_, size=len(data), data=data)
                         .on_conflict_do_nothing())
        row = conn.execute(sa.select(t.preimages).where(
            t.preimages.c.hash == hash_, t.preimages.c.service_id == scope)).one()
        return _preimage(row), inserted is not None

    def _charge_storage(self, conn: sa.Connection, service_id: int, delta: int,
                        limit: int, refusal: type[StorageQuotaExceeded] = StorageQuotaExceeded,
                        ) -> None:
        res = conn.execute(t.services.update().where(
            t.services.c.service_id == service_id,
            t.services.c.storage_used <= limit - delta,  # no bigint overflow
        ).values(storage_used=t.services.c.storage_used + delta))
        if res.rowcount != 1:
            raise refusal("the service's storage quota would be exceeded")

    def find_preimage(self, hash_: bytes, scope: ServiceScope) -> PreimageMeta | None:
        """The caller-visible metadata of a blob: a row of a service in scope, or unscoped."""
        q = (sa.select(t.preimages).where(
            t.preimages.c.hash == hash_,
            sa.or_(t.preimages.c.service_id == UNSCOPED,
                   _in_scope(t.preimages.c.service_id, scope)))
            .order_by(t.preimages.c.service_id.desc()).limit(1))
        with self._read() as conn:
            row = conn.execute(q).first()
        return _preimage(row) if row else None

    def service_preimage(self, service_id: int, hash_: bytes) -> bytes | None:
        """A blob as the service itself may look it up (its own preimages only)."""
        with self._read() as conn:
            return conn.execute(stmts.SERVICE_PREIMAGE,
                                {"hash": hash_, "sid": service_id}).scalar_one_or_none()

    def service_preimage_window(self, service_id: int, hash_: bytes, at: int, n: int,
                                ) -> tuple[int, bytes] | None:
        """(|v|, v[at..at+n]) of `service_preimage` (clamped to v), or None: the length
        from its column and the octets by substr, never the whole blob."""
        # substr takes 32-bit positions on PostgreSQL; a blob is far shorter (max_preimage_bytes)
        at, n = min(at, _SQL_POSITION_MAX), min(n, _SQL_POSITION_MAX)
        if self.dialect == "sqlite":
            return self._sqlite_window(service_id, hash_, at, n)
        with self._read() as conn:
            row = conn.execute(stmts.SERVICE_PREIMAGE_WINDOW,
                               {"hash": hash_, "sid": service_id, "start": at + 1,
                                "n": n}).first()
        if row is None:
            return None
        return int(row[0]), bytes(row[1] or b"")

    def _sqlite_window(self, service_id: int, hash_: bytes, at: int, n: int,
                       ) -> tuple[int, bytes] | None:
        """SQLite's substr reads the whole blob (2 ms for 8 MB): the row is found by rowid
        and the window read through the incremental blob API instead (0.01-0.04 ms)."""
        with self._read() as conn:
            row = conn.execute(stmts.SERVICE_PREIMAGE_ROWID,
                               {"hash": hash_, "sid": service_id}).first()
            if row is None:
                return None
            size, rowid = int(row[0]), int(row[1])
            start = min(at, size)
            count = min(n, size - start)
            if count == 0:
                return size, b""
            raw = conn.connection.dbapi_connection
            with raw.blobopen(t.blobs.name, "data", rowid, readonly=True) as blob:  # type: ignore[union-attr]
                blob.seek(start)
                return size, blob.read(count)

    def read_blob(self, hash_: bytes) -> bytes | None:
        with self._read() as conn:
            return conn.execute(sa.select(t.blobs.c.data)
                                .where(t.blobs.c.hash == hash_)).scalar_one_or_none()

    # -- packages -------------------------------------------------------------------------

    @_retry_on_deadlock
    def submit_package(self, pkg: PackageRecord, limits: QuotaLimits, max_pending: int,
                       gas_window: int, account_pending: int | None = None,
                       weights: dict[str, int] | None = None,
                       ) -> tuple[PackageRecord, bool]:
        """Insert a pending package unless it exists; quotas checked atomically with it.

        The insert comes first: a new package (the common case) then costs three statements,
        and a known one (or one a concurrent identical submit just committed) is read back
        without touching the counters. A refused quota raises, which rolls the insert back."""
        with self._write() as conn:
            inserted = conn.execute(stmts.NEW_PACKAGE[self.dialect], {
                "id": pkg.id, "service_id": pkg.service_id, "body": pkg.body, "size": pkg.size,
                "refine_gas": pkg.refine_gas, "accumulate_gas": pkg.accumulate_gas,
                "created_at": pkg.created_at, "updated_at": pkg.updated_at}).first()
            if inserted is None:
                existing = conn.execute(sa.select(t.packages)
                                        .where(t.packages.c.id == pkg.id)).one()
                return _package(existing), False
            # Global cap first: the counter row serializes every submitter, replicas included.
            if conn.execute(stmts.TAKE_PENDING, {"max_pending": max_pending}).rowcount != 1:
                raise PendingLimit("the runtime's global pending-package cap is reached")
            # The account's limit and its share of the global cap, read and taken while the
            # counter row is held: every change to any account's pending count holds it too,
            # so the busy-account count cannot move under us (tenancy/fairness.py).
            self._take_account_pending(conn, pkg.service_id, max_pending, account_pending,
                                       weights or {})
            # Both per-service quotas in one conditional UPDATE; only when it refuses do we
            # look at the row to say which limit was hit.
            gas = pkg.refine_gas + pkg.accumulate_gas
            if conn.execute(stmts.TAKE_QUOTA, {
                    "sid": pkg.service_id, "max_count": limits.pending_packages,
                    "gas_room": limits.gas_per_hour - gas, "gas": gas, "window": gas_window,
            }).rowcount != 1:
                svc = t.services.c
                pending = conn.execute(sa.select(svc.pending_count)
                                       .where(svc.service_id == pkg.service_id)).scalar_one()
                if pending >= limits.pending_packages:
                    raise PendingLimit("the service's pending-package quota is reached")
                raise GasQuotaExceeded("the service's gas budget for this hour is spent",
                                       gas_window=gas_window)
            return replace(pkg, status="pending", seq=inserted.seq, attempts=0), True

    def _take_account_pending(self, conn: sa.Connection, service_id: int, max_pending: int,
                              account_pending: int | None, weights: dict[str, int]) -> None:
        owner = conn.execute(stmts.OWNER_OF, {"sid": service_id}).scalar_one()
        others = conn.execute(stmts.OTHERS, {"acct": owner}).one()
        share = fairness.share(max_pending, int(others.busy))
        room = share if account_pending is None else min(share, account_pending)
        busy = [] if others.vmin is None else [int(others.vmin)]
        if others.idle and busy:  # it becomes busy: where the work in service started
            running: dict[str, tuple[int, list[tuple[int, int]]]] = {}
            for who, vtime, gas in conn.execute(stmts.RUNNING_CHARGES, {"acct": owner}):
                running.setdefault(who, (int(vtime), []))[1].append(
                    (int(gas), fairness.weight_of(weights, who)))
            busy += [fairness.in_service_start(v, r) for v, r in running.values()]
        start = fairness.start_vtime(0, busy, int(others.vmax))
        params = {"acct": owner, "room": room, "start": start}
        if conn.execute(stmts.TAKE_ACCOUNT_PENDING, params).rowcount == 1:
            return
        self._ensure_owner(conn, owner)  # a service from before the row existed
        if conn.execute(stmts.TAKE_ACCOUNT_PENDING, params).rowcount == 1:
            return
        if account_pending is not None and room == account_pending:
            raise PendingLimit("the account's pending-package limit is reached")
        raise PendingLimit("the account's share of the global pending-package cap is reached")

    def queue_ahead(self, pkg: PackageRecord) -> int | None:
        """Pending packages of the same account submitted before `pkg` (None unless `pkg`
        is itself pending): how far it is from the front of its own account's queue."""
        if pkg.status != "pending":
            return None
        with self._read() as conn:
            owner = conn.execute(stmts.OWNER_OF, {"sid": pkg.service_id}).scalar_one_or_none()
            if owner is None:
                return None
            return int(conn.execute(stmts.QUEUE_AHEAD, {"seq": pkg.seq, "acct": owner})
                       .scalar_one())

    def queue_states(self) -> dict[str, int]:
        """Runtime-wide: packages queued (not yet claimed), running, and busy accounts."""
        au = t.account_usage.c
        with self._read() as conn:
            row = conn.execute(sa.select(
                sa.func.coalesce(sa.func.sum(au.queued), 0),
                sa.func.coalesce(sa.func.sum(au.running), 0),
                sa.func.coalesce(sa.func.sum(sa.case((au.pending > 0, 1), else_=0)), 0))).one()
        return {"queued": int(row[0]), "running": int(row[1]), "busy_accounts": int(row[2])}

    def get_package(self, package_id: bytes, scope: ServiceScope) -> PackageRecord | None:
        with self._read() as conn:
            row = conn.execute(sa.select(t.packages).where(
                t.packages.c.id == package_id, _in_scope(t.packages.c.service_id, scope))).first()
        return _package(row) if row else None

    def list_packages(self, scope: ServiceScope, *, service_id: int | None = None,
                      status: str | None = None, cursor: int | None = None,
                      limit: int = 50) -> Page[PackageRecord]:
        rows = self._newest_first(t.packages, scope, service_id, limit, cursor,
                                  {"status": status} if status is not None else {},
                                  omit=("body",))
        items = [_package(r, with_body=False) for r in rows[:limit]]
        return Page(items, items[-1].seq if len(rows) > limit else None)

    def _newest_first(self, table: sa.Table, scope: ServiceScope, service_id: int | None,
                      limit: int, cursor: int | None, equal: dict[str, Any],
                      omit: tuple[str, ...] = ()) -> Sequence[Any]:
        """The newest `limit + 1` rows of `table` (seq descending, below `cursor`, with the
        `equal` column values) within the scope, and within one service if given."""
        if service_id is not None:
            ids: list[int] | None = [service_id] if scope.allows(service_id) else []
        else:
            ids = None if scope.everything else sorted(scope.ids)
        if ids is not None and not ids:
            return []
        stmt = stmts.newest_first(table, omit, tuple(sorted(equal)), cursor is not None,
                                  None if ids is None else len(ids), self.dialect)
        params: dict[str, Any] = {**equal, "lim": limit + 1}
        if cursor is not None:
            params["cursor"] = cursor
        if ids is not None and (len(ids) > MAX_MERGED_SERVICES
                                or (self.dialect == "postgres" and len(ids) > 1)):
            params["sids"] = ids
        elif ids is not None:
            params.update({f"sid{i}": sid for i, sid in enumerate(ids)})
        with self._read() as conn:
            return conn.execute(stmt, params).all()

    # -- reports, attestations, receipts --------------------------------------------------

    def get_report(self, package_id: bytes, scope: ServiceScope) -> ReportRecord | None:
        with self._read() as conn:
            row = conn.execute(sa.select(t.reports).where(
                t.reports.c.package_id == package_id,
                _in_scope(t.reports.c.service_id, scope))).first()
        return _report(row) if row else None

    def list_reports(self, scope: ServiceScope, *, service_id: int | None = None,
                     cursor: int | None = None, limit: int = 50) -> Page[ReportRecord]:
        rows = self._newest_first(t.reports, scope, service_id, limit, cursor, {})
        items = [_report(x) for x in rows[:limit]]
        return Page(items, items[-1].seq if len(rows) > limit else None)

    def attestations(self, package_id: bytes) -> list[Attestation]:
        with self._read() as conn:
            rows = conn.execute(sa.select(t.attestations)
                                .where(t.attestations.c.package_id == package_id)
                                .order_by(t.attestations.c.attestor))
            return [_attestation(r) for r in rows]

    def list_receipts(self, scope: ServiceScope, *, service_id: int | None = None,
                      cursor: int | None = None, limit: int = 50) -> Page[Receipt]:
        r = t.receipts.c
        q = sa.select(t.receipts).where(_in_scope(r.service_id, scope))
        if service_id is not None:
            q = q.where(r.service_id == service_id)
        if cursor is not None:  # (service_id, seq) packed in one integer: see receipt_cursor
            after_sid, after_seq = divmod(cursor, RECEIPT_SEQ_SPAN)
            q = q.where(sa.or_(r.service_id > after_sid,
                               sa.and_(r.service_id == after_sid, r.seq > after_seq)))
        q = q.order_by(r.service_id, r.seq).limit(limit + 1)
        with self._read() as conn:
            rows = conn.execute(q).all()
        items = [_receipt(x) for x in rows[:limit]]
        return Page(items, receipt_cursor(items[-1]) if len(rows) > limit else None)

    def find_receipts(self, hash_: bytes, scope: ServiceScope) -> list[Receipt]:
        with self._read() as conn:
            rows = conn.execute(sa.select(t.receipts).where(
                t.receipts.c.hash == hash_, _in_scope(t.receipts.c.service_id, scope))
                .order_by(t.receipts.c.service_id, t.receipts.c.seq))
            return [_receipt(r) for r in rows]

    # -- audit ----------------------------------------------------------------------------

    def audit(self, event: AuditEvent) -> None:
        with self._write() as conn:
            conn.execute(t.audit.insert().values(
                at=event.at or now_us(), actor=event.actor[:120], action=event.action[:40],
                service_id=event.service_id, target=(event.target or None) and event.target[:200],
                detail=event.detail))

    def list_audit(self, *, action: str | None = None, cursor: int | None = None,
                   limit: int = 50) -> Page[AuditEvent]:
        a = t.audit.c
        q = sa.select(t.audit)
        if action is not None:
            q = q.where(a.action == action)
        if cursor is not None:
            q = q.where(a.seq < cursor)
        with self._read() as conn:
            rows = conn.execute(q.order_by(a.seq.desc()).limit(limit + 1)).all()
        items = [AuditEvent(r.actor, r.action, r.service_id, r.target, r.detail, r.at, r.seq)
                 for r in rows[:limit]]
        return Page(items, items[-1].seq if len(rows) > limit else None)

    # -- pipeline -------------------------------------------------------------------------

    @_retry_on_deadlock
    def claim_package(self, worker: str, now: int, lease_us: int, *,
                      max_running: int | None = None,
                      weights: dict[str, int] | None = None) -> PackageRecord | None:
        """Claim a package whose worker's lease ran out, else the next one by fair queuing:
        the account with the smallest virtual time and a free worker slot, its least
        recently served service, that service's oldest pending package (tenancy/fairness.py).

        PostgreSQL: `FOR UPDATE SKIP LOCKED` on the account row and the package row, so
        concurrent workers never claim the same package nor pass an account's worker limit,
        and never wait on each other. SQLite: the write transaction is `BEGIN IMMEDIATE`."""
        limit = MAX_I64 if max_running is None else max_running
        with self._write() as conn:
            seq = conn.execute(stmts.CLAIM_EXPIRED[self.dialect], {"now": now}).scalar_one_or_none()
            for _ in range(8) if seq is None else ():
                owner = conn.execute(stmts.NEXT_ACCOUNT[self.dialect],
                                     {"max_running": limit}).scalar_one_or_none()
                if owner is None:
                    return None
                head = conn.execute(stmts.HEAD_PACKAGE[self.dialect], {"acct": owner}).first()
                if head is None:  # the queued count drifted (a crash, a manual edit): repair
                    conn.execute(stmts.NOTHING_QUEUED, {"acct": owner})
                    continue
                seq = head.seq
                weight = fairness.weight_of(weights or {}, owner)
                conn.execute(stmts.CHARGE_ACCOUNT, {"acct": owner, "cost": fairness.cost(
                    head.refine_gas + head.accumulate_gas, weight)})
                conn.execute(stmts.SERVED, {"sid": head.service_id, "now": now})
                break
            if seq is None:
                return None
            # Read the clock now, holding the locks: a claim that had to wait for the finish
            # that freed the account's worker slot starts after that finish, as recorded.
            return _package(conn.execute(stmts.MARK_CLAIMED, {
                "claimed": seq, "worker": worker, "lease_until": now + lease_us, "now": now,
                "started": max(now, now_us())}).one())

    def renew_claim(self, package_id: bytes, worker: str, until: int) -> bool:
        """The worker's heartbeat: push its lease to `until` while it still holds the claim."""
        with self._write() as conn:
            return conn.execute(stmts.RENEW_CLAIM, {"package_id": package_id, "worker": worker,
                                                    "until": until}).rowcount == 1

    def extend_lease(self, package_id: bytes, worker: str, until: int) -> bool:
        return self.renew_claim(package_id, worker, until)

    def pending_transfers(self, service_id: int) -> list[Transfer]:
        with self._read() as conn:
            rows = conn.execute(sa.select(t.transfers)
                                .where(t.transfers.c.destination == service_id)
                                .order_by(t.transfers.c.id))
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

    @_retry_on_deadlock
    def finish_package(self, outcome: PackageOutcome, storage_limit: int | None = None) -> bool:
        """Record the end of an attempt, atomically: status, report, attestations, state
        changes, receipts, usage. False (and nothing written) if this worker no longer holds
        the package, e.g. its lease ran out and another worker took it over."""
        at = now_us()
        try:
            with self._write() as conn:
                res = conn.execute(stmts.FINISH, {
                    "package_id": outcome.package_id, "worker": outcome.worker,
                    "status": outcome.status, "at": at,
                    "failure_reason": outcome.failure_reason, "detail": outcome.detail,
                    "report_hash": outcome.report.report_hash if outcome.report else None})
                if res.rowcount != 1:
                    raise _Lost
                # Lock order everywhere: package row, counter row, service row, then the
                # service's state rows (submit and upload follow the same order).
                conn.execute(stmts.RELEASE_PENDING)
                conn.execute(stmts.RELEASE_ACCOUNT, {"sid": outcome.service_id,
                                                     "refund": outcome.refund})
                conn.execute(stmts.RELEASE_SERVICE, {"sid": outcome.service_id})
                if outcome.report is not None:
                    r = outcome.report
                    conn.execute(t.reports.insert(), {
                        "package_id": r.package_id, "service_id": r.service_id,
                        "report_hash": r.report_hash, "body": r.body, "created_at": at,
                        "logs": json.dumps(list(r.logs)) if r.logs else None})
                    if outcome.attestations:
                        conn.execute(t.attestations.insert(), [{
                            "package_id": a.package_id, "attestor": a.attestor,
                            "signature": a.signature, "engine": a.engine,
                            "engine_version": a.engine_version, "report_hash": a.report_hash,
                            "created_at": at} for a in outcome.attestations])
                if outcome.status == "applied":
                    entries = [("package", outcome.package_id)]
                    if outcome.report is not None:
                        entries.append(("report", outcome.report.report_hash))
                    self._apply(conn, outcome.service_id, outcome.changes,
                                outcome.expected_seq, entries, at, storage_limit)
                    if outcome.after_units:
                        conn.execute(stmts.CHARGE_AFTER, {"sid": outcome.service_id,
                                                          "units": outcome.after_units,
                                                          "window": outcome.units_window})
                    if outcome.accumulation is not None:
                        self._keep_accumulation(conn, outcome.accumulation, at)
                    if outcome.exports is not None:
                        self._keep_exports(conn, outcome.exports, storage_limit)
        except _Lost:
            return False
        return True

    @_retry_on_deadlock
    def apply_accumulation(self, service_id: int, changes: StateChanges, expected_seq: int,
                           storage_limit: int | None, record: AccumulationRecord,
                           inputs_hash: bytes) -> None:
        """Apply an accumulation of queued inputs alone (no package): its changes, an
        `inputs` receipt, its record; StateConflict if the service moved on."""
        at = now_us()
        with self._write() as conn:
            self._apply(conn, service_id, changes, expected_seq, [("inputs", inputs_hash)],
                        at, storage_limit)
            self._keep_accumulation(conn, record, at)

    def _keep_exports(self, conn: sa.Connection, x: ExportSet, storage_limit: int | None) -> None:
        """Keep a package's s ++ P(s), charged to its service (whose row _apply locked)."""
        size = x.stored_bytes
        if storage_limit is None:
            conn.execute(t.services.update().where(t.services.c.service_id == x.service_id)
                         .values(storage_used=t.services.c.storage_used + size))
        else:
            self._charge_storage(conn, x.service_id, size, storage_limit, SegmentQuotaExceeded)
        conn.execute(t.export_sets.insert(), {
            "service_id": x.service_id, "package_hash": x.package_hash,
            "segments_root": x.segments_root, "count": x.count, "created_at": x.created_at,
            "expires_at": x.expires_at})
        conn.execute(t.segments.insert(), [
            {"service_id": x.service_id, "package_hash": x.package_hash, "idx": i, "data": d}
            for i, d in enumerate(x.segments)])

    def find_export_set(self, scope: ServiceScope, now: int, *,
                        segments_root: bytes | None = None,
                        package_hash: bytes | None = None) -> ExportSet | None:
        """An unexpired export set of a service in `scope`, by segments root or package hash
        (its segments are read with `read_segments`)."""
        e = t.export_sets.c
        q = sa.select(t.export_sets).where(_in_scope(e.service_id, scope), e.expires_at > now)
        if segments_root is not None:
            q = q.where(e.segments_root == segments_root)
        if package_hash is not None:
            q = q.where(e.package_hash == package_hash)
        with self._read() as conn:
            row = conn.execute(q.order_by(e.expires_at.desc(), e.service_id).limit(1)).first()
        if row is None:
            return None
        return ExportSet(row.service_id, bytes(row.package_hash), bytes(row.segments_root),
                         row._mapping["count"], row.created_at, row.expires_at)

    def read_segments(self, service_id: int, package_hash: bytes,
                      indices: list[int]) -> dict[int, bytes]:
        g = t.segments.c
        with self._read() as conn:
            rows = conn.execute(sa.select(g.idx, g.data).where(
                g.service_id == service_id, g.package_hash == package_hash,
                g.idx.in_(sorted(set(indices))))).all()
        return {int(r.idx): bytes(r.data) for r in rows}

    @_retry_on_deadlock
    def expire_segments(self, now: int) -> int:
        """Drop the export sets whose retention ended and give their bytes back to their
        services' storage usage. Returns how many sets went."""
        e, g = t.export_sets.c, t.segments.c
        with self._write() as conn:
            due = conn.execute(sa.select(e.service_id, e.package_hash, e.count)
                               .where(e.expires_at <= now)
                               .order_by(e.service_id, e.package_hash)).all()
            gone = 0
            for row in due:
                # The service row first (the lock order of apply); only the transaction that
                # deletes the set gives its bytes back.
                conn.execute(t.services.update().where(t.services.c.service_id == row.service_id)
                             .values(storage_used=t.services.c.storage_used))
                deleted = conn.execute(t.export_sets.delete().where(
                    e.service_id == row.service_id, e.package_hash == row.package_hash,
                    e.expires_at <= now)).rowcount
                if deleted != 1:
                    continue
                conn.execute(t.segments.delete().where(
                    g.service_id == row.service_id, g.package_hash == row.package_hash))
                conn.execute(t.services.update().where(t.services.c.service_id == row.service_id)
                             .values(storage_used=t.services.c.storage_used
                                     - export_set_bytes(row._mapping["count"])))
                gone += 1
        return gone

    def _keep_accumulation(self, conn: sa.Connection, r: AccumulationRecord, at: int) -> None:
        conn.execute(t.accumulations.insert(), {
            "service_id": r.service_id, "package_id": r.package_id, "status": r.status,
            "gas_limit": r.gas_limit, "gas_used": r.gas_used, "inputs": r.inputs,
            "yield_hash": r.yield_hash, "output": r.output, "logs": json.dumps(list(r.logs)),
            "logs_dropped": r.logs_dropped,
            "transfers": json.dumps([_transfer_json(x) for x in r.transfers]),
            "transfers_in": json.dumps([_transfer_json(x) for x in r.transfers_in]),
            "created": json.dumps(list(r.created)), "ejected": json.dumps(list(r.ejected)),
            "created_at": at})

    def get_accumulation(self, package_id: bytes,
                         scope: ServiceScope) -> AccumulationRecord | None:
        a = t.accumulations.c
        q = (sa.select(t.accumulations).where(a.package_id == package_id,
                                               _in_scope(a.service_id, scope))
             .order_by(a.seq.desc()).limit(1))
        with self._read() as conn:
            row = conn.execute(q).first()
        return _accumulation(row) if row else None

    def list_accumulations(self, service_id: int, *, cursor: int | None = None,
                           limit: int = 50) -> Page[AccumulationRecord]:
        a = t.accumulations.c
        q = sa.select(t.accumulations).where(a.service_id == service_id)
        if cursor is not None:
            q = q.where(a.seq < cursor)
        with self._read() as conn:
            rows = conn.execute(q.order_by(a.seq.desc()).limit(limit + 1)).all()
        items = [_accumulation(r) for r in rows[:limit]]
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

    def _apply(self, conn: sa.Connection, sid: int, changes: StateChanges | None,
               expected_seq: int | None, entries: list[tuple[str, bytes]], at: int,
               storage_limit: int | None) -> None:
        """Persist the plan of an apply (tenancy/apply_plan.py): the service row locked first
        (and the expected sequence number checked by the same UPDATE), the current rows of
        the touched keys read, the plan made, then written."""
        # Lock the service row first: receipts of one service are appended one at a time.
        row = conn.execute(stmts.LOCK_SERVICE[expected_seq is not None],
                           {"sid": sid, "expected_seq": expected_seq}).first()
        if row is None:
            raise StateConflict
        plan = plan_apply(self._before(conn, sid, row, changes), changes, entries,
                          storage_limit=storage_limit)
        if plan.storage_deleted:
            conn.execute(stmts.STORAGE_DELETE_MANY, {"sid": sid, "keys": plan.storage_deleted})
        if plan.storage_written:
            conn.execute(t.storage.insert(), [{"service_id": sid, "key": k, "value": v}
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
            conn.execute(t.receipts.insert(), [
                {"service_id": sid, "seq": r.seq, "prev_root": r.prev_root,
                 "new_root": r.new_root, "entry_type": r.entry_type, "hash": r.hash,
                 "processed_at": at} for r in plan.receipts])
        svc = t.services.c
        values: dict[str, Any] = dict(plan.columns)
        if plan.d_items:
            values["state_items"] = svc.state_items + plan.d_items
        if plan.d_octets:
            values["state_octets"] = svc.state_octets + plan.d_octets
        if plan.d_bytes:
            values["storage_used"] = svc.storage_used + plan.d_bytes
        if plan.receipts:
            values.update(root=plan.root, receipt_seq=plan.receipts[-1].seq)
        if values:
            conn.execute(t.services.update().where(svc.service_id == sid).values(**values))

    def _before(self, conn: sa.Connection, sid: int, row: Any,
                changes: StateChanges | None) -> Before:
        """What the planner needs of the service: its locked row and the current rows of the
        keys the changes touch (one statement per kind of row, none for untouched kinds)."""
        keys, requests, hashes = touched(changes)
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

    def pending_total(self) -> int:
        """Packages not yet finished, runtime-wide: the global counter row."""
        with self._read() as conn:
            return int(conn.execute(sa.select(t.counters.c.value)
                                    .where(t.counters.c.name == "pending")).scalar() or 0)

    def optimize(self) -> None:
        """Keep SQLite's planner statistics fresh (PostgreSQL's autovacuum does this)."""
        if self.dialect == "sqlite":
            with self.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA optimize")

    @_retry_on_deadlock
    def reconcile_usage(self) -> int:
        """Recompute pending counts and storage bytes from the rows (repairs drift).
        Returns the number of services whose counters changed."""
        changed = 0
        p, pr, st = t.packages.c, t.preimages.c, t.storage.c
        with self._write() as conn:
            for row in conn.execute(sa.select(t.services.c.service_id,
                                              t.services.c.pending_count,
                                              t.services.c.storage_used)).all():
                sid = row.service_id
                pending = conn.execute(sa.select(sa.func.count()).where(
                    p.service_id == sid, p.status.in_(("pending", "refining")))).scalar_one()
                blobs = conn.execute(sa.select(sa.func.coalesce(sa.func.sum(pr.size), 0))
                                     .where(pr.service_id == sid)).scalar_one()
                state = conn.execute(sa.select(sa.func.coalesce(sa.func.sum(
                    sa.func.length(st.key) + sa.func.length(st.value)), 0))
                    .where(st.service_id == sid)).scalar_one()
                state += REQUEST_ROW_BYTES * conn.execute(sa.select(sa.func.count()).where(
                    t.lookup_requests.c.service_id == sid)).scalar_one()
                state += sum(export_set_bytes(n) for n in conn.execute(
                    sa.select(t.export_sets.c.count)
                    .where(t.export_sets.c.service_id == sid)).scalars())
                if (pending, blobs + state) != (row.pending_count, row.storage_used):
                    changed += 1
                    conn.execute(t.services.update().where(t.services.c.service_id == sid)
                                 .values(pending_count=pending, storage_used=blobs + state))
            self._reconcile_accounts(conn)
            total = conn.execute(sa.select(sa.func.count()).where(
                p.status.in_(("pending", "refining")))).scalar_one()
            conn.execute(t.counters.update().where(t.counters.c.name == "pending")
                         .values(value=total))
        self.optimize()
        return changed

    def _reconcile_accounts(self, conn: sa.Connection) -> None:
        """Per-account counters from the rows; the virtual times are kept."""
        p, s, au = t.packages.c, t.services.c, t.account_usage.c
        counts: dict[str, list[int]] = {}
        for owner, n in conn.execute(sa.select(s.owner, sa.func.count()).group_by(s.owner)):
            counts[owner] = [n, 0, 0, 0]
        for owner, status, n in conn.execute(
                sa.select(s.owner, p.status, sa.func.count())
                .select_from(t.packages.join(t.services, s.service_id == p.service_id))
                .where(p.status.in_(("pending", "refining"))).group_by(s.owner, p.status)):
            c = counts.setdefault(owner, [0, 0, 0, 0])
            c[1] += n
            c[2 if status == "pending" else 3] += n
        for owner, (services, pending, queued, running) in counts.items():
            self._ensure_owner(conn, owner)
            conn.execute(t.account_usage.update().where(au.owner == owner).values(
                services=services, pending=pending, queued=queued, running=running))

    # -- service state --------------------------------------------------------------------

    def storage_get(self, service_id: int, key: bytes) -> bytes | None:
        with self._read() as conn:
            return conn.execute(stmts.STORAGE_VALUE,
                                {"sid": service_id, "key": key}).scalar_one_or_none()

    def storage_list(self, service_id: int, prefix: bytes = b"", cursor: bytes | None = None,
                     limit: int = 50) -> Page[tuple[bytes, bytes]]:
        s = t.storage.c
        q = sa.select(s.key, s.value).where(s.service_id == service_id)
        if prefix:
            q = q.where(s.key >= prefix)
            upper = _prefix_upper(prefix)
            if upper is not None:
                q = q.where(s.key < upper)
        if cursor is not None:
            q = q.where(s.key > cursor)
        q = q.order_by(s.key).limit(limit + 1)
        with self._read() as conn:
            rows = conn.execute(q).all()
        items = [(bytes(r.key), bytes(r.value)) for r in rows[:limit]]
        return Page(items, None) if len(rows) <= limit else Page(items, items[-1][0])


def _in_scope(column: sa.ColumnElement[Any], scope: ServiceScope) -> sa.ColumnElement[bool]:
    if scope.everything:
        return sa.true()
    if not scope.ids:
        return sa.false()
    return column.in_(sorted(scope.ids))


def _prefix_upper(prefix: bytes) -> bytes | None:
    """The smallest byte string greater than every string starting with `prefix`."""
    b = bytearray(prefix)
    while b and b[-1] == 0xFF:
        b.pop()
    if not b:
        return None
    b[-1] += 1
    return bytes(b)


def _token(r: Any) -> TokenRecord:
    return TokenRecord(r.accessor, r.account_id, bytes(r.token_hash), r.name,
                       tuple(s for s in r.scopes.split(",") if s), r.created_at, r.expires_at,
                       r.revoked_at)


def _service(r: Any) -> ServiceRecord:
    return ServiceRecord(
        service_id=r.service_id, owner=r.owner, code_hash=bytes(r.code_hash), balance=r.balance,
        min_item_gas=r.min_item_gas, min_memo_gas=r.min_memo_gas, created_at=r.created_at,
        created_by=r.created_by,
        quota=QuotaOverride(r.quota_pending_packages, r.quota_storage_bytes,
                            r.quota_gas_per_hour),
        usage=Usage(r.pending_count, r.storage_used, r.gas_window, r.gas_used),
        root=bytes(r.root), receipt_seq=r.receipt_seq, state_items=r.state_items,
        state_octets=r.state_octets,
        last_yield=bytes(r.last_yield) if r.last_yield is not None else None)


def _delegate(r: Any) -> Delegate:
    return Delegate(r.id, r.service_id, bytes(r.token_hash), r.role, r.created_at, r.created_by)


_SQL_POSITION_MAX = (1 << 31) - 2


def _preimage(r: Any) -> PreimageMeta:
    sid = None if r.service_id == UNSCOPED else r.service_id
    return PreimageMeta(bytes(r.hash), r.size, r.media_type, sid, r.created_at)


def _package(r: Any, with_body: bool = True) -> PackageRecord:
    return PackageRecord(
        id=bytes(r.id), service_id=r.service_id, status=r.status,
        body=bytes(r.body) if with_body else b"", size=r.size, refine_gas=r.refine_gas,
        accumulate_gas=r.accumulate_gas, created_at=r.created_at, updated_at=r.updated_at,
        seq=r.seq, failure_reason=r.failure_reason,
        report_hash=bytes(r.report_hash) if r.report_hash is not None else None,
        attempts=r.attempts, detail=r.detail, started_at=r.started_at)


def _report(r: Any) -> ReportRecord:
    return ReportRecord(bytes(r.package_id), r.service_id, bytes(r.report_hash), bytes(r.body),
                        r.created_at, r.seq, tuple(json.loads(r.logs)) if r.logs else ())


def _transfer_json(x: Transfer) -> dict[str, Any]:
    return {"source": x.source, "destination": x.destination, "amount": x.amount,
            "memo": x.memo.hex(), "gas": x.gas, "id": x.id}


def _transfer_of(d: dict[str, Any]) -> Transfer:
    return Transfer(d["source"], d["destination"], d["amount"], bytes.fromhex(d["memo"]),
                    d["gas"], d.get("id", 0))


def _accumulation(r: Any) -> AccumulationRecord:
    return AccumulationRecord(
        service_id=r.service_id, package_id=bytes(r.package_id) if r.package_id else None,
        status=r.status, gas_limit=int(r.gas_limit), gas_used=int(r.gas_used),
        inputs=r.inputs, yield_hash=bytes(r.yield_hash) if r.yield_hash else None,
        output=bytes(r.output) if r.output is not None else None,
        logs=tuple(json.loads(r.logs)), logs_dropped=r.logs_dropped,
        transfers=tuple(_transfer_of(d) for d in json.loads(r.transfers)),
        transfers_in=tuple(_transfer_of(d) for d in json.loads(r.transfers_in)),
        created=tuple(json.loads(r.created)), ejected=tuple(json.loads(r.ejected)),
        created_at=r.created_at, seq=r.seq)


def _attestation(r: Any) -> Attestation:
    return Attestation(bytes(r.package_id), bytes(r.attestor), bytes(r.signature), r.engine,
                       r.engine_version, bytes(r.report_hash), r.created_at)


def _receipt(r: Any) -> Receipt:
    return Receipt(r.service_id, r.seq, bytes(r.prev_root), bytes(r.new_root), r.entry_type,
                   bytes(r.hash), r.processed_at)


