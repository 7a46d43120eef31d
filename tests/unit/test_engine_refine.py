"""refine_package: results, error kinds, host calls and the report fields (GP 0.7.2 §14.4)."""

from __future__ import annotations

import hashlib

from jamhost.domain.types import (
    ExtrinsicSpec,
    RefineContext,
    WorkExecKind,
    WorkItem,
    WorkPackage,
    WorkReport,
)
from jamhost.engine import RefineInputError, refine_package
from jamhost.engine.refine import refine_arguments
from jamhost.examples import counter
from jamhost.examples._asm import script

SERVICE = 70_000
NONE = 2**64 - 1
W_G = 4104


def h(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=32).digest()


def item(code: bytes, payload: bytes = b"", gas: int = 100_000, exports: int = 0) -> WorkItem:
    return WorkItem(SERVICE, h(code), gas, 5_000, exports, payload)


def pkg(*items: WorkItem, config: bytes = b"cfg") -> WorkPackage:
    context = RefineContext(b"\x01" * 32, b"\x02" * 32, b"\x03" * 32, b"\x04" * 32, 9)
    return WorkPackage(5, bytes(32), context, b"token", config, items)  # no authorizer


def run(package: WorkPackage, *codes: bytes, preimages: dict[bytes, bytes] | None = None):  # type: ignore[no-untyped-def]
    by_hash = {h(c): c for c in codes}
    return refine_package(
        package,
        code_lookup=lambda s, c: by_hash.get(c) if s == SERVICE else None,
        preimage_lookup=lambda s, x: (preimages or {}).get(x) if s == SERVICE else None,
        core_index=1,
    )


def words(output: bytes) -> list[int]:
    return [int.from_bytes(output[i : i + 8], "little") for i in range(0, len(output), 8)]


def test_report_fields_follow_the_package() -> None:
    code = counter.build()
    p = pkg(item(code, b"hi"), item(code, b"there"))
    report = run(p, code).report
    assert report.package_spec.hash == h(p.encode())
    assert report.package_spec.length == len(p.encode())
    assert report.package_spec.exports_count == 0
    assert report.package_spec.exports_root == bytes(32)  # M([]) = N([H0]) = H0
    assert report.package_spec.erasure_root != bytes(32)  # recomputed in test_erasure.py
    assert report.context == p.context
    assert report.core_index == 1
    assert report.authorizer_hash == h(bytes(32) + b"cfg")
    assert (report.auth_gas_used, report.auth_output, report.segment_root_lookup) == (0, b"", ())
    d0, d1 = report.results
    assert (d0.service_id, d0.code_hash, d0.payload_hash) == (SERVICE, h(code), h(b"hi"))
    assert d0.accumulate_gas == 5_000
    assert d1.result.output == b"there"
    assert d0.refine_load.gas_used > 0
    assert WorkReport.decode(report.encode()) == report


def test_same_package_same_report_bytes() -> None:
    code = counter.build()
    p = pkg(item(code, b"x" * 100))
    assert run(p, code).report.encode() == run(p, code).report.encode()


def test_missing_code_is_bad_code_and_too_big_is_code_oversize() -> None:
    code = counter.build()
    huge = b"\0" * 4_000_001
    p = pkg(item(code), item(huge))
    report = run(p, huge).report
    kinds = [d.result.kind for d in report.results]
    assert kinds == [WorkExecKind.BAD_CODE, WorkExecKind.CODE_OVERSIZE]
    assert [d.refine_load.gas_used for d in report.results] == [0, 0]


def test_out_of_gas_and_panic() -> None:
    code = counter.build()
    trap = script([], end="trap")
    report = run(pkg(item(code, b"x" * 50, gas=20), item(trap)), code, trap).report
    assert [d.result.kind for d in report.results] == [WorkExecKind.OUT_OF_GAS, WorkExecKind.PANIC]
    assert report.results[0].refine_load.gas_used == 20


def test_output_oversize_counts_earlier_outputs() -> None:
    code = counter.build()
    half = b"y" * (30 * 1024)  # two of them exceed W_R = 48 KiB
    report = run(pkg(item(code, half), item(code, half), item(code, b"z")), code).report
    kinds = [d.result.kind for d in report.results]
    assert kinds == [WorkExecKind.OK, WorkExecKind.OUTPUT_OVERSIZE, WorkExecKind.OK]


def test_exports_and_exports_root() -> None:
    code = script([(7, {7: b"seg-one", 8: 7}), (7, {7: b"two", 8: 3})])
    outcome = run(pkg(item(code, exports=2)), code)
    (digest,) = outcome.report.results
    assert digest.result.kind == WorkExecKind.OK
    assert words(digest.result.output)[0::2] == [0, 1]  # segment indices
    s0, s1 = b"seg-one" + bytes(W_G - 7), b"two" + bytes(W_G - 3)
    assert outcome.exports == [s0, s1]
    leaf0, leaf1 = h(b"leaf" + s0), h(b"leaf" + s1)
    assert outcome.report.package_spec.exports_root == h(b"node" + leaf0 + leaf1)
    assert outcome.report.package_spec.exports_count == 2
    assert digest.refine_load.exports == 2


def test_export_count_mismatch_is_bad_exports_with_zero_segments() -> None:
    code = script([(7, {7: b"a", 8: 1}), (7, {7: b"b", 8: 1})])
    outcome = run(pkg(item(code, exports=1)), code)
    assert outcome.report.results[0].result.kind == WorkExecKind.BAD_EXPORTS
    assert outcome.exports == [bytes(W_G)]


def test_second_item_export_indices_continue() -> None:
    one = script([(7, {7: b"a", 8: 1})])
    outcome = run(pkg(item(one, exports=1), item(one, exports=1)), one)
    assert [words(d.result.output)[0] for d in outcome.report.results] == [0, 1]


def test_historical_lookup_only_own_service() -> None:
    blob = b"the preimage"
    steps = [
        (6, {7: NONE, 8: h(blob), 9: ("scratch", 0), 10: 4, 11: 3}),  # own: "pre"
        (6, {7: SERVICE, 8: h(blob), 9: ("scratch", 0), 10: 0, 11: 100}),
        (6, {7: SERVICE + 1, 8: h(blob), 9: ("scratch", 0), 10: 0, 11: 100}),
        (6, {7: NONE, 8: h(b"unknown"), 9: ("scratch", 0), 10: 0, 11: 100}),
    ]
    code = script(steps)
    (digest,) = run(pkg(item(code)), code, preimages={h(blob): blob}).report.results
    assert words(digest.result.output)[0::2] == [len(blob), len(blob), NONE, NONE]


def test_historical_lookup_of_unreadable_hash_panics() -> None:
    code = script([(6, {7: NONE, 8: 0, 9: ("scratch", 0), 10: 0, 11: 8})])
    (digest,) = run(pkg(item(code)), code).report.results
    assert digest.result.kind == WorkExecKind.PANIC


def test_fetch_gas_and_unknown_calls() -> None:
    steps = [
        (1, {7: ("scratch", 0), 8: 0, 9: 0, 10: 13, 11: 0}),  # payload of item 0
        (1, {7: ("scratch", 0), 8: 0, 9: 0, 10: 0}),  # protocol constants
        (1, {7: ("scratch", 0), 8: 0, 9: 0, 10: 14}),  # accumulate inputs: none in refine
        (1, {7: ("scratch", 0), 8: 0, 9: 32, 10: 1}),  # entropy: zero hash in refine
        (0, {}),
        (8, {}),  # machine of an empty blob: HUH (it does not deblob)
        (3, {}),  # read: an accumulate call
    ]
    code = script(steps)
    (digest,) = run(pkg(item(code, b"payload!")), code).report.results
    r7 = words(digest.result.output)[0::2]
    assert r7[:4] == [8, 134, NONE, 32]
    assert 0 < r7[4] < 100_000
    assert r7[5:] == [2**64 - 9, 2**64 - 2]  # HUH, WHAT


def test_log_lines_are_collected() -> None:
    steps = [(100, {7: 2, 8: b"tgt", 9: 3, 10: b"hello", 11: 5})]
    code = script(steps)
    outcome = run(pkg(item(code)), code)
    assert outcome.logs == [f"INFO#{SERVICE} refine[0] tgt hello"]


def test_extrinsics_come_from_preimages() -> None:
    blob = b"extrinsic data"
    steps = [(1, {7: ("scratch", 0), 8: 0, 9: 0, 10: 4, 11: 0})]
    code = script(steps)
    spec = ExtrinsicSpec(h(blob), len(blob))
    w = item(code)
    w = WorkItem(
        w.service, w.code_hash, w.refine_gas_limit, w.accumulate_gas_limit, 0, b"", (), (spec,)
    )
    outcome = run(pkg(w), code, preimages={h(blob): blob})
    (digest,) = outcome.report.results
    assert words(digest.result.output)[0] == len(blob)
    assert (digest.refine_load.extrinsic_count, digest.refine_load.extrinsic_size) == (1, 14)
    try:
        run(pkg(w), code)
    except RefineInputError:
        pass
    else:
        raise AssertionError("a missing extrinsic must refuse the package")


def test_refine_arguments_encoding() -> None:
    code = counter.build()
    w = item(code, b"ab")
    # E(c=1) E(i=2) E(s=70000: 0b110..., 3 octets) ↕y H(p)
    expected = b"\x01\x02" + bytes([0xC0 | 0x01]) + (70000 & 0xFFFF).to_bytes(2, "little")
    expected += b"\x02ab" + b"\x11" * 32
    assert refine_arguments(1, 2, w, b"\x11" * 32) == expected


def _gas_with_logs(n: int) -> int:
    steps = [(100, {7: 2, 8: 0, 9: 0, 10: b"m", 11: 1})] * n
    code = script(steps)
    (digest,) = run(pkg(item(code)), code).report.results
    return digest.refine_load.gas_used


def test_log_costs_ten_gas() -> None:
    # Same program shape with one more log call: exactly 10 gas more for the call, plus the
    # instructions that set up its registers and save its results (the same in both).
    one, two, three = _gas_with_logs(1), _gas_with_logs(2), _gas_with_logs(3)
    assert two - one == three - two
    per_call = two - one
    # The step's own instructions: 5 load_imm_64, ecalli, load_imm, 2 stores = 9 gas.
    assert per_call == 9 + 10


def test_logs_past_the_cap_are_dropped_and_counted() -> None:
    steps = [(100, {7: 2, 8: 0, 9: 0, 10: b"x" * 100, 11: 100})] * 20
    code = script(steps)
    by_hash = {h(code): code}
    outcome = refine_package(
        pkg(item(code)),
        code_lookup=lambda s, c: by_hash.get(c),
        preimage_lookup=lambda s, x: None,
        max_log_bytes=1000,
    )
    line = f"INFO#{SERVICE} refine[0] " + "x" * 100
    kept = 1000 // len(line)
    assert outcome.logs == [line] * kept
    assert outcome.logs_dropped == 20 - kept
    assert outcome.items[0].logs_dropped == 20 - kept
