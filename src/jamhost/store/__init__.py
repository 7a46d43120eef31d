"""Persistence: the `Store` port and its one adapter, `SqlStore`, on SQLite (a file, or in
memory for `store = "memory"`) and PostgreSQL."""

from __future__ import annotations

from typing import TYPE_CHECKING

from jamhost.store.ports import Store

if TYPE_CHECKING:
    from jamhost.config import JamSettings


def open_store(settings: JamSettings, *, migrate: bool = True) -> Store:
    """Open the configured store; it is migrated to the newest schema first (the memory
    store always: it starts empty)."""
    from jamhost.store.migrate import upgrade, upgrade_memory
    from jamhost.store.sql.adapter import SqlStore
    from jamhost.store.sql.engine import MEMORY_URL, make_engine, postgres_url, sqlite_url

    if settings.store == "memory":
        engine = make_engine(MEMORY_URL)
        upgrade_memory(engine)
    else:
        url = sqlite_url(settings.sqlite_path) if settings.store == "sqlite" \
            else postgres_url(settings.pg_dsn or "")
        engine = make_engine(url, pg_pool_size=settings.pg_pool_size,
                             sqlite_synchronous=settings.sqlite_synchronous)
        if migrate:
            upgrade(engine)
    store = SqlStore(engine)
    store.init_counters()
    store.optimize()
    return store


__all__ = ["Store", "open_store"]
