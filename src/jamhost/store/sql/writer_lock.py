"""One writer at a time on a SQLite file, across the threads and the processes of a host.

SQLite's busy handler does not wait for the write lock: a writer that finds it taken sleeps
and retries, 1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50 then 100 ms apart. Two `jamhost worker`
processes and the server, writing one file, then lost most of a package's time to those
sleeps with the database free (docs/scheduling.md, "What a claim costs"). Queued on this
lock instead, a writer starts as soon as the previous one commits.

The lock is a thread lock (a process's threads queue on it) and, held by one thread of the
process at a time, an exclusive `flock` on a file beside the database, `<database>-writer`
(the kernel wakes a waiter when its holder unlocks or dies). It is not SQLite's own lock: a
writer that does not take it (the sqlite3 shell, a migration) is met by the busy handler as
before, and a flock never waits for SQLite, so the two cannot wait for each other in a
cycle. flock on the database file itself would be independent of SQLite's fcntl locks on
Linux but not on NFS, where flock is emulated with fcntl: hence a file of its own. The lock
only orders the writers: exclusion stays SQLite's `BEGIN IMMEDIATE` (a removed lock file
costs the queue, never a write).
Re-entrant, so a thread that nests writes fails on SQLite's timeout as before rather than
hanging. The file is opened for each outermost hold and closed at its release (a few
microseconds against a write transaction's hundreds), so a process that opens many stores
(the test suite) keeps no descriptor per database.
"""

from __future__ import annotations

import fcntl
import os
import threading
from types import TracebackType


class FileWriterLock:
    """The writer lock of one SQLite file (see the module's docstring)."""

    def __init__(self, database: str) -> None:
        self.path = f"{database}-writer"
        self._thread = threading.RLock()
        self._depth = 0
        self._fd: int | None = None

    def __enter__(self) -> FileWriterLock:
        self._thread.acquire()
        if self._depth == 0:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                except BaseException:
                    os.close(fd)
                    raise
            except BaseException:
                self._thread.release()
                raise
            self._fd = fd
        self._depth += 1
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._depth -= 1
        try:
            if self._depth == 0 and self._fd is not None:
                fd, self._fd = self._fd, None
                os.close(fd)  # releases the flock
        finally:
            self._thread.release()
