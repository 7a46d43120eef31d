"""Every `type: ignore` in src names its error code and has its reason on the comment lines
above it (`# type-ignore reason: ...`, docs/architecture.md); one reason may cover several
ignores of one statement ("the three"). Read from the source with `tokenize` and `ast`."""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "jamhost"
IGNORE = re.compile(r"#.*type:\s*ignore(\[[a-z-]+(,\s*[a-z-]+)*\])?")
REASON = "type-ignore reason"


def unexplained(source: str) -> list[str]:
    """The lines of `source` whose `type: ignore` has no code, or no reason above it."""
    lines = source.splitlines()
    comments = {tok.start[0]: tok.string
                for tok in tokenize.generate_tokens(io.StringIO(source).readline)
                if tok.type == tokenize.COMMENT}
    statements = [(node.lineno, node.end_lineno or node.lineno)
                  for node in ast.walk(ast.parse(source)) if isinstance(node, ast.stmt)]
    explained: set[int] = set()
    found = []
    for line in sorted(comments):
        match = IGNORE.search(comments[line])
        if match is None:
            continue
        if match.group(1) is None:
            found.append(f"{line}: a bare type: ignore (no error code)")
            continue
        above = line - 1
        reason = False
        while above >= 1 and lines[above - 1].strip().startswith("#"):
            reason = reason or REASON in lines[above - 1]
            above -= 1
        if not reason:  # a reason given above an earlier ignore of the same statement
            first, last = min(((a, b) for a, b in statements if a <= line <= b),
                              key=lambda span: span[1] - span[0], default=(line, line))
            reason = any(first <= other < line for other in explained) or any(
                first <= other <= last and other < line and REASON in comments.get(other, "")
                for other in comments)
        if reason:
            explained.add(line)
        else:
            found.append(f"{line}: no `# {REASON} ...` above")
    return found


def test_every_type_ignore_has_its_code_and_its_reason() -> None:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        found += [f"{path.relative_to(PACKAGE)}:{f}" for f in unexplained(path.read_text())]
    assert found == []


@pytest.mark.parametrize("source", [
    "x = f()  # type: ignore[attr-defined]\n",
    "# type-ignore reason: why\nx = f()  # type: ignore\n",
    "# a comment, no reason\nx = f()  # type: ignore[misc]\n",
    "# type-ignore reason: only the first statement\nx = f()  # type: ignore[misc]\n"
    "y = g()  # type: ignore[misc]\n",
])
def test_the_check_sees_each_kind_of_finding(source: str) -> None:
    assert len(unexplained(source)) == 1


@pytest.mark.parametrize("source", [
    "# type-ignore reason: why\n#   continued\nx = f()  # type: ignore[attr-defined, misc]\n",
    "x = dict(\n    # type-ignore reason (the two): why\n    a=f(),  # type: ignore[arg-type]\n"
    "    b=g(),  # type: ignore[arg-type]\n)\n",
])
def test_the_check_lets_explained_ignores_pass(source: str) -> None:
    assert unexplained(source) == []
