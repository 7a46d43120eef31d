"""The audit log, for operators."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from jamhost.api import cursors
from jamhost.api.deps import page_limit, principal, runtime
from jamhost.app import audit, views
from jamhost.app.runtime import Runtime
from jamhost.tenancy.principal import Principal

router = APIRouter(tags=["audit"])


@router.get("/jam/audit")
def list_audit(request: Request, action: str | None = None, cursor: str | None = None,
               limit: str | None = None,
               rt: Runtime = Depends(runtime),
               who: Principal = Depends(principal)) -> dict[str, Any]:
    """The audit log, newest first, optionally one `action`. Operator only."""
    wanted = action or None
    scope = {"action": wanted}
    audit.authorize_read(rt, who)  # before the cursor is opened: a tenant learns nothing
    page = audit.list_events(rt, who, action=wanted,
                             cursor=cursors.decode(request, cursor, int, **scope),
                             limit=page_limit(limit))
    return cursors.page(request, [views.audit_event(e) for e in page.items], page.next_cursor,
                        **scope)
