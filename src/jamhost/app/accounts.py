"""Use cases: accounts and their tokens."""

from __future__ import annotations

import secrets
from collections.abc import Iterable

from jamhost.app import audit
from jamhost.app.runtime import Runtime
from jamhost.domain.model import SCOPES, Account, TokenRecord, now_us
from jamhost.domain.refusals import BadRequest, NotFound
from jamhost.tenancy.principal import Principal
from jamhost.tenancy.tokens import ACCESSOR_RE, new_token


def authorize_create_account(rt: Runtime, who: Principal) -> None:
    """Before a body is read: accounts are created by operators (and the admin CLI)."""
    rt.view(who).require_operator()


def create_account(rt: Runtime, who: Principal, name: str) -> Account:
    """Operators create accounts (and the admin CLI, `ADMIN`)."""
    view = rt.view(who)
    view.require_operator()  # refused before the name is judged, as always
    name = name.strip()
    if not name or len(name) > 200 or not name.isprintable():
        raise BadRequest("name must be 1 to 200 printable characters")
    account = view.create_account(Account("acc_" + secrets.token_hex(8), name, now_us()))
    audit.record(rt, who, "account.created", target=account.id)
    return account


def own_account(rt: Runtime, who: Principal) -> Account | None:
    """The caller's own account (`GET /jam/accounts/me`); None for operators and delegates."""
    return rt.view(who).own_account()


def list_accounts(rt: Runtime, who: Principal) -> list[Account]:
    """Every account: operators and the admin CLI."""
    return rt.view(who).list_accounts()


def create_token(rt: Runtime, who: Principal, account_id: str, name: str,
                 scopes: Iterable[str] | None = None,
                 expires_at: int | None = None) -> tuple[str, TokenRecord]:
    """A new token; the raw token is returned this once and never stored. Operators, or that
    account's own token with `manage`: another account's id answers 403 whether or not it
    exists, so ids cannot be probed (TenantView.account)."""
    view = rt.view(who)
    writes = view.account_manager(account_id)
    account = writes.account
    chosen = tuple(sorted(set(scopes))) if scopes is not None else SCOPES
    bad = [s for s in chosen if s not in SCOPES]
    if bad or not chosen:
        raise BadRequest(f"scopes must be a non-empty subset of {list(SCOPES)}")
    view.require_grantable(frozenset(chosen))
    name = (name or "").strip() or "token"
    if len(name) > 200 or not name.isprintable():
        raise BadRequest("name must be at most 200 printable characters")
    if expires_at is not None and expires_at <= now_us():
        raise BadRequest("expires_at must be in the future")
    token, accessor = new_token()
    record = TokenRecord(accessor=accessor, account_id=account.id,
                         token_hash=rt.hasher.hash(token), name=name, scopes=chosen,
                         created_at=now_us(), expires_at=expires_at)
    stored = writes.add_token(record)
    audit.record(rt, who, "token.created", target=f"{account.id}:{accessor}",
                 scopes=list(chosen))
    return token, stored


def list_tokens(rt: Runtime, who: Principal, account_id: str) -> list[TokenRecord]:
    return rt.view(who).tokens(account_id)


def revoke_token(rt: Runtime, who: Principal, account_id: str, accessor: str) -> None:
    writes = rt.view(who).account_manager(account_id)
    account = writes.account
    if not ACCESSOR_RE.match(accessor) or not writes.revoke_token(accessor, now_us()):
        raise NotFound("no such active token")
    audit.record(rt, who, "token.revoked", target=f"{account.id}:{accessor}")
