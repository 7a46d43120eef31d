"""The scope filter, in one place: how every tenant-facing read of the adapter narrows to
the services of a `ServiceScope` (tenancy decided the scope; the view hands it down).

- an object lookup (a package, report, preimage, receipt by id or hash) adds `in_scope` to
  its query, so another tenant's object is the same empty result as a missing one;
- a listing reads `listed_services(scope, service_id)`: every service, or these ids (none
  at all, and no query, for a named service outside the scope), then either pages in key
  order (`_in_order`: services, receipts) or newest first by seq, one range scan per
  service merged in one statement (`_newest_first`: packages, reports); `page` cuts the
  `limit + 1` rows into a page and its next cursor.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import sqlalchemy as sa

from jamhost.domain.model import Page
from jamhost.domain.scopes import ServiceScope
from jamhost.store.sql import statements as stmts
from jamhost.store.sql.base import SqlBase
from jamhost.store.sql.statements import MAX_MERGED_SERVICES

T = TypeVar("T")


def in_scope(column: sa.ColumnElement[Any], scope: ServiceScope) -> sa.ColumnElement[bool]:
    """The object lookup's filter: `column` (a service id) within the scope."""
    if scope.everything:
        return sa.true()
    if not scope.ids:
        return sa.false()
    return column.in_(sorted(scope.ids))


def listed_services(scope: ServiceScope, service_id: int | None) -> list[int] | None:
    """The services a listing reads: None for every one, else these ids (maybe none). A
    named `service_id` is listed alone, and only when the scope allows it."""
    if service_id is not None:
        return [service_id] if scope.allows(service_id) else []
    return None if scope.everything else sorted(scope.ids)


def page(rows: Sequence[Any], limit: int, record: Callable[[Any], T],
         cursor: Callable[[T], Any]) -> Page[T]:
    """The first `limit` of `limit + 1` rows, with the cursor of the last when more follow."""
    items = [record(r) for r in rows[:limit]]
    return Page(items, cursor(items[-1]) if len(rows) > limit else None)


class ScopedListings(SqlBase):
    """The two listing shapes, both narrowed by `listed_services`."""

    def _in_order(self, q: sa.Select[Any], column: sa.ColumnElement[Any],
                  scope: ServiceScope, service_id: int | None, limit: int) -> Sequence[Any]:
        """The first `limit + 1` rows of `q` (already ordered, its cursor applied) within
        the scope, and within one service if given."""
        ids = listed_services(scope, service_id)
        if ids is not None and not ids:
            return []
        if ids is not None:
            q = q.where(column.in_(ids))
        with self._read() as conn:
            return conn.execute(q.limit(limit + 1)).all()

    def _newest_first(self, table: sa.Table, scope: ServiceScope, service_id: int | None,
                      limit: int, cursor: int | None, equal: dict[str, Any],
                      omit: tuple[str, ...] = ()) -> Sequence[Any]:
        """The newest `limit + 1` rows of `table` (seq descending, below `cursor`, with the
        `equal` column values) within the scope, and within one service if given."""
        ids = listed_services(scope, service_id)
        if ids is not None and not ids:
            return []
        stmt = stmts.newest_first(table, omit, tuple(sorted(equal)), cursor is not None,
                                  None if ids is None else len(ids), self.dialect)
        params: dict[str, Any] = {**equal, "lim": limit + 1}
        if cursor is not None:
            params["cursor"] = cursor
        if ids is not None and (len(ids) > MAX_MERGED_SERVICES
                                or (self.dialect == "postgres" and len(ids) > 1)):
            params["sids"] = ids
        elif ids is not None:
            params.update({f"sid{i}": sid for i, sid in enumerate(ids)})
        with self._read() as conn:
            return conn.execute(stmt, params).all()
