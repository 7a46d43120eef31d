"""The worker's store path, at the store port: SQL statements (round trips, BEGIN and COMMIT
included) and time per claim and per finish of an applied package that writes two storage
items, on SQLite (file), memory (SQLite in memory) and PostgreSQL.

Statement counts do not depend on the machine's load, which the shared benchmark machine's
packages/s do (docs/benchmarks.md); times are the mean and the median per call. The SQLite
file is made in the repository's directory (the disk the store would use; /tmp may be a
tmpfs, whose fsync costs nothing).

    .venv/bin/python bench/bench_store_path.py [--n 200] [--sqlite-synchronous normal]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa  # noqa: E402
from bench.common import machine  # noqa: E402
from tests.conftest import _pg_admin  # noqa: E402

from jamhost.config import JamSettings  # noqa: E402
from jamhost.domain.model import (  # noqa: E402
    ZERO_HASH,
    PackageOutcome,
    PackageRecord,
    QuotaLimits,
    StateChanges,
    now_us,
)
from jamhost.store import open_store  # noqa: E402

BIG = 10**12
LIMITS = QuotaLimits(BIG, BIG, BIG)


class Counter:
    def __init__(self, engine: sa.Engine) -> None:
        self.n = 0
        sa.event.listen(engine, "before_cursor_execute", self._one)
        sa.event.listen(engine, "begin", self._one)
        sa.event.listen(engine, "commit", self._one)

    def _one(self, *_a: object, **_k: object) -> None:
        self.n += 1


def run(kind: str, n: int, tmp: Path, synchronous: str = "full") -> dict[str, object]:
    name = None
    if kind == "sqlite":
        extra = {} if synchronous == "full" else {"sqlite_synchronous": synchronous}
        settings = JamSettings(store="sqlite", sqlite_path=str(tmp / f"{uuid.uuid4().hex}.db"),
                               **extra)  # type: ignore[arg-type]
    elif kind == "memory":
        settings = JamSettings(store="memory")
    else:
        name = f"jamhost_bench_{uuid.uuid4().hex[:8]}"
        _pg_admin(f'CREATE DATABASE "{name}"')
        settings = JamSettings(store="postgres",
                               pg_dsn=f"postgresql://postgres@127.0.0.1:5432/{name}")
    store = open_store(settings)
    try:
        sids = [store.create_service(owner=f"acct-{i % 3}", code=None, code_hash=ZERO_HASH,
                                     balance=0, min_item_gas=0, min_memo_gas=0,
                                     created_by="bench", storage_limit=BIG).service_id
                for i in range(6)]
        for i in range(n):
            body = b"pkg-%d" % i
            store.submit_package(PackageRecord(
                id=hashlib.blake2b(body, digest_size=32).digest(), service_id=sids[i % 6],
                status="pending", body=body, size=len(body), refine_gas=1000,
                accumulate_gas=1000, created_at=now_us(), updated_at=now_us()),
                LIMITS, BIG, 0)
        counter = Counter(store.engine)  # type: ignore[attr-defined]
        claim_stmts = finish_stmts = 0
        claim_s = finish_s = 0.0
        claims: list[float] = []
        finishes: list[float] = []
        for i in range(n):
            before = counter.n
            t0 = time.perf_counter()
            pkg = store.claim_package("w", now_us(), 10**9, max_running=4,
                                      weights={"acct-1": 2})
            t1 = time.perf_counter()
            assert pkg is not None
            claim_stmts += counter.n - before
            svc = store.get_service(pkg.service_id)
            assert svc is not None
            before = counter.n
            t2 = time.perf_counter()
            done = store.finish_package(PackageOutcome(
                pkg.id, pkg.service_id, "w", "applied", expected_seq=svc.receipt_seq,
                changes=StateChanges(storage={b"count": b"%d" % i, b"k%d" % (i % 5): b"v"}),
                refund=100, after_units=10, units_window=1))
            t3 = time.perf_counter()
            assert done
            finish_stmts += counter.n - before
            claim_s += t1 - t0
            finish_s += t3 - t2
            claims.append(t1 - t0)
            finishes.append(t3 - t2)
        return {"store": kind, "packages": n,
                "claim_statements": round(claim_stmts / n, 2),
                "finish_statements": round(finish_stmts / n, 2),
                "claim_ms": round(1000 * claim_s / n, 3),
                "finish_ms": round(1000 * finish_s / n, 3),
                # the median: less moved by the other work of a shared machine than the mean
                "claim_median_ms": round(1000 * statistics.median(claims), 3),
                "finish_median_ms": round(1000 * statistics.median(finishes), 3)}
    finally:
        store.close()
        if name is not None:
            _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--stores", default="sqlite,memory,postgres")
    ap.add_argument("--sqlite-synchronous", choices=["full", "normal"], default="full")
    args = ap.parse_args()
    runs = []
    with tempfile.TemporaryDirectory(dir=Path(__file__).resolve().parents[1]) as tmp:
        for kind in args.stores.split(","):
            runs.append(run(kind, args.n, Path(tmp), args.sqlite_synchronous))
            print(json.dumps(runs[-1]), flush=True)
    print(json.dumps({"machine": machine(), "n": args.n, "runs": runs}, indent=2))


if __name__ == "__main__":
    main()
