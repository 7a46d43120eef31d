"""Safe points: where a long run may hand control to its caller's code and then go on.

A thread installs a hook (`installed`); machines instantiated on that thread while it is
installed call it every `YIELD_GAS` gas they spend, at a block header, with gas, pc and
registers as they are: the run goes on exactly where it stopped, so results and gas are the
same with and without a hook (tests/unit/test_pvm_safepoints.py). The runtime's hook is the
worker's preemption check (app/preemption.py); the PVM knows nothing of what it does.

The gas to the next safe point is the machine's own budget, not a run's: YIELD_GAS at
instantiation and again after each safe point, kept across exits, so a program that calls
the host every few gas reaches one every YIELD_GAS gas all the same. It counts the gas the
machine spends running (host calls the native core serves itself included), not gas a
Python host handler charges by lowering `gas`. A run that exits past its budget stops at a
safe point after the first block of its next run. The Python engine has them on its fast
path only (`mode="step"` has none).

An exception the hook raises ends the run as itself (a `PageFault` too, on both engines),
the machine left as at the safe point: the block there not yet charged. A hook may close
over its own machine: the native Machine takes part in garbage collection, so the cycle
is freed.

The hook is read once per instantiation, not per run: a machine made while none is installed
(a nested package's, which must not be preempted again) never calls one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

Hook = Callable[[], None]

YIELD_GAS = 1 << 16
"""Gas between two safe points of a run (the native core's own constant, `_native.c`)."""

_local = threading.local()


def current() -> Hook | None:
    """This thread's hook, or None."""
    hook: Hook | None = getattr(_local, "hook", None)
    return hook


def reach() -> None:
    """A safe point outside the PVM (between the phases of a package): call the hook."""
    hook = current()
    if hook is not None:
        hook()


@contextmanager
def installed(hook: Hook | None) -> Iterator[None]:
    """Install `hook` on this thread for the block (None: none), restoring the previous one."""
    before = current()
    _local.hook = hook
    try:
        yield
    finally:
        _local.hook = before
