"""Erasure coding (GP 0.7.2 appendix H) against every `erasure/` vector, and the erasure root
of a report (GP 0.7.2 §14.4) rebuilt here from the chunks with this file's own Merkle code."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from jamhost.domain.types import ExtrinsicSpec, RefineContext, WorkItem, WorkPackage
from jamhost.engine import refine_package
from jamhost.engine.erasure import chunks, paged_proofs, segment_chunks
from jamhost.examples._asm import script

VECTORS = Path(__file__).resolve().parents[2] / ".." / "shared" / "vectors" / "erasure"
CASES = sorted(VECTORS.glob("*/*.json"))
SERVICE = 70_000
W_G = 4104


def h(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=32).digest()


def n(values: list[bytes]) -> bytes:
    """N of GP appendix E, written out again so the test does not trust engine/merkle.py."""
    if not values:
        return bytes(32)
    if len(values) == 1:
        return values[0]
    mid = (len(values) + 1) // 2
    return h(b"node" + n(values[:mid]) + n(values[mid:]))


def m_b(values: list[bytes]) -> bytes:
    return h(values[0]) if len(values) == 1 else n(values)


def test_every_vector_set_is_present() -> None:
    assert {p.parent.name for p in CASES} == {"tiny", "full"}
    assert len(CASES) == 12


@pytest.mark.parametrize("case", CASES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_vector(case: Path) -> None:
    vector = json.loads(case.read_text())
    data = bytes.fromhex(vector["data"].removeprefix("0x"))
    want = [bytes.fromhex(s.removeprefix("0x")) for s in vector["shards"]]
    piece, total = (4, 6) if case.parent.name == "tiny" else (684, 1023)
    assert chunks(data, piece, total) == want


def test_chunks_of_a_multi_piece_blob_are_the_pieces_coded_one_by_one() -> None:
    blob = bytes(range(256)) * 8  # 2048 octets: 3 pieces
    whole = chunks(blob)
    padded = blob + bytes(3 * 684 - len(blob))
    for p in range(3):
        # T split_2^#(split_2k(d)): piece p is word p of each 6-octet group (GP eq. erasurecoding).
        piece = b"".join(padded[6 * i + 2 * p : 6 * i + 2 * p + 2] for i in range(342))
        alone = chunks(piece)
        assert [c[2 * p : 2 * p + 2] for c in whole] == alone


def test_segment_chunks_batch_equals_one_segment_at_a_time() -> None:
    segs = [bytes([i + 1]) * W_G for i in range(3)]
    proofs = paged_proofs(segs)
    batched = segment_chunks(segs)
    one_by_one = [chunks(s) for s in segs + proofs]
    assert batched == [[c[i] for c in one_by_one] for i in range(1023)]


def test_paged_proofs_of_two_pages_hold_the_other_half_of_the_tree() -> None:
    segs = [i.to_bytes(2, "little") * (W_G // 2) for i in range(65)]
    leaves = [h(b"leaf" + s) for s in segs] + [bytes(32)] * 63  # C(s): 128 leaves
    first, second = paged_proofs(segs)
    assert len(first) == len(second) == W_G
    # E(↕path, ↕page leaves): path of depth log2(128) - 6 = 1, the opposite half's node.
    assert first[:33] == b"\x01" + n(leaves[64:])
    assert first[33:34] == b"\x40" and first[34 : 34 + 64 * 32] == b"".join(leaves[:64])
    assert second[:33] == b"\x01" + n(leaves[:64])
    assert second[33:34 + 32] == b"\x01" + leaves[64]
    assert second[34 + 32 :] == bytes(W_G - 66)


def _report(code: bytes, extrinsic: bytes, exports: int):  # type: ignore[no-untyped-def]
    item = WorkItem(
        SERVICE, h(code), 100_000, 5_000, exports, b"pay",
        extrinsic=(ExtrinsicSpec(h(extrinsic), len(extrinsic)),),
    )  # fmt: skip
    context = RefineContext(b"\x01" * 32, b"\x02" * 32, b"\x03" * 32, b"\x04" * 32, 9)
    package = WorkPackage(5, bytes(32), context, b"token", b"cfg", (item,))
    blobs = {h(code): code, h(extrinsic): extrinsic}
    outcome = refine_package(
        package,
        code_lookup=lambda s, c: blobs.get(c),
        preimage_lookup=lambda s, x: blobs.get(x),
    )
    return package, outcome


def test_erasure_root_of_a_report_without_exports() -> None:
    code = script([])
    extrinsic = b"x" * 1000
    package, outcome = _report(code, extrinsic, 0)
    spec = outcome.report.package_spec
    bundle = package.encode() + extrinsic  # E(p, x̄) with no imports or justifications
    assert spec.length == len(bundle)
    bundle_hashes = [h(c) for c in chunks(bundle)]
    want = m_b([b + bytes(32) for b in bundle_hashes])  # s♣_i = M_B([]) = zero hash
    assert spec.erasure_root == want
    assert spec.erasure_root != bytes(32)


def test_erasure_root_of_a_report_with_two_exports() -> None:
    code = script([(7, {7: b"seg-one", 8: 7}), (7, {7: b"two", 8: 3})])
    package, outcome = _report(code, b"ext", 2)
    s0, s1 = b"seg-one" + bytes(W_G - 7), b"two" + bytes(W_G - 3)
    assert outcome.exports == [s0, s1]
    # P(s): one page, an empty path (depth 1 - 6 < 0) and the two leaf hashes.
    page = b"\x00" + b"\x02" + h(b"leaf" + s0) + h(b"leaf" + s1)
    page += bytes(W_G - len(page))
    per_segment = [chunks(s) for s in (s0, s1, page)]
    segment_roots = [m_b([c[i] for c in per_segment]) for i in range(1023)]
    bundle_hashes = [h(c) for c in chunks(package.encode() + b"ext")]
    want = m_b([b + s for b, s in zip(bundle_hashes, segment_roots, strict=True)])
    assert outcome.report.package_spec.erasure_root == want


def test_erasure_root_depends_on_the_exports() -> None:
    from jamhost.engine.erasure import erasure_root

    bundle = b"bundle"
    one, two = erasure_root(bundle, [bytes(W_G)]), erasure_root(bundle, [b"\x01" * W_G])
    assert len({one, two, erasure_root(bundle, [])}) == 3
    assert erasure_root(bundle, [bytes(W_G)]) == one  # kept, and still the same


@pytest.mark.parametrize("count", [1, 2, 3, 5, 64, 65, 67])
def test_validator_trees_built_together_are_each_m_b(count: int) -> None:
    """merkle.well_balanced_roots (all validators' trees at once, bottom nodes from one
    string) against this file's own M_B of each list."""
    from jamhost.engine.merkle import well_balanced_roots

    lists = [[bytes([i, j]) * 6 for j in range(count)] for i in range(5)]
    want = [m_b(v) for v in lists]

    def values(j: int) -> list[bytes]:
        return [v[j] for v in lists]

    def pairs(j: int) -> list[bytes]:
        return [v[j] + v[j + 1] for v in lists]

    assert well_balanced_roots(count, values) == want
    assert well_balanced_roots(count, values, pairs) == want


def test_segment_roots_of_many_pages_match_one_segment_at_a_time() -> None:
    """130 exports (3 proof pages, an odd count of blobs): s♣ from the batched coding equals
    M_B over each validator's chunks of each blob coded on its own."""
    from jamhost.engine.erasure import _segment_roots

    segs = [hashlib.blake2b(bytes([i, i >> 8]), digest_size=32).digest() * 128 + bytes(8)
            for i in range(130)]
    blobs = segs + paged_proofs(segs)
    assert len(blobs) == 133
    per_blob = [chunks(b) for b in blobs]
    want = [m_b([c[i] for c in per_blob]) for i in range(1023)]
    assert _segment_roots(segs, 684, 1023) == want


@pytest.mark.parametrize("name", ["ec-3", "ec-32", "ec-100"])
def test_erasure_root_of_a_one_piece_bundle_from_the_vectors_shards(name: str) -> None:
    """The one-piece, no-export case (its own coder and tree, engine/erasure.py) against the
    vectors' shards hashed and merklized by this file's M_B."""
    from jamhost.engine.erasure import erasure_root

    vector = json.loads((VECTORS / "full" / f"{name}.json").read_text())
    data = bytes.fromhex(vector["data"].removeprefix("0x"))
    shards = [bytes.fromhex(s.removeprefix("0x")) for s in vector["shards"]]
    assert erasure_root(data, []) == m_b([h(s) + bytes(32) for s in shards])


@pytest.mark.parametrize("size", [0, 1, 2, 683, 684])
def test_one_piece_coder_equals_the_fft_coder_at_the_edges(size: int) -> None:
    """Empty, odd, and exactly one piece: the linear one-piece coder against the FFT coder
    that the multi-piece vectors check."""
    from jamhost.engine.erasure import _chunk_array, erasure_root

    blob = bytes((7 * i + 1) % 256 for i in range(size))
    fft = [bytes(row) for row in _chunk_array(blob, 684, 1023)]
    assert chunks(blob) == fft
    assert erasure_root(blob, []) == m_b([h(c) + bytes(32) for c in fft])
