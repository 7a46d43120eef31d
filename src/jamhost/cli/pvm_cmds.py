"""`jamhost pvm run|test` (filled by the PVM work)."""

import typer

app = typer.Typer(no_args_is_help=True)
