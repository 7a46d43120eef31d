"""Use cases: the runtime's own state, for health checks, `/system/status` and the metrics
scrape. Route handlers and middleware reach the store only through these."""

from __future__ import annotations

from collections.abc import Iterator

from jamhost.app.runtime import Runtime
from jamhost.domain.model import ServiceRecord
from jamhost.tenancy.principal import Principal

PAGE = 500


def store_ready(rt: Runtime) -> bool:
    """Whether the store answers (readiness)."""
    return rt.store.ping()


def store_kind(rt: Runtime) -> str:
    """`memory`, `sqlite` or `postgres`."""
    return rt.store.kind


def queue_gauges(rt: Runtime) -> tuple[int, dict[str, int]]:
    """(pending plus refining packages, the queue's state counts) for the metrics scrape:
    the store's global counter and its queued/running/busy-account counts."""
    return rt.store.pending_total(), rt.store.queue_states()


def every_service(rt: Runtime, who: Principal, *,
                  owner: str | None = None) -> Iterator[ServiceRecord]:
    """Every service (or one owner's), page by page: for operators, and for the admin CLI
    (`ADMIN`, working on the store); their view's scope is every service."""
    view = rt.view(who)
    view.require_operator()
    cursor: int | None = None
    while True:
        page = view.list_services(owner=owner, cursor=cursor, limit=PAGE)
        yield from page.items
        if not isinstance(page.next_cursor, int):  # a services listing pages by service id
            return
        cursor = page.next_cursor


def reconcile_usage(rt: Runtime, who: Principal) -> int:
    """Recompute the usage counters from the rows (`jamhost reconcile`): operators and the
    admin CLI. The number of services whose counters were repaired."""
    rt.view(who).require_operator()
    return rt.store.reconcile_usage()


def accumulator_roots(rt: Runtime, who: Principal) -> dict[int, bytes] | None:
    """Every service's accumulator root, for `/system/status`: operators only (None for
    everyone else)."""
    if not rt.view(who).sees_every_service():
        return None
    return {svc.service_id: svc.root for svc in every_service(rt, who)}
