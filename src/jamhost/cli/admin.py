"""Admin hooks working on the store directly: accounts, tokens, services, delegates, quotas.

They act as the machine's operator (no token): whoever can read the config and reach the
store already holds every key. Output is the same JSON the API gives.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from jamhost.cli.output import ConfigOpt, TableOpt, emit, fail, settings

if TYPE_CHECKING:
    from jamhost.app.runtime import Runtime

# The store, the use cases and their dependencies (pydantic, SQLAlchemy) are imported when a
# command runs, not when the CLI starts: every `jamhost` call would pay for them otherwise.


class _Lazy:
    def __getattr__(self, name: str) -> Any:
        import importlib

        module = importlib.import_module(_LAZY[name])
        setattr(self, name, module)
        return module


_LAZY = {"views": "jamhost.api.views", "accounts_uc": "jamhost.app.accounts",
         "services_uc": "jamhost.app.services", "records": "jamhost.store.records"}
lazy = _Lazy()


@contextmanager
def _runtime(config: str | None) -> Iterator[Runtime]:
    from jamhost.app.runtime import build_runtime
    from jamhost.domain.refusals import Refusal

    rt = build_runtime(settings(config))
    try:
        yield rt
    except Refusal as exc:
        fail(f'{{"error": "{exc.message}", "code": "{exc.code}"}}')
    finally:
        rt.close()


def _run(config: str | None, table: bool, action: Callable[[Runtime], Any]) -> None:
    with _runtime(config) as rt:
        emit(action(rt), table)


accounts = typer.Typer(no_args_is_help=True, help="Accounts (tenants)")
tokens = typer.Typer(no_args_is_help=True, help="Account tokens")
services = typer.Typer(no_args_is_help=True, help="Services")
delegates = typer.Typer(no_args_is_help=True, help="Per-service delegate tokens")
quotas = typer.Typer(no_args_is_help=True, help="Per-service quotas")


@accounts.command("create")
def accounts_create(name: str, config: ConfigOpt = None, table: TableOpt = False) -> None:
    _run(config, table,
         lambda rt: lazy.views.account(lazy.accounts_uc.create_account(rt, None, name)))


@accounts.command("list")
def accounts_list(config: ConfigOpt = None, table: TableOpt = False) -> None:
    _run(config, table, lambda rt: lazy.views.page(
        [lazy.views.account(a) for a in rt.store.list_accounts()], None))


@tokens.command("create")
def tokens_create(account_id: str, name: Annotated[str, typer.Option()] = "token",
                  scopes: Annotated[str | None, typer.Option(
                      help="comma-separated: read,submit,manage")] = None,
                  expires_at: Annotated[str | None, typer.Option(
                      help="expiry: ISO 8601 (naive means UTC) or Unix seconds")] = None,
                  config: ConfigOpt = None, table: TableOpt = False) -> None:
    def act(rt: Runtime) -> Any:
        from jamhost.api.times import parse_time_us
        from jamhost.domain.refusals import BadRequest

        exp = None
        if expires_at:
            try:
                exp = parse_time_us(expires_at, "--expires-at")
            except BadRequest as exc:
                fail(exc.message, 2)
        chosen = [s.strip() for s in scopes.split(",")] if scopes else None
        token, rec = lazy.accounts_uc.create_token(rt, None, account_id, name, chosen, exp)
        return {"token": token, **lazy.views.token(rec)}
    _run(config, table, act)


@tokens.command("list")
def tokens_list(account_id: str, config: ConfigOpt = None, table: TableOpt = False) -> None:
    _run(config, table, lambda rt: lazy.views.page(
        [lazy.views.token(t) for t in lazy.accounts_uc.list_tokens(rt, None, account_id)], None))


@tokens.command("revoke")
def tokens_revoke(account_id: str, accessor: str, config: ConfigOpt = None,
                  table: TableOpt = False) -> None:
    def act(rt: Runtime) -> Any:
        lazy.accounts_uc.revoke_token(rt, None, account_id, accessor)
        return {"revoked": accessor}
    _run(config, table, act)


@services.command("create")
def services_create(owner: Annotated[str, typer.Option(help="account id (or label)")],
                    code: Annotated[Path | None, typer.Option(help="PVM blob file")] = None,
                    balance: Annotated[int | None, typer.Option()] = None,
                    min_item_gas: Annotated[int, typer.Option()] = 0,
                    config: ConfigOpt = None, table: TableOpt = False) -> None:
    blob = code.read_bytes() if code else None
    _run(config, table, lambda rt: lazy.views.service(lazy.services_uc.create_service(
        rt, None, code=blob, balance=balance, min_item_gas=min_item_gas, owner=owner)))


@services.command("list")
def services_list(owner: Annotated[str | None, typer.Option()] = None,
                  config: ConfigOpt = None, table: TableOpt = False) -> None:
    def act(rt: Runtime) -> Any:
        items, cursor = [], None
        while True:
            page = rt.store.list_services(lazy.records.EVERYTHING, owner=owner,
                                          cursor=cursor, limit=500)
            items += [lazy.views.service(s) for s in page.items]
            if page.next_cursor is None:
                return lazy.views.page(items, None)
            cursor = page.next_cursor
    _run(config, table, act)


@services.command("show")
def services_show(service_id: int, config: ConfigOpt = None, table: TableOpt = False) -> None:
    def act(rt: Runtime) -> Any:
        svc = rt.store.get_service(service_id)
        if svc is None:
            fail('{"error": "no such service", "code": "jam_not_found"}')
        return lazy.views.service(svc, lazy.services_uc.quota_of(rt, svc), rt.gas_window())
    _run(config, table, act)


@delegates.command("add")
def delegates_add(service_id: int,
                  accessor: Annotated[str | None, typer.Option()] = None,
                  token: Annotated[str | None, typer.Option(
                      envvar="JAMHOST_DELEGATE_TOKEN", help="raw token (or env)")] = None,
                  role: Annotated[str, typer.Option()] = "submitter",
                  config: ConfigOpt = None, table: TableOpt = False) -> None:
    _run(config, table, lambda rt: lazy.views.delegate(lazy.services_uc.add_delegate(
        rt, None, service_id, accessor=accessor, token=token, role=role)))


@delegates.command("list")
def delegates_list(service_id: int, config: ConfigOpt = None, table: TableOpt = False) -> None:
    _run(config, table, lambda rt: lazy.views.page(
        [lazy.views.delegate(d)
         for d in lazy.services_uc.list_delegates(rt, None, service_id)], None))


@delegates.command("remove")
def delegates_remove(service_id: int, delegate_id: int, config: ConfigOpt = None,
                     table: TableOpt = False) -> None:
    def act(rt: Runtime) -> Any:
        lazy.services_uc.remove_delegate(rt, None, service_id, delegate_id)
        return {"removed": delegate_id}
    _run(config, table, act)


@quotas.command("show")
def quotas_show(service_id: int, config: ConfigOpt = None, table: TableOpt = False) -> None:
    def act(rt: Runtime) -> Any:
        svc = rt.store.get_service(service_id)
        if svc is None:
            fail('{"error": "no such service", "code": "jam_not_found"}')
        return lazy.views.quota(lazy.services_uc.quota_of(rt, svc), svc, rt.gas_window())
    _run(config, table, act)


@quotas.command("set")
def quotas_set(service_id: int,
               pending_packages: Annotated[int | None, typer.Option()] = None,
               storage_bytes: Annotated[int | None, typer.Option()] = None,
               gas_per_hour: Annotated[int | None, typer.Option()] = None,
               config: ConfigOpt = None, table: TableOpt = False) -> None:
    def act(rt: Runtime) -> Any:
        current = rt.store.get_service(service_id)
        if current is None:
            fail('{"error": "no such service", "code": "jam_not_found"}')
        given = {"pending_packages": pending_packages, "storage_bytes": storage_bytes,
                 "gas_per_hour": gas_per_hour}
        merged = replace(current.quota, **{k: v for k, v in given.items() if v is not None})
        svc = lazy.services_uc.set_quota(rt, None, service_id, merged)
        return lazy.views.quota(lazy.services_uc.quota_of(rt, svc), svc, rt.gas_window())
    _run(config, table, act)
