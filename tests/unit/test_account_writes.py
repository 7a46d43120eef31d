"""Account and token writes through the tenant view (tenancy/writes.py `AccountWrites`), in
milliseconds over the fake (tests/unit/fake_tenant_data.py): a use case writes tokens only
through a handle its view gives for an account the policy let the principal act on, the
handle writes that one account only, and new accounts are the operators'."""

from __future__ import annotations

import pytest
from tests.unit.fake_tenant_data import FakeTenantData

from jamhost.domain.model import Account, TokenRecord
from jamhost.domain.refusals import Forbidden, NotFound
from jamhost.tenancy.authz import Policy
from jamhost.tenancy.principal import ADMIN, Principal
from jamhost.tenancy.view import view_for

ALICE_ID, BOB_ID, MISSING = "acc_" + "a" * 16, "acc_" + "b" * 16, "acc_" + "c" * 16
ALICE = Principal(kind="account", token_hash=b"\x0a" * 32, account_id=ALICE_ID,
                  accessor="a", scopes=frozenset({"read", "submit", "manage"}))
ALICE_READER = Principal(kind="account", token_hash=b"\x0b" * 32, account_id=ALICE_ID,
                         accessor="b", scopes=frozenset({"read"}))
DELEGATE = Principal(kind="delegate", token_hash=b"\x01" * 32, delegations={65536: "admin"})
OPERATOR = Principal(kind="operator", token_hash=b"\x0f" * 32)


def data() -> FakeTenantData:
    fake = FakeTenantData()
    for account_id in (ALICE_ID, BOB_ID):
        fake.accounts[account_id] = Account(account_id, account_id[-1], 0)
    return fake


def token(account_id: str, accessor: str = "0" * 16) -> TokenRecord:
    return TokenRecord(accessor, account_id, b"\x02" * 32, "t", ("read",), 0)


def test_a_handle_writes_its_own_account_only() -> None:
    fake = data()
    writes = view_for(Policy(), ALICE, fake).account_manager(ALICE_ID)
    writes.add_token(token(ALICE_ID))
    with pytest.raises(Forbidden):  # a token record naming bob's account is refused
        writes.add_token(token(BOB_ID))
    assert writes.revoke_token("0" * 16, 1)
    assert fake.account_writes == [("add_token", ALICE_ID), ("revoke_token", ALICE_ID)]


def test_no_handle_for_another_account_nor_without_manage() -> None:
    fake = data()
    for who in (ALICE, DELEGATE):
        for account_id in (BOB_ID, MISSING, "not-an-id"):
            with pytest.raises(Forbidden):  # 403 whether or not it exists: ids not probed
                view_for(Policy(), who, fake).account_manager(account_id)
    with pytest.raises(Forbidden):  # its own account, but a `read`-only token
        view_for(Policy(), ALICE_READER, fake).account_manager(ALICE_ID)
    with pytest.raises(Forbidden):
        view_for(Policy(), ALICE_READER, fake).tokens(ALICE_ID)
    assert fake.account_writes == []
    assert fake.reads["get_account"] == 0  # refused in memory, before any read


def test_operators_and_the_admin_cli_manage_any_existing_account() -> None:
    fake = data()
    for who in (OPERATOR, ADMIN):
        view = view_for(Policy(), who, fake)
        view.account_manager(BOB_ID).add_token(token(BOB_ID))
        assert [t.account_id for t in view.tokens(BOB_ID)] == [BOB_ID] * len(fake.tokens)
        for account_id in (MISSING, "not-an-id"):
            with pytest.raises(NotFound):
                view.account_manager(account_id)
    assert fake.account_writes == [("add_token", BOB_ID)] * 2


def test_new_accounts_and_the_account_list_are_the_operators() -> None:
    fake = data()
    new = Account("acc_" + "d" * 16, "d", 0)
    for who in (ALICE, DELEGATE):
        view = view_for(Policy(), who, fake)
        with pytest.raises(Forbidden):
            view.create_account(new)
        with pytest.raises(Forbidden):
            view.list_accounts()
    assert fake.account_writes == []
    assert view_for(Policy(), ADMIN, fake).create_account(new) == new
    assert len(view_for(Policy(), OPERATOR, fake).list_accounts()) == 3
    assert view_for(Policy(), ALICE, fake).own_account() == fake.accounts[ALICE_ID]
    assert view_for(Policy(), OPERATOR, fake).own_account() is None
    assert fake.account_writes == [("create_account", new.id)]
