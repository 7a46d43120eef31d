"""The davxy accumulate STF vectors at GP 0.7.2 (tiny, 30 cases, jam-bootstrap-service 0.1.27
with `log` at 10 gas, eject cases included), run as `jamhost conformance accumulate` runs
them: `accumulate_block` over the production `accumulate()`; every post_state field (accounts
with their preimage requests, statistics, privileges, queues) and the output root compared.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.conftest import vectors_dir

from jamhost.engine.conformance.vectors import run_case

CASES = sorted((vectors_dir() / "stf-accumulate-0.7.2" / "tiny").glob("*.json"))


def test_all_cases_present() -> None:
    assert len(CASES) == 30


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_case(path: Path) -> None:
    result = run_case(json.loads(path.read_text()), path.stem)
    assert result.failures == []


def test_a_changed_expectation_fails() -> None:
    """The comparison sees a wrong balance and a wrong gas figure."""
    case = json.loads((CASES[0].parent / "transfer_for_ejected_service-1.json").read_text())
    case["post_state"]["accounts"][0]["data"]["service"]["balance"] += 1
    case["post_state"]["statistics"][0]["record"]["accumulate_gas_used"] -= 10
    failures = run_case(case, "tampered").failures
    assert any(f.startswith("accounts differ for services [0]") for f in failures)
    assert any(f.startswith("statistics differ for services [0]") for f in failures)
