"""`jamhost conformance accumulate|traces DIR`: jamhost's engine against public JAM data.

Each prints one line per failing case, then `N passed, M failed`, and exits 1 when any case
failed (2 when DIR holds no case at all).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Annotated

import typer

from jamhost.engine.conformance import CaseResult, summary

app = typer.Typer(no_args_is_help=True, add_completion=False)

DirArg = Annotated[Path, typer.Argument(metavar="DIR", show_default=False,
                                        help="directory of *.json cases")]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v",
                                          help="also a line per passing case, with its time")]


def _report(results: Iterable[CaseResult], verbose: bool) -> None:
    done: list[CaseResult] = []
    for result in results:
        done.append(result)
        if not result.passed:
            typer.echo(result.line())
        elif verbose and not result.skipped:
            typer.echo(f"ok {result.name} ({result.seconds:.2f}s)")
    if not done:
        typer.echo("error: no *.json case in that directory", err=True)
        raise typer.Exit(2)
    typer.echo(summary(done))
    if any(not r.passed for r in done):
        raise typer.Exit(1)


def _directory(directory: Path) -> Path:
    if not directory.is_dir():
        typer.echo(f"error: {directory} is not a directory", err=True)
        raise typer.Exit(2)
    return directory


@app.command()
def accumulate(directory: DirArg, verbose: VerboseOpt = False) -> None:
    """The accumulate STF vectors (w3f/davxy stf/accumulate JSON, GP 0.7.0 or 0.7.2 form)."""
    from jamhost.engine.conformance.vectors import run_directory

    _report(run_directory(_directory(directory)), verbose)


@app.command()
def traces(directory: DirArg, verbose: VerboseOpt = False) -> None:
    """Block traces (GP state key/values): replay each block's accumulation and compare
    services, accumulation outputs and statistics with the post-state."""
    from jamhost.engine.conformance.traces import run_directory

    _report(run_directory(_directory(directory)), verbose)
