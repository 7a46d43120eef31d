"""Where a package's safe points fall outside the PVM (app/pipeline.py, engine/refine.py,
docs/scheduling.md "Preemption"): one right after the claim, before the package is decoded,
and one between the items' runs and the erasure root, the longest stretches of a one-step
package. A one-step run spends far less than YIELD_GAS, so no safe point comes from the PVM
itself here."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from tests.integration import spin

from jamhost.app import packages, pipeline, services
from jamhost.app.auth import authenticate
from jamhost.app.runtime import build_runtime
from jamhost.config import JamSettings
from jamhost.domain.model import Account, now_us
from jamhost.engine import refine
from jamhost.pvm import safepoint
from jamhost.tenancy.principal import ADMIN


def _runtime() -> tuple[Any, Any, int]:
    op = "op-" + secrets.token_hex(16)
    rt = build_runtime(JamSettings(store="memory", allowed_tokens=[op], workers=1,
                                   rate_limit_per_minute=0, service_rate_limit_per_minute=0,
                                   account_rate_limit_per_minute=0, attestor_recheck_gas=0,
                                   pvm_engine="native"))
    rt.store.create_account(Account("acct-a", "acct-a", now_us()))
    sid = services.create_service(rt, ADMIN, code=spin.build(), owner="acct-a").service_id
    return rt, authenticate(rt, op), sid


def _events(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The order of: safe points reached ("hook"), the package's decoding ("decode"), each
    PVM invocation's end ("pvm") and the erasure root ("root")."""
    events: list[str] = []

    def tracing(name: str, fn: Any) -> Any:
        def traced(*a: Any, **kw: Any) -> Any:
            if name == "pvm":
                out = fn(*a, **kw)
                events.append(name)
                return out
            events.append(name)
            return fn(*a, **kw)
        return traced

    monkeypatch.setattr(pipeline, "decoded", tracing("decode", pipeline.decoded))
    monkeypatch.setattr(refine, "erasure_root", tracing("root", refine.erasure_root))
    monkeypatch.setattr(refine, "invoke_service_code",
                        tracing("pvm", refine.invoke_service_code))
    return events


def test_a_safe_point_comes_before_the_decoding_and_before_the_erasure_root(
        monkeypatch: pytest.MonkeyPatch) -> None:
    rt, who, sid = _runtime()
    try:
        pkg, _ = packages.submit_json(rt, who, spin.package(sid, 1))
        events = _events(monkeypatch)
        # the worker pool's hook is the preemption check; any hook sees the same safe points
        with safepoint.installed(lambda: events.append("hook")):
            assert pipeline.process_next(rt, "w0") == pkg.id
        got = rt.view(ADMIN).get_package(pkg.id)
        assert got is not None and got.status == "applied"
        assert "decode" in events and "root" in events, events
        first_decode, root = events.index("decode"), events.index("root")
        assert "hook" in events[:first_decode], events  # after the claim, before decoding
        assert events[root - 1] == "hook", events  # the items' runs, a safe point, the root
        assert "pvm" in events[:root], events  # the refine's run came before it
    finally:
        rt.close()
