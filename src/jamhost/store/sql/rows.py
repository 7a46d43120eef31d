"""Rows to domain records (the scope filter is in scoped.py)."""

from __future__ import annotations

import json
from typing import Any

from jamhost.domain.model import (
    AccumulationRecord,
    Attestation,
    Delegate,
    PackageRecord,
    PreimageMeta,
    QuotaOverride,
    Receipt,
    ReportRecord,
    ServiceRecord,
    TokenRecord,
    Transfer,
    Usage,
)

UNSCOPED = 0  # the service id of a preimage no service owns
SQL_POSITION_MAX = (1 << 31) - 2  # substr takes 32-bit positions on PostgreSQL


def prefix_upper(prefix: bytes) -> bytes | None:
    """The smallest byte string greater than every string starting with `prefix`."""
    b = bytearray(prefix)
    while b and b[-1] == 0xFF:
        b.pop()
    if not b:
        return None
    b[-1] += 1
    return bytes(b)


def token_record(r: Any) -> TokenRecord:
    return TokenRecord(r.accessor, r.account_id, bytes(r.token_hash), r.name,
                       tuple(s for s in r.scopes.split(",") if s), r.created_at, r.expires_at,
                       r.revoked_at)


def service_record(r: Any) -> ServiceRecord:
    return ServiceRecord(
        service_id=r.service_id, owner=r.owner, code_hash=bytes(r.code_hash), balance=r.balance,
        min_item_gas=r.min_item_gas, min_memo_gas=r.min_memo_gas, created_at=r.created_at,
        created_by=r.created_by,
        quota=QuotaOverride(r.quota_pending_packages, r.quota_storage_bytes,
                            r.quota_gas_per_hour),
        usage=Usage(r.pending_count, r.storage_used, r.gas_window, r.gas_used),
        root=bytes(r.root), receipt_seq=r.receipt_seq, state_items=r.state_items,
        state_octets=r.state_octets,
        last_yield=bytes(r.last_yield) if r.last_yield is not None else None)


def delegate_record(r: Any) -> Delegate:
    return Delegate(r.id, r.service_id, bytes(r.token_hash), r.role, r.created_at, r.created_by)


def preimage_meta(r: Any) -> PreimageMeta:
    sid = None if r.service_id == UNSCOPED else r.service_id
    return PreimageMeta(bytes(r.hash), r.size, r.media_type, sid, r.created_at)


def package_record(r: Any, with_body: bool = True) -> PackageRecord:
    return PackageRecord(
        id=bytes(r.id), service_id=r.service_id, status=r.status,
        body=bytes(r.body) if with_body else b"", size=r.size, refine_gas=r.refine_gas,
        accumulate_gas=r.accumulate_gas, created_at=r.created_at, updated_at=r.updated_at,
        seq=r.seq, failure_reason=r.failure_reason,
        report_hash=bytes(r.report_hash) if r.report_hash is not None else None,
        attempts=r.attempts, detail=r.detail, started_at=r.started_at)


def report_record(r: Any) -> ReportRecord:
    return ReportRecord(bytes(r.package_id), r.service_id, bytes(r.report_hash), bytes(r.body),
                        r.created_at, r.seq, tuple(json.loads(r.logs)) if r.logs else ())


def transfer_json(x: Transfer) -> dict[str, Any]:
    return {"source": x.source, "destination": x.destination, "amount": x.amount,
            "memo": x.memo.hex(), "gas": x.gas, "id": x.id}


def transfer_of(d: dict[str, Any]) -> Transfer:
    return Transfer(d["source"], d["destination"], d["amount"], bytes.fromhex(d["memo"]),
                    d["gas"], d.get("id", 0))


def accumulation_record(r: Any) -> AccumulationRecord:
    return AccumulationRecord(
        service_id=r.service_id, package_id=bytes(r.package_id) if r.package_id else None,
        status=r.status, gas_limit=int(r.gas_limit), gas_used=int(r.gas_used),
        inputs=r.inputs, yield_hash=bytes(r.yield_hash) if r.yield_hash else None,
        output=bytes(r.output) if r.output is not None else None,
        logs=tuple(json.loads(r.logs)), logs_dropped=r.logs_dropped,
        transfers=tuple(transfer_of(d) for d in json.loads(r.transfers)),
        transfers_in=tuple(transfer_of(d) for d in json.loads(r.transfers_in)),
        created=tuple(json.loads(r.created)), ejected=tuple(json.loads(r.ejected)),
        created_at=r.created_at, seq=r.seq)


def attestation_record(r: Any) -> Attestation:
    return Attestation(bytes(r.package_id), bytes(r.attestor), bytes(r.signature), r.engine,
                       r.engine_version, bytes(r.report_hash), r.created_at)


def receipt_record(r: Any) -> Receipt:
    return Receipt(r.service_id, r.seq, bytes(r.prev_root), bytes(r.new_root), r.entry_type,
                   bytes(r.hash), r.processed_at)
