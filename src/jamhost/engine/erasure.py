"""Erasure coding of GP 0.7.2 appendix H and the erasure root of GP 0.7.2 §14.4.

The code is the systematic Reed-Solomon code over GF(2^16) (x^16 + x^5 + x^3 + x^2 + 1,
words in the Cantor basis, little-endian octet pairs) "of the algorithm of Lin, Chung and Han"
that appendix H names: the additive FFT in the novel polynomial basis, as the reference
implementation (paritytech/erasure-coding on reed-solomon-simd) computes it and as the
`erasure/` vectors record it. Its low-rate form is what both parameter sets use (342 of 1023
in full, 2 of 6 in tiny): the n original words and zeros up to the next power of two m are
taken to coefficients by an inverse FFT at skew 0, and the recovery words are the FFT of those
coefficients at skews m, 2m, ... (the polynomial of degree < m through the originals and the
padding zeros, evaluated at the points m, m + 1, ...). The appendix's prose speaks of a
polynomial of degree < 342; the vectors, which the whole JAM ecosystem shares, are the rule.

Pure Python, two representations of the same butterflies:
- one list of words per piece (few pieces: a segment, a small bundle), table lookups;
- one int per word position holding every piece as a 16-bit lane (many pieces: a large
  bundle), where GF addition is one XOR over all pieces and multiplication by a constant is
  16 shift-and-mask-multiply steps, since x -> c*x is linear over GF(2) and a 0/1 lane times a
  16-bit constant never carries into the next lane. docs/benchmarks.md has the costs.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from functools import cache, lru_cache

from jamhost.domain.codec import encode_natural
from jamhost.domain.hashing import blake2b_256
from jamhost.engine.merkle import ZERO_HASH, node, well_balanced_root

__all__ = [
    "LANE_THRESHOLD",
    "chunks",
    "erasure_root",
    "paged_proofs",
    "segment_chunks",
]

_GF_ORDER = 1 << 16
_GF_MODULUS = _GF_ORDER - 1
_GF_POLYNOMIAL = 0x1002D
# The Cantor basis v_0..v_15 of GP 0.7.2 appendix H, each in the standard basis.
_CANTOR_BASIS = (
    0x0001, 0xACCA, 0x3C0E, 0x163E, 0xC582, 0xED2E, 0x914C, 0x4012,
    0x6C98, 0x10D8, 0x6A72, 0xB900, 0xFDB8, 0xFB34, 0xFF38, 0x991E,
)  # fmt: skip

#: From this many pieces on, the lane representation is faster than one list per piece.
LANE_THRESHOLD = 4


def _add_mod(x: int, y: int) -> int:
    total = x + y
    return (total + (total >> 16)) & _GF_MODULUS


@lru_cache(maxsize=1)
def _tables() -> tuple[list[int], list[int], list[int]]:
    """exp, log (of Cantor-basis words) and the FFT skew factors (as logs), built once."""
    exp = [0] * _GF_ORDER
    log = [0] * _GF_ORDER
    state = 1
    for i in range(_GF_MODULUS):
        exp[state] = i
        state <<= 1
        if state >= _GF_ORDER:
            state ^= _GF_POLYNOMIAL
    exp[0] = _GF_MODULUS
    for i, basis in enumerate(_CANTOR_BASIS):
        width = 1 << i
        for j in range(width):
            log[j + width] = log[j] ^ basis
    log = [exp[v] for v in log]
    for i in range(_GF_ORDER):
        exp[log[i]] = i
    exp[_GF_MODULUS] = exp[0]

    def mul(x: int, log_m: int) -> int:
        return 0 if x == 0 else exp[_add_mod(log[x], log_m)]

    skew = [0] * _GF_MODULUS
    temp = [1 << i for i in range(1, 16)]
    for m in range(15):
        step = 1 << (m + 1)
        skew[(1 << m) - 1] = 0
        for i in range(m, 15):
            s = 1 << (i + 1)
            for j in range((1 << m) - 1, s, step):
                skew[j + s] = skew[j] ^ temp[i]
        temp[m] = _GF_MODULUS - log[mul(temp[m], log[temp[m] ^ 1])]
        for i in range(m + 1, 15):
            temp[i] = mul(temp[i], _add_mod(log[temp[i] ^ 1], temp[m]))
    skew = [log[v] for v in skew]
    return exp, log, skew


def _butterflies(
    size: int, truncated: int, skew_delta: int, inverse: bool
) -> list[tuple[int, int, int]]:
    """(a, dist, log_m) of each butterfly block of one (I)FFT, in execution order."""
    skew = _tables()[2]
    out = []
    dists = []
    dist = 1 if inverse else size // 2
    while 0 < dist < size:
        dists.append(dist)
        dist = dist * 2 if inverse else dist // 2
    for dist in dists:
        for r in range(0, truncated, 2 * dist):
            out.append((r, dist, skew[r + dist + skew_delta - 1]))
    return out


@lru_cache(maxsize=8)
def _plan(original: int, total: int) -> tuple[int, list, list[tuple[int, list]]]:
    """The low-rate encoder's steps for `original` of `total` words (reed-solomon-simd)."""
    recovery = total - original
    chunk = 1 << (original - 1).bit_length()
    if chunk >= 1 << (recovery - 1).bit_length() or chunk + recovery > _GF_ORDER:
        raise ValueError(f"no low-rate code for {original} of {total} words")
    ifft = _butterflies(chunk, original, 0, inverse=True)
    ffts = []
    for start in range(0, recovery, chunk):
        count = min(chunk, recovery - start)
        ffts.append((start, _butterflies(chunk, count, start + chunk, inverse=False)))
    return chunk, ifft, ffts


@lru_cache(maxsize=8)
def _plane_plan(original: int, total: int) -> tuple[list, list[list]]:
    """The butterflies of `_plan` as whole-layer steps over bit planes (see _encode_planes):
    per layer the shift to the partner positions, the mask of the positions a, and for each
    output bit r the (input bit s, mask) pairs of the per-position constants' 16x16 matrices.
    Built once: a few thousand ints of at most 512 bits."""
    exp, log, _ = _tables()
    _chunk, ifft, ffts = _plan(original, total)

    def layers(steps: list[tuple[int, int, int]]) -> list:
        out: list = []
        by_dist: dict[int, list[tuple[int, int]]] = {}
        order: list[int] = []
        for r, dist, log_m in steps:
            if dist not in by_dist:
                by_dist[dist] = []
                order.append(dist)
            by_dist[dist].append((r, log_m))
        for dist in order:
            a_mask = 0
            masks = [[0] * 16 for _ in range(16)]
            block = (1 << dist) - 1
            for r, log_m in by_dist[dist]:
                lanes = block << r
                a_mask |= lanes
                if log_m == _GF_MODULUS:
                    continue  # no multiplication in this block: its constant acts as 0
                for s in range(16):
                    column = exp[_add_mod(log[1 << s], log_m)]  # c * 2^s
                    for bit in range(16):
                        if column >> bit & 1:
                            masks[bit][s] |= lanes
            pairs = [[(s, m) for s, m in enumerate(row) if m] for row in masks]
            out.append((dist, a_mask, pairs))
        return out

    return layers(ifft), [layers(steps) for _start, steps in ffts]


# Octet -> "1" or "0" for bit s: int(..., 2) of a translated octet string packs one bit of
# every word into a plane in C, without a Python loop over the words.
_TO_DIGITS = [bytes(0x31 if (b >> s) & 1 else 0x30 for b in range(256)) for s in range(8)]
_FROM_DIGIT = bytes(1 if b == 0x31 else 0 for b in range(256))


def _encode_planes(piece: bytes, total: int) -> bytes:
    """The recovery words of one piece, as little-endian octet pairs.

    Bit-sliced: plane s is an int whose bit i is bit s of word i, so one layer of
    butterflies (all its blocks at once) is a few hundred int operations whatever the layer's
    width: the partner words are the plane shifted by the distance, and multiplying each
    block by its own constant is XORing the shifted planes under per-constant masks."""
    original = len(piece) // 2
    ifft, ffts = _plane_plan(original, total)
    low, high = piece[-2::-2], piece[-1::-2]  # the words' octets, last word first
    planes = [int(low.translate(t), 2) for t in _TO_DIGITS]
    planes += [int(high.translate(t), 2) for t in _TO_DIGITS]

    def times(shift: int, a_mask: int, pairs: list, x: list[int]) -> list[int]:
        shifted = [(p >> shift) & a_mask for p in x]
        out = []
        for row in pairs:
            acc = 0
            for s, mask in row:
                acc ^= shifted[s] & mask
            out.append(acc)
        return out

    for shift, a_mask, pairs in ifft:
        planes = [p ^ ((p & a_mask) << shift) for p in planes]
        planes = [p ^ q for p, q in zip(planes, times(shift, a_mask, pairs, planes), strict=True)]
    recovered: list[bytes] = []
    chunk = 1 << (original - 1).bit_length()
    for steps in ffts:
        work = planes
        for shift, a_mask, pairs in steps:
            work = [p ^ q for p, q in zip(work, times(shift, a_mask, pairs, work), strict=True)]
            work = [p ^ ((p & a_mask) << shift) for p in work]
        octets = [0, 0]
        for s, plane in enumerate(work):
            # bit i of the plane -> octet lane i holding 0 or 1, then moved to bit s % 8
            digits = format(plane & ((1 << chunk) - 1), f"0{chunk}b")[::-1]
            lane = int.from_bytes(digits.encode().translate(_FROM_DIGIT), "little")
            octets[s >> 3] |= lane << (s & 7)
        words = bytearray(2 * chunk)
        words[0::2] = octets[0].to_bytes(chunk, "little")
        words[1::2] = octets[1].to_bytes(chunk, "little")
        recovered.append(bytes(words))
    return b"".join(recovered)[: 2 * (total - original)]


def _encode_lanes(positions: Sequence[int], lanes: int, total: int) -> list[int]:
    """The recovery positions of `lanes` pieces at once: position i is an int whose 16-bit
    lane p is word i of piece p."""
    exp, log, _ = _tables()
    ones = int.from_bytes(b"\x01\x00" * lanes, "little")  # bit 0 of every lane

    @cache
    def columns(log_m: int) -> tuple[int, ...]:
        # c * 2^s for s = 0..15: the images of the basis bits under x -> c*x.
        return tuple(exp[_add_mod(log[1 << s], log_m)] for s in range(16))

    def times(x: int, log_m: int) -> int:
        acc = 0
        for s, col in enumerate(columns(log_m)):
            acc ^= ((x >> s) & ones) * col
        return acc

    original = len(positions)
    chunk, ifft, ffts = _plan(original, total)
    coeffs = list(positions) + [0] * (chunk - original)
    for r, dist, log_m in ifft:
        for a in range(r, r + dist):
            b = a + dist
            coeffs[b] ^= coeffs[a]
            if log_m != _GF_MODULUS and coeffs[b]:
                coeffs[a] ^= times(coeffs[b], log_m)
    out: list[int] = []
    for _start, steps in ffts:
        work = list(coeffs)
        for r, dist, log_m in steps:
            for a in range(r, r + dist):
                b = a + dist
                if log_m != _GF_MODULUS and work[b]:
                    work[a] ^= times(work[b], log_m)
                work[b] ^= work[a]
        out += work
    return out[: total - original]


def _recovery(originals: list[bytes], k: int, total: int, lanes: bool | None) -> list[bytes]:
    """The recovery positions of k pieces laid out as split_{2k}: originals[i] holds word i
    of every piece, piece p at octets 2p, 2p+1."""
    width = 2 * k
    use_lanes = k >= LANE_THRESHOLD if lanes is None else lanes
    if use_lanes:
        positions = [int.from_bytes(x, "little") for x in originals]
        return [v.to_bytes(width, "little") for v in _encode_lanes(positions, k, total)]
    columns = [bytearray(width) for _ in range(total - len(originals))]
    for p in range(k):
        piece = b"".join(x[2 * p : 2 * p + 2] for x in originals)
        words = _encode_planes(piece, total)
        for i, column in enumerate(columns):
            column[2 * p : 2 * p + 2] = words[2 * i : 2 * i + 2]
    return [bytes(c) for c in columns]


def _split(padded: bytes, original: int, width: int) -> list[bytes]:
    return [padded[i * width : (i + 1) * width] for i in range(original)]


def chunks(
    data: bytes, piece_size: int = 684, total: int = 1023, *, lanes: bool | None = None
) -> list[bytes]:
    """C_k(P_{W_E}(d)) (GP 0.7.2 eq. erasurecoding): `data` zero-padded to k pieces of
    `piece_size` octets, coded to `total` chunks of 2k octets. Chunk i is word i of every
    piece, so the first piece_size/2 chunks are the padded data itself. `lanes` forces one
    representation (tests run both); None picks the faster."""
    original = piece_size // 2
    k = max(1, -(-len(data) // piece_size))
    padded = data + bytes(k * piece_size - len(data))
    originals = _split(padded, original, 2 * k)
    return originals + _recovery(originals, k, total, lanes)


def segment_chunks(
    segments: Sequence[bytes], piece_size: int = 684, total: int = 1023
) -> list[list[bytes]]:
    """C_k^#(s ++ P(s)) transposed (GP 0.7.2 §14.4, s♣ before its roots): for each
    validator, its chunk of every segment and then of every paged-proof segment. All
    segments are coded in one pass (the pieces are independent), segment j's chunk being
    octets 2kj..2k(j+1) of each position."""
    if not segments:
        return [[] for _ in range(total)]
    blobs = list(segments) + paged_proofs(segments, len(segments[0]))
    original = piece_size // 2
    k = len(blobs[0]) // piece_size
    width = 2 * k
    per_blob = [_split(b, original, width) for b in blobs]
    originals = [b"".join(split[i] for split in per_blob) for i in range(original)]
    positions = originals + _recovery(originals, k * len(blobs), total, None)
    return [
        [pos[width * j : width * (j + 1)] for j in range(len(blobs))] for pos in positions
    ]


def paged_proofs(segments: Sequence[bytes], segment_size: int = 4104) -> list[bytes]:
    """P(s) (GP 0.7.2 eq. pagedproofs): per page of 64 segments, E(↕J_6(s, i), ↕L_6(s, i))
    zero-padded to a segment: the page's path from the root and its leaf hashes."""
    count = len(segments)
    size = 1
    while size < count:
        size *= 2
    leaves = [blake2b_256(b"leaf" + s) for s in segments] + [ZERO_HASH] * (size - count)
    depth = max(0, (size.bit_length() - 1) - 6)
    pages = []
    for page in range(-(-count // 64)):
        path = _trace(leaves, 64 * page)[:depth]
        page_leaves = leaves[64 * page : min(64 * page + 64, count)]
        blob = _length_prefixed(path) + _length_prefixed(page_leaves)
        pages.append(blob + bytes(segment_size - len(blob)))
    return pages


def _trace(values: Sequence[bytes], index: int) -> list[bytes]:
    """T(v, i, H) (GP 0.7.2 appendix E): each opposite node from the top down."""
    out = []
    while len(values) > 1:
        mid = (len(values) + 1) // 2
        if index < mid:
            out.append(node(values[mid:]))
            values = values[:mid]
        else:
            out.append(node(values[:mid]))
            values, index = values[mid:], index - mid
    return out


def _length_prefixed(hashes: Sequence[bytes]) -> bytes:
    out = bytearray()
    encode_natural(out, len(hashes))
    for h in hashes:
        out += h
    return bytes(out)


_ROOTS: OrderedDict[bytes, bytes] = OrderedDict()
_ROOTS_KEPT = 16


def erasure_root(
    bundle: bytes, segments: Sequence[bytes], piece_size: int = 684, total: int = 1023
) -> bytes:
    """u of GP 0.7.2 §14.4 (availability specifier): M_B over the validators' pairs
    b♣_i ++ s♣_i, where b♣ hashes each bundle chunk and s♣ is the well-balanced root of each
    validator's segment chunks.

    A pure function of its inputs, so the last few roots are kept by the hash of the inputs:
    the attestors of one package each refine it on their own, and the second one's identical
    bundle and exports do not pay for the coding again (different exports, a different key)."""
    key = blake2b_256(
        b"".join([bundle, *segments, len(segments).to_bytes(4, "little"),
                  piece_size.to_bytes(4, "little"), total.to_bytes(4, "little")])
    )
    root = _ROOTS.get(key)
    if root is None:
        bundle_hashes = [blake2b_256(c) for c in chunks(bundle, piece_size, total)]
        segment_roots = [
            well_balanced_root(c) for c in segment_chunks(segments, piece_size, total)
        ]
        root = well_balanced_root(
            [b + s for b, s in zip(bundle_hashes, segment_roots, strict=True)]
        )
        _ROOTS[key] = root
        while len(_ROOTS) > _ROOTS_KEPT:
            _ROOTS.popitem(last=False)
    return root
