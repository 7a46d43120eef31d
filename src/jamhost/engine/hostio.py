"""Plumbing shared by the refine and accumulate host calls (GP 0.7.2 §B.6 conventions).

A host call's handler (see `jamhost.pvm.host`) gets the paused instance. These helpers read
arguments out of guest memory, charge gas the GP way (out of gas, with no other effect, when
ϱ < g), and write the usual "blob answer": ω7 = |v| (or NONE) and v[f..f+l] copied to ω_o,
with f and l clamped as in Ω_Y, Ω_L, Ω_R, Ω_I.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from jamhost.engine.constants import HOST_CALL_GAS, LOG_GAS, NONE, WHAT, HostCall
from jamhost.pvm.interface import PvmInstance, Status

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


class Handler(Protocol):
    def __call__(self, vm: PvmInstance) -> Status | None: ...


def dispatch(
    handlers: dict[int, Callable[[PvmInstance], Status | None]],
    log: Callable[[PvmInstance], None],
    *,
    log_gas: int = LOG_GAS,
) -> Callable[[int, PvmInstance], Status | None]:
    """A `HostHandler` for `jamhost.pvm.host.run_with_host` serving `handlers`.

    Every GP host call costs g = 10 charged up front (out of gas, with no effect, when
    ϱ < 10); a handler that costs more charges the rest itself. An unknown id costs 10 and
    answers WHAT. `log` (JIP-1) costs `log_gas` (10 as JIP-1 and the GP 0.7.2 vectors have
    it; 0 for the older GP 0.7.0 vectors) and otherwise never fails."""

    def handle(host_id: int, vm: PvmInstance) -> Status | None:
        if host_id == HostCall.LOG:
            if vm.gas < log_gas:
                vm.gas -= log_gas
                return Status.OUT_OF_GAS
            vm.gas -= log_gas
            log(vm)
            return None
        if vm.gas < HOST_CALL_GAS:
            vm.gas -= HOST_CALL_GAS
            return Status.OUT_OF_GAS
        vm.gas -= HOST_CALL_GAS
        fn = handlers.get(host_id)
        if fn is None:
            vm.set_register(7, WHAT)
            return None
        try:
            return fn(vm)
        except HostPanic:
            return Status.PANIC

    return handle


_LEVELS = {0: "FATAL", 1: "WARN", 2: "INFO", 3: "DEBUG", 4: "TRACE"}


def log_line(vm: PvmInstance, where: str) -> str | None:
    """Format a JIP-1 `log` call (ω7 level, ω8/ω9 target, ω10/ω11 message), or None when its
    memory is not readable (JIP-1: no side effects then). No timestamp: runs must repeat."""
    level, t_ptr, t_len, m_ptr, m_len = (vm.get_register(i) for i in range(7, 12))
    if m_len > 1 << 16 or t_len > 1 << 12:
        return None
    if not readable(vm, m_ptr, m_len):
        return None
    target = ""
    if t_ptr or t_len:
        if not readable(vm, t_ptr, t_len):
            return None
        target = read(vm, t_ptr, t_len).decode("utf-8", "replace")
    message = read(vm, m_ptr, m_len).decode("utf-8", "replace")
    name = _LEVELS.get(level, f"L{level}")
    return f"{name}{where} {target + ' ' if target else ''}{message}"
