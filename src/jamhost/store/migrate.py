"""Schema management: Alembic migrations shipped inside the package."""

from __future__ import annotations

import threading
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).with_name("migrations")
MIGRATION_LOCK = 0x6A616D686F7374  # "jamhost": the advisory lock key of schema upgrades


def alembic_config(connection: sa.Connection) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def upgrade(engine: sa.Engine, revision: str = "head") -> None:
    """Create or upgrade the schema to `revision` (idempotent).

    Replicas starting together on an empty PostgreSQL database would run the same migration
    at once and one would die on a duplicate catalog row; a transaction-scoped advisory lock
    makes the others wait and then find the schema at head. (SQLite already serializes
    writers: the transaction begins IMMEDIATE.)"""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        command.upgrade(alembic_config(conn), revision)


def current_revision(engine: sa.Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


_TEMPLATE: list[sa.Engine] = []
_TEMPLATE_LOCK = threading.Lock()


def upgrade_memory(engine: sa.Engine) -> None:
    """Bring a new memory store (SQLite in memory) to head: the migrations run once per
    process, on a template database, which each new memory store then copies with SQLite's
    backup API (a fraction of a millisecond instead of replaying every migration)."""
    from jamhost.store.sql.engine import MEMORY_URL, make_engine

    with _TEMPLATE_LOCK:
        if not _TEMPLATE:
            template = make_engine(MEMORY_URL)
            upgrade(template)
            _TEMPLATE.append(template)
        src = _TEMPLATE[0].raw_connection()
        dst = engine.raw_connection()
        try:
            # type-ignore reason: the driver connection is typed as optional (None once
            #   closed); both were just opened, on sqlite3, whose connections have backup
            src.driver_connection.backup(dst.driver_connection)  # type: ignore[union-attr]
        finally:
            dst.close()
            src.close()
