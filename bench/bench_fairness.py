"""Fair execution (issue 14): a quiet tenant B's submit-to-applied latency, alone and while
tenant A floods at its quotas, with 1 and 2 workers, on SQLite and PostgreSQL, and the total
throughput of the fair scheduler against plain oldest-first claiming, all in one run.

Workers are the in-process worker threads of `serve` (`WorkerPool`) over a real store;
packages go through the submit use case (the same one `POST /jam/packages` calls). B submits
one small package every `--gap` seconds while A's queue drains; latencies are the store's
`updated_at - created_at` of B's packages. A's packages are the spin service of the
integration tests: `heavy` ones run about 0.1 s per attestor, `short` ones one step.
Oldest-first is the claim of main before this change (the oldest pending package of the
whole runtime), run here by swapping the store's claim for that statement.

    .venv/bin/python bench/bench_fairness.py [--write-docs]
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import machine, percentile  # noqa: E402
from tests.conftest import _pg_admin  # noqa: E402
from tests.integration import spin  # noqa: E402

from jamhost.app import packages, services  # noqa: E402
from jamhost.app.auth import authenticate  # noqa: E402
from jamhost.app.runtime import Runtime, build_runtime  # noqa: E402
from jamhost.app.worker import WorkerPool  # noqa: E402
from jamhost.config import JamSettings  # noqa: E402
from jamhost.domain.model import Account, QuotaOverride, now_us  # noqa: E402
from jamhost.domain.scopes import EVERYTHING

HEAVY_STEPS = 300_000
A_SERVICES = 4
PER_SERVICE = {"heavy": 10, "short": 50}  # A's pending quota per service: A fills it
B_PACKAGES = 20


class OldestFirst:
    """The store with main's claim: the oldest pending package runtime-wide, no per-account
    limit (the baseline the fair scheduler is measured against)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def claim_package(self, worker: str, now: int, lease_us: int, **_: object) -> Any:
        from jamhost.store.sql import statements as stmts
        from jamhost.store.sql import tables as t
        from jamhost.store.sql.adapter import _package

        inner = self._inner
        if inner.kind == "memory":
            raise SystemExit("oldest-first baseline needs a SQL store")
        oldest = stmts._claim(t.packages.c.status == "pending", inner.kind)
        with inner._write() as conn:
            seq = conn.execute(oldest).scalar_one_or_none()
            if seq is None:
                return None
            conn.execute(stmts.MARK_CLAIMED, {"claimed": seq, "worker": worker,
                                              "lease_until": now + lease_us, "now": now,
                                              "started": now_us()})
            return _package(conn.execute(stmts.PACKAGE_BY_SEQ, {"claimed": seq}).one())


def runtime(kind: str, workers: int, per_account: int | None, tmp: Path) -> tuple[Runtime, str]:
    op = "op-" + secrets.token_hex(16)
    keys: dict[str, Any] = {"store": kind, "allowed_tokens": [op], "workers": workers,
                            "rate_limit_per_minute": 0, "service_rate_limit_per_minute": 0,
                            "account_rate_limit_per_minute": 0}
    if per_account is not None:
        keys["max_workers_per_account"] = per_account
    if kind == "sqlite":
        keys["sqlite_path"] = str(tmp / "fair.db")
    else:
        name = f"jamhost_bench_{uuid.uuid4().hex[:8]}"
        _pg_admin(f'CREATE DATABASE "{name}"')
        keys["pg_dsn"] = f"postgresql://postgres@127.0.0.1:5432/{name}"
    return build_runtime(JamSettings(**keys)), op


def tenant(rt: Runtime, name: str, count: int) -> list[int]:
    account = Account(f"acct-{name}-{secrets.token_hex(4)}", name, now_us())
    rt.store.create_account(account)
    return [services.create_service(rt, None, code=spin.build(), owner=account.id).service_id
            for _ in range(count)]


def run_case(kind: str, workers: int, flood: str | None, scheduler: str,
             per_account: int | None) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp())
    rt, op = runtime(kind, workers, per_account, tmp)
    if scheduler == "oldest":
        rt.store = OldestFirst(rt.store)  # type: ignore[assignment]
    who = authenticate(rt, op)
    a_services = tenant(rt, "a", A_SERVICES)
    [b_service] = tenant(rt, "b", 1)
    a_ids: list[bytes] = []
    if flood is not None:
        steps = HEAVY_STEPS if flood == "heavy" else 1
        for sid in a_services:
            rt.store.set_quota(sid, QuotaOverride(pending_packages=PER_SERVICE[flood]))
        i = 0
        while True:  # A at its quotas: every service's pending quota filled
            sid = a_services[i % A_SERVICES]
            try:
                rec, _ = packages.submit_json(rt, who, spin.package(sid, steps, i))
            except Exception:  # noqa: BLE001 (the quota's 409)
                if len(a_ids) >= A_SERVICES * PER_SERVICE[flood]:
                    break
                raise
            a_ids.append(rec.id)
            i += 1
    pool = WorkerPool(rt, workers, name=f"bench-{scheduler}")
    start = time.time()
    pool.start()
    b_ids: list[bytes] = []
    try:
        for j in range(B_PACKAGES):
            rec, _ = packages.submit_json(rt, who, spin.package(b_service, 1, 10**6 + j))
            b_ids.append(rec.id)
            time.sleep(0.15)
        everything = set(a_ids + b_ids)
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            states = [rt.store.get_package(p, EVERYTHING) for p in everything]
            if all(s is not None and s.status not in ("pending", "refining") for s in states):
                break
            time.sleep(0.1)
    finally:
        pool.stop()
    recs = {p: rt.store.get_package(p, EVERYTHING) for p in a_ids + b_ids}
    b_lat = [(recs[p].updated_at - recs[p].created_at) / 1000 for p in b_ids]  # type: ignore[union-attr]
    a_run = [(recs[p].updated_at - recs[p].started_at) / 1000  # type: ignore[union-attr,operator]
             for p in a_ids]
    last = max(r.updated_at for r in recs.values()) / 1e6  # type: ignore[union-attr]
    statuses = sorted({r.status for r in recs.values()})  # type: ignore[union-attr]
    rt.close()
    return {"store": kind, "workers": workers, "flood": flood or "quiet",
            "scheduler": scheduler, "per_account": per_account or rt.settings.workers_per_account,
            "b_p50_ms": round(percentile(b_lat, 50), 1),
            "b_p99_ms": round(percentile(b_lat, 99), 1),
            "a_longest_ms": round(max(a_run), 1) if a_run else 0.0,
            "packages": len(recs), "packages_per_s": round(len(recs) / (last - start), 2),
            "statuses": statuses}


def cases() -> list[tuple[str, int, str | None, str, int | None]]:
    out: list[tuple[str, int, str | None, str, int | None]] = []
    for kind in ("sqlite", "postgres"):
        for workers in (1, 2):
            out.append((kind, workers, None, "fair", workers))
            for flood in ("heavy", "short"):
                out.append((kind, workers, flood, "oldest", None))
                out.append((kind, workers, flood, "fair", workers))
                if workers == 2:  # the default limit: half the workers
                    out.append((kind, workers, flood, "fair", None))
    return out


def markdown(out: dict[str, Any], command: str) -> str:
    lines = ["## Fairness: a quiet tenant while another floods", "",
             f"- Date: {time.strftime('%Y-%m-%d')}; tenant A has {A_SERVICES} services "
             f"filled to their pending quotas ({PER_SERVICE['heavy']} heavy packages of about "
             f"0.1 s per attestor each, or {PER_SERVICE['short']} one-step ones each) before "
             f"the workers start; tenant B then submits {B_PACKAGES} one-step packages, one "
             "every 0.15 s. In-process worker threads (as `serve` runs them), 2 attestors.",
             f"- Machine: {out['machine']}; load average (1 min) at the start "
             f"{out.get('load_start', '?')}, at the end {out.get('load_end', '?')}",
             f"- Command: `{command}`", "",
             "| store | workers | A | scheduler | A's worker limit | B p50 ms | B p99 ms | "
             "A's longest ms | packages/s |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in out["runs"]:
        lines.append(f"| {r['store']} | {r['workers']} | {r['flood']} | {r['scheduler']} | "
                     f"{r['per_account'] if r['scheduler'] == 'fair' else '-'} | "
                     f"{r['b_p50_ms']} | {r['b_p99_ms']} | {r['a_longest_ms']} | "
                     f"{r['packages_per_s']} |")
    lines.append("")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--write-docs", action="store_true")
    ap.add_argument("--only", choices=["sqlite", "postgres"], default=None)
    args = ap.parse_args()
    import os

    out: dict[str, Any] = {"machine": machine(), "runs": [],
                           "load_start": round(os.getloadavg()[0], 1)}
    for case in cases():
        if args.only and case[0] != args.only:
            continue
        out["runs"].append(run_case(*case))
        print(json.dumps(out["runs"][-1]), file=sys.stderr, flush=True)
    out["load_end"] = round(os.getloadavg()[0], 1)
    print(json.dumps(out, indent=2))
    if args.write_docs:
        from bench.common import write_section

        write_section("Fairness: a quiet tenant while another floods",
                      markdown(out, "python bench/bench_fairness.py --write-docs"))


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    main()
