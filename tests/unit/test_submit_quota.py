"""The submit's quota rules (tenancy/submit_quota.py) and usage reconciliation
(tenancy/usage.py), in milliseconds: pure functions of what the adapter read, no store."""

from __future__ import annotations

from jamhost.domain.footprint import REQUEST_ROW_BYTES
from jamhost.domain.model import QuotaLimits, export_set_bytes
from jamhost.domain.refusals import GasQuotaExceeded, PendingLimit
from jamhost.tenancy import fairness
from jamhost.tenancy.submit_quota import (
    AccountTake,
    Others,
    account_refusal,
    account_take,
    needs_running,
    service_refusal,
    service_take,
)
from jamhost.tenancy.usage import (
    AccountCounts,
    ServiceRows,
    ServiceUsage,
    account_counts,
    service_usage,
)

ALONE = Others(busy=0, vmin=None, vmax=0, idle=True)


def test_a_lone_account_may_fill_half_the_cap() -> None:
    assert account_take(10, None, ALONE).room == 5
    assert account_take(10, 3, ALONE).room == 3  # its own limit is lower
    assert account_take(0, None, ALONE).room == 0


def test_each_busy_account_shrinks_the_share() -> None:
    busy = Others(busy=2, vmin=100, vmax=300, idle=False)
    assert account_take(12, None, busy).room == fairness.share(12, 2) == 3


def test_an_idle_account_starts_where_the_work_in_service_started() -> None:
    joining = Others(busy=1, vmin=1000, vmax=1000, idle=True)
    assert needs_running(joining) and not needs_running(ALONE)
    # bob's running package was charged 400 at its claim: bob's work started at 600
    take = account_take(10, None, joining, running=[("bob", 1000, 400)])
    assert take.start == 600
    # weight 4: the same gas cost bob 100, so it started at 900
    assert account_take(10, None, joining, [("bob", 1000, 400)], {"bob": 4}).start == 900
    # a busy account is not given the running packages: it keeps its place
    assert account_take(10, None, Others(1, 1000, 1000, idle=False),
                        [("bob", 1000, 400)]).start == 1000
    # no one busy: no earlier than the largest virtual time ever reached (no idle credit)
    assert account_take(10, None, Others(0, None, 7000, idle=True)).start == 7000


def test_the_account_refusal_names_the_bound_that_refused() -> None:
    own = account_refusal(AccountTake(room=3, start=0), account_pending=3)
    share = account_refusal(AccountTake(room=2, start=0), account_pending=3)
    assert isinstance(own, PendingLimit) and "account's pending-package limit" in own.message
    assert "share of the global" in share.message
    assert "share of the global" in account_refusal(AccountTake(5, 0), None).message


def test_the_service_quotas() -> None:
    limits = QuotaLimits(pending_packages=2, storage_bytes=0, gas_per_hour=1000)
    take = service_take(limits, refine_gas=600, accumulate_gas=100)
    assert (take.max_count, take.gas, take.gas_room) == (2, 700, 300)
    assert isinstance(service_refusal(2, limits, 9), PendingLimit)
    spent = service_refusal(1, limits, 9)
    assert isinstance(spent, GasQuotaExceeded) and spent.gas_window == 9


def test_a_services_usage_from_its_rows() -> None:
    rows = ServiceRows(pending=3, preimage_bytes=100, storage_bytes=40, requests=2,
                       export_sets=(1, 65))
    assert service_usage(rows) == ServiceUsage(
        3, 100 + 40 + 2 * REQUEST_ROW_BYTES + export_set_bytes(1) + export_set_bytes(65))
    assert service_usage(ServiceRows(0, 0, 0, 0)) == ServiceUsage(0, 0)


def test_account_counts_from_the_rows() -> None:
    counts = account_counts([("alice", 2), ("bob", 1)],
                            [("alice", "pending", 3), ("alice", "refining", 1),
                             ("carol", "pending", 1), ("bob", "applied", 5)])
    assert counts == {"alice": AccountCounts(2, 4, 3, 1), "bob": AccountCounts(1, 0, 0, 0),
                      "carol": AccountCounts(0, 1, 1, 0)}
