"""The outcome of one conformance case and the closing summary line."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(slots=True)
class CaseResult:
    """One case: its name and what differed from the expected post-state (empty: passed)."""

    name: str
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0
    skipped: bool = False
    """Nothing to check in this case (a trace block that accumulated nothing)."""

    @property
    def passed(self) -> bool:
        return not self.failures

    def line(self) -> str:
        return f"FAIL {self.name}: {'; '.join(self.failures)}"


def summary(results: Sequence[CaseResult]) -> str:
    """`N passed, M failed` over the checked cases (`, K skipped` when some had nothing to
    check)."""
    checked = [r for r in results if not r.skipped]
    failed = sum(1 for r in checked if not r.passed)
    skipped = len(results) - len(checked)
    line = f"{len(checked) - failed} passed, {failed} failed"
    return line + (f", {skipped} skipped" if skipped else "")
