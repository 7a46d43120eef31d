"""The units a package is charged beyond GP gas (tenancy/tariff.py; docs/security.md, "Code a
tenant runs"): code loading, in the hourly gas budget and the fair scheduler's claim, on the
memory store. The erasure units are tests/unit/test_erasure_gas.py's.

The expected numbers are written from the documented rate: one unit per two octets of code
(rounded up) beyond 65,536 free octets, for each work item and for a named authorizer."""

from __future__ import annotations

from tests.scheduler_state import account_vtime
from tests.store_scopes import EVERYTHING

from jamhost.app import packages, services
from jamhost.app.accounts import create_account
from jamhost.app.pipeline import process_next
from jamhost.app.runtime import Runtime, build_runtime
from jamhost.config import JamSettings
from jamhost.domain.types import RefineContext, WorkItem, WorkPackage, WorkReport
from jamhost.engine.constants import HostCall
from jamhost.examples._asm import Program, script
from jamhost.tenancy.principal import ADMIN, Principal
from jamhost.tenancy.tariff import code_units, package_code_units, package_units, transfer_units

OP = Principal(kind="operator", token_hash=bytes(32))
REFINE, ACCUMULATE = 50_000, 1_000


def test_code_units_at_the_documented_rate() -> None:
    assert code_units(None) == 0
    assert code_units(0) == 0
    assert code_units(65_536) == 0
    assert code_units(65_537) == 1
    assert code_units(65_538) == 1
    assert code_units(65_539) == 2
    assert code_units(4 * 1024 * 1024) == 2_064_384


def _package(items: list[tuple[int, bytes]], auth: tuple[int, bytes] | None = None) \
        -> WorkPackage:
    context = RefineContext(bytes(32), bytes(32), bytes(32), bytes(32), 0)
    host, code_hash = auth if auth is not None else (0, bytes(32))
    return WorkPackage(host, code_hash, context, b"", b"",
                       tuple(WorkItem(s, h, REFINE, ACCUMULATE, 0, b"") for s, h in items))


def test_each_item_and_a_named_authorizer_are_charged() -> None:
    sizes = {(7, b"a" * 32): 100_000, (7, b"b" * 32): 1_000, (9, b"z" * 32): 70_000}

    def size(service: int, code_hash: bytes) -> int | None:
        return sizes.get((service, code_hash))

    two = _package([(7, b"a" * 32), (7, b"a" * 32), (7, b"b" * 32), (7, b"m" * 32)])
    # ⌈34,464 / 2⌉ for each item of the 100,000-octet code; the small and the missing: free
    assert package_code_units(two, size) == 2 * 17_232
    named = _package([(7, b"b" * 32)], auth=(9, b"z" * 32))
    assert package_code_units(named, size) == 2_232
    assert package_units(named, size) == 2_232  # one bundle piece, no exports: no erasure units


def big_code(octets: int) -> bytes:
    """Service code of about `octets` octets whose refine and accumulate halt at once (the
    rest is a run of one-byte fallthroughs never reached)."""
    prog = Program()
    prog.entry_points("refine", "acc")
    prog.block("acc")
    prog.halt()
    prog.block("refine")
    prog.halt()
    prog.asm.raw(bytes([1]) * octets, [1] * octets)
    return prog.service_code(b"big")


def runtime() -> Runtime:
    return build_runtime(JamSettings(store="memory", rate_limit_per_minute=0,
                                     service_rate_limit_per_minute=0))


def test_a_large_code_is_charged_at_submit_and_kept_after_the_refund() -> None:
    """The claim costs the declared gas plus ⌈(|code| − 65,536) / 2⌉; finishing gives back only
    the refine gas refine did not use, so the account's virtual time moves by what refine used,
    the accumulate gas declared and the code units."""
    rt = runtime()
    alice = create_account(rt, ADMIN, "alice").id
    code = big_code(300_000)
    sid = services.create_service(rt, ADMIN, code=code, owner=alice).service_id
    body = {"service_id": sid, "items": [{"payload": "0x", "refine_gas_limit": REFINE,
                                          "accumulate_gas_limit": ACCUMULATE}]}
    rec, created = packages.submit_json(rt, OP, body)
    assert created
    units = -(-(len(code) - 65_536) // 2)
    assert units > 100_000
    assert rec.refine_gas == REFINE + units
    start = account_vtime(rt.store, alice)
    assert process_next(rt, "w") == rec.id
    done = rt.store.get_package(rec.id, EVERYTHING)
    assert done.status == "applied", done.failure_reason
    report = rt.store.get_report(rec.id, EVERYTHING)
    assert report is not None
    used = WorkReport.decode(report.body).results[0].refine_load.gas_used
    assert 0 < used < REFINE
    assert account_vtime(rt.store, alice) - start == used + ACCUMULATE + units


def test_small_code_is_charged_nothing() -> None:
    rt = runtime()
    alice = create_account(rt, ADMIN, "alice").id
    code = big_code(1_000)
    sid = services.create_service(rt, ADMIN, code=code, owner=alice).service_id
    rec, _ = packages.submit_json(rt, OP, {"service_id": sid, "items": [
        {"payload": "0x", "refine_gas_limit": REFINE, "accumulate_gas_limit": ACCUMULATE}]})
    assert rec.refine_gas == REFINE


def test_transfer_units_at_the_documented_rate() -> None:
    assert transfer_units(0) == 0
    assert transfer_units(1) == 100
    assert transfer_units(4_000) == 400_000


def test_transfers_are_charged_after_the_run_in_usage_and_the_scheduler() -> None:
    """An accumulate making 3 transfers to another service of the same account: the apply
    adds 3 x 100 units to the sender's gas usage of the hour (on top of what the submit
    charged) and to what the scheduler keeps of the claim."""
    rt = build_runtime(JamSettings(store="memory", rate_limit_per_minute=0,
                                   service_rate_limit_per_minute=0))
    alice = create_account(rt, ADMIN, "alice").id
    dst = services.create_service(rt, ADMIN, code=script([]), owner=alice).service_id
    memo = bytes(128)
    code = script([(HostCall.TRANSFER, {7: dst, 8: 0, 9: 0, 10: memo}) for _ in range(3)])
    src = services.create_service(rt, ADMIN, code=code, owner=alice).service_id
    rec, _ = packages.submit_json(rt, OP, {"service_id": src, "items": [
        {"payload": "0x", "refine_gas_limit": REFINE, "accumulate_gas_limit": ACCUMULATE}]})
    window = rt.gas_window()
    assert rt.store.get_service(src).usage.gas_used_in(window) == REFINE + ACCUMULATE
    start = account_vtime(rt.store, alice)
    assert process_next(rt, "w") == rec.id
    assert rt.store.get_package(rec.id, EVERYTHING).status == "applied"
    record = rt.store.get_accumulation(rec.id, EVERYTHING)
    assert record is not None and len(record.transfers) == 3  # the three were made
    assert rt.store.get_service(src).usage.gas_used_in(window) == REFINE + ACCUMULATE + 300
    report = rt.store.get_report(rec.id, EVERYTHING)
    used = WorkReport.decode(report.body).results[0].refine_load.gas_used
    assert account_vtime(rt.store, alice) - start == used + ACCUMULATE + 300
