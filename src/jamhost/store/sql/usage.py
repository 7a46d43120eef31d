"""Usage reconciliation: the counters (pending packages, storage bytes, per-account counts)
recomputed from the rows, which repairs drift."""

from __future__ import annotations

import sqlalchemy as sa

from jamhost.store.sql import tables as t
from jamhost.store.sql.base import SqlBase, retry_on_deadlock
from jamhost.tenancy.usage import PENDING_STATUSES, ServiceRows, account_counts, service_usage


class Reconciliation(SqlBase):
    """Recomputing the usage counters."""

    @retry_on_deadlock
    def reconcile_usage(self) -> int:
        """Recompute pending counts and storage bytes from the rows (repairs drift: what
        they should be is tenancy/usage.py's). Returns the number of services whose
        counters changed."""
        changed = 0
        p, pr, st = t.packages.c, t.preimages.c, t.storage.c
        with self._write() as conn:
            # The counter row first (the lock order: store/sql/claims.py, _record_finish):
            # held, no submit or finish runs until this commits, and the count after it
            # (a fresh snapshot on PostgreSQL) is exact.
            pending = t.counters.c.name == "pending"
            conn.execute(t.counters.update().where(pending).values(value=t.counters.c.value))
            total = conn.execute(sa.select(sa.func.count()).where(
                p.status.in_(PENDING_STATUSES))).scalar_one()
            conn.execute(t.counters.update().where(pending).values(value=total))
            for row in conn.execute(sa.select(t.services.c.service_id,
                                              t.services.c.pending_count,
                                              t.services.c.storage_used)).all():
                sid = row.service_id
                usage = service_usage(ServiceRows(
                    pending=conn.execute(sa.select(sa.func.count()).where(
                        p.service_id == sid, p.status.in_(PENDING_STATUSES))).scalar_one(),
                    preimage_bytes=conn.execute(
                        sa.select(sa.func.coalesce(sa.func.sum(pr.size), 0))
                        .where(pr.service_id == sid)).scalar_one(),
                    storage_bytes=conn.execute(sa.select(sa.func.coalesce(sa.func.sum(
                        sa.func.length(st.key) + sa.func.length(st.value)), 0))
                        .where(st.service_id == sid)).scalar_one(),
                    requests=conn.execute(sa.select(sa.func.count()).where(
                        t.lookup_requests.c.service_id == sid)).scalar_one(),
                    export_sets=tuple(conn.execute(
                        sa.select(t.export_sets.c.count)
                        .where(t.export_sets.c.service_id == sid)).scalars())))
                if (usage.pending, usage.storage_used) != (row.pending_count, row.storage_used):
                    changed += 1
                    conn.execute(t.services.update().where(t.services.c.service_id == sid)
                                 .values(pending_count=usage.pending,
                                         storage_used=usage.storage_used))
            self._reconcile_accounts(conn)
        self.optimize()
        return changed

    def _reconcile_accounts(self, conn: sa.Connection) -> None:
        """Per-account counters from the rows; the virtual times are kept."""
        p, s, au = t.packages.c, t.services.c, t.account_usage.c
        counts = account_counts(
            [(owner, int(n)) for owner, n in conn.execute(
                sa.select(s.owner, sa.func.count()).group_by(s.owner))],
            [(owner, status, int(n)) for owner, status, n in conn.execute(
                sa.select(s.owner, p.status, sa.func.count())
                .select_from(t.packages.join(t.services, s.service_id == p.service_id))
                .where(p.status.in_(PENDING_STATUSES)).group_by(s.owner, p.status))])
        for owner, c in counts.items():
            self._ensure_owner(conn, owner)
            conn.execute(t.account_usage.update().where(au.owner == owner).values(
                services=c.services, pending=c.pending, queued=c.queued, running=c.running))
