"""Engines for the two SQL back ends, with the transaction semantics the store relies on.

SQLite: WAL, synchronous=FULL (an acknowledged write survives `kill -9`), a busy timeout, and
`BEGIN IMMEDIATE` for write transactions so that read-check-write sequences are serialized
across threads and processes; within one process, write transactions on one database file
also queue on a lock (`writer_lock`). PostgreSQL: READ COMMITTED plus row locks from conditional
UPDATEs and `FOR UPDATE SKIP LOCKED`; pooled connections checked for liveness on checkout
without a round trip (see `_postgres_liveness`).
"""

from __future__ import annotations

import select
import threading
import time
import weakref
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event

MEMORY_URL = "sqlite+pysqlite://"
"""The memory store: SQLite in memory, one database per engine (nothing persists past the
process, no file). Its one connection is shared by the process's threads (StaticPool), so
every transaction on it, reads included, takes the engine's lock (`engine_lock`)."""


def sqlite_url(path: str) -> str:
    if path == ":memory:":
        raise ValueError("use store = 'memory' for an in-memory store")
    return f"sqlite+pysqlite:///{Path(path).expanduser().resolve()}"


def postgres_url(dsn: str) -> str:
    """Accept libpq-style URLs (`postgresql://...`) and pin the psycopg 3 driver."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if dsn.startswith(prefix):
            return "postgresql+psycopg://" + dsn[len(prefix):]
    if dsn.startswith("postgresql+"):
        return dsn
    raise ValueError("pg_dsn must be a postgresql:// URL")


def make_engine(url: str) -> sa.Engine:
    if url == MEMORY_URL:
        engine = sa.create_engine(url, poolclass=sa.pool.StaticPool,
                                  connect_args={"check_same_thread": False})
        _sqlite_semantics(engine)
        _MEMORY_LOCKS[engine] = threading.RLock()
        return engine
    if url.startswith("sqlite"):
        Path(url.split("///", 1)[1]).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"check_same_thread": False,
                                                     "timeout": 30})
        _sqlite_semantics(engine)
        return engine
    engine = sa.create_engine(url, pool_size=10, max_overflow=20)
    _postgres_liveness(engine)
    return engine


PING_AFTER_IDLE_S = 30.0


def _postgres_liveness(engine: sa.Engine) -> None:
    """Hand out only live connections, without a round trip per checkout.

    `pool_pre_ping` would send a query before every checkout (several per request). Instead:
    a pooled connection whose socket is readable while idle has been closed or told
    something by the server (a restart or `pg_terminate_backend` sends an error and closes
    it): it is discarded, which costs one non-blocking `poll`. One idle for longer than
    PING_AFTER_IDLE_S (possibly dropped silently by the network) is pinged first. The pool
    then opens a new connection in place of a discarded one."""

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_conn, record):
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_conn, record, _proxy):
        idle_since = record.info.get("idle_since")
        if idle_since is None:  # fresh from connect()
            return
        try:
            spoke = _readable(dbapi_conn.fileno())
        except (OSError, ValueError):  # closed descriptor
            raise sa.exc.DisconnectionError("connection closed") from None
        if spoke:
            raise sa.exc.DisconnectionError("the server spoke or hung up while idle")
        if time.monotonic() - idle_since > PING_AFTER_IDLE_S:
            try:
                engine.dialect.do_ping(dbapi_conn)
                dbapi_conn.rollback()
            except Exception:
                raise sa.exc.DisconnectionError("ping failed") from None


def _sqlite_semantics(engine: sa.Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        # Let SQLAlchemy, not pysqlite, emit BEGIN so we can choose IMMEDIATE.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        if conn.get_execution_options().get("jam_write"):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")


_WRITERS: dict[str, threading.RLock] = {}
_MEMORY_LOCKS: weakref.WeakKeyDictionary[sa.Engine, threading.RLock] = \
    weakref.WeakKeyDictionary()


def is_memory(engine: sa.Engine) -> bool:
    return engine in _MEMORY_LOCKS


def writer_lock(engine: sa.Engine) -> threading.RLock | None:
    """The lock a process's write transactions on one SQLite file take before `BEGIN
    IMMEDIATE` (None on PostgreSQL, whose row locks wait without polling).

    SQLite's busy handler does not wait for the write lock: it sleeps and retries, 1, 2, 5,
    10, 15, 20, 25, 25, 25, 50, 50 then 100 ms apart. Worker threads and request threads
    writing at once then spent up to a fifth of their time asleep with the database free,
    and one quiet tenant's submit waited up to 185 ms behind one-step packages
    (docs/benchmarks.md, fairness). Queued on this lock instead, a writer starts as soon as
    the previous one commits. Other processes still meet the busy handler. Re-entrant, so a
    thread that nests writes fails on SQLite's timeout as before rather than hanging."""
    if engine.dialect.name != "sqlite":
        return None
    if engine in _MEMORY_LOCKS:  # one shared connection: reads take it too (SqlStore._read)
        return _MEMORY_LOCKS[engine]
    return _WRITERS.setdefault(str(engine.url.database), threading.RLock())


def _readable(fd: int) -> bool:
    """Whether `fd` has data, an error or a hang-up pending, without waiting. poll, not
    select: select cannot watch descriptors above 1023, which a busy server reaches."""
    if not hasattr(select, "poll"):  # pragma: no cover - platforms without poll
        return bool(select.select([fd], [], [], 0)[0])
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLPRI | select.POLLERR | select.POLLHUP)
    return bool(poller.poll(0))
