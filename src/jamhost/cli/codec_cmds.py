"""`jamhost codec decode|encode`: the GP codec on files, in the w3f test-vector JSON form.

Bad input is the normal case for a codec tool, so every failure (unknown type, unreadable file,
malformed bytes or JSON) is one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from jamhost.cli.output import cli_group
from jamhost.domain.errors import CodecError
from jamhost.domain.record import Codable
from jamhost.domain.registry import CODEC_TYPE_ALIASES, CODEC_TYPES, codec_type

app = cli_group(no_args_is_help=True, add_completion=False)

_TYPE_HELP = "GP type: " + ", ".join([*CODEC_TYPES, *CODEC_TYPE_ALIASES])

TypeArg = Annotated[str, typer.Argument(metavar="TYPE", help=_TYPE_HELP, show_default=False)]
FileArg = Annotated[str, typer.Argument(metavar="FILE", help="input file, or - for stdin")]
ConfigOpt = Annotated[
    Path | None, typer.Option("--config", help="jamhost config (not used by codec commands)")
]


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def _resolve(type_name: str) -> type[Codable]:
    cls = codec_type(type_name)
    if cls is None:
        _fail(f"unknown type {type_name!r}; known: {', '.join(CODEC_TYPES)}")
    return cls


def _read(file: str) -> bytes:
    try:
        return sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()
    except OSError as exc:
        _fail(f"cannot read {file}: {exc.strerror or exc}")


@app.command()
def decode(type_name: TypeArg, file: FileArg, config: ConfigOpt = None) -> None:
    """Decode GP-encoded bytes of TYPE and print its w3f JSON."""
    cls = _resolve(type_name)
    data = _read(file)
    try:
        value = cls.decode(data)
    except CodecError as exc:
        _fail(f"not a valid {type_name}: {exc}")
    typer.echo(json.dumps(value.to_json(), indent=4))


@app.command()
def encode(type_name: TypeArg, file: FileArg, config: ConfigOpt = None) -> None:
    """Read the w3f JSON of TYPE and write its GP encoding (raw bytes) to stdout."""
    cls = _resolve(type_name)
    data = _read(file)
    try:
        obj = json.loads(data)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError
        _fail(f"{file} is not JSON: {exc}")
    try:
        encoded = cls.from_json(obj).encode()
    except CodecError as exc:
        _fail(f"not a valid {type_name}: {exc}")
    sys.stdout.buffer.write(encoded)
    sys.stdout.buffer.flush()
