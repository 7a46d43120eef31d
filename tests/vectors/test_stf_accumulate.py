"""The w3f accumulate STF vectors (GP 0.7.0, tiny): every case's post-state and output.

Each case runs `accumulate_block` on the pre-state and the input reports, with the tiny
protocol constants and the GP 0.7.0 encodings (`gp_version="0.7.0"`), and compares the
whole post_state (slot, entropy, ready queue, accumulated history, privileges, the
accumulation statistics and every account: info, storage, preimages) and the output root.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.conftest import vectors_dir

from jamhost.domain.types import WorkReport
from jamhost.engine.conformance.stf import accumulate_block
from jamhost.engine.conformance.stf_json import result_to_json, state_from_json
from jamhost.engine.constants import ProtocolConstants
from jamhost.pvm import get_engine

CASES = sorted((vectors_dir() / "stf-accumulate").glob("*.json"))


def test_all_cases_present() -> None:
    assert len(CASES) == 26


@pytest.mark.parametrize("engine", ["native", "python"])
@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_case(path: Path, engine: str) -> None:
    """The real compiled test-service runs here: both engines must give the vectors' state."""
    case = json.loads(path.read_text())
    reports = [WorkReport.from_json(r) for r in case["input"]["reports"]]
    result = accumulate_block(
        state_from_json(case["pre_state"]),
        case["input"]["slot"],
        reports,
        constants=ProtocolConstants.tiny(),
        engine=get_engine(engine),
        gp_version="0.7.0",
    )
    got = result_to_json(result)
    expected = case["post_state"]
    for key in ("slot", "entropy", "privileges", "accumulated", "statistics", "accounts"):
        assert got["post_state"][key] == expected[key], key
    assert got["post_state"]["ready_queue"] == expected["ready_queue"]
    assert got["output"] == case["output"]
