"""Workers: threads (in `serve`) or a process (`jamhost worker`) that drive the pipeline.

Each loop claims one package at a time through the store (leased, never twice at once),
processes it, and when the queue is empty waits until this process queues a package
(`Runtime.work_ready`) or IDLE_SLEEP passes (a package submitted through another process).
A periodic task reconciles usage counters with the rows (repairs drift after crashes or
manual edits).
"""

from __future__ import annotations

import gc
import os
import secrets
import sys
import threading
import time

from jamhost.app.runtime import Runtime
from jamhost.observability import get_logger

log = get_logger("jamhost.worker")

IDLE_SLEEP = 0.05
RECONCILE_EVERY = 300.0
SWITCH_INTERVAL = 0.0001  # seconds a thread waits for the GIL before asking for it (Python: 5 ms)


def settle_process() -> None:
    """Once a server or worker process has started, before it takes work.

    The heap: everything start-up allocated (modules, SQLAlchemy's statements, the erasure
    tables: some 110,000 objects) leaves the garbage collector's reach. Otherwise each full
    collection walks it all again, 70 to 90 ms with every thread stopped, a few times per
    second of steady work. Objects made later are collected as before.

    The switch interval: a thread that wants the GIL waits this long before it asks the
    running thread for it. A worker running a refine holds the GIL (the native core hands
    it over every 2^20 gas, or at each 2^16-gas safe point with preemption: docs/pvm.md)
    and gives it up at each store round trip, so every other thread (the API's, an idle
    worker's claim, the tenant's package on the other worker) waited Python's default 5 ms
    per statement: a quiet tenant's package waited a second behind another's heavy ones
    with a worker free (docs/benchmarks.md, fairness). 0.5 ms still showed in the fairness
    bench's tails: a quiet tenant's submit and claim take the GIL back after a dozen store
    round trips each, every one a wait of up to the interval behind a busy worker; at
    0.1 ms its p99 with another tenant flooding fell by a fifth to a quarter in the SQLite
    rows, the throughput unchanged (docs/benchmarks.md, "Fairness", 2026-12-03)."""
    gc.collect()
    gc.freeze()
    sys.setswitchinterval(SWITCH_INTERVAL)


class WorkerPool:
    def __init__(self, rt: Runtime, count: int, *, reconcile_every: float = RECONCILE_EVERY,
                 name: str | None = None) -> None:
        self.rt = rt
        self.count = count
        self.reconcile_every = reconcile_every
        self.name = name or f"{os.uname().nodename}-{os.getpid()}-{secrets.token_hex(3)}"
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        self.rt.work_ready.stopping = False
        for i in range(self.count):
            t = threading.Thread(target=self._loop, args=(f"{self.name}/{i}",), daemon=True,
                                 name=f"jamhost-worker-{i}")
            t.start()
            self._threads.append(t)
        t = threading.Thread(target=self._reconcile_loop, daemon=True, name="jamhost-reconcile")
        t.start()
        self._threads.append(t)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self.rt.work_ready.notify_all()  # idle workers see the stop now
        for t in self._threads:
            t.join(timeout)

    def run_forever(self) -> None:
        self.start()
        try:
            while not self._stop.wait(1.0):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    def _loop(self, worker_id: str) -> None:
        from jamhost.app.pipeline import process_next

        self.rt.store.own_connection()  # this thread's transactions on a kept connection
        while not self._stop.is_set():
            seen = self.rt.work_ready.seen()
            try:
                done = process_next(self.rt, worker_id, preempt=True)
            except Exception as exc:  # keep the worker alive; the lease makes it retryable
                log.error("worker error", worker=worker_id, error=type(exc).__name__,
                          detail=str(exc)[:200])
                done = None
                self._stop.wait(1.0)
            if done is None:
                self.rt.work_ready.wait(seen, IDLE_SLEEP)

    def _reconcile_loop(self) -> None:
        while not self._stop.wait(self.reconcile_every):
            try:
                changed = self.rt.store.reconcile_usage()
                if changed:
                    log.warning("usage reconciled", services=changed)
            except Exception as exc:
                log.error("reconcile error", error=type(exc).__name__)


def wait_until(predicate, timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return False
