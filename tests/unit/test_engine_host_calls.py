"""The accumulate host calls of GP 0.7.2 §B.8 beyond storage and transfer: bless, assign,
designate (for a caller without privilege and for a holder), new, eject, upgrade, the request
states of query/solicit/forget/provide, and log's gas.

Expected values are written out from the GP text (ids from blake2b and the natural encoding
done here by hand), never computed by the engine.
"""

from __future__ import annotations

import hashlib

from jamhost.engine import AccountState, ProtocolConstants, accumulate
from jamhost.engine.privileges import Privileges, merge_privileges
from jamhost.examples._asm import script

SERVICE, OTHER = 70_000, 70_001
NONE, WHAT, WHO, FULL, CORE, CASH, LOW, HUH = (2**64 - k for k in (1, 2, 4, 5, 6, 7, 8, 9))
OK = 0
SELF = NONE
GAS = 100_000
ENTROPY = b"\x07" * 32
SLOT = 100
CORES = 341  # the full parameter set's C
QUEUE = 80  # Q
D = 19_200  # the full parameter set's expunge period


def h(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=32).digest()


def account(code: bytes, balance: int = 10**6, **kw) -> AccountState:  # type: ignore[no-untyped-def]
    return AccountState.create(
        h(code), balance, preimages={h(code): code}, requests={(h(code), len(code)): (0,)}, **kw
    )


def run(code: bytes, state: AccountState | None = None, **kw):  # type: ignore[no-untyped-def]
    return accumulate(
        SERVICE,
        state or account(code),
        [],
        [],
        timeslot=kw.pop("timeslot", SLOT),
        gas_limit=kw.pop("gas_limit", GAS),
        entropy=ENTROPY,
        **kw,
    )


def r7s(output: bytes | None) -> list[int]:
    assert output is not None
    return [int.from_bytes(output[i : i + 8], "little") for i in range(0, len(output), 16)]


def r8s(output: bytes | None) -> list[int]:
    assert output is not None
    return [int.from_bytes(output[i + 8 : i + 16], "little") for i in range(0, len(output), 16)]


def u32s(*values: int) -> bytes:
    return b"".join(v.to_bytes(4, "little") for v in values)


# -- bless, assign, designate ---------------------------------------------------------------


def test_bless_by_a_service_without_privilege_answers_ok_and_changes_nothing_outside() -> None:
    assigners = u32s(*([SERVICE] * CORES))
    always = u32s(SERVICE) + (5_000).to_bytes(8, "little")
    steps = [
        (14, {7: SERVICE, 8: assigners, 9: SERVICE, 10: SERVICE, 11: always, 12: 1}),
        (14, {7: 1 << 32, 8: assigners, 9: 0, 10: 0, 11: always, 12: 1}),  # m is no service id
        (14, {7: 0, 8: assigners, 9: 1 << 40, 10: 0, 11: always, 12: 0}),  # nor v
    ]
    out = run(script(steps))
    assert out.status == "halt"
    assert r7s(out.output) == [OK, WHO, WHO]
    # the invocation's own copy of χ changed (GP: x' state) ...
    assert out.privileges is not None
    assert (out.privileges.manager, out.privileges.delegator) == (SERVICE, SERVICE)
    assert out.privileges.always_acc == {SERVICE: 5_000}
    assert set(out.privileges.assigners) == {SERVICE}
    # ... but the block keeps only the holders' changes (GP 0.7.2 eq. accpar, R)
    prior = Privileges.nobody(CORES)
    merged = merge_privileges(prior, {SERVICE: out.privileges})
    assert merged == prior


def test_bless_panics_on_unreadable_assigners() -> None:
    out = run(script([(14, {7: 0, 8: 0, 9: 0, 10: 0, 11: 0, 12: 0})]))
    assert out.status == "panic"


def test_bless_by_the_manager_is_kept() -> None:
    assigners = u32s(*([OTHER] * CORES))
    steps = [(14, {7: OTHER, 8: assigners, 9: OTHER, 10: OTHER, 11: 0, 12: 0})]
    prior = Privileges(SERVICE, (SERVICE,) * CORES, SERVICE, SERVICE, {})
    out = run(script(steps), privileges=prior)
    assert r7s(out.output) == [OK]
    merged = merge_privileges(prior, {SERVICE: out.privileges})
    assert (merged.manager, merged.delegator, merged.registrar) == (OTHER, OTHER, OTHER)
    assert merged.assigners == (OTHER,) * CORES


def test_assign_answers() -> None:
    queue = b"\x11" * (32 * QUEUE)
    steps = [
        (15, {7: 0, 8: queue, 9: OTHER}),  # no privilege: HUH
        (15, {7: CORES, 8: queue, 9: OTHER}),  # no such core: CORE
    ]
    assert r7s(run(script(steps)).output) == [HUH, CORE]
    # core 1's assigner may hand its core on; WHO for an assignee that is no service id
    mine = Privileges(None, (None, SERVICE) + (None,) * (CORES - 2))
    out = run(script([(15, {7: 1, 8: queue, 9: 1 << 33}), (15, {7: 1, 8: queue, 9: OTHER})]),
              privileges=mine)  # fmt: skip
    assert r7s(out.output) == [WHO, OK]
    assert out.privileges.assigners[1] == OTHER
    assert run(script([(15, {7: 0, 8: 0, 9: OTHER})])).status == "panic"  # μ[o..+32Q] unreadable


def test_designate_answers() -> None:
    tiny = ProtocolConstants.tiny()  # V = 6: the keys fit in the script's constants
    keys = b"\x22" * (336 * tiny.validator_count)
    assert r7s(run(script([(16, {7: keys})]), constants=tiny).output) == [HUH]
    out = run(script([(16, {7: keys})]), privileges=Privileges(delegator=SERVICE), constants=tiny)
    assert r7s(out.output) == [OK]
    assert out.privileges.staging == (b"\x22" * 336,) * 6
    assert run(script([(16, {7: 0})]), constants=tiny).status == "panic"


# -- new ------------------------------------------------------------------------------------


def natural(x: int) -> bytes:
    """The GP natural encoding for x < 2^21 (enough for these ids and slots)."""
    if x < 1 << 7:
        return bytes([x])
    if x < 1 << 14:
        return bytes([0x80 | (x >> 8), x & 0xFF])
    return bytes([0xC0 | (x >> 16), x & 0xFF, (x >> 8) & 0xFF])


def first_new_id() -> int:
    """check((E_4^-1(H(E(s, η'_0, H_t))) mod (2^32 - 2^16 - 2^8)) + 2^16), nothing taken."""
    digest = h(natural(SERVICE) + ENTROPY + natural(SLOT))
    return int.from_bytes(digest[:4], "little") % (2**32 - 2**16 - 2**8) + 2**16


def test_new_creates_a_child_paid_by_the_caller() -> None:
    code_hash, length = b"\xc0" * 32, 1000
    steps = [
        (18, {7: code_hash, 8: length, 9: 7, 10: 8, 11: 0, 12: 0}),
        (18, {7: code_hash, 8: length, 9: 7, 10: 8, 11: 0, 12: 0}),
        (5, {7: first_new_id(), 8: ("scratch", 0), 9: 0, 10: 200}),  # info sees the child
    ]
    code = script(steps)
    state = account(code)
    out = run(code, state)
    first = first_new_id()
    assert r7s(out.output) == [first, first + 42, 96]
    threshold = 100 + 10 * 2 + 1 * (81 + length)  # B_S + B_I·2 + B_L·(81 + l)
    assert out.account.balance == state.balance - 2 * threshold
    assert [c.service_id for c in out.created] == [first, first + 42]
    child = out.created[0].account
    assert (child.code_hash, child.balance, child.min_item_gas, child.min_memo_gas) == (
        code_hash, threshold, 7, 8,
    )  # fmt: skip
    assert (child.parent, child.created, child.items, child.octets) == (SERVICE, SLOT, 2, 1081)
    assert dict(child.requests) == {(code_hash, length): ()}
    assert dict(child.storage) == {} and dict(child.preimages) == {}


def test_new_skips_taken_ids_and_answers_huh_cash_panic() -> None:
    first = first_new_id()
    code = script([(18, {7: b"\xc0" * 32, 8: 10, 9: 0, 10: 0, 11: 0, 12: 0})])
    # the first candidate is taken (by a service of any tenant): check moves on by one
    out = run(code, service_exists=lambda i: i == first)
    assert r7s(out.output) == [first + 1]
    gratis = script([(18, {7: b"\xc0" * 32, 8: 10, 9: 0, 10: 0, 11: 5, 12: 0})])
    assert r7s(run(gratis).output) == [HUH]  # only the manager may give gratis storage
    poor = account(code)
    poor.balance = poor.threshold + 50  # the child's threshold is 100 + 20 + 91
    out = run(code, poor)
    assert r7s(out.output) == [CASH] and out.created == []
    too_long = script([(18, {7: b"\xc0" * 32, 8: 1 << 32, 9: 0, 10: 0, 11: 0, 12: 0})])
    assert run(too_long).status == "panic"


def test_new_by_the_registrar_takes_a_small_id() -> None:
    steps = [
        (18, {7: b"\xc0" * 32, 8: 10, 9: 0, 10: 0, 11: 0, 12: 7}),
        (18, {7: b"\xc0" * 32, 8: 10, 9: 0, 10: 0, 11: 0, 12: 7}),  # now taken: FULL
    ]
    out = run(script(steps), privileges=Privileges(registrar=SERVICE))
    assert r7s(out.output) == [7, FULL]
    # without the privilege the wish is ignored
    out = run(script(steps[:1]))
    assert r7s(out.output) == [first_new_id()]


def test_new_is_rolled_back_by_a_panic() -> None:
    code = script([(18, {7: b"\xc0" * 32, 8: 10, 9: 0, 10: 0, 11: 0, 12: 0})], end="trap")
    state = account(code)
    out = run(code, state)
    assert out.status == "panic" and out.created == [] and out.account.balance == state.balance


# -- eject ----------------------------------------------------------------------------------


def child(requests: dict, code_hash: bytes | None = None, balance: int = 5_000) -> AccountState:  # type: ignore[type-arg]
    """A service that set its code hash to E_32(SERVICE): SERVICE may eject it."""
    return AccountState(
        code_hash=SERVICE.to_bytes(32, "little") if code_hash is None else code_hash,
        balance=balance,
        requests=requests,
        items=2 * len(requests),
        octets=sum(81 + z for (_h, z) in requests),
    )


def test_eject_of_an_own_child() -> None:
    old = b"\xaa" * 32
    kid = child({(old, 500): (10, 20)})
    steps = [(21, {7: OTHER, 8: old}), (5, {7: OTHER, 8: ("scratch", 0), 9: 0, 10: 8})]
    code = script(steps)
    state = account(code)
    out = run(code, state, other_account=lambda s: kid if s == OTHER else None,
              timeslot=20 + D + 1)  # fmt: skip
    assert r7s(out.output) == [OK, NONE]  # gone for the rest of the invocation
    assert out.ejected == [OTHER]
    assert out.account.balance == state.balance + 5_000


def test_eject_answers() -> None:
    old = b"\xaa" * 32
    slot = 20 + D + 1
    cases = {
        "recent": (child({(old, 500): (10, 20 + D)}), HUH),  # y < t - D does not hold
        "available": (child({(old, 500): (10,)}), HUH),
        "more items": (child({(old, 500): (10, 20), (b"\xbb" * 32, 7): ()}), HUH),
        "not ours": (child({(old, 500): (10, 20)}, code_hash=b"\x01" * 32), WHO),
    }
    for name, (kid, answer) in cases.items():
        out = run(script([(21, {7: OTHER, 8: old})]), timeslot=slot,
                  other_account=lambda s, kid=kid: kid if s == OTHER else None)  # fmt: skip
        assert r7s(out.output) == [answer], name
        assert out.ejected == [], name
    assert r7s(run(script([(21, {7: SERVICE, 8: old})])).output) == [WHO]  # not itself
    assert run(script([(21, {7: OTHER, 8: 0})])).status == "panic"


def test_eject_of_a_hidden_service_answers_as_for_a_missing_one() -> None:
    """Another tenant's service: `other_account` hides it, `service_exists` knows it."""
    old = b"\xaa" * 32
    kid = child({(old, 500): (10, 20)})
    code = script([(21, {7: OTHER, 8: old}), (0, {})])
    hidden = run(code, service_exists=lambda s: s == OTHER, timeslot=20 + D + 1)
    missing = run(code, timeslot=20 + D + 1)
    visible = run(code, other_account=lambda s: kid if s == OTHER else None, timeslot=20 + D + 1)
    assert r7s(hidden.output)[0] == r7s(missing.output)[0] == WHO
    assert r7s(visible.output)[0] == OK
    assert hidden.gas_used == missing.gas_used == visible.gas_used  # 10 each way


# -- upgrade, query/solicit/forget/provide --------------------------------------------------


def test_upgrade() -> None:
    out = run(script([(19, {7: b"\xdd" * 32, 8: 11, 9: 12})]))
    assert r7s(out.output) == [OK]
    assert (out.account.code_hash, out.account.min_item_gas, out.account.min_memo_gas) == (
        b"\xdd" * 32, 11, 12,
    )  # fmt: skip
    assert run(script([(19, {7: 0, 8: 0, 9: 0})])).status == "panic"


def test_query_each_request_state() -> None:
    states = {b"\x01" * 32: (), b"\x02" * 32: (5,), b"\x03" * 32: (5, 6), b"\x04" * 32: (5, 6, 7)}
    steps = [(22, {7: hh, 8: 9}) for hh in [*states, b"\x05" * 32]]
    code = script(steps)
    state = account(code)
    for hh, slots in states.items():
        state.requests[(hh, 9)] = slots
    out = run(code, state)
    assert r7s(out.output) == [0, 1 + (5 << 32), 2 + (5 << 32), 3 + (5 << 32), NONE]
    assert r8s(out.output) == [0, 0, 6, 6 + (7 << 32), 0]


def test_solicit_and_forget_each_request_state() -> None:
    t = 50_000
    old, recent = t - D - 1, t - D  # y < t - D holds for old only
    states = {
        b"\x01" * 32: ("solicit", (), HUH, ()),
        b"\x02" * 32: ("solicit", (5, old), OK, (5, old, t)),
        b"\x03" * 32: ("solicit", (5,), HUH, (5,)),
        b"\x04" * 32: ("forget", (), OK, None),
        b"\x05" * 32: ("forget", (5,), OK, (5, t)),
        b"\x06" * 32: ("forget", (5, old), OK, None),
        b"\x07" * 32: ("forget", (5, recent), HUH, (5, recent)),
        b"\x08" * 32: ("forget", (5, old, 9), OK, (9, t)),
        b"\x09" * 32: ("forget", (5, recent, 9), HUH, (5, recent, 9)),
    }
    steps = [(23 if op == "solicit" else 24, {7: hh, 8: 9}) for hh, (op, *_r) in states.items()]
    steps.append((23, {7: b"\x0a" * 32, 8: 9}))  # not requested yet: [] with a larger footprint
    code = script(steps)
    state = account(code)
    for hh, (_op, slots, _answer, _after) in states.items():
        state.requests[(hh, 9)] = slots
        state.preimages[hh] = b"x" * 9
    state.items += 2 * len(states)
    state.octets += len(states) * (81 + 9)
    out = run(code, state, timeslot=t)
    assert r7s(out.output) == [answer for (_o, _s, answer, _a) in states.values()] + [OK]
    for hh, (_op, _slots, _answer, after) in states.items():
        assert out.account.requests.get((hh, 9)) == after, hh
        assert (hh in out.account.preimages) == (after is not None), hh
    assert out.account.requests[(b"\x0a" * 32, 9)] == ()
    # two requests forgotten entirely, one solicited: a_i and a_o follow
    assert out.account.items == state.items - 2 * 2 + 2
    assert out.account.octets == state.octets - (81 + 9)


def test_solicit_is_full_when_the_deposit_is_not_covered() -> None:
    code = script([(23, {7: b"\x01" * 32, 8: 10**6})])
    state = account(code, balance=0)
    state.balance = state.threshold + 10  # a request of 10^6 octets needs 10^6 + 101 more
    assert r7s(run(code, state).output) == [FULL]


def test_provide_answers() -> None:
    blob = b"wanted"
    other = AccountState.create(b"\0" * 32, 0, requests={(h(blob), len(blob)): ()})
    steps = [
        (26, {7: OTHER + 1, 8: blob, 9: len(blob)}),  # no such service
        (26, {7: SELF, 8: blob, 9: len(blob)}),  # not requested by the caller
        (26, {7: OTHER, 8: blob, 9: len(blob)}),
        (26, {7: OTHER, 8: blob, 9: len(blob)}),  # already provided in this invocation
    ]
    out = run(script(steps), other_account=lambda s: other if s == OTHER else None)
    assert r7s(out.output) == [WHO, HUH, OK, HUH]
    assert out.provided == [(OTHER, blob)]


# -- log ------------------------------------------------------------------------------------


def test_log_costs_ten_gas_at_gp_0_7_2_and_nothing_at_0_7_0() -> None:
    message = b"hello"
    with_log = script([(100, {7: 2, 8: 0, 9: 0, 10: message, 11: len(message)})])
    with_gas = script([(0, {7: 2, 8: 0, 9: 0, 10: message, 11: len(message)})])  # same length
    logged = run(with_log)
    assert logged.logs and logged.logs[0].endswith("hello")
    assert logged.gas_used == run(with_gas).gas_used  # log and gas cost 10 each
    assert run(with_log, gp_version="0.7.0").gas_used == logged.gas_used - 10
    assert run(with_log, gas_limit=logged.gas_used - 1).status == "out-of-gas"


def test_new_id_matches_a_reference_implementation() -> None:
    """typeberry's generateNextServiceId known answer (s = 5, η'_0 = 0x04^32, t = 6)."""
    from jamhost.engine.lifecycle import first_candidate

    assert first_candidate(5, b"\x04" * 32, 6) == 2_596_254_713
