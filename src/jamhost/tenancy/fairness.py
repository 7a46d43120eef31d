"""Fair sharing between accounts: the pending-cap share and the scheduler's virtual time.

Pure rules; both stores apply them inside the transaction that changes the counters they
read (docs/scheduling.md has the rules, the guarantees and the limits).

Pending-cap share. The global cap `max_pending_packages` (C) is shared: an account may add a
pending package only while it holds fewer than `share(C, k)` = ceil(C / (k + 2)) of them,
where k is the number of *other* accounts holding pending packages at that moment (and
never more than `max_pending_per_account`). A lone account can fill at most half the cap,
and with k busy accounts each newcomer still finds room, so one tenant can no longer fill
the cap and leave others a 409 with none of their own quota used.

Scheduling. Start-time fair queuing over accounts with gas as the cost: each account has a
virtual time `vtime`; a worker claims for the account with the smallest `vtime` among those
with a queued package and fewer than `max_workers_per_account` running, and advances it by
`cost(declared gas, weight)`. When the package finishes, the gas declared but not used by
refine is given back (`refund`), so the account pays for the refine gas it actually used
plus the accumulate gas it declared. An account that goes from idle to busy starts where
the work in service started (`start_vtime` over the busy accounts' `in_service_start`): the
system virtual time of start-time fair queuing. Idle time is not banked, and the newcomer is
behind no busy account, even once their running packages finish and give gas back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

VTIME_UNIT = 1  # virtual-time units per gas at weight 1 (bigint room: ~10^9 packages of 10^10 gas)
MAX_WEIGHT = 1_000
DEFAULT_WEIGHT = 1


def share(cap: int, busy_others: int) -> int:
    """Pending packages one account may hold when `busy_others` other accounts hold some."""
    if cap <= 0:
        return 0
    return -(-cap // (busy_others + 2))


def weight_of(weights: Mapping[str, int], owner: str) -> int:
    """The operator's weight for an account (`runtime.jam.account_weights`), default 1."""
    return max(1, min(MAX_WEIGHT, int(weights.get(owner, DEFAULT_WEIGHT))))


def charge(gas: Any, weight: Any, greatest: Callable[[int, Any], Any] = max) -> Any:
    """The charge formula, written once for two kinds of numbers: Python ints (`cost`, and
    SQLite's claim, which charges from Python) and SQL expressions (PostgreSQL's claim picks
    the package and charges it in one statement: store/sql/statements.py renders this
    function with `greatest` = SQL's GREATEST over bigint columns, whose `//` is SQL's
    integer division). Integer operations only, so both agree exactly (positive operands:
    truncation is the floor); tests/integration/test_claim_path.py compares them."""
    return greatest(1, gas) * VTIME_UNIT // weight


def _both(a: Any, b: Any) -> Any:
    return a and b


def ahead(vtime: Any, running: Any, other_vtime: Any, both: Callable[[Any, Any], Any] = _both,
          ) -> Any:
    """The preempting claim's rule: an account at `vtime` with `running` packages running is
    served before a running package of an account at `other_vtime` (so that package yields
    to it, app/preemption.py) when it has no package running and a smaller virtual time.

    Written once for two kinds of values, as `charge` is: Python ints (the store's
    `accounts_behind`, store/sql/claims.py) and SQL expressions (its `claim_preempting`
    picks the account in one statement: store/sql/statements.py renders this function with
    `both` = SQL's AND); tests/integration/test_claim_path.py compares them."""
    return both(running == 0, vtime < other_vtime)


def ahead_of_running(vtime: int, running: int, queued: int, other_vtime: int) -> bool:
    """Whether a package an account just claimed is served before a running package of
    another account at `other_vtime` (which then yields to it, app/preemption.py,
    "Yielding"): the preempting claim's rule (`ahead`, with `vtime` and `running` as before
    the claim), for an account with nothing else queued (`queued`, after the claim).

    The sparse-flow priority of fair queues (FQ-CoDel's new flows, RFC 8290): the quiet
    tenant's package goes first, a backlogged tenant's next package never does. Without
    it, a flooding account's next package claimed beside a quiet tenant's running one was
    as often ahead by virtual times alone: the quiet tenant starts where the flood's work
    in service started, so the two are within one charge of each other, and each was
    ahead of the other, so whichever began second made the first yield (a quiet tenant's
    package then waited out a whole package of the flood: 8 to 10 ms of the slowest B runs
    in bench_fairness's short flood on PostgreSQL, 2026-12-04)."""
    return queued == 0 and bool(ahead(vtime, running, other_vtime))


def cost(gas: int, weight: int) -> int:
    """Virtual time one claim of `gas` costs an account of `weight`."""
    return int(charge(gas, weight))


def refund(declared: int, used: int, weight: int) -> int:
    """What finishing gives back: the claim charged `declared`, the work cost `used`."""
    used = min(max(1, used), max(1, declared))
    return cost(declared, weight) - cost(used, weight)


def in_service_start(vtime: int, running: Iterable[tuple[int, int]]) -> int:
    """Where a busy account's work in service started: its virtual time less what its
    running packages were charged at their claim (`running`: (declared gas, weight) each).

    Starting a newcomer at the busy accounts' virtual time instead (their *next* start)
    put it level with them, behind on ties, and behind again once their running packages
    finished and refunded unused gas: a quiet tenant waited for one more of their packages
    (docs/benchmarks.md, fairness)."""
    return vtime - sum(cost(gas, weight) for gas, weight in running)


def start_vtime(own: int, busy: Iterable[int], everyone_max: int) -> int:
    """An account becoming busy starts no earlier than the smallest `in_service_start` among
    the busy accounts (or, when none is busy, the largest virtual time ever reached): no
    credit for idling."""
    busy = list(busy)
    floor = min(busy) if busy else everyone_max
    return max(own, floor)
