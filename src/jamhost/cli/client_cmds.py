"""`jamhost jam ...`: client commands over HTTP (`--url`/`JAMHOST_URL`, `--token`/`JAMHOST_TOKEN`).

A refused request exits non-zero (1; 2 for usage errors) and prints the error body on stderr.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

from jamhost.cli.output import ConfigOpt, TableOpt, emit, fail
from jamhost.client import JamClient, JamHostError

app = typer.Typer(no_args_is_help=True, help="Client commands over the HTTP API")

UrlOpt = Annotated[str, typer.Option("--url", envvar="JAMHOST_URL",
                                     help="server URL")]
TokenOpt = Annotated[str | None, typer.Option("--token", envvar="JAMHOST_TOKEN",
                                              help="bearer token (prefer the env var)")]
DEFAULT_URL = "http://127.0.0.1:8000"


@contextmanager
def _client(url: str, token: str | None) -> Iterator[JamClient]:
    client = JamClient(url, token)
    try:
        yield client
    except JamHostError as exc:
        body = exc.body if isinstance(exc.body, dict) else {"error": exc.message,
                                                             "code": exc.code}
        print(json.dumps(body), file=sys.stderr)
        raise typer.Exit(1) from None
    except httpx.HTTPError as exc:
        fail(f"cannot reach {url}: {type(exc).__name__}")
    finally:
        client.close()


def _run(url: str, token: str | None, table: bool, action: Callable[[JamClient], Any]) -> None:
    with _client(url, token) as client:
        emit(action(client), table)


def _read(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    p = Path(path)
    if not p.is_file():
        fail(f"no such file: {path}", 2)
    return p.read_bytes()


@app.command()
def status(url: UrlOpt = DEFAULT_URL, token: TokenOpt = None, config: ConfigOpt = None,
           table: TableOpt = False) -> None:
    """Server status as the token sees it."""
    _run(url, token, table, lambda c: c.status())


@app.command()
def preimage(file: Annotated[str, typer.Option("--file", help="blob file, or - for stdin")],
             service: Annotated[int | None, typer.Option("--service")] = None,
             media_type: Annotated[str, typer.Option()] = "application/octet-stream",
             url: UrlOpt = DEFAULT_URL, token: TokenOpt = None, config: ConfigOpt = None,
             table: TableOpt = False) -> None:
    """Upload a preimage (hash computed locally)."""
    data = _read(file)
    _run(url, token, table, lambda c: c.put_preimage(data, service, media_type))


@app.command()
def package(file: Annotated[str, typer.Option("--file", help="package JSON (SPEC §3), or -")],
            binary: Annotated[bool, typer.Option(help="the file is GP bytes")] = False,
            url: UrlOpt = DEFAULT_URL, token: TokenOpt = None, config: ConfigOpt = None,
            table: TableOpt = False) -> None:
    """Submit a work package and print the stored package."""
    raw = _read(file)
    if binary:
        body: Any = raw
    else:
        try:
            body = json.loads(raw)
        except ValueError:
            fail("the file is not valid JSON", 2)
    _run(url, token, table, lambda c: c.submit_package(body))


@app.command()
def packages(service: Annotated[int | None, typer.Option("--service")] = None,
             status: Annotated[str | None, typer.Option("--status")] = None,
             limit: Annotated[int, typer.Option(help="at most this many")] = 50,
             url: UrlOpt = DEFAULT_URL, token: TokenOpt = None, config: ConfigOpt = None,
             table: TableOpt = False) -> None:
    """List packages (without --service: all of the caller's services)."""
    def act(c: JamClient) -> Any:
        items = []
        for item in c.packages(service, status):
            items.append(item)
            if len(items) >= limit:
                break
        return {"items": items}
    _run(url, token, table, act)


@app.command()
def report(package_id: str, url: UrlOpt = DEFAULT_URL, token: TokenOpt = None,
           config: ConfigOpt = None, table: TableOpt = False) -> None:
    """The report, attestations and receipt of a package."""
    _run(url, token, table, lambda c: c.report(package_id))


@app.command()
def reports(service: Annotated[int | None, typer.Option("--service")] = None,
            url: UrlOpt = DEFAULT_URL, token: TokenOpt = None, config: ConfigOpt = None,
            table: TableOpt = False) -> None:
    """List reports."""
    _run(url, token, table, lambda c: {"items": list(c.reports(service))})


@app.command()
def receipts(service: Annotated[int | None, typer.Option("--service")] = None,
             url: UrlOpt = DEFAULT_URL, token: TokenOpt = None, config: ConfigOpt = None,
             table: TableOpt = False) -> None:
    """A service's receipt chain."""
    _run(url, token, table, lambda c: {"items": list(c.receipts(service))})


receipts_app = typer.Typer(no_args_is_help=True, help="Receipt chains")


@receipts_app.command("verify")
def receipts_verify(service: int, url: UrlOpt = DEFAULT_URL, token: TokenOpt = None,
                    config: ConfigOpt = None, table: TableOpt = False) -> None:
    """Re-compute SERVICE's receipt chain with blake2b and compare it with the service's
    accumulator root. Exits 0 when the chain holds, 1 when it does not."""
    from jamhost.domain.receipts import verify_chain

    def h(x: str) -> bytes:
        return bytes.fromhex(x[2:])

    with _client(url, token) as c:
        entries = [(r["seq"], h(r["prev_root"]), h(r["new_root"]), r["entry_type"], h(r["hash"]))
                   for r in c.receipts(service)]
        root = c.service(service)["accumulator_root"]
    ok, detail = verify_chain(entries)
    holds = ok and detail == root
    emit({"service_id": service, "entries": len(entries), "holds": holds,
          "computed_root": detail if ok else None, "accumulator_root": root,
          "problem": None if holds else (detail if not ok else "root differs from the service's")},
         table)
    if not holds:
        raise typer.Exit(1)
