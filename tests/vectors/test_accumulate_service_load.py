"""The real compiled test-service of the w3f accumulate vectors loads and runs on our PVM.

Each stf-accumulate case carries the service's code preimage E(↕m, c) in
pre_state.accounts[*].data.preimages (GP §9.2). We strip the metadata, initialise the
standard program (GP §A.7 Y) with the accumulate arguments E(t, s, |i|) (GP §B.4 Ψ_A:
timeslot, service id, operand count, each a GP natural) and enter at pc 5 with stub host
calls that log what is asked and answer NONE (2^64 - 1). The engine issue implements the real
host calls; here we show the program loads and executes: it reaches host calls (the first is
fetch, id 1), and when told NONE the service's own Rust panic handler runs and logs its
message through the log host call (id 100), which needs RO data, stack and code all right.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from jamhost.pvm.assembler import encode_natural
from jamhost.pvm.host import invoke_service_code
from jamhost.pvm.interface import PvmInstance, Status
from jamhost.pvm.interpreter import PythonPvm
from jamhost.pvm.native import NativePvm
from jamhost.pvm.standard import initialise, split_service_code

VECTORS = Path(
    os.environ.get(
        "JAMHOST_VECTORS_DIR",
        Path(__file__).resolve().parents[2] / ".." / "shared" / "vectors",
    )
)
CASES = sorted((VECTORS / "stf-accumulate").glob("*.json"))
NONE = (1 << 64) - 1
FETCH, LOG = 1, 100
ACCUMULATE_PC = 5


def _service(case: dict[str, Any]) -> tuple[int, bytes, int]:
    """(service id, code preimage, operand count) of the first account with code."""
    for account in case["pre_state"]["accounts"]:
        data = account["data"]
        code_hash = data["service"]["code_hash"]
        for preimage in data["preimages"]:
            if preimage["hash"] == code_hash:
                blob = bytes.fromhex(preimage["blob"].removeprefix("0x"))
                count = sum(
                    1
                    for report in case["input"]["reports"]
                    for result in report["results"]
                    if result["service_id"] == account["id"]
                )
                return account["id"], blob, count
    raise AssertionError("no account with its code preimage")


class StubHost:
    """Logs every host call; answers NONE, charging GP's base 10 gas (log: 0)."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, list[int]]] = []
        self.logs: list[bytes] = []

    def __call__(self, host_id: int, vm: PvmInstance) -> Status | None:
        regs = vm.get_registers()
        self.calls.append((host_id, regs[7:12]))
        if host_id == LOG:
            # log(level ω7, target ω8..+ω9, message ω10..+ω11)
            self.logs.append(vm.read_memory(regs[10], regs[11]))
            return None
        vm.gas -= 10
        vm.set_register(7, NONE)
        return None


def test_cases_present() -> None:
    assert len(CASES) >= 20, f"stf-accumulate vectors missing in {VECTORS}"


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
@pytest.mark.parametrize("mode", ["fast", "step", "native"])
def test_test_service_runs_accumulate_to_host_calls(path: Path, mode: str) -> None:
    case = json.loads(path.read_text())
    service_id, preimage, count = _service(case)
    metadata, program = split_service_code(preimage)
    assert b"test-service" in metadata
    args = (
        encode_natural(case["input"]["slot"]) + encode_natural(service_id) + encode_natural(count)
    )
    # Loading: Y succeeds and the first run stops at a host call, not a fault or panic.
    code, regs, mem = initialise(program, args)
    engine = NativePvm() if mode == "native" else PythonPvm(mode)
    vm = engine.instantiate(
        code, pc=ACCUMULATE_PC, gas=1_000_000, registers=regs, memory=mem
    )
    first = vm.run()
    assert first.status is Status.HOST, first
    assert first.host_id == FETCH
    # The whole invocation with stub host calls.
    host = StubHost()
    result = invoke_service_code(
        preimage, ACCUMULATE_PC, 1_000_000, args, host, engine=engine
    )
    assert host.calls[0][0] == FETCH
    # Told NONE by fetch, the service panics deliberately (its panic handler, not a fault).
    assert result.status is Status.PANIC
    assert 0 < result.gas_used < 1_000_000
    messages = b"\n".join(host.logs).decode()
    assert "panicked at" in messages and "item must be available" in messages


@pytest.mark.parametrize("path", CASES[:6], ids=[p.stem for p in CASES[:6]])
def test_test_service_is_identical_on_both_engines(path: Path) -> None:
    """Every field of Ψ_M and every host call (registers ω7..ω11) and log, both engines."""
    case = json.loads(path.read_text())
    service_id, preimage, count = _service(case)
    args = (
        encode_natural(case["input"]["slot"]) + encode_natural(service_id) + encode_natural(count)
    )
    runs = []
    for engine in (PythonPvm(), NativePvm()):
        host = StubHost()
        result = invoke_service_code(preimage, ACCUMULATE_PC, 1_000_000, args, host, engine=engine)
        runs.append((result, host.calls, host.logs))
    assert runs[1] == runs[0]
    assert runs[0][0].host_calls == len(runs[0][1]) > 1
