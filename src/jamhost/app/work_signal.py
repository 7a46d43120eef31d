"""How a process's idle workers learn that it queued a package, without waiting for a poll.

A sequence number under a condition: a worker reads it before claiming and, when the claim
finds nothing, sleeps until it changes (or its poll interval passes). A submit bumps it and
wakes one sleeper: one package, one claim, rather than every idle worker racing for the
write lock. A package committed between a worker's claim and its sleep bumped the number
that worker read, so it does not sleep at all.
"""

from __future__ import annotations

import threading


class WorkSignal:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._seq = 0

    def seen(self) -> int:
        """Read before a claim; give it to `wait` if the claim finds nothing."""
        return self._seq

    def notify(self) -> None:
        """A package was queued in this process: wake one sleeping worker."""
        with self._cond:
            self._seq += 1
            self._cond.notify()

    def notify_all(self) -> None:
        """Stopping: wake every sleeping worker."""
        with self._cond:
            self._seq += 1
            self._cond.notify_all()

    def wait(self, seen: int, timeout: float) -> bool:
        """Sleep until something was queued after `seen` was read (True), or `timeout`
        passes (False)."""
        with self._cond:
            return self._cond.wait_for(lambda: self._seq != seen, timeout)
