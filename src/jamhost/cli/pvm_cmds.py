"""`jamhost pvm run|test`: run w3f PVM test-vector programs on jamhost's PVM.

`run FILE.json...` prints one JSON object per file (one per line) with the vector's
`expected-*` field names minus the prefix: status, pc, gas, regs, memory, page_fault_address.
`test DIR` runs every `*.json` vector in DIR, prints each failure and ends with the line
`N passed, M failed`; it exits 1 when any failed. Unreadable input exits 2.
`--engine` (auto, native, python) picks the engine through `jamhost.pvm.get_engine`;
`--mode step` is the Python engine's single-step path.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from jamhost.cli.output import cli_group
from jamhost.pvm.engines import ENGINE_CHOICES, EngineUnavailable, get_engine
from jamhost.pvm.interface import PvmEngine
from jamhost.pvm.vectors import compare, load_vector, run_vector

app = cli_group(no_args_is_help=True, add_completion=False)

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", help="jamhost config (not used by pvm commands)")
]
ModeOpt = Annotated[
    str,
    typer.Option("--mode", help="fast (compiled basic blocks) or step (one instruction at a time)"),
]
TableOpt = Annotated[bool, typer.Option("--table", help="print a table instead of JSON")]
EngineOpt = Annotated[
    str, typer.Option("--engine", help="auto (the native core when built), native or python")
]


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def _engine(mode: str, name: str) -> PvmEngine | None:
    """The engine to run vectors on; None is the Python interpreter's step path."""
    if mode not in ("fast", "step"):
        _fail("--mode is fast or step")
    if name not in ENGINE_CHOICES:
        _fail("--engine is " + ", ".join(ENGINE_CHOICES))
    if mode == "step":
        if name == "native":
            _fail("--mode step is the Python engine's path; drop --engine native")
        return None
    try:
        return get_engine(name)
    except EngineUnavailable as exc:
        _fail(str(exc))


def _load(path: Path) -> dict[str, Any]:
    try:
        return load_vector(path)
    except (OSError, ValueError) as exc:
        _fail(f"cannot read {path}: {exc}")


@app.command()
def run(
    files: Annotated[list[Path], typer.Argument(metavar="FILE.json...", help="PVM vectors")],
    mode: ModeOpt = "fast",
    table: TableOpt = False,
    engine: EngineOpt = "auto",
    config: ConfigOpt = None,
) -> None:
    """Run PVM test-vector programs (their initial-* fields) and print the final state."""
    pvm = _engine(mode, engine)
    results = []
    for path in files:
        vector = _load(path)
        try:
            results.append((path, run_vector(vector, mode, pvm)))
        except (KeyError, TypeError, ValueError) as exc:
            _fail(f"{path}: not a PVM test vector ({exc})")
    if table:
        typer.echo(f"{'file':40} {'status':10} {'pc':>8} {'gas':>12} {'fault':>10}")
        for path, res in results:
            fault = res["page_fault_address"]
            typer.echo(
                f"{path.name:40} {res['status']:10} {res['pc']:>8} {res['gas']:>12} "
                f"{'' if fault is None else fault:>10}"
            )
        return
    for _path, res in results:
        typer.echo(json.dumps(res))


def _vector_dir(directory: Path) -> Path:
    """The w3f PVM vectors' folder keeps the vectors in `programs/`, beside `schema.json` and
    the docs: given that folder, test `programs/`."""
    programs = directory / "programs"
    return programs if programs.is_dir() else directory


@app.command()
def test(
    directory: Annotated[Path, typer.Argument(
        metavar="DIR", help="directory of PVM vectors, or the vectors' folder (with "
                            "programs/)")],
    mode: ModeOpt = "fast",
    engine: EngineOpt = "auto",
    config: ConfigOpt = None,
) -> None:
    """Run every vector in DIR (or DIR/programs) against its expected-* fields; the last line
    is `N passed, M failed`."""
    pvm = _engine(mode, engine)
    if not directory.is_dir():
        _fail(f"{directory} is not a directory")
    directory = _vector_dir(directory)
    passed = failed = 0
    for path in sorted(directory.glob("*.json")):
        vector = _load(path)
        try:
            diffs = compare(vector, run_vector(vector, mode, pvm))
        except (KeyError, TypeError, ValueError) as exc:
            diffs = [f"not a PVM test vector ({exc})"]
        if diffs:
            failed += 1
            typer.echo(f"FAIL {path.name}: " + "; ".join(diffs))
        else:
            passed += 1
    typer.echo(f"{passed} passed, {failed} failed")
    if failed:
        raise typer.Exit(1)
