"""Prebuilt statements of the worker's hot path run on the SQLite driver's cursor.

SQLAlchemy Core costs about 40 us of Python per statement even for a prebuilt one whose
compiled form is cached (an execution context, parameter processing, a result object), while
the statement itself takes 2-5 us in SQLite; a package runs some thirty. A `Direct` statement
is compiled once per set of parameter names, with SQLAlchemy's own compiler (so the SQL text
is exactly what `conn.execute` would send), and then runs on the DBAPI cursor of the same
connection, inside the transaction the store began: the same statement, the same
transaction, without the layer around it. Bind and result processors of the columns' types
are applied as SQLAlchemy would; driver errors are raised as SQLAlchemy's `DBAPIError`
subclasses, as `conn.execute` raises them.

On PostgreSQL a `Direct` is `conn.execute` (the driver's round trip dominates there, and
SQLAlchemy's handling of a dropped connection stays in charge). Only statements with named
binds and no expanding IN lists are taken (checked at the first compile).
"""

from __future__ import annotations

import sqlite3
from collections import namedtuple
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa

Params = dict[str, Any]


class _Compiled:
    __slots__ = ("binds", "defaults", "names", "row", "sql", "results")

    def __init__(self, stmt: Any, dialect: sa.Dialect, keys: Sequence[str]) -> None:
        c = stmt.compile(dialect=dialect, column_keys=list(keys))
        if not c.positional or any(b.expanding for b in c.binds.values()):
            raise ValueError("Direct takes positional statements without expanding binds")
        self.sql: str = c.string
        self.names: tuple[str, ...] = tuple(c.positiontup or ())
        # the values a statement carries itself (a LIMIT, `.values(x=1)`); the rest are given
        self.defaults: Params = {name: bind.effective_value for name, bind in c.binds.items()
                                 if not bind.required}
        self.binds: dict[str, Callable[[Any], Any]] = {}
        for name in self.names:
            proc = c.binds[name].type.dialect_impl(dialect).bind_processor(dialect)
            if proc is not None:
                self.binds[name] = proc
        columns = list(stmt.exported_columns)  # a Select's columns, or RETURNING's (if any)
        # type-ignore reason: mypy wants a literal field list for namedtuple; these are the
        #   statement's columns, known only at run time
        self.row: Any = namedtuple("Row", [col.key for col in columns],  # type: ignore[misc]
                                   rename=True)
        self.results: list[tuple[int, Callable[[Any], Any]]] = []
        for i, col in enumerate(columns):
            proc = col.type.dialect_impl(dialect).result_processor(dialect, None)
            if proc is not None:
                self.results.append((i, proc))

    def args(self, params: Params) -> tuple[Any, ...]:
        merged = {**self.defaults, **params}
        for name, proc in self.binds.items():
            merged[name] = proc(merged[name])
        return tuple(merged[name] for name in self.names)

    def make(self, raw: tuple[Any, ...]) -> Any:
        if self.results:
            values = list(raw)
            for i, proc in self.results:
                values[i] = proc(values[i])
            raw = tuple(values)
        return self.row._make(raw)


class Direct:
    """One prebuilt statement (a Select, or an Insert/Update/Delete, RETURNING or not)."""

    def __init__(self, stmt: Any) -> None:
        self.stmt = stmt
        self._compiled: dict[tuple[str, ...], _Compiled] = {}

    def _for(self, dialect: sa.Dialect, keys: Sequence[str]) -> _Compiled:
        key = tuple(sorted(keys))
        got = self._compiled.get(key)
        if got is None:
            got = self._compiled[key] = _Compiled(self.stmt, dialect, key)
        return got

    def _cursor(self, conn: sa.Connection, params: Params | list[Params],
                ) -> tuple[_Compiled, sqlite3.Cursor]:
        batch = params if isinstance(params, list) else None
        first = batch[0] if batch is not None else params
        assert isinstance(first, dict)
        compiled = self._for(conn.dialect, list(first))
        # type-ignore reason: the driver connection is typed as optional (None once closed);
        #   it is open, and a sqlite3 one: _cursor runs on SQLite only (its callers check)
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            if batch is not None:
                cursor.executemany(compiled.sql, [compiled.args(p) for p in batch])
            else:
                cursor.execute(compiled.sql, compiled.args(first))
        except sqlite3.Error as exc:
            cursor.close()
            raise sa.exc.DBAPIError.instance(compiled.sql, params, exc, sqlite3.Error) from exc
        return compiled, cursor

    def rows(self, conn: sa.Connection, params: Params) -> list[Any]:
        """Every row, each with the columns as attributes (like SQLAlchemy's Row)."""
        if conn.dialect.name != "sqlite":
            return list(conn.execute(self.stmt, params))
        compiled, cursor = self._cursor(conn, params)
        try:
            return [compiled.make(r) for r in cursor.fetchall()]
        finally:
            cursor.close()

    def first(self, conn: sa.Connection, params: Params) -> Any | None:
        if conn.dialect.name != "sqlite":
            return conn.execute(self.stmt, params).first()
        compiled, cursor = self._cursor(conn, params)
        try:
            raw = cursor.fetchone()
            if raw is not None:
                cursor.fetchall()  # RETURNING: the statement runs to its end
            return None if raw is None else compiled.make(raw)
        finally:
            cursor.close()

    def scalar(self, conn: sa.Connection, params: Params) -> Any | None:
        """The first column of the first row, or None (a look-up by key)."""
        row = self.first(conn, params)
        return None if row is None else row[0]

    def run(self, conn: sa.Connection, params: Params | list[Params]) -> int:
        """A write without RETURNING (one set of parameters, or a list: executemany); the
        rows it changed."""
        if conn.dialect.name != "sqlite":
            return conn.execute(self.stmt, params).rowcount
        _, cursor = self._cursor(conn, params)
        try:
            return cursor.rowcount
        finally:
            cursor.close()
