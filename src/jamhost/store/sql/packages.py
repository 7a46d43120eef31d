"""Packages at submit (every quota taken by a conditional UPDATE in the insert's transaction),
their queue positions, and the reports and attestations of finished ones."""

from __future__ import annotations

from dataclasses import replace

import sqlalchemy as sa

from jamhost.domain.model import Attestation, PackageRecord, Page, QuotaLimits, ReportRecord
from jamhost.domain.scopes import ServiceScope
from jamhost.store.sql import statements as stmts
from jamhost.store.sql import tables as t
from jamhost.store.sql.base import retry_on_deadlock
from jamhost.store.sql.rows import attestation_record, package_record, report_record
from jamhost.store.sql.scoped import ScopedListings, in_scope, page
from jamhost.tenancy import submit_quota as quota


class Packages(ScopedListings):
    """The packages, reports and attestations tables."""

    @retry_on_deadlock
    def submit_package(self, pkg: PackageRecord, limits: QuotaLimits, max_pending: int,
                       gas_window: int, account_pending: int | None = None,
                       weights: dict[str, int] | None = None,
                       ) -> tuple[PackageRecord, bool]:
        """Insert a pending package unless it exists; quotas checked atomically with it.

        The insert comes first: a new package (the common case) then costs three statements,
        and a known one (or one a concurrent identical submit just committed) is read back
        without touching the counters. A refused quota raises, which rolls the insert back."""
        with self._write() as conn:
            inserted = conn.execute(stmts.NEW_PACKAGE[self.dialect], {
                "id": pkg.id, "service_id": pkg.service_id, "body": pkg.body, "size": pkg.size,
                "refine_gas": pkg.refine_gas, "accumulate_gas": pkg.accumulate_gas,
                "created_at": pkg.created_at, "updated_at": pkg.updated_at}).first()
            if inserted is None:
                existing = conn.execute(sa.select(t.packages)
                                        .where(t.packages.c.id == pkg.id)).one()
                return package_record(existing), False
            # Global cap first: the counter row serializes every submitter, replicas included.
            if conn.execute(stmts.TAKE_PENDING, {"max_pending": max_pending}).rowcount != 1:
                raise quota.global_refusal()
            # The account's limit and its share of the global cap, read and taken while the
            # counter row is held: every change to any account's pending count holds it too,
            # so the busy-account count cannot move under us (tenancy/submit_quota.py).
            self._take_account_pending(conn, pkg.service_id, max_pending, account_pending,
                                       weights or {})
            # Both per-service quotas in one conditional UPDATE; only when it refuses do we
            # look at the row to say which limit was hit.
            take = quota.service_take(limits, pkg.refine_gas, pkg.accumulate_gas)
            if conn.execute(stmts.TAKE_QUOTA, {
                    "sid": pkg.service_id, "max_count": take.max_count,
                    "gas_room": take.gas_room, "gas": take.gas, "window": gas_window,
            }).rowcount != 1:
                svc = t.services.c
                pending = conn.execute(sa.select(svc.pending_count)
                                       .where(svc.service_id == pkg.service_id)).scalar_one()
                raise quota.service_refusal(pending, limits, gas_window)
            return replace(pkg, status="pending", seq=inserted.seq, attempts=0), True

    def _take_account_pending(self, conn: sa.Connection, service_id: int, max_pending: int,
                              account_pending: int | None, weights: dict[str, int]) -> None:
        owner = conn.execute(stmts.OWNER_OF, {"sid": service_id}).scalar_one()
        row = conn.execute(stmts.OTHERS, {"acct": owner}).one()
        others = quota.Others(busy=int(row.busy), vmin=None if row.vmin is None
                              else int(row.vmin), vmax=int(row.vmax), idle=bool(row.idle))
        running = [(who, int(vtime), int(gas)) for who, vtime, gas in conn.execute(
            stmts.RUNNING_CHARGES, {"acct": owner})] if quota.needs_running(others) else []
        take = quota.account_take(max_pending, account_pending, others, running, weights)
        params = {"acct": owner, "room": take.room, "start": take.start}
        if conn.execute(stmts.TAKE_ACCOUNT_PENDING, params).rowcount == 1:
            return
        self._ensure_owner(conn, owner)  # a service from before the row existed
        if conn.execute(stmts.TAKE_ACCOUNT_PENDING, params).rowcount == 1:
            return
        raise quota.account_refusal(take, account_pending)

    def queue_ahead(self, pkg: PackageRecord) -> int | None:
        """Pending packages of the same account submitted before `pkg` (None unless `pkg`
        is itself pending): how far it is from the front of its own account's queue."""
        if pkg.status != "pending":
            return None
        with self._read() as conn:
            owner = conn.execute(stmts.OWNER_OF, {"sid": pkg.service_id}).scalar_one_or_none()
            if owner is None:
                return None
            return int(conn.execute(stmts.QUEUE_AHEAD, {"seq": pkg.seq, "acct": owner})
                       .scalar_one())

    def queue_states(self) -> dict[str, int]:
        """Runtime-wide: packages queued (not yet claimed), running, and busy accounts."""
        au = t.account_usage.c
        with self._read() as conn:
            row = conn.execute(sa.select(
                sa.func.coalesce(sa.func.sum(au.queued), 0),
                sa.func.coalesce(sa.func.sum(au.running), 0),
                sa.func.coalesce(sa.func.sum(sa.case((au.pending > 0, 1), else_=0)), 0))).one()
        return {"queued": int(row[0]), "running": int(row[1]), "busy_accounts": int(row[2])}

    def get_package(self, package_id: bytes, scope: ServiceScope) -> PackageRecord | None:
        with self._read() as conn:
            row = conn.execute(sa.select(t.packages).where(
                t.packages.c.id == package_id, in_scope(t.packages.c.service_id, scope))).first()
        return package_record(row) if row else None

    def list_packages(self, scope: ServiceScope, *, service_id: int | None = None,
                      status: str | None = None, cursor: int | None = None,
                      limit: int = 50) -> Page[PackageRecord]:
        rows = self._newest_first(t.packages, scope, service_id, limit, cursor,
                                  {"status": status} if status is not None else {},
                                  omit=("body",))
        return page(rows, limit, lambda r: package_record(r, with_body=False), _seq)

    def get_report(self, package_id: bytes, scope: ServiceScope) -> ReportRecord | None:
        with self._read() as conn:
            row = conn.execute(sa.select(t.reports).where(
                t.reports.c.package_id == package_id,
                in_scope(t.reports.c.service_id, scope))).first()
        return report_record(row) if row else None

    def list_reports(self, scope: ServiceScope, *, service_id: int | None = None,
                     cursor: int | None = None, limit: int = 50) -> Page[ReportRecord]:
        rows = self._newest_first(t.reports, scope, service_id, limit, cursor, {})
        return page(rows, limit, report_record, _seq)

    def attestations(self, package_id: bytes) -> list[Attestation]:
        with self._read() as conn:
            rows = conn.execute(sa.select(t.attestations)
                                .where(t.attestations.c.package_id == package_id)
                                .order_by(t.attestations.c.attestor))
            return [attestation_record(r) for r in rows]


def _seq(record: PackageRecord | ReportRecord) -> int:
    return record.seq
