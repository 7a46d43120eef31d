"""Cooperative preemption: a worker running a package lets another account's package run
first, nested on the same thread, when the fair rule would have served it first
(docs/scheduling.md, "Preemption").

While package P of account A runs, its safe points (pvm/safepoint.py: every YIELD_GAS gas of
a PVM run, and between the package's phases) call the `Preemptor`. Nearly always it returns
at once: nothing was queued in this process by another account since it last looked (the
WorkSignal's numbers, two integer compares) and its periodic store check, for packages
queued through another process, is not due (`STORE_CHECK`). Otherwise it asks the store for
a package of an account X that has none running and a virtual time below A's
(`claim_preempting`: taken and charged as a claim), runs it to its end (claim, heartbeat,
refine, accumulate, finish) and asks again, until the store has none: X's virtual time grows
with each package it gets, so A resumes once X has caught up. P keeps its claim and its
lease meanwhile (its heartbeat renews it; the nested package has its own, under the worker
id with NESTED appended). A nested package is not itself preempted: depth 1.

The check starts from the WorkSignal's number read before the package's claim: a submit
that committed while the claim ran (after its snapshot) is news at the first safe point.

Yielding: while a package the store put ahead of account A runs in this process, A's
packages running on its other workers wait at their safe points until it ends
(`WorkSignal.behind`): the workers of one process share one GIL, so A's Python work on
another worker would stretch that package's run (twice as long in bench_fairness's short
rows), and nothing is lost by waiting but the overlap of their store round trips. Ahead of
A is a package run nested (parking A's package), or one another worker claimed for an
account X while A's ran here, when X has only that package running, nothing else queued
and, before its charge, a virtual time below A's (`ahead_of_running`: the preempting claim's
rule for a quiet account; X's package would have run nested had no worker been free), or a
submit in flight in this process to a service of an account with nothing running here
(`WorkSignal.submitting`: the first part of a quiet tenant's latency). The last safe point
is after the finish (`after_finish`), before the follow-ups and the next claim. Each waits
at most as long as it has itself run (at least MIN_SLICE), and then not again until it has
run as long: the parked package's own bound. A package that is itself ahead of another
account's never yields, so no two wait for each other (two quiet accounts within one charge
of each other may each be ahead of the other; a backlogged one is never ahead).

No store transaction is open at a safe point: the pipeline's reads and writes are each their
own transaction, and none spans a PVM run.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager

from jamhost.app.runtime import Runtime
from jamhost.domain.model import PackageRecord, now_us
from jamhost.observability import get_logger
from jamhost.pvm import safepoint
from jamhost.tenancy import fairness

log = get_logger("jamhost.pipeline")

STORE_CHECK = 0.05
"""Seconds between two store checks of one running package (packages queued through another
process; the same 50 ms as an idle worker's poll, IDLE_SLEEP)."""
MIN_SLICE = 0.05
"""Seconds of nested work one preemption may always take, however briefly the parked
package has run (enough for a quiet tenant's package or two)."""
NESTED = "/nested"
"""Appended to the worker id for the packages it runs nested (their claim and heartbeat)."""

RunClaimed = Callable[[Runtime, PackageRecord, str], object]

_nesting = threading.local()


class Preemptor:
    """The safe-point hook of one running package (`running`, of `owner`'s service)."""

    __slots__ = ("_rt", "_worker", "_service", "_owner", "_run", "_seen", "_due", "nested",
                 "_began", "_nested_time", "_hold_until", "yielded", "_ahead")

    def __init__(self, rt: Runtime, worker: str, running: PackageRecord, owner: str,
                 run: RunClaimed, seen: int | None = None, ahead: bool = False) -> None:
        self._rt = rt
        self._worker = worker
        self._service = running.service_id
        self._owner = owner
        self._run = run
        # the signal's number read before the claim: a submit committed while the claim ran
        # (which the claim's snapshot did not see) is another account's news at the first
        # safe point, not already "seen" (docs/scheduling.md, "Preemption")
        self._seen = rt.work_ready.seen() if seen is None else seen
        self._began = time.monotonic()
        self._due = self._began + STORE_CHECK
        self.nested = 0  # packages run nested so far
        self._nested_time = 0.0  # seconds they took
        self._hold_until = 0.0  # no preemption before: the parked package runs its share
        self.yielded = 0  # safe points at which it yielded to a package ahead of its account
        self._ahead = ahead  # ahead of another account's running package: never yields

    def __call__(self) -> None:
        signal = self._rt.work_ready
        if not self._yield_if_behind():
            return
        seq = signal.seen()  # read first: a submit after it is seen at the next call
        if seq == self._seen or not signal.others_since(self._seen, self._owner):
            self._seen = seq
            if time.monotonic() < self._due:
                return
        self._seen = seq
        self._due = time.monotonic() + STORE_CHECK
        self.preempt()

    def after_finish(self) -> None:
        """The package's last safe point, after its finish committed (its heartbeat and its
        marks ended, no transaction open): before the follow-up deliveries and the worker's
        next claim, the stretch of a short package that no safe point cut, it yields as at
        any other (not preempting: its worker is about to claim fairly anyway)."""
        self._yield_if_behind()

    def _yield_if_behind(self) -> bool:
        """Yield when this account is behind (`_yield`); False, doing nothing, while the
        pool stops or the package's share of yielding and nested work is used up."""
        signal = self._rt.work_ready
        if signal.stopping or time.monotonic() < self._hold_until:
            return False
        if not self._ahead and signal.is_behind(self._owner):
            self._yield()
        return True

    def _yield(self) -> None:
        """A package the fair rule serves before this account runs on another worker of this
        process, or another account with nothing running here is submitting: let it have
        the process (its Python work and this one's take turns on one GIL) until it ends,
        for at most as long as this package has itself run (at least MIN_SLICE), and then
        not again until this package has run as long: the preemption's own bound."""
        start = time.monotonic()
        budget = max(MIN_SLICE, start - self._began - self._nested_time)
        ended = self._rt.work_ready.wait_ahead(self._owner, budget)
        end = time.monotonic()
        self.yielded += 1
        self._nested_time += end - start
        if not ended:  # the slice is used up: this package's turn
            self._hold_until = end + (end - start)

    def preempt(self) -> None:
        """Run, nested, the packages the store says should run before this one's account,
        for as long as the parked package has itself run (at least MIN_SLICE); then hold
        preemption off until the parked package has run as long again. So the parked
        package gets at least half of its worker whatever others submit (a stream of
        near-free packages advances its account's virtual time by little but costs real
        time: the virtual-time rule alone would let it park the package for long)."""
        rt = self._rt
        lease_us = int(rt.settings.lease_seconds * 1_000_000)
        worker = self._worker + NESTED
        start = time.monotonic()
        budget = max(MIN_SLICE, start - self._began - self._nested_time)
        _nesting.active = True
        try:
            with safepoint.installed(None):  # the nested package's machines get no hook
                while time.monotonic() - start < budget and not rt.work_ready.stopping:
                    try:
                        pkg = rt.store.claim_preempting(
                            worker, now_us(), lease_us, running_service=self._service,
                            max_running=rt.settings.workers_per_account,
                            weights=rt.settings.account_weights)
                    except Exception as exc:  # a store hiccup: P goes on, try at the next check
                        log.error("preemption claim error", error=type(exc).__name__)
                        return
                    if pkg is None:
                        return
                    self.nested += 1
                    log.info("preempted", package=pkg.id.hex()[:16], service_id=pkg.service_id)
                    try:
                        with rt.work_ready.behind(self._owner):  # A's others yield to it
                            self._run(rt, pkg, worker)
                    except Exception as exc:  # its lease makes it retryable; P goes on
                        log.error("nested package error", package=pkg.id.hex()[:16],
                                  error=type(exc).__name__, detail=str(exc)[:200])
        finally:
            _nesting.active = False
            end = time.monotonic()
            self._nested_time += end - start
            if end - start >= budget:  # the slice is used up: the parked package's turn
                self._hold_until = end + (end - start)
            self._seen = rt.work_ready.seen()
            self._due = end + STORE_CHECK


def ahead_of_running(rt: Runtime, pkg: PackageRecord, owner: str, stack: ExitStack) -> bool:
    """For package `pkg` of `owner` a worker of this process claimed (not nested): count it
    as running here for as long as `stack` is open, and mark the accounts it is ahead of (of
    those with packages running here, the store's `accounts_behind`) as behind it for as
    long; whether there were any. One store read, only when another account runs here."""
    signal = rt.work_ready
    others = stack.enter_context(signal.running(owner))
    if not others:
        return False
    charged = fairness.cost(pkg.refine_gas + pkg.accumulate_gas,
                            fairness.weight_of(rt.settings.account_weights, owner))
    try:
        behind = rt.store.accounts_behind(owner, others, charged)
    except Exception as exc:  # a store hiccup: the package runs as it would have
        log.error("accounts behind read error", error=type(exc).__name__)
        return False
    for account in behind:
        stack.enter_context(signal.behind(account))
    return bool(behind)


@contextmanager
def safe_points(rt: Runtime, worker: str, running: PackageRecord, owner: str,
                run: RunClaimed, *, enabled: bool, seen: int | None = None,
                ahead: ExitStack | None = None) -> Iterator[Preemptor | None]:
    """Install the preemption check of package `running` on this thread for the block; none
    when not `enabled`, when the package is itself nested (depth 1) or when the runtime
    has preemption off (the `preempt` key). `seen`: the WorkSignal's number read before
    `running` was claimed (None: now). `ahead`: a stack open until the package's finish,
    on which the package marks the accounts it is ahead of (`ahead_of_running`)."""
    if not enabled or getattr(_nesting, "active", False) or not rt.settings.preempt:
        yield None
        return
    first = ahead is not None and ahead_of_running(rt, running, owner, ahead)
    hook = Preemptor(rt, worker, running, owner, run, seen, ahead=first)
    with safepoint.installed(hook):
        yield hook
