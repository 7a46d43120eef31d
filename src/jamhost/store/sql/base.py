"""What every part of the SQL store shares: the engine, its read and write transactions
(SQLite: `BEGIN IMMEDIATE` behind a per-database lock; memory: one shared connection, every
transaction behind its lock; PostgreSQL: READ COMMITTED, reads in autocommit), the retry of a
transaction PostgreSQL aborted to break a deadlock, and the service row read back."""

from __future__ import annotations

import functools
import threading
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
from jamhost.store.sql.engine import connect, is_memory, kept_engine, writer_lock
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
        # SQLite file: a worker's thread keeps a connection for its transactions (own_connection)
        self._kept = kept_engine(engine) if self.kind == "sqlite" else None
        self._own = threading.local()
        self._owned: list[sa.Connection] = []
        self._owned_lock = threading.Lock()

    def own_connection(self) -> None:
        """The calling thread (a worker's loop: long-lived, six transactions a package) keeps
        a connection of its own for its transactions from now on, on a SQLite file; nothing
        on the other stores.

        A connection from the pool and back cost 20 to 35 us of SQLAlchemy's Python per
        transaction (the Connection object, the pool's checkout and checkin and their
        events): a kept one halves a read's and a write's cost (docs/scheduling.md, "A
        package's transactions on SQLite"). Kept connections come from an engine without a pool
        (store/sql/engine.py `kept_engine`), so they never take the pool's slots from the
        request threads, and are closed with the store. Request threads, which come and go
        with the server's thread pool, keep using the pool."""
        if self._kept is not None:
            self._own.conn = None

    def _own_connection(self) -> sa.Connection | None:
        """The thread's own connection (own_connection), free for a transaction; None for a
        thread without one, or when its own is in a transaction already (a transaction
        opened inside another, or one a generator left open): that one then takes a
        connection from the pool as before."""
        own = self._own
        if not hasattr(own, "conn") or self._kept is None:
            return None
        conn: sa.Connection | None = own.conn
        if conn is None or conn.closed or conn.invalidated:
            conn = own.conn = self._kept.connect()
            own.mode = None
            with self._owned_lock:
                self._owned.append(conn)
        return None if conn.in_transaction() else conn

    def _own_as(self, conn: sa.Connection, write: bool, lease: bool) -> sa.Connection:
        """`conn` (a thread's own) with the options of the transaction to begin (they stay on
        it: set only when they change)."""
        mode = (write, lease)
        if self._own.mode != mode:
            conn.execution_options(jam_write=write, jam_lease=lease)
            self._own.mode = mode
        return conn

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
        with self._writer_lock:
            own = self._own_connection()
            if own is not None:  # options set for this transaction (they stay on `own`)
                with self._own_as(own, True, lease).begin():
                    yield own
                return
            with connect(self.engine).execution_options(jam_write=True, jam_lease=lease) \
                    as conn, conn.begin():
                yield conn

    @contextmanager
    def _read(self) -> Iterator[sa.Connection]:
        if self._shared_lock is not None:  # memory: one connection, one transaction at a time
            with self._shared_lock, self._reader.connect() as conn, conn.begin():
                yield conn
            return
        own = self._own_connection()
        if own is not None:
            with self._own_as(own, False, False).begin():
                yield own
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
        with self._owned_lock:
            owned, self._owned = self._owned, []
        for conn in owned:  # the threads' own connections (own_connection)
            conn.close()
        if self._kept is not None:
            self._kept.dispose()
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
