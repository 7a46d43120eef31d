"""Workers: threads (in `serve`) or a process (`jamhost worker`) that drive the pipeline.

Each loop claims one package at a time through the store (leased, never twice at once),
processes it, and sleeps briefly when the queue is empty. A periodic task reconciles usage
counters with the rows (repairs drift after crashes or manual edits).
"""

from __future__ import annotations

import os
import secrets
import threading
import time

from jamhost.app.runtime import Runtime
from jamhost.observability import get_logger

log = get_logger("jamhost.worker")

IDLE_SLEEP = 0.05
RECONCILE_EVERY = 300.0


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

        while not self._stop.is_set():
            try:
                done = process_next(self.rt, worker_id)
            except Exception as exc:  # keep the worker alive; the lease makes it retryable
                log.error("worker error", worker=worker_id, error=type(exc).__name__,
                          detail=str(exc)[:200])
                done = None
                self._stop.wait(1.0)
            if done is None:
                self._stop.wait(IDLE_SLEEP)

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
