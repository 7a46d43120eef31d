"""`new` and `eject` (GP 0.7.2 §B.8, host calls 18 and 21) on the real engine, end to end:
a service of tenant A, assembled with the project's assembler and deployed over HTTP to a real
`jamhost serve` (SQLite and PostgreSQL), creates a child service, pays it with a transfer and
tries to eject it; the same calls aimed at tenant B's service answer as for a missing one.

The child is made with code hash E_32(parent) and code length 0: exactly the code hash eject
requires (GP 0.7.2 Ω_J), and a hash with no preimage, so the child has no code and a transfer
to it is delivered as a balance credit only (docs/engine.md, "the credit is all that
happens"; its accumulation record says `no-code`).

The first test's eject of the fresh child answers HUH: it passed the WHO check (the child is
the caller's and its code hash is E_32(caller)) but Ω_J also needs its one lookup request to
be [x, y] with y < t - D (D = 19 200 slots, 32 hours of jamhost's wall-clock timeslot), while
eject of B's service answers WHO exactly as a missing id does. The second test builds that
request for real and ejects after D, on a server whose wall clock runs later.
"""

from __future__ import annotations

from typing import Any

from jamhost.engine.constants import HostCall
from jamhost.examples._asm import script
from tests.conftest import make_tenant
from tests.integration.test_accumulate_tenancy import (
    HUH,
    MEMO,
    MISSING,
    NO_LIMITS,
    OK,
    WHO,
    accumulation,
    add_service,
    answers,
    blake,
    run_package,
    service,
    set_code,
)

CASH = 2**64 - 7
LIMIT = 3  # runtime.jam.max_services_per_account for this server


def e32(service_id: int) -> bytes:
    """E_32(s): the code hash that lets service s eject the holder (GP 0.7.2 Ω_J)."""
    return service_id.to_bytes(32, "little")


def make_child(parent: int) -> bytes:
    # new: ω7 = &code hash, ω8 = l, ω9 = a_g, ω10 = a_m, ω11 = gratis, ω12 = wanted id
    return script([(HostCall.NEW, {7: e32(parent), 8: 0, 9: 0, 10: 0, 11: 0, 12: 0})])


def listed(srv: Any, token: str) -> set[int]:
    with srv.client(token) as c:
        r = c.get("/jam/services", params={"limit": 100})
        assert r.status_code == 200, r.text
        return {int(s["service_id"]) for s in r.json()["items"]}


def test_new_transfer_and_eject_stay_in_the_callers_account(server_factory, store_keys):
    srv = server_factory(**store_keys, **NO_LIMITS, max_services_per_account=LIMIT)
    alice = make_tenant(srv, "alice", code=script([]))
    bob = make_tenant(srv, "bob", code=script([]))
    parent = alice.service_id
    set_code(srv, alice, parent, make_child(parent))
    parent_before = service(srv, parent)["balance"]

    # 1. new: the child exists, belongs to Alice, and is visible to her only.
    acc = accumulation(srv, alice, run_package(srv, alice, parent))
    assert acc["status"] == "halt", acc
    (new_answer, _), = answers(acc)
    assert acc["created_services"] == [new_answer]
    child = new_answer
    assert child >= 2**16 and child not in (parent, bob.service_id)  # a public id (GP S)
    assert listed(srv, alice.token) == {parent, child}
    assert child not in listed(srv, bob.token)
    with srv.client(alice.token) as c:
        mine = c.get(f"/jam/services/{child}")
    assert mine.status_code == 200, mine.text
    assert mine.json()["code_hash"] == "0x" + e32(parent).hex()
    with srv.client(bob.token) as c:
        theirs = c.get(f"/jam/services/{child}")
        nothing = c.get(f"/jam/services/{MISSING}")
    assert theirs.status_code == nothing.status_code and theirs.status_code in (403, 404)
    assert theirs.json() == nothing.json()
    # Ω_N: the caller pays the child's threshold a_t = B_S + B_I·2 + B_L·81 (GP 0.7.2 §9)
    child_balance = service(srv, child)["balance"]
    assert child_balance == 100 + 10 * 2 + 81
    assert service(srv, parent)["balance"] == parent_before - child_balance

    # 2. The child counts in Alice's limit: at 3 services, new answers CASH and the API
    # refuses a new service.
    third = add_service(srv, alice, script([]))
    assert listed(srv, alice.token) == {parent, child, third}
    at_limit = accumulation(srv, alice, run_package(srv, alice, parent, b"\x02"))
    assert [a[0] for a in answers(at_limit)] == [CASH]
    assert at_limit["created_services"] == []
    with srv.client(alice.token) as c:
        refused = c.post("/jam/services", json={"code": "0x" + script([]).hex()})
    assert refused.status_code == 403, refused.text
    assert listed(srv, alice.token) == {parent, child, third}
    with srv.client(bob.token) as c:  # Bob's own limit is untouched by Alice's services
        assert c.post("/jam/services", json={}).status_code == 201

    # 3. transfer to the child (delivered as its input: a credit, it has no code), then
    # eject it, eject Bob's service and eject a missing id.
    # Bob's service takes E_32(Alice's parent) as its code hash, so that only the tenancy
    # boundary (not Ω_J's code-hash check) stands between Alice's eject and it.
    set_code(srv, bob, bob.service_id, script([(HostCall.UPGRADE, {7: e32(parent), 8: 0, 9: 0})]))
    run_package(srv, bob, bob.service_id)
    bob_before = service(srv, bob.service_id)
    assert bob_before["code_hash"] == "0x" + e32(parent).hex()
    set_code(srv, alice, parent, script([
        (HostCall.TRANSFER, {7: child, 8: 1000, 9: 0, 10: MEMO}),
        (HostCall.EJECT, {7: child, 8: e32(parent)}),
        (HostCall.EJECT, {7: bob.service_id, 8: e32(parent)}),
        (HostCall.EJECT, {7: MISSING, 8: e32(parent)}),
    ]))
    acc = accumulation(srv, alice, run_package(srv, alice, parent, b"\x03"))
    transfer, eject_child, eject_bob, eject_missing = answers(acc)
    assert transfer[0] == OK
    assert eject_child[0] == HUH  # reachable and E_32(parent), but its request is [] (Ω_J)
    assert eject_bob[0] == eject_missing[0] == WHO
    assert acc["ejected_services"] == []
    assert [(t["source"], t["destination"], t["amount"]) for t in acc["transfers"]] == [
        (parent, child, 1000)]
    assert service(srv, child)["balance"] == child_balance + 1000
    with srv.client(alice.token) as c:
        runs = c.get(f"/jam/services/{child}/accumulations").json()["items"]
    assert len(runs) == 1 and runs[0]["package_id"] is None and runs[0]["inputs"] == 1
    assert runs[0]["status"] == "no-code"  # code hash E_32(parent): nothing to run
    assert [x["source"] for x in runs[0]["transfers_received"]] == [parent]
    # Bob's service: unchanged, never run by Alice's package.
    assert service(srv, bob.service_id) == bob_before
    with srv.client(bob.token) as c:  # its own package's run only
        runs = c.get(f"/jam/services/{bob.service_id}/accumulations").json()["items"]
    assert len(runs) == 1 and runs[0]["package_id"] is not None
    assert listed(srv, alice.token) == {parent, child, third}


BLOB = b"a blob the child solicits, is given, and forgets"
#: D (19 200 slots of 6 s) and a day more: the wall clock the restarted server runs at.
LATER_SECONDS = (19_200 + 14_400) * 6
CLOCK_SHIFT = """import os, time
_shift = float(os.environ["E2E_CLOCK_SHIFT_SECONDS"])
_time = time.time
time.time = lambda: _time() + _shift  # the server's wall clock, moved past D
"""


def test_eject_after_the_expunge_period_removes_the_child(server_factory, store_keys,
                                                          tmp_path):
    """The OK path of eject (GP 0.7.2 Ω_J), end to end. The child solicits a blob and provides
    it to itself (request [x]), then forgets it ([x, t]), drops its code request and upgrades
    its code hash to E_32(parent): its one request is [x, t]. Eject needs t < t' - D, so the
    same store is then served by a server whose wall clock runs D slots later (a
    sitecustomize on PYTHONPATH shifts time.time in that process only; nothing of jamhost is
    patched): the parent's eject answers OK, the child is gone for Alice as a missing
    service is, its balance went to the parent, and Alice's service count dropped."""
    keys = {**store_keys, **NO_LIMITS, "max_services_per_account": LIMIT}
    srv = server_factory(**keys)
    alice = make_tenant(srv, "alice", code=script([]))
    parent = alice.service_id
    h, n = blake(BLOB), len(BLOB)
    child_code = script([
        (HostCall.SOLICIT, {7: h, 8: n}),
        (HostCall.PROVIDE, {7: 2**64 - 1, 8: BLOB, 9: n}),  # to itself
    ])
    set_code(srv, alice, parent, script([
        (HostCall.NEW, {7: blake(child_code), 8: len(child_code), 9: 0, 10: 0, 11: 0, 12: 0}),
    ]))
    (new_answer, _), = answers(accumulation(srv, alice, run_package(srv, alice, parent)))
    child = new_answer
    set_code(srv, alice, child, child_code)  # the code the child's request names
    with srv.op() as op:  # room for the solicited blob's footprint (a_t grows with it)
        assert op.post(f"/jam/services/{child}/credit",
                       json={"amount": 100_000}).status_code == 200
    first = accumulation(srv, alice, run_package(srv, alice, child))
    assert [a[0] for a in answers(first)] == [OK, OK], first
    set_code(srv, alice, child, script([
        (HostCall.FORGET, {7: h, 8: n}),  # [x] -> [x, t]
        (HostCall.FORGET, {7: blake(child_code), 8: len(child_code)}),  # [] -> dropped
        (HostCall.UPGRADE, {7: e32(parent), 8: 0, 9: 0}),
    ]))
    second = accumulation(srv, alice, run_package(srv, alice, child, b"\x02"))
    assert [a[0] for a in answers(second)] == [OK, OK, OK], second
    eject = script([(HostCall.EJECT, {7: child, 8: h})])
    set_code(srv, alice, parent, eject)
    too_soon = accumulation(srv, alice, run_package(srv, alice, parent, b"\x02"))
    assert [a[0] for a in answers(too_soon)] == [HUH]  # t is not yet before t' - D
    child_balance = service(srv, child)["balance"]
    srv.stop()

    site = tmp_path / "clock"
    site.mkdir()
    (site / "sitecustomize.py").write_text(CLOCK_SHIFT)
    later = server_factory(**keys, extra_env={
        "PYTHONPATH": str(site), "E2E_CLOCK_SHIFT_SECONDS": str(LATER_SECONDS)})
    parent_before = service(later, parent)["balance"]
    acc = accumulation(later, alice, run_package(later, alice, parent, b"\x03"))
    assert [a[0] for a in answers(acc)] == [OK]
    assert acc["ejected_services"] == [child]
    assert listed(later, alice.token) == {parent}
    with later.client(alice.token) as c:
        gone = c.get(f"/jam/services/{child}")
        nothing = c.get(f"/jam/services/{MISSING}")
    assert gone.status_code == nothing.status_code and gone.status_code in (403, 404)
    assert gone.json() == nothing.json()
    assert service(later, parent)["balance"] == parent_before + child_balance
