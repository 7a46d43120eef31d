"""SQLite writers of one file queue on one lock across processes (store/sql/writer_lock.py):
a `jamhost worker` process's write waits for the lock another process holds, rather than
meeting SQLite's busy handler (which sleeps between retries with the database free)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from jamhost.config import JamSettings
from jamhost.store import open_store

WRITER = """
import sys
from jamhost.config import JamSettings
from jamhost.store import open_store
store = open_store(JamSettings(store="sqlite", sqlite_path=sys.argv[1]))
print("ready", flush=True)
sys.stdin.readline()  # "go": the test holds the lock now
print(store.get_or_create_meta("from_the_other_process", "written"), flush=True)
"""


def test_a_write_of_another_process_waits_for_the_writer_lock(tmp_path: Path) -> None:
    path = str(tmp_path / "lock.db")
    store = open_store(JamSettings(store="sqlite", sqlite_path=path))
    store.init_counters()
    lock = store._writer_lock  # type: ignore[attr-defined]
    try:
        proc = subprocess.Popen([sys.executable, "-c", WRITER, path], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdin is not None and proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"  # its store open (and migrated)
        with lock:  # held, with no SQLite transaction open: only the lock can hold it back
            proc.stdin.write("go\n")
            proc.stdin.flush()
            try:
                proc.wait(timeout=1.0)
            except subprocess.TimeoutExpired:
                pass
            # Without the lock across processes its write ran at once and it had exited.
            assert proc.poll() is None, "the other process wrote while the lock was held"
        out = proc.stdout.read()
        proc.wait(timeout=60)
        assert out.strip() == "written"
        assert proc.returncode == 0
        assert store.get_or_create_meta("from_the_other_process", "mine") == "written"
    finally:
        store.close()


def test_the_lock_is_reentrant_within_a_thread(tmp_path: Path) -> None:
    store = open_store(JamSettings(store="sqlite", sqlite_path=str(tmp_path / "r.db")))
    lock = store._writer_lock  # type: ignore[attr-defined]
    try:
        with lock, lock:
            pass
        store.init_counters()  # released by both exits: a write still goes through
        assert store.pending_total() == 0
    finally:
        store.close()
