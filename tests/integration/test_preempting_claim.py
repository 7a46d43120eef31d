"""The store's preempting claim (`claim_preempting`, app/preemption.py) on SQLite in memory,
a SQLite file and PostgreSQL: which package a running one lets in first, charged as a claim,
and exact under concurrency with ordinary claims (no double claim, no worker limit passed)."""

from __future__ import annotations

import threading

import sqlalchemy as sa

from jamhost.domain.model import PackageOutcome, now_us
from jamhost.store.ports import Store
from jamhost.store.sql import tables
from tests.integration.test_store_contract import ROOMY, W, new_service, pkg, store
from tests.scheduler_state import account_vtime

__all__ = ["store"]  # the fixture, one store of each kind


def running(store: Store, owner: str) -> int:
    au = tables.account_usage.c
    with store.engine.connect() as conn:  # type: ignore[attr-defined]
        return int(conn.execute(sa.select(au.running).where(au.owner == owner)).scalar_one())


def test_a_newcomer_with_nothing_running_is_let_in_until_it_catches_up(store: Store) -> None:
    a, b = new_service(store, "acct-a"), new_service(store, "acct-b")
    for i in range(3):
        store.submit_package(pkg(a, i, refine=10_000), ROOMY, 100, W)
    p = store.claim_package("w1", now_us(), 10**9)
    assert p is not None and p.service_id == a
    # A's own queued packages never preempt A; nobody else has work
    assert store.claim_preempting("w1/n", now_us(), 10**9, running_service=a) is None
    for i in range(30):
        store.submit_package(pkg(b, i, refine=500, accumulate=500), ROOMY, 100, W)
    before = account_vtime(store, "acct-b")
    nested = store.claim_preempting("w1/n", now_us(), 10**9, running_service=a)
    assert nested is not None and nested.service_id == b and nested.attempts == 1
    assert nested.status == "refining"
    assert account_vtime(store, "acct-b") - before == 1_000  # charged as a claim charges
    # B has a package running now: not again, whatever its virtual time
    assert running(store, "acct-b") == 1
    assert store.claim_preempting("w1/n", now_us(), 10**9, running_service=a) is None
    # B's packages one at a time while B is behind A; A resumes once B has caught up
    served = 1
    while True:
        assert store.finish_package(PackageOutcome(nested.id, b, "w1/n", "failed",
                                                   failure_reason="test"))
        nested = store.claim_preempting("w1/n", now_us(), 10**9, running_service=a)
        if nested is None:
            break
        served += 1
    assert account_vtime(store, "acct-b") >= account_vtime(store, "acct-a")
    assert 1 < served < 30  # A's running package was charged 10,200: about 10 of B's
    assert store.finish_package(PackageOutcome(p.id, a, "w1", "failed", failure_reason="x"))


def test_preempting_and_ordinary_claims_race_exactly(store: Store) -> None:
    """Workers claiming and preempting at once over five accounts, limit one package per
    account: every package claimed at most once, no account running two."""
    a = new_service(store, "acct-a")
    store.submit_package(pkg(a, 0, refine=100_000), ROOMY, 100, W)
    p = store.claim_package("w0", now_us(), 10**9, max_running=1)
    assert p is not None
    others = [new_service(store, f"acct-{c}") for c in "bcde"]
    for sid in others:
        for i in range(4):
            store.submit_package(pkg(sid, i), ROOMY, 100, W)
    claimed: list[bytes] = []
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def work(n: int) -> None:
        try:
            start.wait()
            for _ in range(4):
                if n % 2:
                    c = store.claim_preempting(f"w{n}/n", now_us(), 10**9, running_service=a,
                                               max_running=1)
                else:
                    c = store.claim_package(f"w{n}", now_us(), 10**9, max_running=1)
                if c is not None:
                    claimed.append(c.id)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(claimed) == len(set(claimed)) == 4  # one per account, nothing finished
    for c in "bcde":
        assert running(store, f"acct-{c}") == 1
