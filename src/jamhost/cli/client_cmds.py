"""`jamhost jam ...`: client commands over HTTP (`--url`/`JAMHOST_URL`, `--token`/`JAMHOST_TOKEN`).

Output is JSON on stdout (a table with `--table`). Exit codes, for scripts:

  0  done
  1  the server refused the request (its JSON error body is printed on stderr), or the outcome
     is not the one asked for: an answer that fails local hash verification, a receipt chain
     that does not hold, a package that did not finish within `--timeout`, a bulk file with
     refused lines
  2  usage or input error (bad option, missing file, invalid JSON or hex); nothing was sent
  3  the server could not be reached
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from jamhost.cli.output import ConfigOpt, TableOpt, cli_group, emit
from jamhost.client import (
    AsyncJamClient,
    JamClient,
    JamHostError,
    RateLimited,
    Unreachable,
    VerificationError,
)

# httpx logs every request at INFO; the command's own output already says what happened.
logging.getLogger("httpx").setLevel(logging.WARNING)

ServiceArg = Annotated[int, typer.Argument(help="service id")]
HashArg = Annotated[str, typer.Argument(help="preimage hash (0x + 64 hex)")]
PackageArg = Annotated[str, typer.Argument(help="package id (0x + 64 hex)")]

app = cli_group(no_args_is_help=True, help="Client commands over the HTTP API")
service_app = cli_group(no_args_is_help=True, help="Services: create, list, show, upgrade")
storage_app = cli_group(no_args_is_help=True, help="A service's state (hex keys and values)")
delegate_app = cli_group(no_args_is_help=True, help="Delegate tokens of a service")
token_app = cli_group(no_args_is_help=True, help="Tokens of your account")
app.add_typer(service_app, name="service")
app.add_typer(storage_app, name="storage")
app.add_typer(delegate_app, name="delegate")
app.add_typer(token_app, name="token")

DEFAULT_URL = "http://127.0.0.1:8000"
UrlOpt = Annotated[str, typer.Option("--url", envvar="JAMHOST_URL", help="server URL")]
TokenOpt = Annotated[str | None, typer.Option("--token", envvar="JAMHOST_TOKEN",
                                              help="bearer token (prefer the env var)")]
ServiceOpt = Annotated[int | None, typer.Option("--service", help="service id")]
LimitOpt = Annotated[int | None, typer.Option(help="at most this many items (default: all)")]
FINAL = ("applied", "failed", "disputed")
PROGRESS_MIN_BYTES = 1 << 20


def _stderr_json(body: dict[str, Any], code: int) -> NoReturn:
    print(json.dumps(body), file=sys.stderr)
    raise typer.Exit(code)


def usage_error(message: str) -> NoReturn:
    """Exit 2: the input was wrong, nothing was sent."""
    _stderr_json({"error": message, "code": "usage"}, 2)


@contextmanager
def _client(url: str, token: str | None) -> Iterator[JamClient]:
    client = JamClient(url, token)
    try:
        with _refusals():
            yield client
    finally:
        client.close()


@contextmanager
def _refusals() -> Iterator[None]:
    """Map the client's exceptions to the documented exit codes."""
    try:
        yield
    except JamHostError as exc:
        _stderr_json(exc.body if isinstance(exc.body, dict) else
                     {"error": exc.message, "code": exc.code}, 1)
    except VerificationError as exc:
        _stderr_json({"error": str(exc), "code": "verification_failed"}, 1)
    except Unreachable as exc:
        _stderr_json({"error": str(exc), "code": "unreachable"}, 3)


def _run(url: str, token: str | None, table: bool, action: Callable[[JamClient], Any]) -> None:
    with _client(url, token) as client:
        result = action(client)
    emit(result, table)


def _read(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    p = Path(path)
    if not p.is_file():
        usage_error(f"no such file: {path}")
    return p.read_bytes()


def _hex(text: str, what: str) -> bytes:
    try:
        return bytes.fromhex(text[2:] if text.lower().startswith("0x") else text)
    except ValueError:
        usage_error(f"{what} must be hex (0x optional): {text!r}")


def _take(items: Iterator[dict[str, Any]], limit: int | None) -> dict[str, Any]:
    out: list[dict[str, Any]] = []
    for item in items:
        if limit is not None and len(out) >= limit:
            break
        out.append(item)
    return {"items": out}


def _progress(total: int, force: bool | None) -> Any:
    """A rich progress bar on stderr (stdout stays JSON): shown on a terminal for transfers of
    at least 1 MiB, or always with `--progress`, never with `--no-progress`."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    console = _stderr_console()
    show = force if force is not None else (console.is_terminal and
                                            total >= PROGRESS_MIN_BYTES)
    return Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                    TransferSpeedColumn(), TimeRemainingColumn(), console=console,
                    disable=not show)


ProgressOpt = Annotated[bool | None, typer.Option(
    "--progress/--no-progress", help="progress bar on stderr (default: on a terminal, "
    "for at least 1 MiB)")]


# -- system and identity ----------------------------------------------------------------------

@app.command()
def status(url: UrlOpt = DEFAULT_URL, token: TokenOpt = None, config: ConfigOpt = None,
           table: TableOpt = False) -> None:
    """Server status as the token sees it (version, store, authz flags, limits)."""
    _run(url, token, table, lambda c: c.status())


@app.command()
def me(url: UrlOpt = DEFAULT_URL, token: TokenOpt = None, config: ConfigOpt = None,
       table: TableOpt = False) -> None:
    """Who the token is: kind, account, accessor, scopes, delegations."""
    _run(url, token, table, lambda c: c.me())


# -- services ---------------------------------------------------------------------------------

@service_app.command("create")
def service_create(
        code: Annotated[str | None, typer.Option("--code", help="PVM code blob file, or -")] = None,
        balance: Annotated[int | None, typer.Option(help="initial balance (operators)")] = None,
        min_item_gas: Annotated[int | None, typer.Option(
            help="minimum accumulate gas per work item")] = None,
        owner: Annotated[str | None, typer.Option(help="owner (operators only)")] = None,
        url: UrlOpt = DEFAULT_URL, token: TokenOpt = None, config: ConfigOpt = None,
        table: TableOpt = False) -> None:
    """Create a service (the runtime allocates its id) and print it."""
    blob = _read(code) if code is not None else None
    _run(url, token, table, lambda c: c.create_service(blob, balance, min_item_gas, owner))


@service_app.command("list")
def service_list(limit: LimitOpt = None, url: UrlOpt = DEFAULT_URL, token: TokenOpt = None,
                 config: ConfigOpt = None, table: TableOpt = False) -> None:
    """The services the token may access."""
    _run(url, token, table, lambda c: _take(c.services(), limit))


@service_app.command("show")
def service_show(service: ServiceArg, url: UrlOpt = DEFAULT_URL, token: TokenOpt = None,
                 config: ConfigOpt = None, table: TableOpt = False) -> None:
    """A service: metadata, quota and usage, accumulator root."""
    _run(url, token, table, lambda c: c.service(service))


@service_app.command("upgrade")
def service_upgrade(service: ServiceArg,
                    code: Annotated[str, typer.Option("--code", help="PVM code blob, or -")],
                    url: UrlOpt = DEFAULT_URL, token: TokenOpt = None, config: ConfigOpt = None,
                    table: TableOpt = False) -> None:
    """Replace a service's code (owner with `manage`); the new code hash is checked locally."""
    blob = _read(code)
    _run(url, token, table, lambda c: c.upgrade_code(service, blob))


@app.command()
def quota(service: ServiceArg, url: UrlOpt = DEFAULT_URL, token: TokenOpt = None,
          config: ConfigOpt = None, table: TableOpt = False) -> None:
    """A service's quota limits and current usage."""
    _run(url, token, table, lambda c: c.quota(service))


# -- storage ----------------------------------------------------------------------------------

@storage_app.command("get")
def storage_get(service: ServiceArg,
                key: Annotated[str, typer.Argument(help="hex key (0x optional)")],
                text: Annotated[bool, typer.Option("--text", help="KEY is UTF-8 text")] = False,
                url: UrlOpt = DEFAULT_URL, token: TokenOpt = None, config: ConfigOpt = None,
                table: TableOpt = False) -> None:
    """The value under one key (404 when there is none)."""
    raw = key.encode() if text else _hex(key, "KEY")
    _run(url, token, table, lambda c: {"service_id": service, "key": "0x" + raw.hex(),
                                       "value": "0x" + c.storage(service, raw).hex()})


@storage_app.command("list")
def storage_list(service: ServiceArg,
                 prefix: Annotated[str, typer.Option(help="hex key prefix")] = "",
                 limit: LimitOpt = None, url: UrlOpt = DEFAULT_URL, token: TokenOpt = None,
                 config: ConfigOpt = None, table: TableOpt = False) -> None:
    """Keys and values, in key order, optionally under a prefix."""
    raw = _hex(prefix, "--prefix")
    _run(url, token, table, lambda c: _take(c.storage_items(service, raw), limit))


# -- delegates --------------------------------------------------------------------------------

@delegate_app.command("add")
def delegate_add(service: ServiceArg,
                 accessor: Annotated[str | None, typer.Option(help="a token's accessor")] = None,
                 delegate_token: Annotated[str | None, typer.Option(
                     "--delegate-token", help="a raw token string to authorize")] = None,
                 role: Annotated[str | None, typer.Option(help="reader or submitter")] = None,
                 url: UrlOpt = DEFAULT_URL, token: TokenOpt = None, config: ConfigOpt = None,
                 table: TableOpt = False) -> None:
    """Authorize one more token for SERVICE (by accessor, or a raw token)."""
    if (accessor is None) == (delegate_token is None):
        usage_error("give exactly one of --accessor and --delegate-token")
    _run(url, token, table, lambda c: c.add_delegate(service, accessor=accessor,
                                                     token=delegate_token, role=role))


@delegate_app.command("list")
def delegate_list(service: ServiceArg, url: UrlOpt = DEFAULT_URL, token: TokenOpt = None,
                  config: ConfigOpt = None, table: TableOpt = False) -> None:
    """SERVICE's delegations (token hash prefixes only)."""
    _run(url, token, table, lambda c: _take(c.delegates(service), None))


@delegate_app.command("remove")
def delegate_remove(service: ServiceArg, delegate_id: Annotated[int, typer.Argument(
                        help="the delegation's id")], url: UrlOpt = DEFAULT_URL,
                    token: TokenOpt = None, config: ConfigOpt = None,
                    table: TableOpt = False) -> None:
    """Remove one delegation (effective on the next request)."""
    def act(c: JamClient) -> Any:
        c.remove_delegate(service, delegate_id)
        return {"removed": delegate_id, "service_id": service}
    _run(url, token, table, act)


# -- tokens of the caller's account -----------------------------------------------------------

AccountOpt = Annotated[str | None, typer.Option(
    "--account", help="account id (default: the token's own account)")]


def _account(c: JamClient, account: str | None) -> str:
    if account:
        return account
    me_ = c.me()
    if not me_.get("account"):
        usage_error("this token has no account: give --account")
    return str(me_["account"]["id"])


@token_app.command("create")
def token_create(name: Annotated[str, typer.Option(help="a label for the token")] = "token",
                 scopes: Annotated[str | None, typer.Option(
                     help="comma-separated: read,submit,manage (default all)")] = None,
                 expires_at: Annotated[str | None, typer.Option(
                     help="ISO-8601 time or Unix seconds")] = None,
                 account: AccountOpt = None, url: UrlOpt = DEFAULT_URL, token: TokenOpt = None,
                 config: ConfigOpt = None, table: TableOpt = False) -> None:
    """Create a token (shown once) for your account (needs `manage`)."""
    chosen = [s.strip() for s in scopes.split(",")] if scopes else None
    exp: str | int | None = int(expires_at) if expires_at and expires_at.isdigit() else expires_at
    _run(url, token, table, lambda c: c.create_token(_account(c, account), name, chosen, exp))


@token_app.command("list")
def token_list(account: AccountOpt = None, url: UrlOpt = DEFAULT_URL, token: TokenOpt = None,
               config: ConfigOpt = None, table: TableOpt = False) -> None:
    """Your account's tokens (never their secrets)."""
    _run(url, token, table, lambda c: _take(c.tokens(_account(c, account)), None))


@token_app.command("revoke")
def token_revoke(accessor: Annotated[str, typer.Argument(help="the token's accessor")],
                 account: AccountOpt = None, url: UrlOpt = DEFAULT_URL,
                 token: TokenOpt = None, config: ConfigOpt = None,
                 table: TableOpt = False) -> None:
    """Revoke a token by its accessor (effective on the next request)."""
    def act(c: JamClient) -> Any:
        c.revoke_token(_account(c, account), accessor)
        return {"revoked": accessor}
    _run(url, token, table, act)


# -- preimages --------------------------------------------------------------------------------

@app.command()
def preimage(file: Annotated[str, typer.Option("--file", help="blob file, or - for stdin")],
             service: ServiceOpt = None,
             media_type: Annotated[str, typer.Option(
                 help="media type kept with the preimage")] = "application/octet-stream",
             progress: ProgressOpt = None,
             url: UrlOpt = DEFAULT_URL, token: TokenOpt = None, config: ConfigOpt = None,
             table: TableOpt = False) -> None:
    """Upload a preimage: the hash is computed locally, the file streamed (with a progress
    bar), and the server's answer checked to name that hash."""
    if file == "-":
        data = sys.stdin.buffer.read()
        source: bytes | Path = data
        size = len(data)
    else:
        source = Path(file)
        if not source.is_file():
            usage_error(f"no such file: {file}")
        size = source.stat().st_size
    with _progress(size, progress) as bar, _client(url, token) as c:
        task = bar.add_task("upload", total=size)
        meta = c.put_preimage(source, service, media_type,
                              progress=lambda n: bar.advance(task, n))
    emit(meta, table)


@app.command("preimage-get")
def preimage_get(hash: HashArg,
                 out: Annotated[str, typer.Option("--out", "-o", help="file to write, - for "
                                                  "stdout")],
                 progress: ProgressOpt = None, url: UrlOpt = DEFAULT_URL,
                 token: TokenOpt = None, config: ConfigOpt = None,
                 table: TableOpt = False) -> None:
    """Download a preimage to a file, checking that it hashes to HASH (the file is removed if
    it does not). Prints `{hash, size, file}`."""
    with _client(url, token) as c:
        size = c.preimage_head(hash)["size"]
        if out == "-":
            c.download_preimage(hash, sys.stdout.buffer)
            sys.stdout.flush()
            return
        target = Path(out)
        partial = target.with_name(target.name + ".part")
        try:
            with _progress(size, progress) as bar, partial.open("wb") as f:
                task = bar.add_task("download", total=size)
                result = c.download_preimage(hash, f, progress=lambda n: bar.advance(task, n))
            partial.replace(target)
        finally:
            partial.unlink(missing_ok=True)
    emit({**result, "file": str(target)}, table)


@app.command("preimage-meta")
def preimage_meta(hash: HashArg, url: UrlOpt = DEFAULT_URL, token: TokenOpt = None,
                  config: ConfigOpt = None, table: TableOpt = False) -> None:
    """A preimage's metadata: hash, size, media type, service, creation time."""
    _run(url, token, table, lambda c: c.preimage_meta(hash))


# -- packages ---------------------------------------------------------------------------------

def _wait(c: JamClient, package_id: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        pkg: dict[str, Any] = c.package(package_id)
        if pkg["status"] in FINAL:
            return pkg
        if time.monotonic() >= deadline:
            message = f"package still {pkg['status']!r} after {timeout}s"
            if pkg["status"] == "pending" and not pkg.get("attempts"):
                # Nothing ever claimed it: the usual cause is that no worker runs at all.
                message += ("; no worker has claimed it: is one running? (`jamhost serve` "
                            "with workers > 0 in the config, or `jamhost worker`)")
            _stderr_json({"error": message, "code": "timeout", "id": package_id}, 1)
        time.sleep(0.2)


@app.command()
def package(file: Annotated[str, typer.Option("--file", help="package JSON (SPEC §3), or -")],
            binary: Annotated[bool, typer.Option(help="the file is GP bytes")] = False,
            wait: Annotated[bool, typer.Option(
                "--wait", help="wait until applied, failed or disputed")] = False,
            timeout: Annotated[float, typer.Option(help="seconds --wait waits")] = 60.0,
            url: UrlOpt = DEFAULT_URL, token: TokenOpt = None, config: ConfigOpt = None,
            table: TableOpt = False) -> None:
    """Submit a work package and print the stored package (`created`: false when identical
    bytes were submitted before). The id is checked against the local blake2b-256 of the GP
    encoding."""
    raw = _read(file)
    body: Any = raw
    if not binary:
        try:
            body = json.loads(raw)
        except ValueError:
            usage_error("the file is not valid JSON")

    def act(c: JamClient) -> Any:
        pkg = c.submit_package(body)
        return {**_wait(c, pkg["id"], timeout), "created": pkg["created"]} if wait else pkg
    _run(url, token, table, act)


@app.command("package-show")
def package_show(package_id: PackageArg, url: UrlOpt = DEFAULT_URL, token: TokenOpt = None,
                 config: ConfigOpt = None, table: TableOpt = False) -> None:
    """One package with its status (and its w3f JSON)."""
    _run(url, token, table, lambda c: c.package(package_id))


def _bulk_lines(raw: bytes) -> list[tuple[int, Any]]:
    lines = []
    for n, line in enumerate(raw.decode("utf-8", "replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            lines.append((n, json.loads(line)))
        except ValueError:
            usage_error(f"line {n} is not valid JSON")
    return lines


async def _submit_all(url: str, token: str | None, lines: list[tuple[int, Any]],
                      concurrency: int, on_done: Callable[[], None]) -> dict[str, Any]:
    summary: dict[str, Any] = {"lines": len(lines), "accepted": 0, "existing": 0,
                               "refused": 0, "refusals": []}
    gate = asyncio.Semaphore(concurrency)

    async def one(c: AsyncJamClient, n: int, pkg: Any) -> None:
        async with gate:
            for attempt in range(5):
                try:
                    got = await c.submit_package(pkg)
                    summary["accepted" if got["created"] else "existing"] += 1
                    break
                except RateLimited as exc:
                    if attempt < 4:
                        await asyncio.sleep(min(exc.retry_after or 1.0, 60.0))
                        continue
                    summary["refused"] += 1
                    summary["refusals"].append({"line": n, "status": exc.status,
                                                "code": exc.code, "error": exc.message})
                except JamHostError as exc:
                    summary["refused"] += 1
                    summary["refusals"].append({"line": n, "status": exc.status,
                                                "code": exc.code, "error": exc.message})
                    break
            on_done()

    async with AsyncJamClient(url, token) as c:
        tasks = [asyncio.create_task(one(c, n, pkg)) for n, pkg in lines]
        try:
            await asyncio.gather(*tasks)
        finally:
            for t in tasks:
                t.cancel()
    summary["refusals"].sort(key=lambda r: r["line"])
    return summary


@app.command()
def bulk(file: Annotated[str, typer.Option("--file", help="JSONL: one package JSON a line, "
                                           "or -")],
         concurrency: Annotated[int, typer.Option(
             min=1, max=64, help="submissions in flight at once")] = 4,
         progress: Annotated[bool | None, typer.Option(
             "--progress/--no-progress", help="progress bar on stderr (default: on a "
             "terminal)")] = None, url: UrlOpt = DEFAULT_URL, token: TokenOpt = None,
         config: ConfigOpt = None, table: TableOpt = False) -> None:
    """Submit many packages from a JSONL file (with a progress bar) and print a summary:
    `accepted` (new), `existing` (submitted before), `refused` (with each refused line's
    status and code). A 429 is waited out (`Retry-After`) and retried. Exits 1 if any line
    was refused; 2, before sending anything, if a line is not JSON."""
    lines = _bulk_lines(_read(file))
    from rich.progress import Progress

    show = progress if progress is not None else sys.stderr.isatty()
    with Progress(console=_stderr_console(), disable=not show) as bar, _refusals():
        task = bar.add_task("packages", total=len(lines))
        summary = asyncio.run(_submit_all(url, token, lines, concurrency,
                                          lambda: bar.advance(task)))
    emit(summary, table)
    if summary["refused"]:
        raise typer.Exit(1)


def _stderr_console() -> Any:
    from rich.console import Console

    return Console(stderr=True)


@app.command()
def packages(service: ServiceOpt = None,
             status: Annotated[str | None, typer.Option(
                 "--status", help="pending, refining, reported, applied, disputed, failed")
             ] = None,
             limit: Annotated[int, typer.Option(help="at most this many")] = 50,
             url: UrlOpt = DEFAULT_URL, token: TokenOpt = None, config: ConfigOpt = None,
             table: TableOpt = False) -> None:
    """List packages (without --service: all of the caller's services)."""
    _run(url, token, table, lambda c: _take(c.packages(service, status,
                                                       limit=min(limit, 500)), limit))


@app.command()
def report(package_id: PackageArg, url: UrlOpt = DEFAULT_URL, token: TokenOpt = None,
           config: ConfigOpt = None, table: TableOpt = False) -> None:
    """The report, attestations and receipt of a package (report hash checked locally)."""
    _run(url, token, table, lambda c: c.report(package_id))


@app.command()
def accumulation(package_id: PackageArg, url: UrlOpt = DEFAULT_URL, token: TokenOpt = None,
                 config: ConfigOpt = None, table: TableOpt = False) -> None:
    """What a package's accumulation did: status, gas, yield, logs, transfers, services made."""
    _run(url, token, table, lambda c: c.accumulation(package_id))


@app.command()
def accumulations(service: ServiceArg, limit: LimitOpt = None, url: UrlOpt = DEFAULT_URL,
                  token: TokenOpt = None, config: ConfigOpt = None,
                  table: TableOpt = False) -> None:
    """A service's accumulations, newest first (of inputs queued by its siblings included)."""
    _run(url, token, table, lambda c: _take(c.accumulations(service), limit))


@app.command()
def reports(service: ServiceOpt = None, limit: LimitOpt = None, url: UrlOpt = DEFAULT_URL,
            token: TokenOpt = None, config: ConfigOpt = None, table: TableOpt = False) -> None:
    """List reports (without --service: all of the caller's services)."""
    _run(url, token, table, lambda c: _take(c.reports(service), limit))


@app.command()
def receipts(service: ServiceOpt = None, limit: LimitOpt = None, url: UrlOpt = DEFAULT_URL,
             token: TokenOpt = None, config: ConfigOpt = None, table: TableOpt = False) -> None:
    """A service's receipt chain (without --service: all of the caller's services)."""
    _run(url, token, table, lambda c: _take(c.receipts(service), limit))


@app.command()
def receipt(hash: HashArg, url: UrlOpt = DEFAULT_URL, token: TokenOpt = None,
            config: ConfigOpt = None, table: TableOpt = False) -> None:
    """The receipt(s) of a package or report hash."""
    _run(url, token, table, lambda c: c.receipt(hash))


receipts_app = cli_group(no_args_is_help=True, help="Receipt chains")


@receipts_app.command("verify")
def receipts_verify(service: ServiceArg, url: UrlOpt = DEFAULT_URL, token: TokenOpt = None,
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
