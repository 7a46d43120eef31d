"""The worker's hot path: the fair claim of the next package, the lease, and the finish that
records an attempt's end (and applies it) in one transaction."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from jamhost.domain.model import PackageOutcome, PackageRecord, now_us
from jamhost.store.sql import statements as stmts
from jamhost.store.sql import tables as t
from jamhost.store.sql.accumulations import Accumulations
from jamhost.store.sql.base import MAX_I64, Lost, retry_on_deadlock
from jamhost.store.sql.direct import Direct
from jamhost.store.sql.engine import connect
from jamhost.store.sql.rows import package_record
from jamhost.store.sql.segments import Segments
from jamhost.tenancy import fairness

# The claim's and the finish's statements, on SQLite's cursor (store/sql/direct.py): each
# sent through SQLAlchemy's execution cost 40 to 100 us of Python, about ten per package.
_CHOICE = {kind: Direct(stmt) for kind, stmt in stmts.CHOICE.items()}
_NOTHING_QUEUED = Direct(stmts.NOTHING_QUEUED)
_CHARGE_ACCOUNT = Direct(stmts.CHARGE_ACCOUNT)
_SERVED = {kind: Direct(stmt) for kind, stmt in stmts.SERVED.items()}
_MARK_CLAIMED = Direct(stmts.MARK_CLAIMED)
_PREEMPTING_ACCOUNT = {kind: Direct(stmt) for kind, stmt in stmts.PREEMPTING_ACCOUNT.items()}
_ACCOUNT_HEAD = {kind: Direct(stmt) for kind, stmt in stmts.ACCOUNT_HEAD.items()}
_RENEW_CLAIM = Direct(stmts.RENEW_CLAIM)
_FINISH = Direct(stmts.FINISH)
_RELEASE_PENDING = Direct(stmts.RELEASE_PENDING)
_RELEASE_SERVICE = Direct(stmts.RELEASE_SERVICE)
_RELEASE_ACCOUNT = Direct(stmts.RELEASE_ACCOUNT)
_REPORT_INSERT = Direct(t.reports.insert())
_ATTESTATIONS_INSERT = Direct(t.attestations.insert())


class Claims(Accumulations, Segments):
    """Claiming and finishing packages."""

    @retry_on_deadlock
    def claim_package(self, worker: str, now: int, lease_us: int, *,
                      max_running: int | None = None,
                      weights: dict[str, int] | None = None) -> PackageRecord | None:
        """Claim a package whose worker's lease ran out, else the next one by fair queuing:
        the account with the smallest virtual time and a free worker slot, its least
        recently served service, that service's oldest pending package (tenancy/fairness.py).

        PostgreSQL: one statement, `FOR UPDATE SKIP LOCKED` on the account row and the
        package row, so concurrent workers never claim the same package nor pass an
        account's worker limit, and take the next account rather than wait. When the row it
        skipped was the only claimable account's (`locked_out`: that account's finish holds
        it to its commit, or another worker's claim does), the claim waits for that lock and
        is sent again, rather than coming back empty and leaving the worker asleep for
        IDLE_SLEEP with work queued. SQLite: the write transaction is `BEGIN IMMEDIATE`."""
        limit = MAX_I64 if max_running is None else max_running
        if self.dialect == "postgres":
            owners = sorted(weights or {})
            params = {
                "max_running": limit, "worker": worker,
                "weight_owners": owners, "default_weight": fairness.DEFAULT_WEIGHT,
                "weight_values": [fairness.weight_of(weights or {}, o) for o in owners]}
            with connect(self._reader) as conn:  # autocommit: each statement is atomic
                for attempt in range(stmts.LOCKED_OUT_RETRIES):
                    if attempt:  # after a wait: the clock of now (`last_claimed`, the lease)
                        now = max(now, now_us())
                    # SKIP LOCKED: the claim statement never waits, so the clock of now
                    row = conn.execute(stmts.PG_CLAIM, {
                        **params, "now": now, "lease_until": now + lease_us,
                        "started": max(now, now_us())}).one()
                    if row.locked_out is None:
                        break
                    if not _wait_for_account(conn, row.locked_out):
                        return None  # held for longer than WAIT_TIMEOUT: the next poll
            if row.seq is not None:
                return package_record(row)
            if row.next_owner is None:
                return None  # nothing expired, no account with queued work and a free slot
        return self._claim_by_steps(worker, now, lease_us, limit, weights or {})

    def _claim_by_steps(self, worker: str, now: int, lease_us: int, limit: int,
                        weights: dict[str, int]) -> PackageRecord | None:
        """The claim in one write transaction: the choice in one read (stmts.CHOICE, the
        same rule as PG_CLAIM's), then the account's charge, the service's `last_claimed`
        and the mark, which returns the row. SQLite's (under `BEGIN IMMEDIATE`; it cannot
        change several tables in one statement), and PostgreSQL's when an account's queued
        count drifted."""
        with self._write(lease=True) as conn:
            for _ in range(8):
                choice = _CHOICE[self.dialect].first(conn, {"now": now, "max_running": limit})
                assert choice is not None  # one row, always (its columns may be NULL)
                if choice.expired is not None:  # its account was charged by its first claim
                    return self._mark(conn, choice.expired, worker, now, lease_us)
                if choice.owner is None:
                    return None
                if choice.seq is None:  # the queued count drifted (a crash, a manual edit)
                    _NOTHING_QUEUED.run(conn, {"acct": choice.owner})
                    continue
                return self._take(conn, choice.owner, choice, worker, now, lease_us, weights)
            return None

    def _take(self, conn: sa.Connection, owner: str, head: Any, worker: str, now: int,
              lease_us: int, weights: dict[str, int]) -> PackageRecord:
        """The take of the fair choice's `head` package (seq, service_id, gas), for the claim
        and for preemption alike: the account charged fairness.cost, the service marked
        served, the package claimed (_mark)."""
        _CHARGE_ACCOUNT.run(conn, {"acct": owner, "cost": fairness.cost(
            head.gas, fairness.weight_of(weights, owner))})
        _SERVED[self.dialect].run(conn, {"sid": head.service_id, "now": now})
        return self._mark(conn, head.seq, worker, now, lease_us)

    @staticmethod
    def _mark(conn: sa.Connection, seq: int, worker: str, now: int,
              lease_us: int) -> PackageRecord:
        """The package marked claimed by `worker`, leased until now + lease_us; the row
        (RETURNING). The clock is read now, holding the locks: a claim that had to wait for
        the finish that freed the account's worker slot starts after that finish, as
        recorded."""
        return package_record(_MARK_CLAIMED.first(conn, {
            "claimed": seq, "worker": worker, "lease_until": now + lease_us, "now": now,
            "started": max(now, now_us())}))

    def accounts_behind(self, owner: str, others: Sequence[str], charged: int) -> list[str]:
        """Of `others` (accounts with a package running in the caller's process), those the
        fair rule serves after `owner`, whose package the caller just claimed (its claim
        charged `owner` `charged`): `owner` has that one package running and nothing else
        queued, and its virtual time before that charge is below theirs
        (fairness.ahead_of_running: the preempting claim's rule, by which that package
        would have run nested had no worker been free, for a quiet account;
        app/preemption.py, "Yielding")."""
        if not others:
            return []
        with self._read() as conn:
            rows = conn.execute(stmts.VTIMES, {"owners": [owner, *others]}).all()
        mine = next((r for r in rows if r.owner == owner), None)
        if mine is None:
            return []
        # `owner` as it was before the claim: one package fewer running, `charged` less
        vtime, running = mine.vtime - charged, mine.running - 1
        return sorted(r.owner for r in rows if r.owner != owner and fairness.ahead_of_running(
            vtime, running, mine.queued, r.vtime))

    def renew_claim(self, package_id: bytes, worker: str, until: int) -> bool:
        """The worker's heartbeat: push its lease to `until` while it still holds the claim."""
        with self._write(lease=True) as conn:
            return _RENEW_CLAIM.run(conn, {"package_id": package_id, "worker": worker,
                                           "until": until}) == 1

    @retry_on_deadlock
    def claim_preempting(self, worker: str, now: int, lease_us: int, *, running_service: int,
                         max_running: int | None = None,
                         weights: dict[str, int] | None = None) -> PackageRecord | None:
        """For a worker running a package of `running_service`: the package of another
        account that the fair rule would serve before that package's account, to run nested
        (app/preemption.py), or None. The account has a queued package, no package running
        and a smaller virtual time; its package is taken and charged as `claim_package`
        takes and charges one, in one write transaction (PostgreSQL: the account row locked
        `FOR UPDATE SKIP LOCKED`, as the claim locks it), so a package is never claimed twice
        and no account passes its worker limit. Expired leases are left to `claim_package`."""
        limit = MAX_I64 if max_running is None else max_running
        params = {"sid": running_service, "max_running": limit}
        # Nearly always there is none: find that out with a read (no write lock on SQLite,
        # no transaction on PostgreSQL), then decide again under the write transaction.
        with self._read() as conn:
            if _PREEMPTING_ACCOUNT["sqlite"].scalar(conn, params) is None:
                return None
        with self._write(lease=True) as conn:
            for _ in range(8):
                owner = _PREEMPTING_ACCOUNT[self.dialect].scalar(conn, params)
                if owner is None:
                    return None
                head = _ACCOUNT_HEAD[self.dialect].first(conn, {"acct": owner})
                if head is None:  # the queued count drifted (a crash, a manual edit): repair
                    _NOTHING_QUEUED.run(conn, {"acct": owner})
                    continue
                return self._take(conn, owner, head, worker, now, lease_us, weights or {})
            return None

    def extend_lease(self, package_id: bytes, worker: str, until: int) -> bool:
        return self.renew_claim(package_id, worker, until)

    @retry_on_deadlock
    def finish_package(self, outcome: PackageOutcome, storage_limit: int | None = None) -> bool:
        """Record the end of an attempt, atomically: status, report, attestations, state
        changes, receipts, usage. False (and nothing written) if this worker no longer holds
        the package, e.g. its lease ran out and another worker took it over."""
        try:
            with self._write() as conn:
                self._record_finish(conn, outcome, storage_limit, now_us())
                self._release_account(conn, outcome)
        except Lost:
            return False
        return True

    def _record_finish(self, conn: sa.Connection, outcome: PackageOutcome,
                       storage_limit: int | None, at: int) -> None:
        """The finish up to its last statement: everything but the account's release.

        Lock order everywhere (one order, so no two writers wait for each other in a
        cycle): the package row, the counter row, the service row and the service's state
        rows, the account row last. The finish takes the account row in its last statement
        (_release_account), so it holds it only for its commit, and a claim of the same
        account (which takes the account row first) runs during the apply instead of
        waiting for it. Taken after a service row, the account row must never be held by a
        writer that then waits for a service row: the claim writes the service's last
        claim in jam_service_claims (tables.service_claims), never the service row, and
        takes package rows SKIP LOCKED, so a claim holding an account row waits for
        nothing. Submit and reconcile take the `pending` counter row first, as the finish
        does, so none of them waits for another after it (submit then takes the account
        row before the service row; the counter row makes that safe). Service creation
        takes its account row last (after the code's blob row, which a finish of the same
        account may be inserting). Within a finish, an accumulate's `new` or `eject` takes
        the account row during the apply (rare: it is then held from there)."""
        params = {
            "package_id": outcome.package_id, "worker": outcome.worker,
            "status": outcome.status, "at": at,
            "failure_reason": outcome.failure_reason, "detail": outcome.detail,
            "report_hash": outcome.report.report_hash if outcome.report else None}
        if self.dialect == "postgres":
            if conn.execute(stmts.PG_FINISH, params).one().held != 1:
                raise Lost
        else:
            if _FINISH.run(conn, params) != 1:
                raise Lost
            _RELEASE_PENDING.run(conn, {})
        # An applied package's service row is released by the apply's own UPDATE.
        if outcome.status != "applied":
            _RELEASE_SERVICE.run(conn, {"sid": outcome.service_id})
        if outcome.report is not None:
            r = outcome.report
            _REPORT_INSERT.run(conn, {
                "package_id": r.package_id, "service_id": r.service_id,
                "report_hash": r.report_hash, "body": r.body, "created_at": at,
                "logs": json.dumps(list(r.logs)) if r.logs else None})
            if outcome.attestations:
                _ATTESTATIONS_INSERT.run(conn, [{
                    "package_id": a.package_id, "attestor": a.attestor,
                    "signature": a.signature, "engine": a.engine,
                    "engine_version": a.engine_version, "report_hash": a.report_hash,
                    "created_at": at} for a in outcome.attestations])
        if outcome.status == "applied":
            # The service's pending count and the units charged after the run
            # ride on the apply's UPDATE of the service row (no statement of their own).
            values: dict[str, Any] = {"d_pending": -1}
            if outcome.after_units:
                values.update(units=outcome.after_units, window=outcome.units_window)
            exports = outcome.exports
            self._apply(conn, outcome.service_id, outcome.changes,
                        outcome.expected_seq, outcome.receipt_entries, at, storage_limit, values,
                        exports_bytes=0 if exports is None else exports.stored_bytes)
            if outcome.accumulation is not None:
                self._keep_accumulation(conn, outcome.accumulation, at)
            if exports is not None:
                self._keep_exports(conn, exports)

    @staticmethod
    def _release_account(conn: sa.Connection, outcome: PackageOutcome) -> None:
        """The finish's last statement: the account's slot and pending package released and
        the unused gas refunded (its lock held only for the commit, _record_finish)."""
        _RELEASE_ACCOUNT.run(conn, {"sid": outcome.service_id, "refund": outcome.refund})


def _wait_for_account(conn: sa.Connection, owner: str) -> bool:
    """Wait, at most stmts.WAIT_TIMEOUT, for the transaction holding `owner`'s account row
    to end (PostgreSQL, autocommit); False when it did not (SQLSTATE 55P03, lock_not_available)."""
    conn.execute(stmts.SET_LOCK_TIMEOUT, {"timeout": stmts.WAIT_TIMEOUT})
    try:
        conn.execute(stmts.WAIT_FOR_ACCOUNT, {"owner": owner})
    except sa.exc.OperationalError as exc:
        if getattr(exc.orig, "sqlstate", None) != "55P03":
            raise
        return False
    finally:
        conn.execute(stmts.SET_LOCK_TIMEOUT, {"timeout": "0"})
    return True
