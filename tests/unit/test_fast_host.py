"""Host calls the native core answers itself (pvm/_fasthost.h, configured by hostio.Dispatch)
give exactly what the Python handlers give: the same program runs three ways, native with
the fast path, native with every call through Python (a handler without `begin`), and on the
Python engine, and registers, the written memory, gas, status, host-call count, log lines and
dropped count must agree. Each test also checks that the fast path did answer calls (fewer
calls reached Python), so a silently disabled fast path fails too."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from jamhost.engine.constants import NONE, WHAT, HostCall, ProtocolConstants
from jamhost.engine.fetch import FetchSource
from jamhost.engine.hostio import Dispatch, LogSink, PreimageCall, gas_call
from jamhost.examples._asm import SCRATCH, Program
from jamhost.pvm.engines import get_engine, native_available
from jamhost.pvm.host import InvocationResult, invoke_service_code
from jamhost.pvm.interface import PvmInstance, Status
from jamhost.pvm.standard import ZONE_SIZE

pytestmark = pytest.mark.skipif(not native_available(), reason="native core not built")

SELF = (1 << 64) - 1
OUT = 4096  # octets of the scratch area the program returns
Arg = int | bytes | tuple[str, int]


def program(steps: list[tuple[int, dict[int, Arg]]], repeat: int = 1) -> bytes:
    """Service code making the host calls `steps` (`repeat` times over), saving ω7/ω8 after
    each, then halting with output: the saved registers (16 octets per step) ++ SCRATCH's
    first OUT octets (where the calls write)."""
    prog = Program()
    resolved: list[tuple[int, dict[int, int]]] = []
    for call, regs in steps:
        values: dict[int, int] = {}
        for reg, value in regs.items():
            if isinstance(value, bytes):
                values[reg] = prog.const(value)
            elif isinstance(value, tuple):
                values[reg] = SCRATCH + value[1]
            else:
                values[reg] = value
        resolved.append((call, values))
    prog.const(b"\0")
    results = prog.heap
    assert results == 3 * ZONE_SIZE and 16 * len(steps) <= SCRATCH - results
    prog.entry_points("main", "main")
    prog.block("main")
    prog.op("load_imm", a=3, x=repeat)
    prog.block("again")
    for i, (call, values) in enumerate(resolved):
        for reg, value in values.items():
            prog.op("load_imm_64", a=reg, x=value)
        prog.op("ecalli", x=call)
        prog.op("load_imm", a=2, x=results + 16 * i)
        prog.op("store_ind_u64", a=7, b=2, x=0)
        prog.op("store_ind_u64", a=8, b=2, x=8)
    prog.op("add_imm_64", a=3, b=3, x=-1)
    prog.op("branch_ne_imm", a=3, x=0, target="again")
    prog.block("done")
    prog.halt(results, SCRATCH - results + OUT)
    return prog.service_code(b"fast-host-test")


class Counting(Dispatch):
    """A Dispatch that counts the calls reaching Python."""

    __slots__ = ("python_calls",)

    def __init__(self, *args: object, **kw: object) -> None:
        super().__init__(*args, **kw)  # type: ignore[arg-type]
        self.python_calls = 0

    def __call__(self, host_id: int, vm: PvmInstance) -> Status | None:
        self.python_calls += 1
        return super().__call__(host_id, vm)


@dataclass
class Run:
    result: InvocationResult
    lines: list[str]
    dropped: int
    python_calls: int


def run(code: bytes, make: Callable[[], Counting], gas: int, how: str) -> Run:
    d = make()
    if how == "fast":
        handler: object = d
        engine = get_engine("native")
    else:
        handler = lambda i, vm: d(i, vm)  # noqa: E731 - no `begin`: no fast path
        engine = get_engine("native" if how == "native" else "python")
    result = invoke_service_code(code, 0, gas, b"", handler, engine=engine)  # type: ignore[arg-type]
    sink = d.log
    assert isinstance(sink, LogSink)
    return Run(result, list(sink.lines), sink.dropped, d.python_calls)


def observed(r: Run) -> tuple[object, ...]:
    res = r.result
    return (res.status, res.gas_remaining, res.pc, res.registers, res.output, res.host_calls,
            r.lines, r.dropped)


def agree(code: bytes, make: Callable[[], Counting], gas: int = 10**6) -> Run:
    """Run three ways; they must agree. Returns the fast run."""
    fast, slow, python = (run(code, make, gas, how) for how in ("fast", "native", "python"))
    assert observed(fast) == observed(slow)
    assert observed(fast) == observed(python)
    assert slow.python_calls == slow.result.host_calls  # the reference really went to Python
    return fast


def basic(log_bytes: int = 65_536, **handlers: Callable[[PvmInstance], Status | None]) \
        -> Callable[[], Counting]:
    def make() -> Counting:
        table = {HostCall.GAS: gas_call}
        for name, fn in handlers.items():
            table[HostCall[name.upper()]] = fn
        return Counting(table, LogSink("#7 test", log_bytes))
    return make


def test_gas_and_unknown_ids_are_answered_in_the_core() -> None:
    code = program([(HostCall.GAS, {}), (77, {7: 5}), (200, {}), (HostCall.GAS, {})], repeat=50)
    fast = agree(code, basic())
    assert fast.result.status is Status.HALT
    assert fast.python_calls == 0 and fast.result.host_calls == 200
    out = fast.result.output or b""
    assert int.from_bytes(out[16:24], "little") == WHAT
    assert int.from_bytes(out[32:40], "little") == WHAT


@pytest.mark.parametrize("gas", [30, 31, 41, 42, 52, 53])
def test_out_of_gas_at_a_fast_call(gas: int) -> None:
    code = program([(HostCall.GAS, {}), (HostCall.LOG, {7: 2, 10: b"hi", 11: 2}), (99, {})],
                   repeat=3)
    fast = agree(code, basic(), gas)
    assert fast.result.status is Status.OUT_OF_GAS


MSG = b"hello, world"
UNI = "é ünïcode ✓".encode()


def test_log_lines_and_counts_match() -> None:
    steps: list[tuple[int, dict[int, Arg]]] = [
        (HostCall.LOG, {7: 2, 8: 0, 9: 0, 10: MSG, 11: len(MSG)}),
        (HostCall.LOG, {7: 0, 8: b"tgt", 9: 3, 10: UNI, 11: len(UNI)}),
        (HostCall.LOG, {7: 0, 8: 0, 9: 0, 10: UNI, 11: len(UNI) - 1}),  # cut: Python's path
        (HostCall.LOG, {7: 9, 8: 0, 9: 0, 10: MSG, 11: 5}),  # level name L9
        (HostCall.LOG, {7: 1, 8: 0, 9: 0, 10: 0, 11: 0}),  # empty message
        (HostCall.LOG, {7: 1, 8: 0, 9: 0, 10: 16, 11: 4}),  # unreadable: nothing
        (HostCall.LOG, {7: 1, 8: 16, 9: 4, 10: MSG, 11: 4}),  # unreadable target: nothing
        (HostCall.LOG, {7: 1, 8: 5, 9: 0, 10: MSG, 11: 3}),  # target pointer, no length
        (HostCall.LOG, {7: 1, 8: 0, 9: 0, 10: MSG, 11: 70_000}),  # over the message limit
        (HostCall.LOG, {7: 1, 8: 0, 9: 5000, 10: MSG, 11: 3}),  # over the target limit
        (HostCall.LOG, {7: 3, 8: 0, 9: 0, 10: b"\xff\xfe bad \xc3", 11: 8}),  # Python's path
        (HostCall.LOG, {7: 3, 8: 0, 9: 0, 10: MSG, 11: 6}),  # after the Python one: in order
    ]
    fast = agree(program(steps, repeat=3), basic())
    assert len(fast.lines) == 3 * 8 and fast.dropped == 0
    assert fast.lines[0] == "INFO#7 test hello, world"
    assert fast.lines[1] == "FATAL#7 test tgt é ünïcode ✓"
    assert fast.lines[2] == "FATAL#7 test é ünïcode \ufffd"
    assert fast.lines[3] == "L9#7 test hello"
    assert fast.python_calls == 6  # only the two invalid UTF-8 messages each round


@pytest.mark.parametrize("cap", [0, 20, 24, 25, 60, 61, 100])
def test_log_cap_reached_mid_message(cap: int) -> None:
    """"INFO#7 test hello, world" is 24 octets: messages fit, do not, or fit only on their
    pre-check; what is kept and dropped must match at every cap."""
    steps: list[tuple[int, dict[int, Arg]]] = [
        (HostCall.LOG, {7: 2, 8: 0, 9: 0, 10: MSG, 11: len(MSG)}),
        (HostCall.LOG, {7: 4, 8: b"t", 9: 1, 10: MSG, 11: 1}),
        (HostCall.LOG, {7: 2, 8: 0, 9: 0, 10: b"\xffx", 11: 2}),
    ]
    fast = agree(program(steps, repeat=4), basic(log_bytes=cap))
    assert fast.dropped + len(fast.lines) == 12


def fetch_source() -> FetchSource:
    return FetchSource(ProtocolConstants.tiny(), entropy=bytes(range(32)),
                       inputs=[b"first input", b"second", b""])


def test_fetch_answers_repeated_keys_in_the_core() -> None:
    steps: list[tuple[int, dict[int, Arg]]] = [
        (HostCall.FETCH, {7: ("scratch", 0), 8: 0, 9: 64, 10: 1, 11: 0, 12: 0}),
        (HostCall.FETCH, {7: ("scratch", 100), 8: 3, 9: 4, 10: 15, 11: 0, 12: 99}),
        (HostCall.FETCH, {7: ("scratch", 200), 8: 0, 9: 64, 10: 15, 11: 1, 12: 5}),
        (HostCall.FETCH, {7: ("scratch", 300), 8: 50, 9: 64, 10: 15, 11: 1, 12: 0}),
        (HostCall.FETCH, {7: ("scratch", 400), 8: 0, 9: 64, 10: 15, 11: 9, 12: 0}),  # none
        (HostCall.FETCH, {7: ("scratch", 500), 8: 0, 9: 64, 10: 14, 11: 3, 12: 4}),
        (HostCall.FETCH, {7: ("scratch", 600), 8: 0, 9: 8, 10: 1000, 11: 0, 12: 0}),  # none
        (HostCall.FETCH, {7: ("scratch", 700), 8: 0, 9: 0, 10: 0, 11: 0, 12: 0}),  # l = 0
    ]
    fast = agree(program(steps, repeat=5), basic(fetch=fetch_source()))
    out = fast.result.output or b""
    assert int.from_bytes(out[4 * 16:4 * 16 + 8], "little") == NONE
    # each key's first call only; (15, a=1) is one key whatever ω12 (selector 15 ignores it)
    assert fast.python_calls == 7


def test_fetch_into_unwritable_memory_panics_as_in_python() -> None:
    steps: list[tuple[int, dict[int, Arg]]] = [
        (HostCall.FETCH, {7: ("scratch", 0), 8: 0, 9: 32, 10: 1}),
        (HostCall.FETCH, {7: b"read-only", 8: 0, 9: 32, 10: 1}),
    ]
    fast = agree(program(steps, repeat=2), basic(fetch=fetch_source()))
    assert fast.result.status is Status.PANIC


BLOB = bytes(range(256)) * 40
KEY = b"k" * 32
OTHER = b"o" * 32


def preimages(table: dict[bytes, bytes], calls: list[int]) -> PreimageCall:
    def resolve(service: int, h: bytes) -> bytes | None:
        calls.append(service)
        return table.get(h) if service in (SELF, 7) else None
    return PreimageCall(resolve, 7)


def test_preimage_lookups_are_answered_from_installed_values() -> None:
    calls: list[int] = []
    steps: list[tuple[int, dict[int, Arg]]] = [
        (HostCall.HISTORICAL_LOOKUP, {7: SELF, 8: KEY, 9: ("scratch", 0), 10: 0, 11: 100}),
        (HostCall.HISTORICAL_LOOKUP, {7: 7, 8: KEY, 9: ("scratch", 100), 10: 9000, 11: 90}),
        (HostCall.HISTORICAL_LOOKUP, {7: 7, 8: KEY, 9: ("scratch", 200), 10: 10_300, 11: 9}),
        (HostCall.HISTORICAL_LOOKUP, {7: 8, 8: KEY, 9: ("scratch", 300), 10: 0, 11: 9}),
        (HostCall.HISTORICAL_LOOKUP, {7: SELF, 8: OTHER, 9: ("scratch", 400), 10: 0, 11: 9}),
    ]
    make = basic(historical_lookup=preimages({KEY: BLOB}, calls))
    fast = agree(program(steps, repeat=10), make)
    assert fast.python_calls == 3  # (self, KEY), (8, KEY), (self, OTHER): SELF and 7 alike
    out = fast.result.output or b""
    assert int.from_bytes(out[:8], "little") == len(BLOB)
    assert int.from_bytes(out[48:56], "little") == NONE


def windowed(table: dict[bytes, bytes], calls: list[int], least: int = 128) -> PreimageCall:
    """A PreimageCall answering from windows of at least `least` octets from f (a store's
    window read), never from the whole value."""
    def resolve(service: int, h: bytes) -> bytes | None:
        raise AssertionError("the whole value was read")

    def window(service: int, h: bytes, f: int, n: int) -> tuple[int, int, bytes] | None:
        calls.append(service)
        value = table.get(h) if service in (SELF, 7) else None
        if value is None:
            return None
        at = min(f, len(value))
        return len(value), at, value[at : at + max(n, least)]
    return PreimageCall(resolve, 7, window)


WINDOW_STEPS: list[tuple[int, dict[int, Arg]]] = [
    (HostCall.HISTORICAL_LOOKUP, {7: SELF, 8: KEY, 9: ("scratch", 0), 10: 0, 11: 100}),
    (HostCall.HISTORICAL_LOOKUP, {7: 7, 8: KEY, 9: ("scratch", 100), 10: 50, 11: 50}),
    (HostCall.HISTORICAL_LOOKUP, {7: 7, 8: KEY, 9: ("scratch", 200), 10: 9000, 11: 90}),
    (HostCall.HISTORICAL_LOOKUP, {7: SELF, 8: KEY, 9: ("scratch", 300), 10: 10_300, 11: 9}),
    (HostCall.HISTORICAL_LOOKUP, {7: 7, 8: KEY, 9: ("scratch", 400), 10: 100, 11: 100}),
    (HostCall.HISTORICAL_LOOKUP, {7: SELF, 8: KEY, 9: ("scratch", 500), 10: 10_200, 11: 500}),
    (HostCall.HISTORICAL_LOOKUP, {7: SELF, 8: OTHER, 9: ("scratch", 600), 10: 0, 11: 9}),
]


def test_windowed_preimage_lookups_answer_as_the_whole_value() -> None:
    """A key installed as a window is answered in the core when the octets copied are in it
    and exits to Python for a new window otherwise; every answer is the whole value's."""
    calls: list[int] = []
    code = program(WINDOW_STEPS, repeat=3)
    fast = agree(code, basic(historical_lookup=windowed({KEY: BLOB}, calls)))
    whole = run(code, basic(historical_lookup=preimages({KEY: BLOB}, [])), 10**6, "python")
    assert observed(fast) == observed(whole)
    # a round: [0,100) reads [0,128); [50,100) in it; [9000,9090) reads [9000,9128); the empty
    # copy at 10_300 is in any window; [100,200) reads [100,228); [10_200,10_240) reads
    # [10_200,10_240); OTHER (none) is installed once: 4 reads a round, 12 and 1
    assert fast.python_calls == 13
    out = fast.result.output or b""
    assert int.from_bytes(out[:8], "little") == len(BLOB)
    assert int.from_bytes(out[96:104], "little") == NONE
    assert out[-OUT:][500:540] == BLOB[10_200:]


@pytest.mark.parametrize("bad", ["hash", "out"])
def test_preimage_lookup_of_inaccessible_memory_panics(bad: str) -> None:
    calls: list[int] = []
    hash_at: Arg = 16 if bad == "hash" else KEY
    out_at: Arg = b"read-only data" if bad == "out" else ("scratch", 0)
    steps: list[tuple[int, dict[int, Arg]]] = [
        (HostCall.HISTORICAL_LOOKUP, {7: SELF, 8: KEY, 9: ("scratch", 0), 10: 0, 11: 64}),
        (HostCall.GAS, {}),
        (HostCall.HISTORICAL_LOOKUP, {7: SELF, 8: hash_at, 9: out_at, 10: 0, 11: 64}),
    ]
    fast = agree(program(steps, repeat=2), basic(historical_lookup=preimages({KEY: BLOB}, calls)))
    assert fast.result.status is Status.PANIC


def test_a_handler_that_changes_preimages_invalidates_them() -> None:
    """A `forget`-like handler (listed in `invalidates`) drops the preimage: the next
    lookup of the same key must answer NONE on every path."""
    calls: list[int] = []

    def make() -> Counting:
        table = {KEY: BLOB}

        def forget(vm: PvmInstance) -> Status | None:
            table.pop(KEY, None)
            return None

        handlers = {HostCall.GAS: gas_call, HostCall.LOOKUP: preimages(table, calls),
                    HostCall.FORGET: forget}
        return Counting(handlers, LogSink("#7 acc", 1000), invalidates=frozenset({24}))

    steps: list[tuple[int, dict[int, Arg]]] = [
        (HostCall.LOOKUP, {7: SELF, 8: KEY, 9: ("scratch", 0), 10: 0, 11: 16}),
        (HostCall.LOOKUP, {7: SELF, 8: KEY, 9: ("scratch", 16), 10: 16, 11: 16}),
        (HostCall.FORGET, {}),
        (HostCall.LOOKUP, {7: SELF, 8: KEY, 9: ("scratch", 32), 10: 0, 11: 16}),
    ]
    fast = agree(program(steps), make)
    out = fast.result.output or b""
    assert int.from_bytes(out[16:24], "little") == len(BLOB)
    assert int.from_bytes(out[48:56], "little") == NONE
    assert fast.python_calls == 3  # first lookup, forget, the lookup after it


# -- accumulate's transfer ----------------------------------------------------------------

ME, SIB, FAR = 70_000, 70_001, 70_002


def accumulate_run(steps: list[tuple[int, dict[int, Arg]]], engine: str, gas: int,
                   room: tuple[int, int] | None, repeat: int = 1,
                   looked_up: list[int] | None = None) -> tuple[object, ...]:
    """The outcome of one accumulate of `steps`; `looked_up` collects the ids the engine
    asked `other_account` for (once per Python-served transfer to another service)."""
    from jamhost.domain.hashing import blake2b_256
    from jamhost.engine import AccountState, accumulate

    code = program(steps, repeat)
    h = blake2b_256(code)
    me = AccountState.create(h, 10_000, preimages={h: code}, requests={(h, len(code)): (0,)})
    sib = AccountState.create(bytes(32), 0)
    sib.min_memo_gas = 5
    calls: list[int] = []

    def transfer_room(dest: int, made: object) -> tuple[int, int]:
        calls.append(dest)
        assert room is not None
        n = sum(1 for t in made if t.dest == dest)  # type: ignore[attr-defined]
        g = sum(t.gas for t in made if t.dest == dest)  # type: ignore[attr-defined]
        return room[0] - n, room[1] - g

    out = accumulate(ME, me, [], [], timeslot=1, gas_limit=gas, entropy=bytes(32),
                     other_account=lambda s: (looked_up is None or looked_up.append(s)
                                              or True) and sib if s == SIB else None,
                     transfer_room=transfer_room if room is not None else None,
                     engine=get_engine(engine))
    return (out.status, out.gas_used, out.output, out.account.balance,
            [(t.source, t.dest, t.amount, t.memo, t.gas) for t in out.transfers])


TRANSFERS: list[tuple[int, dict[int, Arg]]] = [
    (HostCall.TRANSFER, {7: SIB, 8: 100, 9: 5, 10: b"m" * 128}),  # OK
    (HostCall.TRANSFER, {7: FAR, 8: 100, 9: 5, 10: b"m" * 128}),  # WHO
    (HostCall.TRANSFER, {7: SIB, 8: 100, 9: 4, 10: b"m" * 128}),  # LOW: under min memo gas
    (HostCall.TRANSFER, {7: SIB, 8: 9_000, 9: 5, 10: b"m" * 128}),  # CASH, then OK, ...
    (HostCall.GAS, {}),
    (HostCall.TRANSFER, {7: ME, 8: 1, 9: 0, 10: ("scratch", 0)}),  # to itself
]


@pytest.mark.parametrize("room", [None, (3, 1000), (100, 12), (100, 10**6)])
def test_transfers_match_the_python_handler(room: tuple[int, int] | None) -> None:
    fast_asks: list[int] = []
    python_asks: list[int] = []
    fast = accumulate_run(TRANSFERS, "native", 10**6, room, repeat=4, looked_up=fast_asks)
    assert fast == accumulate_run(TRANSFERS, "python", 10**6, room, repeat=4,
                                  looked_up=python_asks)
    assert fast[0] is Status.HALT
    assert len(fast[4]) >= 2  # type: ignore[arg-type]
    # SIB described once to the core (its first transfer), not once per transfer
    assert python_asks.count(SIB) == 4 * 3 and fast_asks.count(SIB) <= 2


@pytest.mark.parametrize("gas", [40, 60, 75, 120])
def test_out_of_gas_at_a_fast_transfer(gas: int) -> None:
    steps: list[tuple[int, dict[int, Arg]]] = [
        (HostCall.TRANSFER, {7: SIB, 8: 1, 9: 30, 10: b"m" * 128})]
    fast = accumulate_run(steps, "native", gas, None, repeat=3)
    assert fast == accumulate_run(steps, "python", gas, None, repeat=3)


def test_transfer_with_an_unreadable_memo_panics() -> None:
    steps: list[tuple[int, dict[int, Arg]]] = [
        (HostCall.TRANSFER, {7: SIB, 8: 1, 9: 5, 10: b"m" * 128}),
        (HostCall.TRANSFER, {7: SIB, 8: 1, 9: 5, 10: 16}),
    ]
    fast = accumulate_run(steps, "native", 10**5, None, repeat=2)
    assert fast == accumulate_run(steps, "python", 10**5, None, repeat=2)
    assert fast[0] is Status.PANIC
