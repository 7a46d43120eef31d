"""End-to-end pipeline throughput and latency: submit -> refine x threshold -> attest ->
accumulate -> applied, for the example services, on SQLite and PostgreSQL, with 1 and 2
`jamhost worker` processes (issue 6).

The worker processes are started first; packages are then submitted in a burst through the
API (a real server, `workers = 0`) while the workers drain the queue. Latency is each
package's `updated_at - created_at` as the server recorded them (submit to applied);
throughput is packages over the span from the first submit to the last apply.

    .venv/bin/python bench/bench_pipeline.py [--n 120]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import machine, percentile  # noqa: E402
from tests.conftest import _pg_admin, make_tenant, start_server  # noqa: E402

from jamhost.examples import compute, counter, kvstore  # noqa: E402

EXAMPLES = {
    "counter": (counter, lambda i: i.to_bytes(4, "little")),
    "kvstore": (kvstore, lambda i: kvstore.entries([(b"k%d" % (i % 50), b"v%d" % i)])),
    "compute": (compute, lambda i: bytes(range(256)) * 4 + i.to_bytes(4, "little")),
}


def parse_ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def tenant_examples(example: str) -> list[str]:
    """The example each of the three tenants (one service each) runs: one of each (`all`,
    the default mix) or three of one (`counter`: the issue's counter-only target), so that
    every choice spreads its packages over three services of three accounts alike (two
    workers on a single service would mostly measure its accumulate conflicts)."""
    return list(EXAMPLES) if example == "all" else [example] * len(EXAMPLES)


def run_case(kind: str, workers: int, n: int, tmp: Path, drain: bool = False,
             synchronous: str | None = None, example: str = "all") -> dict[str, object]:
    """One row. `drain`: submit every package before the workers start, and count the
    workers' rate alone (applied packages over the span from the first apply to the last),
    so the one sequential submitting client does not bound the figure. `example`: see
    tenant_examples."""
    if kind == "sqlite":
        keys: dict[str, object] = {"store": "sqlite", "sqlite_path": str(tmp / "p.db")}
        if synchronous is not None:  # else the default (older trees have no such key)
            keys["sqlite_synchronous"] = synchronous
    else:
        name = f"jamhost_bench_{uuid.uuid4().hex[:8]}"
        _pg_admin(f'CREATE DATABASE "{name}"')
        keys = {"store": "postgres", "pg_dsn": f"postgresql://postgres@127.0.0.1:5432/{name}"}
    keys.update(rate_limit_per_minute=0, service_rate_limit_per_minute=0,
                account_rate_limit_per_minute=0, max_pending_packages=10**6,
                default_quota={"pending_packages": 10**6, "storage_bytes": 10**10,
                               "gas_per_hour": 10**15})
    api = start_server(tmp / "api", **keys)
    procs = []
    try:
        chosen = tenant_examples(example)
        tenants = {f"{name}{i}": make_tenant(api, f"{name}{i}", code=EXAMPLES[name][0].build())
                   for i, name in enumerate(chosen)}
        # Workers first (a process takes seconds to start), so that the measured span is
        # the pipeline's and not the start-up's.
        if not drain:
            procs = [start_server(tmp / f"w{i}", command="worker", **keys)
                     for i in range(workers)]
            time.sleep(4)
        ids = []
        # One keep-alive client per tenant: a client per request (a TLS context and a TCP
        # connection each) made the submitting side, not the pipeline, the bottleneck.
        clients = {name: api.client(t.token) for name, t in tenants.items()}
        try:
            for i in range(n):
                slot = i % len(chosen)
                name = f"{chosen[slot]}{slot}"
                t = tenants[name]
                payload = EXAMPLES[chosen[slot]][1](i)
                r = clients[name].post("/jam/packages", json={
                    "service_id": t.service_id, "items": [
                        {"payload": "0x" + payload.hex(), "refine_gas_limit": 10**7,
                         "accumulate_gas_limit": 10**7}]})
                assert r.status_code == 201, r.text
                ids.append((t, r.json()["id"]))
        finally:
            for c in clients.values():
                c.close()
        if drain:
            procs = [start_server(tmp / f"w{i}", command="worker", **keys)
                     for i in range(workers)]
        deadline = time.monotonic() + 600
        done: dict[str, dict[str, object]] = {}
        # While the workers run, the client polls only each service's last package (a
        # service's packages are applied in submission order): listing every package every
        # 0.2 s cost the client and the API server most of a core, taken from the workers
        # being measured. The whole lists are read once that last package is done.
        last_ids = {t.service_id: (t, pid) for t, pid in ids}
        while len(done) < len(ids) and time.monotonic() < deadline:
            waiting = False
            for t, pid in last_ids.values():
                with api.client(t.token) as c:
                    if c.get(f"/jam/packages/{pid}").json()["status"] in ("pending",
                                                                          "refining"):
                        waiting = True
            if waiting:
                time.sleep(0.2)
                continue
            for t in tenants.values():
                with api.client(t.token) as c:
                    for p in c.get("/jam/packages", params={"service_id": t.service_id,
                                                            "limit": 500}).json()["items"]:
                        if p["status"] not in ("pending", "refining"):
                            done[p["id"]] = p
            if len(done) < len(ids):
                time.sleep(0.2)
        statuses = {p["status"] for p in done.values()}
        lat = [(parse_ts(p["updated_at"]) - parse_ts(p["created_at"])) * 1000
               for p in done.values()]
        last = max(parse_ts(p["updated_at"]) for p in done.values())
        steady = None
        if drain:
            applied = sorted(parse_ts(p["updated_at"]) for p in done.values())
            first = applied[0]
            rate = (len(done) - 1) / (last - first)
            # The steady rate: the middle 80% of the applies over their span. The workers
            # start one after the other, seconds apart, once the queue is full: the first
            # applies alone until the second is up, which with a few hundred packages was
            # a third of the whole span.
            lo, hi = len(applied) // 10, len(applied) - 1 - len(applied) // 10
            steady = round((hi - lo) / (applied[hi] - applied[lo]), 2)
        else:
            first = min(parse_ts(p["created_at"]) for p in done.values())
            rate = len(done) / (last - first)
        return {"store": kind, "workers": workers, "packages": len(done), "drain": drain,
                "example": example, "synchronous": synchronous,
                "statuses": sorted(statuses),
                "packages_per_s": round(rate, 2), "steady_packages_per_s": steady,
                "latency_p50_ms": round(percentile(lat, 50), 1),
                "latency_p99_ms": round(percentile(lat, 99), 1)}
    finally:
        for p in procs:
            p.stop()
        api.stop()


def markdown(out: dict, command: str) -> str:  # type: ignore[type-arg]
    services = ", ".join(tenant_examples(out.get("example", "all")))
    lines = ["## Pipeline: submit to applied", "",
             f"- Date: {time.strftime('%Y-%m-%d')}; {out['n']} packages per run, spread over "
             f"three example services of three accounts ({services}), submitted in a burst through "
             "the API (one sequential client) while already running `jamhost worker` processes "
             "drain the queue; each package is refined by 2 attestors and accumulated once.",
             f"- Machine: {out['machine']}",
             f"- Command: `{command}`", "",
             "| store | workers | packages/s | submit-to-applied p50 ms | p99 ms | statuses |",
             "|---|---|---|---|---|---|"]
    for r in out["runs"]:
        lines.append(f"| {r['store']} | {r['workers']} | {r['packages_per_s']} | "
                     f"{r['latency_p50_ms']} | {r['latency_p99_ms']} | "
                     f"{', '.join(r['statuses'])} |")
    lines += ["", "Latency counts from the submit, so it includes any time a package waits "
              "in the queue; with one sequential client submitting, throughput is bounded by "
              "the submissions when the queue stays short.", ""]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=120)
    ap.add_argument("--write-docs", action="store_true")
    ap.add_argument("--drain", action="store_true",
                    help="fill the queue first, then time the workers alone (and report "
                         "the steady rate: the middle 80%% of the applies)")
    ap.add_argument("--stores", default="sqlite,postgres")
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--sqlite-synchronous", choices=["full", "normal"], default=None)
    ap.add_argument("--example", choices=[*EXAMPLES, "all"], default="all",
                    help="the three services' example: one of each (all) or three of one")
    args = ap.parse_args()
    out: dict[str, object] = {"machine": machine(), "n": args.n, "example": args.example,
                              "runs": []}
    for kind in args.stores.split(","):
        for workers in map(int, args.workers.split(",")):
            tmp = Path(tempfile.mkdtemp())
            out["runs"].append(run_case(kind, workers, args.n, tmp, args.drain,  # type: ignore[union-attr]
                                        args.sqlite_synchronous, args.example))
            print(json.dumps(out["runs"][-1]), file=sys.stderr)  # type: ignore[index]
    print(json.dumps(out, indent=2))
    if args.write_docs:
        from bench.common import write_section

        write_section("Pipeline: submit to applied", markdown(out, " ".join(["python", *sys.argv])))


if __name__ == "__main__":
    main()
