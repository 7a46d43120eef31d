"""Preimages (blobs, content-addressed, kept once) and a service's storage charge for them."""

from __future__ import annotations

import sqlalchemy as sa

from jamhost.domain.model import PreimageMeta, now_us
from jamhost.domain.refusals import StorageQuotaExceeded
from jamhost.domain.scopes import ServiceScope
from jamhost.store.sql import statements as stmts
from jamhost.store.sql import tables as t
from jamhost.store.sql.base import retry_on_deadlock
from jamhost.store.sql.direct import Direct
from jamhost.store.sql.rows import SQL_POSITION_MAX, UNSCOPED, preimage_meta
from jamhost.store.sql.scoped import ScopedListings, in_scope
from jamhost.tenancy import storage_quota

_SERVICE_PREIMAGE = Direct(stmts.SERVICE_PREIMAGE)  # per package: store/sql/direct.py


class Preimages(ScopedListings):
    """The preimages and blobs tables."""

    @retry_on_deadlock
    def put_preimage(self, hash_: bytes, data: bytes, media_type: str, service_id: int | None,
                     storage_limit: int | None) -> tuple[PreimageMeta, bool]:
        with self._write() as conn:
            return self._put_preimage(conn, hash_, data, media_type, service_id,
                                      storage_limit, now_us())

    def _put_preimage(self, conn: sa.Connection, hash_: bytes, data: bytes, media_type: str,
                      service_id: int | None, storage_limit: int | None,
                      at: int) -> tuple[PreimageMeta, bool]:
        scope = UNSCOPED if service_id is None else service_id
        if service_id is not None:  # service row first: the lock order of apply
            conn.execute(t.services.update().where(t.services.c.service_id == service_id)
                         .values(storage_used=t.services.c.storage_used))
        inserted = conn.execute(self._insert(t.preimages).values(
            hash=hash_, service_id=scope, size=len(data), media_type=media_type, created_at=at,
        ).on_conflict_do_nothing().returning(t.preimages.c.hash)).first()
        if inserted is not None:
            if service_id is not None and storage_limit is not None:
                self._charge_storage(conn, service_id, len(data), storage_limit)
            conn.execute(self._insert(t.blobs).values(hash=hash_, size=len(data), data=data)
                         .on_conflict_do_nothing())
        row = conn.execute(sa.select(t.preimages).where(
            t.preimages.c.hash == hash_, t.preimages.c.service_id == scope)).one()
        return preimage_meta(row), inserted is not None

    @staticmethod
    def _charge_storage(conn: sa.Connection, service_id: int, delta: int, limit: int) -> None:
        """Charge `delta` bytes to the service if they fit its `limit`
        (tenancy/storage_quota.py, rendered into the UPDATE's condition)."""
        res = conn.execute(t.services.update().where(
            t.services.c.service_id == service_id,
            storage_quota.fits(t.services.c.storage_used, delta, limit),
        ).values(storage_used=t.services.c.storage_used + delta))
        if res.rowcount != 1:
            raise StorageQuotaExceeded("the service's storage quota would be exceeded")

    def find_preimage(self, hash_: bytes, scope: ServiceScope) -> PreimageMeta | None:
        """The caller-visible metadata of a blob: a row of a service in scope, or unscoped."""
        q = (sa.select(t.preimages).where(
            t.preimages.c.hash == hash_,
            sa.or_(t.preimages.c.service_id == UNSCOPED,
                   in_scope(t.preimages.c.service_id, scope)))
            .order_by(t.preimages.c.service_id.desc()).limit(1))
        with self._read() as conn:
            row = conn.execute(q).first()
        return preimage_meta(row) if row else None

    def service_preimage(self, service_id: int, hash_: bytes) -> bytes | None:
        """A blob as the service itself may look it up (its own preimages only)."""
        with self._read() as conn:
            data: bytes | None = _SERVICE_PREIMAGE.scalar(conn, {"hash": hash_, "sid": service_id})
            return data

    def service_preimage_window(self, service_id: int, hash_: bytes, at: int, n: int,
                                ) -> tuple[int, bytes] | None:
        """(|v|, v[at..at+n]) of `service_preimage` (clamped to v), or None: the length
        from its column and the octets by substr, never the whole blob."""
        # substr takes 32-bit positions on PostgreSQL; a blob is far shorter (max_preimage_bytes)
        at, n = min(at, SQL_POSITION_MAX), min(n, SQL_POSITION_MAX)
        if self.dialect == "sqlite":
            return self._sqlite_window(service_id, hash_, at, n)
        with self._read() as conn:
            row = conn.execute(stmts.SERVICE_PREIMAGE_WINDOW,
                               {"hash": hash_, "sid": service_id, "start": at + 1,
                                "n": n}).first()
        if row is None:
            return None
        return int(row[0]), bytes(row[1] or b"")

    def _sqlite_window(self, service_id: int, hash_: bytes, at: int, n: int,
                       ) -> tuple[int, bytes] | None:
        """SQLite's substr reads the whole blob (2 ms for 8 MB): the row is found by rowid
        and the window read through the incremental blob API instead (0.01-0.04 ms)."""
        with self._read() as conn:
            row = conn.execute(stmts.SERVICE_PREIMAGE_ROWID,
                               {"hash": hash_, "sid": service_id}).first()
            if row is None:
                return None
            size, rowid = int(row[0]), int(row[1])
            start = min(at, size)
            count = min(n, size - start)
            if count == 0:
                return size, b""
            raw = conn.connection.dbapi_connection
            # type-ignore reason: the DBAPI connection is typed as PEP 249's (or None), which
            #   has no blobopen; this runs on SQLite only, whose sqlite3 connection has it
            with raw.blobopen(t.blobs.name, "data", rowid, readonly=True) as blob:  # type: ignore[union-attr]
                blob.seek(start)
                return size, blob.read(count)

    def read_blob(self, hash_: bytes) -> bytes | None:
        with self._read() as conn:
            return conn.execute(sa.select(t.blobs.c.data)
                                .where(t.blobs.c.hash == hash_)).scalar_one_or_none()
