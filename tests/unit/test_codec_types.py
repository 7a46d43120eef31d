"""GP types: round trips of random values, and untrusted input raising only CodecError."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jamhost.domain.errors import CodecError
from jamhost.domain.record import Codable
from jamhost.domain.registry import CODEC_TYPES, codec_type
from jamhost.domain.types import (
    AvailabilitySpec,
    ExtrinsicSpec,
    ImportSpec,
    RefineContext,
    RefineLoad,
    SegmentRootLookupItem,
    WorkDigest,
    WorkExecKind,
    WorkExecResult,
    WorkItem,
    WorkPackage,
    WorkReport,
)


def uint(bits: int) -> st.SearchStrategy[int]:
    return st.integers(0, 2**bits - 1)


hashes = st.binary(min_size=32, max_size=32)
blobs = st.binary(max_size=80)

refine_contexts = st.builds(
    RefineContext,
    anchor=hashes,
    state_root=hashes,
    beefy_root=hashes,
    lookup_anchor=hashes,
    lookup_anchor_slot=uint(32),
    prerequisites=st.lists(hashes, max_size=3, unique=True).map(lambda xs: tuple(sorted(xs))),
)
import_specs = st.builds(ImportSpec, tree_root=hashes, index=uint(16))
extrinsic_specs = st.builds(ExtrinsicSpec, hash=hashes, len=uint(32))
work_items = st.builds(
    WorkItem,
    service=uint(32),
    code_hash=hashes,
    refine_gas_limit=uint(64),
    accumulate_gas_limit=uint(64),
    export_count=uint(16),
    payload=blobs,
    import_segments=st.lists(import_specs, max_size=3).map(tuple),
    extrinsic=st.lists(extrinsic_specs, max_size=3).map(tuple),
)
work_packages = st.builds(
    WorkPackage,
    auth_code_host=uint(32),
    auth_code_hash=hashes,
    context=refine_contexts,
    authorization=blobs,
    authorizer_config=blobs,
    items=st.lists(work_items, min_size=1, max_size=3).map(tuple),
)
work_exec_results = st.one_of(
    blobs.map(WorkExecResult.ok),
    st.sampled_from([k for k in WorkExecKind if k != WorkExecKind.OK]).map(WorkExecResult.error),
)
refine_loads = st.builds(
    RefineLoad,
    gas_used=uint(64),
    imports=uint(16),
    extrinsic_count=uint(16),
    extrinsic_size=uint(32),
    exports=uint(16),
)
work_digests = st.builds(
    WorkDigest,
    service_id=uint(32),
    code_hash=hashes,
    payload_hash=hashes,
    accumulate_gas=uint(64),
    result=work_exec_results,
    refine_load=refine_loads,
)
availability_specs = st.builds(
    AvailabilitySpec,
    hash=hashes,
    length=uint(32),
    erasure_root=hashes,
    exports_root=hashes,
    exports_count=uint(16),
)
lookup_items = st.builds(SegmentRootLookupItem, work_package_hash=hashes, segment_tree_root=hashes)
work_reports = st.builds(
    WorkReport,
    package_spec=availability_specs,
    context=refine_contexts,
    core_index=uint(16),
    authorizer_hash=hashes,
    auth_gas_used=uint(64),
    auth_output=blobs,
    segment_root_lookup=st.lists(
        lookup_items, max_size=3, unique_by=lambda i: i.work_package_hash
    ).map(lambda xs: tuple(sorted(xs, key=lambda i: i.work_package_hash))),
    results=st.lists(work_digests, min_size=1, max_size=3).map(tuple),
)

STRATEGIES: dict[str, st.SearchStrategy[Any]] = {
    "refine_context": refine_contexts,
    "import_spec": import_specs,
    "extrinsic_spec": extrinsic_specs,
    "work_item": work_items,
    "work_package": work_packages,
    "package_spec": availability_specs,
    "work_exec_result": work_exec_results,
    "refine_load": refine_loads,
    "work_result": work_digests,
    "segment_root_lookup_item": lookup_items,
    "work_report": work_reports,
}

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_every_registered_type_has_a_strategy() -> None:
    assert set(STRATEGIES) == set(CODEC_TYPES)


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_round_trip(name: str) -> None:
    cls = CODEC_TYPES[name]

    @FAST
    @given(STRATEGIES[name])
    def check(value: Codable) -> None:
        data = value.encode()
        assert cls.decode(data) == value
        obj = json.loads(json.dumps(value.to_json()))
        assert cls.from_json(obj) == value

    check()


def _assert_only_codec_error_and_canonical(cls: type[Codable], data: bytes) -> None:
    try:
        value = cls.decode(data)
    except CodecError:
        return
    # Whatever is accepted has exactly this encoding.
    assert value.encode() == data


@pytest.mark.parametrize("name", sorted(CODEC_TYPES))
def test_random_bytes_raise_only_codec_error(name: str) -> None:
    cls = CODEC_TYPES[name]

    @settings(max_examples=300, deadline=None)
    @given(st.binary(max_size=400))
    def check(data: bytes) -> None:
        _assert_only_codec_error_and_canonical(cls, data)

    check()


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_mutated_encodings_raise_only_codec_error(name: str) -> None:
    """Flip, cut and splice valid encodings: these reach far deeper than random bytes do."""
    cls = CODEC_TYPES[name]

    @settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(STRATEGIES[name], st.data())
    def check(value: Codable, data: st.DataObject) -> None:
        raw = bytearray(value.encode())
        for _ in range(data.draw(st.integers(1, 4))):
            op = data.draw(st.sampled_from(["flip", "cut", "insert", "delete"]))
            pos = data.draw(st.integers(0, len(raw)))
            if op == "flip" and pos < len(raw):
                raw[pos] = data.draw(st.integers(0, 255))
            elif op == "cut":
                del raw[pos:]
            elif op == "insert":
                raw[pos:pos] = data.draw(st.binary(min_size=1, max_size=9))
            elif pos < len(raw):
                del raw[pos]
        _assert_only_codec_error_and_canonical(cls, bytes(raw))

    check()


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.sampled_from(["0x", "0x00", "0xzz", "0x" + "ab" * 32, "0x" + "ab" * 31, "ok"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=20,
)


@pytest.mark.parametrize("name", sorted(CODEC_TYPES))
def test_arbitrary_json_raises_only_codec_error(name: str) -> None:
    cls = CODEC_TYPES[name]

    @settings(max_examples=100, deadline=None)
    @given(json_values)
    def check(obj: object) -> None:
        try:
            value = cls.from_json(obj)
        except CodecError:
            return
        assert cls.from_json(value.to_json()) == value

    check()


def _leaves(obj: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Paths to every value inside a JSON document (containers included)."""
    found = [path] if path else []
    if isinstance(obj, dict):
        for k, v in obj.items():
            found += _leaves(v, (*path, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            found += _leaves(v, (*path, i))
    return found


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_damaged_json_raises_only_codec_error(name: str) -> None:
    """Replace or drop one value deep inside a valid document, or add a stray key."""
    cls = CODEC_TYPES[name]

    @settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(STRATEGIES[name], json_values, st.data())
    def check(value: Codable, replacement: object, data: st.DataObject) -> None:
        doc = copy.deepcopy(value.to_json())
        paths = _leaves(doc)
        if not paths:
            return
        path = data.draw(st.sampled_from(paths))
        parent = doc
        for step in path[:-1]:
            parent = parent[step]
        action = data.draw(st.sampled_from(["replace", "drop", "extra"]))
        if action == "replace":
            parent[path[-1]] = replacement
        elif action == "drop":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent["unexpected_key"] = replacement
        try:
            cls.from_json(doc)
        except CodecError:
            pass

    check()


HASH_A = "0x" + "aa" * 32
HASH_B = "0x" + "bb" * 32
CONTEXT = {
    "anchor": HASH_A,
    "state_root": HASH_A,
    "beefy_root": HASH_A,
    "lookup_anchor": HASH_A,
    "lookup_anchor_slot": 1,
    "prerequisites": [],
}
ITEM = {
    "service": 1,
    "code_hash": HASH_A,
    "refine_gas_limit": 1,
    "accumulate_gas_limit": 1,
    "export_count": 0,
    "payload": "0x",
    "import_segments": [],
    "extrinsic": [],
}
PACKAGE = {
    "auth_code_host": 1,
    "auth_code_hash": HASH_A,
    "context": CONTEXT,
    "authorization": "0x",
    "authorizer_config": "0x",
    "items": [ITEM],
}


def _with(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    doc = copy.deepcopy(base)
    doc.update(changes)
    return doc


def _without(base: dict[str, Any], key: str) -> dict[str, Any]:
    doc = copy.deepcopy(base)
    del doc[key]
    return doc


MALFORMED = [
    ("refine_context", None, "expected an object"),
    ("refine_context", [], "expected an object"),
    ("refine_context", _without(CONTEXT, "anchor"), "missing field"),
    ("refine_context", _with(CONTEXT, extra=1), "unknown field"),
    ("refine_context", _with(CONTEXT, anchor="0x" + "aa" * 31), "expected 32 bytes"),
    ("refine_context", _with(CONTEXT, anchor="aa" * 32), "0x-prefixed hex"),
    ("refine_context", _with(CONTEXT, anchor="0x" + "zz" * 32), "0x-prefixed hex"),
    ("refine_context", _with(CONTEXT, anchor="0x" + "a" * 63), "0x-prefixed hex"),
    ("refine_context", _with(CONTEXT, anchor=7), "0x-prefixed hex"),
    ("refine_context", _with(CONTEXT, lookup_anchor_slot=-1), "out of range"),
    ("refine_context", _with(CONTEXT, lookup_anchor_slot=2**32), "out of range"),
    ("refine_context", _with(CONTEXT, lookup_anchor_slot=True), "expected an integer"),
    ("refine_context", _with(CONTEXT, lookup_anchor_slot=1.0), "expected an integer"),
    ("refine_context", _with(CONTEXT, lookup_anchor_slot="1"), "expected an integer"),
    ("refine_context", _with(CONTEXT, prerequisites=HASH_A), "expected a list"),
    ("refine_context", _with(CONTEXT, prerequisites=[HASH_B, HASH_A]), "ascending"),
    ("refine_context", _with(CONTEXT, prerequisites=[HASH_A, HASH_A]), "ascending"),
    ("work_item", _with(ITEM, export_count=2**16), "out of range"),
    ("work_item", _with(ITEM, import_segments=[{"tree_root": HASH_A}]), "missing field"),
    ("work_item", _with(ITEM, extrinsic=[{"hash": HASH_A, "len": None}]), "expected an integer"),
    ("work_package", _with(PACKAGE, items=[]), "length 0"),
    ("work_package", _with(PACKAGE, items=[ITEM] * 17), "length 17"),
    ("work_package", _with(PACKAGE, context=None), "context: expected an object"),
    ("work_exec_result", {}, "exactly one key"),
    ("work_exec_result", {"ok": "0x", "panic": None}, "exactly one key"),
    ("work_exec_result", {"crash": None}, "unknown result kind"),
    ("work_exec_result", {"panic": "0x00"}, "takes null"),
    ("work_exec_result", {"ok": None}, "0x-prefixed hex"),
    ("work_exec_result", "ok", "exactly one key"),
    ("refine_load", {"gas_used": 0}, "missing field"),
]


@pytest.mark.parametrize(("name", "obj", "message"), MALFORMED)
def test_malformed_json_raises_codec_error(name: str, obj: object, message: str) -> None:
    cls = codec_type(name)
    assert cls is not None
    with pytest.raises(CodecError, match=message):
        cls.from_json(obj)


def test_error_messages_name_the_json_path() -> None:
    bad = _with(PACKAGE, items=[_with(ITEM, code_hash="0x00")])
    with pytest.raises(CodecError, match=r"items\[0\]\.code_hash"):
        WorkPackage.from_json(bad)


def test_work_exec_result_kinds_and_discriminators() -> None:
    # GP 0.7.0 §C.2, O(l): ok 0 ++ ↕blob, then ∞ 1, ☇ 2, ⊚ 3, ⊝ 4, BAD 5, BIG 6.
    assert WorkExecResult.ok(b"\xaa\xbb").encode() == bytes.fromhex("0002aabb")
    expected = {
        WorkExecResult.out_of_gas(): ("01", "out_of_gas"),
        WorkExecResult.panic(): ("02", "panic"),
        WorkExecResult.bad_exports(): ("03", "bad_exports"),
        WorkExecResult.output_oversize(): ("04", "output_oversize"),
        WorkExecResult.bad_code(): ("05", "bad_code"),
        WorkExecResult.code_oversize(): ("06", "code_oversize"),
    }
    for result, (hex_byte, json_name) in expected.items():
        assert result.encode().hex() == hex_byte
        assert result.to_json() == {json_name: None}
        assert WorkExecResult.from_json({json_name: None}) == result
    assert WorkExecResult.ok(b"\x01").to_json() == {"ok": "0x01"}
    with pytest.raises(CodecError, match="discriminator 7"):
        WorkExecResult.decode(b"\x07")
    with pytest.raises(CodecError, match="carries no output"):
        WorkExecResult(WorkExecKind.PANIC, b"\x00")


def test_constructors_validate_and_normalise() -> None:
    ctx = RefineContext.from_json(CONTEXT)
    item = WorkItem.from_json(ITEM)
    package = WorkPackage(
        auth_code_host=1,
        auth_code_hash=bytearray(32),
        context=ctx,
        authorization=b"",
        authorizer_config=b"",
        items=[item],  # a list is accepted and stored as a tuple
    )
    assert package.items == (item,)
    assert isinstance(package.auth_code_hash, bytes)
    with pytest.raises(CodecError, match="code_hash"):
        WorkItem(1, b"\x00" * 31, 1, 1, 0, b"")
    with pytest.raises(CodecError, match="items"):
        WorkPackage(1, bytes(32), ctx, b"", b"", ())


def test_import_spec_flags_package_hash_imports() -> None:
    by_root = ImportSpec(bytes(32), 5)
    by_package = ImportSpec(bytes(32), 5 | 0x8000)
    assert not by_root.is_package_hash and by_root.segment_index == 5
    assert by_package.is_package_hash and by_package.segment_index == 5
    assert by_package.encode()[-2:] == bytes.fromhex("0580")


def test_unsorted_lookup_is_rejected_when_decoding() -> None:
    a = SegmentRootLookupItem(b"\x02" * 32, bytes(32)).encode()
    b = SegmentRootLookupItem(b"\x01" * 32, bytes(32)).encode()
    report = WorkReport(
        package_spec=AvailabilitySpec(bytes(32), 0, bytes(32), bytes(32), 0),
        context=RefineContext.from_json(CONTEXT),
        core_index=0,
        authorizer_hash=bytes(32),
        auth_gas_used=0,
        auth_output=b"",
        segment_root_lookup=(),
        results=(WorkDigest(1, bytes(32), bytes(32), 0, WorkExecResult.panic()),),
    )
    data = report.encode()
    # The lookup's length byte sits right after the auth output's (empty) length byte.
    prefix_len = 102 + 133 + 1 + 32 + 1 + 1
    assert data[prefix_len] == 0
    forged = data[:prefix_len] + b"\x02" + a + b + data[prefix_len + 1 :]
    with pytest.raises(CodecError, match="ascending"):
        WorkReport.decode(forged)
    in_order = data[:prefix_len] + b"\x02" + b + a + data[prefix_len + 1 :]
    assert len(WorkReport.decode(in_order).segment_root_lookup) == 2
