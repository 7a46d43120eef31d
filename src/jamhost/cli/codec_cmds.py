"""`jamhost codec decode|encode` (filled by the codec work)."""

import typer

app = typer.Typer(no_args_is_help=True)
