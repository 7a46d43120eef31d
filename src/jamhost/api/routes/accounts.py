"""Accounts and tokens."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from jamhost.api.bodies import read_json
from jamhost.api.deps import principal, runtime
from jamhost.api.models import AccountIn, TokenIn, openapi_body, validate
from jamhost.app import accounts, views
from jamhost.app.runtime import Runtime
from jamhost.domain.refusals import NotFound
from jamhost.tenancy.principal import Principal

router = APIRouter(prefix="/jam/accounts", tags=["accounts"])


@router.post("", status_code=201, openapi_extra=openapi_body(AccountIn))
async def create_account(request: Request, rt: Runtime = Depends(runtime),
                         who: Principal = Depends(principal)) -> JSONResponse:
    """Create an account (a tenant). Operator only.

    Answers the account; make it a token with `POST /jam/accounts/{account_id}/tokens`."""
    accounts.authorize_create_account(rt, who)  # before the body is read
    body = validate(AccountIn, await read_json(request))
    acc = await run_in_threadpool(accounts.create_account, rt, who, body.name)
    return JSONResponse(views.account(acc), status_code=201)


@router.get("/me")
def me(rt: Runtime = Depends(runtime), who: Principal = Depends(principal)) -> dict[str, Any]:
    """Who the token is: its kind, account, accessor, scopes and delegations."""
    acc = accounts.own_account(rt, who)
    return {"kind": who.kind, "account": views.account(acc) if acc else None,
            "accessor": who.accessor, "scopes": sorted(who.scopes),
            "delegations": [{"service_id": sid, "role": role}
                            for sid, role in sorted(who.delegations.items())]}


@router.post("/{account_id}/tokens", status_code=201, openapi_extra=openapi_body(TokenIn))
async def create_token(account_id: str, request: Request, rt: Runtime = Depends(runtime),
                       who: Principal = Depends(principal)) -> JSONResponse:
    """Create a token for an account; the token is shown once, in this answer.

    `expires_at` takes ISO 8601 (a naive time means UTC) or Unix seconds. An account token
    needs the `manage` scope and acts on its own account only."""
    body = validate(TokenIn, await read_json(request))
    token, record = await run_in_threadpool(
        accounts.create_token, rt, who, account_id, body.name, body.scopes, body.expires_us())
    return JSONResponse({"token": token, **views.token(record)}, status_code=201)


@router.get("/{account_id}/tokens")
def list_tokens(account_id: str, rt: Runtime = Depends(runtime),
                who: Principal = Depends(principal)) -> dict[str, Any]:
    """List an account's tokens (accessors and hash prefixes, never the tokens)."""
    return views.page([views.token(t) for t in accounts.list_tokens(rt, who, account_id)])


@router.delete("/{account_id}/tokens/{accessor}", status_code=204)
def revoke_token(account_id: str, accessor: str, rt: Runtime = Depends(runtime),
                 who: Principal = Depends(principal)) -> Response:
    """Revoke a token by its accessor; it fails from the next request on."""
    if len(accessor) > 64:
        raise NotFound("no such active token")
    accounts.revoke_token(rt, who, account_id, accessor)
    return Response(status_code=204)
