"""The barrier, read from the source with `ast` (like tests/unit/test_layers.py): tenant data
is reached only through the tenant view (tenancy/view.py), authorization is decided only by
the policy, and route handlers call use cases only.

- `app`, `api` and `cli` never name a `ServiceScope` (nor `jamhost.domain.scopes`): a
  scope is decided by `tenancy.authz` and carried by a view, so no use case can pick
  "every service" or forget a filter;
- nothing there calls a tenant-data read of the store port (`store.get_service(...)`,
  `store.storage_get(...)`, ...): those reads go through a view;
- nothing there calls a tenant-data write of the store port (`store.submit_package(...)`,
  `store.set_code(...)`, `store.add_token(...)`, ...) nor builds a `ServiceWrites` or an
  `AccountWrites` handle: a use case writes through the handle its view hands out once it
  authorized the service or the account (tenancy/writes.py); account and token reads
  (`store.get_account(...)`, `store.list_tokens(...)`) go through the view as well;
- route handlers (`api/routes`) touch neither the store, nor the policy, nor the limiter;
- the admin CLI (`cli/`) reaches the runtime's store only to log its kind (no call, alias or
  hand-over of `rt.store`):
  like the route handlers, it calls use cases, as the principal `ADMIN`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from jamhost.tenancy.view import TenantData
from jamhost.tenancy.writes import TenantWrites

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "jamhost"

#: Every read of the store port a view makes, taken from the port the view declares.
TENANT_READS = frozenset(name for name in vars(TenantData)
                         if not name.startswith("_") and callable(getattr(TenantData, name)))
#: Every tenant write of the store port, taken from the port the write handle declares.
TENANT_WRITES = frozenset(name for name in vars(TenantWrites)
                          if not name.startswith("_") and callable(getattr(TenantWrites, name)))
#: The write handles only the view builds (tenancy/writes.py).
WRITE_HANDLES = ("ServiceWrites", "AccountWrites", "ServiceCreation", "UnscopedUploads")
#: What the CLI may read of the runtime's store: facts about it, no data. (`jam.store`, the
#: `[runtime.jam]` section's `store` key, is a setting, not the store.)
CLI_STORE_FACTS = frozenset({"kind"})


def findings(source: str, *, route: bool, cli: bool = False) -> list[str]:
    found = []
    tree = ast.parse(source)
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    for node in ast.walk(tree):
        if cli and isinstance(node, ast.Attribute) and node.attr == "store":
            # The CLI may name the runtime's store only to log its kind: any other use (a
            # call of its methods, an alias, an argument) goes past the use cases.
            parent = parents.get(node)
            config_key = isinstance(node.value, ast.Name) and node.value.id == "jam"
            if not config_key and not (isinstance(parent, ast.Attribute)
                                       and parent.attr in CLI_STORE_FACTS):
                found.append(f"{node.lineno}: the CLI reaches .store past the use cases")
        if isinstance(node, ast.Name) and node.id == "ServiceScope":
            found.append(f"{node.lineno}: names ServiceScope")
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name | ast.Attribute)
              and (node.func.id if isinstance(node.func, ast.Name)
                   else node.func.attr) in WRITE_HANDLES):
            found.append(f"{node.lineno}: builds a write handle past the view")
        elif isinstance(node, ast.ImportFrom) and node.module == "jamhost.domain.scopes":
            found.append(f"{node.lineno}: imports jamhost.domain.scopes")
        elif isinstance(node, ast.Attribute):
            owner = node.value
            owner_name = (owner.attr if isinstance(owner, ast.Attribute)
                          else owner.id if isinstance(owner, ast.Name) else None)
            if owner_name in ("store", "_store") and node.attr in TENANT_READS:
                found.append(f"{node.lineno}: reads store.{node.attr} past the view")
            if owner_name in ("store", "_store") and node.attr in TENANT_WRITES:
                found.append(f"{node.lineno}: writes store.{node.attr} past the view")
            if route and node.attr in ("store", "policy", "limiter"):
                found.append(f"{node.lineno}: a route handler touches .{node.attr}")
    return found


def test_tenant_data_is_reached_through_the_view_only() -> None:
    assert {"get_service", "storage_get", "find_preimage", "read_blob", "attestations",
            "list_delegates", "get_package"} <= TENANT_READS
    assert {"create_service", "set_code", "credit", "set_quota", "add_delegate",
            "remove_delegate", "put_preimage", "submit_package"} <= TENANT_WRITES
    assert {"get_account", "list_accounts", "list_tokens", "token_by_accessor"} <= TENANT_READS
    assert {"create_account", "add_token", "revoke_token"} <= TENANT_WRITES
    found: list[str] = []
    checked = 0
    for layer in ("app", "api", "cli"):
        for path in sorted((PACKAGE / layer).rglob("*.py")):
            rel = path.relative_to(PACKAGE).as_posix()
            route = rel.startswith("api/routes/")
            found += [f"{rel}:{f}" for f in findings(path.read_text(), route=route,
                                                     cli=layer == "cli")]
            checked += 1
    assert checked > 40  # the walk found the modules
    assert found == []


def test_the_cli_check_sees_a_store_call() -> None:
    assert len(findings("rt.store.reconcile_usage()\n", route=False, cli=True)) == 1
    assert len(findings("rt.store.list_audit(action=None)\n", route=False, cli=True)) == 1
    assert findings("rt.store.reconcile_usage()\n", route=False) == []  # a use case may
    assert findings("log.info('x', store=rt.store.kind)\n", route=False, cli=True) == []
    assert findings("system.reconcile_usage(rt, ADMIN)\n", route=False, cli=True) == []
    # an alias, an argument or a getattr-free hand-over of the store is seen as well
    assert len(findings("s = rt.store\ns.list_audit(action=None)\n", route=False,
                        cli=True)) == 1
    assert len(findings("run(rt.store)\n", route=False, cli=True)) == 1
    assert len(findings("f = rt.store.list_audit\n", route=False, cli=True)) == 1
    assert findings("if jam.store == 'memory': pass\n", route=False, cli=True) == []


@pytest.mark.parametrize(("source", "route"), [
    ("from jamhost.domain.scopes import ServiceScope\n", False),
    ("x = ServiceScope(everything=True)\n", False),
    ("rt.store.get_service(1)\n", False),
    ("self._store.storage_get(1, b'')\n", False),
    ("store.read_blob(h)\n", False),
    ("rt.policy.require_operator(who)\n", True),
    ("rt.store.ping()\n", True),
    ("rt.store.submit_package(rec, limits, 1, 2)\n", False),
    ("self.store.set_code(7, code, h, 10)\n", False),
    ("ServiceWrites(svc, rt.store, OPERATE, 'x')\n", False),
    ("writes.ServiceWrites(svc, rt.store, SUBMIT, 'x')\n", False),
    ("rt.store.add_token(record)\n", False),
    ("rt.store.revoke_token(account.id, accessor, now_us())\n", False),
    ("rt.store.create_account(Account('acc_1', 'n', 0))\n", False),
    ("rt.store.get_account(owner)\n", False),
    ("rt.store.list_tokens(account_id)\n", False),
    ("rt.store.token_by_accessor(accessor)\n", False),
    ("AccountWrites(account, rt.store)\n", False),
    ("ServiceCreation('alice', True, rt.store, 'x').create(**args)\n", False),
    ("writes.UnscopedUploads(rt.store).put_preimage(h, b'', 'x')\n", False),
])
def test_the_check_sees_each_kind_of_bypass(source: str, route: bool) -> None:
    assert len(findings(source, route=route)) == 1


@pytest.mark.parametrize(("source", "route"), [
    ("rt.view(who).get_service(1)\n", False),
    ("rt.view(who).submitter(7).submit_package(rec, limits, 1, 2)\n", False),
    ("rt.view(who).account_manager(aid).add_token(record)\n", False),
    ("rt.store.apply_accumulation(7, changes, 1, None, rec, h)\n", False),  # the worker's
    ("rt.policy.require_operator(who)\n", False),  # a use case may ask the policy
    ("packages.get_package(rt, who, pid)\n", True),
])
def test_the_check_lets_the_view_and_use_cases_pass(source: str, route: bool) -> None:
    assert findings(source, route=route) == []
