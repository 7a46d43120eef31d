"""The attestors' independence (app/attestation.py; SPEC §4): the second attestor re-refines on
the other PVM engine for a sampled share of packages, and a re-refine that disagrees is a
dispute with nothing applied. In process on the memory store, with an injected faulty engine."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest
from tests.store_scopes import EVERYTHING

from jamhost.app import attestation, packages, services
from jamhost.app.accounts import create_account
from jamhost.app.pipeline import process_next
from jamhost.app.runtime import Runtime, build_runtime
from jamhost.config import JamSettings
from jamhost.engine import refine_package
from jamhost.examples import counter
from jamhost.pvm import get_engine
from jamhost.pvm.interpreter import Interpreter, PythonPvm
from jamhost.pvm.memory import Memory
from jamhost.tenancy.principal import ADMIN, Principal

OP = Principal(kind="operator", token_hash=bytes(32))


class OneGasShortPvm(PythonPvm):
    """A faulty engine: every machine starts with one gas less than it was given, so each
    refine reports one more gas used than a correct engine would."""

    name = "faulty"

    def instantiate(self, program: bytes, *, pc: int, gas: int, registers: Sequence[int],
                    memory: Memory) -> Interpreter:
        return super().instantiate(program, pc=pc, gas=gas - 1, registers=registers,
                                   memory=memory)


def runtime(**keys: Any) -> tuple[Runtime, int]:
    rt = build_runtime(JamSettings(store="memory", rate_limit_per_minute=0,
                                   service_rate_limit_per_minute=0,
                                   account_rate_limit_per_minute=0, **keys))
    owner = create_account(rt, ADMIN, "alice").id
    sid = services.create_service(rt, ADMIN, code=counter.build(), owner=owner).service_id
    return rt, sid


def submit(rt: Runtime, sid: int, payload: bytes = b"\x07") -> bytes:
    rec, created = packages.submit_json(rt, OP, {"service_id": sid, "items": [
        {"payload": "0x" + payload.hex(), "refine_gas_limit": 10**6,
         "accumulate_gas_limit": 10**6}]})
    assert created
    return rec.id


def engines_used(calls: list[str]):  # type: ignore[no-untyped-def]
    def refine(package: Any, **kw: Any) -> Any:
        calls.append(kw["engine"].name)
        return refine_package(package, **kw)
    return refine


def test_a_faulty_second_engine_is_a_dispute_and_nothing_is_applied(monkeypatch) -> None:  # noqa: ANN001
    rt, sid = runtime()
    monkeypatch.setattr(attestation, "recheck_engine", lambda first: OneGasShortPvm())
    pid = submit(rt, sid)
    calls: list[str] = []
    assert process_next(rt, "w", refine=engines_used(calls)) == pid
    assert calls == [rt.pvm.name, "faulty"]
    pkg = rt.store.get_package(pid, EVERYTHING)
    assert pkg is not None and pkg.status == "disputed"
    assert pkg.failure_reason == "attestors computed different report hashes"
    hashes = json.loads(pkg.detail)["report_hashes"]
    assert len(hashes) == 2 and len(set(hashes.values())) == 2
    svc = rt.store.get_service(sid)
    assert svc is not None and svc.receipt_seq == 0
    assert rt.store.storage_get(sid, counter.KEY) is None
    assert rt.store.get_report(pid, EVERYTHING) is None


def test_the_second_attestor_refines_on_the_other_engine_and_they_agree() -> None:
    rt, sid = runtime()
    assert rt.pvm.name == "jamhost-pvm-native"  # built by pip install here and in CI
    pid = submit(rt, sid)
    calls: list[str] = []
    assert process_next(rt, "w", refine=engines_used(calls)) == pid
    assert calls == ["jamhost-pvm-native", "jamhost-pvm-py"]
    pkg = rt.store.get_package(pid, EVERYTHING)
    assert pkg is not None and pkg.status == "applied", pkg.failure_reason
    attestations = rt.store.attestations(pid)
    assert len(attestations) == 2 and len({a.attestor for a in attestations}) == 2
    assert rt.store.storage_get(sid, counter.KEY) == (1).to_bytes(8, "little")


def test_the_other_engine_of_each() -> None:
    native, python = get_engine("native"), get_engine("python")
    assert attestation.recheck_engine(native) is python
    assert attestation.recheck_engine(python) is native


def test_without_rechecks_the_second_attestor_signs_the_first_report(monkeypatch) -> None:  # noqa: ANN001
    rt, sid = runtime(attestor_recheck_gas=0)
    monkeypatch.setattr(attestation, "recheck_engine", lambda first: OneGasShortPvm())
    pid = submit(rt, sid)
    calls: list[str] = []
    assert process_next(rt, "w", refine=engines_used(calls)) == pid
    assert calls == [rt.pvm.name]  # the faulty engine never ran
    pkg = rt.store.get_package(pid, EVERYTHING)
    assert pkg is not None and pkg.status == "applied", pkg.failure_reason
    attestations = rt.store.attestations(pid)
    assert len({a.attestor for a in attestations}) == 2
    assert len({a.report_hash for a in attestations}) == 1


def test_sampling_share_follows_the_gas_used() -> None:
    """Up to `attestor_recheck_gas` gas: always; above, with probability budget / gas (here
    1/10, over 4,000 package hashes: 400 expected, the bounds are about 6 standard deviations
    out); 0: never. The draw is the same each time for one package."""
    rt, _ = runtime(attestor_recheck_gas=1_000)
    hashes = [i.to_bytes(32, "little") for i in range(4_000)]
    assert all(attestation.sampled(rt, h, 1_000) for h in hashes[:50])
    picked = [h for h in hashes if attestation.sampled(rt, h, 10_000)]
    assert 280 <= len(picked) <= 520
    assert all(attestation.sampled(rt, h, 10_000) for h in picked)
    off, _ = runtime(attestor_recheck_gas=0)
    assert not any(attestation.sampled(off, h, 1) for h in hashes[:50])


@pytest.mark.parametrize("gas", [0, 1])
def test_a_package_of_no_gas_is_always_rechecked(gas: int) -> None:
    rt, _ = runtime(attestor_recheck_gas=1)
    assert attestation.sampled(rt, bytes(32), gas)


def test_a_package_reads_its_code_from_the_store_once(monkeypatch) -> None:  # noqa: ANN001
    """Both attestors' refines and the accumulate run the service's code; the blob is read
    from the store once for all three (app/lookup_cache.py, own_preimages)."""
    rt, sid = runtime()
    svc = rt.store.get_service(sid)
    assert svc is not None
    reads: list[bytes] = []
    read = rt.store.service_preimage

    def counted(service_id: int, hash_: bytes) -> bytes | None:
        reads.append(hash_)
        return read(service_id, hash_)

    monkeypatch.setattr(rt.store, "service_preimage", counted)
    pid = submit(rt, sid)
    calls: list[str] = []
    assert process_next(rt, "w", refine=engines_used(calls)) == pid
    assert len(calls) == 2  # both attestors refined it
    pkg = rt.store.get_package(pid, EVERYTHING)
    assert pkg is not None and pkg.status == "applied", pkg.failure_reason
    assert reads == [svc.code_hash]
