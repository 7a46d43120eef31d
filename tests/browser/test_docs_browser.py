"""`/docs` in a real browser: Debian's headless chromium, driven by playwright-core, loads the
page from a real `jamhost serve` with every request beyond the server refused, and Swagger UI
lists every operation of the OpenAPI document, with the Authorize button of the bearer scheme.

`make test` installs chromium and playwright-core (scripts/ensure-browser.sh); missing either
is a failure, not a skip: a silently skipped browser test proves nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO, start_server

SCRIPT = Path(__file__).with_name("docs_page.mjs")


def browser_dir() -> Path:
    return Path(os.environ.get("JAMHOST_BROWSER_DIR", REPO / ".cache" / "browser"))


def test_docs_page_lists_the_operations_offline(tmp_path: Path) -> None:
    if not Path("/usr/bin/chromium").exists() or shutil.which("node") is None or \
            not (browser_dir() / "node_modules" / "playwright-core").is_dir():
        pytest.fail("chromium, node or playwright-core missing: run scripts/ensure-browser.sh")
    srv = start_server(tmp_path / "srv")
    try:
        doc = httpx.get(srv.url + "/openapi.json").json()
        expected = {(m.upper(), p) for p, item in doc["paths"].items() for m in item}
        env = {k: v for k, v in os.environ.items() if not k.startswith("JAMHOST_")}
        env["HOME"] = str(tmp_path)  # chromium's profile and crash dumps stay in the test dir
        proc = subprocess.run(["node", str(SCRIPT), str(browser_dir()), srv.url],
                              capture_output=True, text=True, timeout=240, env=env)
        assert proc.returncode == 0, proc.stderr[-3000:]
        seen = json.loads(proc.stdout.strip().splitlines()[-1])
    finally:
        srv.stop()
    assert seen["outside"] == [], seen["outside"]
    assert seen["title"] == "jamhost API"
    assert seen["authorize"] >= 1
    listed = {(o["method"].upper(), o["path"].replace("\u200b", "")) for o in seen["operations"]}
    assert listed == expected, (sorted(expected - listed), sorted(listed - expected))
