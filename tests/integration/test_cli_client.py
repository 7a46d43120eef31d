"""`jamhost jam ...` as a subprocess against a real server: outputs and the exit codes scripts
rely on (0 done, 1 refused, 2 usage or input error, 3 unreachable)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jamhost.client import file_hash, preimage_hash
from jamhost.examples import counter
from tests.conftest import Server, free_port, make_tenant, simple_package, start_server


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # one in-process worker, so that `package --wait` sees packages applied
    s = start_server(tmp_path_factory.mktemp("cli"), workers=1, rate_limit_per_minute=0,
                     service_rate_limit_per_minute=0, account_rate_limit_per_minute=0)
    yield s
    s.stop()


def jam(srv_url: str, token: str | None, *args: str, stdin: bytes | None = None,
        cwd: Path | None = None) -> tuple[int, Any, str]:
    """Run `jamhost ARGS...`; return (exit code, stdout parsed as JSON if it is, stderr)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAMHOST_")}
    env["JAMHOST_URL"] = srv_url
    if token:
        env["JAMHOST_TOKEN"] = token
    proc = subprocess.run([sys.executable, "-m", "jamhost.cli.main", *args], input=stdin,
                          capture_output=True, env=env, cwd=cwd, timeout=120)
    out = proc.stdout.decode()
    try:
        parsed: Any = json.loads(out)
    except ValueError:
        parsed = out
    return proc.returncode, parsed, proc.stderr.decode()


def _error(stderr: str) -> dict[str, Any]:
    """The JSON error body: the last stderr line that is a JSON object with a `code`."""
    for line in reversed(stderr.strip().splitlines()):
        try:
            body = json.loads(line)
        except ValueError:
            continue
        if isinstance(body, dict) and "code" in body and "error" in body:
            return body
    raise AssertionError(f"no JSON error body on stderr:\n{stderr}")


def test_tenant_journey(srv: Server, tmp_path: Path) -> None:
    t = make_tenant(srv, "cli-journey")
    url, tok = srv.url, t.token
    code = tmp_path / "counter.pvm"
    code.write_bytes(counter.build())

    rc, svc, err = jam(url, tok, "jam", "service", "create", "--code", str(code))
    assert rc == 0, err
    sid = svc["service_id"]
    assert svc["code_hash"].startswith("0x") and svc["owner"] == t.account_id

    rc, out, err = jam(url, tok, "jam", "service", "list", "--table")
    assert rc == 0 and str(sid) in out and "code_hash" in out

    pkg = tmp_path / "package.json"
    pkg.write_text(json.dumps(simple_package(sid, b"\x01", gas=1_000_000)))
    rc, done, err = jam(url, tok, "jam", "package", "--file", str(pkg), "--wait")
    assert rc == 0, err
    assert done["status"] == "applied" and done["created"] is True
    rc, again, _ = jam(url, tok, "jam", "package", "--file", "-", stdin=pkg.read_bytes())
    assert rc == 0 and again["id"] == done["id"] and again["created"] is False

    rc, value, _ = jam(url, tok, "jam", "storage", "get", str(sid), "count", "--text")
    assert rc == 0 and value["value"] == "0x" + (1).to_bytes(8, "little").hex()
    rc, listed, _ = jam(url, tok, "jam", "storage", "list", str(sid), "--prefix", "0x636f")
    assert rc == 0 and [e["key"] for e in listed["items"]] == ["0x" + b"count".hex()]

    rc, verdict, _ = jam(url, tok, "receipts", "verify", str(sid))
    assert rc == 0 and verdict["holds"] is True and verdict["entries"] == 2
    rc, rep, _ = jam(url, tok, "jam", "report", done["id"])
    assert rc == 0 and rep["report_hash"] == done["report_hash"]

    blob = tmp_path / "blob.bin"
    blob.write_bytes(os.urandom(300_000))
    rc, meta, err = jam(url, tok, "jam", "preimage", "--file", str(blob), "--service", str(sid),
                        "--progress")
    assert rc == 0, err
    assert meta["hash"] == file_hash(blob) and meta["size"] == 300_000
    got = tmp_path / "got.bin"
    rc, res, _ = jam(url, tok, "jam", "preimage-get", meta["hash"], "--out", str(got))
    assert rc == 0 and got.read_bytes() == blob.read_bytes() and res["hash"] == meta["hash"]
    rc, m, _ = jam(url, tok, "jam", "preimage-meta", meta["hash"])
    assert rc == 0 and m["service_id"] == sid

    rc, d, _ = jam(url, tok, "jam", "delegate", "add", str(sid), "--delegate-token",
                   "shared-" + "cd" * 16, "--role", "reader")
    assert rc == 0 and d["role"] == "reader"
    rc, ds, _ = jam(url, tok, "jam", "delegate", "list", str(sid))
    assert rc == 0 and [x["id"] for x in ds["items"]] == [d["id"]]
    rc, _, _ = jam(url, tok, "jam", "delegate", "remove", str(sid), str(d["id"]))
    assert rc == 0

    rc, q, _ = jam(url, tok, "jam", "quota", str(sid))
    assert rc == 0 and q["usage"]["storage_bytes"] >= 300_000


def test_bulk_submission(srv: Server, tmp_path: Path) -> None:
    a = make_tenant(srv, "cli-bulk-a", counter.build())
    b = make_tenant(srv, "cli-bulk-b", counter.build())
    lines = [simple_package(a.service_id, bytes([i])) for i in range(4)]
    lines.append(simple_package(a.service_id, bytes([0])))      # the same as line 1
    lines.append(simple_package(b.service_id, b"\x07"))          # not a's service: 403
    lines.append({"service_id": a.service_id, "items": []})      # 400
    path = tmp_path / "packages.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n\n")

    rc, summary, err = jam(srv.url, a.token, "jam", "bulk", "--file", str(path))
    assert rc == 1, err
    assert {k: summary[k] for k in ("lines", "accepted", "existing", "refused")} == {
        "lines": 7, "accepted": 4, "existing": 1, "refused": 2}
    assert [(r["line"], r["status"], r["code"]) for r in summary["refusals"]] == [
        (6, 403, "jam_authz"), (7, 400, "jam_bad_request")]

    # all lines accepted or existing: exit 0
    good = tmp_path / "good.jsonl"
    good.write_text("\n".join(json.dumps(x) for x in lines[:2]))
    rc, summary, _ = jam(srv.url, a.token, "jam", "bulk", "--file", str(good))
    assert rc == 0 and summary["existing"] == 2 and summary["refused"] == 0

    # a line that is not JSON: exit 2, nothing sent
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(simple_package(a.service_id, b"\x55")) + "\n{nope\n")
    rc, _, err = jam(srv.url, a.token, "jam", "bulk", "--file", str(bad))
    assert rc == 2 and "line 2" in _error(err)["error"]
    rc, listed, _ = jam(srv.url, a.token, "jam", "packages", "--service", str(a.service_id),
                        "--limit", "500")
    assert rc == 0 and len(listed["items"]) == 4


def test_bulk_waits_out_429_and_retries(tmp_path: Path) -> None:
    """A service limited to 3 submissions a window: 5 lines are all accepted, 2 of them after
    waiting out the 429's Retry-After (without the retry, `bulk` would refuse them: exit 1).
    The window is the test-only 2 s one, so the wait costs seconds, not a minute."""
    s = start_server(tmp_path / "limited", rate_limit_per_minute=0,
                     service_rate_limit_per_minute=3,
                     extra_env={"JAMHOST_TEST_RATE_WINDOW_SECONDS": "2"})
    try:
        t = make_tenant(s, "cli-bulk-limited")
        path = tmp_path / "five.jsonl"
        path.write_text("\n".join(json.dumps(simple_package(t.service_id, bytes([0x40 + i])))
                                  for i in range(5)))
        rc, summary, err = jam(s.url, t.token, "jam", "bulk", "--file", str(path),
                               "--concurrency", "5")
        assert rc == 0, err
        assert {k: summary[k] for k in ("lines", "accepted", "refused")} == {
            "lines": 5, "accepted": 5, "refused": 0}
        assert _answered_429(s)  # the limit did bite: the retry is what got all 5 in
    finally:
        s.stop()


def _answered_429(s: Server) -> bool:
    """Whether the server's request log has a line with status 429."""
    for line in s.logs().splitlines():
        try:
            if json.loads(line).get("status") == 429:
                return True
        except ValueError:
            continue
    return False


def test_accumulation_command(srv: Server, tmp_path: Path) -> None:
    """`jamhost jam accumulation ID` shows a real service's status, gas and logs; another
    tenant's package is refused exactly as a missing one."""
    from jamhost.engine.constants import HostCall
    from jamhost.examples._asm import script

    message = b"counted one more"
    code = script([(HostCall.LOG, {7: 2, 8: b"cli", 9: 3, 10: message, 11: len(message)})])
    t = make_tenant(srv, "cli-acc", code=code)
    other = make_tenant(srv, "cli-acc-other")
    pkg = tmp_path / "package.json"
    pkg.write_text(json.dumps(simple_package(t.service_id, b"\x05", gas=100_000)))
    rc, done, err = jam(srv.url, t.token, "jam", "package", "--file", str(pkg), "--wait")
    assert rc == 0 and done["status"] == "applied", err

    rc, acc, err = jam(srv.url, t.token, "jam", "accumulation", done["id"])
    assert rc == 0, err
    assert acc["status"] == "halt" and acc["package_id"] == done["id"]
    assert 0 < acc["gas_used"] <= acc["gas_limit"] == 100_000
    assert [line for line in acc["logs"] if "counted one more" in line]
    rc, runs, _ = jam(srv.url, t.token, "jam", "accumulations", str(t.service_id))
    assert rc == 0 and [r["package_id"] for r in runs["items"]] == [done["id"]]

    rc, _, theirs = jam(srv.url, other.token, "jam", "accumulation", done["id"])
    rc2, _, missing = jam(srv.url, other.token, "jam", "accumulation", "0x" + "00" * 32)
    assert rc == rc2 == 1
    assert _error(theirs) == _error(missing) == {"error": "no accumulation for that package",
                                                 "code": "jam_not_found"}


def test_exit_codes(srv: Server, tmp_path: Path) -> None:
    t = make_tenant(srv, "cli-codes")
    other = make_tenant(srv, "cli-codes-other")
    # 1: refused, with the server's error body on stderr
    rc, out, err = jam(srv.url, t.token, "jam", "package-show", "0x" + "00" * 32)
    assert rc == 1 and out == ""
    assert _error(err) == {"error": "no such package", "code": "jam_not_found"}
    rc, _, err = jam(srv.url, t.token, "jam", "service", "show", str(other.service_id))
    assert rc == 1 and _error(err)["code"] == "jam_authz"
    rc, _, err = jam(srv.url, "jam_0000_wrong", "jam", "status")
    assert rc == 1 and _error(err)["code"] == "jam_unauthenticated"
    assert "jam_0000_wrong" not in err
    # 2: usage and input errors, nothing sent
    rc, _, err = jam(srv.url, t.token, "jam", "package", "--file", str(tmp_path / "missing"))
    assert rc == 2 and _error(err)["code"] == "usage"
    notjson = tmp_path / "p.json"
    notjson.write_text("{")
    rc, _, _ = jam(srv.url, t.token, "jam", "package", "--file", str(notjson))
    assert rc == 2
    rc, _, _ = jam(srv.url, t.token, "jam", "storage", "get", str(t.service_id), "0xzz")
    assert rc == 2
    rc, _, _ = jam(srv.url, t.token, "jam", "packages", "--no-such-option")
    assert rc == 2
    # 3: nothing listens there
    rc, _, err = jam(f"http://127.0.0.1:{free_port()}", t.token, "jam", "status")
    assert rc == 3 and _error(err)["code"] == "unreachable"


def test_stdin_preimage_and_hash(srv: Server) -> None:
    t = make_tenant(srv, "cli-stdin")
    rc, meta, err = jam(srv.url, t.token, "jam", "preimage", "--file", "-", "--service",
                        str(t.service_id), stdin=b"from stdin")
    assert rc == 0, err
    assert meta["hash"] == preimage_hash(b"from stdin")
