"""docs/api.md and docs/cli.md are generated; they must equal what the generators print now.

When a route or a command changes, these tests fail and name the command that regenerates
the file.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]


def _script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["gen_api_docs", "gen_cli_docs"])
def test_generated_doc_is_up_to_date(name: str) -> None:
    gen = _script(name)
    target: Path = gen.TARGET
    fresh = gen.render()
    current = target.read_text() if target.is_file() else ""
    assert current == fresh, (
        f"{target.relative_to(REPO)} is out of date with the code: run `{gen.COMMAND}` "
        "and commit the result")


def test_api_doc_lists_every_route_of_the_app() -> None:
    gen = _script("gen_api_docs")
    doc = gen.openapi()
    text = gen.render(doc)
    for path, item in doc["paths"].items():
        for method in item:
            if method in gen.METHODS:
                assert f"### `{method.upper()} {path}`" in text


def test_cli_doc_lists_every_client_command() -> None:
    gen = _script("gen_cli_docs")
    text = gen.render()
    for command in ("jamhost jam status", "jamhost jam service create", "jamhost jam bulk",
                    "jamhost jam preimage-get", "jamhost receipts verify"):
        assert f"`{command}`" in text
    assert "## Exit codes of the client commands" in text
