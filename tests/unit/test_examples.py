"""The example services through refine_package and accumulate, against hand-derived values."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import pytest

from jamhost.domain.types import RefineContext, WorkItem, WorkPackage, WorkReport
from jamhost.engine import (
    AccountState,
    AccumulateOperand,
    DeferredTransfer,
    accumulate,
    refine_package,
)
from jamhost.examples import compute, counter, kvstore

SERVICE = 70_000
GAS = 1_000_000


def h(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=32).digest()


def package(code_hash: bytes, payloads: list[bytes]) -> WorkPackage:
    context = RefineContext(bytes(32), bytes(32), bytes(32), bytes(32), 0)
    items = tuple(WorkItem(SERVICE, code_hash, GAS, GAS, 0, payload) for payload in payloads)
    return WorkPackage(0, bytes(32), context, b"", b"", items)


def refine(code: bytes, payloads: list[bytes]) -> WorkReport:
    pkg = package(h(code), payloads)
    outcome = refine_package(
        pkg,
        code_lookup=lambda s, c: code if (s, c) == (SERVICE, h(code)) else None,
        preimage_lookup=lambda s, x: None,
    )
    return outcome.report


def account(code: bytes, storage: dict[bytes, bytes] | None = None) -> AccountState:
    return AccountState.create(
        h(code),
        10**9,
        storage=dict(storage or {}),
        preimages={h(code): code},
        requests={(h(code), len(code)): (0,)},
    )


def run(code: bytes, state: AccountState, report: WorkReport, transfers=()):  # type: ignore[no-untyped-def]
    operands = [AccumulateOperand.from_digest(report, d) for d in report.results]
    out = accumulate(
        SERVICE, state, operands, transfers, timeslot=7, gas_limit=GAS, entropy=bytes(32)
    )
    assert out.status == "halt", out.status
    return out


def test_counter_refine_returns_the_payload() -> None:
    code = counter.build()
    report = refine(code, [b"hello", b""])
    assert [d.result.output for d in report.results] == [b"hello", b""]
    assert all(d.result.is_ok for d in report.results)


def test_counter_counts_items_across_accumulations() -> None:
    code = counter.build()
    report = refine(code, [b"a", b"b", b"c"])
    first = run(code, account(code), report)
    assert first.storage_changes == {b"count": (3).to_bytes(8, "little")}
    second = run(code, first.account, refine(code, [b"d"]))
    assert second.account.storage[b"count"] == (4).to_bytes(8, "little")
    # the caller's account is untouched: the outcome is an overlay
    assert b"count" not in account(code).storage


def test_counter_ignores_transfers_but_gets_their_balance() -> None:
    code = counter.build()
    transfer = DeferredTransfer(SERVICE + 1, SERVICE, 500, bytes(128), 1000)
    before = account(code)
    out = run(code, before, refine(code, [b"x"]), [transfer])
    assert out.account.storage[b"count"] == (1).to_bytes(8, "little")
    assert out.account.balance == 10**9 + 500


def test_kvstore_writes_and_deletes_pairs() -> None:
    code = kvstore.build()
    payload = b"\x01a\x02hi" + b"\x01b\x00"  # a = "hi", delete b
    assert kvstore.entries([(b"a", b"hi"), (b"b", b"")]) == payload
    report = refine(code, [payload, b"\x01c\x03xyz"])
    assert [d.result.output for d in report.results] == [payload, b"\x01c\x03xyz"]
    state = account(code, {b"b": b"old"})
    items_before, octets_before = state.items, state.octets
    assert (items_before, octets_before) == (2 + 1, 81 + len(code) + 34 + 1 + 3)
    out = run(code, state, report)
    assert out.storage_changes == {b"a": b"hi", b"b": None, b"c": b"xyz"}
    assert dict(out.account.storage) == {b"a": b"hi", b"c": b"xyz"}
    # a_i = 2·1 request + 2 keys; a_o = (81 + |code|) + (34+1+2) + (34+1+3)
    assert out.account.items == 4
    assert out.account.octets == 81 + len(code) + 37 + 38


def test_kvstore_ignores_a_truncated_entry() -> None:
    code = kvstore.build()
    out = run(code, account(code), refine(code, [b"\x01k\x01v\x05ab"]))
    assert out.storage_changes == {b"k": b"v"}


@pytest.mark.parametrize(
    ("payload", "total", "fnv"),
    [
        (b"", 0, 0xCBF29CE484222325),
        (b"a", 97, 0xAF63DC4C8601EC8C),
        (b"foobar", 633, 0x85944171F73967E8),
    ],
)
def test_compute_sum_and_fnv1a(payload: bytes, total: int, fnv: int) -> None:
    code = compute.build()
    (digest,) = refine(code, [payload]).results
    assert digest.result.output == total.to_bytes(8, "little") + fnv.to_bytes(8, "little")


def test_compute_accumulate_keeps_the_last_result() -> None:
    code = compute.build()
    out = run(code, account(code), refine(code, [b"foobar", b"a"]))
    expected = (97).to_bytes(8, "little") + (0xAF63DC4C8601EC8C).to_bytes(8, "little")
    assert out.storage_changes == {b"result": expected}


@pytest.mark.parametrize("module", ["counter", "kvstore", "compute"])
def test_module_writes_its_blob(module: str) -> None:
    mod = {"counter": counter, "kvstore": kvstore, "compute": compute}[module]
    done = subprocess.run(
        [sys.executable, "-m", f"jamhost.examples.{module}"], capture_output=True, check=True
    )
    assert done.stdout == mod.build()
    # GP §9.2: E(↕m, p); the metadata names the example
    assert done.stdout[1 : 1 + done.stdout[0]] == f"jamhost-example:{module}".encode()
