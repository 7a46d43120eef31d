"""jamhost's PVM (GP 0.7.2 appendix A): the pure-Python reference engine and a native core.

`get_engine(name=None)` returns the runtime's engine (see engines.py)."""

from jamhost.pvm.engines import get_engine

__all__ = ["get_engine"]
