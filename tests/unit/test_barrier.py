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
  like the route handlers, it calls use cases, as the principal `ADMIN`;
- an alias of the store (`s = rt.store`, a parameter typed `Store`) is the store: its
  tenant reads and writes are found as well, and so is `getattr(rt.store, "...")`;
- authorization is asked of the view: nothing in app, api or cli touches `.policy` except
  the runtime building a view (`Runtime.view`, `.account_view`, `.service_view`), and no
  route handler calls `require_operator` (its use case decides, through the view);
- the principals are made in one place each: `ADMIN` is named in app only where the
  machine acts for the operator (`seed_delegates`, `jamhost demo`) and never in api;
  request principals are built by `app/auth.py` only, a service's own code's by the view
  only (`service_code`);
- the scope of every service is built by `tenancy.authz` alone: `ServiceScope` takes no
  `everything` argument, and nothing else in the package sets that field.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from jamhost.domain.scopes import ServiceScope
from jamhost.tenancy.authz import Policy
from jamhost.tenancy.principal import ADMIN
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


#: Where the runtime reads its policy: building a principal's view (app/runtime.py).
POLICY_READERS = {"app/runtime.py": frozenset({"view", "account_view", "service_view"})}
#: Where app acts as the admin principal for the operator: the config's delegates seeded at
#: start, and `jamhost demo` setting up its own tenant on a fresh store.
ADMIN_USERS = {"app/runtime.py": frozenset({"seed_delegates"}),
               "app/demo.py": frozenset({"run_demo"})}
#: Where request principals are built: authentication (app/auth.py).
PRINCIPAL_BUILDERS = frozenset({"app/auth.py"})
#: Store types: a name annotated with one of these is the store.
STORE_TYPES = frozenset({"Store", "TenantStore", "TenantData", "TenantWrites"})
TENANT_NAMES = TENANT_READS | TENANT_WRITES


def _store_expr(node: ast.AST, aliases: set[str]) -> bool:
    """`x.store`, `x._store`, `store`, `_store`, or a name bound to one of them."""
    if isinstance(node, ast.Attribute):
        return node.attr in ("store", "_store")
    return isinstance(node, ast.Name) and (node.id in ("store", "_store") or node.id in aliases)


def _annotation_names(node: ast.AST | None) -> set[str]:
    if node is None:
        return set()
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        try:
            node = ast.parse(node.value, mode="eval")
        except SyntaxError:
            return set()
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)} | {
        n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)}


def store_aliases(tree: ast.AST) -> set[str]:
    """The names that hold the store: bound to one (`s = rt.store`, `s = store`, a tuple
    unpacking, a walrus) or annotated with a store type (a parameter `db: Store`)."""
    aliases: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.arg) and _annotation_names(node.annotation) & STORE_TYPES:
            aliases.add(node.arg)
        elif (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
              and _annotation_names(node.annotation) & STORE_TYPES):
            aliases.add(node.target.id)
    while True:  # names bound to an alias are aliases too, to a fixed point
        before = len(aliases)
        for node in ast.walk(tree):
            pairs: list[tuple[ast.AST, ast.AST]] = []
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    if (isinstance(target, ast.Tuple | ast.List)
                            and isinstance(node.value, ast.Tuple | ast.List)):
                        pairs += zip(target.elts, node.value.elts, strict=False)
                    else:
                        pairs.append((target, node.value))
            elif isinstance(node, ast.AnnAssign | ast.NamedExpr) and node.value is not None:
                pairs.append((node.target, node.value))
            for target, value in pairs:
                if isinstance(target, ast.Name) and _store_expr(value, aliases):
                    aliases.add(target.id)
        if len(aliases) == before:
            return aliases


def _functions(tree: ast.AST) -> dict[ast.AST, str]:
    """Each node inside a function, mapped to its outermost function's name."""
    inside: dict[ast.AST, str] = {}
    for top in ast.walk(tree):
        if isinstance(top, ast.FunctionDef | ast.AsyncFunctionDef) and top not in inside:
            for node in ast.walk(top):
                inside.setdefault(node, top.name)
    return inside


def findings(source: str, *, route: bool, cli: bool = False, app: bool = False,
             rel: str = "") -> list[str]:
    found = []
    tree = ast.parse(source)
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    aliases = store_aliases(tree)
    inside = _functions(tree)
    policy_ok = POLICY_READERS.get(rel, frozenset())
    admin_ok = ADMIN_USERS.get(rel, frozenset()) if app else frozenset()
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
            if _store_expr(node.value, aliases) and node.attr in TENANT_READS:
                found.append(f"{node.lineno}: reads store.{node.attr} past the view")
            if _store_expr(node.value, aliases) and node.attr in TENANT_WRITES:
                found.append(f"{node.lineno}: writes store.{node.attr} past the view")
            if route and node.attr in ("store", "policy", "limiter"):
                found.append(f"{node.lineno}: a route handler touches .{node.attr}")
            elif node.attr == "policy" and inside.get(node) not in policy_ok:
                found.append(f"{node.lineno}: asks .policy past the view")
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id == "getattr" and node.args
                and _store_expr(node.args[0], aliases)):
            found.append(f"{node.lineno}: reaches the store through getattr")
        if route and (isinstance(node, ast.Attribute) and node.attr == "require_operator"
                      or isinstance(node, ast.Name) and node.id == "require_operator"):
            found.append(f"{node.lineno}: a route handler decides require_operator itself")
        if app or route or rel.startswith("api/"):
            found += _principal_findings(node, inside, admin_ok, rel)
    return found


def _principal_findings(node: ast.AST, inside: dict[ast.AST, str], admin_ok: frozenset[str],
                        rel: str) -> list[str]:
    """`ADMIN` outside the operator's own entry points; a principal built past auth.py."""
    if isinstance(node, ast.ImportFrom):
        if any(alias.name == "ADMIN" for alias in node.names) and not admin_ok:
            return [f"{node.lineno}: imports ADMIN"]
    elif isinstance(node, ast.Name | ast.Attribute):
        name = node.id if isinstance(node, ast.Name) else node.attr
        if name == "ADMIN" and inside.get(node) not in admin_ok:
            return [f"{node.lineno}: acts as ADMIN"]
        if name == "service_code":
            return [f"{node.lineno}: builds a service's own principal past the view"]
    elif (isinstance(node, ast.Call) and rel not in PRINCIPAL_BUILDERS
          and isinstance(node.func, ast.Name | ast.Attribute)
          and (node.func.id if isinstance(node.func, ast.Name)
               else node.func.attr) == "Principal"):
        return [f"{node.lineno}: builds a principal past authentication"]
    return []


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
                                                     cli=layer == "cli", app=layer == "app",
                                                     rel=rel)]
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
    ("rt.policy.may(who, svc, 'read')\n", True),
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
    # aliases of the store are the store
    ("s = rt.store\ns.get_service(1)\n", False),
    ("store = rt.store\nstore.get_service(1)\n", False),
    ("a, s = 1, rt.store\ns.set_code(1, c, h, 1)\n", False),
    ("s = rt.store\nt = s\nt.list_tokens(a)\n", False),
    ("s: Store = rt.store\ns.credit(1, 5)\n", False),
    ("def f(db: Store) -> None:\n    db.get_service(1)\n", False),
    ("def f(db: 'TenantStore') -> None:\n    db.read_blob(h)\n", False),
    ("if (s := rt.store):\n    s.get_package(p, x)\n", False),
    ("getattr(rt.store, 'get_service')(1)\n", False),
    # authorization is the view's: no policy in a use case, no operator check in a route
    ("rt.policy.require_operator(who)\n", False),
    ("if rt.policy.owner_is_account: pass\n", False),
    ("auth.require_operator(rt, who)\n", True),
    ("require_operator(rt, who)\n", True),
])
def test_the_check_sees_each_kind_of_bypass(source: str, route: bool) -> None:
    assert len(findings(source, route=route)) == 1


@pytest.mark.parametrize(("source", "route"), [
    ("rt.view(who).get_service(1)\n", False),
    ("rt.view(who).submitter(7).submit_package(rec, limits, 1, 2)\n", False),
    ("rt.view(who).account_manager(aid).add_token(record)\n", False),
    ("rt.store.apply_accumulation(7, changes, 1, None, rec, h)\n", False),  # the worker's
    ("rt.view(who).require_operator()\n", False),  # a use case asks the view
    ("accounts.authorize_create_account(rt, who)\n", True),  # a route, its use case
    ("packages.get_package(rt, who, pid)\n", True),
    ("s = rt.hasher\ns.hash(token)\n", False),  # an alias of something else
])
def test_the_check_lets_the_view_and_use_cases_pass(source: str, route: bool) -> None:
    assert findings(source, route=route) == []


@pytest.mark.parametrize(("source", "rel"), [
    ("from jamhost.tenancy.principal import ADMIN\n", "app/packages.py"),
    ("def f(rt):\n    return rt.view(ADMIN)\n", "app/packages.py"),
    ("from jamhost.tenancy import principal\nv = rt.view(principal.ADMIN)\n",
     "app/system.py"),
    ("def other(rt):\n    return rt.view(ADMIN)\n", "app/runtime.py"),  # not seeding
    ("v = rt.view(ADMIN)\n", "app/demo.py"),  # outside `run_demo`
    ("v = rt.view(ADMIN)\n", "api/routes/services.py"),
    ("v = rt.view(ADMIN)\n", "api/deps.py"),
    ("Principal(kind='admin', token_hash=b'')\n", "app/services.py"),
    ("principal.Principal(kind='operator', token_hash=h)\n", "api/deps.py"),
    ("v = rt.view(service_code('alice'))\n", "app/pipeline.py"),
])
def test_the_check_sees_a_principal_made_past_its_place(source: str, rel: str) -> None:
    route = rel.startswith("api/routes/")
    assert len(findings(source, route=route, app=rel.startswith("app/"), rel=rel)) == 1


@pytest.mark.parametrize(("source", "rel"), [
    ("from jamhost.tenancy.principal import ADMIN\n"
     "def seed_delegates(rt):\n    return rt.view(ADMIN)\n", "app/runtime.py"),
    ("from jamhost.tenancy.principal import ADMIN\n"
     "def run_demo(d):\n    accounts.create_account(rt, ADMIN, 'demo-tenant')\n",
     "app/demo.py"),
    ("def view(self, who):\n    return view_for(self.policy, who, self.store)\n",
     "app/runtime.py"),
    ("def authenticate(rt, token):\n    return Principal(kind='operator', token_hash=h)\n",
     "app/auth.py"),
])
def test_the_check_lets_the_principals_own_places_pass(source: str, rel: str) -> None:
    assert findings(source, route=False, app=True, rel=rel) == []


def test_the_scope_of_every_service_is_built_by_the_policy_only() -> None:
    """`ServiceScope` takes no `everything` argument, and nothing in the package but
    `tenancy.authz` sets that field."""
    with pytest.raises(TypeError):
        ServiceScope(everything=True)  # type: ignore[call-arg]
    assert not ServiceScope(frozenset({1})).everything
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and any(k.arg == "everything" for k in node.keywords):
                found.append(f"{rel}:{node.lineno}: passes everything=")
            if (isinstance(node, ast.Constant) and node.value == "everything"
                    and rel != "tenancy/authz.py"):
                found.append(f"{rel}:{node.lineno}: names the field 'everything'")
    assert found == []
    assert Policy().scope(ADMIN, set()).everything  # the policy's, for the admin CLI
