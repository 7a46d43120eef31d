"""Persistence: the `Store` port and its memory and SQL adapters."""

from __future__ import annotations

from typing import TYPE_CHECKING

from jamhost.store.ports import Store

if TYPE_CHECKING:
    from jamhost.config import JamSettings


def open_store(settings: JamSettings, *, migrate: bool = True) -> Store:
    """Open the configured store; SQL stores are migrated to the newest schema first."""
    if settings.store == "memory":
        from jamhost.store.memory import MemoryStore

        return MemoryStore()
    from jamhost.store.migrate import upgrade
    from jamhost.store.sql.adapter import SqlStore
    from jamhost.store.sql.engine import make_engine, postgres_url, sqlite_url

    url = sqlite_url(settings.sqlite_path) if settings.store == "sqlite" \
        else postgres_url(settings.pg_dsn or "")
    engine = make_engine(url)
    if migrate:
        upgrade(engine)
    store = SqlStore(engine)
    store.init_counters()
    store.optimize()
    return store


__all__ = ["Store", "open_store"]
