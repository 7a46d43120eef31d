"""Listings across several services on every adapter: newest first, merged correctly however
the services' rows interleave, filters applied, and every page reachable through cursors."""

from __future__ import annotations

import pytest

from jamhost.config import JamSettings
from jamhost.domain.model import PackageOutcome, PackageRecord, QuotaLimits, ReportRecord, now_us
from jamhost.domain.scopes import ServiceScope
from jamhost.store import open_store
from tests.store_scopes import EVERYTHING

LIMITS = QuotaLimits(10**6, 10**9, 10**15)


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store(request, tmp_path, fresh_pg):
    kind = request.param
    settings = {"memory": JamSettings(store="memory"),
                "sqlite": JamSettings(store="sqlite", sqlite_path=str(tmp_path / "s.db")),
                "postgres": JamSettings(store="postgres", pg_dsn=fresh_pg)}[kind]
    st = open_store(settings)
    yield st
    st.close()


def services(st, n):
    return [st.create_service(owner="o", code=None, code_hash=bytes(32), balance=0,
                              min_item_gas=0, min_memo_gas=0, created_by="t",
                              storage_limit=10**9).service_id for _ in range(n)]


def submit(st, sid, i):
    pid = i.to_bytes(32, "big")
    st.submit_package(PackageRecord(pid, sid, "pending", b"x", 1, 1, 1, 1, 1), LIMITS, 10**6, 0)
    return pid


def walk(st, scope, **kw):
    out, cursor = [], None
    while True:
        page = st.list_packages(scope, cursor=cursor, limit=3, **kw)
        out += [p.id for p in page.items]
        if page.next_cursor is None:
            return out
        cursor = page.next_cursor


def test_interleaved_services_merge_newest_first(store):
    a, b, c = services(store, 3)
    # a has a few old packages, b many newer ones (the shape that defeats a backward scan)
    order = [(a, 1), (a, 2), (c, 3)] + [(b, 10 + i) for i in range(8)] + [(a, 30), (c, 31)]
    ids = {i: submit(store, sid, i) for sid, i in order}
    scope = ServiceScope(ids=frozenset({a, b}))
    expected = [ids[i] for sid, i in reversed(order) if sid in (a, b)]
    assert walk(store, scope) == expected
    assert walk(store, EVERYTHING) == [ids[i] for _sid, i in reversed(order)]
    assert walk(store, scope, service_id=c) == []  # outside the scope: nothing
    assert walk(store, scope, service_id=a) == [ids[30], ids[2], ids[1]]
    assert walk(store, ServiceScope()) == []


def test_status_filter_and_receipts_paging_without_service(store):
    a, b = services(store, 2)
    pids = [submit(store, sid, i) for i, sid in enumerate([a, b, a, b])]
    for pid in pids[:3]:  # apply three, oldest first: each adds a package and a report receipt
        claimed = store.claim_package("w", now_us(), 10**9)
        assert claimed.id == pid
        rep = ReportRecord(claimed.id, claimed.service_id, claimed.id[::-1], b"r", 0)
        assert store.finish_package(PackageOutcome(claimed.id, claimed.service_id, "w",
                                                   "applied", report=rep))
    scope = ServiceScope(ids=frozenset({a, b}))
    reports = store.list_reports(scope, limit=2)  # merged across a and b, bodies included
    assert [(r.package_id, r.body) for r in reports.items] == [(pids[2], b"r"), (pids[1], b"r")]
    rest = store.list_reports(scope, limit=2, cursor=reports.next_cursor)
    assert ([r.package_id for r in rest.items], rest.next_cursor) == ([pids[0]], None)
    assert [r.package_id for r in store.list_reports(ServiceScope(frozenset({b}))).items] \
        == [pids[1]]
    assert [r.package_id for r in store.list_reports(scope, service_id=a).items] \
        == [pids[2], pids[0]]
    assert walk(store, scope, status="pending") == [pids[3]]
    assert walk(store, scope, status="applied") == [pids[2], pids[1], pids[0]]
    seen, cursor = [], None
    while True:
        page = store.list_receipts(EVERYTHING, cursor=cursor, limit=2)
        seen += [(r.service_id, r.seq) for r in page.items]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == [(a, 1), (a, 2), (a, 3), (a, 4), (b, 1), (b, 2)]


@pytest.mark.parametrize("width", [2, 25, 66])  # 66: past the merged-scan limit of 64
def test_every_scope_width_lists_the_same_as_a_sort(store, width):
    sids = services(store, width + 1)
    mine, other = sids[:width], sids[width]
    order = [(sids[(i * 7) % len(sids)], i) for i in range(3 * len(sids))]
    ids = {i: submit(store, sid, i) for sid, i in order}
    expected = [ids[i] for sid, i in sorted(order, key=lambda x: -x[1]) if sid != other]
    assert walk(store, ServiceScope(ids=frozenset(mine))) == expected
