"""What is kept of one accumulation for its tenant to see: status, gas, yield, output, the
bounded logs, the transfers made and received, the services made and removed (SPEC §4,
`GET /jam/packages/{id}/accumulation`)."""

from __future__ import annotations

from collections.abc import Sequence

from jamhost.domain.model import AccumulationRecord, Transfer
from jamhost.engine import AccumulateOutcome

MAX_OUTPUT_BYTES = 4096  # of the halt output kept (GP uses 32 octets of it: the yield)


def bounded_logs(lines: Sequence[str], max_bytes: int) -> tuple[tuple[str, ...], int]:
    """The first lines whose UTF-8 size fits in `max_bytes`, and how many were dropped
    (runtime.jam.max_log_bytes_per_invocation: the engine caps what it keeps, and this caps
    what the store keeps whatever the engine did)."""
    kept: list[str] = []
    used = 0
    for line in lines:
        size = len(line.encode("utf-8", "replace"))
        if used + size > max_bytes:
            break
        kept.append(line)
        used += size
    return tuple(kept), len(lines) - len(kept)


def record_of(out: AccumulateOutcome, *, service_id: int, package_id: bytes | None,
              gas_limit: int, inputs: int, transfers_in: Sequence[Transfer],
              max_log_bytes: int) -> AccumulationRecord:
    logs, dropped = bounded_logs(out.logs, max_log_bytes)
    return AccumulationRecord(
        service_id=service_id, package_id=package_id,
        status=str(out.status) if out.status is not None else "no-code",
        gas_limit=gas_limit, gas_used=out.gas_used, inputs=inputs,
        yield_hash=out.yield_hash,
        output=None if out.output is None else out.output[:MAX_OUTPUT_BYTES], logs=logs,
        logs_dropped=dropped + out.logs_dropped,
        transfers=tuple(Transfer(t.source, t.dest, t.amount, t.memo, t.gas)
                        for t in out.transfers),
        transfers_in=tuple(transfers_in),
        created=tuple(c.service_id for c in out.created), ejected=tuple(out.ejected))
