"""The audit log: security events written to the store, readable by operators only.

Actors are public handles (`account:<id>:<accessor>`, `operator:<hmac prefix>`,
`admin-cli`), never tokens. Writing an event never fails the action it records.
"""

from __future__ import annotations

import json
from typing import Any

from jamhost.app.runtime import Runtime
from jamhost.domain.model import AuditEvent, Page
from jamhost.domain.refusals import BadRequest
from jamhost.observability import get_logger
from jamhost.tenancy.principal import Principal

log = get_logger("jamhost.audit")


def record(rt: Runtime, who: Principal | None, action: str, *, service_id: int | None = None,
           target: str | None = None, **detail: Any) -> None:
    # None: a refusal before the caller was known (every 403 comes after authentication)
    actor = who.label if who is not None else "unauthenticated"
    event = AuditEvent(actor, action, service_id, target,
                       json.dumps(detail, sort_keys=True) if detail else None)
    try:
        rt.store.audit(event)
    except Exception as exc:  # the action already happened; keep a trace in the logs
        log.error("audit write failed", action=action, error=type(exc).__name__)
    log.info("audit", actor=event.actor, action=action, service_id=service_id, target=target)


def authorize_read(rt: Runtime, who: Principal) -> None:
    """Before a cursor is opened: the audit log is for operators (a tenant learns
    nothing)."""
    rt.view(who).require_operator()


def list_events(rt: Runtime, who: Principal, *, action: str | None, cursor: int | None,
                limit: int) -> Page[AuditEvent]:
    """The audit log, newest first, optionally one `action`. Operators only (and the admin
    CLI, `jamhost audit`)."""
    rt.view(who).require_operator()
    if action is not None and (len(action) > 40 or not action.isprintable()):
        raise BadRequest("action must be at most 40 printable characters")
    return rt.store.list_audit(action=action, cursor=cursor, limit=limit)
