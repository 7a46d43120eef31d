"""The accumulate STF vectors (stf/accumulate JSON) through `jamhost.engine.conformance.stf`.

A case passes when every post_state field (slot, entropy, ready queue, accumulated history,
privileges, accumulation statistics, every account: info, storage, preimages and, in the GP
0.7.2 form, preimage requests) and the output (the accumulation-output root) equal the
vector's. The form picks the GP version the engine runs as (`stf_json.form_of`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from jamhost.domain.types import WorkReport
from jamhost.engine.conformance.result import CaseResult
from jamhost.engine.conformance.stf import accumulate_block
from jamhost.engine.conformance.stf_json import form_of, result_to_json, state_from_json
from jamhost.engine.constants import ProtocolConstants


def case_files(directory: Path) -> list[Path]:
    """The cases of a directory: its *.json files, by name."""
    return sorted(p for p in directory.glob("*.json") if p.is_file())


def run_case(case: dict[str, Any], name: str = "case") -> CaseResult:
    """Run one vector and name each post_state field (or `output`) that differs."""
    start = time.perf_counter()
    result = CaseResult(name)
    try:
        form = form_of(case)
        reports = [WorkReport.from_json(r) for r in case["input"]["reports"]]
        block = accumulate_block(
            state_from_json(case["pre_state"]),
            case["input"]["slot"],
            reports,
            constants=ProtocolConstants.tiny(),
            gp_version=form,
        )
        got = result_to_json(block, form)
    except (KeyError, TypeError, ValueError) as exc:  # a malformed case is a failed case
        result.failures.append(f"unreadable case ({type(exc).__name__}: {exc})")
        return result
    expected = case.get("post_state", {})
    for key in expected:
        if got["post_state"].get(key) != expected[key]:
            result.failures.append(_describe(key, got["post_state"].get(key), expected[key]))
    if got["output"] != case.get("output"):
        result.failures.append(f"output {got['output']} != {case.get('output')}")
    result.seconds = time.perf_counter() - start
    return result


def run_directory(directory: Path) -> Iterator[CaseResult]:
    for path in case_files(directory):
        try:
            case = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            yield CaseResult(path.stem, [f"unreadable file ({exc})"])
            continue
        yield run_case(case, path.stem)


def _describe(key: str, got: Any, expected: Any) -> str:
    """A short account of one differing field: for lists of records, which ids differ."""
    if key in ("accounts", "statistics") and isinstance(got, list) and isinstance(expected, list):
        g = {e["id"]: e for e in got}
        x = {e["id"]: e for e in expected}
        ids = sorted(i for i in set(g) | set(x) if g.get(i) != x.get(i))
        return f"{key} differ for services {ids}"
    return f"{key} differs"
