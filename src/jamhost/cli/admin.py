"""Admin hooks working on the store directly: accounts, tokens, services, delegates, quotas.

They act as the machine's operator (no token), as the explicit principal `ADMIN` with its
own view (tenancy/view.py): whoever can read the config and reach the store already holds
every key. Output is the same JSON the API gives.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from jamhost.app import views
from jamhost.cli.output import ConfigOpt, TableOpt, admin_settings, cli_group, emit, fail
from jamhost.tenancy.principal import ADMIN

AccountArg = Annotated[str, typer.Argument(help="account id (acc_...)")]
ServiceArg = Annotated[int, typer.Argument(help="service id")]

if TYPE_CHECKING:
    from jamhost.app.runtime import Runtime

# The use cases and their dependencies (pydantic, SQLAlchemy) are imported when a command
# runs, not when the CLI starts: every `jamhost` call would pay for them otherwise. The JSON
# views are light (the records and the token hash prefix).


@contextmanager
def _runtime(config: str | None) -> Iterator[Runtime]:
    import click

    from jamhost.app.runtime import build_runtime
    from jamhost.domain.refusals import Refusal

    ctx = click.get_current_context(silent=True)
    command = ctx.command_path.split(" ", 1)[-1] if ctx is not None else "..."
    rt = build_runtime(admin_settings(config, command))
    try:
        yield rt
    except Refusal as exc:
        fail(f'{{"error": "{exc.message}", "code": "{exc.code}"}}')
    finally:
        rt.close()


def run_admin(config: str | None, table: bool, action: Callable[[Runtime], Any]) -> None:
    """Run `action` (a use case called with `ADMIN`) on the configured store and print its
    JSON; a refusal is printed as the API's error body (exit 1)."""
    with _runtime(config) as rt:
        emit(action(rt), table)


accounts = cli_group(no_args_is_help=True, help="Accounts (tenants)")
tokens = cli_group(no_args_is_help=True, help="Account tokens")
services = cli_group(no_args_is_help=True, help="Services")
delegates = cli_group(no_args_is_help=True, help="Per-service delegate tokens")
quotas = cli_group(no_args_is_help=True, help="Per-service quotas")


@accounts.command("create")
def accounts_create(name: Annotated[str, typer.Argument(help="the account's name")],
                    config: ConfigOpt = None, table: TableOpt = False) -> None:
    """Create an account (a tenant); give it a token with `jamhost tokens create`."""
    from jamhost.app import accounts as accounts_uc

    run_admin(config, table,
         lambda rt: views.account(accounts_uc.create_account(rt, ADMIN, name)))


@accounts.command("list")
def accounts_list(config: ConfigOpt = None, table: TableOpt = False) -> None:
    """List every account."""
    from jamhost.app import accounts as accounts_uc

    run_admin(config, table, lambda rt: views.page(
        [views.account(a) for a in accounts_uc.list_accounts(rt, ADMIN)], None))


@tokens.command("create")
def tokens_create(account_id: AccountArg,
                  name: Annotated[str, typer.Option(help="a label for the token")] = "token",
                  scopes: Annotated[str | None, typer.Option(
                      help="comma-separated: read,submit,manage")] = None,
                  expires_at: Annotated[str | None, typer.Option(
                      help="expiry: ISO 8601 (naive means UTC) or Unix seconds")] = None,
                  config: ConfigOpt = None, table: TableOpt = False) -> None:
    """Create a token for an account; the token is printed once, here, and never again."""
    from jamhost.app import accounts as accounts_uc

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
        token, rec = accounts_uc.create_token(rt, ADMIN, account_id, name, chosen, exp)
        return {"token": token, **views.token(rec)}
    run_admin(config, table, act)


@tokens.command("list")
def tokens_list(account_id: AccountArg, config: ConfigOpt = None,
                table: TableOpt = False) -> None:
    """List an account's tokens (accessors and hash prefixes, never the tokens)."""
    from jamhost.app import accounts as accounts_uc

    run_admin(config, table, lambda rt: views.page(
        [views.token(t) for t in accounts_uc.list_tokens(rt, ADMIN, account_id)], None))


@tokens.command("revoke")
def tokens_revoke(account_id: AccountArg,
                  accessor: Annotated[str, typer.Argument(help="the token's accessor")],
                  config: ConfigOpt = None, table: TableOpt = False) -> None:
    """Revoke a token; it is refused from the next request on."""
    from jamhost.app import accounts as accounts_uc

    def act(rt: Runtime) -> Any:
        accounts_uc.revoke_token(rt, ADMIN, account_id, accessor)
        return {"revoked": accessor}
    run_admin(config, table, act)


@services.command("create")
def services_create(owner: Annotated[str, typer.Option(help="account id (or label)")],
                    code: Annotated[Path | None, typer.Option(help="PVM blob file")] = None,
                    balance: Annotated[int | None, typer.Option(
                        help="initial balance (default: the config's)")] = None,
                    min_item_gas: Annotated[int, typer.Option(
                        help="minimum accumulate gas per work item")] = 0,
                    config: ConfigOpt = None, table: TableOpt = False) -> None:
    """Create a service for an account, optionally with its PVM code."""
    from jamhost.app import services as services_uc

    blob = code.read_bytes() if code else None
    run_admin(config, table, lambda rt: views.service(services_uc.create_service(
        rt, ADMIN, code=blob, balance=balance, min_item_gas=min_item_gas, owner=owner)))


@services.command("list")
def services_list(owner: Annotated[str | None, typer.Option(
                      help="only this account's services")] = None,
                  config: ConfigOpt = None, table: TableOpt = False) -> None:
    """List services (all of them, or one account's)."""
    from jamhost.app.system import every_service

    run_admin(config, table, lambda rt: views.page(
        [views.service(s) for s in every_service(rt, ADMIN, owner=owner)], None))


@services.command("show")
def services_show(service_id: ServiceArg, config: ConfigOpt = None,
                  table: TableOpt = False) -> None:
    """One service with its quota and usage."""
    from jamhost.app import services as services_uc

    def act(rt: Runtime) -> Any:
        svc = services_uc.show_service(rt, ADMIN, service_id)
        return views.service(svc, services_uc.quota_of(rt, svc), rt.gas_window())
    run_admin(config, table, act)


@delegates.command("add")
def delegates_add(service_id: ServiceArg,
                  accessor: Annotated[str | None, typer.Option(
                      help="the delegate token's accessor (a token of this host)")] = None,
                  token: Annotated[str | None, typer.Option(
                      envvar="JAMHOST_DELEGATE_TOKEN", help="raw token (or env)")] = None,
                  role: Annotated[str, typer.Option(help="reader or submitter")] = "submitter",
                  config: ConfigOpt = None, table: TableOpt = False) -> None:
    """Let another token use a service (by accessor or raw token)."""
    from jamhost.app import services as services_uc

    run_admin(config, table, lambda rt: views.delegate(services_uc.add_delegate(
        rt, ADMIN, service_id, accessor=accessor, token=token, role=role)))


@delegates.command("list")
def delegates_list(service_id: ServiceArg, config: ConfigOpt = None,
                   table: TableOpt = False) -> None:
    """List the tokens delegated to use a service."""
    from jamhost.app import services as services_uc

    run_admin(config, table, lambda rt: views.page(
        [views.delegate(d)
         for d in services_uc.list_delegates(rt, ADMIN, service_id)], None))


@delegates.command("remove")
def delegates_remove(service_id: ServiceArg,
                     delegate_id: Annotated[int, typer.Argument(
                         help="the delegation's id (from `delegates list`)")],
                     config: ConfigOpt = None, table: TableOpt = False) -> None:
    """Withdraw a delegation."""
    from jamhost.app import services as services_uc

    def act(rt: Runtime) -> Any:
        services_uc.remove_delegate(rt, ADMIN, service_id, delegate_id)
        return {"removed": delegate_id}
    run_admin(config, table, act)


@quotas.command("show")
def quotas_show(service_id: ServiceArg, config: ConfigOpt = None,
                table: TableOpt = False) -> None:
    """A service's quota: limits, usage and overrides."""
    from jamhost.app import services as services_uc

    def act(rt: Runtime) -> Any:
        svc = services_uc.show_service(rt, ADMIN, service_id)
        return views.quota(services_uc.quota_of(rt, svc), svc, rt.gas_window())
    run_admin(config, table, act)


@quotas.command("set")
def quotas_set(service_id: ServiceArg,
               pending_packages: Annotated[int | None, typer.Option(
                   help="packages pending at once")] = None,
               storage_bytes: Annotated[int | None, typer.Option(
                   help="bytes of storage, preimages and code")] = None,
               gas_per_hour: Annotated[int | None, typer.Option(
                   help="gas per fixed clock hour (UTC)")] = None,
               config: ConfigOpt = None, table: TableOpt = False) -> None:
    """Override a service's quota limits; options not given keep their value."""
    from jamhost.app import services as services_uc

    def act(rt: Runtime) -> Any:
        current = services_uc.show_service(rt, ADMIN, service_id)
        given = {"pending_packages": pending_packages, "storage_bytes": storage_bytes,
                 "gas_per_hour": gas_per_hour}
        merged = replace(current.quota, **{k: v for k, v in given.items() if v is not None})
        svc = services_uc.set_quota(rt, ADMIN, service_id, merged)
        return views.quota(services_uc.quota_of(rt, svc), svc, rt.gas_window())
    run_admin(config, table, act)
