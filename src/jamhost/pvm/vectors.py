"""Run w3f PVM test vectors (jamtestvectors pvm/, v0.4, 64-bit) and compare results.

A vector gives `initial-*` (regs, pc, page map, memory, gas, program) and `expected-*`
(status, regs, pc, memory, gas, page-fault address). `run_vector` returns a dict keyed like
the `expected-*` fields without the prefix; `compare` lists the fields that differ.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jamhost.pvm.interface import PvmEngine, Status
from jamhost.pvm.interpreter import Interpreter
from jamhost.pvm.memory import Memory

FIELDS = ("status", "pc", "gas", "regs", "memory", "page_fault_address")


def load_vector(path: str | Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(Path(path).read_text())
    return data


def build_memory(vector: Mapping[str, Any]) -> Memory:
    mem = Memory()
    for page in vector.get("initial-page-map", []):
        mem.map(page["address"], page["length"], bool(page["is-writable"]))
    for chunk in vector.get("initial-memory", []):
        mem.load(chunk["address"], bytes(chunk["contents"]))
    return mem


def run_vector(
    vector: Mapping[str, Any], mode: str = "fast", engine: PvmEngine | None = None
) -> dict[str, Any]:
    """Run one vector's program from its initial state; PVM Ψ with host calls as exits.

    `engine` None runs the Python interpreter in `mode`; otherwise that engine (whose
    instances expose a `memory` snapshot)."""
    if engine is None:
        vm: Any = Interpreter.from_blob(
            bytes(vector["program"]),
            pc=vector["initial-pc"],
            gas=vector["initial-gas"],
            registers=vector["initial-regs"],
            memory=build_memory(vector),
            mode=mode,
        )
    else:
        vm = engine.instantiate(
            bytes(vector["program"]),
            pc=vector["initial-pc"],
            gas=vector["initial-gas"],
            registers=vector["initial-regs"],
            memory=build_memory(vector),
        )
    exit_ = vm.run()
    return {
        "status": exit_.status.value,
        "pc": exit_.pc,
        "gas": vm.gas,
        "regs": vm.get_registers(),
        "memory": [
            {"address": addr, "contents": list(data)} for addr, data in vm.memory.nonzero_chunks()
        ],
        "page_fault_address": exit_.address if exit_.status is Status.PAGE_FAULT else None,
    }


def _flatten(chunks: list[Mapping[str, Any]]) -> dict[int, int]:
    out: dict[int, int] = {}
    for chunk in chunks:
        for i, byte in enumerate(chunk["contents"]):
            if byte:
                out[chunk["address"] + i] = byte
    return out


def expected_of(vector: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "status": vector["expected-status"],
        "pc": vector["expected-pc"],
        "gas": vector["expected-gas"],
        "regs": list(vector["expected-regs"]),
        "memory": vector.get("expected-memory", []),
        "page_fault_address": vector.get("expected-page-fault-address"),
    }


def compare(vector: Mapping[str, Any], actual: Mapping[str, Any]) -> list[str]:
    """Human-readable differences between a vector's expected-* fields and `actual`.

    Memory is compared by content (all accessible octets not listed are zero), so chunking
    differences do not count."""
    expected = expected_of(vector)
    diffs: list[str] = []
    for key in FIELDS:
        want, got = expected[key], actual[key]
        if key == "memory":
            want, got = _flatten(want), _flatten(got)
        if key == "page_fault_address" and expected["status"] != "page-fault":
            continue
        if want != got:
            diffs.append(f"{key}: expected {want!r}, got {got!r}")
    return diffs
