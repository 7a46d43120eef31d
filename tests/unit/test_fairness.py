"""The fair-sharing rules (tenancy/fairness.py), as pure functions."""

from __future__ import annotations

from jamhost.tenancy import fairness


def test_share_of_the_global_cap() -> None:
    assert [fairness.share(20, k) for k in range(5)] == [10, 7, 5, 4, 4]
    assert fairness.share(1, 0) == 1  # a cap of one is still usable alone
    assert fairness.share(0, 0) == 0
    # k busy accounts each at their share leave room for the next one
    for cap in (3, 10, 20, 10_000):
        for k in range(1, 30):
            assert k * fairness.share(cap, k - 1) <= cap + k


def test_weights_and_costs() -> None:
    assert fairness.weight_of({"a": 4}, "a") == 4
    assert fairness.weight_of({"a": 4}, "b") == 1
    assert fairness.weight_of({"a": 10**9}, "a") == fairness.MAX_WEIGHT
    assert fairness.cost(1_000, 4) == 250
    assert fairness.cost(0, 1) == 1  # every claim costs something
    assert fairness.refund(1_000, 400, 1) == 600
    assert fairness.refund(1_000, 5_000, 1) == 0  # never more than was charged
    assert fairness.refund(1_000, 400, 2) == fairness.cost(1_000, 2) - fairness.cost(400, 2)


def test_start_vtime_banks_no_idle_credit() -> None:
    assert fairness.start_vtime(5, [100, 300], 900) == 100
    assert fairness.start_vtime(500, [100, 300], 900) == 500  # its own recent use counts
    assert fairness.start_vtime(5, [], 900) == 900  # nobody busy: the furthest reached


def test_in_service_start_takes_back_what_running_packages_were_charged() -> None:
    assert fairness.in_service_start(10_000, []) == 10_000
    assert fairness.in_service_start(10_000, [(2_000, 1), (4_000, 4)]) == 10_000 - 2_000 - 1_000
    # a newcomer placed there is behind no busy account once these packages refund
    assert fairness.in_service_start(10_000, [(2_000, 1)]) < 10_000 - fairness.refund(
        2_000, 1, 1)


def test_a_package_is_ahead_of_running_ones_only_for_an_account_with_nothing_queued() -> None:
    """The preempting claim's rule, for an account with no other package running before
    the claim and nothing else queued after it (the sparse-flow priority)."""
    assert fairness.ahead_of_running(100, 0, 0, 500)
    assert not fairness.ahead_of_running(100, 0, 1, 500)  # backlogged: never ahead
    assert not fairness.ahead_of_running(100, 1, 0, 500)  # another of its own running
    assert not fairness.ahead_of_running(500, 0, 0, 500)  # not below
