"""The preemption check (app/preemption.py): when it asks the store, and what it runs; the
WorkSignal's account numbers it reads; and one in-process worker on the memory store (its
one shared connection under a lock) letting a quiet tenant's package in, nested."""

from __future__ import annotations

import secrets
import sys
from functools import partial
from types import SimpleNamespace
from typing import Any

from tests.integration import spin
from tests.store_scopes import EVERYTHING

from jamhost.app import packages, preemption, services, worker
from jamhost.app.auth import authenticate
from jamhost.app.package_input import parse_package_json
from jamhost.app.runtime import build_runtime
from jamhost.app.work_signal import WorkSignal
from jamhost.config import JamSettings
from jamhost.domain.model import Account, PackageRecord, now_us
from jamhost.pvm import safepoint
from jamhost.tenancy.principal import ADMIN


def test_others_since_ignores_the_running_accounts_own_submits() -> None:
    s = WorkSignal()
    seen = s.seen()
    assert not s.others_since(seen, "a")
    s.notify("a")
    s.notify("a")
    assert not s.others_since(seen, "a")  # a flood of A's own: nothing for A to do
    assert s.others_since(seen, "b")
    s.notify("b")
    s.notify("a")
    assert s.others_since(seen, "a")  # B's between A's
    assert not s.others_since(s.seen() - 1, "a")  # only A's since
    mid = s.seen()
    s.notify("a")
    assert not s.others_since(mid, "a")
    s.notify_all()  # stopping is nobody's submit: it stops preemption instead
    assert not s.others_since(mid, "a") and s.stopping


class FakeStore:
    def __init__(self, queue: list[PackageRecord]) -> None:
        self.queue = queue
        self.asked = 0

    def claim_preempting(self, worker: str, now: int, lease_us: int, **kw: Any) -> Any:
        self.asked += 1
        return self.queue.pop(0) if self.queue else None


def _rt(store: FakeStore) -> Any:
    return SimpleNamespace(store=store, work_ready=WorkSignal(), settings=SimpleNamespace(
        lease_seconds=120.0, workers_per_account=1, account_weights={}, preempt=True))


def _pkg(n: int, service_id: int = 7) -> PackageRecord:
    return PackageRecord(id=bytes([n]) * 32, service_id=service_id, status="refining",
                         body=b"", size=0, refine_gas=1, accumulate_gas=1, created_at=0,
                         updated_at=0)


def test_the_store_is_asked_on_another_accounts_submit_or_every_store_check(
        monkeypatch) -> None:  # noqa: ANN001
    clock = [1000.0]
    monkeypatch.setattr(preemption.time, "monotonic", lambda: clock[0])
    store = FakeStore([])
    rt = _rt(store)
    ran: list[tuple[bytes, str, Any]] = []
    hook = preemption.Preemptor(rt, "w0", _pkg(1), "acct-a",
                                lambda _rt, p, w: ran.append((p.id, w, safepoint.current())))
    for _ in range(1000):
        hook()
    assert store.asked == 0  # nothing new, and the store check is not due
    rt.work_ready.notify("acct-a")
    hook()
    assert store.asked == 0  # the running account's own submit
    rt.work_ready.notify("acct-b")
    hook()
    hook()
    assert store.asked == 1  # another account's: asked once
    clock[0] += preemption.STORE_CHECK
    hook()
    assert store.asked == 2  # a submit through another process is found by the check
    store.queue += [_pkg(2, 8), _pkg(3, 9)]
    clock[0] += preemption.STORE_CHECK
    hook()
    # both run, nested, under the nested worker id and with no hook of their own; then the
    # store had none left
    assert [(p, w) for p, w, _ in ran] == [(bytes([2]) * 32, "w0/nested"),
                                          (bytes([3]) * 32, "w0/nested")]
    assert [h for _, _, h in ran] == [None, None] and store.asked == 5 and hook.nested == 2


def test_a_stopping_pool_starts_no_nested_work(monkeypatch) -> None:  # noqa: ANN001
    clock = [1000.0]
    monkeypatch.setattr(preemption.time, "monotonic", lambda: clock[0])
    store = FakeStore([_pkg(2, 8)])
    rt = _rt(store)
    hook = preemption.Preemptor(rt, "w0", _pkg(1), "acct-a", lambda *_: None)
    rt.work_ready.notify("acct-b")
    rt.work_ready.notify_all()
    clock[0] += preemption.STORE_CHECK
    hook()
    assert store.asked == 0 and hook.nested == 0


def test_the_parked_package_keeps_half_its_worker(monkeypatch) -> None:  # noqa: ANN001
    """A stream of another account's packages (each 30 ms here) runs nested for at most
    max(MIN_SLICE, the parked package's own run) at a time, and then not again until the
    parked package has run as long: whatever the virtual times say."""
    clock = [1000.0]
    monkeypatch.setattr(preemption.time, "monotonic", lambda: clock[0])
    store = FakeStore([_pkg(n, 8) for n in range(2, 40)])
    rt = _rt(store)

    def run(_rt: Any, p: PackageRecord, w: str) -> None:
        clock[0] += 0.03

    hook = preemption.Preemptor(rt, "w0", _pkg(1), "acct-a", run)
    rt.work_ready.notify("acct-b")
    hook()
    assert hook.nested == 2  # 60 ms >= MIN_SLICE (50 ms): the slice is used up
    for _ in range(3):
        rt.work_ready.notify("acct-b")
        hook()
    clock[0] += 0.059
    rt.work_ready.notify("acct-b")
    hook()
    assert hook.nested == 2 and store.asked == 2  # held off for as long as it ran (60 ms)
    clock[0] += 0.002  # the parked package has now run 61 ms of its own
    rt.work_ready.notify("acct-b")
    hook()
    assert hook.nested == 5  # a slice of 61 ms: three more packages (90 ms)


def test_a_nested_package_installs_no_preemption_of_its_own() -> None:
    store = FakeStore([_pkg(2, 8)])
    rt = _rt(store)
    inner: list[object] = []

    def run(_rt: Any, p: PackageRecord, w: str) -> None:
        with preemption.safe_points(_rt, w, p, "acct-b", run, enabled=True) as h:
            inner.append(h)

    with preemption.safe_points(rt, "w0", _pkg(1), "acct-a", run, enabled=True) as hook:
        assert hook is not None and safepoint.current() is hook
        hook.preempt()
    assert inner == [None] and safepoint.current() is None
    with preemption.safe_points(rt, "w0", _pkg(1), "acct-a", run, enabled=False) as hook:
        assert hook is None and safepoint.current() is None


def _two_accounts(workers: int = 1) -> tuple[Any, Any, list[int]]:
    """A memory runtime of `workers` workers, an operator, and a spin service of accounts A
    and B."""
    op = "op-" + secrets.token_hex(16)
    rt = build_runtime(JamSettings(store="memory", allowed_tokens=[op], workers=workers,
                                   rate_limit_per_minute=0, service_rate_limit_per_minute=0,
                                   account_rate_limit_per_minute=0, attestor_recheck_gas=0,
                                   pvm_engine="native"))
    who = authenticate(rt, op)
    sids = []
    for acct in ("acct-a", "acct-b"):
        rt.store.create_account(Account(acct, acct, now_us()))
        sids.append(services.create_service(rt, ADMIN, code=spin.build(),
                                            owner=acct).service_id)
    return rt, who, sids


def _status(rt: Any, pid: bytes) -> str:
    got = rt.store.get_package(pid, EVERYTHING)
    assert got is not None
    return got.status


def test_one_worker_lets_a_quiet_package_in_on_the_memory_store() -> None:
    rt, who, sids = _two_accounts()
    pool = worker.WorkerPool(rt, 1, reconcile_every=600.0, name="pre")
    pool.start()
    try:
        long, _ = packages.submit_json(rt, who, spin.package(sids[0], 400_000_000))
        status = partial(_status, rt)
        assert worker.wait_until(lambda: status(long.id) == "refining", 30, 0.01)
        quiet, _ = packages.submit_json(rt, who, spin.package(sids[1], 1))
        assert worker.wait_until(lambda: status(quiet.id) != "pending" and
                                 status(quiet.id) != "refining", 60, 0.01)
        assert status(quiet.id) == "applied" and status(long.id) == "refining"
        assert worker.wait_until(lambda: status(long.id) == "applied", 120, 0.05)
    finally:
        pool.stop()
        rt.close()


class _SubmitDuringClaim:
    """The store, with another account's submit committed while a claim runs (after the
    claim's snapshot, before the claimed package's first safe point)."""

    def __init__(self, inner: Any, submit: Any) -> None:
        self._inner, self._submit = inner, submit
        self.preempting = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def claim_package(self, *a: Any, **kw: Any) -> Any:
        got = self._inner.claim_package(*a, **kw)
        if self._submit is not None:
            self._submit()
            self._submit = None
        return got

    def claim_preempting(self, *a: Any, **kw: Any) -> Any:
        self.preempting += 1
        return self._inner.claim_preempting(*a, **kw)


def test_a_submit_during_the_claim_is_news_at_the_first_safe_point(monkeypatch) -> None:  # noqa: ANN001
    """The claim's snapshot did not see B's package, and its submit bumped the WorkSignal
    before A's package installed its check: the check starts from the number read before
    the claim, so A's first safe point runs B's package nested (rather than B waiting for
    all of A's, or for the store check, here never due)."""
    monkeypatch.setattr(preemption, "STORE_CHECK", 10**6)
    rt, who, sids = _two_accounts()
    try:
        a_pkg, _ = packages.submit_json(rt, who, spin.package(sids[0], 1))
        quiet: list[bytes] = []
        store = _SubmitDuringClaim(rt.store, lambda: quiet.append(
            packages.submit_json(rt, who, spin.package(sids[1], 1))[0].id))
        rt.store = store  # type: ignore[assignment]
        from jamhost.app.pipeline import process_next

        assert process_next(rt, "w0", preempt=True) == a_pkg.id
        got = rt.store.get_package(quiet[0], EVERYTHING)
        assert store.preempting >= 1 and got is not None and got.status == "applied"
    finally:
        rt.close()


def _until_waiting(rt: Any, t: Any) -> None:
    """Until a thread of `rt` waits in `wait_ahead`, or thread `t` ended (at most 100 s)."""
    for _ in range(100_000):
        if rt.work_ready.waiting or not t.is_alive():
            return
        t.join(0.001)


def test_the_accounts_other_packages_yield_while_one_ahead_runs_nested(monkeypatch) -> None:  # noqa: ANN001
    """While A's package P1 is parked for B's package (nested, on P1's worker), A's package
    P2 on another worker of the process waits at its safe point until B's package ends;
    a third account's package does not wait."""
    import threading

    monkeypatch.setattr(preemption, "MIN_SLICE", 10**6)  # the bound is not what is tested
    store = FakeStore([_pkg(2, 8)])
    rt = _rt(store)
    order: list[str] = []
    p2 = preemption.Preemptor(rt, "w1", _pkg(3, 9), "acct-a", lambda *_: None)
    p3 = preemption.Preemptor(rt, "w2", _pkg(4, 10), "acct-c", lambda *_: None)

    def a_safe_point() -> None:
        p2()
        order.append("P2 went on")

    def run(_rt: Any, p: PackageRecord, w: str) -> None:  # B's package, nested in P1
        t = threading.Thread(target=a_safe_point)
        t.start()
        _until_waiting(rt, t)  # until P2 waits (or, without the rule, went on)
        p3()
        order.append("C went on")
        order.append("B's package ended")
        threads.append(t)

    threads: list[threading.Thread] = []
    p1 = preemption.Preemptor(rt, "w0", _pkg(1), "acct-a", run)
    p1.preempt()
    threads[0].join(10)
    assert order == ["C went on", "B's package ended", "P2 went on"]
    assert p2.yielded == 1 and p3.yielded == 0 and not rt.work_ready.is_behind("acct-a")


def test_a_yield_lasts_at_most_the_packages_own_run(monkeypatch) -> None:  # noqa: ANN001
    """A nested package that outlasts the yield: P2 waits max(MIN_SLICE, its own run) and
    then runs as long again before it yields again (it keeps half of its worker)."""
    clock = [1000.0]
    monkeypatch.setattr(preemption.time, "monotonic", lambda: clock[0])
    rt = _rt(FakeStore([]))
    waits: list[float] = []

    def wait_ahead(account: str, timeout: float) -> bool:  # B's package does not end
        waits.append(timeout)
        clock[0] += timeout
        return False

    rt.work_ready.wait_ahead = wait_ahead
    p2 = preemption.Preemptor(rt, "w1", _pkg(3, 9), "acct-a", lambda *_: None)
    with rt.work_ready.behind("acct-a"):
        p2()
        assert waits == [preemption.MIN_SLICE]
        p2()  # held: it has not run its own share since
        clock[0] += preemption.MIN_SLICE / 2
        p2()
        assert len(waits) == 1
        clock[0] += preemption.MIN_SLICE / 2
        p2()
    assert len(waits) == 2 and p2.yielded == 2
    p2()
    assert len(waits) == 2  # nothing ahead: no yield


def test_a_package_claimed_ahead_on_the_other_worker_makes_the_running_account_yield(
        monkeypatch) -> None:  # noqa: ANN001
    """Two workers; A's long package runs on one. B's quiet package is claimed in the
    ordinary way by the other (the nested run is switched off here, so that B's package
    cannot be taken at A's safe point): B has only it running and a virtual time below
    A's, so A's package waits at its safe points while B's runs, and B's is applied while
    A's still refines."""
    monkeypatch.setattr(preemption.Preemptor, "preempt", lambda self: None)
    # The GIL as a worker process has it (worker.settle_process): with Python's default of
    # 5 ms a waiting thread asks for it only after 5 ms, and B's run could pass without A's
    # thread reaching a safe point (2 of 3 runs of tests/unit with -n 2, 2026-12-04)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(worker.SWITCH_INTERVAL)
    rt, who, sids = _two_accounts(workers=2)
    waits: list[str] = []
    inner = rt.work_ready.wait_ahead

    def wait_ahead(account: str, timeout: float) -> bool:
        waits.append(account)
        return inner(account, timeout)

    rt.work_ready.wait_ahead = wait_ahead
    pool = worker.WorkerPool(rt, 2, reconcile_every=600.0, name="ahead")
    pool.start()
    try:
        long, _ = packages.submit_json(rt, who, spin.package(sids[0], 400_000_000))
        status = partial(_status, rt)
        assert worker.wait_until(lambda: status(long.id) == "refining", 30, 0.01)
        # and counted as running in the process: "refining" is the claim's commit, before
        # the service's read. Were B's package to count itself first, A's would be the one
        # claimed beside a running account, and by the same rule ahead of B (two accounts
        # within one charge of each other are each ahead of the other: docs/scheduling.md),
        # so B's would yield to A's (seen under load, 2026-12-04)
        assert worker.wait_until(lambda: "acct-a" in rt.work_ready._running, 30, 0.001)
        # B's package runs long enough to span many of A's safe points: a one-step one ran
        # in 1.4 ms on a fast machine, at times before A's thread had the GIL again
        quiet, _ = packages.submit_json(rt, who, spin.package(sids[1], 4_000_000))
        assert worker.wait_until(lambda: status(quiet.id) == "applied", 60, 0.01)
        assert status(long.id) == "refining"
        assert waits and set(waits) == {"acct-a"}
        assert worker.wait_until(lambda: status(long.id) == "applied", 120, 0.05)
        assert not rt.work_ready.is_behind("acct-a")
    finally:
        pool.stop()
        rt.close()
        sys.setswitchinterval(interval)


def test_a_package_ahead_of_another_account_never_yields(monkeypatch) -> None:  # noqa: ANN001
    """A package marked ahead (it made another account's packages yield) does not yield
    itself, even while its own account is marked behind: two packages never wait for each
    other."""
    rt = _rt(FakeStore([]))
    waits: list[str] = []
    rt.work_ready.wait_ahead = lambda account, timeout: waits.append(account) or True
    ahead = preemption.Preemptor(rt, "w0", _pkg(1), "acct-b", lambda *_: None, ahead=True)
    plain = preemption.Preemptor(rt, "w1", _pkg(2), "acct-b", lambda *_: None)
    with rt.work_ready.behind("acct-b"):
        ahead()
        assert waits == [] and ahead.yielded == 0
        plain()
    assert waits == ["acct-b"] and plain.yielded == 1


def test_another_accounts_submit_in_flight_puts_the_running_accounts_behind() -> None:
    """A submit in flight to a service of an account with nothing running in the process:
    the other accounts' packages are behind it (they yield at their safe points), its own
    account's are not, and once that account has a package running here, nobody is."""
    s = WorkSignal()
    assert not s.is_behind("a")
    with s.submitting("b"):
        assert s.is_behind("a") and s.is_behind("c") and not s.is_behind("b")
        with s.running("b"):  # B is not quiet here: its submits are no one's priority
            assert not s.is_behind("a")
        assert s.is_behind("a")
        with s.submitting("a"):  # two in flight: A's own does not put A behind
            assert s.is_behind("a") and s.is_behind("b")
    assert not s.is_behind("a") and not s.is_behind("b")


def test_a_running_package_waits_for_another_accounts_submit_in_flight(monkeypatch) -> None:  # noqa: ANN001
    """A's package at a safe point while B's submit is in flight waits until the submit
    ends, then goes on (one yield); a safe point after that does not wait."""
    import threading

    monkeypatch.setattr(preemption, "MIN_SLICE", 10**6)  # the bound is not what is tested
    rt = _rt(FakeStore([]))
    p = preemption.Preemptor(rt, "w0", _pkg(1), "acct-a", lambda *_: None)
    order: list[str] = []

    def a_safe_point() -> None:
        p()
        order.append("A went on")

    with rt.work_ready.submitting("acct-b"):
        t = threading.Thread(target=a_safe_point)
        t.start()
        _until_waiting(rt, t)  # until A waits (or, without the rule, went on)
        order.append("B's submit ended")
    t.join(10)
    assert order == ["B's submit ended", "A went on"] and p.yielded == 1
    p()
    assert p.yielded == 1


def test_the_last_safe_point_is_after_the_finish(monkeypatch) -> None:  # noqa: ANN001
    """A package behind another account yields once more after its finish (before its
    follow-ups and its worker's next claim), unless it is itself ahead of another
    account's, or its share of yielding is used up."""
    clock = [1000.0]
    monkeypatch.setattr(preemption.time, "monotonic", lambda: clock[0])
    rt = _rt(FakeStore([]))
    waits: list[str] = []

    def wait_ahead(account: str, timeout: float) -> bool:
        waits.append(account)
        clock[0] += timeout  # the package ahead outlasts the slice
        return False

    rt.work_ready.wait_ahead = wait_ahead
    plain = preemption.Preemptor(rt, "w0", _pkg(1), "acct-a", lambda *_: None)
    ahead = preemption.Preemptor(rt, "w1", _pkg(2), "acct-a", lambda *_: None, ahead=True)
    plain.after_finish()
    assert waits == []  # nothing ahead of A
    with rt.work_ready.behind("acct-a"):
        ahead.after_finish()
        assert waits == []
        plain.after_finish()
        assert waits == ["acct-a"] and plain.yielded == 1
        plain.after_finish()  # held: the slice is used up
        assert waits == ["acct-a"]


def test_a_worker_reaches_the_last_safe_point_after_the_finish(monkeypatch) -> None:  # noqa: ANN001
    """The worker pool's package calls its hook's `after_finish` once, with its outcome
    committed; the operator's one-package processing installs no hook at all."""
    from jamhost.app.pipeline import process_next

    rt, who, sids = _two_accounts()
    seen: list[str] = []
    monkeypatch.setattr(preemption.Preemptor, "after_finish",
                        lambda self: seen.append(_status(rt, done.id)))
    try:
        done, _ = packages.submit_json(rt, who, spin.package(sids[0], 1))
        assert process_next(rt, "w0", preempt=True) == done.id
        assert seen == ["applied"]
        done, _ = packages.submit_json(rt, who, spin.package(sids[0], 1, 1))
        assert process_next(rt, "w0") == done.id
        assert seen == ["applied"]
    finally:
        rt.close()


def test_a_submit_is_in_flight_from_the_services_read_to_its_notify() -> None:
    """`submit_json` and `submit_bytes` count as in flight for the service's owner while
    the store writes the package (and not after): the other accounts are behind it."""
    rt, who, sids = _two_accounts()
    during: list[tuple[bool, bool]] = []

    class Watching:
        def __init__(self, inner: Any) -> None:
            self._inner = inner

        def __getattr__(self, name: str) -> Any:
            return getattr(self._inner, name)

        def submit_package(self, *a: Any, **kw: Any) -> Any:
            during.append((rt.work_ready.is_behind("acct-a"), rt.work_ready.is_behind("acct-b")))
            return self._inner.submit_package(*a, **kw)

    rt.store = Watching(rt.store)
    try:
        packages.submit_json(rt, who, spin.package(sids[1], 1))
        pkg, _ = parse_package_json(spin.package(sids[1], 1, 7),
                                    lambda sid: rt.store.get_service(sid).code_hash)
        packages.submit_bytes(rt, who, pkg.encode())
        assert during == [(True, False), (True, False)]
        assert not rt.work_ready.is_behind("acct-a")
    finally:
        rt.close()


def test_a_submit_flood_costs_a_package_at_most_its_share(monkeypatch) -> None:  # noqa: ANN001
    """A tenant with nothing running that keeps a submit in flight without end (a flood
    of submits, one always under way) makes another account's package yield once for
    MIN_SLICE, then not again until that package has run as long: the parked package's
    bound, so a submitter cannot hold a worker."""
    clock = [1000.0]
    monkeypatch.setattr(preemption.time, "monotonic", lambda: clock[0])
    rt = _rt(FakeStore([]))
    waits: list[float] = []

    def wait_ahead(account: str, timeout: float) -> bool:  # the submits never end
        waits.append(timeout)
        clock[0] += timeout
        return False

    rt.work_ready.wait_ahead = wait_ahead
    p = preemption.Preemptor(rt, "w0", _pkg(1), "acct-a", lambda *_: None)
    with rt.work_ready.submitting("acct-mallory"):
        p()
        assert waits == [preemption.MIN_SLICE]
        for _ in range(100):  # held: the package runs its share
            p()
            p.after_finish()
        assert len(waits) == 1
        clock[0] += preemption.MIN_SLICE
        p()
    assert waits == [preemption.MIN_SLICE] * 2 and p.yielded == 2
