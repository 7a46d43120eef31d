"""accumulate (Ψ_A, GP 0.7.2 §B.5): host calls, isolation, rollback and checkpoints."""

from __future__ import annotations

import hashlib

from jamhost.domain.types import WorkExecResult
from jamhost.engine import (
    AccountState,
    AccumulateOperand,
    DeferredTransfer,
    accumulate,
    integrate_provision,
)
from jamhost.engine.accumulate import accumulate_arguments, info_blob
from jamhost.examples._asm import script

SERVICE, OTHER = 70_000, 70_001
NONE, WHAT, WHO, FULL, CASH, LOW, HUH = (2**64 - k for k in (1, 2, 4, 5, 7, 8, 9))
OK = 0
SELF = NONE
GAS = 100_000


def h(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=32).digest()


def account(code: bytes, balance: int = 10**6, **kw) -> AccountState:  # type: ignore[no-untyped-def]
    return AccountState.create(
        h(code),
        balance,
        storage=kw.pop("storage", {}),
        preimages={h(code): code},
        requests={(h(code), len(code)): (0,)},
        **kw,
    )


def run(code: bytes, state: AccountState | None = None, **kw):  # type: ignore[no-untyped-def]
    return accumulate(
        SERVICE,
        state or account(code),
        kw.pop("operands", []),
        kw.pop("transfers", []),
        timeslot=kw.pop("timeslot", 100),
        gas_limit=kw.pop("gas_limit", GAS),
        entropy=b"\x07" * 32,
        **kw,
    )


def r7s(output: bytes | None) -> list[int]:
    assert output is not None
    return [int.from_bytes(output[i : i + 8], "little") for i in range(0, len(output), 16)]


def r8s(output: bytes | None) -> list[int]:
    assert output is not None
    return [int.from_bytes(output[i + 8 : i + 16], "little") for i in range(0, len(output), 16)]


def test_write_then_read_own_storage() -> None:
    code = script(
        [
            (4, {7: b"k", 8: 1, 9: b"value", 10: 5}),
            (4, {7: b"k", 8: 1, 9: b"v2", 10: 2}),
            (3, {7: SELF, 8: b"k", 9: 1, 10: ("scratch", 0), 11: 0, 12: 10}),
            (3, {7: SELF, 8: b"nope", 9: 4, 10: ("scratch", 0), 11: 0, 12: 10}),
        ]
    )
    state = account(code)
    out = run(code, state)
    assert out.status == "halt"
    assert r7s(out.output) == [NONE, 5, 2, NONE]
    assert out.storage_changes == {b"k": b"v2"}
    assert (out.account.items, out.account.octets) == (state.items + 1, state.octets + 34 + 1 + 2)
    assert dict(state.storage) == {}  # the caller's mapping is untouched


def test_write_is_full_below_threshold() -> None:
    code = script([(4, {7: b"k", 8: 1, 9: b"v" * 100, 10: 100})])
    state = account(code)
    state.balance = state.threshold + 134  # 10 per item + 34 + 1 + 100 octets = 145 needed
    out = run(code, state)
    assert r7s(out.output) == [FULL]
    assert out.storage_changes == {}
    state.balance += 11
    assert r7s(run(code, state).output) == [NONE]


def test_delete_with_zero_length() -> None:
    code = script([(4, {7: b"k", 8: 1, 9: 0, 10: 0})])
    state = account(code, storage={b"k": b"old"})
    out = run(code, state)
    assert r7s(out.output) == [3]
    assert out.storage_changes == {b"k": None}
    assert out.account.items == state.items - 1


def test_reading_another_service_goes_through_other_account() -> None:
    steps = [(3, {7: OTHER, 8: b"k", 9: 1, 10: ("scratch", 0), 11: 0, 12: 8})]
    code = script(steps)
    assert r7s(run(code).output) == [NONE]  # authz: other_account answers None
    other = AccountState.create(b"\0" * 32, 0, storage={b"k": b"theirs"})
    out = run(code, other_account=lambda s: other if s == OTHER else None)
    assert r7s(out.output) == [6]


def test_panic_rolls_back_and_checkpoint_keeps() -> None:
    write_a = (4, {7: b"a", 8: 1, 9: b"1", 10: 1})
    write_b = (4, {7: b"b", 8: 1, 9: b"2", 10: 1})
    assert run(script([write_a], end="trap")).storage_changes == {}
    out = run(script([write_a, (17, {}), write_b], end="trap"))
    assert out.status == "panic"
    assert out.storage_changes == {b"a": b"1"}
    assert out.gas_used > 0


def test_out_of_gas_rolls_back() -> None:
    code = script([(4, {7: b"a", 8: 1, 9: b"1", 10: 1})] * 3)
    out = run(code, gas_limit=40)
    assert out.status == "out-of-gas"
    assert out.gas_used == 40
    assert out.storage_changes == {}


def test_transfer() -> None:
    memo = bytes(range(128))
    steps = [
        (20, {7: OTHER, 8: 1_000, 9: 50, 10: memo}),
        (20, {7: OTHER, 8: 1_000, 9: 5, 10: memo}),  # below the receiver's a_m
        (20, {7: OTHER + 5, 8: 1, 9: 50, 10: memo}),  # no such service
        (20, {7: OTHER, 8: 10**9, 9: 50, 10: memo}),  # would go below the threshold
        (0, {}),
    ]
    code = script(steps)
    other = AccountState.create(b"\0" * 32, 0, min_memo_gas=10)
    state = account(code)
    out = run(code, state, other_account=lambda s: other if s == OTHER else None)
    assert r7s(out.output)[:4] == [OK, LOW, WHO, CASH]
    assert out.transfers == [DeferredTransfer(SERVICE, OTHER, 1_000, memo, 50)]
    assert out.account.balance == state.balance - 1_000
    # gas: the ecalli instructions and loads cost 1 each; transfer 10 + 50, the rest 10
    plain = run(script([(20, {7: OTHER + 5, 8: 1, 9: 50, 10: memo})] * 4 + [(0, {})]))
    assert r7s(plain.output)[4] - r7s(out.output)[4] == 50


def test_incoming_transfers_credit_and_are_inputs() -> None:
    code = script([(1, {7: ("scratch", 0), 8: 0, 9: 0, 10: 14})])
    operand = AccumulateOperand(
        b"p" * 32, b"e" * 32, b"a" * 32, b"y" * 32, 10, b"", WorkExecResult.ok(b"out")
    )
    transfer = DeferredTransfer(OTHER, SERVICE, 77, bytes(128), 0)
    state = account(code)
    out = run(code, state, operands=[operand], transfers=[transfer])
    assert out.account.balance == state.balance + 77
    # E(↕i) = E(2) ++ (1 ++ E_X(t)) ++ (0 ++ E_U(o)); E_X = 4+4+8+128+8 octets
    e_u = b"p" * 32 + b"e" * 32 + b"a" * 32 + b"y" * 32 + b"\x0a" + b"\x00\x03out" + b"\x00"
    assert r7s(out.output) == [1 + (1 + 152) + (1 + len(e_u))]


def test_yield_and_32_octet_output() -> None:
    out = run(script([(25, {7: b"Y" * 32})]))
    assert out.yield_hash == b"Y" * 32
    # a halt output of exactly 32 octets is the yield (GP C): two steps give 32 octets
    out = run(script([(25, {7: b"Y" * 32}), (0, {})]))
    assert out.output is not None and len(out.output) == 32
    assert out.yield_hash == out.output


def test_solicit_query_forget_provide() -> None:
    blob = b"wanted"
    key = (h(blob), len(blob))
    steps = [
        (23, {7: h(blob), 8: len(blob)}),
        (23, {7: h(blob), 8: len(blob)}),  # already requested
        (22, {7: h(blob), 8: len(blob)}),
        (26, {7: SELF, 8: blob, 9: len(blob)}),
        (26, {7: SELF, 8: blob, 9: len(blob)}),  # provided twice
    ]
    code = script(steps)
    state = account(code)
    out = run(code, state)
    assert r7s(out.output) == [OK, HUH, 0, OK, HUH]
    assert out.request_changes == {key: ()}
    assert (out.account.items, out.account.octets) == (state.items + 2, state.octets + 81 + 6)
    assert out.provided == [(SERVICE, blob)]
    assert integrate_provision(out.account, blob, 100)
    assert out.account.requests[key] == (100,) and out.account.preimages[h(blob)] == blob
    # forget an available preimage: [x] -> [x, t]
    forget = script([(24, {7: h(blob), 8: len(blob)}), (22, {7: h(blob), 8: len(blob)})])
    state2 = account(forget)
    state2.requests[key] = (5,)
    out2 = run(forget, state2, timeslot=200)
    assert r7s(out2.output) == [OK, 2 + (5 << 32)]
    assert r8s(out2.output)[1] == 200


def test_info_and_lookup() -> None:
    steps = [
        (5, {7: SELF, 8: ("scratch", 0), 9: 0, 10: 200}),
        (5, {7: OTHER, 8: ("scratch", 0), 9: 0, 10: 200}),
        (2, {7: SELF, 8: h(b"stored"), 9: ("scratch", 0), 10: 0, 11: 0}),
        (2, {7: SELF, 8: h(b"absent"), 9: ("scratch", 0), 10: 0, 11: 0}),
    ]
    code = script(steps)
    state = account(code)
    state.preimages[h(b"stored")] = b"stored"
    out = run(code, state)
    assert r7s(out.output) == [96, NONE, 6, NONE]
    blob = info_blob(state)
    assert len(blob) == 96 and blob[:32] == h(code)
    assert int.from_bytes(blob[40:48], "little") == state.threshold


def test_no_code_runs_nothing() -> None:
    state = AccountState.create(b"\x01" * 32, 5)
    out = run(b"", state, transfers=[DeferredTransfer(OTHER, SERVICE, 3, bytes(128), 0)])
    assert (out.status, out.gas_used, out.account.balance) == (None, 0, 8)


def test_accumulate_arguments() -> None:
    assert accumulate_arguments(100, 70000, 2) == b"\x64" + bytes([0xC1, 0x70, 0x11]) + b"\x02"


def test_log_costs_ten_gas_and_nothing_under_0_7_0() -> None:
    one = script([(100, {7: 2, 8: 0, 9: 0, 10: b"m", 11: 1})])
    two = script([(100, {7: 2, 8: 0, 9: 0, 10: b"m", 11: 1})] * 2)
    # The second step adds 9 instructions (registers, ecalli, saving results) and the call.
    assert run(two).gas_used - run(one).gas_used == 9 + 10
    assert run(two, gp_version="0.7.0").gas_used - run(one, gp_version="0.7.0").gas_used == 9


def test_accumulate_logs_are_capped() -> None:
    code = script([(100, {7: 2, 8: 0, 9: 0, 10: b"y" * 50, 11: 50})] * 10)
    out = run(code, max_log_bytes=200)
    line = f"INFO#{SERVICE} accumulate " + "y" * 50
    assert out.logs == [line] * (200 // len(line))
    assert out.logs_dropped == 10 - 200 // len(line)
