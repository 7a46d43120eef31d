"""The erasure units a package is charged (tenancy/erasure_gas.py; docs/security.md, "Code a
tenant runs"), in the hourly gas budget and the fair scheduler's claim, on the memory store.

The expected numbers are written from the documented rate: 1,000,000 units per exported
segment and 25,000 per bundle piece of 684 octets after the first."""

from __future__ import annotations

import pytest
from tests.scheduler_state import account_vtime
from tests.store_scopes import EVERYTHING

from jamhost.app import packages, services
from jamhost.app.accounts import create_account
from jamhost.app.pipeline import process_next
from jamhost.app.runtime import Runtime, build_runtime
from jamhost.config import JamSettings
from jamhost.domain.model import QuotaOverride
from jamhost.domain.refusals import GasQuotaExceeded
from jamhost.domain.types import (
    ExtrinsicSpec,
    ImportSpec,
    RefineContext,
    WorkItem,
    WorkPackage,
    WorkReport,
)
from jamhost.engine.constants import HostCall
from jamhost.examples._asm import script
from jamhost.tenancy.erasure_gas import erasure_gas
from jamhost.tenancy.principal import ADMIN, Principal

OP = Principal(kind="operator", token_hash=bytes(32))
PER_EXPORT = 1_000_000
PER_PIECE = 25_000
REFINE, ACCUMULATE = 50_000, 1_000


def runtime() -> Runtime:
    return build_runtime(JamSettings(store="memory", rate_limit_per_minute=0,
                                     service_rate_limit_per_minute=0))


def exporter(rt: Runtime, owner: str, k: int) -> int:
    code = script([(HostCall.EXPORT, {7: bytes([i + 1]) * 8, 8: 8}) for i in range(k)])
    return services.create_service(rt, ADMIN, code=code, owner=owner).service_id


def package(service_id: int, k: int, tag: bytes = b"") -> dict:
    return {"service_id": service_id, "items": [
        {"payload": "0x" + tag.hex(), "refine_gas_limit": REFINE,
         "accumulate_gas_limit": ACCUMULATE, "export_count": k}]}


def gas_this_hour(rt: Runtime, service_id: int) -> int:
    return rt.store.get_service(service_id).usage.gas_used_in(rt.gas_window())


def test_each_export_is_charged_at_the_documented_rate() -> None:
    rt = runtime()
    alice = create_account(rt, ADMIN, "alice").id
    for k in (0, 1, 5):
        sid = exporter(rt, alice, k)
        rec, created = packages.submit_json(rt, OP, package(sid, k))
        assert created
        assert rec.refine_gas == REFINE + k * PER_EXPORT
        assert gas_this_hour(rt, sid) == REFINE + ACCUMULATE + k * PER_EXPORT


def test_bundle_pieces_after_the_first_are_charged() -> None:
    rt = runtime()
    alice = create_account(rt, ADMIN, "alice").id
    sid = exporter(rt, alice, 2)
    rec, _ = packages.submit_json(rt, OP, package(sid, 2, tag=bytes(10_000)))
    pieces = -(-len(rec.body) // 684)  # ⌈|E(p)| / W_E⌉: the payload is in E(p)
    assert pieces == 15
    assert rec.refine_gas == REFINE + 2 * PER_EXPORT + (pieces - 1) * PER_PIECE


def test_extrinsics_and_imports_count_in_the_bundle() -> None:
    """|b| is bounded by |E(p)|, the declared extrinsic lengths and 4,489 octets per import
    (W_G and a justification of at most 12 hashes with its length prefix)."""
    item = WorkItem(70_000, bytes(32), REFINE, ACCUMULATE, 3, b"",
                    import_segments=(ImportSpec(bytes(32), 0), ImportSpec(bytes(32), 1)),
                    extrinsic=(ExtrinsicSpec(bytes(32), 10_000),))
    context = RefineContext(bytes(32), bytes(32), bytes(32), bytes(32), 0)
    pkg = WorkPackage(5, bytes(32), context, b"", b"", (item,))
    pieces = -(-(len(pkg.encode()) + 10_000 + 2 * 4_489) // 684)
    assert erasure_gas(pkg) == 3 * PER_EXPORT + (pieces - 1) * PER_PIECE


def test_a_package_over_the_budget_only_with_its_exports_is_refused() -> None:
    rt = runtime()
    alice = create_account(rt, ADMIN, "alice").id
    sid = exporter(rt, alice, 3)
    budget = REFINE + ACCUMULATE + 3 * PER_EXPORT
    services.set_quota(rt, OP, sid, QuotaOverride(gas_per_hour=budget - 1))
    with pytest.raises(GasQuotaExceeded):
        packages.submit_json(rt, OP, package(sid, 3))
    assert gas_this_hour(rt, sid) == 0
    services.set_quota(rt, OP, sid, QuotaOverride(gas_per_hour=budget))
    rec, _ = packages.submit_json(rt, OP, package(sid, 3))
    assert gas_this_hour(rt, sid) == REFINE + ACCUMULATE + 3 * PER_EXPORT


def test_the_scheduler_keeps_the_erasure_units_after_the_refund() -> None:
    """The claim costs the declared gas plus the units; finishing gives back only the
    refine gas refine did not use, so the account's virtual time moves by what refine used,
    the accumulate gas declared and the erasure units."""
    rt = runtime()
    alice = create_account(rt, ADMIN, "alice").id
    sid = exporter(rt, alice, 4)
    rec, _ = packages.submit_json(rt, OP, package(sid, 4))
    start = account_vtime(rt.store, alice)
    assert process_next(rt, "w") == rec.id
    done = rt.store.get_package(rec.id, EVERYTHING)
    assert done.status == "applied", done.failure_reason
    report = rt.store.get_report(rec.id, EVERYTHING)
    assert report is not None
    used = WorkReport.decode(report.body).results[0].refine_load.gas_used
    assert 0 < used < REFINE
    assert account_vtime(rt.store, alice) - start == used + ACCUMULATE + 4 * PER_EXPORT
