"""What every part of the SQL store shares: the engine, its read and write transactions
(SQLite: `BEGIN IMMEDIATE` behind a per-database lock; memory: one shared connection, every
transaction behind its lock; PostgreSQL: READ COMMITTED, reads in autocommit), the retry of a
transaction PostgreSQL aborted to break a deadlock, and the service row read back."""

from __future__ import annotations

import functools
import time
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from jamhost.domain.model import ServiceRecord
from jamhost.domain.refusals import NotFound
from jamhost.store.sql import statements as stmts
from jamhost.store.sql import tables as t
from jamhost.store.sql.direct import Direct
from jamhost.store.sql.engine import connect, is_memory, writer_lock
from jamhost.store.sql.rows import service_record

FIRST_SERVICE_ID = 65536
MAX_I64 = 2**63 - 1
RETRYABLE_PGCODES = {"40P01", "40001"}  # deadlock detected, serialization failure
_SERVICE = Direct(stmts.SERVICE)  # read several times per package (store/sql/direct.py)


def retry_on_deadlock(fn):
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


class Lost(Exception):
    """Raised inside a transaction to roll it back: the worker no longer holds the package."""


class SqlBase:
    """The engine and its transactions; the parts of `SqlStore` build on it."""

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

    @contextmanager
    def _write(self, *, lease: bool = False) -> Iterator[sa.Connection]:
        """A write transaction. `lease`: one that only takes or renews a worker's lease (a
        claim, a heartbeat), which SQLite commits without syncing it to the disk
        (store/sql/engine.py, `_on_begin`)."""
        if self._writer_lock is None:
            with connect(self.engine).execution_options(jam_write=True, jam_lease=lease) \
                    as conn, conn.begin():
                yield conn
            return
        with self._writer_lock, connect(self.engine).execution_options(
                jam_write=True, jam_lease=lease) as conn, conn.begin():
            yield conn

    @contextmanager
    def _read(self) -> Iterator[sa.Connection]:
        if self._shared_lock is not None:  # memory: one connection, one transaction at a time
            with self._shared_lock, self._reader.connect() as conn, conn.begin():
                yield conn
            return
        with connect(self._reader) as conn, conn.begin():
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

    def get_or_create_meta(self, key: str, value: str) -> str:
        with self._write() as conn:
            conn.execute(self._insert(t.meta).values(key=key, value=value)
                         .on_conflict_do_nothing())
            return conn.execute(sa.select(t.meta.c.value).where(t.meta.c.key == key)).scalar_one()

    def _ensure_owner(self, conn: sa.Connection, owner: str) -> None:
        conn.execute(self._insert(t.account_usage).values(owner=owner).on_conflict_do_nothing())

    def _written_service(self, conn: sa.Connection, service_id: int) -> ServiceRecord:
        """The service row this transaction has just written, so it exists."""
        svc = self._service(conn, service_id)
        if svc is None:
            raise NotFound("no such service")
        return svc

    def _service(self, conn: sa.Connection, service_id: int) -> ServiceRecord | None:
        row = _SERVICE.first(conn, {"sid": service_id})
        return service_record(row) if row else None

    def optimize(self) -> None:
        """Keep SQLite's planner statistics fresh (PostgreSQL's autovacuum does this)."""
        if self.dialect == "sqlite":
            with self.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA optimize")

    def pending_total(self) -> int:
        """Packages not yet finished, runtime-wide: the global counter row."""
        with self._read() as conn:
            return int(conn.execute(sa.select(t.counters.c.value)
                                    .where(t.counters.c.name == "pending")).scalar() or 0)
