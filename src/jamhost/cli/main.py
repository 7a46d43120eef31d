"""The `jamhost` console script: one typer app, sub-apps per concern."""

from __future__ import annotations

import typer

from jamhost.cli import codec_cmds, pvm_cmds

app = typer.Typer(no_args_is_help=True, add_completion=False, help="jamhost: multi-tenant JAM runtime")
app.add_typer(pvm_cmds.app, name="pvm", help="Run PVM programs and test vectors")
app.add_typer(codec_cmds.app, name="codec", help="GP codec: decode and encode JAM types")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
