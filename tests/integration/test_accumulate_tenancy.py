"""Accumulate sees only its own tenant, delivers transfers between one account's services as
inputs, and keeps what each accumulation did (SPEC §4, docs/security.md "Accumulate
isolation"). Every service here is assembled with the project's assembler (`script`) and
submitted over HTTP to a real `jamhost serve` on SQLite and on PostgreSQL; packages are
processed by the operator's `POST /jam/process`, one at a time, so every step is in order.
"""

from __future__ import annotations

import hashlib
import struct
from typing import Any

from jamhost.engine.constants import HostCall
from jamhost.examples._asm import script
from tests.conftest import Server, Tenant, make_tenant, simple_package

NO_LIMITS = {"rate_limit_per_minute": 0, "service_rate_limit_per_minute": 0}
MISSING = 4_000_000_000  # a u32 service id nobody holds
NONE = 2**64 - 1
WHO, HUH, LOW, OK = 2**64 - 4, 2**64 - 9, 2**64 - 8, 0
MEMO = b"memo from a sibling".ljust(128, b"\0")
GAS = 200_000


def blake(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=32).digest()


def add_service(srv: Server, t: Tenant, code: bytes) -> int:
    with srv.client(t.token) as c:
        r = c.post("/jam/services", json={"code": "0x" + code.hex()})
        assert r.status_code == 201, r.text
        return int(r.json()["service_id"])


def set_code(srv: Server, t: Tenant, service_id: int, code: bytes) -> None:
    with srv.client(t.token) as c:
        r = c.put(f"/jam/services/{service_id}/code", content=code,
                  headers={"Content-Type": "application/octet-stream"})
        assert r.status_code == 200, r.text


def run_package(srv: Server, t: Tenant, service_id: int, payload: bytes = b"\x01",
                gas: int = GAS) -> str:
    """Submit one package and process the queue; the package's id (applied)."""
    with srv.client(t.token) as c:
        r = c.post("/jam/packages", json=simple_package(service_id, payload, gas))
        assert r.status_code == 201, r.text
        pid = r.json()["id"]
    with srv.op() as op:
        while op.post("/jam/process").status_code == 200:
            pass
    with srv.client(t.token) as c:
        pkg = c.get(f"/jam/packages/{pid}").json()
    assert pkg["status"] == "applied", pkg
    return str(pid)


def accumulation(srv: Server, t: Tenant, pid: str) -> dict[str, Any]:
    with srv.client(t.token) as c:
        r = c.get(f"/jam/packages/{pid}/accumulation")
        assert r.status_code == 200, r.text
        return dict(r.json())


def answers(acc: dict[str, Any]) -> list[tuple[int, int]]:
    """(ω7, ω8) after each step of a `script` service, from its halt output."""
    out = bytes.fromhex(acc["output"][2:])
    return [struct.unpack_from("<QQ", out, i) for i in range(0, len(out), 16)]


def service(srv: Server, sid: int) -> dict[str, Any]:
    with srv.op() as op:
        return dict(op.get(f"/jam/services/{sid}").json())


def reaching(target: int, key: bytes, code_hash: bytes) -> bytes:
    """Every accumulate host call that names a service (or acts on the caller's requests),
    aimed at `target`, each followed by `gas` so that the cost of each shows."""
    calls: list[tuple[int, dict[int, Any]]] = [
        (HostCall.INFO, {7: target, 8: ("scratch", 0), 9: 0, 10: 96}),
        (HostCall.READ, {7: target, 8: key, 9: len(key), 10: ("scratch", 128), 11: 0, 12: 64}),
        (HostCall.LOOKUP, {7: target, 8: code_hash, 9: ("scratch", 256), 10: 0, 11: 64}),
        (HostCall.TRANSFER, {7: target, 8: 5, 9: 0, 10: MEMO}),
        (HostCall.PROVIDE, {7: target, 8: b"a blob for them", 9: 15}),
        (HostCall.QUERY, {7: code_hash, 8: 64}),
        (HostCall.SOLICIT, {7: code_hash, 8: 64}),
        (HostCall.FORGET, {7: code_hash, 8: 64}),
    ]
    steps: list[tuple[int, dict[int, Any]]] = []
    for call in calls:
        steps += [call, (HostCall.GAS, {})]
    return script(steps)


def test_calls_at_another_tenants_service_answer_as_for_a_missing_one(server_factory,
                                                                       store_keys):
    srv = server_factory(**store_keys, **NO_LIMITS)
    # Bob's service keeps a secret under "k" and a solicited blob; Alice aims at it.
    bob_code = script([(HostCall.WRITE, {7: b"k", 8: 1, 9: b"bob's secret", 10: 12}),
                       (HostCall.SOLICIT, {7: blake(b"a blob for them"), 8: 15})])
    bob = make_tenant(srv, "bob", code=bob_code)
    run_package(srv, bob, bob.service_id)
    bob_before = service(srv, bob.service_id)
    with srv.op() as op:
        bob_storage = op.get(f"/jam/services/{bob.service_id}/storage").json()
    assert bob_storage["items"], "bob's secret is in place"

    alice = make_tenant(srv, "alice")
    at_bob = add_service(srv, alice, reaching(bob.service_id, b"k", blake(bob_code)))
    at_none = add_service(srv, alice, reaching(MISSING, b"k", blake(bob_code)))
    seen = accumulation(srv, alice, run_package(srv, alice, at_bob))
    missing = accumulation(srv, alice, run_package(srv, alice, at_none))

    assert seen["status"] == missing["status"] == "halt"
    got, want = answers(seen), answers(missing)
    # info NONE, read NONE, lookup NONE, transfer WHO, provide WHO: as for no service at all.
    assert [got[i][0] for i in (0, 2, 4, 6, 8)] == [NONE, NONE, NONE, WHO, WHO]
    assert got == want  # every answer, and the gas left after each call
    assert seen["gas_used"] == missing["gas_used"]
    assert seen["transfers"] == [] and seen["created_services"] == []

    # Bob's service was never run, credited nor queued anything by Alice.
    assert service(srv, bob.service_id) == bob_before
    with srv.client(bob.token) as c:
        runs = c.get(f"/jam/services/{bob.service_id}/accumulations").json()["items"]
    assert len(runs) == 1 and runs[0]["package_id"] is not None  # its own package only


def test_transfer_to_a_sibling_is_delivered_as_its_input(server_factory, store_keys):
    srv = server_factory(**store_keys, **NO_LIMITS)
    # The receiver's accumulate stores its first input (a tagged transfer: 153 octets).
    receiver_code = script([
        (HostCall.FETCH, {7: ("scratch", 0), 8: 0, 9: 256, 10: 15, 11: 0}),
        (HostCall.WRITE, {7: b"input", 8: 5, 9: ("scratch", 0), 10: 153}),
    ])
    alice = make_tenant(srv, "alice", code=receiver_code)
    receiver = alice.service_id
    sender = add_service(srv, alice, script([
        (HostCall.INFO, {7: receiver, 8: ("scratch", 0), 9: 0, 10: 96}),
        (HostCall.TRANSFER, {7: receiver, 8: 1000, 9: 50_000, 10: MEMO}),
    ]))
    before = {sid: service(srv, sid)["balance"] for sid in (sender, receiver)}

    pid = run_package(srv, alice, sender)
    acc = accumulation(srv, alice, pid)
    info, transfer = answers(acc)
    assert info[0] == 96 and transfer[0] == OK  # a sibling is visible and reachable
    assert acc["transfers"] == [{"source": sender, "destination": receiver, "amount": 1000,
                                 "memo": "0x" + MEMO.hex(), "gas": 50_000}]

    # Delivered as the receiver's input (GP 0.7.2 §C.2: 1 ++ E_X(t)) without a package of
    # its own, in the same processing step.
    expected = (b"\x01" + struct.pack("<II", sender, receiver) + struct.pack("<Q", 1000)
                + MEMO + struct.pack("<Q", 50_000))
    with srv.client(alice.token) as c:
        stored = c.get(f"/jam/services/{receiver}/storage/0x{b'input'.hex()}").json()
        runs = c.get(f"/jam/services/{receiver}/accumulations").json()["items"]
    assert stored["value"] == "0x" + expected.hex()
    assert len(runs) == 1 and runs[0]["package_id"] is None
    assert runs[0]["status"] == "halt" and runs[0]["inputs"] == 1
    assert runs[0]["gas_limit"] == 50_000
    assert [x["source"] for x in runs[0]["transfers_received"]] == [sender]
    assert service(srv, receiver)["balance"] == before[receiver] + 1000
    assert service(srv, sender)["balance"] == before[sender] - 1000
    with srv.op() as op:  # the receiver's receipt chain records the delivery
        chain = op.get("/jam/receipts", params={"service_id": receiver}).json()["items"]
    assert [r["entry_type"] for r in chain] == ["inputs"]


def test_inputs_queued_for_a_service_are_bounded(server_factory, store_keys):
    srv = server_factory(**store_keys, **NO_LIMITS, max_queued_transfers_per_service=3,
                         max_queued_transfer_gas_per_service=1_000)
    alice = make_tenant(srv, "alice", code=script([]))
    receiver = alice.service_id
    by_count = add_service(srv, alice, script(
        [(HostCall.TRANSFER, {7: receiver, 8: 1, 9: 0, 10: MEMO})] * 5))
    by_gas = add_service(srv, alice, script(
        [(HostCall.TRANSFER, {7: receiver, 8: 1, 9: 600, 10: MEMO})] * 2))
    # past the bound: LOW, as the GP answers a transfer that cannot be made
    assert [a[0] for a in answers(accumulation(srv, alice, run_package(srv, alice, by_count)))
            ] == [OK, OK, OK, LOW, LOW]
    assert [a[0] for a in answers(accumulation(srv, alice, run_package(srv, alice, by_gas)))
            ] == [OK, LOW]


def test_solicited_requests_count_in_the_storage_quota(server_factory, store_keys):
    srv = server_factory(**store_keys, **NO_LIMITS)
    many = script([(HostCall.SOLICIT, {7: blake(i.to_bytes(4, "little")), 8: 1000})
                   for i in range(40)])
    alice = make_tenant(srv, "alice", code=many)
    with srv.client(alice.token) as c:
        used = c.get(f"/jam/services/{alice.service_id}/quota").json()["usage"]["storage_bytes"]
    acc = accumulation(srv, alice, run_package(srv, alice, alice.service_id))
    assert [a[0] for a in answers(acc)] == [OK] * 40
    with srv.client(alice.token) as c:
        after = c.get(f"/jam/services/{alice.service_id}/quota").json()["usage"]["storage_bytes"]
    assert after == used + 40 * 81  # one lookup-request row: 81 octets (GP a_o)

    # With no room left, a package that would solicit more fails and keeps nothing.
    other = add_service(srv, alice, many)
    with srv.op() as op:
        assert op.put(f"/jam/services/{other}/quota",
                      json={"storage_bytes": len(many) + 81 * 10}).status_code == 200
    with srv.client(alice.token) as c:
        r = c.post("/jam/packages", json=simple_package(other, b"\x02", GAS))
        pid = r.json()["id"]
    with srv.op() as op:
        while op.post("/jam/process").status_code == 200:
            pass
    with srv.client(alice.token) as c:
        pkg = c.get(f"/jam/packages/{pid}").json()
        usage = c.get(f"/jam/services/{other}/quota").json()["usage"]["storage_bytes"]
    assert pkg["status"] == "failed" and "storage quota" in pkg["failure_reason"]
    assert usage == len(many)


def logging_service(message: bytes, end: str) -> bytes:
    return script([(HostCall.LOG, {7: 2, 8: b"acc", 9: 3, 10: message, 11: len(message)}),
                   (HostCall.GAS, {})], end=end)


def test_accumulation_shows_status_gas_and_logs_scoped_like_reports(server_factory,
                                                                    store_keys):
    srv = server_factory(**store_keys, **NO_LIMITS, max_log_bytes_per_invocation=4096)
    alice = make_tenant(srv, "alice", code=logging_service(b"hello from accumulate", "halt"))
    trapping = add_service(srv, alice, logging_service(b"about to trap", "trap"))
    bob = make_tenant(srv, "bob")
    ok_pid = run_package(srv, alice, alice.service_id)
    trap_pid = run_package(srv, alice, trapping)

    acc = accumulation(srv, alice, ok_pid)
    assert acc["status"] == "halt" and acc["package_id"] == ok_pid
    assert any("hello from accumulate" in line for line in acc["logs"])
    assert 0 < acc["gas_used"] <= acc["gas_limit"] == GAS
    assert acc["logs_dropped"] == 0
    trap = accumulation(srv, alice, trap_pid)
    assert trap["status"] == "panic" and trap["output"] is None
    assert any("about to trap" in line for line in trap["logs"])
    with srv.client(alice.token) as c:  # refine's logs on the report
        report = c.get(f"/jam/packages/{ok_pid}/report").json()
    assert any("hello from accumulate" in line for line in report["logs"])

    # Another tenant's package answers exactly as a missing one.
    with srv.client(bob.token) as c:
        theirs = c.get(f"/jam/packages/{ok_pid}/accumulation")
        nothing = c.get(f"/jam/packages/0x{'ab' * 32}/accumulation")
    assert theirs.status_code == nothing.status_code == 404
    assert theirs.json() == nothing.json()


def test_accumulation_logs_are_bounded(server_factory, tmp_path):
    srv = server_factory(store="sqlite", sqlite_path=str(tmp_path / "b.db"), **NO_LIMITS,
                         max_log_bytes_per_invocation=100)
    line = b"x" * 60
    alice = make_tenant(srv, "alice", code=script(
        [(HostCall.LOG, {7: 2, 8: 0, 9: 0, 10: line, 11: len(line)})] * 5))
    acc = accumulation(srv, alice, run_package(srv, alice, alice.service_id))
    assert sum(len(x.encode()) for x in acc["logs"]) <= 100
    assert len(acc["logs"]) + acc["logs_dropped"] == 5 and acc["logs_dropped"] >= 4
