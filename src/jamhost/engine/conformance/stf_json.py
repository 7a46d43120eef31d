"""The accumulate STF vectors' JSON (stf/accumulate) to and from `AccumulationState`, in
both forms: the w3f GP 0.7.0 one (accumulate.asn) and the davxy GP 0.7.2 one.

GP 0.7.0 form: each account lists its service info (with its footprint `items`/`bytes`),
storage and `preimages`, but not the preimage requests a_l: each preimage is given the request
(hash, length) -> [0] (available since slot 0), which is what the footprints assume.
GP 0.7.2 form: `preimage_blobs` and `preimage_requests` (a_l in full), a `version` in the
service info and the registrar (`register`) among the privileges.
"""

from __future__ import annotations

from typing import Any

from jamhost.domain.types import WorkReport
from jamhost.engine.account import AccountState
from jamhost.engine.conformance.stf import AccumulationState, BlockAccumulation, Queued
from jamhost.engine.privileges import Privileges

Json = dict[str, Any]


def _b(text: str) -> bytes:
    return bytes.fromhex(text[2:] if text.startswith("0x") else text)


def _hex(data: bytes) -> str:
    return "0x" + data.hex()


def account_from_json(data: Json) -> AccountState:
    info = data["service"]
    if "preimage_blobs" in data:
        preimages = {_b(p["hash"]): _b(p["blob"]) for p in data["preimage_blobs"]}
        requests = {
            (_b(r["key"]["hash"]), r["key"]["length"]): tuple(r["value"])
            for r in data["preimage_requests"]
        }
    else:
        preimages = {_b(p["hash"]): _b(p["blob"]) for p in data["preimages"]}
        requests = {(h, len(blob)): (0,) for h, blob in preimages.items()}
    return AccountState(
        code_hash=_b(info["code_hash"]),
        balance=info["balance"],
        min_item_gas=info["min_item_gas"],
        min_memo_gas=info["min_memo_gas"],
        storage={_b(e["key"]): _b(e["value"]) for e in data["storage"]},
        preimages=preimages,
        requests=requests,
        gratis=info["deposit_offset"],
        created=info["creation_slot"],
        last_accumulation=info["last_accumulation_slot"],
        parent=info["parent_service"],
        items=info["items"],
        octets=info["bytes"],
    )


def account_to_json(account: AccountState, form: str = "0.7.0") -> Json:
    """An account in the vectors' form ("0.7.0": w3f, "0.7.2": davxy)."""
    out = _account_0_7_0(account)
    if form == "0.7.0":
        return out
    out["service"] = {"version": 0, **out["service"]}
    out["preimage_blobs"] = out.pop("preimages")
    out["preimage_requests"] = [
        {"key": {"hash": _hex(h), "length": z}, "value": list(slots)}
        for (h, z), slots in sorted(account.requests.items())
    ]
    return out


def _account_0_7_0(account: AccountState) -> Json:
    return {
        "service": {
            "code_hash": _hex(account.code_hash),
            "balance": account.balance,
            "min_item_gas": account.min_item_gas,
            "min_memo_gas": account.min_memo_gas,
            "bytes": account.octets,
            "deposit_offset": account.gratis,
            "items": account.items,
            "creation_slot": account.created,
            "last_accumulation_slot": account.last_accumulation,
            "parent_service": account.parent,
        },
        "storage": [{"key": _hex(k), "value": _hex(v)} for k, v in sorted(account.storage.items())],
        "preimages": [
            {"hash": _hex(h), "blob": _hex(b)} for h, b in sorted(account.preimages.items())
        ],
    }


def _queued(entry: Json) -> Queued:
    return WorkReport.from_json(entry["report"]), frozenset(_b(d) for d in entry["dependencies"])


def form_of(case: Json) -> str:
    """"0.7.2" for the davxy GP 0.7.2 form, else "0.7.0" (w3f)."""
    return "0.7.2" if "register" in case["pre_state"]["privileges"] else "0.7.0"


def state_from_json(data: Json) -> AccumulationState:
    p = data["privileges"]
    return AccumulationState(
        slot=data["slot"],
        entropy=_b(data["entropy"]),
        ready_queue=[[_queued(e) for e in slot] for slot in data["ready_queue"]],
        accumulated=[frozenset(_b(h) for h in slot) for slot in data["accumulated"]],
        privileges=Privileges(
            manager=p["bless"],
            assigners=tuple(p["assign"]),
            delegator=p["designate"],
            registrar=p.get("register", 0),
            always_acc={a["id"]: a["gas"] for a in p["always_acc"]},
        ),
        accounts={a["id"]: account_from_json(a["data"]) for a in data["accounts"]},
    )


def _stats_record(count: int, gas: int, form: str) -> Json:
    record = dict.fromkeys(
        ("provided_count", "provided_size", "refinement_count", "refinement_gas_used",
         "imports", "extrinsic_count", "extrinsic_size", "exports"),
        0,
    )  # fmt: skip
    record.update(accumulate_count=count, accumulate_gas_used=gas)
    if form == "0.7.0":  # GP 0.7.0 still had on-transfer statistics
        record.update(on_transfers_count=0, on_transfers_gas_used=0)
    return record


def result_to_json(result: BlockAccumulation, form: str = "0.7.0") -> Json:
    """The post_state and output of a vector, as `accumulate_block` computed them."""
    s = result.state
    p = s.privileges
    privileges: Json = {"bless": p.manager, "assign": list(p.assigners), "designate": p.delegator}
    if form != "0.7.0":
        privileges["register"] = p.registrar
    privileges["always_acc"] = [{"id": k, "gas": v} for k, v in sorted(p.always_acc.items())]
    return {
        "output": {"ok": _hex(result.root)},
        "post_state": {
            "slot": s.slot,
            "entropy": _hex(s.entropy),
            "ready_queue": [
                [
                    {"report": r.to_json(), "dependencies": [_hex(d) for d in sorted(deps)]}
                    for r, deps in slot
                ]
                for slot in s.ready_queue
            ],
            "accumulated": [[_hex(h) for h in sorted(slot)] for slot in s.accumulated],
            "privileges": privileges,
            "statistics": [
                {"id": sid, "record": _stats_record(v.count, v.gas_used, form)}
                for sid, v in sorted(result.statistics.items())
            ],
            "accounts": [
                {"id": sid, "data": account_to_json(a, form)}
                for sid, a in sorted(s.accounts.items())
            ],
        },
    }
