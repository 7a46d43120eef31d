"""Client of anan_runner.mjs: the reference PVM @fluffylabs/anan-as 1.2.0 through node.

One node process answers many requests (JSON lines), so a test session or a benchmark pays
node's start-up once. Used by the differential tests and by bench/bench_pvm.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
RUNNER = Path(__file__).resolve().parent / "anan_runner.mjs"
PACKAGE = Path("node_modules") / "@fluffylabs" / "anan-as"


def anan_dir() -> Path:
    """JAMHOST_ANAN_AS_DIR (set by the Makefile) or <repo>/.cache/anan-as."""
    return Path(os.environ.get("JAMHOST_ANAN_AS_DIR", REPO / ".cache" / "anan-as"))


class AnanUnavailable(RuntimeError):
    pass


class AnanAs:
    def __init__(self, directory: Path | None = None) -> None:
        directory = directory or anan_dir()
        node = shutil.which("node")
        if node is None:
            raise AnanUnavailable("node is not installed (run: bash scripts/ensure-anan-as.sh)")
        if not (directory / PACKAGE / "package.json").is_file():
            raise AnanUnavailable(
                f"@fluffylabs/anan-as is not installed in {directory} "
                "(run: bash scripts/ensure-anan-as.sh)"
            )
        version = json.loads((directory / PACKAGE / "package.json").read_text())["version"]
        if version != "1.2.0":
            raise AnanUnavailable(f"anan-as {version} found, 1.2.0 expected")
        self.version = version
        self._proc = subprocess.Popen(
            [node, str(RUNNER), str(directory)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )

    def request(self, req: dict[str, Any]) -> dict[str, Any]:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write(json.dumps(req) + "\n")
        self._proc.stdin.flush()
        while True:
            line = self._proc.stdout.readline()
            if not line:
                raise RuntimeError(f"anan-as runner exited ({self._proc.poll()})")
            if line.startswith("@@"):
                out = json.loads(line[2:])
                if "error" in out:
                    raise RuntimeError("anan-as runner: " + out["error"])
                return out

    def run(
        self,
        program: bytes,
        *,
        regs: list[int],
        pc: int,
        gas: int,
        pages: list[tuple[int, int, bool]],
        memory: list[tuple[int, bytes]],
    ) -> dict[str, Any]:
        """Run one program; gas/regs come back as ints, memory as {address: octet} (non-zero)."""
        out = self.request(
            {
                "op": "run",
                "program": program.hex(),
                "regs": [str(r) for r in regs],
                "pc": pc,
                "gas": str(gas),
                "pages": [list(p) for p in pages],
                "memory": [[a, d.hex()] for a, d in memory],
            }
        )
        flat: dict[int, int] = {}
        for address, hexdata in out["memory"]:
            for i, byte in enumerate(bytes.fromhex(hexdata)):
                if byte:
                    flat[address + i] = byte
        return {
            "status": out["status"],
            "pc": out["pc"],
            "gas": int(out["gas"]),
            "regs": [int(r) for r in out["regs"]],
            "memory": flat,
            "exit": out["exit"],
        }

    def bench(self, req: dict[str, Any], repeat: int) -> dict[str, Any]:
        return self.request({**req, "op": "bench", "repeat": repeat})

    def close(self) -> None:
        if self._proc.stdin:
            self._proc.stdin.close()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
