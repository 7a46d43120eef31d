"""Cooperative preemption (issue 14; app/preemption.py), on real `jamhost serve` processes
with in-process workers, on SQLite and PostgreSQL, both PVM engines.

While one long package of A runs, B's small package is claimed by A's worker at a safe
point, run nested and applied, and A's package then goes on and is applied too, claimed
once. What is observed comes from the store's own timestamps and the API's receipts.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.conftest import make_tenant
from tests.integration import spin
from tests.integration.test_fair_execution import HEAVY, rows, submit_all, wait_applied
from tests.integration.test_pipeline import chain_holds

# Steps of A's long package: some 2 to 4 s of refine on each engine (the native core runs
# the spin loop some 50 times faster than the Python engine).
LONG = {"native": 400_000_000, "python": 3 * HEAVY}
KEYS = {"rate_limit_per_minute": 0, "service_rate_limit_per_minute": 0,
        "account_rate_limit_per_minute": 0, "attestor_recheck_gas": 0}


def wait_status(server: Any, token: str, pid: str, status: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    with server.client(token) as c:
        while time.monotonic() < deadline:
            if c.get(f"/jam/packages/{pid}").json()["status"] == status:
                return
            time.sleep(0.02)
    raise AssertionError(f"{pid} not {status} after {timeout}s")


def runs(keys: dict[str, Any], services: list[int]) -> list[tuple[int, int, int, str]]:
    """(started_at, finished_at, attempts, claimed_by) of the applied packages of `services`."""
    ids = ",".join(str(s) for s in services)
    return sorted(rows(keys, f"SELECT started_at, updated_at, attempts, claimed_by "
                             f"FROM jam_packages WHERE status = 'applied' "
                             f"AND service_id IN ({ids})"))


@pytest.mark.parametrize("engine", ["native", "python"])
def test_quiet_package_runs_nested_inside_a_long_running_one(server_factory, store_keys,
                                                             engine) -> None:
    """One worker: B's small packages, submitted while A's long package runs, are applied
    before A's finishes (on main B waited for all of it); both end applied, A's claimed
    once, and every service's receipt chain holds."""
    server = server_factory(workers=1, **store_keys, **KEYS, pvm_engine=engine)
    a = make_tenant(server, "busy", code=spin.build())
    b = make_tenant(server, "quiet", code=spin.build())
    [a_id] = submit_all(server, a.token, [spin.package(a.service_id, LONG[engine])])
    wait_status(server, a.token, a_id, "refining")
    b_ids = submit_all(server, b.token, [spin.package(b.service_id, 1, i) for i in range(2)])
    wait_applied(server, b.token, b_ids)
    with server.client(a.token) as c:
        a_status = c.get(f"/jam/packages/{a_id}").json()["status"]
    wait_applied(server, a.token, [a_id])

    assert a_status == "refining"  # B was applied while A's package still ran
    [(a_start, a_end, a_attempts, a_worker)] = runs(store_keys, [a.service_id])
    b_runs = runs(store_keys, [b.service_id])
    assert len(b_runs) == 2
    for b_start, b_end, b_attempts, b_worker in b_runs:
        assert a_start < b_start and b_end < a_end, (a_start, a_end, b_runs)
        assert b_attempts == 1 and b_worker == a_worker + "/nested"
    assert a_attempts == 1  # A kept its claim and its lease throughout
    for t in (a, b):
        with server.client(t.token) as c:
            items, _root = chain_holds(c, t.service_id)
            assert [r["entry_type"] for r in items].count("package") == (
                1 if t is a else 2)


def test_preemption_keeps_every_account_within_its_worker_limit(server_factory,
                                                                store_keys) -> None:
    """Two workers, one package per account at once: A's long package on one worker, B's
    on the other. A's worker may not run B's next packages nested while one of B's runs,
    so B's packages never overlap in time (nor A's)."""
    server = server_factory(workers=2, max_workers_per_account=1, **store_keys, **KEYS,
                            pvm_engine="native")
    a = make_tenant(server, "busy", code=spin.build())
    b = make_tenant(server, "other", code=spin.build())
    [a_id] = submit_all(server, a.token, [spin.package(a.service_id, LONG["native"])])
    wait_status(server, a.token, a_id, "refining")
    # each of B's some 0.1 s: several of A's safe-point store checks fall inside each
    b_ids = submit_all(server, b.token, [spin.package(b.service_id, 40_000_000, i)
                                         for i in range(4)])
    wait_applied(server, b.token, b_ids)
    wait_applied(server, a.token, [a_id])

    b_runs = runs(store_keys, [b.service_id])
    assert len(b_runs) == 4
    for (_, end, _, _), (start, _, _, _) in zip(b_runs, b_runs[1:], strict=False):
        assert start >= end, f"two of B's packages ran at once: {b_runs}"
    [(_, _, a_attempts, _)] = runs(store_keys, [a.service_id])
    assert a_attempts == 1


def test_both_leases_outlive_a_long_nested_package(server_factory, store_keys) -> None:
    """A lease of 1 s and a nested package of B longer than it: the heartbeat renews A's
    claim (parked) and B's (running nested) alike, so each is claimed once and applied."""
    server = server_factory(workers=1, **store_keys, **KEYS, pvm_engine="native",
                            extra_env={"JAMHOST_WORKER_LEASE_SECONDS": "1"})
    a = make_tenant(server, "busy", code=spin.build())
    b = make_tenant(server, "quiet", code=spin.build())
    [a_id] = submit_all(server, a.token, [spin.package(a.service_id, LONG["native"])])
    wait_status(server, a.token, a_id, "refining")
    b_ids = submit_all(server, b.token, [spin.package(b.service_id, 2 * LONG["native"])])
    wait_applied(server, b.token, b_ids)
    wait_applied(server, a.token, [a_id])

    [(a_start, a_end, a_attempts, a_worker)] = runs(store_keys, [a.service_id])
    [(b_start, b_end, b_attempts, b_worker)] = runs(store_keys, [b.service_id])
    assert b_worker == a_worker + "/nested" and a_start < b_start < b_end < a_end
    assert b_end - b_start > 1_000_000  # the nested package did outlive the lease
    assert a_attempts == 1 and b_attempts == 1
