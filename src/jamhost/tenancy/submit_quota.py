"""What a submit may take, planned once: the submit's quota rules as pure functions.

The store takes every quota by a conditional UPDATE in the insert's transaction (never
read-then-write: replicas cannot pass a limit); what those UPDATEs are bounded by, and what
a refusal says, is decided here, from what the adapter read in that transaction:

- the global cap (`max_pending_packages`): the counter row's bound, `global_refusal`;
- the account's bound (`account_take`): its share of the global cap given the other busy
  accounts (tenancy/fairness.py), within `max_pending_per_account`, and the virtual time
  it starts at when it goes from idle to busy; `account_refusal` says which bound it was;
- the service's bounds (`service_take`): its pending-package quota and the room left in its
  hourly gas budget for this package's declared gas; `service_refusal` says which one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from jamhost.domain.model import QuotaLimits
from jamhost.domain.refusals import GasQuotaExceeded, PendingLimit, Refusal
from jamhost.tenancy import fairness


@dataclass(frozen=True)
class Others:
    """The other accounts, as the submitting account's row finds them (under the counter
    row's lock): how many are busy, the smallest virtual time among the active ones (None:
    no one is), the largest ever reached, and whether the submitter itself is idle."""

    busy: int
    vmin: int | None
    vmax: int
    idle: bool


@dataclass(frozen=True)
class AccountTake:
    room: int  # the account may hold fewer than this many pending packages
    start: int  # its virtual time if it goes from idle to busy with this package


@dataclass(frozen=True)
class ServiceTake:
    max_count: int  # pending packages the service may hold
    gas: int  # the package's declared gas (refine, with the tariff's units, and accumulate)
    gas_room: int  # the gas the window may hold before this package's


def global_refusal() -> PendingLimit:
    return PendingLimit("the runtime's global pending-package cap is reached")


def needs_running(others: Others) -> bool:
    """Whether `account_take` needs the busy accounts' running packages: only for an idle
    account joining busy ones (where the work in service started)."""
    return others.idle and others.vmin is not None


def account_take(max_pending: int, account_pending: int | None, others: Others,
                 running: Iterable[tuple[str, int, int]] = (),
                 weights: Mapping[str, int] | None = None) -> AccountTake:
    """The account's bound and start time. `running`: (owner, its vtime, declared gas) of
    each running package of the other accounts, when `needs_running`."""
    share = fairness.share(max_pending, others.busy)
    room = share if account_pending is None else min(share, account_pending)
    busy = [] if others.vmin is None else [others.vmin]
    if needs_running(others):
        charges: dict[str, tuple[int, list[tuple[int, int]]]] = {}
        for owner, vtime, gas in running:
            charges.setdefault(owner, (vtime, []))[1].append(
                (gas, fairness.weight_of(weights or {}, owner)))
        busy += [fairness.in_service_start(v, r) for v, r in charges.values()]
    return AccountTake(room, fairness.start_vtime(0, busy, others.vmax))


def account_refusal(take: AccountTake, account_pending: int | None) -> PendingLimit:
    """Which of the account's bounds refused: its own limit, or its share of the cap."""
    if account_pending is not None and take.room == account_pending:
        return PendingLimit("the account's pending-package limit is reached")
    return PendingLimit("the account's share of the global pending-package cap is reached")


def service_take(limits: QuotaLimits, refine_gas: int, accumulate_gas: int) -> ServiceTake:
    gas = refine_gas + accumulate_gas
    return ServiceTake(limits.pending_packages, gas, limits.gas_per_hour - gas)


def service_refusal(pending: int, limits: QuotaLimits, gas_window: int) -> Refusal:
    """Which of the service's quotas refused, from its pending count: the pending-package
    quota when it is full, else the hour's gas budget."""
    if pending >= limits.pending_packages:
        return PendingLimit("the service's pending-package quota is reached")
    return GasQuotaExceeded("the service's gas budget for this hour is spent",
                            gas_window=gas_window)
