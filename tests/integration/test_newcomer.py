"""What a newcomer meets first, run as they would run it: times in ISO 8601 or Unix seconds over
HTTP and the CLI, `make run PORT=`, the port-taken message, the admin commands' store check and
quiet output, `jamhost demo`'s summary, the worker's log lines, `--wait`'s hint, `pvm test` on
the vectors' folder, the example modules' command line, and help for every command."""

from __future__ import annotations

import json
import os
import pty
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import (
    REPO,
    Server,
    free_port,
    make_tenant,
    simple_package,
    start_server,
    vectors_dir,
    write_config,
)

NO_LIMITS = {"rate_limit_per_minute": 0, "service_rate_limit_per_minute": 0}
EXPIRES = datetime(2031, 1, 2, 3, 4, 5, tzinfo=UTC)
EXPIRES_ISO = "2031-01-02T03:04:05Z"


def cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
        timeout: float = 120) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("JAMHOST_")}
    return subprocess.run([sys.executable, "-m", "jamhost.cli.main", *args], cwd=cwd,
                          env={**base, **(env or {})}, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Any:
    s = start_server(tmp_path_factory.mktemp("newcomer"), **NO_LIMITS)
    yield s
    s.stop()


# -- times -----------------------------------------------------------------------------------

@pytest.mark.parametrize("sent", [EXPIRES_ISO, "2031-01-02T04:04:05+01:00",
                                  "2031-01-02T03:04:05", "2031-01-02 03:04:05",
                                  int(EXPIRES.timestamp()), str(int(EXPIRES.timestamp()))])
def test_token_expiry_takes_iso_8601_and_unix_seconds_over_http(srv: Server, sent: Any) -> None:
    a = make_tenant(srv, "times")
    with srv.client(a.token) as c:
        resp = c.post(f"/jam/accounts/{a.account_id}/tokens", json={"expires_at": sent})
    assert resp.status_code == 201, resp.text
    assert resp.json()["expires_at"] == "2031-01-02T03:04:05Z"


def test_bad_times_are_400(srv: Server) -> None:
    a = make_tenant(srv, "bad-times")
    with srv.client(a.token) as c:
        for sent in ("soon", "2031-13-01T00:00:00Z", True, -5, 2**62, "2001-01-01T00:00:00Z"):
            resp = c.post(f"/jam/accounts/{a.account_id}/tokens", json={"expires_at": sent})
            assert resp.status_code == 400, (sent, resp.text)
            assert resp.json()["code"] == "jam_bad_request"


def test_token_expiry_takes_iso_8601_on_the_cli(srv: Server) -> None:
    a = make_tenant(srv, "times-cli")
    env = {"JAMHOST_URL": srv.url, "JAMHOST_TOKEN": a.token}
    for sent in (EXPIRES_ISO, str(int(EXPIRES.timestamp()))):
        proc = cli("jam", "token", "create", "--expires-at", sent, env=env)
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["expires_at"] == "2031-01-02T03:04:05Z"
    # The admin hook, on the server's store (the config names it).
    for sent in ("2031-01-02T03:04:05", EXPIRES_ISO, str(int(EXPIRES.timestamp()))):
        proc = cli("tokens", "create", a.account_id, "--expires-at", sent,
                   "--config", str(srv.config))
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["expires_at"] == "2031-01-02T03:04:05Z"
    proc = cli("tokens", "create", a.account_id, "--expires-at", "someday",
               "--config", str(srv.config))
    assert proc.returncode == 2 and "ISO 8601" in proc.stderr


# -- serving ---------------------------------------------------------------------------------

def _wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("server did not start:\n" + log.read_text())


def test_make_run_port_serves_there_and_a_taken_port_is_one_clear_line(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAMHOST_")}
    # make runs in the repository: keep its store out of there.
    env["JAMHOST_RUNTIME__JAM__SQLITE_PATH"] = str(tmp_path / "jamhost.db")
    # `make run` with the venv already made (VENV: this interpreter's).
    venv = Path(sys.executable).parent.parent
    log = tmp_path / "make.log"
    proc = subprocess.Popen(["make", "-s", "-C", str(REPO), "run", f"PORT={port}",
                             "HOST=127.0.0.1", f"VENV={venv}"], env=env, cwd=tmp_path,
                            stdout=log.open("wb"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        _wait_healthy(f"http://127.0.0.1:{port}", proc, log)
        # A second server on the same port: one line, naming the option.
        second = cli("serve", "--port", str(port), cwd=tmp_path)
        assert second.returncode == 2
        lines = [ln for ln in second.stderr.splitlines() if ln.strip()
                 and not ln.startswith("{")]
        assert len(lines) == 1, second.stderr
        assert f"port {port}" in lines[0] and "--port" in lines[0], lines[0]
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


# -- admin commands --------------------------------------------------------------------------

def test_admin_refuses_a_new_store_file_unless_asked(tmp_path: Path) -> None:
    proc = cli("accounts", "create", "alice", cwd=tmp_path)
    assert proc.returncode == 2
    assert "no store at" in proc.stderr and "--create" in proc.stderr
    assert not (tmp_path / "jamhost.db").exists()
    proc = cli("--create", "accounts", "create", "alice", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["name"] == "alice"
    assert proc.stderr == ""  # the audit line went to the audit log, not here
    assert (tmp_path / "jamhost.db").exists()
    # Now it exists: no flag needed; --verbose prints the log lines too.
    proc = cli("--verbose", "accounts", "create", "bob", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert '"action": "account.created"' in proc.stderr
    audit = cli("audit", cwd=tmp_path)
    assert [e["action"] for e in json.loads(audit.stdout)["items"]].count(
        "account.created") == 2
    # A config that names the file may create it.
    config = write_config(tmp_path / "named.toml", store="sqlite",
                          sqlite_path=str(tmp_path / "other.db"))
    proc = cli("accounts", "list", "--config", str(config), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "other.db").exists()


def test_demo_prints_a_summary_and_json_on_request(tmp_path: Path) -> None:
    proc = cli("demo", cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert len(out.splitlines()) < 15, out
    assert "count = 3" in out and "'greeting' = 'hello'" in out and "sum = " in out
    assert "3 applied" in out and "Every receipt chain verified." in out
    assert proc.stderr == ""
    full = cli("demo", "--json", cwd=tmp_path, timeout=300)
    doc = json.loads(full.stdout)
    assert set(doc["services"]) == {"counter", "kvstore", "compute"}
    assert all(s["chain_holds"] for s in doc["services"].values())


# -- workers ---------------------------------------------------------------------------------

def test_worker_logs_start_stop_and_packages_and_wait_hints_at_no_worker(
        tmp_path: Path) -> None:
    from jamhost.examples import counter

    srv = start_server(tmp_path / "srv", **NO_LIMITS)
    try:
        t = make_tenant(srv, "worker-logs", code=counter.build())
        env = {"JAMHOST_URL": srv.url, "JAMHOST_TOKEN": t.token}
        pkg = tmp_path / "p.json"
        pkg.write_text(json.dumps(simple_package(t.service_id, b"\x01", 100_000)))
        waited = cli("jam", "package", "--file", str(pkg), "--wait", "--timeout", "1", env=env)
        assert waited.returncode == 1
        assert "no worker has claimed it" in waited.stderr, waited.stderr
        assert "jamhost worker" in waited.stderr
        log = tmp_path / "worker.log"
        base = {k: v for k, v in os.environ.items() if not k.startswith("JAMHOST_")}
        worker = subprocess.Popen([sys.executable, "-m", "jamhost.cli.main", "worker",
                                   "--config", str(srv.config)], cwd=srv.config.parent,
                                  env=base, stdout=log.open("wb"), stderr=subprocess.STDOUT)
        try:
            with srv.client(t.token) as c:
                pid = c.get("/jam/packages").json()["items"][0]["id"]
                deadline = time.monotonic() + 120
                while c.get(f"/jam/packages/{pid}").json()["status"] != "applied":
                    assert time.monotonic() < deadline, log.read_text()
                    time.sleep(0.2)
        finally:
            worker.send_signal(signal.SIGTERM)
            worker.wait(timeout=60)
        events = [json.loads(line) for line in log.read_text().splitlines()
                  if line.startswith("{")]
        names = [(e["event"], e["level"]) for e in events]
        assert ("worker started", "info") in names, names
        assert ("package finished", "info") in names, names
        assert names[-1] == ("worker stopped", "info"), names
    finally:
        srv.stop()


# -- tools -----------------------------------------------------------------------------------

def test_pvm_test_accepts_the_vectors_folder() -> None:
    folder = vectors_dir() / "pvm"
    assert (folder / "schema.json").exists() and (folder / "programs").is_dir()
    proc = cli("pvm", "test", str(folder), timeout=300)
    last = proc.stdout.strip().splitlines()[-1]
    passed = int(last.split()[0])
    assert passed > 250, proc.stdout[-2000:]
    assert "schema" not in proc.stdout


@pytest.mark.parametrize("name", ["counter", "kvstore", "compute"])
def test_example_modules_take_help_and_refuse_a_terminal(name: str, tmp_path: Path) -> None:
    module = f"jamhost.examples.{name}"
    helped = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True,
                            text=True, timeout=60)
    assert helped.returncode == 0 and f"Example service `{name}`" in helped.stdout
    assert "\x00" not in helped.stdout
    out = tmp_path / f"{name}.pvm"
    with out.open("wb") as f:
        assert subprocess.run([sys.executable, "-m", module], stdout=f,
                              timeout=60).returncode == 0
    assert out.stat().st_size > 100
    primary, secondary = pty.openpty()  # stdout a terminal, as in an interactive shell
    try:
        tty = subprocess.run([sys.executable, "-m", module], stdout=secondary,
                             stderr=subprocess.PIPE, timeout=60)
    finally:
        os.close(secondary)
    os.set_blocking(primary, False)
    try:
        written = os.read(primary, 65536)
    except (BlockingIOError, OSError):
        written = b""
    os.close(primary)
    assert tty.returncode == 2 and b"terminal" in tty.stderr
    assert written == b""


def _commands() -> list[tuple[list[str], Any]]:
    sys.path.insert(0, str(REPO / "scripts"))
    import gen_cli_docs

    return list(gen_cli_docs.walk(gen_cli_docs.root(), ["jamhost"]))


def test_every_command_and_option_has_help_and_flags_show_as_flags() -> None:
    missing = []
    for path, cmd in _commands():
        if not (cmd.help or "").strip():
            missing.append(" ".join(path))
        for p in cmd.params:
            if p.name != "help" and not (getattr(p, "help", None) or "").strip():
                missing.append(f"{' '.join(path)} {p.name}")
    assert not missing, missing
    for args in (["--help"], ["jam", "package", "--help"], ["quotas", "set", "--help"],
                 ["demo", "--help"]):
        proc = cli(*args)
        assert proc.returncode == 0 and "<bool>" not in proc.stdout, proc.stdout
    assert "  --wait " in cli("jam", "package", "--help").stdout


def test_serve_port_option_is_documented_in_readme() -> None:
    readme = (REPO / "README.md").read_text()
    assert "make run PORT=" in readme and "--port" in readme
