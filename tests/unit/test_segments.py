"""Imported segments in refine (GP 0.7.2 §14.3, §14.4): justifications from paged proofs, the
segment-root lookup, fetch selectors 5 and 6, the bundle b = E(p, x̄, ī, j̄).

The Merkle tree, paths and the path check here are written in the test from the GP formulas
(appendix E: C pads H("leaf" ++ s_i) with zero hashes to a power of two, N hashes "node" ++
left ++ right, T lists the opposite nodes top down), not taken from the code under test.
"""

from __future__ import annotations

import hashlib

import pytest

from jamhost.domain.types import ImportSpec, RefineContext, WorkItem, WorkPackage
from jamhost.engine import RefineInputError, refine_package
from jamhost.engine.erasure import erasure_root, paged_proofs
from jamhost.engine.segments import ImportedSegment, justification_from_page
from jamhost.examples import segments as example

SERVICE = 70_000
W_G = 4104
BY_HASH = 1 << 15


def h(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=32).digest()


def leaves(segments: list[bytes]) -> list[bytes]:
    """C(s): leaf hashes padded with zero hashes to the next power of two."""
    size = 1
    while size < len(segments):
        size *= 2
    return [h(b"leaf" + s) for s in segments] + [bytes(32)] * (size - len(segments))


def subtree(values: list[bytes]) -> bytes:
    if len(values) == 1:
        return values[0]
    half = len(values) // 2
    return h(b"node" + subtree(values[:half]) + subtree(values[half:]))


def path(segments: list[bytes], n: int) -> list[bytes]:
    """J_0(s, n): from the root down, the sibling subtree's root at each level."""
    values, out = leaves(segments), []
    while len(values) > 1:
        half = len(values) // 2
        if n < half:
            out.append(subtree(values[half:]))
            values = values[:half]
        else:
            out.append(subtree(values[:half]))
            values, n = values[half:], n - half
    return out


def verifies(segment: bytes, n: int, proof: list[bytes], root: bytes) -> bool:
    """Walk up from the leaf: bit k of n (from the bottom) says whether we are the right
    child at that level."""
    value = h(b"leaf" + segment)
    for level, sibling in enumerate(reversed(proof)):
        value = (h(b"node" + sibling + value) if (n >> level) & 1
                 else h(b"node" + value + sibling))
    return value == root


def segs(count: int, tag: bytes = b"") -> list[bytes]:
    return [(tag + b"segment %d" % i).ljust(W_G, b"\x5a") for i in range(count)]


@pytest.mark.parametrize("count", [1, 2, 3, 64, 65, 130])
def test_justification_from_the_page_is_the_gp_path(count: int) -> None:
    s = segs(count)
    root = subtree(leaves(s))
    proofs = paged_proofs(s)
    assert len(proofs) == -(-count // 64)
    for n in sorted({0, 1 % count, count // 2, 63 % count, count - 1}):
        got = justification_from_page(proofs[n // 64], n, count)
        assert got == path(s, n)
        assert len(got) == (count - 1).bit_length()  # ceil(log2 |s|)
        assert verifies(s[n], n, got, root)
        assert not verifies(s[n][:-1] + b"\0", n, got, root)


CODE = example.build()
CONTEXT = RefineContext(b"\x01" * 32, b"\x02" * 32, b"\x03" * 32, b"\x04" * 32, 9)


def package(*items: WorkItem) -> WorkPackage:
    return WorkPackage(5, bytes(32), CONTEXT, b"token", b"cfg", items)


def refine(p: WorkPackage, lookup=None):  # type: ignore[no-untyped-def]
    return refine_package(p, code_lookup=lambda s, c: CODE if c == h(CODE) else None,
                          preimage_lookup=lambda s, x: None, import_lookup=lookup)


def exported() -> tuple[WorkPackage, list[bytes], bytes]:
    body = b"\x01" + b"exported by package one"
    p = package(WorkItem(SERVICE, h(CODE), 10**6, 1_000, 2, body))
    out = refine(p)
    return p, out.exports, out.report.package_spec.exports_root


def test_imports_by_root_and_by_package_hash_reach_fetch_and_the_report() -> None:
    first, exports, root = exported()
    assert exports == [body.ljust(W_G, b"\0") for body in
                       (b"exported by package one", b"xported by package one")]
    assert root == subtree(leaves(exports))
    first_hash = h(first.encode())
    d3l = {root: exports}  # what jamhost's segment store gives, built here from GP formulas

    def lookup(spec: ImportSpec) -> ImportedSegment | None:
        key = root if spec.tree_root == first_hash and spec.is_package_hash else spec.tree_root
        tree = d3l.get(key)
        n = spec.segment_index
        if tree is None or n >= len(tree):
            return None
        return ImportedSegment(tree[n], tuple(path(tree, n)), key)

    specs = (ImportSpec(root, 1), ImportSpec(first_hash, 0 | BY_HASH))
    second = package(
        WorkItem(SERVICE, h(CODE), 10**6, 1_000, 0, bytes([6, 2, 12]), import_segments=specs),
        WorkItem(SERVICE, h(CODE), 10**6, 1_000, 0, bytes([5, 2, 9])))  # item 0's, via 5
    out = refine(second, lookup)
    own, other = out.report.results
    assert own.result.output == b"xported by p" + b"exported by "
    assert other.result.output == b"xported b" + b"exported "
    assert own.refine_load.imports == 2 and other.refine_load.imports == 0
    assert out.report.segment_root_lookup[0].work_package_hash == first_hash
    assert [(x.work_package_hash, x.segment_tree_root)
            for x in out.report.segment_root_lookup] == [(first_hash, root)]
    # b = E(p) ++ x̄ (none) ++ ī ++ j̄, each justification ↕J_0 (depth 1: one hash).
    bundle = (second.encode() + exports[1] + exports[0]
              + b"\x01" + path(exports, 1)[0] + b"\x01" + path(exports, 0)[0])
    assert out.report.package_spec.length == len(bundle)
    assert out.report.package_spec.erasure_root == erasure_root(bundle, [])


def test_an_import_that_is_missing_or_does_not_verify_is_refused() -> None:
    _, exports, root = exported()
    item = WorkItem(SERVICE, h(CODE), 10**6, 1_000, 0, bytes([6, 1, 4]),
                    import_segments=(ImportSpec(root, 0),))
    with pytest.raises(RefineInputError, match=r"items\[0\].import_segments\[0\]"):
        refine(package(item), lambda spec: None)
    with pytest.raises(RefineInputError, match="not available"):
        refine(package(item))  # no segment store at all
    wrong = ImportedSegment(exports[0], (bytes(32),), root)  # a path that does not lead there
    with pytest.raises(RefineInputError, match="not available"):
        refine(package(item), lambda spec: wrong)
    other_root = ImportedSegment(exports[0], tuple(path(exports, 0)), h(b"another tree"))
    with pytest.raises(RefineInputError, match="not available"):
        refine(package(item), lambda spec: other_root)


def test_more_than_eight_package_hashes_are_refused() -> None:
    specs = tuple(ImportSpec(h(b"%d" % i), BY_HASH) for i in range(9))
    item = WorkItem(SERVICE, h(CODE), 10**6, 1_000, 0, bytes([6, 0, 0]), import_segments=specs)
    tree = segs(1)

    def lookup(spec: ImportSpec) -> ImportedSegment:
        return ImportedSegment(tree[0], (), subtree(leaves(tree)))

    with pytest.raises(RefineInputError, match="more than 8"):
        refine(package(item), lookup)
