"""Imported segments: what an import costs a worker (issue 16).

    .venv/bin/python bench/bench_segments.py [--repeat 3] [--write-docs]

On a SQLite store in a temporary directory, one service's applied package exports N
segments (kept as s ++ P(s), app/segments.py). Then, for N = 64 and 512:
1. the worker's lookup of all N imports (app/segments.import_lookup, uncached: two rows per
   import and J_0 derived from the proof page);
2. refine_package of a package of the `segments` example importing all N (fetching none of
   them), against the same package without imports: the difference is the imports' cost in
   refine (each justification checked against its root, the bundle grown by N segments and
   their proofs, so a larger erasure coding).
Best of `--repeat` runs after a warm-up, in process CPU time.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import best, machine, write_section  # noqa: E402

from jamhost.app.runtime import build_runtime  # noqa: E402
from jamhost.app.segments import export_set, import_lookup  # noqa: E402
from jamhost.config import JamSettings  # noqa: E402
from jamhost.domain.model import PackageOutcome, PackageRecord, QuotaLimits, now_us  # noqa: E402
from jamhost.domain.types import ImportSpec, RefineContext, WorkItem, WorkPackage  # noqa: E402
from jamhost.engine import erasure, refine_package  # noqa: E402
from jamhost.engine.merkle import constant_depth_root  # noqa: E402
from jamhost.examples import segments as example  # noqa: E402
from jamhost.pvm.engines import get_engine  # noqa: E402

W_G = 4104
CODE = example.build()
CONTEXT = RefineContext(bytes(32), bytes(32), bytes(32), bytes(32), 0)
NOTE = """
What it means: in the worker's lookup an import costs one row read (its export set is found
once per root or package hash, its proof page read and decoded once per 64 segments) and a
path of a few hashes. "Refine with them" makes that lookup again (uncached, as the first
attestor does), so per import in refine is the lookup plus a path check (one hash per tree
level) plus its share of the larger bundle's erasure coding: about the cost of an extrinsic
of W_G + 32·depth octets, 0.1-0.2 ms with the numpy coder (it was about 0.4-0.5 ms, and
dominated, with the pure-Python one). The bundle octets are charged: 4,489 per import, at
25,000 units per 684 (tenancy/erasure_gas.py). Exports cost about 0.4-0.6 ms each in the
erasure root and are charged 1,000,000 units each ("Refine: erasure coding and inner
machines").
"""


def h(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=32).digest()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        rt = build_runtime(JamSettings(store="sqlite", sqlite_path=f"{tmp}/bench.db",
                                       allowed_tokens=["bench"]))
        rt.store.init_counters()
        svc = rt.store.create_service(owner="bench", code=CODE, code_hash=h(CODE), balance=0,
                                      min_item_gas=0, min_memo_gas=0, created_by="bench",
                                      storage_limit=10**9)
        sid = svc.service_id
        for n in (64, 512):
            segments = [h(b"%d" % i) * (W_G // 32) + bytes(W_G % 32) for i in range(n)]
            root = constant_depth_root(segments)
            body = b"bench-%d" % n
            rt.store.submit_package(PackageRecord(h(body), sid, "pending", body, len(body), 0, 0,
                                                  now_us(), now_us()),
                                    QuotaLimits(10, 10**9, 10**12), 100, rt.gas_window())
            claimed = rt.store.claim_package("bench", now_us(), 10**9)
            assert claimed is not None
            kept = export_set(rt, sid, claimed.id, root, segments)
            assert rt.store.finish_package(PackageOutcome(claimed.id, sid, "bench", "applied",
                                                          exports=kept), storage_limit=10**9)
            specs = tuple(ImportSpec(root, i) for i in range(n))

            def lookup_all(specs: tuple[ImportSpec, ...] = specs) -> None:
                lookup = import_lookup(rt, svc)
                assert all(lookup(s) is not None for s in specs)

            t_lookup = best(lookup_all, args.repeat)

            def refine(imports: tuple[ImportSpec, ...]) -> None:
                erasure._ROOTS.clear()  # measure the coding, not the kept root
                item = WorkItem(sid, h(CODE), 10**6, 1_000, 0, b"\x06\x00\x00",
                                import_segments=imports)
                out = refine_package(WorkPackage(sid, bytes(32), CONTEXT, b"", b"", (item,)),
                                     code_lookup=lambda s, c: CODE,
                                     preimage_lookup=lambda s, x: None,
                                     import_lookup=import_lookup(rt, svc))
                assert out.report.results[0].result.is_ok

            t_with = best(lambda specs=specs: refine(specs), args.repeat)
            t_without = best(lambda: refine(()), args.repeat)
            rows.append(f"| {n} | {t_lookup * 1000:,.1f} ms ({t_lookup / n * 1e6:,.0f} µs "
                        f"each) | {t_with * 1000:,.1f} ms | {t_without * 1000:,.1f} ms | "
                        f"{(t_with - t_without) / n * 1000:,.2f} ms |")
        rt.close()
    today = dt.date.today().isoformat()
    text = (
        "## Refine: imported segments\n\n"
        f"Machine: {machine()}. Command: `.venv/bin/python bench/bench_segments.py "
        f"--repeat {args.repeat} --write-docs`. Date: {today}. Best of the repeats after a "
        "warm-up, in process CPU time; SQLite store in a temporary directory; PVM "
        f"`{get_engine().name}` (refine_package's default). Load average at the start: "
        f"{load:.2f} ({os.cpu_count()} cores, shared).\n\n"
        "| imports | worker lookup of all (uncached) | refine with them | refine without | "
        "per import in refine |\n|---|---|---|---|---|\n" + "\n".join(rows) + "\n" + NOTE
    )
    print(text)
    if args.write_docs:
        write_section("Refine: imported segments", text)


if __name__ == "__main__":
    main()
