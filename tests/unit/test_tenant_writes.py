"""The write side of the tenant view (tenancy/writes.py), in milliseconds over the fake
(tests/unit/fake_tenant_data.py): a use case writes only through a handle its view gives for
a service it authorized, the handle writes that one service only, and only what the
authorization allows."""

from __future__ import annotations

import pytest
from tests.unit.fake_tenant_data import FakeTenantData, service

from jamhost.domain.model import (
    Account,
    PackageRecord,
    QuotaLimits,
    QuotaOverride,
    TokenRecord,
)
from jamhost.domain.refusals import BadRequest, Forbidden, NotFound
from jamhost.tenancy.authz import Policy
from jamhost.tenancy.principal import ADMIN, Principal
from jamhost.tenancy.view import view_for

A1, B1, MISSING = 65536, 65537, 70000
ALICE = Principal(kind="account", token_hash=b"\x0a" * 32, account_id="alice", accessor="a")
SUBMITTER = Principal(kind="delegate", token_hash=b"\x01" * 32, delegations={A1: "submitter"})
OPERATOR = Principal(kind="operator", token_hash=b"\x0f" * 32)
LIMITS = QuotaLimits(10, 10, 10)


def data() -> FakeTenantData:
    return FakeTenantData(service(A1, "alice"), service(B1, "bob"))


def package(service_id: int) -> PackageRecord:
    return PackageRecord(b"\x07" * 32, service_id, "pending", b"", 0, 0, 0, 0, 0)


def test_a_handle_writes_its_own_service_only() -> None:
    fake = data()
    view = view_for(Policy(), ALICE, fake)
    writes = view.submitter(A1)
    writes.put_preimage(b"h" * 32, b"blob", "x", 100)
    writes.submit_package(package(A1), LIMITS, 10, 0)
    with pytest.raises(Forbidden):  # a record naming bob's service is refused, not written
        writes.submit_package(package(B1), LIMITS, 10, 0)
    assert fake.writes == [("put_preimage", A1), ("submit_package", A1)]


def test_no_handle_for_another_tenants_or_a_missing_service() -> None:
    fake = data()
    view = view_for(Policy(), ALICE, fake)
    for sid in (B1, MISSING):
        for get in (view.submitter, lambda s: view.manager(s, "upgrade code"), view.operated):
            with pytest.raises(Forbidden):
                get(sid)
    with pytest.raises(Forbidden):  # a service this view never authorized for `submit`
        view.writes(B1)
    view.service(A1, "read")
    with pytest.raises(Forbidden):  # nor does a `read` authorization give a handle
        view.writes(A1)
    assert fake.writes == []


def test_a_handle_does_only_what_its_authorization_allows() -> None:
    fake = data()
    submitter = view_for(Policy(), SUBMITTER, fake).submitter(A1)
    for write in (lambda: submitter.set_code(b"c", b"h" * 32, 10),
                  lambda: submitter.add_delegate(b"t" * 32, "reader"),
                  lambda: submitter.remove_delegate(1),
                  lambda: submitter.credit(5),
                  lambda: submitter.set_quota(QuotaOverride())):
        with pytest.raises(Forbidden):
            write()
    with pytest.raises(Forbidden):  # a delegate administers nothing
        view_for(Policy(), SUBMITTER, fake).manager(A1, "upgrade code")
    owner = view_for(Policy(), ALICE, fake).manager(A1, "upgrade code")
    owner.set_code(b"c", b"h" * 32, 10)
    owner.add_delegate(b"t" * 32, "reader")
    for write in (lambda: owner.credit(5), lambda: owner.set_quota(QuotaOverride())):
        with pytest.raises(Forbidden):  # money and quotas are the operator's
            write()
    assert fake.writes == [("set_code", A1), ("add_delegate", A1)]


def test_a_delegate_token_is_looked_up_for_an_administered_service_only() -> None:
    """Delegating by accessor reads the token store-wide (carol's token, for alice's
    service), but only once the view authorized administering that service, and it answers
    the token's hash alone."""
    fake = data()
    carol = TokenRecord("c0ffee00c0ffee00", "carol", b"\x0c" * 32, "t", ("read",), 0)
    fake.tokens.append(carol)
    alice = view_for(Policy(), ALICE, fake)
    with pytest.raises(Forbidden):  # not yet authorized: no lookup at all
        alice.delegate_token(A1, carol.accessor)
    alice.submitter(A1)
    with pytest.raises(Forbidden):  # a `submit` authorization administers nothing
        alice.delegate_token(A1, carol.accessor)
    assert fake.reads["token_by_accessor"] == 0
    alice.manager(A1, "manage delegates")
    assert alice.delegate_token(A1, carol.accessor) == carol.token_hash
    assert alice.delegate_token(A1, "ffffffffffffffff") is None
    assert alice.delegate_token(A1, "not-an-accessor") is None  # answered with no read
    assert fake.reads["token_by_accessor"] == 2
    with pytest.raises(Forbidden):  # bob's service was never administered by this view
        alice.delegate_token(B1, carol.accessor)
    submitter = view_for(Policy(), SUBMITTER, fake)
    submitter.submitter(A1)
    with pytest.raises(Forbidden):
        submitter.delegate_token(A1, carol.accessor)


def test_manager_and_operator_handles_submit_nothing() -> None:
    """A handle grants what its own decision checked: a token scoped to `manage` (or an
    operator's `operated` handle) gets no submit or upload through it."""
    fake = data()
    manage_only = Principal(kind="account", token_hash=b"\x0b" * 32, account_id="alice",
                            accessor="a", scopes=frozenset({"manage"}))
    view = view_for(Policy(), manage_only, fake)
    with pytest.raises(Forbidden):
        view.submitter(A1)  # the token's scopes refuse the submit decision
    for handle in (view.manager(A1, "upgrade code"),
                   view_for(Policy(), OPERATOR, fake).operated(A1)):
        with pytest.raises(Forbidden):
            handle.submit_package(package(A1), LIMITS, 10, 0)
        with pytest.raises(Forbidden):
            handle.put_preimage(b"h" * 32, b"blob", "x", 100)
    assert fake.writes == []


def test_operators_and_the_admin_cli_operate_any_existing_service() -> None:
    fake = data()
    for who in (OPERATOR, ADMIN):
        writes = view_for(Policy(), who, fake).operated(B1)
        writes.credit(5)
        writes.set_quota(QuotaOverride(pending_packages=1))
        assert writes.add_delegate(b"t" * 32, "reader").created_by == who.label
        with pytest.raises(NotFound):
            view_for(Policy(), who, fake).operated(MISSING)
    assert fake.writes == [("credit", B1), ("set_quota", B1), ("add_delegate", B1)] * 2
    with pytest.raises(Forbidden):
        view_for(Policy(), ALICE, fake).operated(A1)  # an owner is no operator


def test_new_services_and_unscoped_preimages_ask_the_policy() -> None:
    fake = data()
    for account_id in ("alice", "bob"):  # with owner_is_account an owner is an account
        fake.accounts[account_id] = Account(account_id, account_id, 0)
    alice = view_for(Policy(), ALICE, fake)
    args = dict(code=None, code_hash=bytes(32), balance=0, min_item_gas=0, min_memo_gas=0,
                storage_limit=10, max_services=None)
    creation = alice.service_creation(None)  # a tenant's new service is its own
    assert creation.owner == "alice" and creation.sets_balance is False
    assert creation.create(balance_given=False, **args).owner == "alice"
    with pytest.raises(Forbidden):  # another owner
        alice.service_creation("bob")
    with pytest.raises(Forbidden):  # a tenant naming its balance would mint money
        alice.service_creation("alice").create(balance_given=True, **args)
    with pytest.raises(Forbidden):
        alice.service_creation("alice").require_balance_setter()
    admin = view_for(Policy(), ADMIN, fake).service_creation("bob")
    assert admin.sets_balance is True
    assert admin.create(balance_given=True, **args).owner == "bob"
    # an operator naming no owner, or one that is no account, creates nothing: the 400 the
    # API answers, decided with the owner (authz.Policy.service_owner)
    for owner in (None, " ", "x" * 201, "carol"):
        with pytest.raises(BadRequest):
            view_for(Policy(), OPERATOR, fake).service_creation(owner)
    assert view_for(Policy(owner_is_account=False), OPERATOR, fake).service_creation(
        "team-x").owner == "team-x"  # a free label where owners are no accounts
    with pytest.raises(BadRequest):
        alice.unscoped_uploads()
    view_for(Policy(), OPERATOR, fake).unscoped_uploads().put_preimage(
        b"h" * 32, b"blob", "x")
    assert fake.writes == [("create_service", None), ("create_service", None),
                           ("put_preimage", None)]
