"""The real jam-bootstrap-service 0.1.27, taken from the GP 0.7.2 block traces' genesis state,
deployed over HTTP as a tenant's service on a real `jamhost serve` (SQLite and PostgreSQL),
creates a service with `new` when a package asks it to.

The code blob is the genesis preimage whose hash is the code hash in service 0's info
(state key 0xff ++ E_4(0), GP 0.7.2 appendix D). Its refine decodes the payload as a
sequence of instructions with no length prefix (an empty payload refines to the empty list;
a lone 0x00 panics, found by running its refine) and outputs them as a length-prefixed list,
which its accumulate executes. Instruction 0 is CreateService (code hash, code length, a_g,
a_m, endowment as E_8 each, a 128-octet memo, an optional registration): the form
tests/vectors/test_bootstrap_creates_a_service.py derives from the 0.7.2 vectors.
"""

from __future__ import annotations

import hashlib
import json
import struct

from tests.conftest import make_tenant, vectors_dir
from tests.integration.test_accumulate_tenancy import NO_LIMITS, accumulation, run_package

GENESIS = vectors_dir() / "traces" / "storage_light" / "genesis.json"
CODE_HASH, CODE_LEN, MIN_ITEM, MIN_MEMO, ENDOWMENT = b"\xab" * 32, 1000, 7, 8, 5000


def bootstrap_code() -> bytes:
    keyvals = json.loads(GENESIS.read_text())["state"]["keyvals"]
    values = {kv["key"]: bytes.fromhex(kv["value"][2:]) for kv in keyvals}
    info = values["0x" + "ff" + "00" * 30]  # service 0's info: version, then a_c
    code_hash = info[1:33]
    (blob,) = [v for v in values.values()
               if hashlib.blake2b(v, digest_size=32).digest() == code_hash]
    assert b"jam-bootstrap-service" in blob[:64]
    return blob


def test_real_bootstrap_service_creates_a_service(server_factory, store_keys):
    srv = server_factory(**store_keys, **NO_LIMITS, max_log_bytes_per_invocation=65536)
    alice = make_tenant(srv, "alice", code=bootstrap_code())
    bob = make_tenant(srv, "bob")
    boot = alice.service_id
    with srv.client(alice.token) as c:
        before = c.get(f"/jam/services/{boot}").json()["balance"]

    instruction = (bytes([0]) + CODE_HASH
                   + struct.pack("<QQQQ", CODE_LEN, MIN_ITEM, MIN_MEMO, ENDOWMENT)
                   + b"m" * 128 + b"\x00")  # fmt: skip
    pid = run_package(srv, alice, boot, instruction, gas=5_000_000)
    with srv.client(alice.token) as c:
        result = c.get(f"/jam/packages/{pid}/report").json()["report"]["results"][0]["result"]
    assert result == {"ok": "0x01" + instruction.hex()}  # refine: the list of one instruction
    acc = accumulation(srv, alice, pid)
    assert acc["status"] == "halt", acc
    assert any("Created service" in line for line in acc["logs"]), acc["logs"]
    (child,) = acc["created_services"]
    assert child >= 2**16 and child != boot

    with srv.client(alice.token) as c:
        listed = {int(s["service_id"]) for s in c.get(
            "/jam/services", params={"limit": 100}).json()["items"]}
        made = c.get(f"/jam/services/{child}").json()
    assert listed == {boot, child}
    assert made["code_hash"] == "0x" + CODE_HASH.hex()
    assert (made["min_item_gas"], made["min_memo_gas"]) == (MIN_ITEM, MIN_MEMO)
    # GP 0.7.2 Ω_N: the caller pays a_t = B_S + 2·B_I + B_L·(81 + l); the endowment follows
    # as a transfer, credited to the child (it has no code: the credit is all that happens).
    threshold = 100 + 10 * 2 + (81 + CODE_LEN)
    assert [(t["destination"], t["amount"]) for t in acc["transfers"]] == [(child, ENDOWMENT)]
    assert made["balance"] == threshold + ENDOWMENT
    with srv.client(alice.token) as c:
        assert c.get(f"/jam/services/{boot}").json()["balance"] == (
            before - threshold - ENDOWMENT)
    with srv.client(bob.token) as c:  # Alice's new service is not Bob's
        assert child not in {int(s["service_id"]) for s in c.get(
            "/jam/services", params={"limit": 100}).json()["items"]}
