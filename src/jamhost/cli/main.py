"""The `jamhost` console script: one typer app, sub-apps per concern."""

from __future__ import annotations

from typing import Annotated

import typer

from jamhost.cli import admin, client_cmds, codec_cmds, conformance_cmds, pvm_cmds
from jamhost.cli.output import ConfigOpt, emit, fail, settings

app = typer.Typer(no_args_is_help=True, add_completion=False,
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


@app.command()
def serve(host: Annotated[str, typer.Option()] = "127.0.0.1",
          port: Annotated[int, typer.Option()] = 8000,
          config: ConfigOpt = None) -> None:
    """The HTTP API plus in-process workers (`workers`), on the embedded store by default."""
    import uvicorn

    from jamhost.api.app import create_app
    from jamhost.app.runtime import build_runtime
    from jamhost.observability import configure_logging, register_secret

    configure_logging()
    s = settings(config)
    for token in s.jam.allowed_tokens:
        register_secret(token)
    rt = build_runtime(s)
    app_ = create_app(rt)
    pool = None
    if s.jam.workers > 0:
        from jamhost.app.worker import WorkerPool

        pool = WorkerPool(rt, s.jam.workers)
        pool.start()
    try:
        uvicorn.run(app_, host=host, port=port, log_config=None, access_log=False)
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
    from jamhost.app.worker import WorkerPool
    from jamhost.observability import configure_logging

    configure_logging()
    s = settings(config)
    rt = build_runtime(s)
    try:
        WorkerPool(rt, threads or max(1, s.jam.workers)).run_forever()
    finally:
        rt.close()


@app.command()
def audit(action: Annotated[str | None, typer.Option(help="only this action")] = None,
          limit: Annotated[int, typer.Option()] = 100, config: ConfigOpt = None,
          table: Annotated[bool, typer.Option("--table")] = False) -> None:
    """The audit log (newest first), read from the store."""
    from jamhost.api import views
    from jamhost.app.runtime import build_runtime

    rt = build_runtime(settings(config))
    try:
        page = rt.store.list_audit(action=action, limit=min(limit, 10_000))
        emit(views.page([views.audit_event(e) for e in page.items], None), table)
    finally:
        rt.close()


@app.command()
def reconcile(config: ConfigOpt = None) -> None:
    """Recompute usage counters (pending packages, storage bytes) from the stored rows."""
    from jamhost.app.runtime import build_runtime

    rt = build_runtime(settings(config))
    try:
        emit({"services_repaired": rt.store.reconcile_usage()})
    finally:
        rt.close()


@app.command()
def migrate(config: ConfigOpt = None) -> None:
    """Create or upgrade the schema of the configured SQL store."""
    s = settings(config).jam  # validate before touching anything

    from jamhost.store import open_store
    from jamhost.store.migrate import current_revision

    if s.store == "memory":
        fail("store = 'memory' has no schema to migrate", 2)
    store = open_store(s, migrate=True)
    emit({"store": s.store, "revision": current_revision(store.engine)})  # type: ignore[attr-defined]
    store.close()


@app.command()
def demo(keep: Annotated[str | None, typer.Option(
             help="directory for the demo store (default: a temporary one)")] = None,
         config: ConfigOpt = None, table: Annotated[bool, typer.Option("--table")] = False,
         ) -> None:
    """Create a tenant, deploy the example services, submit packages and show the reports,
    attestations, receipts and resulting state, on a fresh embedded store."""
    import tempfile
    from pathlib import Path

    from jamhost.app.demo import run_demo

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
    else:
        emit(result)


def main() -> None:
    from jamhost.observability import configure_logging

    configure_logging()  # JSON lines on stderr: stdout stays the command's output
    app()


if __name__ == "__main__":
    main()
