"""Rules with one home, read from the source with `ast` (issue 13: each rule computed once,
outside the adapters). A second copy of one of these formulas fails here:

- the footprint's constants (34 octets per storage entry, 81 per request, GP 0.7.2 eq.
  deposits) live in domain/footprint.py; engine, tenancy, store and app use its helpers;
- the storage quota verdict is tenancy/storage_quota.py `fits`: no ordering comparison of
  `storage_used` in the store;
- the preempting claim's rule is tenancy/fairness.py `ahead`: no comparison of virtual
  times in the claim adapter;
- one service's accumulate gas is engine/accumulate.py `accumulate_gas`: no other sum of
  operands' `gas_limit`;
- which receipts are appended is domain/receipts.py (`package_entries`, `inputs_entries`,
  carried by PackageOutcome.receipt_entries): no receipt entry is built in the store.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "jamhost"
FOOTPRINT_CONSTANTS = {34, 81}
ORDERING = (ast.Lt, ast.LtE, ast.Gt, ast.GtE)
ENTRY_TYPES = {"package", "report", "inputs"}  # domain/receipts.py ENTRY_TAGS


def _names(node: ast.AST) -> set[str]:
    return ({n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)}
            | {n.id for n in ast.walk(node) if isinstance(n, ast.Name)})


def copies(tree: ast.AST, rel: str) -> Iterator[tuple[int, str]]:
    """(line, which rule) of each copy of a rule in module `rel` (path under jamhost/)."""
    layer = rel.split("/")[0]
    for node in ast.walk(tree):
        if (layer in ("engine", "tenancy", "store", "app") and isinstance(node, ast.Constant)
                and type(node.value) is int and node.value in FOOTPRINT_CONSTANTS):
            yield node.lineno, "footprint constant (domain/footprint.py)"
        if isinstance(node, ast.Compare) and any(isinstance(op, ORDERING) for op in node.ops):
            names = _names(node)
            if layer == "store" and "storage_used" in names:
                yield node.lineno, "storage quota verdict (tenancy/storage_quota.fits)"
            if rel == "store/sql/claims.py" and "vtime" in names:
                yield node.lineno, "preempting claim's rule (tenancy/fairness.ahead)"
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id == "sum" and rel != "engine/accumulate.py"
                and any(isinstance(n, ast.Attribute) and n.attr == "gas_limit"
                        for n in ast.walk(node))):
            yield node.lineno, "accumulate gas (engine/accumulate.accumulate_gas)"
        if (layer == "store" and isinstance(node, ast.Tuple) and node.elts
                and isinstance(node.elts[0], ast.Constant) and node.elts[0].value in ENTRY_TYPES):
            yield node.lineno, "receipt entries (domain/receipts.py)"


def test_each_rule_has_one_home() -> None:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel == "domain/footprint.py":
            continue
        found += [f"{rel}:{line}: {rule}"
                  for line, rule in copies(ast.parse(path.read_text()), rel)]
    assert found == []


@pytest.mark.parametrize(("rel", "source"), [
    ("engine/lifecycle.py", "length = max(81, target.octets) - 81\n"),
    ("tenancy/apply_plan.py", "d_octets += 34 + len(k) + len(v)\n"),
    ("store/sql/preimages.py", "q = t.services.c.storage_used <= limit - delta\n"),
    ("store/sql/claims.py", "behind = [r for r in rows if before < r.vtime]\n"),
    ("engine/conformance/stf.py", "gas = f + sum(o.gas_limit for o in operands)\n"),
    ("store/sql/claims.py", "entries = [(\"package\", outcome.package_id)]\n"),
    ("store/sql/accumulations.py", "self._apply(conn, sid, [(\"inputs\", h)])\n"),
])
def test_the_check_sees_each_kind_of_copy(rel: str, source: str) -> None:
    assert list(copies(ast.parse(source), rel))


@pytest.mark.parametrize(("rel", "source"), [
    ("engine/lifecycle.py", "length = lone_request_length(target.octets)\n"),
    ("store/sql/preimages.py", "q = storage_quota.fits(t.services.c.storage_used, d, lim)\n"),
    ("store/sql/usage.py", "drift = usage.storage_used != row.storage_used\n"),
    ("store/sql/claims.py", "behind = [r for r in rows if fairness.ahead(v, n, r.vtime)]\n"),
    ("engine/accumulate.py", "g = f + sum(o.gas_limit for o in operands)\n"),
    ("pvm/opcodes.py", "OPCODE = 81\n"),
    ("store/sql/claims.py", "self._apply(conn, sid, outcome.receipt_entries)\n"),
    ("domain/receipts.py", "entries = ((\"package\", package_id),)\n"),
])
def test_the_check_lets_the_homes_pass(rel: str, source: str) -> None:
    assert list(copies(ast.parse(source), rel)) == []
