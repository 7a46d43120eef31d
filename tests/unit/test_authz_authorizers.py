"""Policy.may_authorize_with and Policy.import_scope: which authorizer code a package may
name, and whose exports its imports may read (tenancy/authz.py)."""

from __future__ import annotations

from tests.store_scopes import EVERYTHING

from jamhost.domain.model import ServiceRecord
from jamhost.domain.scopes import ServiceScope
from jamhost.tenancy.authz import Policy
from jamhost.tenancy.principal import Principal, service_code


def svc(service_id: int, owner: str) -> ServiceRecord:
    return ServiceRecord(service_id, owner, bytes(32), 0, 0, 0, 0, "t")


ALICE, ALICE2, BOB, OPERATOR_SVC = (svc(65536, "alice"), svc(65537, "alice"),
                                    svc(65538, "bob"), svc(65539, "operator"))
alice = Principal("account", b"a", account_id="alice")


def test_own_services_only_unless_listed_by_the_operator() -> None:
    policy = Policy()
    assert policy.may_authorize_with(alice, ALICE, ALICE)
    assert policy.may_authorize_with(alice, ALICE, ALICE2)  # same owner
    assert not policy.may_authorize_with(alice, ALICE, BOB)
    # the worker's check, as the package service's own code: it submits nothing (its
    # principal has no `submit` scope), so the owner rule alone decides
    worker = service_code(ALICE.owner)
    assert "submit" not in worker.scopes
    assert policy.may_authorize_with(worker, ALICE, ALICE2)
    assert not policy.may_authorize_with(worker, ALICE, BOB)
    assert not policy.may_authorize_with(alice, ALICE, OPERATOR_SVC)
    assert not policy.may_authorize_with(alice, ALICE, None)
    shared = Policy(shared_authorizers=frozenset({OPERATOR_SVC.service_id}))
    assert shared.may_authorize_with(alice, ALICE, OPERATOR_SVC)
    assert shared.may_authorize_with(service_code(BOB.owner), BOB, OPERATOR_SVC)
    assert not shared.may_authorize_with(alice, ALICE, BOB)  # only the listed one opens
    # listing it opens nothing else of the operator's service
    assert not shared.may(alice, OPERATOR_SVC, "read")
    assert not shared.may(alice, OPERATOR_SVC, "submit")


def test_a_delegate_may_not_name_a_service_it_cannot_submit_to() -> None:
    reader = Principal("delegate", b"d", delegations={ALICE.service_id: "submitter",
                                                      ALICE2.service_id: "reader"})
    assert Policy().may_authorize_with(reader, ALICE, ALICE)
    assert not Policy().may_authorize_with(reader, ALICE, ALICE2)


def test_imports_read_the_owners_services_only() -> None:
    assert Policy().import_scope({1, 2}) == ServiceScope(ids=frozenset({1, 2}))
    assert Policy(authz_enabled=False).import_scope({1}) == EVERYTHING
