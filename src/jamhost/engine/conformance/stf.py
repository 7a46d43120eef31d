"""The accumulation state transition (GP 0.7.2 §12): ready queue, dependencies, accumulated
history, and the outer (Δ+), parallel (Δ*) and single-service (Δ1) accumulation functions.

`accumulate_block` takes the newly available reports W of one block and the state pieces the
transition reads (τ, η'_0, ϑ, ξ, χ, δ) and returns the posterior ones, the accumulation
statistics and the accumulation-output root (what the w3f STF vectors call the output).

Each service runs through the same `jamhost.engine.accumulate.accumulate` as production;
services made (new) and removed (eject) join and leave δ after each Δ* round, and χ (with φ
and ι when tracked) follows its holders' changes (GP 0.7.2 eq. accpar, `merge_privileges`).
Deferred transfers made in one round are accumulated in the next round of Δ+ (GP 0.7.2).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from jamhost.domain.codec import encode_fixed
from jamhost.domain.types import WorkReport
from jamhost.engine.account import AccountState
from jamhost.engine.accumulate import (
    AccumulateOutcome,
    accumulate,
    accumulate_gas,
    integrate_provision,
)
from jamhost.engine.constants import ProtocolConstants
from jamhost.engine.keccak import keccak_256
from jamhost.engine.merkle import well_balanced_root
from jamhost.engine.operands import AccumulateOperand, DeferredTransfer
from jamhost.engine.privileges import Privileges, merge_privileges
from jamhost.pvm.interface import PvmEngine

#: A ready-queue entry: a report and the package hashes it still waits for (GP ϑ).
Queued = tuple[WorkReport, frozenset[bytes]]


@dataclass(slots=True)
class AccumulationState:
    """The state the accumulation transition reads and writes."""

    slot: int
    """τ: the previous block's timeslot."""
    entropy: bytes
    """η'_0: the posterior entropy accumulator."""
    ready_queue: list[list[Queued]]
    """ϑ: E slots of reports waiting for dependencies."""
    accumulated: list[frozenset[bytes]]
    """ξ: E slots of package hashes accumulated."""
    privileges: Privileges
    accounts: dict[int, AccountState]
    """δ: the service accounts."""


@dataclass(slots=True)
class ServiceAccumulation:
    """One service's accumulation statistics of the block: (G(s), N(s)) of GP eq.
    accumulationstatisticsdef."""

    count: int = 0
    gas_used: int = 0


@dataclass(slots=True)
class BlockAccumulation:
    """The result of `accumulate_block`."""

    state: AccumulationState
    statistics: dict[int, ServiceAccumulation]
    outputs: list[tuple[int, bytes]]
    """θ': (service, yield hash) pairs, ascending by service."""
    root: bytes
    """M_B([E_4(s) ++ h], H_K) over θ': the accumulation-output root."""
    reports_accumulated: int
    logs: list[str] = field(default_factory=list)
    outcomes: list[tuple[int, AccumulateOutcome]] = field(default_factory=list)
    """Every Ψ_A run, in order: (service, outcome)."""


def package_hashes(reports: Sequence[WorkReport]) -> frozenset[bytes]:
    """P(w): the package hashes of some reports (GP 0.7.2 §12.1)."""
    return frozenset(r.package_spec.hash for r in reports)


def edit_queue(queue: Sequence[Queued], done: frozenset[bytes]) -> list[Queued]:
    """E(r, x): drop entries whose package is in x and remove x from the dependencies."""
    return [(r, deps - done) for r, deps in queue if r.package_spec.hash not in done]


def accumulatable(queue: Sequence[Queued]) -> list[WorkReport]:
    """Q(r): the reports whose dependencies resolve, in order (GP 0.7.2 §12.1)."""
    out: list[WorkReport] = []
    while True:
        ready = [r for r, deps in queue if not deps]
        if not ready:
            return out
        out += ready
        queue = edit_queue(queue, package_hashes(ready))


def output_root(outputs: Sequence[tuple[int, bytes]]) -> bytes:
    """M_B([E_4(s) ++ h | (s, h) ∈ θ'], H_K) (GP 0.7.2 §7.3 accumulation-output commitment)."""
    leaves = []
    for service, h in outputs:
        out = bytearray()
        encode_fixed(out, service, 4)
        leaves.append(bytes(out) + h)
    return well_balanced_root(leaves, keccak_256)


@dataclass(slots=True)
class _Round:
    """What one Δ* round produced."""

    accounts: dict[int, AccountState]
    privileges: Privileges
    transfers: list[DeferredTransfer]
    outputs: dict[int, bytes]
    gas: list[tuple[int, int]]
    outcomes: list[tuple[int, AccumulateOutcome]]


class _Accumulator:
    """Δ+, Δ* and Δ1 over one block (GP 0.7.2 §12.2)."""

    def __init__(
        self,
        timeslot: int,
        entropy: bytes,
        constants: ProtocolConstants,
        engine: PvmEngine | None,
        gp_version: str,
    ) -> None:
        self.timeslot = timeslot
        self.entropy = entropy
        self.constants = constants
        self.engine = engine
        self.gp_version = gp_version

    def single(  # noqa: PLR0913
        self,
        accounts: dict[int, AccountState],
        privileges: Privileges,
        transfers: Sequence[DeferredTransfer],
        reports: Sequence[WorkReport],
        free: dict[int, int],
        service: int,
    ) -> AccumulateOutcome | None:
        """Δ1(o, t, r, f, s) = Ψ_A(o, τ', s, g, i^T ⌢ i^U) (GP 0.7.2 eq. accone)."""
        mine = [t for t in transfers if t.dest == service]
        operands = [
            AccumulateOperand.from_digest(r, d)
            for r in reports
            for d in r.results
            if d.service_id == service
        ]
        gas = accumulate_gas(operands, mine, free.get(service, 0))
        account = accounts.get(service)
        if account is None:
            return None
        return accumulate(
            service,
            account,
            operands,
            mine,
            timeslot=self.timeslot,
            gas_limit=gas,
            entropy=self.entropy,
            other_account=accounts.get,
            constants=self.constants,
            engine=self.engine,
            gp_version=self.gp_version,
            privileges=privileges,
            service_exists=accounts.__contains__,
        )

    def parallel(  # noqa: PLR0913
        self,
        accounts: dict[int, AccountState],
        privileges: Privileges,
        transfers: Sequence[DeferredTransfer],
        reports: Sequence[WorkReport],
        free: dict[int, int],
    ) -> _Round:
        """Δ*(o, t, r, f) (GP 0.7.2 eq. accpar): every service from the same prior state;
        δ' = P((d ∪ n) \\ m, provisions), χ' from the holders' post-states."""
        services = {d.service_id for r in reports for d in r.results}
        services |= set(free) | {t.dest for t in transfers}
        post = dict(accounts)
        out = _Round(post, privileges, [], {}, [], [])
        provided: list[tuple[int, bytes]] = []
        removed: set[int] = set()
        post_privileges: dict[int, Privileges] = {}
        for service in sorted(services):
            result = self.single(accounts, privileges, transfers, reports, free, service)
            if result is None:
                out.gas.append((service, 0))
                continue
            out.outcomes.append((service, result))
            post[service] = result.account
            for created in result.created:
                post[created.service_id] = created.account
            removed.update(result.ejected)
            if result.privileges is not None:
                post_privileges[service] = result.privileges
            out.gas.append((service, result.gas_used))
            out.transfers += result.transfers
            provided += result.provided
            if result.yield_hash is not None:
                out.outputs[service] = result.yield_hash
        for service in removed:
            post.pop(service, None)
        for service, blob in provided:  # P((d ∪ n) \ m, provisions)
            if service in post:
                if post[service] is accounts.get(service):  # never write the prior state
                    post[service] = post[service].overlaid()
                integrate_provision(post[service], blob, self.timeslot)
        out.privileges = merge_privileges(privileges, post_privileges)
        return out

    def outer(
        self,
        gas: int,
        reports: Sequence[WorkReport],
        accounts: dict[int, AccountState],
        privileges: Privileges,
        free: dict[int, int],
    ) -> tuple[int, _Round]:
        """Δ+(g, t, r, o, f) (GP 0.7.2 eq. accseq), as a loop over rounds; the result's
        round holds the final δ and χ and everything the rounds produced."""
        done = 0
        total_round = _Round(accounts, privileges, [], {}, [], [])
        transfers: list[DeferredTransfer] = []
        while True:
            i, total = 0, 0
            for report in reports:
                total += sum(d.accumulate_gas for d in report.results)
                if total > gas:
                    break
                i += 1
            if len(transfers) + i + len(free) == 0:
                return done, total_round
            round_ = self.parallel(accounts, privileges, transfers, reports[:i], free)
            gas = gas + sum(t.gas for t in transfers) - sum(u for _s, u in round_.gas)
            done += i
            accounts, privileges = round_.accounts, round_.privileges
            total_round.accounts, total_round.privileges = accounts, privileges
            total_round.outputs.update(round_.outputs)
            total_round.gas += round_.gas
            total_round.outcomes += round_.outcomes
            transfers, reports, free = round_.transfers, reports[i:], {}


def accumulate_block(  # noqa: PLR0913
    state: AccumulationState,
    timeslot: int,
    reports: Sequence[WorkReport],
    *,
    constants: ProtocolConstants | None = None,
    engine: PvmEngine | None = None,
    gp_version: str = "0.7.2",
) -> BlockAccumulation:
    """The accumulation part of the block transition at timeslot τ' (GP 0.7.2 §12)."""
    constants = constants or ProtocolConstants.full()
    epoch = constants.epoch_length
    m = timeslot % epoch
    history = frozenset().union(*state.accumulated)
    immediate = [r for r in reports if not r.context.prerequisites and not r.segment_root_lookup]
    queued = edit_queue(
        [
            (
                r,
                frozenset(r.context.prerequisites)
                | {x.work_package_hash for x in r.segment_root_lookup},
            )
            for r in reports
            if r.context.prerequisites or r.segment_root_lookup
        ],
        history,
    )
    waiting = [entry for slot in state.ready_queue[m:] + state.ready_queue[:m] for entry in slot]
    ready = immediate + accumulatable(edit_queue(waiting + queued, package_hashes(immediate)))

    free = dict(state.privileges.always_acc)
    gas = max(
        constants.block_acc_gas,
        constants.report_acc_gas * constants.core_count + sum(free.values()),
    )
    runner = _Accumulator(timeslot, state.entropy, constants, engine, gp_version)
    n, result = runner.outer(gas, ready, dict(state.accounts), state.privileges, free)
    accounts, outputs, used = result.accounts, result.outputs, result.gas
    logs = [line for _s, o in result.outcomes for line in o.logs]

    statistics: dict[int, ServiceAccumulation] = {}
    for r in ready[:n]:
        for d in r.results:
            statistics.setdefault(d.service_id, ServiceAccumulation()).count += 1
    for service, u in used:
        statistics.setdefault(service, ServiceAccumulation()).gas_used += u
    # GP 0.7.2: services with G(s) + N(s) ≠ 0; GP 0.7.0: those with digests (N(s) ≠ []).
    statistics = {
        s: v for s, v in statistics.items() if v.count or (v.gas_used and gp_version != "0.7.0")
    }
    for service in statistics:
        if service in accounts:
            accounts[service] = replace(accounts[service], last_accumulation=timeslot)

    newly = package_hashes(ready[:n])
    accumulated = [*state.accumulated[1:], newly]
    ready_queue: list[list[Queued]] = [[] for _ in range(epoch)]
    for i in range(epoch):
        slot = (m - i) % epoch
        if i == 0:
            ready_queue[slot] = edit_queue(queued, newly)
        elif i < timeslot - state.slot:
            ready_queue[slot] = []
        else:
            ready_queue[slot] = edit_queue(state.ready_queue[slot], newly)

    pairs = sorted(outputs.items())
    post = AccumulationState(
        slot=timeslot,
        entropy=state.entropy,
        ready_queue=ready_queue,
        accumulated=accumulated,
        privileges=result.privileges,
        accounts=accounts,
    )
    return BlockAccumulation(
        post, statistics, pairs, output_root(pairs), n, logs, result.outcomes
    )
