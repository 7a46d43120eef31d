"""The Store port contract: the same tests against SQLite in memory (the memory store), a
SQLite file and PostgreSQL.

Every adapter is built the way the runtime builds it (`open_store(JamSettings(...))`), on a
fresh file or a fresh PostgreSQL database. Expected values are written out by hand.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from jamhost.config import JamSettings
from jamhost.domain.model import (
    ZERO_HASH,
    Account,
    Credentials,
    Delegate,
    ExportSet,
    PackageOutcome,
    PackageRecord,
    Page,
    QuotaLimits,
    QuotaOverride,
    StateChanges,
    TokenRecord,
    Usage,
    export_set_bytes,
    now_us,
)
from jamhost.domain.refusals import (
    Forbidden,
    GasQuotaExceeded,
    PendingLimit,
    SegmentQuotaExceeded,
    StorageQuotaExceeded,
)
from jamhost.domain.scopes import ServiceScope
from jamhost.store import Store, open_store
from jamhost.store.migrate import MIGRATIONS
from jamhost.store.sql import tables
from jamhost.tenancy import fairness
from tests.conftest import write_config
from tests.scheduler_state import account_vtime
from tests.store_scopes import EVERYTHING

NOBODY = ServiceScope()
ROOMY = QuotaLimits(pending_packages=100, storage_bytes=10_000, gas_per_hour=1_000_000)
W = 490_000  # a gas window (hour number); the store takes it as given


def blake(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=32).digest()


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "memory":
        settings = JamSettings(store="memory")
    elif request.param == "sqlite":
        settings = JamSettings(store="sqlite", sqlite_path=str(tmp_path / "contract.db"))
    else:
        settings = JamSettings(store="postgres", pg_dsn=request.getfixturevalue("fresh_pg"))
    s = open_store(settings)
    s.init_counters()
    request.addfinalizer(s.close)
    assert s.kind == request.param
    return s


def new_service(store: Store, owner: str = "acct-a", *, code: bytes | None = None,
                storage_limit: int = 10_000, balance: int = 0) -> int:
    svc = store.create_service(owner=owner, code=code,
                               code_hash=blake(code) if code is not None else ZERO_HASH,
                               balance=balance, min_item_gas=10, min_memo_gas=20,
                               created_by="op", storage_limit=storage_limit)
    return svc.service_id


def pkg(service_id: int, n: int, refine: int = 300, accumulate: int = 200) -> PackageRecord:
    body = b"pkg-%d-%d" % (service_id, n)
    return PackageRecord(id=blake(body), service_id=service_id, status="pending", body=body,
                         size=len(body), refine_gas=refine, accumulate_gas=accumulate,
                         created_at=1_000 + n, updated_at=1_000 + n)


def blob_rows(store: Store) -> int:
    """How many copies of blob bytes the adapter keeps (introspection, adapter-specific)."""
    with store.engine.connect() as conn:  # type: ignore[attr-defined]
        return conn.execute(sa.text("SELECT count(*) FROM jam_blobs")).scalar_one()


def seed_storage(store: Store, service_id: int, rows: dict[bytes, bytes]) -> None:
    """Service state is written by accumulate, which is not part of this port yet."""
    with store.engine.begin() as conn:  # type: ignore[attr-defined]
        conn.execute(tables.storage.insert(), [{"service_id": service_id, "key": k, "value": v}
                                          for k, v in rows.items()])


# -- plumbing and meta -----------------------------------------------------------------------

def test_ping_and_meta_first_value_wins(store: Store) -> None:
    assert store.ping() is True
    assert store.get_or_create_meta("token_hmac_key", "first") == "first"
    assert store.get_or_create_meta("token_hmac_key", "second") == "first"
    assert store.get_or_create_meta("other", "x") == "x"


def test_init_counters_is_idempotent(store: Store) -> None:
    assert new_service(store) == 65536
    store.init_counters()
    assert new_service(store) == 65537


# -- accounts and tokens ---------------------------------------------------------------------

def test_accounts(store: Store) -> None:
    b = Account("acct-b", "bob", 2_000)
    a = Account("acct-a", "alice", 1_000)
    assert store.create_account(b) == b
    assert store.create_account(a) == a
    assert store.get_account("acct-a") == Account("acct-a", "alice", 1_000)
    assert store.get_account("acct-zzz") is None
    assert store.list_accounts() == [a, b]  # by created_at
    with pytest.raises(Exception):  # noqa: B017 (the adapters raise their own kind)
        store.create_account(Account("acct-a", "mallory", 3_000))
    assert store.get_account("acct-a") == a
    assert store.list_accounts() == [a, b]


def test_tokens_by_hash_accessor_list_and_revoke(store: Store) -> None:
    store.create_account(Account("acct-a", "alice", 1))
    store.create_account(Account("acct-b", "bob", 2))
    t1 = TokenRecord("acc1", "acct-a", b"\x01" * 32, "main", ("read", "submit", "manage"), 10)
    t2 = TokenRecord("acc2", "acct-a", b"\x02" * 32, "ci", ("read",), 20, expires_at=5_000)
    t3 = TokenRecord("acc3", "acct-b", b"\x03" * 32, "bob", ("submit",), 15)
    for tok in (t2, t1, t3):
        assert store.add_token(tok) == tok

    assert store.credentials(b"\x02" * 32) == Credentials(TokenRecord(
        "acc2", "acct-a", b"\x02" * 32, "ci", ("read",), 20, 5_000, None), {})
    assert store.credentials(b"\x09" * 32) == Credentials(None, {})
    assert store.token_by_accessor("acc3") == t3
    assert store.token_by_accessor("nope") is None
    assert store.list_tokens("acct-a") == [t1, t2]  # by created_at, only that account
    assert store.list_tokens("acct-b") == [t3]
    assert store.list_tokens("acct-none") == []

    assert store.revoke_token("acct-b", "acc1", 777) is False  # not bob's token
    assert store.token_by_accessor("acc1").revoked_at is None
    assert store.revoke_token("acct-a", "acc1", 777) is True
    assert store.revoke_token("acct-a", "acc1", 888) is False  # twice
    assert store.revoke_token("acct-a", "nope", 888) is False
    revoked = store.credentials(b"\x01" * 32).token
    assert revoked.revoked_at == 777
    assert revoked.usable(100) is False
    assert store.token_by_accessor("acc2").usable(4_999) is True
    assert store.token_by_accessor("acc2").usable(5_000) is False


# -- services --------------------------------------------------------------------------------

def test_service_ids_from_65536_and_fields(store: Store) -> None:
    first = store.create_service(owner="acct-a", code=None, code_hash=b"\x07" * 32, balance=5,
                                 min_item_gas=10, min_memo_gas=20, created_by="acct-a",
                                 storage_limit=100)
    assert first.service_id == 65536
    assert (first.owner, first.code_hash, first.balance) == ("acct-a", b"\x07" * 32, 5)
    assert (first.min_item_gas, first.min_memo_gas, first.created_by) == (10, 20, "acct-a")
    assert first.quota == QuotaOverride(None, None, None)
    assert first.usage == Usage(0, 0, 0, 0)
    assert (first.root, first.receipt_seq) == (ZERO_HASH, 0)
    assert store.get_service(65536) == first
    ids = [new_service(store, f"o{i}") for i in range(4)]
    assert ids == [65537, 65538, 65539, 65540]
    assert store.get_service(65541) is None
    assert store.get_service(1) is None


def test_service_with_code_charges_storage_and_refusal_leaves_nothing(store: Store) -> None:
    code = b"\x00code" * 10  # 50 bytes
    sid = new_service(store, code=code, storage_limit=50)
    svc = store.get_service(sid)
    assert svc.code_hash == blake(code)
    assert svc.usage.storage_bytes == 50
    assert store.service_preimage(sid, blake(code)) == code

    big = b"\x01" * 51
    with pytest.raises(StorageQuotaExceeded):
        new_service(store, code=big, storage_limit=50)
    # Nothing of the refused service remains, not even its id.
    assert store.list_services(EVERYTHING).items == [svc]
    assert store.find_preimage(blake(big), EVERYTHING) is None
    assert store.read_blob(blake(big)) is None
    assert new_service(store) == sid + 1


def test_list_services_scope_owner_and_cursor(store: Store) -> None:
    owners = ["a", "b", "a", "c", "a"]
    ids = [new_service(store, o) for o in owners]
    assert ids == [65536, 65537, 65538, 65539, 65540]

    def listed(scope: ServiceScope, **kw: object) -> tuple[list[int], object]:
        page = store.list_services(scope, **kw)  # type: ignore[arg-type]
        return [s.service_id for s in page.items], page.next_cursor

    assert listed(EVERYTHING) == (ids, None)
    assert listed(NOBODY) == ([], None)
    assert listed(ServiceScope(frozenset({65537, 65539, 99999}))) == ([65537, 65539], None)
    assert listed(EVERYTHING, owner="a") == ([65536, 65538, 65540], None)
    assert listed(ServiceScope(frozenset({65536, 65537})), owner="a") == ([65536], None)
    assert listed(EVERYTHING, owner="nobody") == ([], None)
    assert listed(EVERYTHING, limit=2) == ([65536, 65537], 65537)
    assert listed(EVERYTHING, limit=2, cursor=65537) == ([65538, 65539], 65539)
    assert listed(EVERYTHING, limit=2, cursor=65539) == ([65540], None)
    assert listed(EVERYTHING, limit=5) == (ids, None)
    assert listed(EVERYTHING, owner="a", limit=1, cursor=65536) == ([65538], 65538)
    assert store.owned_service_ids("a") == {65536, 65538, 65540}
    assert store.owned_service_ids("nobody") == set()


def test_set_code_credit_set_quota(store: Store) -> None:
    sid = new_service(store, balance=100)
    code = b"new code"
    svc = store.set_code(sid, code, blake(code), storage_limit=100)
    assert svc.code_hash == blake(code)
    assert svc.usage.storage_bytes == 8
    assert store.service_preimage(sid, blake(code)) == code
    assert store.find_preimage(blake(code), ServiceScope(frozenset({sid}))).service_id == sid
    # The same code again is not charged again.
    assert store.set_code(sid, code, blake(code), storage_limit=100).usage.storage_bytes == 8
    with pytest.raises(StorageQuotaExceeded):
        store.set_code(sid, b"x" * 93, blake(b"x" * 93), storage_limit=100)
    after = store.get_service(sid)
    assert (after.code_hash, after.usage.storage_bytes) == (blake(code), 8)

    assert store.credit(sid, 23).balance == 123
    assert store.credit(sid, 2**40).balance == 123 + 2**40
    assert store.get_service(sid).balance == 123 + 2**40

    q = store.set_quota(sid, QuotaOverride(pending_packages=7, gas_per_hour=9_000))
    assert q.quota == QuotaOverride(7, None, 9_000)
    assert store.get_service(sid).quota.resolve(ROOMY) == QuotaLimits(7, 10_000, 9_000)
    assert store.set_quota(sid, QuotaOverride()).quota == QuotaOverride(None, None, None)
    assert store.get_service(sid).quota == QuotaOverride()


# -- delegates -------------------------------------------------------------------------------

def test_delegates_add_idempotent_list_remove(store: Store) -> None:
    s1, s2 = new_service(store), new_service(store)
    h1, h2 = b"\x11" * 32, b"\x22" * 32
    d1 = store.add_delegate(s1, h1, "reader", "acct-a")
    assert (d1.service_id, d1.token_hash, d1.role, d1.created_by) == (s1, h1, "reader", "acct-a")
    d2 = store.add_delegate(s1, h2, "submitter", "op")
    d3 = store.add_delegate(s2, h1, "submitter", "op")
    assert len({d1.id, d2.id, d3.id}) == 3

    # Again for the same (service, token): the same row, with the new role.
    again = store.add_delegate(s1, h1, "submitter", "someone-else")
    assert again == Delegate(d1.id, s1, h1, "submitter", d1.created_at, "acct-a")
    assert store.list_delegates(s1) == [again, d2]
    assert store.list_delegates(s2) == [d3]
    assert store.list_delegates(99_999) == []
    assert store.credentials(h1).delegations == {s1: "submitter", s2: "submitter"}
    assert store.credentials(h2).delegations == {s1: "submitter"}
    assert store.credentials(b"\x33" * 32).delegations == {}

    assert store.remove_delegate(s2, d1.id) is False  # d1 belongs to s1
    assert store.remove_delegate(s1, d1.id) is True
    assert store.remove_delegate(s1, d1.id) is False
    assert store.list_delegates(s1) == [d2]
    assert store.credentials(h1).delegations == {s2: "submitter"}


def test_credentials_of_an_account_token_that_is_also_a_delegate(store: Store) -> None:
    store.create_account(Account("acct-a", "alice", 1))
    h = b"\x44" * 32
    tok = store.add_token(TokenRecord("acc4", "acct-a", h, "main", ("read",), 10))
    s1 = new_service(store)
    store.add_delegate(s1, h, "reader", "op")
    assert store.credentials(h) == Credentials(tok, {s1: "reader"})
    assert store.credentials(b"\x45" * 32) == Credentials(None, {})


# -- preimages -------------------------------------------------------------------------------

def test_preimage_put_once_per_hash_and_service(store: Store) -> None:
    s1, s2 = new_service(store), new_service(store)
    data = b"hello preimage"  # 14 bytes
    h = blake(data)
    meta, created = store.put_preimage(h, data, "text/plain", s1, 1_000)
    assert created is True
    assert (meta.hash, meta.size, meta.media_type, meta.service_id) == (h, 14, "text/plain", s1)
    again, created = store.put_preimage(h, data, "application/other", s1, 1_000)
    assert (again, created) == (meta, False)  # first metadata kept
    assert store.get_service(s1).usage.storage_bytes == 14  # charged once

    other, created = store.put_preimage(h, data, "text/plain", s2, 1_000)
    assert created is True and other.service_id == s2
    assert store.get_service(s2).usage.storage_bytes == 14
    assert store.get_service(s1).usage.storage_bytes == 14
    assert blob_rows(store) == 1  # the bytes are kept once
    assert store.read_blob(h) == data

    # Without a limit nothing is charged (operator uploads, unscoped).
    unscoped, created = store.put_preimage(h, data, "text/plain", None, None)
    assert created is True and unscoped.service_id is None
    assert store.put_preimage(h, data, "text/plain", None, None) == (unscoped, False)
    assert blob_rows(store) == 1


def test_preimage_storage_quota_refusal_leaves_nothing(store: Store) -> None:
    sid = new_service(store)
    a, b, c = b"a" * 40, b"b" * 60, b"c" * 1
    assert store.put_preimage(blake(a), a, "x/y", sid, 100)[1] is True
    assert store.put_preimage(blake(b), b, "x/y", sid, 100)[1] is True  # exactly 100
    with pytest.raises(StorageQuotaExceeded):
        store.put_preimage(blake(c), c, "x/y", sid, 100)
    assert store.get_service(sid).usage.storage_bytes == 100
    assert store.find_preimage(blake(c), EVERYTHING) is None
    assert store.service_preimage(sid, blake(c)) is None
    assert store.read_blob(blake(c)) is None
    assert blob_rows(store) == 2
    # A refused upload of a blob that exists elsewhere adds no row for this service.
    other = new_service(store)
    d = b"d" * 30
    store.put_preimage(blake(d), d, "x/y", other, 100)
    with pytest.raises(StorageQuotaExceeded):
        store.put_preimage(blake(d), d, "x/y", sid, 100)
    assert store.find_preimage(blake(d), ServiceScope(frozenset({sid}))) is None
    assert store.service_preimage(sid, blake(d)) is None
    assert store.get_service(sid).usage.storage_bytes == 100


def test_a_service_over_its_storage_quota_may_add_nothing(store: Store) -> None:
    """The storage verdict of tenancy/storage_quota.py on the store's charge (preimages,
    code, new services): an upload that adds no bytes is not refused even when the service
    is over its quota (its limit lowered since), one that adds a byte is; the apply planner
    decides the same (tests/unit/test_apply_plan.py)."""
    sid = new_service(store)
    a = b"a" * 60
    store.put_preimage(blake(a), a, "x/y", sid, 100)
    empty = b""
    meta, created = store.put_preimage(blake(empty), empty, "x/y", sid, 10)  # 60 > 10
    assert created is True and meta.size == 0
    assert store.service_preimage(sid, blake(empty)) == b""
    with pytest.raises(StorageQuotaExceeded):
        store.put_preimage(blake(b"b"), b"b", "x/y", sid, 10)
    assert store.get_service(sid).usage.storage_bytes == 60


def test_find_preimage_scope_and_service_preimage(store: Store) -> None:
    s1, s2, s3 = new_service(store), new_service(store), new_service(store)
    mine, shared, public = b"mine", b"shared", b"public"
    store.put_preimage(blake(mine), mine, "m/1", s1, 1_000)
    store.put_preimage(blake(shared), shared, "m/2", s1, 1_000)
    store.put_preimage(blake(shared), shared, "m/3", s2, 1_000)
    store.put_preimage(blake(public), public, "m/4", None, None)
    only1, only2, only3 = (ServiceScope(frozenset({s})) for s in (s1, s2, s3))

    def found(h: bytes, scope: ServiceScope) -> tuple[int | None, str] | None:
        m = store.find_preimage(h, scope)
        return None if m is None else (m.service_id, m.media_type)

    assert found(blake(mine), only1) == (s1, "m/1")
    assert found(blake(mine), only2) is None
    assert found(blake(mine), NOBODY) is None
    assert found(blake(mine), EVERYTHING) == (s1, "m/1")
    assert found(blake(shared), only1) == (s1, "m/2")
    assert found(blake(shared), only2) == (s2, "m/3")
    assert found(blake(shared), only3) is None
    assert found(blake(shared), EVERYTHING) == (s2, "m/3")  # the highest service id
    # Unscoped (operator) preimages are visible through any scope, even an empty one.
    assert found(blake(public), NOBODY) == (None, "m/4")
    assert found(blake(public), only3) == (None, "m/4")
    assert found(blake(b"missing"), EVERYTHING) is None

    assert store.service_preimage(s1, blake(mine)) == mine
    assert store.service_preimage(s2, blake(mine)) is None
    assert store.service_preimage(s2, blake(shared)) == shared
    assert store.service_preimage(s1, blake(public)) is None  # only its own rows
    assert store.read_blob(blake(public)) == public


# -- packages --------------------------------------------------------------------------------

def test_submit_idempotent_and_charges(store: Store) -> None:
    sid = new_service(store)
    p = pkg(sid, 1)
    rec, created = store.submit_package(p, ROOMY, 10, W)
    assert created is True
    assert (rec.id, rec.service_id, rec.status, rec.body) == (p.id, sid, "pending", p.body)
    assert (rec.size, rec.refine_gas, rec.accumulate_gas) == (len(p.body), 300, 200)
    assert (rec.created_at, rec.updated_at, rec.attempts) == (1_001, 1_001, 0)
    assert rec.seq >= 1
    assert store.get_service(sid).usage == Usage(1, 0, W, 500)

    again, created = store.submit_package(p, ROOMY, 10, W)
    assert created is False and again == rec
    assert store.get_service(sid).usage == Usage(1, 0, W, 500)
    # Idempotent even when the caps are now reached.
    assert store.submit_package(p, QuotaLimits(0, 0, 0), 0, W) == (rec, False)


def test_per_service_pending_quota(store: Store) -> None:
    s1, s2 = new_service(store), new_service(store)
    limits = QuotaLimits(pending_packages=2, storage_bytes=0, gas_per_hour=10_000)
    assert store.submit_package(pkg(s1, 1), limits, 100, W)[1] is True
    assert store.submit_package(pkg(s1, 2), limits, 100, W)[1] is True
    with pytest.raises(PendingLimit):
        store.submit_package(pkg(s1, 3), limits, 100, W)
    assert store.get_package(pkg(s1, 3).id, EVERYTHING) is None
    assert store.get_service(s1).usage == Usage(2, 0, W, 1_000)
    # Another service has its own quota.
    assert store.submit_package(pkg(s2, 1), limits, 100, W)[1] is True
    assert [p.id for p in store.list_packages(EVERYTHING, service_id=s1).items] == [
        pkg(s1, 2).id, pkg(s1, 1).id]


def test_global_pending_cap(store: Store) -> None:
    s1, s2 = new_service(store), new_service(store, "acct-b")
    assert store.submit_package(pkg(s1, 1), ROOMY, 3, W)[1] is True
    assert store.submit_package(pkg(s1, 2), ROOMY, 3, W)[1] is True
    assert store.submit_package(pkg(s2, 1), ROOMY, 3, W)[1] is True
    with pytest.raises(PendingLimit):
        store.submit_package(pkg(s2, 2), ROOMY, 3, W)
    with pytest.raises(PendingLimit):
        store.submit_package(pkg(s1, 3), ROOMY, 3, W)
    assert store.get_service(s2).usage == Usage(1, 0, W, 500)
    assert store.get_service(s1).usage == Usage(2, 0, W, 1_000)
    assert len(store.list_packages(EVERYTHING).items) == 3
    # A higher cap lets the next one in: the refusals did not count.
    assert store.submit_package(pkg(s2, 2), ROOMY, 4, W)[1] is True
    with pytest.raises(PendingLimit):
        store.submit_package(pkg(s2, 3), ROOMY, 4, W)


def test_gas_per_hour_window(store: Store) -> None:
    sid = new_service(store)
    limits = QuotaLimits(pending_packages=100, storage_bytes=0, gas_per_hour=1_000)
    assert store.submit_package(pkg(sid, 1), limits, 6, W)[1] is True
    assert store.submit_package(pkg(sid, 2), limits, 6, W)[1] is True  # exactly 1000
    with pytest.raises(GasQuotaExceeded):
        store.submit_package(pkg(sid, 3, refine=1, accumulate=0), limits, 6, W)
    # The refusal consumed nothing: no package, no pending slot, no gas, no global slot.
    assert store.get_package(pkg(sid, 3, 1, 0).id, EVERYTHING) is None
    assert store.get_service(sid).usage == Usage(2, 0, W, 1_000)
    # A new window starts from zero; the account's share of a cap of 6 (3) has one left.
    rec, created = store.submit_package(pkg(sid, 4, refine=600, accumulate=100), limits, 6, W + 1)
    assert created is True
    assert store.get_service(sid).usage == Usage(3, 0, W + 1, 700)
    with pytest.raises(PendingLimit):
        store.submit_package(pkg(sid, 5, refine=1, accumulate=0), limits, 6, W + 1)
    with pytest.raises(GasQuotaExceeded):
        store.submit_package(pkg(sid, 6, refine=301, accumulate=0), limits, 8, W + 1)
    assert store.get_service(sid).usage == Usage(3, 0, W + 1, 700)
    assert store.submit_package(pkg(sid, 7, refine=300, accumulate=0), limits, 8, W + 1)[1]
    assert store.get_service(sid).usage == Usage(4, 0, W + 1, 1_000)


def test_get_package_scope(store: Store) -> None:
    s1, s2 = new_service(store), new_service(store)
    rec, _ = store.submit_package(pkg(s1, 1), ROOMY, 10, W)
    assert store.get_package(rec.id, EVERYTHING) == rec
    assert store.get_package(rec.id, ServiceScope(frozenset({s1, s2}))) == rec
    assert store.get_package(rec.id, ServiceScope(frozenset({s2}))) is None
    assert store.get_package(rec.id, NOBODY) is None
    assert store.get_package(blake(b"missing"), EVERYTHING) is None


def test_list_packages_filters_cursor_newest_first_no_body(store: Store) -> None:
    s1, s2, s3 = new_service(store), new_service(store), new_service(store)
    order = [(s1, 1), (s2, 1), (s1, 2), (s3, 1), (s1, 3), (s2, 2)]
    recs = [store.submit_package(pkg(s, n), ROOMY, 100, W)[0] for s, n in order]
    seqs = [r.seq for r in recs]
    assert seqs == sorted(seqs) and len(set(seqs)) == 6

    def listed(scope: ServiceScope, **kw: object) -> tuple[list[tuple[int, int]], object]:
        page = store.list_packages(scope, **kw)  # type: ignore[arg-type]
        assert all(p.body == b"" for p in page.items)
        assert all(p.status == "pending" and p.size == 11 for p in page.items)
        names = [order[seqs.index(p.seq)] for p in page.items]
        return names, page.next_cursor

    everything = [(s2, 2), (s1, 3), (s3, 1), (s1, 2), (s2, 1), (s1, 1)]
    assert listed(EVERYTHING) == (everything, None)
    assert listed(NOBODY) == ([], None)
    assert listed(ServiceScope(frozenset({s1, s3}))) == (
        [(s1, 3), (s3, 1), (s1, 2), (s1, 1)], None)
    assert listed(EVERYTHING, service_id=s2) == ([(s2, 2), (s2, 1)], None)
    # A service filter never widens the scope.
    assert listed(ServiceScope(frozenset({s1})), service_id=s2) == ([], None)
    assert listed(EVERYTHING, status="pending", service_id=s3) == ([(s3, 1)], None)
    assert listed(EVERYTHING, status="applied") == ([], None)

    page1 = listed(EVERYTHING, limit=4)
    assert page1 == (everything[:4], seqs[order.index((s1, 2))])
    assert listed(EVERYTHING, limit=4, cursor=page1[1]) == (everything[4:], None)
    assert listed(EVERYTHING, limit=6) == (everything, None)
    # A scope of several services pages the same way (merged per service).
    two = ServiceScope(frozenset({s1, s2}))
    q1 = listed(two, limit=3)
    assert q1 == ([(s2, 2), (s1, 3), (s1, 2)], seqs[order.index((s1, 2))])
    q2 = listed(two, limit=3, cursor=q1[1])
    assert q2 == ([(s2, 1), (s1, 1)], None)
    assert listed(two, limit=2, cursor=seqs[order.index((s1, 3))], status="pending") == (
        [(s1, 2), (s2, 1)], seqs[order.index((s2, 1))])
    p1 = listed(EVERYTHING, service_id=s1, limit=2)
    assert p1 == ([(s1, 3), (s1, 2)], seqs[order.index((s1, 2))])
    assert listed(EVERYTHING, service_id=s1, limit=2, cursor=p1[1]) == ([(s1, 1)], None)
    # The body is still there for a direct read.
    assert store.get_package(recs[0].id, EVERYTHING).body == b"pkg-%d-1" % s1


# -- reports, receipts, state ----------------------------------------------------------------

def test_reports_and_receipts_empty(store: Store) -> None:
    sid = new_service(store)
    rec, _ = store.submit_package(pkg(sid, 1), ROOMY, 10, W)
    assert store.get_report(rec.id, EVERYTHING) is None
    assert store.list_reports(EVERYTHING) == Page([], None)
    assert store.list_reports(EVERYTHING, service_id=sid) == Page([], None)
    assert store.attestations(rec.id) == []
    assert store.list_receipts(EVERYTHING) == Page([], None)
    assert store.list_receipts(ServiceScope(frozenset({sid})), service_id=sid) == Page([], None)
    assert store.find_receipts(rec.id, EVERYTHING) == []


def test_storage_get_and_list_prefix_cursor(store: Store) -> None:
    s1, s2 = new_service(store), new_service(store)
    seed_storage(store, s1, {b"\x01": b"v0", b"\x01a": b"v1", b"\x01b": b"v2",
                             b"\x01\xff": b"v3", b"\x02": b"v4", b"\xff\xff": b"v5",
                             b"\x00\x01": b"v6"})
    seed_storage(store, s2, {b"\x01c": b"other"})
    assert store.storage_get(s1, b"\x01a") == b"v1"
    assert store.storage_get(s2, b"\x01a") is None
    assert store.storage_get(s1, b"\x01c") is None

    def keys(sid: int, **kw: object) -> tuple[list[bytes], object]:
        page = store.storage_list(sid, **kw)  # type: ignore[arg-type]
        return [k for k, _ in page.items], page.next_cursor

    assert keys(s1) == ([b"\x00\x01", b"\x01", b"\x01a", b"\x01b", b"\x01\xff", b"\x02",
                         b"\xff\xff"], None)
    assert keys(s1, prefix=b"\x01") == ([b"\x01", b"\x01a", b"\x01b", b"\x01\xff"], None)
    assert keys(s1, prefix=b"\x01", limit=2) == ([b"\x01", b"\x01a"], b"\x01a")
    assert keys(s1, prefix=b"\x01", limit=2, cursor=b"\x01a") == ([b"\x01b", b"\x01\xff"], None)
    assert keys(s1, prefix=b"\xff") == ([b"\xff\xff"], None)
    assert keys(s1, prefix=b"\x01\xff") == ([b"\x01\xff"], None)
    assert keys(s1, prefix=b"\x03") == ([], None)
    assert keys(s2, prefix=b"\x01") == ([b"\x01c"], None)
    page = store.storage_list(s1, prefix=b"\x01a")
    assert page == Page([(b"\x01a", b"v1")], None)


# -- migrations ------------------------------------------------------------------------------

def _head_revision() -> str:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    assert head is not None
    return head


def _migrate(config: Path) -> dict[str, object]:
    out = subprocess.run([sys.executable, "-m", "jamhost.cli.main", "migrate",
                          "--config", str(config)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_migrate_creates_schema_idempotently(kind: str, tmp_path: Path,
                                             request: pytest.FixtureRequest) -> None:
    if kind == "sqlite":
        db = tmp_path / "sub" / "m.db"
        keys: dict[str, object] = {"store": "sqlite", "sqlite_path": str(db)}
        url = f"sqlite:///{db}"
    else:
        dsn = request.getfixturevalue("fresh_pg")
        keys = {"store": "postgres", "pg_dsn": dsn}
        url = dsn.replace("postgresql://", "postgresql+psycopg://", 1)
    config = write_config(tmp_path / "m.toml", **keys)
    head = _head_revision()
    assert _migrate(config) == {"store": kind, "revision": head}

    engine = sa.create_engine(url)
    try:
        names = set(sa.inspect(engine).get_table_names())
        expected = {"jam_meta", "jam_counters", "jam_accounts", "jam_tokens", "jam_services",
                    "jam_service_delegates", "jam_blobs", "jam_preimages", "jam_packages",
                    "jam_reports", "jam_attestations", "jam_receipts", "jam_storage",
                    "alembic_version"}
        assert expected <= names
        # The migrated schema is exactly the one tables.py declares.
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(ctx, tables.metadata) == []
        # Indexes the listings rely on exist.
        ix = {i["name"] for i in sa.inspect(engine).get_indexes("jam_packages")}
        assert {"ix_jam_packages_service_seq", "ix_jam_packages_status_seq"} <= ix
        with engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO jam_accounts (id, name, created_at) "
                                 "VALUES ('kept', 'k', 1)"))
    finally:
        engine.dispose()

    assert _migrate(config) == {"store": kind, "revision": head}  # again: a no-op
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).all() == [
                (head,)]
            assert conn.execute(sa.text("SELECT id FROM jam_accounts")).all() == [("kept",)]
    finally:
        engine.dispose()


# -- per-account limits and fair claiming (issues 12 and 14) ---------------------------------

def test_account_share_of_the_global_cap(store: Store) -> None:
    """ceil(cap / (k + 2)) per account, k = other accounts holding packages."""
    a, b, c = new_service(store, "acct-a"), new_service(store, "acct-b"), new_service(
        store, "acct-c")
    n = iter(range(1000))
    taken = {}
    for sid in (a, b, c):
        taken[sid] = 0
        while True:
            try:
                store.submit_package(pkg(sid, next(n)), ROOMY, 10, W)
            except PendingLimit:
                break
            taken[sid] += 1
    assert taken == {a: 5, b: 4, c: 1}  # 5 = ceil(10/2), 4 = ceil(10/3), then the cap
    assert store.pending_total() == 10


def test_account_pending_limit_across_services(store: Store) -> None:
    s1, s2 = new_service(store), new_service(store)
    assert store.submit_package(pkg(s1, 1), ROOMY, 100, W, account_pending=2)[1]
    assert store.submit_package(pkg(s2, 1), ROOMY, 100, W, account_pending=2)[1]
    with pytest.raises(PendingLimit, match="account"):
        store.submit_package(pkg(s2, 2), ROOMY, 100, W, account_pending=2)
    assert store.get_package(pkg(s2, 2).id, EVERYTHING) is None
    other = new_service(store, "acct-b")
    assert store.submit_package(pkg(other, 1), ROOMY, 100, W, account_pending=2)[1]


def test_services_per_account(store: Store) -> None:
    for _ in range(2):
        store.create_service(owner="acct-s", code=None, code_hash=ZERO_HASH, balance=0,
                             min_item_gas=0, min_memo_gas=0, created_by="op",
                             storage_limit=10, max_services=2)
    with pytest.raises(Forbidden):
        store.create_service(owner="acct-s", code=None, code_hash=ZERO_HASH, balance=0,
                             min_item_gas=0, min_memo_gas=0, created_by="op",
                             storage_limit=10, max_services=2)
    assert len(store.owned_service_ids("acct-s")) == 2


def _claim_all(store: Store, **kw: object) -> list[int]:
    """Claim and finish one at a time; the service ids in claim order."""
    order = []
    while (c := store.claim_package("w", now_us(), 10**9, **kw)) is not None:  # type: ignore
        order.append(c.service_id)
        assert store.finish_package(PackageOutcome(c.id, c.service_id, "w", "failed",
                                                   failure_reason="test"))
    return order


def test_claims_alternate_between_accounts_and_services(store: Store) -> None:
    a1, a2 = new_service(store, "acct-a"), new_service(store, "acct-a")
    b = new_service(store, "acct-b")
    for i in range(4):
        store.submit_package(pkg(a1, i), ROOMY, 100, W)
    store.submit_package(pkg(a2, 0), ROOMY, 100, W)
    for i in range(2):
        store.submit_package(pkg(b, i), ROOMY, 100, W)
    order = _claim_all(store)
    # equal gas per package: the accounts alternate while both have work (on a tie of
    # virtual times the one with fewer packages queued first: B); inside A its two
    # services alternate while both have work, each in submission order
    assert order == [b, a1, b, a2, a1, a1, a1]


def test_weights_give_more_turns(store: Store) -> None:
    a, b = new_service(store, "acct-a"), new_service(store, "acct-b")
    for i in range(6):
        store.submit_package(pkg(a, i), ROOMY, 100, W)
        store.submit_package(pkg(b, i), ROOMY, 100, W)
    order = _claim_all(store, weights={"acct-a": 2})
    assert order[:6].count(a) == 4


def test_running_limit_per_account(store: Store) -> None:
    a, b = new_service(store, "acct-a"), new_service(store, "acct-b")
    for i in range(3):
        store.submit_package(pkg(a, i), ROOMY, 100, W)
    first = store.claim_package("w1", now_us(), 10**9, max_running=1)
    assert first is not None and first.service_id == a
    assert store.claim_package("w2", now_us(), 10**9, max_running=1) is None
    store.submit_package(pkg(b, 0), ROOMY, 100, W)
    other = store.claim_package("w2", now_us(), 10**9, max_running=1)
    assert other is not None and other.service_id == b
    assert store.finish_package(PackageOutcome(first.id, a, "w1", "failed", failure_reason="x"))
    again = store.claim_package("w1", now_us(), 10**9, max_running=1)
    assert again is not None and again.service_id == a


@pytest.mark.parametrize("weight", [1, 4])
def test_newcomer_is_served_next_even_after_the_busy_account_refunds(store: Store,
                                                                      weight: int) -> None:
    """B becomes busy while A's package runs: B starts where A's work in service started,
    so B's package is the next claimed, ahead of A's queued ones, even once A's running
    package has finished and given back most of its gas (and the ids would favour A)."""
    weights = {"acct-a": weight}
    a, b = new_service(store, "acct-a"), new_service(store, "acct-b")
    for i in range(3):
        store.submit_package(pkg(a, i, refine=40_000), ROOMY, 100, W, weights=weights)
    running = store.claim_package("w1", now_us(), 10**9, weights=weights)
    assert running is not None and running.service_id == a
    store.submit_package(pkg(b, 0), ROOMY, 100, W, weights=weights)
    assert store.finish_package(PackageOutcome(running.id, a, "w1", "failed",
                                               failure_reason="x", refund=30_000 // weight))
    nxt = store.claim_package("w1", now_us(), 10**9, weights=weights)
    assert nxt is not None and nxt.service_id == b


def test_a_newcomer_between_two_packages_of_a_busy_account_is_served_first(
        store: Store) -> None:
    """B becomes busy while A, busy, has nothing running (between two of its packages): B
    starts level with A's virtual time, and the tie goes to the account with fewer packages
    queued, B (the account ids would favour A)."""
    a, b = new_service(store, "acct-a"), new_service(store, "acct-b")
    for i in range(3):
        store.submit_package(pkg(a, i), ROOMY, 100, W)
    first = store.claim_package("w1", now_us(), 10**9)
    assert first is not None and first.service_id == a
    assert store.finish_package(PackageOutcome(first.id, a, "w1", "failed",
                                               failure_reason="x"))
    store.submit_package(pkg(b, 0), ROOMY, 100, W)
    assert account_vtime(store, "acct-b") == account_vtime(store, "acct-a")
    nxt = store.claim_package("w1", now_us(), 10**9)
    assert nxt is not None and nxt.service_id == b


def test_accounts_behind_a_newly_claimed_package(store: Store) -> None:
    """accounts_behind: of the given accounts, those whose virtual time is above that of
    the account with the newly claimed package before its charge, while that package is
    its only one running and it has nothing else queued (the preempting claim's rule, for
    a quiet account)."""
    a, b = new_service(store, "acct-a"), new_service(store, "acct-b")
    store.submit_package(pkg(a, 0, refine=50_000), ROOMY, 100, W)
    first_a = store.claim_package("w1", now_us(), 10**9)  # A: 0 -> 50,200
    assert first_a is not None and first_a.service_id == a
    store.submit_package(pkg(b, 0), ROOMY, 100, W)  # B starts where A's work started: 0
    first_b = store.claim_package("w2", now_us(), 10**9)  # B: 0 -> 500
    assert first_b is not None and first_b.service_id == b
    assert (account_vtime(store, "acct-a"), account_vtime(store, "acct-b")) == (50_200, 500)
    # B before its charge of 500: 0, below A's 50,200
    assert store.accounts_behind("acct-b", ["acct-a", "acct-nobody"], 500) == ["acct-a"]
    # A before a charge of 50,000: 200, below B's 500; before one of 100: 50,100, above it
    assert store.accounts_behind("acct-a", ["acct-b"], 50_000) == ["acct-b"]
    assert store.accounts_behind("acct-a", ["acct-b"], 100) == []
    assert store.accounts_behind("acct-b", [], 500) == []
    # A with a package queued is not quiet: below B's virtual time all the same, not ahead
    store.submit_package(pkg(a, 1, refine=50_000), ROOMY, 100, W)
    assert store.accounts_behind("acct-a", ["acct-b"], 50_000) == []
    store.submit_package(pkg(b, 1), ROOMY, 100, W)
    second_b = store.claim_package("w3", now_us(), 10**9)
    assert second_b is not None and second_b.service_id == b
    assert store.accounts_behind("acct-b", ["acct-a"], 500) == []  # B has two running now


def test_a_floods_next_package_is_not_ahead_of_a_quiet_tenants_running_one(
        store: Store) -> None:
    """Equal packages: B, quiet, starts where A's work in service started, so the two are
    within one charge of each other. B's package claimed beside A's running one is ahead
    of A; A's next, claimed beside B's running one once A's first finished, is below B's
    virtual time too, but A has more queued: it is not ahead of B (by virtual times alone
    each was ahead of the other, and whichever began second made the first yield)."""
    a, b = new_service(store, "acct-a"), new_service(store, "acct-b")
    for i in range(3):
        store.submit_package(pkg(a, i), ROOMY, 100, W)
    first_a = store.claim_package("w1", now_us(), 10**9)  # A: 0 -> 500
    assert first_a is not None and first_a.service_id == a
    store.submit_package(pkg(b, 0), ROOMY, 100, W)  # B starts where A's work started: 0
    first_b = store.claim_package("w2", now_us(), 10**9)  # B: 0 -> 500
    assert first_b is not None and first_b.service_id == b
    assert store.accounts_behind("acct-b", ["acct-a"], 500) == ["acct-a"]
    assert store.finish_package(PackageOutcome(first_a.id, a, "w1", "failed",
                                               failure_reason="x", refund=400))  # A: 100
    next_a = store.claim_package("w1", now_us(), 10**9)  # A: 100 -> 600
    assert next_a is not None and next_a.service_id == a
    assert (account_vtime(store, "acct-a"), account_vtime(store, "acct-b")) == (600, 500)
    assert fairness.ahead(600 - 500, 0, 500)  # by virtual times alone: ahead of B
    assert store.accounts_behind("acct-a", ["acct-b"], 500) == []  # one more queued


@pytest.mark.parametrize(("weight", "charged"), [(1, 500), (2, 250), (3, 166)])
def test_a_claim_charges_the_declared_gas_over_the_weight(store: Store, weight: int,
                                                           charged: int) -> None:
    sid = new_service(store, "acct-a")
    store.submit_package(pkg(sid, 1, refine=300, accumulate=200), ROOMY, 100, W)
    before = account_vtime(store, "acct-a")
    claimed = store.claim_package("w", now_us(), 10**9, weights={"acct-a": weight,
                                                                 "acct-z": 7})
    assert claimed is not None and claimed.service_id == sid and claimed.attempts == 1
    assert account_vtime(store, "acct-a") - before == charged


def test_a_drifted_queued_count_is_repaired_by_the_claim(store: Store) -> None:
    """An account counted as having queued work that it has not (a crash, a manual edit) is
    set right by the claim, which then serves the next account."""
    a, b = new_service(store, "acct-a"), new_service(store, "acct-b")
    store.submit_package(pkg(b, 1), ROOMY, 100, W)
    au = tables.account_usage.c
    with store.engine.begin() as conn:  # type: ignore[attr-defined]
        conn.execute(tables.account_usage.update().where(au.owner == "acct-a")
                     .values(queued=3, vtime=-1))  # first in line, with nothing queued
    claimed = store.claim_package("w", now_us(), 10**9)
    assert claimed is not None and claimed.service_id == b
    with store.engine.connect() as conn:  # type: ignore[attr-defined]
        assert conn.execute(sa.select(au.queued).where(au.owner == "acct-a")).scalar_one() == 0
    assert store.claim_package("w", now_us(), 10**9) is None
    assert a != b


def test_renew_claim_keeps_the_package(store: Store) -> None:
    sid = new_service(store)
    store.submit_package(pkg(sid, 1), ROOMY, 100, W)
    t0 = now_us()
    claimed = store.claim_package("w1", t0, 1_000)
    assert claimed is not None and claimed.started_at >= t0
    assert store.renew_claim(claimed.id, "w1", t0 + 10**9)
    assert store.renew_claim(claimed.id, "w2", t0 + 10**9) is False
    assert store.claim_package("w2", t0 + 5_000, 1_000) is None  # renewed: not expired
    # a worker that stops renewing loses it to the next claimer
    stolen = store.claim_package("w2", t0 + 2 * 10**9, 1_000)
    assert stolen is not None and stolen.id == claimed.id and stolen.attempts == 2
    assert store.renew_claim(claimed.id, "w1", t0 + 3 * 10**9) is False


def test_queue_ahead_counts_own_account_only(store: Store) -> None:
    a1, a2, b = (new_service(store, "acct-a"), new_service(store, "acct-a"),
                 new_service(store, "acct-b"))
    store.submit_package(pkg(a1, 0), ROOMY, 100, W)
    store.submit_package(pkg(b, 0), ROOMY, 100, W)
    store.submit_package(pkg(b, 1), ROOMY, 100, W)
    rec, _ = store.submit_package(pkg(a2, 0), ROOMY, 100, W)
    assert store.queue_ahead(rec) == 1
    assert store.queue_ahead(store.submit_package(pkg(b, 2), ROOMY, 100, W)[0]) == 2
    assert store.queue_states() == {"queued": 5, "running": 0, "busy_accounts": 2}


# -- exported segments (issue 16) -------------------------------------------------------------

SEG = 4104


def _apply_with_exports(store: Store, sid: int, n: int, count: int, *, expires_at: int,
                        storage_limit: int | None = None) -> tuple[PackageRecord, ExportSet]:
    store.submit_package(pkg(sid, n), ROOMY, 100, W)
    claimed = store.claim_package("w", now_us(), 10**9)
    assert claimed is not None
    pages = -(-count // 64)
    x = ExportSet(sid, claimed.id, blake(b"root-%d" % n), count, 1, expires_at,
                  tuple(bytes([i]) * SEG for i in range(count + pages)))
    done = store.finish_package(PackageOutcome(claimed.id, sid, "w", "applied", exports=x),
                                storage_limit=storage_limit)
    assert done
    return claimed, x


def test_exports_kept_by_root_and_package_hash_within_scope(store: Store) -> None:
    a, b = new_service(store, "acct-a", storage_limit=10**6), new_service(store, "acct-b")
    p, x = _apply_with_exports(store, a, 1, 2, expires_at=now_us() + 10**9)
    # two segments and one proof page, W_G each, in the exporter's storage usage
    assert store.get_service(a).usage.storage_bytes == 3 * SEG
    assert export_set_bytes(2) == 3 * SEG and export_set_bytes(64) == 65 * SEG
    assert export_set_bytes(65) == 67 * SEG
    mine = ServiceScope(ids=frozenset({a}))
    by_root = store.find_export_set(mine, now_us(), segments_root=x.segments_root)
    by_hash = store.find_export_set(mine, now_us(), package_hash=p.id)
    expected = (a, p.id, x.segments_root, 2, 1, x.expires_at)
    for found in (by_root, by_hash):
        assert found is not None
        assert (found.service_id, found.package_hash, found.segments_root, found.count,
                found.created_at, found.expires_at) == expected
        assert found.segments == ()
    assert store.read_segments(a, p.id, [1, 2, 7]) == {1: b"\x01" * SEG, 2: b"\x02" * SEG}
    # another tenant's scope, or a made-up root, finds nothing
    theirs = ServiceScope(ids=frozenset({b}))
    assert store.find_export_set(theirs, now_us(), segments_root=x.segments_root) is None
    assert store.find_export_set(theirs, now_us(), package_hash=p.id) is None
    assert store.find_export_set(mine, now_us(), segments_root=blake(b"made up")) is None
    # past its expiry it is not found, even before the sweep
    assert store.find_export_set(mine, x.expires_at, segments_root=x.segments_root) is None


def test_expired_exports_are_removed_and_their_bytes_freed(store: Store) -> None:
    a = new_service(store, "acct-a", storage_limit=10**6)
    t0 = now_us()
    _p1, early = _apply_with_exports(store, a, 1, 1, expires_at=t0 + 1_000)
    p2, late = _apply_with_exports(store, a, 2, 3, expires_at=t0 + 2_000)
    assert store.get_service(a).usage.storage_bytes == (2 + 4) * SEG
    assert store.reconcile_usage() == 0  # the counters include the kept segments
    assert store.expire_segments(t0 + 999) == 0
    assert store.expire_segments(t0 + 1_000) == 1
    assert store.get_service(a).usage.storage_bytes == 4 * SEG
    assert store.expire_segments(t0 + 1_500) == 0  # nothing twice
    assert store.read_segments(a, p2.id, [0]) == {0: b"\x00" * SEG}
    assert store.expire_segments(t0 + 5_000) == 1
    assert store.get_service(a).usage.storage_bytes == 0
    assert store.read_segments(a, p2.id, [0]) == {}
    assert store.reconcile_usage() == 0
    assert early.count == 1 and late.count == 3


def test_eject_removes_the_ejected_services_kept_segments(store: Store) -> None:
    """A service removed by `eject` (engine/lifecycle.py, applied by the store) takes its
    kept segments and export sets with it; another account's service named in the same
    `ejected` list is not removed and keeps its own."""
    parent = new_service(store, "acct-a", storage_limit=10**6)
    child = new_service(store, "acct-a", storage_limit=10**6)
    theirs = new_service(store, "acct-b", storage_limit=10**6)
    at = now_us()
    pc, xc = _apply_with_exports(store, child, 1, 2, expires_at=at + 10**9)
    pt, xt = _apply_with_exports(store, theirs, 2, 3, expires_at=at + 10**9)
    store.submit_package(pkg(parent, 3), ROOMY, 100, W)
    claimed = store.claim_package("w", now_us(), 10**9)
    assert claimed is not None and claimed.service_id == parent
    changes = StateChanges(ejected=[child, theirs])
    assert store.finish_package(PackageOutcome(
        claimed.id, parent, "w", "applied", changes=changes,
        expected_seq=store.get_service(parent).receipt_seq), storage_limit=10**6)
    assert store.get_service(child) is None
    for query in ({"package_hash": pc.id}, {"segments_root": xc.segments_root}):
        assert store.find_export_set(EVERYTHING, now_us(), **query) is None
    assert store.read_segments(child, pc.id, [0, 1, 2]) == {}
    # the other account's service stays, with its segments
    assert store.get_service(theirs) is not None
    assert store.get_service(theirs).usage.storage_bytes == 4 * SEG
    assert store.read_segments(theirs, pt.id, [0, 2]) == {0: b"\x00" * SEG, 2: b"\x02" * SEG}
    found = store.find_export_set(EVERYTHING, now_us(), segments_root=xt.segments_root)
    assert found is not None and found.service_id == theirs
    # only the remaining export set is left for the retention sweep
    assert store.expire_segments(at + 10**9) == 1
    assert store.reconcile_usage() == 0


def test_exports_over_the_storage_quota_leave_nothing(store: Store) -> None:
    a = new_service(store, "acct-a", storage_limit=10**6)
    store.submit_package(pkg(a, 1), ROOMY, 100, W)
    claimed = store.claim_package("w", now_us(), 10**9)
    x = ExportSet(a, claimed.id, blake(b"r"), 2, 1, now_us() + 10**9, (b"\0" * SEG,) * 3)
    with pytest.raises(SegmentQuotaExceeded):
        store.finish_package(PackageOutcome(claimed.id, a, "w", "applied", exports=x),
                             storage_limit=3 * SEG - 1)
    svc = store.get_service(a)
    assert svc.usage.storage_bytes == 0 and svc.receipt_seq == 0
    assert store.find_export_set(EVERYTHING, now_us(), package_hash=claimed.id) is None
    assert store.get_package(claimed.id, EVERYTHING).status == "refining"
    assert store.finish_package(PackageOutcome(claimed.id, a, "w", "applied", exports=x),
                                storage_limit=3 * SEG)
    assert store.get_service(a).usage.storage_bytes == 3 * SEG


def test_service_preimage_window_reads_the_length_and_a_window(store: Store) -> None:
    """historical_lookup's store read: (|v|, v[at .. at + n]) clamped to v, the service's own
    preimages only (GP 0.7.2 §B.6: ω7 = |v|, the octets v[f .. f + min(l, |v| - f)])."""
    sid, other = new_service(store), new_service(store)
    blob = bytes(range(256)) * 4096  # 1 MiB
    store.put_preimage(blake(blob), blob, "x/y", sid, 2 << 20)
    window = store.service_preimage_window
    assert window(sid, blake(blob), 0, 10) == (1 << 20, bytes(range(10)))
    assert window(sid, blake(blob), 1000, 5) == (1 << 20, bytes([232, 233, 234, 235, 236]))
    assert window(sid, blake(blob), (1 << 20) - 3, 100) == (1 << 20, bytes([253, 254, 255]))
    assert window(sid, blake(blob), 1 << 20, 100) == (1 << 20, b"")
    assert window(sid, blake(blob), 2**64 - 1, 2**64 - 1) == (1 << 20, b"")
    assert window(sid, blake(blob), 0, 2**64 - 1) == (1 << 20, blob)
    assert window(sid, blake(blob), 7, 0) == (1 << 20, b"")
    assert window(other, blake(blob), 0, 10) is None  # another service's preimage
    assert window(sid, blake(b"missing"), 0, 10) is None
    empty = b""
    store.put_preimage(blake(empty), empty, "x/y", sid, 2 << 20)
    assert window(sid, blake(empty), 0, 10) == (0, b"")


# -- the finish's one UPDATE of the service row (statements.service_write) --------------------

def test_an_applied_finish_sets_the_service_columns_counters_and_units(store: Store) -> None:
    """An applied package's finish writes the service row once: the columns its accumulate
    set, the state counters, the chain's head, the pending count released and the units
    charged after the run, into the hour given (added in the same hour, replacing another
    hour's count)."""
    sid = new_service(store, balance=100)
    before = store.get_service(sid)
    store.submit_package(pkg(sid, 1, refine=300, accumulate=200), ROOMY, 100, W)
    assert store.get_service(sid).usage.gas_used_in(W) == 500
    claimed = store.claim_package("w", now_us(), 10**9)
    assert claimed is not None
    code_hash, yield_hash = blake(b"new code"), blake(b"yield")
    changes = StateChanges(storage={b"key": b"value"}, balance=7, code_hash=code_hash,
                           yield_hash=yield_hash, min_item_gas=11, min_memo_gas=21)
    assert store.finish_package(PackageOutcome(
        claimed.id, sid, "w", "applied", changes=changes, expected_seq=before.receipt_seq,
        after_units=40, units_window=W), storage_limit=10_000)
    after = store.get_service(sid)
    assert (after.balance, after.code_hash, after.last_yield) == (7, code_hash, yield_hash)
    assert (after.min_item_gas, after.min_memo_gas) == (11, 21)
    assert (after.state_items, after.usage.pending_packages) == (1, 0)
    assert after.state_octets > 0 and after.usage.storage_bytes > 0
    assert after.receipt_seq == before.receipt_seq + 1 and after.root != before.root
    assert (after.usage.gas_window, after.usage.gas_used) == (W, 540)
    # the next hour: the units replace the count of an hour gone
    store.submit_package(pkg(sid, 2), ROOMY, 100, W)
    claimed = store.claim_package("w", now_us(), 10**9)
    assert claimed is not None
    assert store.finish_package(PackageOutcome(
        claimed.id, sid, "w", "applied", changes=StateChanges(storage={b"key": None}),
        expected_seq=after.receipt_seq, after_units=9, units_window=W + 1))
    last = store.get_service(sid)
    assert (last.usage.gas_window, last.usage.gas_used) == (W + 1, 9)
    assert (last.state_items, last.state_octets, last.usage.storage_bytes) == (0, 0, 0)
    assert (last.balance, last.code_hash) == (7, code_hash)  # untouched columns stay
    assert store.reconcile_usage() == 0
