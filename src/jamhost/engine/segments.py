"""Imported segments (GP 0.7.2 §14.3, §14.4): what a guarantor gathers for a package's imports.

An item's import `(r, n)` names segment n of an earlier package's exports, by its segments
root r (h ∈ H) or by the exporting package's hash (h⊞), which the report's segment-root lookup
l turns into the root (L of GP §14.4). The guarantor gives refine the segments
(S(w), fetch selectors 5 and 6) and puts them, with their justifications
J(w) = [↕J_0(s, n)], into the audit bundle b = E(p, x̄, ī, j̄).

The engine does no I/O: `ImportLookup` (the caller's D³L, jamhost's segment store) answers an
import with the segment, its justification and its tree's root, and the engine checks the
justification against that root before it uses the segment. A justification is derived from
the one paged-proof page of the segment's page (GP eq. pagedproofs: each justification "can be
derived through a single paged-proof"), so the store keeps exactly s ++ P(s).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from jamhost.domain.codec import Decoder, encode_natural
from jamhost.domain.hashing import blake2b_256
from jamhost.domain.types import ImportSpec, SegmentRootLookupItem, WorkPackage
from jamhost.engine.constants import ProtocolConstants
from jamhost.engine.merkle import ZERO_HASH

__all__ = [
    "PAGE_LEAVES",
    "ImportLookup",
    "ImportedSegment",
    "ProofPage",
    "Imports",
    "fold_path",
    "justification_from_page",
    "resolve_imports",
    "unavailable",
]

#: Leaves per paged-proof page (2^6, GP eq. pagedproofs).
PAGE_LEAVES = 64
#: |l| ≤ 8: distinct package hashes one report may look up (GP 0.7.2 §14.4).
MAX_SEGMENT_ROOT_LOOKUPS = 8


class ImportUnavailable(ValueError):
    """An import the package names cannot be given (the guarantor would not guarantee it)."""


@dataclass(frozen=True, slots=True)
class ImportedSegment:
    """One import as the D³L gives it: the segment, J_0(s, n) and the root of s."""

    segment: bytes
    justification: tuple[bytes, ...]
    segments_root: bytes


#: lookup(import spec) -> the segment, or None when it is not available to this package.
ImportLookup = Callable[[ImportSpec], "ImportedSegment | None"]


@dataclass(frozen=True, slots=True)
class Imports:
    """ī and the bundle's import part for a package, with the report's l."""

    segments: list[list[bytes]]
    """S(w) per item: what fetch selectors 5 and 6 read."""
    bundle_part: bytes
    """ī ++ j̄ of b: every imported segment, then every ↕J_0, in item order."""
    segment_root_lookup: tuple[SegmentRootLookupItem, ...]
    """l: package hash -> segments root for the imports named by package hash, by key."""


def unavailable(item: int, position: int) -> str:
    """The one answer for an import that cannot be given, whatever the reason (missing,
    another tenant's, expired, out of its tree): which import, never why."""
    return f"items[{item}].import_segments[{position}] names a segment that is not available"


def fold_path(segment: bytes, index: int, path: Sequence[bytes]) -> bytes:
    """The constant-depth root a segment and its path J_0 (top down) lead to (GP appendix E:
    the leaf H("leaf" ++ s), then one N per level, the index's bit choosing the side)."""
    value = blake2b_256(b"leaf" + segment)
    for level, sibling in enumerate(reversed(path)):
        if (index >> level) & 1:
            value = blake2b_256(b"node" + sibling + value)
        else:
            value = blake2b_256(b"node" + value + sibling)
    return value


def _hashes(d: Decoder) -> list[bytes]:
    return [d.raw(32) for _ in range(d.natural())]


@dataclass(frozen=True, slots=True)
class ProofPage:
    """One decoded paged proof P(s)[p] (GP eq. pagedproofs): the page's path J_6 from the
    root, and every level of the page's subtree (level 0: its leaf hashes, padded with zero
    hashes to the page's width as C pads the whole tree; the last: the page's root)."""

    path: tuple[bytes, ...]
    levels: tuple[tuple[bytes, ...], ...]

    @classmethod
    def decode(cls, page: bytes, count: int) -> ProofPage:
        """The page of a tree of `count` segments."""
        d = Decoder(page)
        path = _hashes(d)
        leaves = _hashes(d)
        size = 1
        while size < count:
            size *= 2
        level = leaves + [ZERO_HASH] * (min(PAGE_LEAVES, size) - len(leaves))
        levels = [tuple(level)]
        while len(level) > 1:
            level = [blake2b_256(b"node" + level[k] + level[k + 1])
                     for k in range(0, len(level), 2)]
            levels.append(tuple(level))
        return cls(tuple(path), tuple(levels))

    def justification(self, index: int) -> list[bytes]:
        """J_0(s, n) for n = `index` on this page: the page's path, then n's siblings in the
        page's subtree from its top down (T of GP appendix E on a power-of-two tree)."""
        i = index % PAGE_LEAVES
        inner = [self.levels[k][(i >> k) ^ 1] for k in reversed(range(len(self.levels) - 1))]
        return list(self.path) + inner


def justification_from_page(page: bytes, index: int, count: int) -> list[bytes]:
    """J_0(s, n) of GP 0.7.2 eq. constantdepthsubtreemerklejust from the paged proof
    P(s)[n // 64] = E(↕J_6(s, n // 64), ↕L_6(s, n // 64)) of a tree of `count` segments."""
    return ProofPage.decode(page, count).justification(index)


def _length_prefixed(hashes: Sequence[bytes]) -> bytes:
    out = bytearray()
    encode_natural(out, len(hashes))
    for h in hashes:
        out += h
    return bytes(out)


def resolve_imports(
    package: WorkPackage, lookup: ImportLookup | None, constants: ProtocolConstants
) -> Imports:
    """Gather every import of the package through `lookup` and check it (GP 0.7.2 §14.4).

    Raises ImportUnavailable when the package imports more than W_M segments, looks up more than 8
    package hashes, or names a segment `lookup` does not give or whose justification does not
    lead to its root (one message shape for every such import: which one, not why)."""
    specs = [spec for item in package.items for spec in item.import_segments]
    if not specs:
        return Imports([[] for _ in package.items], b"", ())
    if len(specs) > constants.max_package_imports:
        raise ImportUnavailable(f"the package imports more than W_M = "
                           f"{constants.max_package_imports} segments")
    if lookup is None:
        raise ImportUnavailable("import segments are not available")
    roots: dict[bytes, bytes] = {}
    segments: list[list[bytes]] = []
    data: list[bytes] = []
    proofs: list[bytes] = []
    for i, item in enumerate(package.items):
        mine: list[bytes] = []
        for j, spec in enumerate(item.import_segments):
            found = lookup(spec)
            key = spec.tree_root if spec.is_package_hash else None
            if (found is None
                    or (key is None and found.segments_root != spec.tree_root)
                    or (key is not None and roots.get(key, found.segments_root)
                        != found.segments_root)
                    or fold_path(found.segment, spec.segment_index, found.justification)
                    != found.segments_root):
                raise ImportUnavailable(unavailable(i, j))
            if key is not None:
                roots[key] = found.segments_root
            mine.append(found.segment)
            data.append(found.segment)
            proofs.append(_length_prefixed(found.justification))
        segments.append(mine)
    if len(roots) > MAX_SEGMENT_ROOT_LOOKUPS:
        raise ImportUnavailable(f"the package names more than {MAX_SEGMENT_ROOT_LOOKUPS} "
                           "exporting packages by hash")
    lookups = tuple(SegmentRootLookupItem(h, r) for h, r in sorted(roots.items()))
    return Imports(segments, b"".join(data) + b"".join(proofs), lookups)
