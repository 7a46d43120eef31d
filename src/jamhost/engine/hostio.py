"""Plumbing shared by the refine and accumulate host calls (GP 0.7.2 §B.6 conventions).

A host call's handler (see `jamhost.pvm.host`) gets the paused instance. These helpers read
arguments out of guest memory, charge gas the GP way (out of gas, with no other effect, when
ϱ < g), and write the usual "blob answer": ω7 = |v| (or NONE) and v[f..f+l] copied to ω_o,
with f and l clamped as in Ω_Y, Ω_L, Ω_R, Ω_I.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, cast

from jamhost.engine.constants import (
    DEFAULT_MAX_LOG_BYTES,
    HOST_CALL_GAS,
    LOG_GAS,
    NONE,
    WHAT,
    HostCall,
)
from jamhost.pvm.interface import FastHostSpec, FastHostVm, PvmInstance, Status

ADDRESS_LIMIT = 1 << 32


class HostPanic(Exception):
    """Raised inside a host call for a GP `panic` outcome (inaccessible argument memory)."""


def readable(vm: PvmInstance, address: int, length: int) -> bool:
    """N_{address..+length} ⊆ V_μ; the empty range always is."""
    if length == 0:
        return True
    return address + length <= ADDRESS_LIMIT and vm.is_readable(address, length)


def writable(vm: PvmInstance, address: int, length: int) -> bool:
    """N_{address..+length} ⊆ V*_μ; the empty range always is."""
    if length == 0:
        return True
    return address + length <= ADDRESS_LIMIT and vm.is_writable(address, length)


def read(vm: PvmInstance, address: int, length: int) -> bytes:
    """μ[address..+length], or HostPanic when not readable."""
    if not readable(vm, address, length):
        raise HostPanic
    return vm.read_memory(address, length) if length else b""


def answer_blob(vm: PvmInstance, value: bytes | None, out: int, offset: int, limit: int) -> None:
    """The common tail of fetch/lookup/read/info/historical_lookup (GP 0.7.2 §B.6).

    f = min(offset, |v|), l = min(limit, |v| - f); panic if μ[out..+l] is not writable, else
    ω7 = NONE when v is none, or ω7 = |v| and μ[out..+l] = v[f..+l]."""
    if value is None:
        length = 0
    else:
        start = min(offset, len(value))
        length = min(limit, len(value) - start)
    if not writable(vm, out, length):
        raise HostPanic
    if value is None:
        vm.set_register(7, NONE)
        return
    if length:
        vm.write_memory(out, value[start : start + length])
    vm.set_register(7, len(value))


Window = tuple[int, int, bytes]
"""(|v|, at, v[at .. at + n]): part of a preimage read from the store, with its length."""


def answer_window(vm: PvmInstance, window: Window | None, out: int, offset: int,
                  limit: int) -> bool:
    """`answer_blob` from a window of the value: False (nothing done) when the octets the
    call copies are not all in it."""
    if window is None:
        answer_blob(vm, None, out, offset, limit)
        return True
    total, at, held = window
    start = min(offset, total)
    length = min(limit, total - start)
    if length and not (at <= start and start + length <= at + len(held)):
        return False
    if not writable(vm, out, length):
        raise HostPanic
    if length:
        vm.write_memory(out, held[start - at : start - at + length])
    vm.set_register(7, total)
    return True


def window_around(total: int, offset: int, limit: int, least: int) -> tuple[int, int]:
    """(at, n): the octets a window read for a call (f = offset, l = limit) takes, at least
    `least` of them from f' = min(f, |v|) when the value has them (a scan of short reads
    reads the store once per `least` octets)."""
    start = min(offset, total)
    return start, min(max(limit, least), total - start)


class Handler(Protocol):
    def __call__(self, vm: PvmInstance) -> Status | None: ...


def gas_call(vm: PvmInstance) -> Status | None:
    """Ω_G: ω7 = ϱ' (gas left after this call's charge). An engine may answer it itself."""
    vm.set_register(7, vm.gas)
    return None


class PreimageCall:
    """Ω_L / Ω_H: the preimage `resolve(ω7, μ[ω8..+32])` answered to ω9, f = ω10, l = ω11.

    `resolve(service, hash)` takes ω7 as the guest gave it; it must answer 2^64-1 and
    `self_id` alike (both name the invocation's own service), which is what lets an engine
    answer repeated keys from values installed under `self_id` (see `Dispatch`)."""

    __slots__ = ("resolve", "self_id", "last", "window")

    def __init__(self, resolve: Callable[[int, bytes], bytes | None], self_id: int,
                 window: Callable[[int, bytes, int, int], Window | None] | None = None,
                 ) -> None:
        self.resolve = resolve
        self.self_id = self_id
        self.window = window
        """`window(service, hash, f, l)`: a `Window` holding at least the octets the call
        copies, or None for no value (the store reads |v| and that part, not the blob)."""
        self.last: tuple[int, bytes, bytes | None] | tuple[int, bytes, Window] | None = None
        """The key and value (or window) of the last call answered, for the engine's table."""

    def __call__(self, vm: PvmInstance) -> Status | None:
        service = vm.get_register(7)
        h = read(vm, vm.get_register(8), 32)
        out, offset, limit = vm.get_register(9), vm.get_register(10), vm.get_register(11)
        if self.window is not None:
            window = self.window(service, h, offset, limit)
            if window is None:
                self.last = (service, h, None)
            else:
                self.last = (service, h, window)
            if answer_window(vm, window, out, offset, limit):
                return None
            # a window without the octets asked for: answered from the whole value
        value = self.resolve(service, h)
        self.last = (service, h, value)
        answer_blob(vm, value, out, offset, limit)
        return None


class FastHooks(Protocol):
    """A handler whose engine-side state must be kept in step with Python's (accumulate's
    transfer): set up at `begin`, taken into Python before any call is served in Python and
    at the end, given again after it."""

    def fast_begin(self, vm: FastHostVm) -> None: ...

    def fast_take(self, vm: FastHostVm) -> None: ...

    def fast_after(self, vm: FastHostVm, host_id: int) -> None: ...


FAST_TABLE_BYTES = 64 * 1024 * 1024
"""Octets of resolved fetch / preimage values an engine's table may reference per invocation
(references to blobs the invocation holds anyway; a value past it keeps exiting)."""


class Dispatch:
    """A `HostHandler` for `jamhost.pvm.host.run_with_host` serving `handlers`.

    Every GP host call costs g = 10 charged up front (out of gas, with no effect, when
    ϱ < 10); a handler that costs more charges the rest itself. An unknown id costs 10 and
    answers WHAT. `log` (JIP-1) costs `log_gas` (10; 0 only for the GP 0.7.0 vectors) by the
    same rule and never fails.

    With an instance that has the `fast_host` capability (pvm.interface.FastHostInstance,
    the native core), `begin` lets it answer by itself: unknown ids, Ω_G when the handler is
    `gas_call`, `log` when `log` is a `LogSink` (records, formatted into its lines by
    `LogSink.absorb` before any other log call and at `end`), and fetch (a handler with
    `fast_key_args`, i.e. `FetchSource`) and `PreimageCall` for keys whose first call this
    object answered and installed. Calls in `invalidates` (handlers that change what a
    preimage key answers) empty the installed preimages. The answers are the handlers':
    tests/unit/test_fast_host.py compares both paths call by call."""

    __slots__ = ("handlers", "log", "log_gas", "invalidates", "_fast", "_fetch_id",
                 "_preimage_id", "_hooks", "_installs")

    def __init__(
        self,
        handlers: dict[int, Callable[[PvmInstance], Status | None]],
        log: Callable[[PvmInstance], None],
        log_gas: int = LOG_GAS,
        invalidates: frozenset[int] = frozenset(),
    ) -> None:
        self.handlers = handlers
        self.log = log
        self.log_gas = log_gas
        self.invalidates = invalidates
        self._fast: FastHostVm | None = None
        self._fetch_id: int | None = None
        self._preimage_id: int | None = None
        self._installs: frozenset[int] = frozenset()
        """Ids whose Python answer is given to the fast path, or empties part of it."""
        self._hooks: list[FastHooks] = [
            # type-ignore reason: handlers with a fast_begin are FastHooks (hasattr)
            fn for fn in handlers.values() if hasattr(fn, "fast_begin")  # type: ignore[misc]
        ]

    def begin(self, vm: PvmInstance) -> None:
        """Configure `vm`'s fast path, if it has one, for this invocation."""
        self._fast = None
        if not hasattr(vm, "fast_host"):  # interface.FastHostInstance
            return
        fast = cast(FastHostVm, vm)  # the native core's instance: the one with fast_host
        fetch_id = preimage_id = None
        fetch_args = bytes(32)
        self_id = 0
        for host_id, fn in self.handlers.items():
            key_args = getattr(fn, "fast_key_args", None)
            if key_args is not None and fetch_id is None:
                fetch_id, fetch_args = host_id, key_args
            elif isinstance(fn, PreimageCall) and preimage_id is None:
                preimage_id, self_id = host_id, fn.self_id
        sink = self.log if isinstance(self.log, LogSink) else None
        fast.fast_host(FastHostSpec(
            call_gas=HOST_CALL_GAS,
            known=frozenset(self.handlers) | {HostCall.LOG},
            gas_id=HostCall.GAS if self.handlers.get(HostCall.GAS) is gas_call else None,
            fetch_id=fetch_id,
            fetch_key_args=fetch_args,
            preimage_id=preimage_id,
            self_id=self_id,
            log_id=HostCall.LOG if sink is not None else None,
            log_gas=self.log_gas,
            log_where=sink.where if sink is not None else "",
            log_room=sink.room() if sink is not None else 0,
            table_budget=FAST_TABLE_BYTES,
        ))  # fmt: skip
        self._fast = fast
        self._fetch_id, self._preimage_id = fetch_id, preimage_id
        self._installs = self.invalidates | {i for i in (fetch_id, preimage_id) if i is not None}
        for hook in self._hooks:
            hook.fast_begin(fast)

    def end(self, vm: PvmInstance) -> int:
        """After the run: the log records kept by `vm` into the sink; the number of host
        calls `vm` answered itself."""
        fast = self._fast
        if fast is None or fast is not vm:
            return 0
        self._fast = None
        self._take_log(fast)
        for hook in self._hooks:
            hook.fast_take(fast)
        return fast.fast_calls

    def _take_log(self, vm: FastHostVm) -> None:
        if isinstance(self.log, LogSink):
            records, dropped = vm.fast_log_take()
            self.log.absorb(records, dropped)

    def __call__(self, host_id: int, vm: PvmInstance) -> Status | None:
        fast = self._fast
        if fast is vm and fast is not None and (self._hooks or host_id in self._installs):
            return self._serve_fast(host_id, fast)
        if host_id == HostCall.LOG:
            return self._log(vm)
        gas = vm.gas
        if gas < HOST_CALL_GAS:
            vm.gas = gas - HOST_CALL_GAS
            return Status.OUT_OF_GAS
        vm.gas = gas - HOST_CALL_GAS
        fn = self.handlers.get(host_id)
        if fn is None:
            vm.set_register(7, WHAT)
            return None
        try:
            return fn(vm)
        except HostPanic:
            return Status.PANIC

    def _serve_fast(self, host_id: int, vm: FastHostVm) -> Status | None:
        """A call reaching Python from an instance with a fast path: the hooks' state taken
        first and given back after; the value the call answered installed."""
        for hook in self._hooks:
            hook.fast_take(vm)
        try:
            if host_id == HostCall.LOG:
                return self._log(vm)
            if vm.gas < HOST_CALL_GAS:
                vm.gas -= HOST_CALL_GAS
                return Status.OUT_OF_GAS
            vm.gas -= HOST_CALL_GAS
            fn = self.handlers.get(host_id)
            if fn is None:
                vm.set_register(7, WHAT)
                return None
            try:
                outcome = fn(vm)
            except HostPanic:
                return Status.PANIC
            self._install(host_id, fn, vm)
            return outcome
        finally:
            for hook in self._hooks:
                hook.fast_after(vm, host_id)

    def _log(self, vm: PvmInstance) -> Status | None:
        if vm.gas < self.log_gas:
            vm.gas -= self.log_gas
            return Status.OUT_OF_GAS
        vm.gas -= self.log_gas
        fast = self._fast
        if fast is vm and fast is not None and isinstance(self.log, LogSink):
            self._take_log(fast)  # the sink's lines in call order, then this one
            self.log(vm)
            fast.fast_log_room(self.log.room())
        else:
            self.log(vm)
        return None

    def _install(self, host_id: int, fn: object, vm: FastHostVm) -> None:
        """Give `vm` the value this call answered, so the key's next calls stay in it."""
        if host_id == self._fetch_id:
            sel, a, b = vm.get_register(10), vm.get_register(11), vm.get_register(12)
            # type-ignore reason: fn is the fetch handler (the one with fast_key_args), untyped
            vm.fast_put_fetch(sel, a, b, fn.value(sel, a, b))  # type: ignore[attr-defined]
        elif host_id == self._preimage_id:
            # type-ignore reason: fn is the preimage-lookup handler, which keeps its last answer
            last = fn.last  # type: ignore[attr-defined]
            if last is not None:
                # type-ignore reason: the same handler
                fn.last = None  # type: ignore[attr-defined]
                service, h, value = last
                if isinstance(value, tuple):
                    total, at, held = value
                    vm.fast_put_preimage_window(service, h, held, total, at)
                else:
                    vm.fast_put_preimage(service, h, value)
        elif host_id in self.invalidates:
            vm.fast_clear_preimages()


def dispatch(
    handlers: dict[int, Callable[[PvmInstance], Status | None]],
    log: Callable[[PvmInstance], None],
    log_gas: int = LOG_GAS,
    invalidates: frozenset[int] = frozenset(),
) -> Dispatch:
    """The `Dispatch` of `handlers` (see there)."""
    return Dispatch(handlers, log, log_gas, invalidates)


_LEVELS = {0: "FATAL", 1: "WARN", 2: "INFO", 3: "DEBUG", 4: "TRACE"}


MAX_LOG_MESSAGE = 1 << 16
"""Longest message (octets) one `log` call may carry; a longer call logs nothing."""
MAX_LOG_TARGET = 1 << 12


def log_line(vm: PvmInstance, where: str) -> str | None:
    """Format a JIP-1 `log` call (ω7 level, ω8/ω9 target, ω10/ω11 message), or None when its
    memory is not readable (JIP-1: no side effects then). No timestamp: runs must repeat."""
    level, t_ptr, t_len, m_ptr, m_len = (vm.get_register(i) for i in range(7, 12))
    if m_len > MAX_LOG_MESSAGE or t_len > MAX_LOG_TARGET:
        return None
    if not readable(vm, m_ptr, m_len):
        return None
    target = ""
    if t_ptr or t_len:
        if not readable(vm, t_ptr, t_len):
            return None
        target = read(vm, t_ptr, t_len).decode("utf-8", "replace")
    message = read(vm, m_ptr, m_len).decode("utf-8", "replace")
    return format_line(level, target, message, where)


def format_line(level: int, target: str, message: str, where: str) -> str:
    """The line a `log` call makes: level name, where, the target if any, the message."""
    name = _LEVELS.get(level, f"L{level}")
    return f"{name}{where} {target + ' ' if target else ''}{message}"


class LogSink:
    """The `log` lines one invocation keeps, at most `max_bytes` octets of them (UTF-8).

    A tenant's code chooses how much it logs and `log` costs 10 gas whatever the length, so
    what is kept is capped per invocation (`runtime.jam.max_log_bytes_per_invocation`): a
    message that does not fit whole is dropped and counted in `dropped`. Once a message
    cannot fit, its memory is not even read, so a flood past the cap costs only the calls."""

    __slots__ = ("where", "max_bytes", "kept_bytes", "lines", "dropped")

    def __init__(self, where: str, max_bytes: int = DEFAULT_MAX_LOG_BYTES) -> None:
        self.where = where
        self.max_bytes = max_bytes
        self.kept_bytes = 0
        self.lines: list[str] = []
        self.dropped = 0

    def __call__(self, vm: PvmInstance) -> None:
        room = self.max_bytes - self.kept_bytes
        # The smallest line this call could make: level name, `where`, the message itself.
        m_len = vm.get_register(11)
        if m_len > MAX_LOG_MESSAGE or vm.get_register(9) > MAX_LOG_TARGET:
            return
        if m_len + len(self.where) > room:
            self.dropped += 1
            return
        line = log_line(vm, self.where)
        if line is None:
            return
        size = len(line.encode("utf-8"))
        if size > room:
            self.dropped += 1
            return
        self.kept_bytes += size
        self.lines.append(line)

    def room(self) -> int:
        """Octets of lines this invocation may still keep."""
        return self.max_bytes - self.kept_bytes

    def absorb(self, records: list[tuple[int, bytes, bytes]], dropped: int) -> None:
        """Lines an engine kept itself (Dispatch.begin): each (level, target, message) was
        valid UTF-8 and fitted the room when made, so it is kept here whole, as `__call__`
        would have."""
        for level, target, message in records:
            line = format_line(level, target.decode("utf-8"), message.decode("utf-8"),
                               self.where)
            self.kept_bytes += len(line.encode("utf-8"))
            self.lines.append(line)
        self.dropped += dropped
