"""The layers' import rules (docs/architecture.md), read from the source with `ast`.

Data flows one way: api/cli -> app -> (tenancy, engine, store) -> domain, pvm. Every import is
counted, at module level or inside a function, `from . import` forms resolved against the
module's package, and `importlib.import_module("...")` with a literal name too, so a lazy
import cannot hide a wrong-way edge. Nothing is imported: the check has no side effects.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = SRC / "jamhost"

#: (layer the importing module is in, layers it must not import, why)
RULES: tuple[tuple[str, tuple[str, ...], str], ...] = (
    *((low, ("store", "app", "api", "cli"), "the pure layers know no store, use case or I/O")
      for low in ("domain", "tenancy", "engine", "pvm")),
    ("app", ("api", "cli"), "use cases do not know their entry points"),
    ("api.routes", ("store",), "route handlers reach the store only through use cases"),
)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_names(tree: ast.AST, module: str, is_package: bool) -> Iterator[tuple[int, str]]:
    """(line, absolute module name) of every import in `tree`, wherever it stands."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                prefix = ".".join(base)
                target = f"{prefix}.{node.module}" if node.module else prefix
            else:
                target = node.module or ""
            yield node.lineno, target
            for alias in node.names:  # `from jamhost import store` names a module too
                yield node.lineno, f"{target}.{alias.name}"
        elif (isinstance(node, ast.Call) and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
              and _is_dynamic_import(node.func)):
            yield node.lineno, node.args[0].value


def _is_dynamic_import(func: ast.expr) -> bool:
    if isinstance(func, ast.Attribute):
        return func.attr == "import_module"
    return isinstance(func, ast.Name) and func.id in ("import_module", "__import__")


def _in_layer(module: str, layer: str) -> bool:
    full = f"jamhost.{layer}"
    return module == full or module.startswith(full + ".")


def violations(module: str, source: str, is_package: bool = False) -> list[str]:
    """The wrong-way imports of one module's source."""
    tree = ast.parse(source)
    found: dict[tuple[int, str], str] = {}  # one finding per statement and layer
    for layer, forbidden, why in RULES:
        if not _in_layer(module, layer):
            continue
        for line, target in imported_names(tree, module, is_package):
            for bad in forbidden:
                if _in_layer(target, bad) and (line, bad) not in found:
                    found[(line, bad)] = f"{module}:{line} imports {target} ({why})"
    return sorted(found.values())


def test_no_module_imports_against_the_flow() -> None:
    found: list[str] = []
    modules = sorted(PACKAGE.rglob("*.py"))
    assert len(modules) > 100  # the walk found the package
    for path in modules:
        found += violations(module_name(path), path.read_text(), path.name == "__init__.py")
    assert found == []


@pytest.mark.parametrize(("module", "source"), [
    ("jamhost.engine.x", "def f():\n    from jamhost.store.sql import adapter\n"),
    ("jamhost.tenancy.x", "from jamhost.app.runtime import Runtime\n"),
    ("jamhost.domain.types.x", "from ...store import ports\n"),
    ("jamhost.pvm.x", "import jamhost.cli.main\n"),
    ("jamhost.app.x", "import importlib\nv = importlib.import_module('jamhost.api.views')\n"),
    ("jamhost.app.x", "from jamhost import api\n"),
    ("jamhost.api.routes.x", "from jamhost.store.ports import Store\n"),
])
def test_the_check_sees_each_kind_of_wrong_way_import(module: str, source: str) -> None:
    assert len(violations(module, source)) == 1


@pytest.mark.parametrize(("module", "source"), [
    ("jamhost.engine.x", "from jamhost.domain.types import WorkReport\n"),
    ("jamhost.app.x", "from jamhost.store.ports import Store\n"),
    ("jamhost.api.deps", "from jamhost.store.ports import Store\n"),  # not a route handler
    ("jamhost.cli.x", "from jamhost.api.times import parse_time_us\n"),
    ("jamhost.domain.types.x", "from ..codec import Decoder\n"),
])
def test_the_check_lets_imports_along_the_flow_pass(module: str, source: str) -> None:
    assert violations(module, source) == []


#: Libraries that do I/O (storage, network, the web framework): the pure layers import none.
IO_LIBRARIES = ("redis", "limits", "sqlalchemy", "alembic", "psycopg", "sqlite3", "httpx",
                "fastapi", "starlette", "uvicorn", "anyio", "socket")
PURE_LAYERS = ("domain", "tenancy", "engine", "pvm")
#: HTTP header names: rendered by the API from the facts a refusal carries (api/errors.py).
HEADER_NAMES = ("retry-after", "ratelimit", "www-authenticate")
#: The limiter's methods (app/rate_limiter.py): only the charging rules call them.
LIMITER_CALLS = frozenset({"hit_caller", "check_caller", "spend_caller", "hit_account",
                           "hit_service"})
CHARGING = "jamhost.tenancy.charging"


def io_findings(module: str, source: str) -> list[str]:
    """I/O libraries imported, and header names spelled, by a module of a pure layer; the
    limiter's methods called by any module but the charging rules."""
    tree = ast.parse(source)
    found = []
    if any(_in_layer(module, layer) for layer in PURE_LAYERS):
        for line, target in imported_names(tree, module, False):
            top = target.split(".", 1)[0]
            if top in IO_LIBRARIES:
                found.append(f"{module}:{line} imports {top} (the pure layers do no I/O)")
        for node in ast.walk(tree):
            if (isinstance(node, ast.Constant) and isinstance(node.value, str)
                    and any(name in node.value.lower() for name in HEADER_NAMES)
                    and not _is_docstring(tree, node)):
                found.append(f"{module}:{node.lineno} spells an HTTP header (api/errors.py "
                             "renders them)")
    if module != CHARGING:
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in LIMITER_CALLS:
                found.append(f"{module}:{node.lineno} reaches the limiter's {node.attr} (rate "
                             "charging goes through tenancy/charging.py)")
    return sorted(set(found))


def _is_docstring(tree: ast.AST, node: ast.Constant) -> bool:
    for owner in ast.walk(tree):
        body = getattr(owner, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                and body[0].value is node:
            return True
        if isinstance(body, list):  # attribute docstrings: a string standing alone
            if any(isinstance(stmt, ast.Expr) and stmt.value is node for stmt in body):
                return True
    return False


def test_the_pure_layers_do_no_io_and_only_the_charging_rules_reach_the_limiter() -> None:
    found: list[str] = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = module_name(path)
        if module == "jamhost.app.rate_limiter":  # the limiter itself
            continue
        found += io_findings(module, path.read_text())
    assert found == []


@pytest.mark.parametrize(("module", "source"), [
    ("jamhost.tenancy.x", "from limits.storage import storage_from_string\n"),
    ("jamhost.tenancy.x", "def f():\n    import redis.asyncio\n"),
    ("jamhost.domain.x", "H = {'Retry-After': '1'}\n"),
    ("jamhost.tenancy.x", "h = f'\"{p}\";q=1'\nname = 'RateLimit-Policy'\n"),
    ("jamhost.api.rate_gate", "async def f(rt):\n    rt.limiter.hit_caller('k')\n"),
    ("jamhost.api.deps", "f = limiter.check_caller\n"),
])
def test_the_io_check_sees_each_kind_of_finding(module: str, source: str) -> None:
    assert len(io_findings(module, source)) == 1


@pytest.mark.parametrize(("module", "source"), [
    ("jamhost.tenancy.charging", "def f(limiter):\n    limiter.hit_service(1)\n"),
    ("jamhost.tenancy.x", '"""Rendered as Retry-After by the API."""\n'),
    ("jamhost.app.x", "from limits.storage import storage_from_string\n"),
    ("jamhost.api.errors", "H = {'Retry-After': '1'}\n"),
])
def test_the_io_check_lets_the_right_homes_pass(module: str, source: str) -> None:
    assert io_findings(module, source) == []
