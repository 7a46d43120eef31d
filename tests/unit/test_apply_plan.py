"""The apply planner (tenancy/apply_plan.py) on its own: no store, no server, milliseconds.

Each expected figure is written out from the GP's footprint formulas (34 + |k| + |v| per
storage item, 81 + z per request, two items per request) and jamhost's usage in bytes, not
computed by the code under test."""

from __future__ import annotations

import pytest

from jamhost.domain.hashing import blake2b_256
from jamhost.domain.model import NewService, StateChanges
from jamhost.domain.receipts import EMPTY_ROOT, verify_chain
from jamhost.domain.refusals import SegmentQuotaExceeded, StorageQuotaExceeded
from jamhost.engine import AccountState, accumulate
from jamhost.examples._asm import script
from jamhost.tenancy.apply_plan import Before, plan_apply, touched
from jamhost.tenancy.storage_quota import fits

PKG = bytes([1]) * 32
REPORT = bytes([2]) * 32
H = bytes([7]) * 32


def fresh(**kw: object) -> Before:
    return Before(root=EMPTY_ROOT, seq=0, storage_used=0, **kw)  # type: ignore[arg-type]


def test_new_storage_item_counts_one_item_its_octets_and_bytes() -> None:
    plan = plan_apply(fresh(), StateChanges(storage={b"key": b"value"}), [],
                      storage_limit=None)
    assert plan.storage_written == ((b"key", b"value"),)
    assert plan.storage_deleted == ()
    assert (plan.d_items, plan.d_octets, plan.d_bytes) == (1, 34 + 3 + 5, 8)


def test_replacing_an_item_deletes_the_old_row_and_counts_the_difference() -> None:
    before = fresh(storage={b"key": b"long-old-value"})
    plan = plan_apply(before, StateChanges(storage={b"key": b"v"}), [], storage_limit=None)
    assert plan.storage_deleted == (b"key",)
    assert plan.storage_written == ((b"key", b"v"),)
    assert (plan.d_items, plan.d_octets, plan.d_bytes) == (0, -13, -13)


def test_deleting_a_missing_key_changes_nothing() -> None:
    plan = plan_apply(fresh(), StateChanges(storage={b"gone": None}), [], storage_limit=None)
    assert plan.storage_deleted == () and plan.storage_written == ()
    assert (plan.d_items, plan.d_octets, plan.d_bytes) == (0, 0, 0)


def test_deleting_an_item_gives_back_its_footprint() -> None:
    plan = plan_apply(fresh(storage={b"ab": b"cd"}), StateChanges(storage={b"ab": None}), [],
                      storage_limit=None)
    assert plan.storage_deleted == (b"ab",)
    assert (plan.d_items, plan.d_octets, plan.d_bytes) == (-1, -38, -4)


def test_a_solicit_counts_two_items_81_plus_z_octets_and_one_request_row() -> None:
    plan = plan_apply(fresh(), StateChanges(requests={(H, 100): ()}), [], storage_limit=None)
    assert plan.requests_written == (((H, 100), ()),)
    assert (plan.d_items, plan.d_octets, plan.d_bytes) == (2, 181, 81)


def test_updating_a_request_replaces_its_row_at_no_cost() -> None:
    plan = plan_apply(fresh(requests=frozenset({(H, 100)})),
                      StateChanges(requests={(H, 100): (5,)}), [], storage_limit=None)
    assert plan.requests_deleted == ((H, 100),)
    assert plan.requests_written == (((H, 100), (5,)),)
    assert (plan.d_items, plan.d_octets, plan.d_bytes) == (0, 0, 0)


def test_forgetting_a_request_gives_it_back() -> None:
    plan = plan_apply(fresh(requests=frozenset({(H, 10)})), StateChanges(requests={(H, 10): None}),
                      [], storage_limit=None)
    assert plan.requests_deleted == ((H, 10),) and plan.requests_written == ()
    assert (plan.d_items, plan.d_octets, plan.d_bytes) == (-2, -91, -81)


def test_a_provided_blob_is_charged_once_and_only_if_new_to_the_service() -> None:
    blob, kept = b"x" * 40, b"y" * 10
    plan = plan_apply(fresh(preimages=frozenset({blake2b_256(kept)})),
                      StateChanges(preimages=[blob, blob, kept]), [], storage_limit=None)
    assert plan.preimages == ((blake2b_256(blob), blob),)
    assert plan.d_bytes == 40
    assert plan.d_items == 0 and plan.d_octets == 0  # a_o counts the request, not the blob


def test_growing_past_the_storage_quota_is_refused() -> None:
    before = Before(root=EMPTY_ROOT, seq=0, storage_used=95)
    with pytest.raises(StorageQuotaExceeded):
        plan_apply(before, StateChanges(storage={b"k": b"123456"}), [], storage_limit=100)


def test_reaching_the_quota_exactly_passes() -> None:
    before = Before(root=EMPTY_ROOT, seq=0, storage_used=93)
    plan = plan_apply(before, StateChanges(storage={b"k": b"123456"}), [], storage_limit=100)
    assert plan.d_bytes == 7


def test_a_service_over_its_quota_may_still_shrink() -> None:
    before = Before(root=EMPTY_ROOT, seq=0, storage_used=500, storage={b"k": b"0123456789"})
    plan = plan_apply(before, StateChanges(storage={b"k": b"0"}), [], storage_limit=100)
    assert plan.d_bytes == -9


def test_the_storage_verdict() -> None:
    """tenancy/storage_quota.py: a change that does not grow usage always fits, even over
    the limit; one that grows it fits up to the limit exactly."""
    assert fits(93, 7, 100) and not fits(94, 7, 100)
    assert fits(500, 0, 100) and fits(500, -9, 100)  # over the quota: keeping or shrinking
    assert fits(0, 0, 0) and not fits(0, 1, 0)
    assert fits(2**63 - 1, 0, 2**63 - 1) and not fits(1, 2**63 - 1, 2**63 - 1)


def test_a_service_over_its_quota_may_keep_its_usage() -> None:
    before = Before(root=EMPTY_ROOT, seq=0, storage_used=500, storage={b"k": b"ab"})
    plan = plan_apply(before, StateChanges(storage={b"k": b"cd"}), [("package", PKG)],
                      storage_limit=100, exports_bytes=0)
    assert plan.d_bytes == 0 and plan.storage_written == ((b"k", b"cd"),)


def test_kept_exports_are_charged_after_the_changes() -> None:
    before = Before(root=EMPTY_ROOT, seq=0, storage_used=90, storage={b"k": b"0123456789"})
    shrink = StateChanges(storage={b"k": None})  # -11 bytes
    plan = plan_apply(before, shrink, [], storage_limit=100, exports_bytes=21)
    assert plan.d_bytes == 10  # the exports fit in what the changes freed
    with pytest.raises(SegmentQuotaExceeded):
        plan_apply(before, shrink, [], storage_limit=100, exports_bytes=22)
    with pytest.raises(StorageQuotaExceeded) as refused:  # the changes alone are refused first
        plan_apply(before, StateChanges(storage={b"k": b"0" * 30}), [], storage_limit=100,
                   exports_bytes=1)
    assert not isinstance(refused.value, SegmentQuotaExceeded)
    assert plan_apply(before, None, [], storage_limit=None, exports_bytes=10**9).d_bytes == 10**9


def test_no_limit_means_no_verdict() -> None:
    before = Before(root=EMPTY_ROOT, seq=0, storage_used=10**12)
    assert plan_apply(before, StateChanges(storage={b"k": b"v"}), [],
                      storage_limit=None).d_bytes == 2


def test_receipts_continue_the_chain_from_its_head() -> None:
    first = plan_apply(fresh(), None, [("package", PKG), ("report", REPORT)],
                       storage_limit=None)
    assert [r.seq for r in first.receipts] == [1, 2]
    assert first.receipts[0].prev_root == EMPTY_ROOT
    assert first.receipts[1].prev_root == first.receipts[0].new_root
    assert first.root == first.receipts[1].new_root
    head = first.receipts[-1]
    second = plan_apply(Before(root=head.new_root, seq=2, storage_used=0), None,
                        [("inputs", H)], storage_limit=None)
    rows = first.receipts + second.receipts
    # verified by the chain's own checker (domain/receipts.py), entry by entry from seq 1
    ok, head_hex = verify_chain([(r.seq, r.prev_root, r.new_root, r.entry_type, r.hash)
                                 for r in rows])
    assert ok and head_hex == "0x" + second.receipts[0].new_root.hex()
    assert second.receipts[0].seq == 3 and second.receipts[0].prev_root == head.new_root


def test_no_entries_no_receipts_and_no_root() -> None:
    plan = plan_apply(fresh(), StateChanges(), [], storage_limit=None)
    assert plan.receipts == () and plan.root is None


def test_only_the_columns_the_accumulate_changed_are_set() -> None:
    plan = plan_apply(fresh(), StateChanges(balance=7, yield_hash=H), [], storage_limit=None)
    assert dict(plan.columns) == {"balance": 7, "last_yield": H}


def test_a_new_service_carries_its_footprint_and_usage() -> None:
    new = NewService(service_id=70000, code_hash=H, balance=1, min_item_gas=0, min_memo_gas=0,
                     requests={(H, 50): ()}, storage={b"a": b"bc"})
    plan = plan_apply(fresh(), StateChanges(created=[new]), [], storage_limit=None)
    (made,) = plan.created
    assert made.service is new
    assert (made.items, made.octets, made.storage_used) == (3, 81 + 50 + 34 + 3, 81 + 3)
    assert plan.d_bytes == 0  # charged to the new service, not to its parent


def test_touched_names_exactly_the_rows_the_store_must_read() -> None:
    changes = StateChanges(storage={b"a": None, b"b": b"1"}, requests={(H, 3): ()},
                           preimages=[b"p", b"p"])
    keys, requests, hashes = touched(changes)
    assert keys == [b"a", b"b"] and requests == [(H, 3)] and hashes == [blake2b_256(b"p")]
    assert touched(None) == ([], [], [])


def test_the_planner_s_footprint_deltas_are_the_engine_s() -> None:
    """One accumulate that overwrites, deletes and writes storage, solicits a preimage and
    forgets another: the planner's (Δa_i, Δa_o), computed from the rows it finds, equal the
    engine's, tracked by its host calls (both from domain/footprint.py)."""
    code = script([
        (4, {7: b"a", 8: 1, 9: b"xyz", 10: 3}),  # overwrite
        (4, {7: b"b", 8: 1, 9: b"", 10: 0}),  # delete
        (4, {7: b"c", 8: 1, 9: b"new!", 10: 4}),  # new
        (23, {7: bytes([5]) * 32, 8: 50}),  # solicit (new request)
        (24, {7: bytes([6]) * 32, 8: 9}),  # forget a request [] (and its preimage)
    ])
    code_hash = blake2b_256(code)
    state = AccountState.create(
        code_hash, 10**6, storage={b"a": b"1", b"b": b"22", b"z": b"kept"},
        preimages={code_hash: code, bytes([6]) * 32: b"x" * 9},
        requests={(code_hash, len(code)): (0,), (bytes([6]) * 32, 9): ()})
    items, octets = state.items, state.octets
    out = accumulate(70_000, state, [], [], timeslot=100, gas_limit=100_000,
                     entropy=b"\x07" * 32)
    assert dict(out.account.storage) == {b"a": b"xyz", b"c": b"new!", b"z": b"kept"}
    assert set(out.account.requests) == {(code_hash, len(code)), (bytes([5]) * 32, 50)}
    engine = (out.account.items - items, out.account.octets - octets)
    assert engine == (1 - 1 + 0 + 2 - 2, (3 - 1) - (34 + 1 + 2) + (34 + 1 + 4) + 131 - 90)
    changes = StateChanges(storage=dict(out.storage_changes),
                           requests=dict(out.request_changes),
                           preimages=[b for b in out.preimage_changes.values() if b is not None])
    before = Before(root=EMPTY_ROOT, seq=0, storage_used=0,
                    storage={b"a": b"1", b"b": b"22"},
                    requests=frozenset({(bytes([6]) * 32, 9)}))
    plan = plan_apply(before, changes, [], storage_limit=None)
    assert (plan.d_items, plan.d_octets) == engine


def test_the_receipt_entries_of_a_finish_and_of_a_delivery() -> None:
    """Which receipts are appended is decided in domain/receipts.py and carried on the
    outcome; the hashes are those the chain always had (written out here with hashlib)."""
    import hashlib

    from jamhost.domain.model import PackageOutcome, ReportRecord
    from jamhost.domain.receipts import inputs_entries

    report = ReportRecord(PKG, 7, REPORT, b"body", 0)
    assert PackageOutcome(PKG, 7, "w", "applied", report=report).receipt_entries == (
        ("package", PKG), ("report", REPORT))
    assert PackageOutcome(PKG, 7, "w", "applied").receipt_entries == (("package", PKG),)
    assert PackageOutcome(PKG, 7, "w", "failed", report=report).receipt_entries == ()
    ids = hashlib.blake2b(b"jamhost/inputs" + bytes([3]) + bytes(7) + bytes([1, 1]) + bytes(6),
                          digest_size=32).digest()
    assert inputs_entries([3, 257]) == (("inputs", ids),)
