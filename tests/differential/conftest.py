"""Session fixture: one node process running the reference PVM (anan-as 1.2.0).

Missing node or anan-as is a failure, not a skip: `make test` installs them
(scripts/ensure-anan-as.sh), and a silently skipped differential test proves nothing.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from anan_client import AnanAs, AnanUnavailable  # noqa: E402


@pytest.fixture(scope="session")
def anan() -> Iterator[AnanAs]:
    try:
        runner = AnanAs()
    except AnanUnavailable as exc:
        pytest.fail(f"reference PVM unavailable: {exc}")
    yield runner
    runner.close()
