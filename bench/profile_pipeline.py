"""Where a package's time goes in the worker: an in-process runtime (SQLite file by default),
one counter service, `--n` packages submitted through the use case, then drained by
`process_next` in this process under cProfile (or timed alone with `--no-profile`).

    .venv/bin/python bench/profile_pipeline.py [--n 300] [--store sqlite|memory|postgres]
        [--no-profile] [--steps] [--top 40] [--sort tottime|cumulative]

Prints ms per package for the drain, and cProfile's top entries; with `--steps` (no
profiler), the ms per package of each step of the pipeline instead, measured by wrapping
the functions by name (so it also runs on older trees whose functions live elsewhere).

Logging is configured as `jamhost worker` configures it (JSON lines, redacted), the lines
written to /dev/null so that the figures stay readable: an unconfigured structlog renders
each line with its development console renderer instead, about 0.2 ms of CPU a line against
the worker's 0.015 ms (docs/benchmarks.md, "The log line per finished package").
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import pstats
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import quiet_worker_logging  # noqa: E402

from jamhost.app import packages, services  # noqa: E402
from jamhost.app.accounts import create_account  # noqa: E402
from jamhost.app.pipeline import process_next  # noqa: E402
from jamhost.app.runtime import build_runtime  # noqa: E402
from jamhost.app.worker import settle_process  # noqa: E402
from jamhost.config import JamSettings  # noqa: E402
from jamhost.examples import counter  # noqa: E402
from jamhost.tenancy.principal import ADMIN, Principal  # noqa: E402

OP = Principal(kind="operator", token_hash=bytes(32))


def store_keys(kind: str, tmp: Path) -> dict[str, object]:
    if kind == "sqlite":
        return {"store": "sqlite", "sqlite_path": str(tmp / "p.db")}
    if kind == "postgres":
        from tests.conftest import _pg_admin

        name = f"jamhost_prof_{uuid.uuid4().hex[:8]}"
        _pg_admin(f'CREATE DATABASE "{name}"')
        return {"store": "postgres", "pg_dsn": f"postgresql://postgres@127.0.0.1:5432/{name}"}
    return {"store": "memory"}


STEPS = (  # (module, function, label)
    ("jamhost.app.pipeline", "attest_runs", "the attestors' refines"),
    ("jamhost.engine.refine", "erasure_root", "  of which the erasure root"),
    ("jamhost.app.pipeline", "accumulate_package", "accumulate (in the processing)"),
    ("jamhost.app.pipeline", "process_claimed", "processing a claimed package"),
    ("jamhost.app.pipeline", "_process", "processing a claimed package"),
    ("jamhost.app.pipeline", "_finish", "the finish (store; accumulate again on a conflict)"),
    ("jamhost.app.pipeline", "sweep", "the expired-segment sweep"),
    ("jamhost.app.pipeline", "_observe", "metrics and the log line"),
)


def wrap_steps(rt: object) -> collections.Counter[str]:
    """Time each step that exists in this tree; seconds per label, wall clock, and the
    calling thread's CPU under `cpu:<label>` (wall minus CPU: time off the CPU, which a
    loaded machine adds to whichever step waits)."""
    import importlib

    spent: collections.Counter[str] = collections.Counter()

    def timed(label: str, fn):  # type: ignore[no-untyped-def]
        def wrapper(*a, **k):  # type: ignore[no-untyped-def]
            t0, c0 = time.perf_counter(), time.thread_time()
            try:
                return fn(*a, **k)
            finally:
                spent[label] += time.perf_counter() - t0
                spent["cpu:" + label] += time.thread_time() - c0
        return wrapper

    for module, name, label in STEPS:
        mod = importlib.import_module(module)
        if hasattr(mod, name):
            setattr(mod, name, timed(label, getattr(mod, name)))
    store = rt.store  # type: ignore[attr-defined]
    store.claim_package = timed("the claim", store.claim_package)
    return spent


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--store", default="sqlite", choices=("sqlite", "memory", "postgres"))
    ap.add_argument("--no-profile", action="store_true")
    ap.add_argument("--steps", action="store_true")
    ap.add_argument("--top", type=int, default=40)
    ap.add_argument("--sort", default="tottime")
    args = ap.parse_args()
    quiet_worker_logging()
    tmp = Path(tempfile.mkdtemp())
    rt = build_runtime(JamSettings(
        **store_keys(args.store, tmp), rate_limit_per_minute=0, service_rate_limit_per_minute=0,
        account_rate_limit_per_minute=0, max_pending_packages=10**6,
        default_quota={"pending_packages": 10**6, "storage_bytes": 10**10,
                       "gas_per_hour": 10**15}))
    owner = create_account(rt, ADMIN, "bench").id
    sid = services.create_service(rt, ADMIN, code=counter.build(), owner=owner).service_id

    def submit(i: int) -> None:
        packages.submit_json(rt, OP, {"service_id": sid, "items": [
            {"payload": "0x" + i.to_bytes(4, "little").hex(), "refine_gas_limit": 10**7,
             "accumulate_gas_limit": 10**7}]})

    # The drain runs on this thread as a worker's loop does: with a kept connection (a
    # tree older than SqlBase.own_connection has none).
    getattr(rt.store, "own_connection", lambda: None)()
    submit(10**6)  # one warm-up package: imports, the engine's caches, the attestor keys
    process_next(rt, "w")
    t0 = time.perf_counter()
    for i in range(args.n):
        submit(i)
    submit_ms = (time.perf_counter() - t0) * 1000 / args.n
    settle_process()
    spent = wrap_steps(rt) if args.steps else None
    prof = None if args.no_profile or args.steps else cProfile.Profile()
    t0, c0 = time.perf_counter(), time.process_time()
    if prof is not None:
        prof.enable()
    done = 0
    while process_next(rt, "w") is not None:
        done += 1
    if prof is not None:
        prof.disable()
    ms = (time.perf_counter() - t0) * 1000 / max(1, done)
    cpu = (time.process_time() - c0) * 1000 / max(1, done)
    print(f"store {args.store}: submit {submit_ms:.2f} ms per package; drained {done} packages "
          f"at {ms:.2f} ms per package ({1000 / ms:.0f}/s), CPU {cpu:.2f} ms per package"
          f"{' under cProfile' if prof else ''}", file=sys.stderr)
    if spent is not None:
        print("| step | wall ms | CPU ms |", file=sys.stderr)
        for label in [*dict.fromkeys(label for _, _, label in STEPS), "the claim"]:
            print(f"| {label} | {spent[label] * 1000 / max(1, done):.2f} | "
                  f"{spent['cpu:' + label] * 1000 / max(1, done):.2f} |", file=sys.stderr)
    if prof is not None:
        pstats.Stats(prof, stream=sys.stderr).sort_stats(args.sort).print_stats(args.top)
    rt.close()


if __name__ == "__main__":
    main()
