"""The pipeline persists what `new` and `eject` produce (AccumulateOutcome.created/ejected),
on every store (memory, SQLite, PostgreSQL), fed by a stub engine outcome: the host calls
themselves are the engine's (branch `conf`); these tests pin the pipeline's side.

- A created service belongs to the caller's owner, is visible to that owner only, counts in
  its services, and keeps its lookup request; the id counter skips ids `new` took.
- An eject removes a service of the same owner only, with its state.
- `can_create` is False at runtime.jam.max_services_per_account; `service_exists` is the
  store-wide check.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import jamhost.app.accumulation as accumulation_module
from jamhost.app import packages, services
from jamhost.app.accounts import create_account
from jamhost.app.pipeline import process_next
from jamhost.app.runtime import Runtime, build_runtime
from jamhost.app.tenant_accounts import TenantAccounts
from jamhost.config import JamSettings
from jamhost.domain.scopes import ServiceScope
from jamhost.engine import AccountState, AccumulateOutcome, DeferredTransfer
from jamhost.engine.accumulate import CreatedService
from jamhost.examples._asm import script
from jamhost.pvm.interface import Status
from jamhost.tenancy.principal import ADMIN, Principal
from tests.conftest import simple_package
from tests.store_scopes import EVERYTHING

CHILD = 1_234_567
CODE_HASH = bytes(range(32))
OP = Principal(kind="operator", token_hash=bytes(32))


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def rt(request: pytest.FixtureRequest, tmp_path: Path) -> Runtime:
    keys: dict[str, Any] = {"rate_limit_per_minute": 0, "service_rate_limit_per_minute": 0,
                            "max_services_per_account": 3}
    if request.param == "sqlite":
        keys.update(store="sqlite", sqlite_path=str(tmp_path / "p.db"))
    elif request.param == "postgres":
        keys.update(store="postgres", pg_dsn=request.getfixturevalue("fresh_pg"))
    else:
        keys.update(store="memory")
    runtime = build_runtime(JamSettings(**keys))
    if hasattr(runtime.store, "init_counters"):
        runtime.store.init_counters()
    request.addfinalizer(runtime.close)
    return runtime


def stub_engine(monkeypatch: pytest.MonkeyPatch, created: list[int], ejected: list[int],
                seen: dict[str, Any]) -> None:
    """Replace Ψ_A with one that reports `created` and `ejected`, and records what the
    pipeline's handles answer."""
    def fake(service_id: int, account: AccountState, operands, transfers=(), **kw: Any):
        seen["exists_child"] = kw["service_exists"](CHILD)
        seen["exists_self"] = kw["service_exists"](service_id)
        seen["can_create"] = kw["can_create"]()
        post = account.overlaid()
        made = [CreatedService(sid, AccountState(code_hash=CODE_HASH, balance=500,
                                                 min_item_gas=7, min_memo_gas=8,
                                                 requests={(CODE_HASH, 100): ()}))
                for sid in created]
        post.balance -= 500 * len(made)
        return AccumulateOutcome(post, [], None, 42, [], status=Status.HALT, output=b"",
                                 created=made, ejected=list(ejected))
    monkeypatch.setattr(accumulation_module, "accumulate", fake)


def tenant(rt: Runtime, name: str) -> tuple[str, int]:
    acc = create_account(rt, ADMIN, name)
    svc = services.create_service(rt, ADMIN, code=script([]), owner=acc.id)
    return acc.id, svc.service_id


def run(rt: Runtime, sid: int) -> bytes:
    n = rt.extras["runs"] = rt.extras.get("runs", 0) + 1
    rec, _ = packages.submit_json(rt, OP, simple_package(sid, n.to_bytes(4, "little"), 1000))
    assert process_next(rt, "w") == rec.id
    assert rt.store.get_package(rec.id, EVERYTHING).status == "applied"
    return rec.id


def test_created_service_belongs_to_the_callers_account(rt, monkeypatch):
    alice, sid = tenant(rt, "alice")
    bob, bob_sid = tenant(rt, "bob")
    seen: dict[str, Any] = {}
    stub_engine(monkeypatch, [CHILD], [], seen)
    balance = rt.store.get_service(sid).balance
    pid = run(rt, sid)
    assert seen == {"exists_child": False, "exists_self": True, "can_create": True}

    child = rt.store.get_service(CHILD)
    assert child is not None and child.owner == alice
    assert (child.code_hash, child.balance, child.min_item_gas, child.min_memo_gas) == \
        (CODE_HASH, 500, 7, 8)
    assert rt.store.lookup_request(CHILD, CODE_HASH, 100) == ()
    assert child.usage.storage_bytes == 81  # its lookup-request row
    assert rt.store.get_service(sid).balance == balance - 500
    assert CHILD in rt.store.owned_service_ids(alice)
    assert CHILD not in rt.store.owned_service_ids(bob)
    alice_scope = ServiceScope(ids=frozenset(rt.store.owned_service_ids(alice)))
    bob_scope = ServiceScope(ids=frozenset(rt.store.owned_service_ids(bob)))
    assert CHILD in [s.service_id for s in rt.store.list_services(alice_scope).items]
    assert CHILD not in [s.service_id for s in rt.store.list_services(bob_scope).items]
    acc = rt.store.get_accumulation(pid, alice_scope)
    assert acc is not None and acc.created == (CHILD,) and acc.gas_used == 42
    assert rt.store.get_accumulation(pid, bob_scope) is None
    assert bob_sid != CHILD

    # The id is now taken store-wide: the engine's next allocation skips it.
    seen.clear()
    stub_engine(monkeypatch, [], [], seen)
    run(rt, sid)
    assert seen["exists_child"] is True


def test_new_counts_in_the_account_limit(rt, monkeypatch):
    alice, sid = tenant(rt, "alice")
    seen: dict[str, Any] = {}
    stub_engine(monkeypatch, [], [], seen)
    run(rt, sid)
    assert seen["can_create"] is True  # 1 of 3
    services.create_service(rt, ADMIN, code=script([]), owner=alice)
    services.create_service(rt, ADMIN, code=script([]), owner=alice)
    run(rt, sid)
    assert seen["can_create"] is False  # 3 of 3: `new` must answer as when it cannot
    caller = rt.store.get_service(sid)
    view = TenantAccounts(rt.account_view(caller), caller, rt.settings)
    assert view.can_create() is False


def test_eject_removes_only_a_service_of_the_same_account(rt, monkeypatch):
    alice, sid = tenant(rt, "alice")
    _bob, bob_sid = tenant(rt, "bob")
    sibling = services.create_service(rt, ADMIN, code=script([]), owner=alice).service_id
    rt.store.add_delegate(sibling, bytes(32), "reader", "test")  # rows that reference it
    stub_engine(monkeypatch, [], [sibling, bob_sid], {})
    pid = run(rt, sid)
    assert rt.store.get_service(sibling) is None
    assert rt.store.get_service(bob_sid) is not None  # another tenant's: untouched
    assert sibling not in rt.store.owned_service_ids(alice)
    assert rt.store.list_delegates(sibling) == []
    acc = rt.store.get_accumulation(pid, EVERYTHING)
    assert acc.ejected == (sibling,)  # the pipeline drops ids outside the account


def test_the_id_counter_skips_ids_new_took(rt, monkeypatch):
    alice, sid = tenant(rt, "alice")
    nxt = sid + 1  # the next id POST /jam/services would hand out
    stub_engine(monkeypatch, [nxt], [], {})
    run(rt, sid)
    assert rt.store.get_service(nxt).owner == alice
    fresh = services.create_service(rt, ADMIN, code=script([]), owner=alice)
    assert fresh.service_id not in (sid, nxt)
    assert rt.store.get_service(nxt).owner == alice


def test_a_transfer_to_a_service_made_in_the_same_accumulation_is_delivered(rt, monkeypatch):
    _alice, sid = tenant(rt, "alice")
    memo = bytes(128)

    def fake(service_id: int, account: AccountState, operands, transfers=(), **kw: Any):
        post = account.overlaid()
        post.balance += sum(t.amount for t in transfers)  # as Ψ_A credits its inputs
        if not operands:  # the child's delivery: nothing else to do
            return AccumulateOutcome(post, [], None, 1, [], status=Status.HALT, output=b"")
        child = AccountState(code_hash=CODE_HASH, balance=500)
        post.balance -= 505
        return AccumulateOutcome(post, [DeferredTransfer(service_id, CHILD, 5, memo, 0)],
                                 None, 42, [], status=Status.HALT, output=b"",
                                 created=[CreatedService(CHILD, child)])
    monkeypatch.setattr(accumulation_module, "accumulate", fake)
    run(rt, sid)
    assert rt.store.get_service(CHILD).balance == 505  # made, then credited by its input
    assert rt.store.queued_inputs(CHILD) == (0, 0)
    runs = rt.store.list_accumulations(CHILD).items
    assert [(r.package_id, len(r.transfers_in)) for r in runs] == [(None, 1)]
