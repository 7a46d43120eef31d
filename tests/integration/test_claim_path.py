"""The claim path of the store: the PostgreSQL claim against rows another transaction holds,
over real connections; the SQL charge against fairness.cost; SQLite's commit durability.

The claim locks the account row `FOR UPDATE SKIP LOCKED`; a finish takes that row in its
last statement and holds it for its commit, and another worker's claim holds it for its own
statement. A claim that met such a row used to come back empty with work queued, and its
worker slept IDLE_SLEEP. Here one connection holds the row in an open transaction, as those
do, while a worker claims on another. And a finish still in its apply (its service row held,
the account row not yet taken) does not make the claim of the account's next package wait.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from jamhost.config import JamSettings
from jamhost.domain.model import (
    ZERO_HASH,
    PackageOutcome,
    PackageRecord,
    QuotaLimits,
    StateChanges,
    now_us,
)
from jamhost.store import Store, open_store
from jamhost.store.sql import statements as stmts
from jamhost.tenancy import fairness
from tests.store_scopes import EVERYTHING

ROOMY = QuotaLimits(pending_packages=100, storage_bytes=10_000, gas_per_hour=10**9)
W = 490_000
OWNER = "acct-a"


@pytest.fixture
def store(fresh_pg: str) -> Iterator[Store]:
    s = open_store(JamSettings(store="postgres", pg_dsn=fresh_pg))
    s.init_counters()
    yield s
    s.close()


def _queue(store: Store, n: int) -> list[bytes]:
    sid = store.create_service(owner=OWNER, code=None, code_hash=ZERO_HASH, balance=0,
                               min_item_gas=0, min_memo_gas=0, created_by="op",
                               storage_limit=10**6).service_id
    ids = []
    for i in range(n):
        body = b"pkg-%d" % i
        rec = PackageRecord(id=hashlib.blake2b(body, digest_size=32).digest(), service_id=sid,
                            status="pending", body=body, size=len(body), refine_gas=100,
                            accumulate_gas=100, created_at=now_us(), updated_at=now_us())
        store.submit_package(rec, ROOMY, 100, W)
        ids.append(rec.id)
    return ids


def _applied(store: Store, running: PackageRecord) -> PackageOutcome:
    svc = store.get_service(running.service_id)
    assert svc is not None
    return PackageOutcome(running.id, running.service_id, "w1", "applied",
                          expected_seq=svc.receipt_seq,
                          changes=StateChanges(storage={b"k": b"v"}), refund=0)


def _hold_account(conn: sa.Connection, how: str, store: Store,
                  running: PackageRecord) -> None:
    """Take the account row in `conn`'s open transaction: as a finish does (the real
    finish's statements, short of its commit), or as another worker's claim does."""
    if how == "finish":
        outcome = _applied(store, running)
        store._record_finish(conn, outcome, None, now_us())  # type: ignore[attr-defined]
        store._release_account(conn, outcome)  # type: ignore[attr-defined]
    else:
        conn.execute(sa.text("SELECT 1 FROM jam_account_usage WHERE owner = :o FOR UPDATE"),
                     {"o": OWNER})


def _lock_waiters(store: Store) -> int:
    with store.engine.connect() as conn:  # type: ignore[attr-defined]
        return int(conn.execute(sa.text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock'")).scalar_one())


def _claim_in_thread(store: Store, max_running: int) -> tuple[threading.Thread, list[Any]]:
    got: list[Any] = []
    thread = threading.Thread(target=lambda: got.append(
        store.claim_package("w2", now_us(), 10**9, max_running=max_running)))
    thread.start()
    return thread, got


@pytest.mark.parametrize("holder", ["finish", "claim"])
def test_a_held_account_row_does_not_make_the_claim_come_back_empty(store: Store,
                                                                     holder: str) -> None:
    ids = _queue(store, 3)
    first = store.claim_package("w1", now_us(), 10**9, max_running=2)
    assert first is not None and first.id == ids[0]
    with store.engine.connect() as conn:  # type: ignore[attr-defined]
        tx = conn.begin()
        _hold_account(conn, holder, store, first)
        thread, got = _claim_in_thread(store, max_running=2)
        deadline = time.monotonic() + 30  # a bound on a hang, not a measured time
        while thread.is_alive() and _lock_waiters(store) == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        waited = thread.is_alive()  # the claim is queued on the row's lock
        tx.commit()
    thread.join(30)
    assert not thread.is_alive()
    assert got and got[0] is not None, "the claim came back empty with work queued"
    assert got[0].id == ids[1]
    assert waited


def test_a_held_row_without_a_free_slot_is_not_waited_for(store: Store) -> None:
    """At its worker limit the account has nothing claimable: the claim answers None at
    once, while the finish still holds the row, rather than waiting for the slot."""
    _queue(store, 2)
    first = store.claim_package("w1", now_us(), 10**9, max_running=1)
    assert first is not None
    with store.engine.connect() as conn:  # type: ignore[attr-defined]
        tx = conn.begin()
        _hold_account(conn, "finish", store, first)
        thread, got = _claim_in_thread(store, max_running=1)
        thread.join(30)
        finished_while_held = not thread.is_alive()
        tx.commit()
    thread.join(30)
    assert finished_while_held
    assert got == [None]


def test_a_row_held_for_long_is_waited_for_a_bounded_time(store: Store) -> None:
    """A transaction that keeps the only claimable account's row (a psql session, a hung
    finish, a reconcile) does not hold the claim: it answers None after its bounded wait,
    with the row still held, and leaves its pooled connection's lock_timeout as it was."""
    _queue(store, 2)
    with store.engine.connect() as conn:  # type: ignore[attr-defined]
        tx = conn.begin()
        conn.execute(sa.text("SELECT 1 FROM jam_account_usage WHERE owner = :o FOR UPDATE"),
                     {"o": OWNER})
        thread, got = _claim_in_thread(store, max_running=2)
        thread.join(30)  # a bound on a hang: without the bound the claim waits for the commit
        returned_while_held = not thread.is_alive()
        tx.commit()
    thread.join(30)
    assert returned_while_held, "the claim waited for as long as the row was held"
    assert got == [None]
    with store.engine.connect() as conn:  # type: ignore[attr-defined]
        assert conn.exec_driver_sql("SHOW lock_timeout").scalar_one() == "0"
    again = store.claim_package("w2", now_us(), 10**9, max_running=2)
    assert again is not None  # the row free: claimed as ever


def test_a_finish_in_its_apply_does_not_hold_up_the_claim(store: Store) -> None:
    """The finish of A's package, open after its apply (the package, counter, service and
    state rows held; the account row is its last statement): a claim of A's next package,
    of the same service, on another connection, returns it without waiting for any lock
    (pg_stat_activity shows none), and the finish then commits, the counts exact. (Until
    the finish took the account row last, the claim waited for that finish's commit; had
    the claim still written `last_claimed` into the service row, the two would deadlock.)"""
    ids = _queue(store, 3)
    first = store.claim_package("w1", now_us(), 10**9, max_running=2)
    assert first is not None and first.id == ids[0]
    with store.engine.connect() as conn:  # type: ignore[attr-defined]
        tx = conn.begin()
        outcome = _applied(store, first)
        store._record_finish(conn, outcome, None, now_us())  # type: ignore[attr-defined]
        thread, got = _claim_in_thread(store, max_running=2)
        deadline = time.monotonic() + 30  # a bound on a hang, not a measured time
        while thread.is_alive() and _lock_waiters(store) == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        waited = thread.is_alive()
        thread.join(30)  # a waiting claim would end only after the commit below
        claimed_before_commit = not thread.is_alive()
        store._release_account(conn, outcome)  # type: ignore[attr-defined]
        tx.commit()
    thread.join(30)
    assert not waited, "the claim waited for a lock the open finish holds"
    assert claimed_before_commit
    assert got and got[0] is not None and got[0].id == ids[1]
    with store.engine.connect() as conn:  # type: ignore[attr-defined]
        usage = conn.execute(sa.text(
            "SELECT pending, queued, running FROM jam_account_usage WHERE owner = :o"),
            {"o": OWNER}).one()
    assert tuple(usage) == (2, 1, 1)
    done = store.get_package(first.id, EVERYTHING)
    assert done is not None and done.status == "applied"


def test_the_sql_charge_is_fairness_cost(store: Store) -> None:
    """PostgreSQL's claim charges with fairness.charge rendered as SQL: the same values as
    fairness.cost, on the real server."""
    cases = [(g, w) for g in (0, 1, 2, 999, 1000, 10**9 + 7, 2**62) for w in (1, 2, 3, 7, 1000)]
    expr = stmts._sql_cost("c.gas", "c.weight")
    with store.engine.connect() as conn:  # type: ignore[attr-defined]
        got = conn.execute(sa.text(
            f"SELECT {expr} FROM unnest(CAST(:g AS bigint[]), CAST(:w AS bigint[])) "
            "AS c(gas, weight)"), {"g": [g for g, _ in cases], "w": [w for _, w in cases]}
        ).scalars().all()
    assert got == [fairness.cost(g, w) for g, w in cases]


def test_the_sql_preempting_rule_is_fairness_ahead(store: Store) -> None:
    """PostgreSQL and SQLite pick the preempting account with fairness.ahead rendered as
    SQL (PREEMPTING_ACCOUNT): the same verdicts as fairness.ahead over ints (the store's
    accounts_behind), on the real server and on SQLite."""
    cases = [(v, r, o) for v in (0, 5, 2**62) for r in (0, 1, 2) for o in (0, 4, 5, 6, 2**62)]
    expr = stmts._sql_ahead("c.v", "c.r", "c.o")
    with store.engine.connect() as conn:  # type: ignore[attr-defined]
        got = conn.execute(sa.text(
            f"SELECT {expr} FROM unnest(CAST(:v AS bigint[]), CAST(:r AS bigint[]), "
            "CAST(:o AS bigint[])) AS c(v, r, o)"),
            {"v": [v for v, _, _ in cases], "r": [r for _, r, _ in cases],
             "o": [o for _, _, o in cases]}).scalars().all()
    want = [fairness.ahead(v, r, o) for v, r, o in cases]
    assert got == want and any(want) and not all(want)
    lite = sa.create_engine("sqlite://")
    with lite.connect() as conn:
        for (v, r, o), verdict in zip(cases, want, strict=True):
            row = conn.execute(sa.text(f"SELECT {expr} FROM (SELECT :v AS v, :r AS r, :o AS o) c"),
                               {"v": v, "r": r, "o": o}).scalar()
            assert bool(row) is verdict, (v, r, o)


@pytest.mark.parametrize(("key", "level"), [(None, 2), ("full", 2), ("normal", 1)])
def test_sqlite_synchronous_is_what_the_key_says(tmp_path: Any, key: str | None,
                                                  level: int) -> None:
    """The SQLite store's connections sync as `sqlite_synchronous` says (FULL = 2, NORMAL =
    1), under WAL, on a real file."""
    extra = {} if key is None else {"sqlite_synchronous": key}
    s = open_store(JamSettings(store="sqlite", sqlite_path=str(tmp_path / "s.db"),
                               **extra))  # type: ignore[arg-type]
    try:
        with s.engine.connect() as conn:  # type: ignore[attr-defined]
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar_one() == level
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"
    finally:
        s.close()


@pytest.mark.parametrize(("key", "durable"), [("full", 2), ("normal", 1)])
def test_a_lease_commits_without_a_sync_and_the_next_write_syncs(tmp_path: Any, key: str,
                                                                  durable: int) -> None:
    """A claim's or heartbeat's transaction (`lease`) runs at synchronous=NORMAL (1): it is
    no promise, and a lost one only leaves its package to be claimed again. Every other write
    on the same pooled connection afterwards is back at the key's level, on a real file."""
    s = open_store(JamSettings(store="sqlite", sqlite_path=str(tmp_path / "s.db"),
                               sqlite_synchronous=key))  # type: ignore[arg-type]
    level = "PRAGMA synchronous"
    try:
        for _ in range(2):  # the pool hands the same connection back: the level is reset
            with s._write(lease=True) as conn:  # type: ignore[attr-defined]
                assert conn.exec_driver_sql(level).scalar_one() == 1
            with s._write() as conn:  # type: ignore[attr-defined]
                assert conn.exec_driver_sql(level).scalar_one() == durable
        assert s.claim_package("w", now_us(), 10**6) is None  # a real claim, then a write
        with s._write() as conn:  # type: ignore[attr-defined]
            assert conn.exec_driver_sql(level).scalar_one() == durable
    finally:
        s.close()
