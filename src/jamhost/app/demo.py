"""`jamhost demo`: a whole tenant journey on a fresh embedded store, in one process.

Creates a tenant and a token, deploys the three example services, submits packages, runs the
pipeline until the queue is empty, and returns what a tenant would see: packages, reports,
attestations, receipts (with the chain re-verified) and the resulting state.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jamhost.app import accounts, packages, services, views
from jamhost.app.auth import authenticate
from jamhost.app.pipeline import process_next
from jamhost.app.runtime import build_runtime
from jamhost.config import JamSettings
from jamhost.domain.receipts import verify_chain
from jamhost.domain.types.work_report import WorkReport
from jamhost.examples import compute, counter, kvstore
from jamhost.tenancy.principal import ADMIN


def _package(service_id: int, payload: bytes) -> dict[str, Any]:
    return {"service_id": service_id, "items": [
        {"payload": "0x" + payload.hex(), "refine_gas_limit": 5_000_000,
         "accumulate_gas_limit": 5_000_000}]}


def run_demo(directory: Path) -> dict[str, Any]:
    settings = JamSettings(store="sqlite", sqlite_path=str(directory / "demo.db"),
                           rate_limit_per_minute=0, service_rate_limit_per_minute=0)
    rt = build_runtime(settings)
    try:
        account = accounts.create_account(rt, ADMIN, "demo-tenant")
        token, _record = accounts.create_token(rt, ADMIN, account.id, "demo")
        who = authenticate(rt, token)
        deployed = {name: services.create_service(rt, who, code=module.build())
                    for name, module in (("counter", counter), ("kvstore", kvstore),
                                         ("compute", compute))}
        plan = [
            ("counter", b"\x01"), ("counter", b"\x02"), ("counter", b"\x03"),
            ("kvstore", kvstore.entries([(b"greeting", b"hello"), (b"lang", b"jam")])),
            ("compute", b"the join-accumulate machine"),
        ]
        submitted = []
        for name, payload in plan:
            rec, _ = packages.submit_json(rt, who, _package(deployed[name].service_id, payload))
            submitted.append((name, rec.id))
        while process_next(rt, "demo") is not None:
            pass
        out: dict[str, Any] = {"account": views.account(account),
                               "token_accessor": _record.accessor, "services": {}}
        for name, svc in deployed.items():
            sid = svc.service_id
            receipts = packages.list_receipts(rt, who, service_id=sid, cursor=None,
                                              limit=500).items
            holds, root = verify_chain([(r.seq, r.prev_root, r.new_root, r.entry_type, r.hash)
                                        for r in receipts])
            pkgs = []
            for pname, pid in submitted:
                if pname != name:
                    continue
                pkg = packages.get_package(rt, who, pid)
                report, attestations, receipt = packages.get_report(rt, who, pid)
                decoded = WorkReport.decode(report.body)
                pkgs.append({"id": views.hx(pid), "status": pkg.status,
                             "report_hash": views.hx(report.report_hash),
                             "results": [d.result.to_json() for d in decoded.results],
                             "attestations": [views.attestation(a) for a in attestations],
                             "receipt": views.receipt(receipt) if receipt else None})
            state = services.storage_list(rt, who, sid, b"", None, 100).items
            current = rt.view(who).get_service(sid)
            out["services"][name] = {
                "service_id": sid,
                "code_hash": views.hx(svc.code_hash),
                "packages": pkgs,
                "state": {views.hx(k): views.hx(v) for k, v in state},
                "receipts": len(receipts),
                "chain_holds": holds and current is not None and root == views.hx(current.root),
                "accumulator_root": views.hx(current.root) if current else None,
            }
        return out
    finally:
        rt.close()
