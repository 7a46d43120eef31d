"""`jamhost conformance accumulate|traces DIR` on the stored public data, and on copies with
one expectation changed (the command must then name the case and exit 1).

Trace results (GP 0.7.2 block traces, real jam-bootstrap-service 0.1.27): in storage_light
and preimages_light, 63 of the 100 blocks accumulate packages and all 63 pass (state,
outputs, statistics); the other 37 accumulate nothing and are skipped.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from tests.conftest import vectors_dir
from typer.testing import CliRunner

from jamhost.cli.main import app

runner = CliRunner()
TRACES = vectors_dir() / "traces"


def conformance(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, ["conformance", *args])


def test_accumulate_vectors_0_7_2_all_pass() -> None:
    result = conformance("accumulate", str(vectors_dir() / "stf-accumulate-0.7.2" / "tiny"))
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == "30 passed, 0 failed"


def test_accumulate_vectors_0_7_0_all_pass() -> None:
    result = conformance("accumulate", str(vectors_dir() / "stf-accumulate"))
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == "26 passed, 0 failed"


@pytest.mark.parametrize("trace", ["storage_light", "preimages_light"])
def test_traces_every_accumulating_block_passes(trace: str) -> None:
    result = conformance("traces", str(TRACES / trace))
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == ["63 passed, 0 failed, 37 skipped"]


def _step_with_a_storage_value_changed(tmp_path: Path) -> str:
    """Copy storage_light's block 6 with one service storage value of its post-state changed."""
    step = json.loads((TRACES / "storage_light" / "00000006.json").read_text())
    pre = {kv["key"] for kv in step["pre_state"]["keyvals"]}
    for kv in step["post_state"]["keyvals"]:
        key = bytes.fromhex(kv["key"][2:])
        if key[0] != 0xFF and any(key[1:]) and kv["key"] not in pre:  # a new service key
            kv["value"] = kv["value"] + "00"
            break
    else:
        raise AssertionError("block 6 writes no new service key")
    (tmp_path / "00000006.json").write_text(json.dumps(step))
    return "00000006"


def test_traces_a_changed_storage_value_fails(tmp_path: Path) -> None:
    name = _step_with_a_storage_value_changed(tmp_path)
    result = conformance("traces", str(tmp_path))
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[0].startswith(f"FAIL {name}: 1 service keys differ")
    assert lines[-1] == "0 passed, 1 failed"


def test_accumulate_a_changed_case_fails(tmp_path: Path) -> None:
    source = vectors_dir() / "stf-accumulate-0.7.2" / "tiny"
    for name in ("process_one_immediate_report-1", "no_available_reports-1"):
        shutil.copy(source / f"{name}.json", tmp_path)
    path = tmp_path / "process_one_immediate_report-1.json"
    case = json.loads(path.read_text())
    case["output"]["ok"] = "0x" + "11" * 32
    path.write_text(json.dumps(case))
    result = conformance("accumulate", str(tmp_path))
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        result.output.splitlines()[0],
        "1 passed, 1 failed",
    ]
    assert result.output.startswith("FAIL process_one_immediate_report-1: output")


def test_bad_directory_is_a_clear_error(tmp_path: Path) -> None:
    assert conformance("traces", str(tmp_path / "absent")).exit_code == 2
    result = conformance("accumulate", str(tmp_path))
    assert result.exit_code == 2
