"""Shared fixtures: vector paths, a fresh PostgreSQL database per test worker, real servers.

Integration tests talk to the real PostgreSQL and Redis of the machine (`make test` makes sure
both run) and to `jamhost serve` started as a real process on a loopback port.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[1]
PG_ADMIN_DSN = os.environ.get("JAMHOST_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("JAMHOST_TEST_REDIS", "redis://127.0.0.1:6379/0")
OPERATOR_TOKEN = "operator-" + secrets.token_hex(16)


def vectors_dir() -> Path:
    return Path(os.environ.get("JAMHOST_VECTORS_DIR", REPO.parent / "shared" / "vectors"))


@pytest.fixture(scope="session")
def vectors() -> Path:
    path = vectors_dir()
    assert path.is_dir(), f"test vectors not found at {path}"
    return path


# -- PostgreSQL -----------------------------------------------------------------------------

def _pg_admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(sql)


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A throw-away database on the real server; returns its DSN."""
    name = f"jamhost_t_{uuid.uuid4().hex[:12]}"
    _pg_admin(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_DSN.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def fresh_pg() -> Iterator[str]:
    """A database of its own for one test (cheap enough: CREATE DATABASE from template0)."""
    name = f"jamhost_t_{uuid.uuid4().hex[:12]}"
    _pg_admin(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_DSN.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# -- real servers ---------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f'"{k}" = {toml_value(v)}' for k, v in value.items()) + "}"
    raise TypeError(type(value))


def write_config(path: Path, **keys: object) -> Path:
    lines = ["[runtime.jam]"] + [f"{k} = {toml_value(v)}" for k, v in keys.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


@dataclass
class Server:
    """A `jamhost serve` process on a loopback port."""

    url: str
    config: Path
    proc: subprocess.Popen[bytes]
    log: Path
    operator_token: str = OPERATOR_TOKEN
    env: dict[str, str] = field(default_factory=dict)

    def client(self, token: str | None = None, **kw: object) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30, **kw)  # type: ignore[arg-type]

    def op(self) -> httpx.Client:
        return self.client(self.operator_token)

    def stop(self, sig_kill: bool = False) -> None:
        if self.proc.poll() is None:
            (self.proc.kill if sig_kill else self.proc.terminate)()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def logs(self) -> str:
        return self.log.read_text(errors="replace")


def start_server(tmp: Path, *, command: str = "serve", port: int | None = None,
                 extra_env: dict[str, str] | None = None, **keys: object) -> Server:
    keys.setdefault("allowed_tokens", [OPERATOR_TOKEN])
    keys.setdefault("store", "sqlite")
    if keys["store"] == "sqlite":
        keys.setdefault("sqlite_path", str(tmp / "jamhost.db"))
    keys.setdefault("workers", 0)
    tmp.mkdir(parents=True, exist_ok=True)
    config = write_config(tmp / f"jamhost-{uuid.uuid4().hex[:6]}.toml", **keys)
    port = port or free_port()
    log = tmp / f"server-{port}.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAMHOST_")}
    env.update(extra_env or {})
    args = [sys.executable, "-m", "jamhost.cli.main", command, "--config", str(config)]
    if command == "serve":
        args += ["--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(args, stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env,
                            cwd=tmp)
    server = Server(url=f"http://127.0.0.1:{port}", config=config, proc=proc, log=log, env=env)
    if command != "serve":
        return server
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early:\n{server.logs()}")
        try:
            if httpx.get(server.url + "/healthz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    server.stop(sig_kill=True)
    raise RuntimeError(f"server did not start:\n{server.logs()}")


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[object]:
    started: list[Server] = []

    def factory(**keys: object) -> Server:
        s = start_server(tmp_path / f"srv{len(started)}", **keys)
        started.append(s)
        return s

    yield factory
    for s in started:
        s.stop()


@pytest.fixture(params=["sqlite", "postgres"])
def store_keys(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, object]:
    """Config keys for a fresh store of each SQL kind (a new PostgreSQL database per test)."""
    if request.param == "sqlite":
        return {"store": "sqlite", "sqlite_path": str(tmp_path / "store.db")}
    name = f"jamhost_t_{uuid.uuid4().hex[:12]}"
    _pg_admin(f'CREATE DATABASE "{name}"')
    request.addfinalizer(lambda: _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    return {"store": "postgres", "pg_dsn": f"{PG_ADMIN_DSN.rsplit('/', 1)[0]}/{name}"}


# -- tenants --------------------------------------------------------------------------------

@dataclass
class Tenant:
    account_id: str
    token: str
    accessor: str
    service_id: int


def make_tenant(server: Server, name: str, code: bytes | None = None) -> Tenant:
    with server.op() as op:
        acc = op.post("/jam/accounts", json={"name": name})
        assert acc.status_code == 201, acc.text
        account_id = acc.json()["id"]
        tok = op.post(f"/jam/accounts/{account_id}/tokens", json={"name": "main"})
        assert tok.status_code == 201, tok.text
    token = tok.json()["token"]
    with server.client(token) as c:
        body = {"code": "0x" + code.hex()} if code is not None else {}
        svc = c.post("/jam/services", json=body)
        assert svc.status_code == 201, svc.text
    return Tenant(account_id, token, tok.json()["accessor"], svc.json()["service_id"])


def simple_package(service_id: int, payload: bytes = b"\x01", gas: int = 1000) -> dict[str, object]:
    return {"service_id": service_id, "items": [
        {"payload": "0x" + payload.hex(), "refine_gas_limit": gas, "accumulate_gas_limit": gas}]}
