"""`new` and `eject` (GP 0.7.2 §B.8, host calls 18 and 21) on the real engine, end to end:
a service of tenant A, assembled with the project's assembler and deployed over HTTP to a real
`jamhost serve` (SQLite and PostgreSQL), creates a child service, pays it with a transfer and
tries to eject it; the same calls aimed at tenant B's service answer as for a missing one.

The child is made with code hash E_32(parent) and code length 0: exactly the code hash eject
requires (GP 0.7.2 Ω_J), and a hash with no preimage, so the child has no code and a transfer
to it is delivered as a balance credit only (docs/engine.md, "the credit is all that
happens"; its accumulation record says `no-code`).

What cannot be shown over HTTP in a test: an eject that answers OK. Ω_J needs the child's one
lookup request to be [x, y] with y < t - D (D = 19 200 slots, 32 hours of jamhost's wall-clock
timeslot, GP 0.7.2 eq. Ω_J), i.e. a `forget` 32 hours earlier. Here eject of the fresh child
answers HUH (its request is [], it passed the WHO check: it is the caller's and its code hash
is E_32(caller)), while eject of B's service answers WHO exactly as a missing id does. The OK
path is covered at the engine level by the GP 0.7.2 eject vectors.
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
    bob_before = service(srv, bob.service_id)
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
    assert [x["source"] for x in runs[0]["transfers_received"]] == [parent]
    # Bob's service: unchanged, never run by Alice's package.
    assert service(srv, bob.service_id) == bob_before
    with srv.client(bob.token) as c:
        assert c.get(f"/jam/services/{bob.service_id}/accumulations").json()["items"] == []
    assert listed(srv, alice.token) == {parent, child, third}
