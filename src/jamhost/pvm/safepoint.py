"""Safe points: where a long run may hand control to its caller's code and then go on.

A thread installs a hook (`installed`); machines instantiated on that thread while it is
installed call it every `YIELD_GAS` gas of their runs, at a block header, with gas, pc and
registers as they are: the run goes on exactly where it stopped, so results and gas are the
same with and without a hook (tests/unit/test_pvm_safepoints.py). The runtime's hook is the
worker's preemption check (app/preemption.py); the PVM knows nothing of what it does.

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
