"""Helpers shared by the benchmarks: a real server process, timers, percentiles, machine."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"nproc {os.cpu_count()}, {cpu}, Python {platform.python_version()}"


def write_section(title: str, text: str) -> None:
    """Replace (or add) the `## <title>` section of docs/benchmarks.md, leaving the rest."""
    import re

    path = REPO / "docs" / "benchmarks.md"
    current = path.read_text() if path.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(current):
        current = pattern.sub(lambda _m: text, current)
    else:
        current = current.rstrip("\n") + "\n\n" + text
    path.write_text(current)


def percentile(samples: list[float], q: float) -> float:
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def timed(fn: Callable[[], Any], n: int) -> list[float]:
    """Latencies in milliseconds of n sequential calls."""
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def best(fn: Callable[[], object], repeat: int) -> float:
    """Least process CPU time of `repeat` runs of `fn`, after one warm-up run."""
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.process_time()
        fn()
        times.append(time.process_time() - t0)
    return min(times)


def summary(samples: list[float]) -> dict[str, float]:
    total_s = sum(samples) / 1000
    return {"p50_ms": round(percentile(samples, 50), 3),
            "p99_ms": round(percentile(samples, 99), 3),
            "mean_ms": round(statistics.fmean(samples), 3),
            "req_per_s": round(len(samples) / total_s, 1) if total_s else 0.0}


def git_rev() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                              capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def quiet_worker_logging() -> None:
    """The log configuration `serve` and `jamhost worker` set up (JSON lines, redacted), its
    lines to /dev/null. Unconfigured, structlog renders each line with its development
    console renderer, about 0.2 ms of CPU a line against the worker's 0.015 ms: a bench
    that leaves it so measures the renderer (docs/benchmarks.md, "The log line per
    finished package")."""
    import structlog

    from jamhost.observability import configure_logging

    configure_logging()
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(
        file=open(os.devnull, "w")))  # noqa: SIM115 - open for the whole run
