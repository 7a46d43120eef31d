"""In-process workers (app/worker.py): an idle worker is woken by a submit in its process."""

from __future__ import annotations

import secrets
import threading
import time

from tests.integration import spin
from tests.store_scopes import EVERYTHING  # the store port, unscoped

from jamhost.app import packages, services, worker
from jamhost.app.auth import authenticate
from jamhost.app.runtime import build_runtime
from jamhost.app.work_signal import WorkSignal
from jamhost.config import JamSettings
from jamhost.domain.model import Account, now_us
from jamhost.tenancy.principal import ADMIN


def test_an_idle_worker_claims_a_package_submitted_in_its_process(monkeypatch) -> None:
    """The poll is set to ten minutes: the package is applied only if the submit wakes the
    worker that already found the queue empty."""
    monkeypatch.setattr(worker, "IDLE_SLEEP", 600.0)
    op = "op-" + secrets.token_hex(16)
    rt = build_runtime(JamSettings(store="memory", allowed_tokens=[op], workers=1,
                                   rate_limit_per_minute=0, service_rate_limit_per_minute=0,
                                   account_rate_limit_per_minute=0))
    who = authenticate(rt, op)
    rt.store.create_account(Account("acct-w", "w", now_us()))
    sid = services.create_service(rt, ADMIN, code=spin.build(), owner="acct-w").service_id
    found_empty = threading.Event()
    claim = rt.store.claim_package

    def watched(*args, **kwargs):  # type: ignore[no-untyped-def]
        got = claim(*args, **kwargs)
        if got is None:
            found_empty.set()
        return got

    rt.store.claim_package = watched  # type: ignore[method-assign]
    pool = worker.WorkerPool(rt, 1, name="wake")
    pool.start()
    try:
        assert found_empty.wait(30)
        rec, created = packages.submit_json(rt, who, spin.package(sid, 1))
        assert created
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            got = rt.store.get_package(rec.id, EVERYTHING)
            if got is not None and got.status == "applied":
                break
            time.sleep(0.02)
        assert got is not None and got.status == "applied", got
    finally:
        pool.stop()
        rt.close()


def test_stop_wakes_idle_workers(monkeypatch) -> None:
    """Stopping does not wait out the poll: the idle workers are woken and leave."""
    monkeypatch.setattr(worker, "IDLE_SLEEP", 600.0)
    rt = build_runtime(JamSettings(store="memory", workers=2))
    pool = worker.WorkerPool(rt, 2, reconcile_every=600.0, name="stop")
    pool.start()
    pool.stop(timeout=30)
    assert not any(t.is_alive() for t in pool._threads[:2])
    rt.close()


def test_a_package_queued_before_the_sleep_is_not_slept_through() -> None:
    """Queued between a worker's empty claim and its sleep: the sleep returns at once."""
    signal = WorkSignal()
    seen = signal.seen()  # the worker's claim starts
    signal.notify()  # a submit commits while it looks
    assert signal.wait(seen, 600.0) is True
    assert signal.wait(signal.seen(), 0.01) is False  # nothing new: the poll interval passes
