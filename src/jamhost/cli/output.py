"""Shared CLI options and output: JSON by default, a rich table with `--table`."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

if TYPE_CHECKING:
    from jamhost.config import Settings

ConfigOpt = Annotated[str | None, typer.Option("--config", help="TOML config file",
                                               envvar="JAMHOST_CONFIG")]
TableOpt = Annotated[bool, typer.Option("--table", help="print a table instead of JSON")]


class GlobalFlags:
    """The root options (`jamhost --verbose --create ...`), set by the root callback."""

    verbose = False
    create = False


def admin_settings(config: str | None, command: str) -> Settings:
    """Settings for a command that works on the store directly (admin hooks, audit,
    reconcile): logs only warnings unless `--verbose` (what they do is in the audit log), and
    refuses to create a SQLite file that does not exist, unless `--create` or the config
    names the file: run from another directory, the default `./jamhost.db` would be a new,
    empty store, and the token printed there would be unknown to the server."""
    from pathlib import Path

    from jamhost.observability import set_log_level

    if not GlobalFlags.verbose:
        set_log_level("WARNING")
    loaded = settings(config)
    jam = loaded.jam
    if jam.store == "sqlite" and not GlobalFlags.create \
            and "sqlite_path" not in jam.model_fields_set:
        path = Path(jam.sqlite_path).resolve()
        if not path.exists():
            fail(f"no store at {path} (the default sqlite_path): run where the server runs, "
                 f"give --config, or create one with: jamhost --create {command} ...", 2)
    return loaded


def settings(config: str | None) -> Settings:
    """Load the config and register its secrets for log redaction: every command that can log
    (serve, worker, admin hooks, reconcile, migrate) goes through here."""
    from jamhost.config import ConfigError, load_settings
    from jamhost.observability import register_config_secrets

    try:
        loaded = load_settings(config)
    except ConfigError as exc:
        fail(f"config error: {exc}", code=2)
    register_config_secrets(loaded.jam)
    return loaded


def fail(message: str, code: int = 1) -> NoReturn:
    print(message, file=sys.stderr)
    raise typer.Exit(code)


def emit(data: Any, table: bool = False) -> None:
    if not table:
        print(json.dumps(data, indent=2, default=str))
        return
    from rich.console import Console
    from rich.table import Table

    rows = data.get("items") if isinstance(data, dict) and "items" in data else data
    if isinstance(rows, dict):
        rows = [rows]
    if not isinstance(rows, list) or not rows:
        Console().print("(nothing)")
        return
    columns: list[str] = []
    for row in rows:
        for key in (row if isinstance(row, dict) else {"value": row}):
            if key not in columns:
                columns.append(key)
    t = Table(*columns)
    for row in rows:
        row = row if isinstance(row, dict) else {"value": row}
        t.add_row(*(_cell(row.get(c)) for c in columns))
    Console(width=200).print(t)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, default=str)
    return str(value)


def cli_group(**kw: Any) -> typer.Typer:
    """A command group with click's plain help: typer's rich help shows every flag as
    `--wait <bool>`, as if it took a value; the plain one shows `--wait`."""
    return typer.Typer(rich_markup_mode=None, **kw)
