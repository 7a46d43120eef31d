"""Ψ_I (GP 0.7.2 §B.3) before refine: the trace and gas in the report, the trace through
refine's fetch selector 2, refusal on panic, missing or oversize code, out of gas."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest

from jamhost.domain.types import RefineContext, WorkItem, WorkPackage
from jamhost.engine import RefineInputError, refine_package
from jamhost.engine.authorizer import is_authorized
from jamhost.engine.constants import ProtocolConstants
from jamhost.examples import token_authorizer
from jamhost.examples._asm import script

SERVICE = 70_000


def h(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=32).digest()


# refine: fetch selector 2 (the authorizer trace) into scratch; outputs E_8(ω7) ++ E_8(ω8).
TRACE_READER = script([(1, {7: ("scratch", 0), 8: 0, 9: 64, 10: 2})])
AUTH = token_authorizer.build()


def package(token: bytes, auth_hash: bytes = h(AUTH)) -> WorkPackage:
    item = WorkItem(SERVICE, h(TRACE_READER), 100_000, 5_000, 0, b"")
    context = RefineContext(b"\x01" * 32, b"\x02" * 32, b"\x03" * 32, b"\x04" * 32, 9)
    return WorkPackage(SERVICE, auth_hash, context, token, b"cfg", (item,))


def run(  # type: ignore[no-untyped-def]
    p: WorkPackage, auth: bytes | None = AUTH, constants: ProtocolConstants | None = None
):
    return refine_package(
        p,
        code_lookup=lambda s, c: TRACE_READER if c == h(TRACE_READER) else None,
        preimage_lookup=lambda s, x: None,
        authorizer_code=auth,
        constants=constants,
    )


def test_authorized_package_has_the_trace_and_gas_in_its_report() -> None:
    report = run(package(b"let me in")).report
    assert report.auth_output == b"let me in"
    assert report.auth_gas_used == 10 + 10  # ten instructions and one fetch (g = 10)
    (digest,) = report.results
    assert digest.result.is_ok
    length = int.from_bytes(digest.result.output[:8], "little")
    assert length == len(b"let me in")  # refine's fetch(2) is the authorizer trace
    assert report.authorizer_hash == h(h(AUTH) + b"cfg")


def test_no_authorizer_named_keeps_the_token_only_behaviour() -> None:
    report = run(package(b"", auth_hash=bytes(32)), auth=None).report
    assert (report.auth_output, report.auth_gas_used) == (b"", 0)
    assert int.from_bytes(report.results[0].result.output[:8], "little") == 0  # empty trace


def test_a_panicking_authorizer_refuses_the_package() -> None:
    with pytest.raises(RefineInputError, match="panic"):
        run(package(b""))


def test_missing_or_oversize_authorizer_code_refuses_the_package() -> None:
    with pytest.raises(RefineInputError, match="bad"):
        run(package(b"token"), auth=None)
    small = dataclasses.replace(ProtocolConstants.full(), max_auth_code_size=10)
    with pytest.raises(RefineInputError, match="big"):
        run(package(b"token"), constants=small)


def test_authorizer_out_of_gas_at_g_i() -> None:
    halts = script([], end="halt")
    spin = _spinning_authorizer()
    tight = dataclasses.replace(ProtocolConstants.full(), package_auth_gas=500)
    outcome = is_authorized(package(b"x"), spin, 0, tight)
    assert (outcome.output, outcome.error, outcome.gas_used) == (None, "out-of-gas", 500)
    assert is_authorized(package(b"x"), halts, 0, tight).output is not None


def _spinning_authorizer() -> bytes:
    from jamhost.examples._asm import Program

    prog = Program()
    prog.const(b"\0")
    prog.block("spin")
    prog.op("jump", target="spin")
    return prog.service_code(b"spin")
