"""Every authorization decision, in milliseconds: each principal kind x each action x its
own / another tenant's / a missing service, through the tenant view over a fake of the port
it reads (tests/unit/fake_tenant_data.py). The same rules over HTTP, a real server and real
stores: tests/integration/test_authz_matrix.py.

The expected answers are written out by hand below, one line per principal: for each of
the services A1 (alice's), B1 (bob's) and a missing id, the outcome of read, submit,
manage and administer (code upgrade, delegates): `+` allowed, `3` 403, `4` 404.
"""

from __future__ import annotations

import pytest
from tests.unit.fake_tenant_data import FakeTenantData, service

from jamhost.domain.model import Account
from jamhost.domain.refusals import BadRequest, Forbidden, NotFound, Refusal
from jamhost.tenancy.authz import Policy
from jamhost.tenancy.principal import ADMIN, Principal
from jamhost.tenancy.view import view_for

A1, A2, B1, MISSING = 65536, 65537, 65538, 70000
ACTIONS = ("read", "submit", "manage", "administer")

PRINCIPALS = {
    "operator": Principal(kind="operator", token_hash=b"\x0f" * 32),
    "admin": ADMIN,
    "alice": Principal(kind="account", token_hash=b"\x0a" * 32, account_id="alice",
                       accessor="a1"),
    "alice_read": Principal(kind="account", token_hash=b"\x0b" * 32, account_id="alice",
                            accessor="a2", scopes=frozenset({"read"})),
    "alice_submit": Principal(kind="account", token_hash=b"\x0c" * 32, account_id="alice",
                              accessor="a3", scopes=frozenset({"submit"})),
    "bob": Principal(kind="account", token_hash=b"\x0d" * 32, account_id="bob",
                     accessor="b1"),
    "reader": Principal(kind="delegate", token_hash=b"\x01" * 32, delegations={A1: "reader"}),
    "submitter": Principal(kind="delegate", token_hash=b"\x02" * 32,
                           delegations={A1: "submitter"}),
    # bob's token that alice made a reader of A1
    "bob_reader": Principal(kind="account", token_hash=b"\x0e" * 32, account_id="bob",
                            accessor="b2", delegations={A1: "reader"}),
}

#: authz enabled, owner_is_account (the defaults): A1, B1, missing
DEFAULT = {
    "operator":     ("++++", "++++", "4444"),
    "admin":        ("++++", "++++", "4444"),
    "alice":        ("++++", "3333", "3333"),
    "alice_read":   ("+333", "3333", "3333"),
    "alice_submit": ("3+33", "3333", "3333"),
    "bob":          ("3333", "++++", "3333"),
    "reader":       ("+333", "3333", "3333"),
    "submitter":    ("++33", "3333", "3333"),
    "bob_reader":   ("+333", "++++", "3333"),
}

#: authz disabled: every valid token acts on every service, scopes still apply
OPEN = {
    "operator":     ("++++", "++++", "4444"),
    "admin":        ("++++", "++++", "4444"),
    "alice":        ("++++", "++++", "4444"),
    "alice_read":   ("+333", "+333", "4333"),
    "alice_submit": ("3+33", "3+33", "3433"),
    "bob":          ("++++", "++++", "4444"),
    "reader":       ("++++", "++++", "4444"),
    "submitter":    ("++++", "++++", "4444"),
    "bob_reader":   ("++++", "++++", "4444"),
}

#: owner_is_account disabled: owners are labels; tenants act through delegations only
LABELS = {
    "operator":     ("++++", "++++", "4444"),
    "admin":        ("++++", "++++", "4444"),
    "alice":        ("3333", "3333", "3333"),
    "alice_read":   ("3333", "3333", "3333"),
    "alice_submit": ("3333", "3333", "3333"),
    "bob":          ("3333", "3333", "3333"),
    "reader":       ("+333", "3333", "3333"),
    "submitter":    ("++33", "3333", "3333"),
    "bob_reader":   ("+333", "3333", "3333"),
}

POLICIES = {"default": (Policy(), DEFAULT),
            "authz_disabled": (Policy(authz_enabled=False), OPEN),
            "owner_is_label": (Policy(owner_is_account=False), LABELS)}


def data() -> FakeTenantData:
    return FakeTenantData(service(A1, "alice"), service(A2, "alice"), service(B1, "bob"))


def outcome(policy: Policy, who: Principal, service_id: int, action: str) -> str:
    view = view_for(policy, who, data())
    try:
        if action == "administer":
            svc = view.administered(service_id, "upgrade code")
        else:
            svc = view.service(service_id, action)
    except Forbidden:
        return "3"
    except NotFound:
        return "4"
    assert svc.service_id == service_id
    return "+"


CASES = [(policy_name, name, target, action)
         for policy_name in POLICIES for name in PRINCIPALS
         for target in ("A1", "B1", "missing") for action in ACTIONS]


@pytest.mark.parametrize(("policy_name", "name", "target", "action"), CASES)
def test_each_principal_action_and_service(policy_name: str, name: str, target: str,
                                           action: str) -> None:
    policy, table = POLICIES[policy_name]
    column = ("A1", "B1", "missing").index(target)
    expected = table[name][column][ACTIONS.index(action)]
    service_id = {"A1": A1, "B1": B1, "missing": MISSING}[target]
    assert outcome(policy, PRINCIPALS[name], service_id, action) == expected


def test_the_refusals_say_why_without_telling_whether_the_service_exists() -> None:
    policy = Policy()

    def message(who: Principal, service_id: int, action: str) -> str:
        with pytest.raises(Refusal) as info:
            view_for(policy, who, data()).service(service_id, action)
        return f"{info.value.code} {info.value.message}"

    alice, bob = PRINCIPALS["alice"], PRINCIPALS["bob"]
    assert message(alice, B1, "read") == "jam_authz not authorized for this service"
    assert message(alice, MISSING, "read") == "jam_authz not authorized for this service"
    assert message(PRINCIPALS["alice_read"], A1, "submit") == \
        "jam_authz the token lacks the 'submit' scope"
    assert message(PRINCIPALS["operator"], MISSING, "read") == "jam_not_found no such service"
    with pytest.raises(Forbidden, match="not authorized for this service"):  # a delegate
        view_for(policy, PRINCIPALS["submitter"], data()).administered(A1, "manage delegates")
    with pytest.raises(Forbidden, match="not authorized"):
        view_for(policy, bob, data()).administered(A1, "upgrade code")


#: operator-only actions (accounts, credit, quotas, the audit log, process)
@pytest.mark.parametrize(("name", "allowed"), [
    ("operator", True), ("admin", True), ("alice", False), ("alice_read", False),
    ("bob", False), ("reader", False), ("submitter", False)])
def test_operator_only_actions(name: str, allowed: bool) -> None:
    for policy, _table in POLICIES.values():
        view = view_for(policy, PRINCIPALS[name], data())
        if allowed:
            view.require_operator()
            assert view.existing_service(B1).owner == "bob"
            with pytest.raises(NotFound):
                view.existing_service(MISSING)
        else:
            with pytest.raises(Forbidden, match="operators only"):
                view.require_operator()
            with pytest.raises(Forbidden):  # whether or not the service exists
                view.existing_service(B1)
            with pytest.raises(Forbidden):
                view.existing_service(MISSING)


#: acting on an account and its tokens: operators, or that account's own `manage` token
@pytest.mark.parametrize(("name", "account", "allowed"), [
    ("operator", "alice", True), ("admin", "bob", True), ("alice", "alice", True),
    ("alice", "bob", False), ("alice", "nobody", False), ("alice_read", "alice", False),
    ("alice_submit", "alice", False), ("bob", "alice", False), ("reader", "alice", False)])
def test_account_actions(name: str, account: str, allowed: bool) -> None:
    view = view_for(Policy(), PRINCIPALS[name], data())
    if allowed:
        view.require_account(account)
    else:
        with pytest.raises(Forbidden):
            view.require_account(account)


@pytest.mark.parametrize(("policy", "name", "owner", "answer"), [
    (Policy(), "operator", "carol", "carol"),
    (Policy(), "admin", "carol", "carol"),
    (Policy(), "alice", None, "alice"),
    (Policy(), "alice", "alice", "alice"),
    (Policy(), "alice", "bob", "403"),
    (Policy(), "alice_read", None, "403"),
    (Policy(), "reader", None, "403"),  # a delegate has no account to own it
    (Policy(owner_is_account=False), "alice", None, "403"),
    (Policy(owner_is_account=False), "operator", "team-x", "team-x"),
    (Policy(), "operator", None, "400"),  # an operator names the owner
    (Policy(), "operator", "", "400"),
    (Policy(), "admin", "x" * 201, "400"),
    (Policy(), "operator", "team-x", "400"),  # with owner_is_account: an existing account
    (Policy(owner_is_account=False), "operator", None, "400"),
])
def test_who_owns_a_new_service(policy: Policy, name: str, owner: str | None,
                                answer: str) -> None:
    who = PRINCIPALS[name]
    accounts = {"alice", "bob", "carol"}.__contains__
    if answer in ("400", "403"):
        with pytest.raises(BadRequest if answer == "400" else Forbidden):
            policy.service_owner(who, owner, is_account=accounts)
    else:
        assert policy.service_owner(who, owner, is_account=accounts) == answer


def test_only_operators_set_a_balance_or_grant_any_scope() -> None:
    policy = Policy()
    assert [name for name, who in PRINCIPALS.items() if policy.may_set_balance(who)] == \
        ["operator", "admin"]
    assert [name for name, who in PRINCIPALS.items() if policy.sees_every_service(who)] == \
        ["operator", "admin"]
    # the one refusal of a balance: the new service's handle (writes.ServiceCreation)
    fake = data()
    fake.accounts["alice"] = Account("alice", "alice", 0)
    view_for(policy, PRINCIPALS["operator"], fake).service_creation(
        "alice").require_balance_setter()
    view_for(policy, ADMIN, fake).service_creation("alice").require_balance_setter()
    with pytest.raises(Forbidden):
        view_for(policy, PRINCIPALS["alice"], fake).service_creation(
            None).require_balance_setter()
    policy.require_grantable(PRINCIPALS["alice"], frozenset({"read", "manage"}))
    policy.require_grantable(ADMIN, frozenset({"read", "submit", "manage"}))
    with pytest.raises(Forbidden):
        policy.require_grantable(PRINCIPALS["alice_read"], frozenset({"read", "submit"}))


@pytest.mark.parametrize(("policy", "name", "answer"), [
    (Policy(), "operator", "ok"), (Policy(), "admin", "ok"),
    (Policy(), "alice", "400"), (Policy(), "reader", "400"),
    (Policy(authz_enabled=False), "alice", "ok"),
    (Policy(authz_enabled=False), "alice_read", "403"),
])
def test_a_preimage_without_a_service(policy: Policy, name: str, answer: str) -> None:
    who = PRINCIPALS[name]
    if answer == "ok":
        policy.require_unscoped_upload(who)
    elif answer == "400":
        with pytest.raises(BadRequest, match="service_id is required"):
            policy.require_unscoped_upload(who)
    else:
        with pytest.raises(Forbidden):
            policy.require_unscoped_upload(who)
