"""Export sets: the segments an applied package exported, kept for imports until they expire."""

from __future__ import annotations

import sqlalchemy as sa

from jamhost.domain.model import ExportSet, export_set_bytes
from jamhost.domain.scopes import ServiceScope
from jamhost.store.sql import tables as t
from jamhost.store.sql.base import retry_on_deadlock
from jamhost.store.sql.preimages import Preimages
from jamhost.store.sql.scoped import in_scope


class Segments(Preimages):
    """The export_sets and segments tables."""

    @staticmethod
    def _keep_exports(conn: sa.Connection, x: ExportSet) -> None:
        """Keep a package's s ++ P(s); their bytes were charged to its service by the apply's
        plan (tenancy/apply_plan.py, `exports_bytes`)."""
        conn.execute(t.export_sets.insert(), {
            "service_id": x.service_id, "package_hash": x.package_hash,
            "segments_root": x.segments_root, "count": x.count, "created_at": x.created_at,
            "expires_at": x.expires_at})
        conn.execute(t.segments.insert(), [
            {"service_id": x.service_id, "package_hash": x.package_hash, "idx": i, "data": d}
            for i, d in enumerate(x.segments)])

    def find_export_set(self, scope: ServiceScope, now: int, *,
                        segments_root: bytes | None = None,
                        package_hash: bytes | None = None) -> ExportSet | None:
        """An unexpired export set of a service in `scope`, by segments root or package hash
        (its segments are read with `read_segments`)."""
        e = t.export_sets.c
        q = sa.select(t.export_sets).where(in_scope(e.service_id, scope), e.expires_at > now)
        if segments_root is not None:
            q = q.where(e.segments_root == segments_root)
        if package_hash is not None:
            q = q.where(e.package_hash == package_hash)
        with self._read() as conn:
            row = conn.execute(q.order_by(e.expires_at.desc(), e.service_id).limit(1)).first()
        if row is None:
            return None
        return ExportSet(row.service_id, bytes(row.package_hash), bytes(row.segments_root),
                         row._mapping["count"], row.created_at, row.expires_at)

    def read_segments(self, service_id: int, package_hash: bytes,
                      indices: list[int]) -> dict[int, bytes]:
        g = t.segments.c
        with self._read() as conn:
            rows = conn.execute(sa.select(g.idx, g.data).where(
                g.service_id == service_id, g.package_hash == package_hash,
                g.idx.in_(sorted(set(indices))))).all()
        return {int(r.idx): bytes(r.data) for r in rows}

    @retry_on_deadlock
    def expire_segments(self, now: int) -> int:
        """Drop the export sets whose retention ended and give their bytes back to their
        services' storage usage. Returns how many sets went."""
        e, g = t.export_sets.c, t.segments.c
        with self._write() as conn:
            due = conn.execute(sa.select(e.service_id, e.package_hash, e.count)
                               .where(e.expires_at <= now)
                               .order_by(e.service_id, e.package_hash)).all()
            gone = 0
            for row in due:
                # The service row first (the lock order of apply); only the transaction that
                # deletes the set gives its bytes back.
                conn.execute(t.services.update().where(t.services.c.service_id == row.service_id)
                             .values(storage_used=t.services.c.storage_used))
                deleted = conn.execute(t.export_sets.delete().where(
                    e.service_id == row.service_id, e.package_hash == row.package_hash,
                    e.expires_at <= now)).rowcount
                if deleted != 1:
                    continue
                conn.execute(t.segments.delete().where(
                    g.service_id == row.service_id, g.package_hash == row.package_hash))
                conn.execute(t.services.update().where(t.services.c.service_id == row.service_id)
                             .values(storage_used=t.services.c.storage_used
                                     - export_set_bytes(row._mapping["count"])))
                gone += 1
        return gone
