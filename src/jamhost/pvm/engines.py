"""Choosing the PVM engine: the native core when it is built, else the pure-Python one.

`get_engine()` is what every runner asks (refine, accumulate, the CLI's `pvm run`/`pvm
test`): `runtime.jam.pvm_engine` (`auto`, `native`, `python`) is passed as `name` by serve
and the workers; `auto` (or None) takes the native core when the extension imports and
otherwise the Python engine, saying so once on stderr. The Python engine stays the
reference: the native one must agree with it field by field (tests/differential).
"""

from __future__ import annotations

import sys
from functools import cache

from jamhost.pvm.interface import PvmEngine

ENGINE_CHOICES = ("auto", "native", "python")


class EngineUnavailable(RuntimeError):
    """`native` was asked for but the extension is not built."""


@cache
def _native_engine() -> PvmEngine | None:
    try:
        from jamhost.pvm.native import NativePvm
    except ImportError:
        return None
    return NativePvm()


@cache
def _python_engine() -> PvmEngine:
    from jamhost.pvm.interpreter import PythonPvm

    return PythonPvm()


@cache
def _warn_fallback() -> None:
    print(
        "warning: jamhost's native PVM core is not built (no C compiler at install?); "
        "using the Python engine",
        file=sys.stderr,
    )


def native_available() -> bool:
    return _native_engine() is not None


def get_engine(name: str | None = None) -> PvmEngine:
    """The engine called `name` (`auto`/None: native if built, else Python)."""
    if name is None or name == "auto":
        native = _native_engine()
        if native is not None:
            return native
        _warn_fallback()
        return _python_engine()
    if name == "native":
        native = _native_engine()
        if native is None:
            raise EngineUnavailable("the native PVM core is not built (pip install needs gcc)")
        return native
    if name == "python":
        return _python_engine()
    raise ValueError(f"unknown PVM engine {name!r}; one of {', '.join(ENGINE_CHOICES)}")
