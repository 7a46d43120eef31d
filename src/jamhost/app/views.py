"""JSON views of the records the use cases answer: hex with 0x, ISO-8601 UTC times.

The one JSON form of each record, shared by the API answers, the admin CLI (which prints the
same JSON as the API) and `jamhost demo`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from jamhost.domain.model import (
    Account,
    AccumulationRecord,
    Attestation,
    AuditEvent,
    Delegate,
    PackageRecord,
    PreimageMeta,
    QuotaLimits,
    Receipt,
    ServiceRecord,
    TokenRecord,
    Transfer,
)
from jamhost.tenancy.tokens import hash_prefix


def hx(data: bytes | None) -> str | None:
    return None if data is None else "0x" + data.hex()


def ts(us: int | None) -> str | None:
    if us is None:
        return None
    return datetime.fromtimestamp(us / 1_000_000, UTC).isoformat().replace("+00:00", "Z")


def page(items: list[Any], next_cursor: None = None) -> dict[str, Any]:
    """A listing that has no next page (tokens, delegates, the CLI's local reads). Paged
    listings answer through `api.cursors.page`, which seals the next position."""
    return {"items": items, "next_cursor": next_cursor}


def account(a: Account) -> dict[str, Any]:
    return {"id": a.id, "name": a.name, "created_at": ts(a.created_at)}


def token(t: TokenRecord) -> dict[str, Any]:
    return {"accessor": t.accessor, "account_id": t.account_id, "name": t.name,
            "scopes": list(t.scopes), "created_at": ts(t.created_at),
            "expires_at": ts(t.expires_at), "revoked_at": ts(t.revoked_at),
            "token_hash_prefix": hash_prefix(t.token_hash)}


def quota(limits: QuotaLimits, svc: ServiceRecord, window: int) -> dict[str, Any]:
    return {
        "service_id": svc.service_id,
        "limits": {"pending_packages": limits.pending_packages,
                   "storage_bytes": limits.storage_bytes,
                   "gas_per_hour": limits.gas_per_hour},
        "usage": {"pending_packages": svc.usage.pending_packages,
                  "storage_bytes": svc.usage.storage_bytes,
                  "gas_this_hour": svc.usage.gas_used_in(window)},
        "overrides": {"pending_packages": svc.quota.pending_packages,
                      "storage_bytes": svc.quota.storage_bytes,
                      "gas_per_hour": svc.quota.gas_per_hour},
        "gas_window": "fixed clock hour (UTC)",
    }


def service(svc: ServiceRecord, limits: QuotaLimits | None = None,
            window: int = 0) -> dict[str, Any]:
    out: dict[str, Any] = {
        "service_id": svc.service_id, "owner": svc.owner, "code_hash": hx(svc.code_hash),
        "balance": svc.balance, "min_item_gas": svc.min_item_gas,
        "min_memo_gas": svc.min_memo_gas, "created_at": ts(svc.created_at),
        "accumulator_root": hx(svc.root), "receipt_seq": svc.receipt_seq,
    }
    if limits is not None:
        out["quota"] = quota(limits, svc, window)
    return out


def delegate(d: Delegate) -> dict[str, Any]:
    return {"id": d.id, "service_id": d.service_id,
            "token_hash_prefix": hash_prefix(d.token_hash), "role": d.role,
            "created_at": ts(d.created_at), "created_by": d.created_by}


def preimage(m: PreimageMeta) -> dict[str, Any]:
    return {"hash": hx(m.hash), "size": m.size, "media_type": m.media_type,
            "service_id": m.service_id, "created_at": ts(m.created_at)}


def package(p: PackageRecord, body_json: Any | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": hx(p.id), "service_id": p.service_id, "status": p.status, "size": p.size,
        "refine_gas": p.refine_gas, "accumulate_gas": p.accumulate_gas,
        "created_at": ts(p.created_at), "updated_at": ts(p.updated_at),
        "attempts": p.attempts, "failure_reason": p.failure_reason,
        "report_hash": hx(p.report_hash),
    }
    if p.detail:
        import json

        out["detail"] = json.loads(p.detail)
    if body_json is not None:
        out["package"] = body_json
    return out


def attestation(a: Attestation) -> dict[str, Any]:
    return {"attestor": hx(a.attestor), "signature": hx(a.signature), "engine": a.engine,
            "engine_version": a.engine_version, "report_hash": hx(a.report_hash),
            "created_at": ts(a.created_at)}


def audit_event(e: AuditEvent) -> dict[str, Any]:
    import json

    return {"seq": e.seq, "at": ts(e.at), "actor": e.actor, "action": e.action,
            "service_id": e.service_id, "target": e.target,
            "detail": json.loads(e.detail) if e.detail else None}


def receipt(r: Receipt) -> dict[str, Any]:
    return {"service_id": r.service_id, "seq": r.seq, "prev_root": hx(r.prev_root),
            "new_root": hx(r.new_root), "entry_type": r.entry_type, "hash": hx(r.hash),
            "processed_at": ts(r.processed_at)}


def transfer(x: Transfer) -> dict[str, Any]:
    return {"source": x.source, "destination": x.destination, "amount": x.amount,
            "memo": hx(x.memo), "gas": x.gas}


def accumulation(a: AccumulationRecord) -> dict[str, Any]:
    return {"service_id": a.service_id, "package_id": hx(a.package_id), "status": a.status,
            "gas_limit": a.gas_limit, "gas_used": a.gas_used, "inputs": a.inputs,
            "yield": hx(a.yield_hash), "output": hx(a.output), "logs": list(a.logs),
            "logs_dropped": a.logs_dropped,
            "transfers": [transfer(x) for x in a.transfers],
            "transfers_received": [transfer(x) for x in a.transfers_in],
            "created_services": list(a.created), "ejected_services": list(a.ejected),
            "created_at": ts(a.created_at)}
