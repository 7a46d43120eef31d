"""Pieces of the accumulation STF: queue editing, Q, the output root, transfers between rounds."""

from __future__ import annotations

import hashlib

from jamhost.domain.types import (
    AvailabilitySpec,
    RefineContext,
    RefineLoad,
    WorkDigest,
    WorkExecResult,
    WorkReport,
)
from jamhost.engine import AccountState
from jamhost.engine.conformance.stf import (
    AccumulationState,
    Privileges,
    accumulatable,
    accumulate_block,
    edit_queue,
    output_root,
)
from jamhost.engine.keccak import keccak_256
from jamhost.examples._asm import script

A, B = 70_000, 70_001


def h(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=32).digest()


def report(package: bytes, service: int, code_hash: bytes, deps: tuple[bytes, ...] = ()):  # type: ignore[no-untyped-def]
    context = RefineContext(bytes(32), bytes(32), bytes(32), bytes(32), 0, tuple(sorted(deps)))
    digest = WorkDigest(service, code_hash, bytes(32), 50_000, WorkExecResult.ok(b""), RefineLoad())
    spec = AvailabilitySpec(package, 1, bytes(32), bytes(32), 0)
    return WorkReport(spec, context, 0, bytes(32), 0, b"", (), (digest,))


def test_keccak_known_answers() -> None:
    assert keccak_256(b"").hex().startswith("c5d2460186f7233c927e7db2dcc703c0")
    assert keccak_256(b"abc").hex().startswith("4e03657aea45a94fc7d47ba826c8d667")


def test_output_root() -> None:
    assert output_root([]) == bytes(32)
    one = (5).to_bytes(4, "little") + b"\x11" * 32
    assert output_root([(5, b"\x11" * 32)]) == keccak_256(one)
    two = (6).to_bytes(4, "little") + b"\x22" * 32
    expected = keccak_256(b"node" + one + two)  # N of two values of 36 octets
    assert output_root([(5, b"\x11" * 32), (6, b"\x22" * 32)]) == expected


def test_queue_editing_and_priority() -> None:
    code = b"\x01" * 32
    r1, r2, r3 = (report(bytes([i]) * 32, A, code) for i in (1, 2, 3))
    queue = [(r2, frozenset({r1.package_spec.hash})), (r3, frozenset({r2.package_spec.hash}))]
    assert accumulatable(queue) == []
    edited = edit_queue(queue, frozenset({r1.package_spec.hash}))
    assert edited[0] == (r2, frozenset())
    assert accumulatable(edited) == [r2, r3]


def test_transfer_reaches_the_receiver_in_the_next_round() -> None:
    memo = b"m" * 128
    sender = script([(20, {7: B, 8: 1_000, 9: 500, 10: memo})])
    receiver = script([(1, {7: ("scratch", 0), 8: 0, 9: 0, 10: 14}), (25, {7: b"R" * 32})])
    accounts = {
        A: AccountState.create(
            h(sender),
            10**6,
            preimages={h(sender): sender},
            requests={(h(sender), len(sender)): (0,)},
        ),
        B: AccountState.create(
            h(receiver),
            10**6,
            preimages={h(receiver): receiver},
            requests={(h(receiver), len(receiver)): (0,)},
        ),
    }
    state = AccumulationState(
        slot=1,
        entropy=bytes(32),
        ready_queue=[[] for _ in range(600)],
        accumulated=[frozenset() for _ in range(600)],
        privileges=Privileges(),
        accounts=accounts,
    )
    result = accumulate_block(state, 2, [report(b"\x09" * 32, A, h(sender))])
    post = result.state.accounts
    assert post[A].balance == 10**6 - 1_000
    assert post[B].balance == 10**6 + 1_000
    # B's two steps halt with 32 octets (ω7, ω8 per step), which GP takes as its yield over
    # the yielded b"R"*32: fetch saw E(↕i) of 1 + (1 + 152) octets, the yield answered OK
    assert result.outputs == [(B, (154).to_bytes(8, "little") + bytes(24))]
    assert result.statistics[A].count == 1 and result.statistics[B].count == 0
    assert result.statistics[B].gas_used > 0  # GP 0.7.2: G(s) > 0 counts
    assert post[A].last_accumulation == post[B].last_accumulation == 2
    assert result.state.accumulated[-1] == frozenset({b"\x09" * 32})
    assert accounts[B].balance == 10**6  # the prior state is not modified
