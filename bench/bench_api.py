"""Submit and list latency through the HTTP API with 10k and 1M stored packages (issue 2).

For each store (memory, sqlite, postgres) the benchmark starts a real server on a loopback
port (`jamhost serve` as a subprocess for the SQL stores; uvicorn in a thread of this process
for the memory store, whose data lives in the process), creates 4 tenants with 25 services
each through the API, bulk-loads packages straight into the store (PostgreSQL: COPY; SQLite:
executemany in batches of 10k; memory: `submit_package` in a loop) spread at random over the
100 services, then times sequential requests from one httpx client with tenant 0's token:

- submit: `POST /jam/packages` of a new package to one of tenant 0's services
- list one service: `GET /jam/packages?service_id=X&limit=50`
- list mine: `GET /jam/packages?limit=50` (the barrier: tenant 0's 25 services)
- healthz: `GET /healthz`, the baseline (no token, no store): each p50 is also printed as a
  multiple of it, which is comparable between machines

Sizes grow in place (10k, then the rows up to 1M are added), so one server serves each store.
Rate limits are off (their cost is `bench_tenancy.py`'s subject), authz is on, workers are off
(every loaded package stays `pending`; the quotas are raised so that the load fits).

    .venv/bin/python bench/bench_api.py               # 10k and 1M, all stores
    .venv/bin/python bench/bench_api.py --quick       # 10k and 100k
    .venv/bin/python bench/bench_api.py --stores sqlite --no-analyze

The figures and what they mean are recorded by hand in docs/benchmarks.md ("API: submit and
list"): the narrative around them (what changed, what was tried) does not come from one run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import machine  # noqa: E402
from tests.conftest import (  # noqa: E402
    PG_ADMIN_DSN,
    _pg_admin,
    free_port,
    simple_package,
    start_server,
)

OPERATOR = "bench-operator-token-0123456789abcdef"
HMAC_KEY = "bench-hmac-key-0123456789abcdef0123456789"
TENANTS = 4
SERVICES_PER_TENANT = 25
BIG = 1 << 40
SERVER_KEYS: dict[str, object] = {
    "allowed_tokens": [OPERATOR], "token_hmac_key": HMAC_KEY, "workers": 0,
    "rate_limit_per_minute": 0, "service_rate_limit_per_minute": 0,
    "account_rate_limit_per_minute": 0, "max_pending_packages": BIG,
    "default_quota": {"pending_packages": BIG, "storage_bytes": BIG, "gas_per_hour": BIG},
}


# -- measurement helpers --------------------------------------------------------------------

def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


@dataclass
class Result:
    store: str
    rows: int
    op: str
    samples: list[float] = field(default_factory=list)  # milliseconds
    wall_s: float = 0.0
    errors: int = 0

    @property
    def p50(self) -> float:
        return percentile(self.samples, 50)

    @property
    def p99(self) -> float:
        return percentile(self.samples, 99)

    @property
    def rps(self) -> float:
        return len(self.samples) / self.wall_s if self.wall_s else 0.0

    def row(self) -> dict[str, Any]:
        return {"store": self.store, "rows": self.rows, "op": self.op, "n": len(self.samples),
                "p50_ms": round(self.p50, 2), "p99_ms": round(self.p99, 2),
                "mean_ms": round(statistics.fmean(self.samples), 2),
                "req_per_s": round(self.rps, 1), "errors": self.errors}


# -- deployments ----------------------------------------------------------------------------

@dataclass
class Deployment:
    kind: str
    url: str
    loader: Callable[[list[int], int, int], None]  # (service ids, first index, count)
    analyze: Callable[[], None]


@contextmanager
def deployment(kind: str, tmp: Path) -> Iterator[Deployment]:
    if kind == "memory":
        with memory_deployment() as dep:
            yield dep
    elif kind == "sqlite":
        path = tmp / "bench.db"
        server = start_server(tmp / "sqlite", store="sqlite", sqlite_path=str(path),
                              **SERVER_KEYS)
        try:
            yield Deployment(kind, server.url, sqlite_loader(path), sqlite_analyze(path))
        finally:
            server.stop()
    else:
        name = f"jamhost_bench_{uuid.uuid4().hex[:10]}"
        _pg_admin(f'CREATE DATABASE "{name}"')
        dsn = f"{PG_ADMIN_DSN.rsplit('/', 1)[0]}/{name}"
        server = None
        try:
            server = start_server(tmp / "pg", store="postgres", pg_dsn=dsn, **SERVER_KEYS)
            yield Deployment(kind, server.url, pg_loader(dsn), pg_analyze(dsn))
        finally:
            if server is not None:
                server.stop()
            _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def memory_deployment() -> Iterator[Deployment]:
    import uvicorn

    from jamhost.api.app import create_app
    from jamhost.app.runtime import build_runtime
    from jamhost.config import JamSettings
    from jamhost.domain.model import QuotaLimits
    from jamhost.store import open_store

    quiet_logs()
    settings = JamSettings(store="memory", **SERVER_KEYS)  # type: ignore[arg-type]
    store = open_store(settings)
    rt = build_runtime(settings, store=store)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(rt), host="127.0.0.1", port=port,
                                           log_config=None, access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    limits = QuotaLimits(BIG, BIG, BIG)

    def load(services: list[int], first: int, count: int) -> None:
        rng = random.Random(first)
        bodies = {sid: real_body(sid) for sid in services}
        at = now_us()
        for i in range(first, first + count):
            sid = rng.choice(services)
            store.submit_package(package_record(sid, i, bodies[sid], at + i), limits, BIG, 0)

    try:
        yield Deployment("memory", f"http://127.0.0.1:{port}", load, lambda: None)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def quiet_logs() -> None:
    """Request logs as `jamhost serve` writes them (JSON lines), into /dev/null instead of
    the benchmark's output: the in-process server pays the same logging cost."""
    from jamhost.observability import configure_logging

    sink = open(os.devnull, "w")  # noqa: SIM115 (kept open for the process's lifetime)
    saved, sys.stderr = sys.stderr, sink
    try:
        configure_logging()
    finally:
        sys.stderr = saved


def now_us() -> int:
    return time.time_ns() // 1000


def package_record(service_id: int, i: int, body: bytes, at: int) -> Any:
    from jamhost.domain.hashing import blake2b_256
    from jamhost.domain.model import PackageRecord

    return PackageRecord(id=blake2b_256(b"bench-%d" % i), service_id=service_id,
                         status="pending", body=body, size=len(body), refine_gas=1000,
                         accumulate_gas=1000, created_at=at, updated_at=at)


def real_body(service_id: int) -> bytes:
    """A valid GP encoding, so that a loaded package could be read back like any other."""
    from jamhost.app.package_input import parse_package_json

    pkg, _ = parse_package_json(simple_package(service_id, b"bulk"), lambda _sid: bytes(32))
    return pkg.encode()


COLUMNS = ("id", "service_id", "status", "body", "size", "refine_gas", "accumulate_gas",
           "created_at", "updated_at", "attempts")


def generated_rows(services: list[int], first: int, count: int) -> Iterator[tuple[Any, ...]]:
    from jamhost.domain.hashing import blake2b_256

    rng = random.Random(first)
    bodies = {sid: real_body(sid) for sid in services}
    at = now_us() - count
    for i in range(first, first + count):
        sid = rng.choice(services)
        body = bodies[sid]
        yield (blake2b_256(b"bench-%d" % i), sid, "pending", body, len(body), 1000, 1000,
               at + i - first, at + i - first, 0)


def pending_fixups(rows_per_service: dict[int, int]) -> list[tuple[str, tuple[Any, ...]]]:
    """Keep the quota counters equal to what was loaded (as submit_package would)."""
    total = sum(rows_per_service.values())
    out = [("UPDATE jam_services SET pending_count = pending_count + {p} "
            "WHERE service_id = {p}", (n, sid)) for sid, n in rows_per_service.items()]
    out.append(("UPDATE jam_counters SET value = value + {p} WHERE name = 'pending'", (total,)))
    return out


def sqlite_loader(path: Path) -> Callable[[list[int], int, int], None]:
    def load(services: list[int], first: int, count: int) -> None:
        import sqlite3

        conn = sqlite3.connect(path, timeout=60, isolation_level=None)
        conn.execute("PRAGMA busy_timeout=60000")
        per_service: dict[int, int] = {}
        insert = (f"INSERT INTO jam_packages ({', '.join(COLUMNS)}) "
                  f"VALUES ({', '.join('?' * len(COLUMNS))})")
        batch: list[tuple[Any, ...]] = []

        def flush() -> None:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(insert, batch)
            conn.execute("COMMIT")
            batch.clear()

        for row in generated_rows(services, first, count):
            per_service[row[1]] = per_service.get(row[1], 0) + 1
            batch.append(row)
            if len(batch) == 10_000:
                flush()
        if batch:
            flush()
        conn.execute("BEGIN IMMEDIATE")
        for sql, params in pending_fixups(per_service):
            conn.execute(sql.replace("{p}", "?"), params)
        conn.execute("COMMIT")
        conn.close()

    return load


def sqlite_analyze(path: Path) -> Callable[[], None]:
    def analyze() -> None:
        import sqlite3

        conn = sqlite3.connect(path, timeout=60)
        conn.execute("ANALYZE")
        conn.commit()
        conn.close()

    return analyze


def pg_loader(dsn: str) -> Callable[[list[int], int, int], None]:
    def load(services: list[int], first: int, count: int) -> None:
        import psycopg

        per_service: dict[int, int] = {}
        with psycopg.connect(dsn) as conn:
            with conn.cursor() as cur, cur.copy(
                    f"COPY jam_packages ({', '.join(COLUMNS)}) FROM STDIN") as copy:
                for row in generated_rows(services, first, count):
                    per_service[row[1]] = per_service.get(row[1], 0) + 1
                    copy.write_row(row)
            for sql, params in pending_fixups(per_service):
                conn.execute(sql.replace("{p}", "%s"), params)

    return load


def pg_analyze(dsn: str) -> Callable[[], None]:
    def analyze() -> None:
        import psycopg

        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE jam_packages")

    return analyze


# -- the run --------------------------------------------------------------------------------

def make_tenants(url: str) -> list[tuple[str, list[int]]]:
    """4 accounts with 25 services each, through the API; returns (token, service ids)."""
    out = []
    with httpx.Client(base_url=url, timeout=60,
                      headers={"Authorization": f"Bearer {OPERATOR}"}) as op:
        for t in range(TENANTS):
            acc = op.post("/jam/accounts", json={"name": f"tenant-{t}"})
            acc.raise_for_status()
            tok = op.post(f"/jam/accounts/{acc.json()['id']}/tokens", json={"name": "bench"})
            tok.raise_for_status()
            token = tok.json()["token"]
            sids = []
            with httpx.Client(base_url=url, timeout=60,
                              headers={"Authorization": f"Bearer {token}"}) as c:
                for _ in range(SERVICES_PER_TENANT):
                    svc = c.post("/jam/services", json={})
                    svc.raise_for_status()
                    sids.append(svc.json()["service_id"])
            out.append((token, sids))
    return out


@dataclass
class Target:
    """One deployment holding `rows` packages, with tenant 0's client and services."""

    rows: int
    client: httpx.Client
    mine: list[int]
    results: dict[str, Result]
    submitted: int = 0

    def call(self, op: str, i: int) -> httpx.Response:
        if op == "submit":
            self.submitted += 1
            payload = b"bench-submit-%d" % self.submitted
            return self.client.post("/jam/packages",
                                    json=simple_package(self.mine[i % 5], payload))
        if op == "list service":
            return self.client.get("/jam/packages",
                                   params={"service_id": self.mine[i % len(self.mine)],
                                           "limit": 50})
        if op == "list mine":
            return self.client.get("/jam/packages", params={"limit": 50})
        return self.client.get("/healthz")


# `healthz` is the baseline: the same server and client, no token, no store, no body.
OPS = {"submit": 201, "list service": 200, "list mine": 200, "healthz": 200}


def prepare(kind: str, dep: Deployment, rows: int, analyze: bool, stack: ExitStack) -> Target:
    tenants = make_tenants(dep.url)
    all_services = [sid for _, sids in tenants for sid in sids]
    token, mine = tenants[0]
    t0 = time.perf_counter()
    dep.loader(all_services, 0, rows)
    load_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    if analyze:
        dep.analyze()
    print(f"{kind}: loaded {rows:,} packages in {load_s:.1f} s"
          + (f" (+ analyze {time.perf_counter() - t1:.1f} s)" if analyze else ""),
          file=sys.stderr, flush=True)
    client = stack.enter_context(httpx.Client(
        base_url=dep.url, timeout=300, headers={"Authorization": f"Bearer {token}"}))
    target = Target(rows, client, mine, {op: Result(kind, rows, op) for op in OPS})
    for op in OPS:  # warm-up: connections, caches, the planner
        for i in range(10):
            target.call(op, i)
    return target


def run_store(kind: str, sizes: list[int], n_submit: int, n_list: int, budget_s: float,
              analyze: bool) -> list[Result]:
    """One deployment per size, measured in interleaved rounds, so that whatever else the
    machine does at a given moment weighs on every size alike."""
    counts = {"submit": n_submit, "list service": n_list // 2, "list mine": n_list // 2,
              "healthz": n_list // 2}
    rounds = 10
    with tempfile.TemporaryDirectory(prefix=f"bench-api-{kind}-") as tmp, ExitStack() as stack:
        targets = []
        for rows in sizes:
            dep = stack.enter_context(deployment(kind, Path(tmp) / str(rows)))
            targets.append(prepare(kind, dep, rows, analyze, stack))
        for r in range(rounds):
            for target in targets:
                for op, expect in OPS.items():
                    res = target.results[op]
                    spent = sum(res.samples) / 1000
                    if spent > budget_s and len(res.samples) >= 30:
                        continue
                    for i in range(counts[op] // rounds):
                        t0 = time.perf_counter()
                        resp = target.call(op, r * 1000 + i)
                        res.samples.append((time.perf_counter() - t0) * 1000)
                        if resp.status_code != expect:
                            res.errors += 1
                            if res.errors <= 3:
                                print(f"  {op}: unexpected {resp.status_code} {resp.text[:200]}",
                                      file=sys.stderr)
            print(f"{kind}: round {r + 1}/{rounds} done", file=sys.stderr, flush=True)
    results = []
    for target in targets:
        for res in target.results.values():
            res.wall_s = sum(res.samples) / 1000
            print("  " + json.dumps(res.row()), file=sys.stderr, flush=True)
            results.append(res)
    return results


def table(results: list[Result]) -> str:
    lines = ["| store | packages | request | n | p50 ms | p99 ms | req/s (1 client) |",
             "|---|---:|---|---:|---:|---:|---:|"]
    for r in results:
        lines.append(f"| {r.store} | {r.rows:,} | {r.op} | {len(r.samples)} | {r.p50:.2f} "
                     f"| {r.p99:.2f} | {r.rps:.0f} |"
                     + (f" ({r.errors} errors)" if r.errors else ""))
    return "\n".join(lines)


def ratios(results: list[Result], small: int, large: int) -> str:
    lines = [f"| store | request | p50 at {large:,} / p50 at {small:,} |", "|---|---|---:|"]
    by = {(r.store, r.op, r.rows): r for r in results}
    for (store, op, rows), r in by.items():
        if rows == large and (store, op, small) in by:
            lines.append(f"| {store} | {op} | {r.p50 / by[(store, op, small)].p50:.2f}x |")
    return "\n".join(lines)


def baseline(results: list[Result]) -> str:
    """Each request's p50 over the same deployment's bare `GET /healthz` p50: the share of a
    request that is jamhost's own work, comparable between machines."""
    lines = ["| store | packages | healthz p50 ms | submit | list service | list mine |",
             "|---|---:|---:|---:|---:|---:|"]
    by = {(r.store, r.rows, r.op): r for r in results}
    for (store, rows, op), base in by.items():
        if op != "healthz":
            continue
        cells = [f"{by[(store, rows, o)].p50 / base.p50:.1f}x" if (store, rows, o) in by
                 else "-" for o in ("submit", "list service", "list mine")]
        lines.append(f"| {store} | {rows:,} | {base.p50:.2f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="10k and 100k rows")
    ap.add_argument("--sizes", help="comma-separated row counts (default 10000,1000000)")
    ap.add_argument("--stores", default="memory,sqlite,postgres")
    ap.add_argument("--submits", type=int, default=1000)
    ap.add_argument("--lists", type=int, default=1000, help="half per list kind")
    ap.add_argument("--budget", type=float, default=120.0,
                    help="seconds per phase at most (at least 30 requests)")
    ap.add_argument("--no-analyze", action="store_true",
                    help="do not ANALYZE after loading (SQLite never does it on its own)")
    args = ap.parse_args()
    sizes = ([int(s) for s in args.sizes.split(",")] if args.sizes
             else [10_000, 100_000] if args.quick else [10_000, 1_000_000])
    print(f"machine: {machine()}", file=sys.stderr, flush=True)
    results: list[Result] = []
    for kind in args.stores.split(","):
        results += run_store(kind, sizes, args.submits, args.lists, args.budget,
                             not args.no_analyze)
    report = "\n\n".join([table(results)]
                         + ([ratios(results, sizes[0], sizes[-1])] if len(sizes) > 1 else [])
                         + [baseline(results)])
    print(report)
    print(json.dumps([r.row() for r in results]))


if __name__ == "__main__":
    main()
