"""The `jamhost` console script: one typer app, sub-apps per concern."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from jamhost.cli import admin, client_cmds, codec_cmds, conformance_cmds, pvm_cmds
from jamhost.cli.output import (
    ConfigOpt,
    GlobalFlags,
    TableOpt,
    cli_group,
    emit,
    fail,
    settings,
)
from jamhost.tenancy.principal import ADMIN

app = cli_group(no_args_is_help=True, add_completion=False,
                  help="jamhost: a multi-tenant runtime for JAM services")
app.add_typer(pvm_cmds.app, name="pvm", help="Run PVM programs and test vectors")
app.add_typer(codec_cmds.app, name="codec", help="GP codec: decode and encode JAM types")
app.add_typer(conformance_cmds.app, name="conformance",
              help="Run jamhost's engine against public JAM vectors and block traces")
app.add_typer(client_cmds.app, name="jam", help="Client commands over the HTTP API")
app.add_typer(client_cmds.receipts_app, name="receipts", help="Verify receipt chains")
app.add_typer(admin.accounts, name="accounts")
app.add_typer(admin.tokens, name="tokens")
app.add_typer(admin.services, name="services")
app.add_typer(admin.delegates, name="delegates")
app.add_typer(admin.quotas, name="quotas")


def _port_free(host: str, port: int) -> None:
    """Fail with one line naming the option when the address is taken (uvicorn's own answer
    is a log line and 'address already in use' with no hint)."""
    import errno
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                fail(f"port {port} on {host} is already in use: choose another with --port "
                     f"(make run PORT=...)", 2)
            fail(f"cannot listen on {host}:{port} ({exc.strerror}): check --host and --port", 2)


@app.callback()
def _root(verbose: Annotated[bool, typer.Option(
              "--verbose", "-v",
              help="admin commands also print their log lines (JSON on stderr), audit "
                   "events included; they are in the audit log either way")] = False,
          create: Annotated[bool, typer.Option(
              "--create", help="let an admin command create the SQLite store file when it "
                               "does not exist yet (needed unless the config names it)")] = False,
          ) -> None:
    """jamhost: a multi-tenant runtime for JAM services."""
    GlobalFlags.verbose = verbose
    GlobalFlags.create = create


@app.command()
def serve(host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
          port: Annotated[int, typer.Option(help="TCP port to listen on")] = 8000,
          config: ConfigOpt = None) -> None:
    """The HTTP API plus in-process workers (`workers`), on the embedded store by default."""
    import uvicorn

    from jamhost.api.app import create_app
    from jamhost.api.http_limits import LimitedHttpToolsProtocol
    from jamhost.app.runtime import build_runtime
    from jamhost.app.worker import settle_process
    from jamhost.observability import configure_logging, register_secret

    configure_logging()
    s = settings(config)
    _port_free(host, port)
    for token in s.jam.allowed_tokens:
        register_secret(token)
    rt = build_runtime(s)
    app_ = create_app(rt)
    settle_process()
    pool = None
    if s.jam.workers > 0:
        from jamhost.app.worker import WorkerPool

        pool = WorkerPool(rt, s.jam.workers)
        pool.start()
    try:
        uvicorn.run(app_, host=host, port=port, log_config=None, access_log=False,
                    http=LimitedHttpToolsProtocol)
    finally:
        if pool is not None:
            pool.stop()
        rt.close()


@app.command()
def worker(threads: Annotated[int | None, typer.Option(
               help="worker threads (default: the `workers` key, at least 1)")] = None,
           config: ConfigOpt = None) -> None:
    """A worker process only: claims and processes packages (scale-out)."""
    from jamhost.app.runtime import build_runtime
    from jamhost.app.worker import WorkerPool, settle_process
    from jamhost.observability import configure_logging, get_logger

    configure_logging()
    s = settings(config)
    rt = build_runtime(s)
    log = get_logger("jamhost.worker")
    count = threads or max(1, s.jam.workers)
    import signal

    def _terminate(_sig: int, _frame: object) -> None:
        raise KeyboardInterrupt  # run_forever's stop path: threads finish their package

    signal.signal(signal.SIGTERM, _terminate)
    settle_process()
    log.info("worker started", threads=count, store=rt.store.kind)
    try:
        WorkerPool(rt, count).run_forever()
    except KeyboardInterrupt:
        pass
    finally:
        log.info("worker stopped", threads=count)
        rt.close()


@app.command()
def audit(action: Annotated[str | None, typer.Option(help="only this action")] = None,
          limit: Annotated[int, typer.Option(help="at most this many events")] = 100,
          config: ConfigOpt = None, table: TableOpt = False) -> None:
    """The audit log (newest first), read from the store."""
    from jamhost.app import audit as audit_uc
    from jamhost.app import views

    admin.run_admin(config, table, lambda rt: views.page(
        [views.audit_event(e) for e in audit_uc.list_events(
            rt, ADMIN, action=action, cursor=None, limit=min(limit, 10_000)).items], None))


@app.command()
def reconcile(config: ConfigOpt = None) -> None:
    """Recompute usage counters (pending packages, storage bytes) from the stored rows."""
    from jamhost.app.system import reconcile_usage

    admin.run_admin(config, False, lambda rt: {"services_repaired": reconcile_usage(rt, ADMIN)})


@app.command()
def migrate(config: ConfigOpt = None) -> None:
    """Create or upgrade the schema of the configured SQL store."""
    jam = settings(config).jam  # validate before touching anything

    from jamhost.store import open_store
    from jamhost.store.migrate import current_revision

    if jam.store == "memory":
        fail("store = 'memory' has no schema to migrate", 2)
    from jamhost.store.sql.adapter import SqlStore

    store = open_store(jam, migrate=True)
    assert isinstance(store, SqlStore)  # every store mode but `memory` is SQL
    emit({"store": jam.store, "revision": current_revision(store.engine)})
    store.close()


@app.command()
def demo(keep: Annotated[str | None, typer.Option(
             help="directory for the demo store (default: a temporary one)")] = None,
         config: ConfigOpt = None, table: TableOpt = False,
         json_out: Annotated[bool, typer.Option(
             "--json", help="print the whole result document (JSON) instead of the "
                            "summary")] = False,
         ) -> None:
    """Create a tenant, deploy the example services, submit packages and show the reports,
    attestations, receipts and resulting state, on a fresh embedded store."""
    import tempfile
    from pathlib import Path

    from jamhost.app.demo import run_demo
    from jamhost.observability import set_log_level

    if not GlobalFlags.verbose:
        set_log_level("WARNING")  # the summary says what happened; --verbose for the log

    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        result = run_demo(Path(keep))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            result = run_demo(Path(tmp))
    if table:
        rows = [{"service": name, "service_id": s["service_id"], "packages": len(s["packages"]),
                 "statuses": ",".join(p["status"] for p in s["packages"]),
                 "receipts": s["receipts"], "chain_holds": s["chain_holds"],
                 "state": s["state"]} for name, s in result["services"].items()]
        emit(rows, True)
    elif json_out:
        emit(result)
    else:
        print(demo_summary(result))


def _text(raw: bytes) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return "0x" + raw.hex()
    return repr(text) if text.isprintable() else "0x" + raw.hex()


def _decoded_state(name: str, state: dict[str, str]) -> str:
    """The state of the example services, decoded by their documented layouts."""
    items = {bytes.fromhex(k[2:]): bytes.fromhex(v[2:]) for k, v in state.items()}
    if name == "counter" and len(items.get(b"count", b"")) == 8:
        return f"count = {int.from_bytes(items[b'count'], 'little')}"
    if name == "compute" and len(items.get(b"result", b"")) == 16:
        r = items[b"result"]
        return (f"result: sum = {int.from_bytes(r[:8], 'little')}, "
                f"fnv1a64 = 0x{int.from_bytes(r[8:], 'little'):016x}")
    return ", ".join(f"{_text(k)} = {_text(v)}" for k, v in sorted(items.items())) or "(empty)"


def demo_summary(result: dict[str, Any]) -> str:
    lines = [f"Tenant {result['account']['name']} ({result['account']['id']}), "
             f"token accessor {result['token_accessor']}:"]
    all_hold = True
    for name, svc in result["services"].items():
        statuses: dict[str, int] = {}
        for p in svc["packages"]:
            statuses[p["status"]] = statuses.get(p["status"], 0) + 1
        done = ", ".join(f"{n} {status}" for status, n in statuses.items())
        all_hold = all_hold and bool(svc["chain_holds"])
        lines.append(f"  {name:<8} service {svc['service_id']}: {len(svc['packages'])} "
                     f"package(s) ({done}), {svc['receipts']} receipt(s), chain "
                     f"{'verified' if svc['chain_holds'] else 'BROKEN'}")
        lines.append(f"           state: {_decoded_state(name, svc['state'])}")
    lines.append("Every receipt chain verified." if all_hold
                 else "A receipt chain did NOT verify.")
    lines.append("`jamhost demo --json` prints the whole document (reports, attestations, "
                 "receipts, raw state).")
    return "\n".join(lines)


def main() -> None:
    from jamhost.observability import configure_logging

    configure_logging()  # JSON lines on stderr: stdout stays the command's output
    app()


if __name__ == "__main__":
    main()
