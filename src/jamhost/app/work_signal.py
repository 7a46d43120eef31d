"""How a process's idle workers learn that it queued a package, without waiting for a poll.

A sequence number under a condition: a worker reads it before claiming and, when the claim
finds nothing, sleeps until it changes (or its poll interval passes). A submit bumps it and
wakes one sleeper: one package, one claim, rather than every idle worker racing for the
write lock. A package committed between a worker's claim and its sleep bumped the number
that worker read, so it does not sleep at all.

It also tells a busy worker, at its safe points, whether another account queued something
since it last looked (`others_since`: the preemption check, app/preemption.py), from the
last submitter and the last number before its run of submits: an integer compare or two,
no lock, and a flood of the running account's own submits does not count.

And it tells the other running packages of an account that a package the fair rule put
ahead of that account is running in this process, nested or claimed by another worker
(`running`, `behind`, `is_behind`, `wait_ahead`), or that another account with nothing
running here is submitting (`submitting`): they yield to it at their safe points
(app/preemption.py, "Yielding").
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class WorkSignal:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._seq = 0
        self._last: str | None = None  # the account of the latest notify (None: a stop)
        self._other = 0  # the number of the latest notify by an account other than _last
        self.stopping = False  # set by notify_all (a pool stopping), cleared by a pool's start
        self._ahead = threading.Condition()
        self._behind: dict[str, int] = {}  # account -> packages ahead of it running, now
        self._running: dict[str, int] = {}  # account -> its packages running here (claimed)
        self._submitting: dict[str, int] = {}  # account -> its submits in flight here, now
        self.waiting = 0  # threads in wait_ahead, now

    def seen(self) -> int:
        """Read before a claim; give it to `wait` if the claim finds nothing."""
        return self._seq

    def notify(self, account: str | None = None) -> None:
        """`account` queued a package in this process: wake one sleeping worker."""
        with self._cond:
            self._bump(account)
            self._cond.notify()

    def notify_all(self) -> None:
        """Stopping: wake every sleeping worker. Running packages stop preempting
        (`stopping`): a stop is nobody's submit, and a pool stopping starts no nested work."""
        with self._cond:
            self.stopping = True
            self._seq += 1
            self._cond.notify_all()
        with self._ahead:
            self._ahead.notify_all()

    def _bump(self, account: str | None) -> None:
        if account != self._last or account is None:  # an unknown submitter counts as other
            self._other = self._seq
            self._last = account
        self._seq += 1

    def others_since(self, seen: int, account: str) -> bool:
        """Whether an account other than `account` queued something after `seen` was read.
        Read without the lock: a notify racing with it is seen at the next call, or by the
        preemption's periodic store check."""
        if self._seq == seen:
            return False
        return self._last != account or self._other > seen

    def wait(self, seen: int, timeout: float) -> bool:
        """Sleep until something was queued after `seen` was read (True), or `timeout`
        passes (False)."""
        with self._cond:
            return self._cond.wait_for(lambda: self._seq != seen, timeout)

    @contextmanager
    def behind(self, account: str) -> Iterator[None]:
        """For the block, a package the fair rule serves before `account` runs in this
        process (app/preemption.py): `account`'s packages yield to it."""
        with self._marked(self._behind, account):
            yield

    @contextmanager
    def running(self, account: str) -> Iterator[list[str]]:
        """For the block, a package of `account` that a worker claimed runs in this process;
        gives the other accounts with packages running here as it began."""
        with self._ahead:
            others = [a for a in self._running if a != account]
            self._running[account] = self._running.get(account, 0) + 1
        try:
            yield others
        finally:
            with self._ahead:
                _count_down(self._running, account)

    @contextmanager
    def submitting(self, account: str) -> Iterator[None]:
        """For the block, a submit to a service of `account` is in flight in this process
        (app/packages.py: from the service's read to the commit and the notify). While it
        is and `account` has no package running here, the other accounts' packages yield
        to it (`is_behind`): the submit is the first part of a quiet tenant's latency, and
        its Python takes turns with theirs on the GIL."""
        with self._marked(self._submitting, account):
            yield

    @contextmanager
    def _marked(self, counts: dict[str, int], account: str) -> Iterator[None]:
        """`account` counted in `counts` for the block; at its end the yielding packages
        (`wait_ahead`) look again."""
        with self._ahead:
            counts[account] = counts.get(account, 0) + 1
        try:
            yield
        finally:
            with self._ahead:
                _count_down(counts, account)
                self._ahead.notify_all()

    def is_behind(self, account: str) -> bool:
        """Whether `account`'s packages should yield now: a package ahead of it runs here
        (`behind`), or another account with no package running here has a submit in flight
        (`submitting`). Read without the lock (a dict lookup when nothing is marked): a mark
        racing with it is seen at the next safe point."""
        return (bool(self._behind) and account in self._behind) or (
            bool(self._submitting) and self._submit_ahead(account))

    def _submit_ahead(self, account: str) -> bool:
        # list(): a copy made under the GIL in one step, so a mark's change cannot break it
        return any(a != account and a not in self._running for a in list(self._submitting))

    def wait_ahead(self, account: str, timeout: float) -> bool:
        """Sleep while `account` is behind (True: no longer), at most `timeout` seconds
        (False), or until the pool stops."""
        with self._ahead:
            self.waiting += 1
            try:
                return self._ahead.wait_for(
                    lambda: not self.is_behind(account) or self.stopping, timeout)
            finally:
                self.waiting -= 1


def _count_down(counts: dict[str, int], account: str) -> None:
    """One less of `account` in `counts`, its key gone at zero (a lookup is membership)."""
    left = counts[account] - 1
    if left:
        counts[account] = left
    else:
        del counts[account]
