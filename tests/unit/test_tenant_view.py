"""The tenant view's scoping, in milliseconds, over a fake of the port it reads
(tests/unit/fake_tenant_data.py): a view answers another tenant's object exactly as a missing
one, and for a service outside its scope it does not even read the store."""

from __future__ import annotations

import pytest
from tests.unit.fake_tenant_data import FakeTenantData, service

from jamhost.domain.model import PackageRecord
from jamhost.domain.refusals import Forbidden
from jamhost.domain.scopes import ServiceScope
from jamhost.tenancy.authz import Policy
from jamhost.tenancy.charging import Charging
from jamhost.tenancy.principal import ADMIN, Principal
from jamhost.tenancy.view import account_view, service_view, view_for

A1, A2, B1, SHARED, MISSING = 65536, 65537, 65538, 65539, 70000
ALICE = Principal(kind="account", token_hash=b"\x0a" * 32, account_id="alice", accessor="a")
ALICE_SUBMIT = Principal(kind="account", token_hash=b"\x0b" * 32, account_id="alice",
                         accessor="s", scopes=frozenset({"submit"}))
READER = Principal(kind="delegate", token_hash=b"\x01" * 32, delegations={A2: "reader"})
OPERATOR = Principal(kind="operator", token_hash=b"\x0f" * 32)
oid = FakeTenantData.object_id


def data() -> FakeTenantData:
    return FakeTenantData(service(A1, "alice"), service(A2, "alice"), service(B1, "bob"),
                          service(SHARED, "operator"))


def test_the_scope_of_each_principal() -> None:
    policy = Policy()
    assert view_for(policy, ALICE, data()).scope == ServiceScope(frozenset({A1, A2}))
    assert view_for(policy, READER, data()).scope == ServiceScope(frozenset({A2}))
    assert view_for(policy, ALICE_SUBMIT, data()).scope == ServiceScope()  # no `read`
    assert view_for(policy, OPERATOR, data()).scope.everything
    assert view_for(policy, ADMIN, data()).scope.everything
    assert view_for(Policy(authz_enabled=False), ALICE, data()).scope.everything
    assert view_for(Policy(owner_is_account=False), ALICE, data()).scope == ServiceScope()


def test_another_tenants_objects_answer_as_missing_ones() -> None:
    fake = data()
    view = view_for(Policy(), ALICE, fake)
    for sid in (B1, MISSING):
        assert view.get_service(sid) is None
        assert view.storage_get(sid, b"key") is None
        assert view.storage_list(sid).items == []
        assert view.list_accumulations(sid).items == []
        assert view.pending_transfers(sid) == []
        assert view.queued_inputs(sid) == (0, 0)
        assert view.lookup_request(sid, b"h", 1) is None
        assert view.service_preimage(sid, b"h") is None
        assert view.service_preimage_window(sid, b"h", 0, 2) is None
        assert view.read_segments(sid, oid(sid), [0]) == {}
        assert view.get_package(oid(sid)) is None
        assert view.get_report(oid(sid)) is None
        assert view.get_accumulation(oid(sid)) is None
        assert view.find_receipts(oid(sid)) == []
        assert view.find_preimage(oid(sid)) is None
        assert view.read_preimage(oid(sid)) is None
        assert view.find_export_set(0, package_hash=oid(sid)) is None
    # decided in memory: the store was never asked about bob's service by id
    per_id = ("get_service", "storage_get", "storage_list",
              "list_accumulations", "pending_transfers", "queued_inputs", "lookup_request",
              "service_preimage", "service_preimage_window", "read_segments")
    assert {name: fake.reads[name] for name in per_id} == dict.fromkeys(per_id, 0)
    assert fake.reads["read_blob"] == fake.reads["attestations"] == 0
    # and the listings hold only alice's services' objects
    assert [s.service_id for s in view.list_services().items] == [A1, A2]
    assert {p.service_id for p in view.list_packages().items} == {A1, A2}
    assert {r.service_id for r in view.list_reports().items} == {A1, A2}
    assert {r.service_id for r in view.list_receipts().items} == {A1, A2}
    assert view.queue_ahead(PackageRecord(oid(B1), B1, "pending", b"", 0, 0, 0, 0, 0)) is None


def test_own_objects_are_answered() -> None:
    view = view_for(Policy(), ALICE, data())
    assert view.get_service(A2).owner == "alice"
    assert view.storage_get(A1, b"key") == b"value"
    assert view.storage_list(A1).items == [(b"key", b"value")]
    assert view.get_package(oid(A1)).service_id == A1
    report, attestations, receipt = view.get_report(oid(A2))
    assert (report.service_id, len(attestations), receipt.service_id) == (A2, 1, A2)
    assert view.read_preimage(oid(A1))[1] == b"abc"
    assert view.find_export_set(0, segments_root=oid(A2)).service_id == A2


def test_a_delegate_sees_its_one_service() -> None:
    view = view_for(Policy(), READER, data())
    assert view.get_service(A2) is not None
    assert view.get_service(A1) is None
    assert view.storage_get(A1, b"key") is None
    assert view.get_package(oid(A1)) is None and view.get_package(oid(A2)) is not None


def test_a_read_authorization_spares_the_scope_query() -> None:
    fake = data()
    view = view_for(Policy(), ALICE, fake)
    view.service(A1, "read")
    assert view.storage_get(A1, b"key") == b"value"
    assert fake.reads["owned_service_ids"] == 0  # the authorization was enough
    view.service(A2, "submit")  # a submit authorization says nothing about reading
    assert view.storage_get(A2, b"key") == b"value"
    assert fake.reads["owned_service_ids"] == 1


def test_a_token_without_read_reads_nothing_even_of_its_own() -> None:
    view = view_for(Policy(), ALICE_SUBMIT, data())
    assert view.service(A1, "submit").service_id == A1
    assert view.storage_get(A1, b"key") is None
    assert view.get_package(oid(A1)) is None


def test_the_account_view_reaches_its_own_account_only() -> None:
    fake = data()
    view = account_view(Policy(), fake.services[A1], fake)
    assert view.sees(A1) and view.sees(A2) and not view.sees(B1)
    assert view.get_service(B1) is None and view.get_service(A2) is not None
    assert view.storage_get(B1, b"key") is None and view.storage_get(A2, b"key") == b"value"
    assert view.queued_inputs(B1) == (0, 0) and view.queued_inputs(A2) == (1, 10)
    assert view.find_export_set(0, package_hash=oid(B1)) is None
    assert view.find_export_set(0, package_hash=oid(A2)).service_id == A2
    assert view.id_taken(B1) and not view.id_taken(MISSING)  # allocation only
    assert view.owned_count() == 2
    # its own service needs no scope query
    fresh = data()
    assert account_view(Policy(), fresh.services[A1], fresh).service_preimage(A1, b"h")
    assert fresh.reads["owned_service_ids"] == 0

    open_fake = data()
    assert account_view(Policy(authz_enabled=False), open_fake.services[A1],
                        open_fake).get_service(B1) is not None


def test_authorizer_code_per_policy() -> None:
    policy = Policy(shared_authorizers=frozenset({SHARED}))
    fake = data()
    a1 = fake.services[A1]
    worker = account_view(policy, a1, fake)
    assert worker.authorizer_code(a1, A2, b"h") == b"code"  # same owner
    assert worker.authorizer_code(a1, SHARED, b"h") == b"code"  # runtime-wide
    assert worker.authorizer_code(a1, B1, b"h") is None  # another tenant's
    assert worker.authorizer_code(a1, MISSING, b"h") is None
    # at submission the submitter must also be allowed to submit to the authorizer's service
    assert view_for(policy, ALICE, fake).authorizer_code(a1, A2, b"h") == b"code"
    delegate = Principal(kind="delegate", token_hash=b"\x03" * 32, delegations={A1: "submitter"})
    assert view_for(policy, delegate, fake).authorizer_code(a1, A2, b"h") is None
    assert view_for(policy, delegate, fake).authorizer_code(a1, SHARED, b"h") == b"code"
    # tariff sizes: own account and the runtime-wide authorizers, nobody else's
    fake.find_preimage = lambda h, scope: type("M", (), {"size": 9, "service_id": next(
        iter(scope.ids))})()
    assert worker.code_size(A2, b"h") == 9 and worker.code_size(SHARED, b"h") == 9
    assert worker.code_size(B1, b"h") is None


def test_service_view_is_the_workers_way_in() -> None:
    fake = data()
    found = service_view(Policy(), B1, fake)
    assert found is not None
    svc, view = found
    assert svc.owner == "bob" and view.sees(B1) and not view.sees(A1)
    assert service_view(Policy(), MISSING, fake) is None


class Limiter:
    def __init__(self) -> None:
        self.services: list[int] = []

    def hit_service(self, service_id: int) -> None:
        self.services.append(service_id)


def test_a_service_budget_is_charged_once_per_request_once_authorized() -> None:
    limiter = Limiter()
    charging = Charging(limiter)  # type: ignore[arg-type]
    who = Principal(kind="account", token_hash=b"\x0a" * 32, account_id="alice", accessor="a")
    view = view_for(Policy(), who, data(), charging=charging)
    view.service(A1, "read")
    view.service(A1, "submit")
    view_for(Policy(), who, data(), charging=charging).service(A1, "read")  # same request
    for sid in (B1, MISSING):  # refused: nobody spends another tenant's budget
        with pytest.raises(Forbidden):
            view.service(sid, "read")
    assert limiter.services == [A1]
    op_view = view_for(Policy(), OPERATOR, data(), charging=charging)
    op_view.service(B1, "read")
    assert limiter.services == [A1]  # operators pay nothing


def test_delegates_are_listed_for_administrators_only() -> None:
    manage_only = Principal(kind="account", token_hash=b"\x0c" * 32, account_id="alice",
                            accessor="m", scopes=frozenset({"manage"}))
    assert [d.service_id for d in view_for(Policy(), manage_only, data()).delegates(A1)] == [A1]
    assert view_for(Policy(), OPERATOR, data()).delegates(B1)[0].service_id == B1
    for who, sid in ((ALICE, B1), (ALICE, MISSING), (READER, A2)):
        fake = data()
        with pytest.raises(Forbidden):
            view_for(Policy(), who, fake).delegates(sid)
        assert fake.reads["list_delegates"] == 0
