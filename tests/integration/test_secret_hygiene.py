"""SPEC §6.2: no raw token in any log line, metric, error body or store row.

One full run on a real server and PostgreSQL: accounts and tokens (scoped, expiring), use of
every token, delegation by token and by accessor, revocation, refusals with bad, revoked and
token-shaped tokens (also put into paths and query strings), delegates seeded from the config
across a restart, admin commands on the store. Then every log line of every process, /metrics,
every error body, the audit log, and every row of every table of the database (bytes both as hex
and as latin-1) are searched for each secret, and for the `token_hmac_key` of the config.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import psycopg
from psycopg import sql

from tests.conftest import OPERATOR_TOKEN, make_tenant, simple_package, start_server


def blake(data: bytes) -> str:
    return "0x" + hashlib.blake2b(data, digest_size=32).hexdigest()


def dump_database(dsn: str) -> list[str]:
    """Every row of every table of the public schema, each value stringified; bytes twice."""
    out: list[str] = []
    with psycopg.connect(dsn) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'public' AND table_type = 'BASE TABLE'")]
        assert "jam_tokens" in tables and "jam_service_delegates" in tables, tables
        for table in tables:
            for row in conn.execute(sql.SQL("SELECT * FROM {}").format(sql.Identifier(table))):
                for value in row:
                    if isinstance(value, memoryview):
                        value = bytes(value)
                    if isinstance(value, bytes):
                        out.append(f"{table}: {value.hex()}")
                        out.append(f"{table}: {value.decode('latin-1')}")
                    else:
                        out.append(f"{table}: {value}")
    return out


def run_cli(tmp: Path, config: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAMHOST_")}
    proc = subprocess.run([sys.executable, "-m", "jamhost.cli.main", *args, "--config",
                           str(config)], capture_output=True, env=env, cwd=tmp, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    return proc.stdout.decode(errors="replace") + proc.stderr.decode(errors="replace")


def test_no_raw_secret_anywhere(tmp_path, fresh_pg):
    hmac_key = "hmackey-" + secrets.token_hex(24)
    keys = dict(store="postgres", pg_dsn=fresh_pg, token_hmac_key=hmac_key, workers=1)
    secrets_: dict[str, str] = {"operator": OPERATOR_TOKEN, "token_hmac_key": hmac_key}
    bodies: list[str] = []  # every error body and every answer that could echo a token

    def collect(resp) -> None:  # noqa: ANN001
        if resp.status_code >= 400:
            # The answer only (body and headers): the request itself holds the token.
            bodies.append(f"{resp.status_code} {resp.text} {dict(resp.headers)}")

    srv = start_server(tmp_path / "a", **keys)
    logs: list[str] = []
    try:
        alice = make_tenant(srv, "alice")
        bob = make_tenant(srv, "bob")
        secrets_["alice"] = alice.token
        secrets_["bob"] = bob.token
        with srv.op() as op:
            carol = op.post("/jam/accounts", json={"name": "carol"}).json()
            extra = {}
            for name, body in {"reader": {"name": "r", "scopes": ["read"]},
                               "doomed": {"name": "d"},
                               "carol": {"name": "c"}}.items():
                acc = carol["id"] if name == "carol" else alice.account_id
                r = op.post(f"/jam/accounts/{acc}/tokens", json=body)
                assert r.status_code == 201, r.text
                extra[name] = r.json()
                secrets_[name] = r.json()["token"]
        # The raw-string delegate token, granted by `{token}`; carol's by `{accessor}`.
        raw_delegate = "delegate-" + secrets.token_urlsafe(24)
        secrets_["raw_delegate"] = raw_delegate
        with srv.client(alice.token) as c:
            r = c.post(f"/jam/services/{alice.service_id}/delegates",
                       json={"token": raw_delegate, "role": "submitter"})
            assert r.status_code == 201, r.text
            r = c.post(f"/jam/services/{alice.service_id}/delegates",
                       json={"accessor": extra["carol"]["accessor"], "role": "reader"})
            assert r.status_code == 201, r.text
            for resp in (c.get(f"/jam/services/{alice.service_id}/delegates"),
                         c.get(f"/jam/accounts/{alice.account_id}/tokens")):
                assert resp.status_code == 200
                bodies.append(resp.text)  # listings must not show secrets either
            ids = []
            for i in range(3):
                r = c.post("/jam/packages", json=simple_package(alice.service_id, bytes([i])))
                assert r.status_code == 201, r.text
                ids.append(r.json()["id"])
            blob = b"hygiene " + secrets.token_bytes(16)
            r = c.put(f"/jam/preimages/{blake(blob)}", content=blob,
                      params={"service_id": alice.service_id})
            assert r.status_code == 201, r.text
        with srv.client(raw_delegate) as d:
            r = d.post("/jam/packages", json=simple_package(alice.service_id, b"by delegate"))
            assert r.status_code == 201, r.text
            collect(d.get(f"/jam/services/{bob.service_id}"))
        with srv.client(secrets_["carol"]) as c:
            assert c.get(f"/jam/packages/{ids[0]}").status_code == 200
            collect(c.post("/jam/packages", json=simple_package(alice.service_id, b"no")))
        with srv.client(secrets_["reader"]) as c:
            collect(c.post("/jam/packages", json=simple_package(alice.service_id, b"ro")))
        # Made just before its use: made with the others, a loaded machine could spend its
        # 3 s before the first request below.
        with srv.op() as op:
            r = op.post(f"/jam/accounts/{alice.account_id}/tokens",
                        json={"name": "e", "expires_at": int(time.time()) + 3})
            assert r.status_code == 201, r.text
            secrets_["expiring"] = r.json()["token"]
        with srv.client(secrets_["expiring"]) as c:
            assert c.get("/jam/accounts/me").status_code == 200
            deadline = time.monotonic() + 30
            while (r := c.get("/jam/accounts/me")).status_code == 200:
                assert time.monotonic() < deadline, "the token never expired"
                time.sleep(0.2)
            assert r.status_code == 401
            collect(r)
        # Revoke, then use the revoked token everywhere.
        with srv.client(alice.token) as c:
            r = c.delete(f"/jam/accounts/{alice.account_id}/tokens/{extra['doomed']['accessor']}")
            assert r.status_code == 204, r.text
        with srv.client(secrets_["doomed"]) as c:
            r = c.get("/jam/accounts/me")
            assert r.status_code == 401
            collect(r)
        # Bad tokens of every shape, and tokens where a token does not belong.
        fake = f"jam_{secrets.token_hex(8)}_{secrets.token_hex(32)}"
        secrets_["fake"] = fake
        for bad in (fake, "garbage", alice.token + "x", OPERATOR_TOKEN[:-1], raw_delegate * 2):
            with srv.client(bad) as c:
                for resp in (c.get("/jam/accounts/me"), c.get("/system/status"),
                             c.post("/jam/packages", json=simple_package(alice.service_id))):
                    assert resp.status_code == 401, resp.text
                    collect(resp)
        with srv.client(bob.token) as c:
            for tok in (alice.token, OPERATOR_TOKEN, raw_delegate, fake):
                for resp in (c.get(f"/jam/packages/{tok}"),
                             c.get("/jam/packages", params={"service_id": tok}),
                             c.get(f"/jam/preimages/{tok}"),
                             c.get(f"/jam/services/{tok}"),
                             c.delete(f"/jam/accounts/{alice.account_id}/tokens/{tok}"),
                             c.post(f"/jam/services/{alice.service_id}/delegates",
                                    json={"token": tok}),
                             c.post(f"/jam/services/{bob.service_id}/delegates",
                                    json={"accessor": tok}),
                             c.post("/jam/accounts", json={"name": tok}),
                             c.post("/jam/packages", content=tok.encode(),
                                    headers={"Content-Type": "application/json"}),
                             c.post("/jam/packages", content=tok.encode(),
                                    headers={"Content-Type": "application/octet-stream"})):
                    assert resp.status_code < 500, resp.text
                    collect(resp)
        with srv.client() as c:
            collect(c.get("/jam/accounts/me",
                          headers={"Authorization": f"Basic {OPERATOR_TOKEN}"}))
        with srv.op() as op:
            audit = op.get("/jam/audit", params={"limit": 500})
            assert audit.status_code == 200
            bodies.append(audit.text)
            bodies.append(op.get("/system/status").text)
    finally:
        srv.stop()
        logs.append(srv.logs())

    # Restart with delegates seeded from the config: the seeded token works, and is a secret.
    seeded = "seeded-" + secrets.token_urlsafe(24)
    secrets_["seeded"] = seeded
    srv2 = start_server(tmp_path / "b", service_delegates={str(alice.service_id): [seeded]},
                        **keys)
    try:
        with srv2.client(seeded) as c:
            r = c.post("/jam/packages", json=simple_package(alice.service_id, b"seeded"))
            assert r.status_code == 201, r.text
            collect(c.get(f"/jam/services/{bob.service_id}"))
        with srv2.client(alice.token) as c:
            listed = c.get(f"/jam/services/{alice.service_id}/delegates").json()["items"]
            assert len(listed) == 3  # raw token, carol's accessor, the seeded one
            bodies.append(json.dumps(listed))
        metrics = httpx_get(srv2.url + "/metrics")
        cli_out = [run_cli(tmp_path, srv2.config, "reconcile"),
                   run_cli(tmp_path, srv2.config, "audit", "--limit", "1000"),
                   run_cli(tmp_path, srv2.config, "delegates", "list", str(alice.service_id))]
    finally:
        srv2.stop()
        logs.append(srv2.logs())

    rows = dump_database(fresh_pg)
    assert any("jam_service_delegates" in r for r in rows)
    log_text = "\n".join(logs)
    assert '"request"' in log_text and '"token_hash"' in log_text  # the logs were written
    assert "jam_unauthenticated" in "\n".join(bodies)  # errors were collected
    places = {"logs": log_text.splitlines(), "metrics": metrics.splitlines(),
              "error bodies": bodies, "cli output": "\n".join(cli_out).splitlines(),
              "store rows": rows}
    found = []
    for what, secret in secrets_.items():
        needles = {secret, secret.encode().hex()}
        for place, lines in places.items():
            for line in lines:
                if any(n in line for n in needles):
                    found.append(f"{what} in {place}: {line[:300]}")
                    break
    assert not found, "\n".join(found)


def httpx_get(url: str) -> str:
    import httpx

    r = httpx.get(url, timeout=30)
    assert r.status_code == 200
    return r.text
