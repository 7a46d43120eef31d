"""A worker's thread keeps a connection of its own on a SQLite file (SqlBase.own_connection):
its transactions run on that one connection, outside the pool's limit, a transaction opened
inside another still gets a connection of its own, and the store's close closes them."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from jamhost.config import JamSettings
from jamhost.domain.model import now_us
from jamhost.store import open_store


def _store(tmp_path: Path) -> Any:
    return open_store(JamSettings(store="sqlite", sqlite_path=str(tmp_path / "s.db")))


def _driver(conn: Any) -> int:
    return id(conn.connection.driver_connection)


def test_a_kept_connection_serves_the_threads_reads_and_writes(tmp_path: Path) -> None:
    s = _store(tmp_path)
    try:
        s.own_connection()
        seen = set()
        for _ in range(3):
            with s._read() as conn:
                seen.add(_driver(conn))
            with s._write() as conn:
                seen.add(_driver(conn))
            with s._write(lease=True) as conn:
                seen.add(_driver(conn))
        assert len(seen) == 1
        # a transaction inside another: a connection from the pool, and both work
        with s._read() as outer, s._read() as inner:
            assert _driver(outer) != _driver(inner)
            assert inner.exec_driver_sql("SELECT 1").scalar_one() == 1
        assert s.claim_package("w", now_us(), 10**6) is None  # the store's own methods too
    finally:
        s.close()


def test_a_thread_without_one_uses_the_pool(tmp_path: Path) -> None:
    s = _store(tmp_path)
    try:
        with s._read() as conn:
            pooled = conn.connection.driver_connection
        s.own_connection()
        with s._read() as conn:
            assert conn.connection.driver_connection is not pooled
    finally:
        s.close()


def test_kept_connections_take_no_slot_of_the_pool(tmp_path: Path) -> None:
    """More threads keep a connection than the pool holds (5 + 10 overflow), all in a
    transaction at once, and a thread without one still gets a pooled connection."""
    s = _store(tmp_path)
    inside = threading.Barrier(21)
    out = threading.Event()
    errors: list[BaseException] = []

    def hold() -> None:
        try:
            s.own_connection()
            with s._read():
                inside.wait(timeout=30)
                out.wait(timeout=30)
        except BaseException as exc:  # reported by the main thread's assertion below
            errors.append(exc)
            inside.abort()

    threads = [threading.Thread(target=hold) for _ in range(20)]
    try:
        for t in threads:
            t.start()
        inside.wait(timeout=30)
        s.engine.pool._timeout = 1  # a pool out of slots would fail this read at once
        with s._read() as conn:
            assert conn.exec_driver_sql("SELECT 1").scalar_one() == 1
    finally:
        out.set()
        for t in threads:
            t.join(30)
        s.close()
    assert errors == []


def test_close_closes_the_kept_connections(tmp_path: Path) -> None:
    s = _store(tmp_path)
    s.own_connection()
    with s._read() as conn:
        kept = conn
    s.close()
    assert kept.closed
