"""The engine's handle on other accounts (`TenantAccounts`), the bound on kept logs, and the
delivery of queued transfers (crash-safe, idempotent), on the memory store: decisions that
run in milliseconds. The HTTP-level behaviour is in tests/integration/test_accumulate_tenancy.py.
"""

from __future__ import annotations

import pytest
from tests.store_scopes import EVERYTHING

import jamhost.app.pipeline as pipeline
from jamhost.app import packages, services
from jamhost.app.accounts import create_account
from jamhost.app.accumulation import accumulate_service
from jamhost.app.accumulation_record import bounded_logs
from jamhost.app.deliveries import deliver
from jamhost.app.pipeline import process_next
from jamhost.app.runtime import Runtime, build_runtime
from jamhost.app.tenant_accounts import TenantAccounts
from jamhost.config import JamSettings
from jamhost.domain.model import StateConflict
from jamhost.engine import DeferredTransfer
from jamhost.engine.constants import HostCall
from jamhost.examples._asm import script
from jamhost.tenancy.principal import ADMIN, Principal

OP = Principal(kind="operator", token_hash=bytes(32))
MEMO = bytes(128)


def runtime(**keys: object) -> Runtime:
    return build_runtime(JamSettings(store="memory", rate_limit_per_minute=0,
                                     service_rate_limit_per_minute=0, **keys))


def owned(rt: Runtime, owner: str, code: bytes | None = None) -> int:
    return services.create_service(rt, ADMIN, code=code or script([]), owner=owner).service_id


def test_only_services_of_the_same_account_are_reachable() -> None:
    rt = runtime()
    alice, bob = create_account(rt, ADMIN, "alice").id, create_account(rt, ADMIN, "bob").id
    me, sibling, theirs = owned(rt, alice), owned(rt, alice), owned(rt, bob)
    view = TenantAccounts(rt.account_view(rt.store.get_service(me)), rt.store.get_service(me),
                          rt.settings)
    assert view.account(sibling) is not None
    assert view.account(sibling).balance == rt.store.get_service(sibling).balance
    assert view.account(theirs) is None  # exactly as:
    assert view.account(4_000_000_000) is None
    assert view.account(me) is None  # the engine answers for the caller itself
    assert view.reaches(sibling) and not view.reaches(theirs)
    assert view.exists(theirs) and not view.exists(4_000_000_000)  # id allocation only

    open_rt = runtime(authz_enabled=False)
    a = owned(open_rt, create_account(open_rt, ADMIN, "a").id)
    b = owned(open_rt, create_account(open_rt, ADMIN, "b").id)
    assert TenantAccounts(open_rt.account_view(open_rt.store.get_service(a)),
                          open_rt.store.get_service(a),
                          open_rt.settings).account(b) is not None


def test_queue_bound_counts_queued_and_made_transfers() -> None:
    rt = runtime(max_queued_transfers_per_service=2, max_queued_transfer_gas_per_service=100)
    alice = create_account(rt, ADMIN, "alice").id
    me, dest = owned(rt, alice), owned(rt, alice)
    other = owned(rt, alice)
    view = TenantAccounts(rt.account_view(rt.store.get_service(me)), rt.store.get_service(me),
                          rt.settings)
    made: list[DeferredTransfer] = []
    assert view.admit_transfer(dest, 60, made)
    made += [DeferredTransfer(me, other, 1, MEMO, 99), DeferredTransfer(me, dest, 1, MEMO, 40)]
    assert view.admit_transfer(dest, 60, made)  # 2 transfers to dest, 100 gas
    assert not view.admit_transfer(dest, 61, made)  # 101 gas
    assert view.admit_transfer(other, 1, made)  # another destination's queue is its own
    made.append(DeferredTransfer(me, dest, 1, MEMO, 0))
    assert not view.admit_transfer(dest, 0, made)  # a third


def test_bounded_logs_keep_a_prefix_and_count_the_rest() -> None:
    assert bounded_logs(["ab", "cd", "ef"], 4) == (("ab", "cd"), 1)
    assert bounded_logs(["é" * 3], 5) == ((), 1)  # UTF-8 bytes, not characters
    assert bounded_logs([], 0) == ((), 0)


def test_delivery_left_by_a_dead_worker_runs_once(monkeypatch: pytest.MonkeyPatch) -> None:
    rt = runtime()
    alice = create_account(rt, ADMIN, "alice").id
    receiver = owned(rt, alice, script([(HostCall.WRITE, {7: b"got", 8: 3, 9: b"yes", 10: 3})]))
    sender = owned(rt, alice, script([(HostCall.TRANSFER, {7: receiver, 8: 7, 9: 5000,
                                                           10: MEMO})]))
    # The worker dies between applying the sender's package and its follow-up deliveries.
    monkeypatch.setattr(pipeline, "deliver_follow_ups", lambda _rt, _changes: 0)
    rec, _ = packages.submit_json(rt, OP, {"service_id": sender, "items": [
        {"payload": "0x01", "refine_gas_limit": 10_000, "accumulate_gas_limit": 100_000}]})
    assert process_next(rt, "w") == rec.id
    assert rt.store.get_package(rec.id, EVERYTHING).status == "applied"
    assert rt.store.queued_inputs(receiver) == (1, 5000)
    assert rt.store.storage_get(receiver, b"got") is None
    balance = rt.store.get_service(receiver).balance

    assert process_next(rt, "w2") is None  # idle: delivers what was left
    assert rt.store.storage_get(receiver, b"got") == b"yes"
    assert rt.store.queued_inputs(receiver) == (0, 0)
    assert rt.store.get_service(receiver).balance == balance + 7
    assert deliver(rt, receiver) is None  # nothing left: a second delivery is a no-op
    runs = rt.store.list_accumulations(receiver).items
    assert [(r.package_id, r.inputs, r.status) for r in runs] == [(None, 1, "halt")]


def _queued_transfer() -> tuple[Runtime, int]:
    """A runtime and a receiver service with one transfer of 3 queued to it by a sibling,
    as an apply of the sender would queue it."""
    rt = runtime()
    alice = create_account(rt, ADMIN, "alice").id
    receiver = owned(rt, alice)
    sender = rt.store.get_service(owned(rt, alice))
    from jamhost.domain.model import StateChanges, Transfer

    with rt.store._write() as conn:  # type: ignore[attr-defined]
        rt.store._apply(conn, sender.service_id, StateChanges(  # type: ignore[attr-defined]
            transfers_out=[Transfer(sender.service_id, receiver, 3, MEMO, 100)]),
            None, [], 0, None)
    return rt, receiver


def test_two_deliveries_computed_at_once_apply_once() -> None:
    rt, receiver = _queued_transfer()
    svc = rt.store.get_service(receiver)
    first = accumulate_service(rt, svc, [], entropy=bytes(32), package_id=None)
    second = accumulate_service(rt, svc, [], entropy=bytes(32), package_id=None)
    entries = (("inputs", bytes(32)),)
    rt.store.apply_accumulation(receiver, first[0], first[1], None, first[2], entries)
    with pytest.raises(StateConflict):
        rt.store.apply_accumulation(receiver, second[0], second[1], None, second[2], entries)
    assert rt.store.get_service(receiver).balance == svc.balance + 3


def test_a_delivery_reads_its_destination_once(monkeypatch: pytest.MonkeyPatch) -> None:
    rt, receiver = _queued_transfer()
    balance = rt.store.get_service(receiver).balance
    reads: list[int] = []
    get_service = rt.store.get_service

    def counted(service_id: int) -> object:
        reads.append(service_id)
        return get_service(service_id)

    monkeypatch.setattr(rt.store, "get_service", counted)
    assert deliver(rt, receiver) is not None
    assert reads.count(receiver) == 1  # service_view's read, handed to the accumulation
    monkeypatch.undo()
    assert rt.store.get_service(receiver).balance == balance + 3
