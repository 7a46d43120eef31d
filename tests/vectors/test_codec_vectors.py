"""The w3f GP 0.7.0 codec vectors: each .bin decodes to its .json and re-encodes identically.

Vectors are read in place from the shared vectors directory (`<repo>/../shared/vectors`, or
`JAMHOST_VECTORS_DIR`); they are never copied into the repository.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from jamhost.cli.codec_cmds import app
from jamhost.domain.registry import CODEC_TYPES
from jamhost.domain.types import WorkPackage, WorkReport

REPO = Path(__file__).resolve().parents[2]
VECTORS = Path(os.environ.get("JAMHOST_VECTORS_DIR", REPO.parent / "shared" / "vectors"))
CODEC_DIR = VECTORS / "codec"

# (file stem, codec type name)
CASES = [
    ("refine_context", "refine_context"),
    ("work_item", "work_item"),
    ("work_package", "work_package"),
    ("work_result_0", "work_result"),
    ("work_result_1", "work_result"),
    ("work_report", "work_report"),
]
PARAMS = [
    pytest.param(flavour, stem, type_name, id=f"{flavour}-{stem}")
    for flavour in ("tiny", "full")
    for stem, type_name in CASES
]

pytestmark = pytest.mark.skipif(
    not CODEC_DIR.is_dir(), reason=f"codec vectors not found at {CODEC_DIR}"
)


def _load(flavour: str, stem: str) -> tuple[bytes, object]:
    base = CODEC_DIR / flavour / stem
    return base.with_suffix(".bin").read_bytes(), json.loads(base.with_suffix(".json").read_text())


@pytest.mark.parametrize(("flavour", "stem", "type_name"), PARAMS)
def test_bin_decodes_to_json(flavour: str, stem: str, type_name: str) -> None:
    data, expected = _load(flavour, stem)
    value = CODEC_TYPES[type_name].decode(data)
    assert value.to_json() == expected
    assert value.encode() == data


@pytest.mark.parametrize(("flavour", "stem", "type_name"), PARAMS)
def test_json_encodes_to_bin(flavour: str, stem: str, type_name: str) -> None:
    data, obj = _load(flavour, stem)
    value = CODEC_TYPES[type_name].from_json(obj)
    assert value.encode() == data
    assert CODEC_TYPES[type_name].decode(data) == value


def test_hashes_are_blake2b_of_the_encoding() -> None:
    package_bin, _ = _load("tiny", "work_package")
    report_bin, _ = _load("tiny", "work_report")
    assert (
        WorkPackage.decode(package_bin).hash()
        == hashlib.blake2b(package_bin, digest_size=32).digest()
    )
    assert (
        WorkReport.decode(report_bin).hash() == hashlib.blake2b(report_bin, digest_size=32).digest()
    )


@pytest.mark.parametrize(("flavour", "stem", "type_name"), PARAMS)
def test_cli_runner_decode_and_encode(flavour: str, stem: str, type_name: str) -> None:
    data, expected = _load(flavour, stem)
    base = CODEC_DIR / flavour / stem
    runner = CliRunner()
    decoded = runner.invoke(app, ["decode", type_name, str(base.with_suffix(".bin"))])
    assert decoded.exit_code == 0, decoded.output
    assert json.loads(decoded.stdout) == expected
    encoded = runner.invoke(app, ["encode", type_name, str(base.with_suffix(".json"))])
    assert encoded.exit_code == 0, encoded.output
    assert encoded.stdout_bytes == data


def _jamhost(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "jamhost.cli.main", "codec", *args],
        input=stdin,
        capture_output=True,
        timeout=60,
        check=False,
    )


def test_cli_subprocess_round_trip_with_stdin_and_alias() -> None:
    data, expected = _load("full", "work_report")
    decoded = _jamhost("decode", "work_report", "-", "--config", "/nonexistent.toml", stdin=data)
    assert decoded.returncode == 0, decoded.stderr
    assert json.loads(decoded.stdout) == expected

    digest_json = (CODEC_DIR / "tiny" / "work_result_1.json").read_bytes()
    encoded = _jamhost("encode", "work_digest", "-", stdin=digest_json)
    assert encoded.returncode == 0, encoded.stderr
    assert encoded.stdout == (CODEC_DIR / "tiny" / "work_result_1.bin").read_bytes()


@pytest.mark.parametrize(
    ("args", "stdin", "needle"),
    [
        (("decode", "no_such_type", "-"), b"", b"unknown type"),
        (("decode", "work_item", "-"), b"\x01\x02", b"not a valid work_item"),
        (("decode", "work_item", "/nonexistent/file.bin"), None, b"cannot read"),
        (("encode", "work_item", "-"), b"{not json", b"not JSON"),
        (("encode", "work_item", "-"), b'{"service": 1}', b"missing field"),
        (("encode", "work_report", "-"), b"\xff\xfe", b"not JSON"),
    ],
)
def test_cli_bad_input_exits_2_without_traceback(
    args: tuple[str, ...], stdin: bytes | None, needle: bytes
) -> None:
    result = _jamhost(*args, stdin=stdin)
    assert result.returncode == 2
    assert needle in result.stderr
    assert b"Traceback" not in result.stderr
    assert result.stdout == b""
