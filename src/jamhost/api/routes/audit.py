"""The audit log, for operators."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from jamhost.api import cursors, views
from jamhost.api.deps import page_limit, principal, runtime
from jamhost.app.runtime import Runtime
from jamhost.domain.refusals import BadRequest
from jamhost.tenancy.principal import Principal

router = APIRouter(tags=["audit"])


@router.get("/jam/audit")
def list_audit(request: Request, action: str | None = None, cursor: str | None = None,
               limit: str | None = None,
               rt: Runtime = Depends(runtime),
               who: Principal = Depends(principal)) -> dict[str, Any]:
    """The audit log, newest first, optionally one `action`. Operator only."""
    rt.policy.require_operator(who)
    if action is not None and (len(action) > 40 or not action.isprintable()):
        raise BadRequest("action must be at most 40 printable characters")
    scope = {"action": action or None}
    page = rt.store.list_audit(**scope, cursor=cursors.decode(request, cursor, int, **scope),
                               limit=page_limit(limit))
    return cursors.page(request, [views.audit_event(e) for e in page.items], page.next_cursor,
                        **scope)
