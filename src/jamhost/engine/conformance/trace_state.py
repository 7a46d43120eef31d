"""The parts of a GP 0.7.2 state (appendix D serialization) that accumulation reads and
writes, decoded from and encoded to a trace's key/values.

Chapters: C(6) η, C(10) ρ, C(11) τ, C(12) χ, C(13) π (service statistics), C(14) ω (ready
queue), C(15) ξ (accumulated), C(16) θ (accumulation outputs); C(255, s) service info.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from jamhost.domain.codec import Decoder, encode_fixed, encode_natural
from jamhost.domain.types import WorkReport
from jamhost.engine.account import AccountState
from jamhost.engine.conformance.state_keys import (
    StateKeyed,
    chapter_key,
    decode_slots,
    preimage_key,
    request_key,
    service_info_key,
    storage_key,
)
from jamhost.engine.conformance.stf import Queued
from jamhost.engine.constants import ProtocolConstants
from jamhost.engine.privileges import Privileges

State = Mapping[bytes, bytes]


def _chapter(state: State, i: int) -> Decoder:
    return Decoder(state[chapter_key(i)])


def timeslot(state: State) -> int:
    """τ: C(11) = E_4(τ)."""
    return int.from_bytes(state[chapter_key(11)], "little")


def entropy(state: State) -> list[bytes]:
    """η: C(6) = E(η_0, η_1, η_2, η_3)."""
    raw = state[chapter_key(6)]
    return [raw[32 * i : 32 * i + 32] for i in range(4)]


def privileges(state: State, constants: ProtocolConstants) -> Privileges:
    """χ: C(12) = E(E_4(m, a, v, r), z) with z a dictionary E_4(s) -> E_8(g)."""
    d = _chapter(state, 12)
    manager = d.u32()
    assigners = tuple(d.u32() for _ in range(constants.core_count))
    delegator, registrar = d.u32(), d.u32()
    always = {}
    for _ in range(d.natural()):
        s = d.u32()
        always[s] = d.u64()
    d.finish()
    return Privileges(manager, assigners, delegator, registrar, always)


def encode_privileges(p: Privileges) -> bytes:
    out = bytearray()
    for value in (p.manager, *p.assigners, p.delegator, p.registrar):
        encode_fixed(out, value or 0, 4)
    encode_natural(out, len(p.always_acc))
    for s, g in sorted(p.always_acc.items()):
        encode_fixed(out, s, 4)
        encode_fixed(out, g, 8)
    return bytes(out)


def pending_reports(state: State, constants: ProtocolConstants) -> list[WorkReport | None]:
    """ρ: C(10) = E([¿(w, E_4(t))]): per core, the report waiting for availability."""
    d = _chapter(state, 10)
    out: list[WorkReport | None] = []
    for _ in range(constants.core_count):
        if d.u8():
            out.append(WorkReport.decode_from(d))
            d.u32()
        else:
            out.append(None)
    d.finish()
    return out


def ready_queue(state: State, constants: ProtocolConstants) -> list[list[Queued]]:
    """ω: C(14) = E([↕[(r, ↕d)]]) over the E slots."""
    d = _chapter(state, 14)
    slots: list[list[Queued]] = []
    for _ in range(constants.epoch_length):
        entries: list[Queued] = []
        for _ in range(d.natural()):
            report = WorkReport.decode_from(d)
            deps = frozenset(d.raw(32) for _ in range(d.natural()))
            entries.append((report, deps))
        slots.append(entries)
    d.finish()
    return slots


def encode_ready_queue(slots: list[list[Queued]]) -> bytes:
    out = bytearray()
    for entries in slots:
        encode_natural(out, len(entries))
        for report, deps in entries:
            report.encode_into(out)
            encode_natural(out, len(deps))
            for h in sorted(deps):
                out += h
    return bytes(out)


def accumulated(state: State, constants: ProtocolConstants) -> list[frozenset[bytes]]:
    """ξ: C(15) = E([↕[h]]) over the E slots."""
    d = _chapter(state, 15)
    slots = [
        frozenset(d.raw(32) for _ in range(d.natural())) for _ in range(constants.epoch_length)
    ]
    d.finish()
    return slots


def outputs(state: State) -> list[tuple[int, bytes]]:
    """θ: C(16) = E(↕[(E_4(s), h)])."""
    d = _chapter(state, 16)
    pairs = []
    for _ in range(d.natural()):
        s = d.u32()
        pairs.append((s, d.raw(32)))
    d.finish()
    return pairs


def accumulate_statistics(state: State, constants: ProtocolConstants) -> dict[int, tuple[int, int]]:
    """The accumulation part (N(s), G(s)) of π_S: C(13) = E(E_4(π_V, π_L), π_C, π_S), each
    π_C record 8 naturals, each π_S record (provision (2), refinement (2), imports,
    extrinsic count and size, exports, accumulation (count, gas)) as naturals."""
    d = _chapter(state, 13)
    d.raw(2 * constants.validator_count * 6 * 4)
    for _ in range(constants.core_count * 8):
        d.natural()
    out: dict[int, tuple[int, int]] = {}
    for _ in range(d.natural()):
        s = d.u32()
        fields = [d.natural() for _ in range(10)]
        if fields[8] or fields[9]:
            out[s] = (fields[8], fields[9])
    d.finish()
    return out


@dataclass(slots=True)
class ServiceInfo:
    """C(255, s) = E(0, a_c, E_8(a_b, a_g, a_m, a_o, a_f), E_4(a_i, a_r, a_a, a_p))."""

    code_hash: bytes
    balance: int
    min_item_gas: int
    min_memo_gas: int
    octets: int
    gratis: int
    items: int
    created: int
    last_accumulation: int
    parent: int


def decode_info(value: bytes) -> ServiceInfo:
    d = Decoder(value)
    if d.natural() != 0:
        raise d.fail("unknown service info version")
    code_hash = d.raw(32)
    b, g, m, o, f = (d.u64() for _ in range(5))
    i, r, a, p = (d.u32() for _ in range(4))
    d.finish()
    return ServiceInfo(code_hash, b, g, m, o, f, i, r, a, p)


def encode_info(account: AccountState) -> bytes:
    out = bytearray()
    encode_natural(out, 0)
    out += account.code_hash
    for value in (account.balance, account.min_item_gas, account.min_memo_gas, account.octets,
                  account.gratis):  # fmt: skip
        encode_fixed(out, value, 8)
    for value in (account.items, account.created, account.last_accumulation, account.parent):
        encode_fixed(out, value, 4)
    return bytes(out)


def account(state: State, service: int) -> AccountState:
    """δ[s] over the state: info decoded, storage/preimages/requests as state-keyed views."""
    info = decode_info(state[service_info_key(service)])
    return AccountState(
        code_hash=info.code_hash,
        balance=info.balance,
        min_item_gas=info.min_item_gas,
        min_memo_gas=info.min_memo_gas,
        storage=StateKeyed(state, lambda k: storage_key(service, k), bytes),
        preimages=StateKeyed(state, lambda h: preimage_key(service, h), bytes),
        requests=StateKeyed(state, lambda hl: request_key(service, hl[0], hl[1]), decode_slots),
        gratis=info.gratis,
        created=info.created,
        last_accumulation=info.last_accumulation,
        parent=info.parent,
        items=info.items,
        octets=info.octets,
    )
