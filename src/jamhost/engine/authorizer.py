"""Ψ_I, the Is-Authorized invocation (GP 0.7.2 §B.3, eq. isauthinvocation).

The package's authorization code p_c (the preimage of p_u in service p_h, E(↕m, c) with its
metadata stripped) runs at pc 0 with the gas limit G_I and the argument E_2(c), the core
index. Its host calls are gas (0) and fetch (1), which sees the package (selectors 0 and 7-13)
and nothing else; every other call answers WHAT. The output is the authorizer trace: it goes
into the report (`auth_output`, with the gas as `auth_gas_used`) and is what refine's fetch
selector 2 returns.

Which service's code a package may name is decided in `jamhost.tenancy.authz`; this module
only runs what it is given.
"""

from __future__ import annotations

from dataclasses import dataclass

from jamhost.domain.codec import encode_fixed
from jamhost.domain.types import WorkPackage
from jamhost.engine.constants import HostCall, ProtocolConstants
from jamhost.engine.fetch import FetchSource
from jamhost.engine.hostio import LogSink, dispatch, gas_call
from jamhost.engine.merkle import ZERO_HASH
from jamhost.pvm.host import invoke
from jamhost.pvm.interface import PvmEngine, Status
from jamhost.pvm.standard import StandardProgramError, split_service_code

__all__ = ["Authorization", "is_authorized", "names_authorizer"]


def names_authorizer(package: WorkPackage) -> bool:
    """jamhost's rule: a package names an authorizer unless its p_u is the zero hash (the
    short JSON form's default), which keeps the token-only authorization of SPEC §3."""
    return package.auth_code_hash != ZERO_HASH


@dataclass(frozen=True, slots=True)
class Authorization:
    """(r, u) of Ψ_I: the trace on success, else the GP error kind; and the gas used."""

    output: bytes | None
    gas_used: int
    error: str | None = None
    """"bad" (no code), "big" (over W_A), "panic", "out-of-gas"; None when authorized."""


def is_authorized(
    package: WorkPackage,
    code_preimage: bytes | None,
    core_index: int,
    constants: ProtocolConstants,
    engine: PvmEngine | None = None,
) -> Authorization:
    """Ψ_I(p, c) with p_c from `code_preimage` (None: not available)."""
    if code_preimage is None:
        return Authorization(None, 0, "bad")
    try:
        _metadata, code = split_service_code(code_preimage)
    except StandardProgramError:
        return Authorization(None, 0, "bad")
    if len(code) > constants.max_auth_code_size:
        return Authorization(None, 0, "big")
    fetch = FetchSource(constants, package=package)
    # log costs its gas and keeps nothing (a sink of no room: every message dropped)
    handler = dispatch({HostCall.GAS: gas_call, HostCall.FETCH: fetch}, LogSink("", 0))
    args = bytearray()
    encode_fixed(args, core_index, 2)
    run = invoke(code, 0, constants.package_auth_gas, bytes(args), handler, engine=engine)
    if run.status is Status.HALT:
        return Authorization(run.output or b"", run.gas_used)
    return Authorization(None, run.gas_used, str(run.result))
