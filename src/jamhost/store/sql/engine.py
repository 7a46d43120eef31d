"""Engines for the two SQL back ends, with the transaction semantics the store relies on.

SQLite: WAL, synchronous=FULL by default (an acknowledged write survives `kill -9` and a power
cut; `sqlite_synchronous = "normal"`: `kill -9` only, docs/operations.md), a busy timeout, and
`BEGIN IMMEDIATE` for write transactions so that read-check-write sequences are serialized
across threads and processes; write transactions on one database file also queue on a lock
across the host's threads and processes (`writer_lock`, store/sql/writer_lock.py).
PostgreSQL: READ COMMITTED plus row locks from conditional UPDATEs and `FOR UPDATE SKIP
LOCKED`; pooled connections checked for liveness on checkout
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

from jamhost.store.sql.writer_lock import FileWriterLock

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


DEFAULT_PG_POOL_SIZE = 10


SQLITE_SYNCHRONOUS = {"full": "FULL", "normal": "NORMAL"}


def make_engine(url: str, *, pg_pool_size: int = DEFAULT_PG_POOL_SIZE,
                sqlite_synchronous: str = "full") -> sa.Engine:
    if url == MEMORY_URL:
        engine = sa.create_engine(url, poolclass=sa.pool.StaticPool,
                                  connect_args={"check_same_thread": False})
        _sqlite_semantics(engine)
        _MEMORY_LOCKS[engine] = threading.RLock()
        return engine
    if url.startswith("sqlite"):
        Path(url.split("///", 1)[1]).parent.mkdir(parents=True, exist_ok=True)
        return _sqlite_file(url, SQLITE_SYNCHRONOUS[sqlite_synchronous])
    # Kept: `pg_pool_size` connections; in a burst as many again, closed when returned. A
    # request past both waits for a returned one (the pool's timeout, 30 s).
    engine = sa.create_engine(url, pool_size=pg_pool_size, max_overflow=pg_pool_size)
    _postgres_liveness(engine)
    return engine


# SQLSTATEs of a server that refuses a new connection for now: every connection slot is
# taken (53300 too_many_connections), or it is starting or shutting down (57P03).
BUSY_SERVER_CODES = {"53300", "57P03"}
CONNECT_WAIT_S = 10.0


def connect(engine: sa.Engine) -> sa.Connection:
    """A connection from the engine's pool, waiting for a free slot on a busy server.

    A PostgreSQL server at `max_connections` (or a database or role at its `CONNECTION
    LIMIT`) refuses new connections until one closes; other replicas, workers and clients
    share the limit, and so does this process's own pool. Failing the request would answer
    500 for a condition that clears in milliseconds. Instead the checkout is retried, 20 ms
    apart and doubling to 0.5 s, for up to CONNECT_WAIT_S: each retry takes a connection
    another thread returned to the pool if there is one, and opens a new one otherwise. Any
    other failure, and this one after the wait, is raised as before."""
    deadline = time.monotonic() + CONNECT_WAIT_S
    pause = 0.02
    while True:
        try:
            return engine.connect()
        except sa.exc.OperationalError as exc:
            if (_sqlstate(exc.orig) not in BUSY_SERVER_CODES
                    or time.monotonic() + pause > deadline):
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.5)


def _sqlstate(exc: BaseException | None) -> str | None:
    """The SQLSTATE of a refused connection: psycopg keeps the server's error in `sqlstate`
    when it has one; a refusal at start-up carries it only in the message text."""
    code = getattr(exc, "sqlstate", None)
    if code:
        return str(code)
    text = str(exc)
    if any(m in text for m in ("too many clients", "too many connections",
                                "remaining connection slots")):
        return "53300"
    if "the database system is starting up" in text or "shutting down" in text:
        return "57P03"
    return None


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


def _sqlite_semantics(engine: sa.Engine, synchronous: str = "FULL") -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        # Let SQLAlchemy, not pysqlite, emit BEGIN so we can choose IMMEDIATE.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA synchronous={synchronous}")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        # Straight to the driver's connection: a BEGIN through `exec_driver_sql` paid
        # SQLAlchemy's whole execution context (about 40 us of Python) for a statement that
        # has no parameters and no result, once per transaction (docs/benchmarks.md).
        driver = conn.connection.driver_connection
        options = conn.get_execution_options()
        if not options.get("jam_write"):
            driver.execute("BEGIN")
            return
        # A lease (a claim, a heartbeat) is no promise to anyone: its commit is not synced
        # to the disk (synchronous=NORMAL for that transaction). Lost in a power cut, the
        # package is pending again and is claimed anew; the next durable commit syncs the
        # WAL, this lease's frames before it included (docs/operations.md, "SQLite durability").
        level = "NORMAL" if options.get("jam_lease") else synchronous
        info = conn.connection.info  # the pooled connection's own, kept across checkouts
        if info.get("synchronous", synchronous) != level:
            driver.execute(f"PRAGMA synchronous={level}")
            info["synchronous"] = level
        driver.execute("BEGIN IMMEDIATE")


def kept_engine(engine: sa.Engine) -> sa.Engine:
    """A sibling of a SQLite file's engine without a pool, for the connections a worker's
    thread keeps (SqlBase.own_connection): the same file, the same semantics, outside the
    pool's limit (a kept connection is never checked back in)."""
    return _sqlite_file(engine.url, _SYNCHRONOUS.get(engine, "FULL"), poolclass=sa.pool.NullPool)


def _sqlite_file(url: str | sa.URL, synchronous: str, **pool: object) -> sa.Engine:
    """An engine on a SQLite file with the store's semantics (_sqlite_semantics)."""
    engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30},
                              **pool)
    _sqlite_semantics(engine, synchronous)
    _SYNCHRONOUS[engine] = synchronous
    return engine


_SYNCHRONOUS: weakref.WeakKeyDictionary[sa.Engine, str] = weakref.WeakKeyDictionary()
_WRITERS: dict[str, FileWriterLock] = {}
_MEMORY_LOCKS: weakref.WeakKeyDictionary[sa.Engine, threading.RLock] = \
    weakref.WeakKeyDictionary()


def is_memory(engine: sa.Engine) -> bool:
    return engine in _MEMORY_LOCKS


def writer_lock(engine: sa.Engine) -> FileWriterLock | threading.RLock | None:
    """The lock write transactions on one SQLite file take before `BEGIN IMMEDIATE`, shared
    by the host's threads and processes (store/sql/writer_lock.py); None on PostgreSQL,
    whose row locks wait without polling.

    Within a process, worker threads and request threads writing at once spent up to a
    fifth of their time in SQLite's busy handler's sleeps with the database free, and one
    quiet tenant's submit waited up to 185 ms behind one-step packages (docs/benchmarks.md,
    fairness); across processes (`jamhost worker` beside `serve`) the same, until the lock
    became a file lock too (docs/scheduling.md, "What a claim costs")."""
    if engine.dialect.name != "sqlite":
        return None
    if engine in _MEMORY_LOCKS:  # one shared connection: reads take it too (SqlStore._read)
        return _MEMORY_LOCKS[engine]
    database = str(Path(str(engine.url.database)).resolve())
    return _WRITERS.setdefault(database, FileWriterLock(database))


def _readable(fd: int) -> bool:
    """Whether `fd` has data, an error or a hang-up pending, without waiting. poll, not
    select: select cannot watch descriptors above 1023, which a busy server reaches."""
    if not hasattr(select, "poll"):  # pragma: no cover - platforms without poll
        return bool(select.select([fd], [], [], 0)[0])
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLPRI | select.POLLERR | select.POLLHUP)
    return bool(poller.poll(0))
