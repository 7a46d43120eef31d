"""The tariff's transfer units (tenancy/tariff.py) charged after the run, on the SQL stores:
the apply adds 100 units per transfer the accumulate made to the sender's gas usage of the
hour, in the same transaction as the rest of the apply (memory store:
tests/unit/test_tariff.py)."""

from __future__ import annotations

from typing import Any

from jamhost.app import packages, services
from jamhost.app.accounts import create_account
from jamhost.app.pipeline import process_next
from jamhost.app.runtime import build_runtime
from jamhost.config import JamSettings
from jamhost.engine.constants import HostCall
from jamhost.examples._asm import script
from jamhost.tenancy.principal import ADMIN, Principal
from tests.store_scopes import EVERYTHING

OP = Principal(kind="operator", token_hash=bytes(32))
REFINE, ACCUMULATE = 50_000, 1_000


def test_transfers_are_charged_in_the_senders_hourly_usage(store_keys: dict[str, Any]) -> None:
    rt = build_runtime(JamSettings(**store_keys, rate_limit_per_minute=0,
                                   service_rate_limit_per_minute=0))
    try:
        alice = create_account(rt, ADMIN, "alice").id
        dst = services.create_service(rt, ADMIN, code=script([]), owner=alice).service_id
        code = script([(HostCall.TRANSFER, {7: dst, 8: 0, 9: 0, 10: bytes(128)})] * 5)
        src = services.create_service(rt, ADMIN, code=code, owner=alice).service_id
        window = rt.gas_window()
        rec, _ = packages.submit_json(rt, OP, {"service_id": src, "items": [
            {"payload": "0x", "refine_gas_limit": REFINE, "accumulate_gas_limit": ACCUMULATE}]})
        assert rt.store.get_service(src).usage.gas_used_in(window) == REFINE + ACCUMULATE
        assert process_next(rt, "w") == rec.id
        assert rt.store.get_package(rec.id, EVERYTHING).status == "applied"
        record = rt.store.get_accumulation(rec.id, EVERYTHING)
        assert record is not None and len(record.transfers) == 5
        assert rt.store.get_service(src).usage.gas_used_in(window) == \
            REFINE + ACCUMULATE + 5 * 100
        # the receiver pays nothing for what it was sent
        assert rt.store.get_service(dst).usage.gas_used_in(window) == 0
    finally:
        rt.close()
