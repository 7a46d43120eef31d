"""Engines for the two SQL back ends, with the transaction semantics the store relies on.

SQLite: WAL, synchronous=FULL (an acknowledged write survives `kill -9`), a busy timeout, and
`BEGIN IMMEDIATE` for write transactions so that read-check-write sequences are serialized
across threads and processes. PostgreSQL: READ COMMITTED plus row locks from conditional
UPDATEs and `FOR UPDATE SKIP LOCKED`.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event


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
    if url.startswith("sqlite"):
        Path(url.split("///", 1)[1]).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"check_same_thread": False,
                                                     "timeout": 30})
        _sqlite_semantics(engine)
        return engine
    return sa.create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)


def _sqlite_semantics(engine: sa.Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):  # type: ignore[no-untyped-def]
        # Let SQLAlchemy, not pysqlite, emit BEGIN so we can choose IMMEDIATE.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):  # type: ignore[no-untyped-def]
        if conn.get_execution_options().get("jam_write"):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")
