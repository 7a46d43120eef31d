"""The heartbeat of a claimed package: its lease renewed while a worker runs it."""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass
from functools import partial

from jamhost.app.runtime import Runtime
from jamhost.domain.model import now_us
from jamhost.observability import get_logger

log = get_logger("jamhost.pipeline")


class Heartbeat:
    """Renews a claim every third of the lease while the package runs (a thread, so a long
    PVM run holding the GIL in bytecode still lets it through). Stops when the block ends,
    after any renewal under way; finishing still checks the claim, so a worker that lost it
    writes nothing. The thread is the worker's own, started with its first package and kept
    for the next (a thread per package cost its start and join every time)."""

    def __init__(self, rt: Runtime, package_id: bytes, worker: str, lease_us: int) -> None:
        beats = rt.extras.setdefault("heartbeats", {})
        if worker not in beats:
            beats[worker] = _Beat(rt, worker)
        self._beat: _Beat = beats[worker]
        self._job = _Job(package_id, lease_us)

    def __enter__(self) -> Heartbeat:
        self._beat.begin(self._job)
        return self

    def __exit__(self, *exc: object) -> None:
        self._beat.end(self._job)


@dataclass(eq=False)
class _Job:
    package_id: bytes
    lease_us: int
    gone: bool = False


class _Beat:
    """One worker's heartbeat thread: idle between packages, renewing the current one's
    claim every third of its lease. It holds the runtime weakly and ends once it is gone."""

    IDLE_CHECK = 5.0  # seconds between checks, while idle, that the runtime still exists

    def __init__(self, rt: Runtime, worker: str) -> None:
        self._rt = weakref.ref(rt)
        self._worker = worker
        self._cond = threading.Condition()
        self._job: _Job | None = None
        self._renewing = False
        threading.Thread(target=self._run, daemon=True,
                         name=f"jamhost-heartbeat-{worker}").start()

    def begin(self, job: _Job) -> None:
        with self._cond:
            self._job = job
            self._cond.notify_all()

    def end(self, job: _Job) -> None:
        with self._cond:
            if self._job is job:
                self._job = None
            self._cond.notify_all()
            self._cond.wait_for(lambda: not self._renewing)

    def _next_renewal(self) -> _Job | None:
        """Wait for a renewal due on the current package (None: the runtime is gone)."""
        with self._cond:
            while True:
                job = self._job
                if job is None or job.gone:
                    self._cond.wait(self.IDLE_CHECK)
                    if self._rt() is None:
                        return None
                    continue
                if not self._cond.wait_for(partial(self._moved_on, job),
                                           timeout=job.lease_us / 3 / 1e6):
                    self._renewing = True
                    return job

    def _moved_on(self, job: _Job) -> bool:
        return self._job is not job

    def _run(self) -> None:
        while (job := self._next_renewal()) is not None:
            rt = self._rt()
            try:
                if rt is not None and not rt.store.renew_claim(
                        job.package_id, self._worker, now_us() + job.lease_us):
                    log.warning("heartbeat: the claim is gone", package=job.package_id.hex()[:16])
                    job.gone = True
            except Exception as exc:  # a store hiccup: try again at the next beat
                log.error("heartbeat error", error=type(exc).__name__)
            finally:
                del rt
                with self._cond:
                    self._renewing = False
                    self._cond.notify_all()
