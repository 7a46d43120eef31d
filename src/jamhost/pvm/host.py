"""Host-call driving: Ψ_H (GP 0.7.2 §A.6) and the argument invocation Ψ_M (§A.8).

A host handler is called for each `ecalli` with the host-call id (ν_X) and the paused
instance, whose pc is at the ecalli and whose gas already paid the ecalli's ϱ_Δ = 1. It reads
and writes registers and memory through the `PvmInstance` methods and charges its own gas by
lowering `instance.gas` (GP host functions charge g = 10, some more). It returns:

- `None` (or `Status.HOST`) to continue: execution resumes after the ecalli (GP ı'');
- `Status.HALT`, `Status.PANIC` or `Status.OUT_OF_GAS` to stop with that outcome.

If the handler leaves gas below zero the invocation ends out of gas, and a `PageFault` /
`MemoryPanic` escaping the handler (a host call touching inaccessible memory) ends it with a
panic, as the GP host functions specify for inaccessible arguments.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from jamhost.pvm.interface import Exit, PvmEngine, PvmInstance, Status
from jamhost.pvm.memory import MemoryAccessError
from jamhost.pvm.standard import StandardProgramError, initialise, split_service_code

HostHandler = Callable[[int, PvmInstance], "Status | None"]

_STOP = (Status.HALT, Status.PANIC, Status.OUT_OF_GAS)


def run_with_host(instance: PvmInstance, handler: HostHandler) -> tuple[Exit, int]:
    """Ψ_H: run, serving host calls with `handler`, until halt, panic, out-of-gas or fault.

    Returns the final exit and the number of host calls served. A handler with `begin(vm)`
    and `end(vm) -> int` (engine/hostio.py Dispatch) is told when the run starts and ends;
    `end` returns the host calls the instance answered itself (interface.FastHostInstance),
    which count among those served."""
    begin = getattr(handler, "begin", None)
    if begin is None:
        return _serve(instance, handler)
    begin(instance)
    try:
        exit_, calls = _serve(instance, handler)
    finally:
        # type-ignore reason: a handler with a fast begin (checked above) has its end
        fast_calls = handler.end(instance)  # type: ignore[attr-defined]
    return exit_, calls + fast_calls


class _Stepper:
    """`run_host`/`resume_host`/`exit_of` over the interface's run()/resume() (the native
    instance has its own, which make no Exit object for a host-call exit)."""

    __slots__ = ("instance", "exit")

    def __init__(self, instance: PvmInstance) -> None:
        self.instance = instance
        self.exit: Exit | None = None

    def _code(self, exit_: Exit) -> int:
        if exit_.status is Status.HOST:
            return exit_.host_id or 0
        self.exit = exit_
        return -1

    def run_host(self) -> int:
        return self._code(self.instance.run())

    def resume_host(self) -> int:
        return self._code(self.instance.resume())

    def exit_of(self, code: int) -> Exit:
        assert self.exit is not None
        return self.exit


def _serve(instance: PvmInstance, handler: HostHandler) -> tuple[Exit, int]:
    steps = instance if hasattr(instance, "run_host") else _Stepper(instance)
    # type-ignore reason: either the native instance (hasattr above) or the _Stepper
    resume = steps.resume_host  # type: ignore[union-attr]
    code: int = steps.run_host()
    calls = 0
    while code >= 0:
        calls += 1
        try:
            outcome = handler(code, instance)
        except MemoryAccessError:
            outcome = Status.PANIC
        if instance.gas < 0:
            instance.gas = 0
            return Exit(Status.OUT_OF_GAS, instance.pc), calls
        if outcome in _STOP:
            assert outcome is not None
            return Exit(outcome, instance.pc), calls
        code = resume()
    # type-ignore reason: either the native instance (hasattr above) or the _Stepper
    return steps.exit_of(code), calls  # type: ignore[union-attr]


@dataclass(slots=True)
class InvocationResult:
    """Outcome of Ψ_M: status, gas used u, and the output blob on halt."""

    status: Status
    gas_used: int
    gas_remaining: int
    output: bytes | None
    """On HALT: μ'[ω7 ..+ ω8] if readable, else b"" (GP Ψ_M R). None otherwise."""
    pc: int
    registers: list[int] = field(default_factory=list)
    host_calls: int = 0
    exit: Exit | None = None

    @property
    def result(self) -> bytes | str:
        """GP Ψ_M's second component: the output blob, or "panic" / "out-of-gas"."""
        if self.status is Status.HALT:
            return self.output or b""
        if self.status is Status.OUT_OF_GAS:
            return Status.OUT_OF_GAS.value
        return Status.PANIC.value


def _default_engine() -> PvmEngine:
    from jamhost.pvm.engines import get_engine

    return get_engine()


def invoke(
    program: bytes | memoryview,
    pc: int,
    gas: int,
    args: bytes,
    handler: HostHandler,
    *,
    engine: PvmEngine | None = None,
) -> InvocationResult:
    """Ψ_M(p, ı, ϱ, a, f) for a standard program blob p (GP §A.7 form, no metadata)."""
    try:
        code, regs, mem = initialise(program, args)
    except StandardProgramError:
        return InvocationResult(Status.PANIC, 0, gas, None, pc)
    vm = (engine or _default_engine()).instantiate(code, pc=pc, gas=gas, registers=regs, memory=mem)
    exit_, calls = run_with_host(vm, handler)
    remaining = max(vm.gas, 0)
    output: bytes | None = None
    if exit_.status is Status.HALT:
        r7, r8 = vm.get_register(7), vm.get_register(8)
        output = vm.read_memory(r7, r8) if vm.is_readable(r7, r8) else b""
    status = exit_.status
    return InvocationResult(
        status=status,
        gas_used=gas - remaining,
        gas_remaining=remaining,
        output=output,
        pc=exit_.pc,
        registers=vm.get_registers(),
        host_calls=calls,
        exit=exit_,
    )


def invoke_service_code(
    code_preimage: bytes,
    pc: int,
    gas: int,
    args: bytes,
    handler: HostHandler,
    *,
    engine: PvmEngine | None = None,
) -> InvocationResult:
    """Ψ_M on a service's code preimage E(↕m, c) (GP §9.2): strips the metadata first."""
    try:
        _metadata, program = split_service_code(code_preimage)
    except StandardProgramError:
        return InvocationResult(Status.PANIC, 0, gas, None, pc)
    return invoke(program, pc, gas, args, handler, engine=engine)
