"""The real jam-bootstrap-service 0.1.27 (the code of the GP 0.7.2 accumulate vectors) makes
a service with `new` and pays it with a transfer, on jamhost's engine.

Its accumulate takes instructions from the refine output; instruction 0 is CreateService
(code hash, code length, a_g, a_m, endowment as E_8 each, a 128-octet memo, an optional
registration), which the service logs as it decodes it. The expected post-state is written
out from GP 0.7.2 (Ω_N, Ω_T and Δ+), not taken from the engine.
"""

from __future__ import annotations

import hashlib
import json
import struct

from tests.conftest import vectors_dir

from jamhost.domain.types import WorkReport
from jamhost.engine.conformance.stf import accumulate_block
from jamhost.engine.conformance.stf_json import state_from_json
from jamhost.engine.constants import ProtocolConstants

CASE = vectors_dir() / "stf-accumulate-0.7.2" / "tiny" / "transfer_for_ejected_service-1.json"
CODE_HASH, CODE_LEN, MIN_ITEM, MIN_MEMO, ENDOWMENT = b"\xab" * 32, 1000, 7, 8, 5000


def test_bootstrap_service_creates_and_endows_a_service() -> None:
    case = json.loads(CASE.read_text())
    report = case["input"]["reports"][0]
    instruction = (bytes([1, 0]) + CODE_HASH
                   + struct.pack("<QQQQ", CODE_LEN, MIN_ITEM, MIN_MEMO, ENDOWMENT)
                   + b"m" * 128 + b"\x00")  # fmt: skip
    report["results"][0]["result"] = {"ok": "0x" + instruction.hex()}
    state = state_from_json(case["pre_state"])
    slot = case["input"]["slot"]  # 43
    before = state.accounts[0].balance
    block = accumulate_block(state, slot, [WorkReport.from_json(report)],
                             constants=ProtocolConstants.tiny())  # fmt: skip

    (service, outcome), *later = block.outcomes
    assert service == 0 and outcome.status == "halt"
    assert any("Created service" in line for line in outcome.logs)
    # GP 0.7.2 I: the first id is check((E_4^-1(H(E(s, η'_0, t))) mod (2^32 - 2^16 - 2^8)) + 2^16)
    entropy = bytes.fromhex(case["pre_state"]["entropy"][2:])
    digest = hashlib.blake2b(b"\x00" + entropy + bytes([slot]), digest_size=32).digest()
    new_id = int.from_bytes(digest[:4], "little") % (2**32 - 2**16 - 2**8) + 2**16
    assert [c.service_id for c in outcome.created] == [new_id]

    threshold = 100 + 10 * 2 + (81 + CODE_LEN)  # the child's a_t, paid by the caller
    child = block.state.accounts[new_id]
    assert child.code_hash == CODE_HASH
    assert (child.min_item_gas, child.min_memo_gas, child.parent, child.created) == (
        MIN_ITEM, MIN_MEMO, 0, slot,
    )  # fmt: skip
    assert dict(child.requests) == {(CODE_HASH, CODE_LEN): ()}
    assert (child.items, child.octets) == (2, 81 + CODE_LEN)
    # the endowment is a deferred transfer, delivered in Δ+'s next round (the child has no
    # code, so Ψ_A only credits it)
    assert [t.dest for t in outcome.transfers] == [new_id]
    assert [s for s, _o in later] == [new_id]
    assert child.balance == threshold + ENDOWMENT
    assert block.state.accounts[0].balance == before - threshold - ENDOWMENT
