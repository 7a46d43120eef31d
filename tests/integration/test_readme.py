"""The README's "Five minutes with jamhost" walkthrough, run as a reader would run it.

`jamhost serve` (what `make run` starts) runs from a fresh temporary working directory with
its default configuration (embedded store `./jamhost.db`, in-process workers), on a free port;
every fenced `sh` block of the section then runs, in order, in one bash session from that same
directory, with the venv's bin on PATH and `JAMHOST_URL` pointing at the server, the one
variable a reader on another port would set too. The blocks are taken from README.md as it
is: a change that breaks the walkthrough fails here.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO, free_port

SECTION = "## Five minutes with jamhost"


def walkthrough_blocks() -> list[str]:
    text = (REPO / "README.md").read_text()
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    section = text[start:end if end != -1 else len(text)]
    return re.findall(r"^```sh\n(.*?)^```", section, re.S | re.M)


def python_blocks() -> list[str]:
    text = (REPO / "README.md").read_text()
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    return re.findall(r"^```python\n(.*?)^```", text[start:end], re.S | re.M)


def test_walkthrough_has_shell_blocks() -> None:
    blocks = walkthrough_blocks()
    assert len(blocks) >= 2
    assert any("jamhost jam package" in b for b in blocks)


@pytest.fixture
def served(tmp_path: Path):
    bin_dir = Path(sys.executable).parent
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAMHOST_")}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    port = free_port()
    log = (tmp_path / "server.log").open("wb")
    proc = subprocess.Popen([str(bin_dir / "jamhost"), "serve", "--port", str(port)],
                            cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None, (tmp_path / "server.log").read_text()
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.1)
    yield url, env
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def test_walkthrough_runs(served: tuple[str, dict[str, str]], tmp_path: Path) -> None:
    url, env = served
    env = {**env, "JAMHOST_URL": url}
    blocks = walkthrough_blocks()
    # One session; each block's output is framed so it can be checked on its own.
    script = ["set -euo pipefail"]
    for i, block in enumerate(blocks):
        script += [f"echo '::block {i}::'", block]
    # The Python snippet runs in the same session, as a reader pasting it would run it.
    for snippet in python_blocks():
        script += ["echo '::python::'", f"python3 - <<'PY'\n{snippet}PY"]
    script += ["echo '::end::'", 'echo "SERVICE=$SERVICE"']
    proc = subprocess.run(["bash", "-c", "\n".join(script)], cwd=tmp_path, env=env,
                          capture_output=True, timeout=300)
    out, err = proc.stdout.decode(), proc.stderr.decode()
    assert proc.returncode == 0, f"walkthrough failed:\n--- stdout\n{out}\n--- stderr\n{err}"
    assert "::end::" in out

    service = int(re.search(r"^SERVICE=(\d+)$", out, re.M).group(1))  # type: ignore[union-attr]
    assert service >= 65536
    # The first block: `jamhost jam status` answered as the tenant's token.
    first = out.split("::block 0::")[1].split("::block 1::")[0]
    assert json.loads(first)["caller"]["kind"] == "account"
    # Then the state the walkthrough promises, read back from the server.
    token = re.search(r'"token": "(jam_[^"]+)"', out)
    assert token is None, "the token must not be printed by the walkthrough"
    assert '"created": false' in out and "applied" in out
    assert '"holds": true' in out and '"entry_type": "report"' in out
    assert '"value": "0x0100000000000000"' in out
    # The Python snippet submitted a new package (not the walkthrough's again) and listed.
    python_out = out.split("::python::")[1].split("::end::")[0]
    assert re.search(r"^submitted 0x[0-9a-f]{64} pending$", python_out, re.M), python_out
    assert re.search(r"^0x[0-9a-f]{64} applied$", python_out, re.M), python_out
    db = tmp_path / "jamhost.db"
    assert db.is_file(), "the admin hooks and the server share ./jamhost.db"
    assert (tmp_path / "counter.pvm").stat().st_size > 0
