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

numpy, every piece at once: the words form a (position, piece) array of uint16, so one layer
of butterflies is a handful of array operations whatever the number of pieces and blocks
(GF addition is XOR; multiplication by a block's constant is two table look-ups, `np.take`
of log then of exp, with sentinels that make a zero word or a block without multiplication
give 0). The Merkle roots over the chunks are blake2b in hashlib, one tree shape for all
validators (merkle.well_balanced_roots). docs/benchmarks.md has the costs.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from jamhost.domain.codec import encode_natural
from jamhost.domain.hashing import blake2b_256
from jamhost.engine.merkle import (
    ZERO_HASH,
    node_pair,
    well_balanced_root,
    well_balanced_root_of_rows,
    well_balanced_roots,
)

__all__ = [
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
# log(x) + log(c) < _ZERO for any non-zero x and c; from _ZERO on, the exp table holds 0.
_ZERO = 2 * _GF_MODULUS


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


@lru_cache(maxsize=1)
def _arrays() -> tuple[np.ndarray, np.ndarray]:
    """log with log(0) = _ZERO (int32), and exp over 0..2*_ZERO: exp(t mod 65535) below
    _ZERO, 0 from there (uint16). So exp[log[x] + log_m] is x times the constant of log
    log_m, 0 for x = 0 or for log_m = _ZERO (a block that multiplies by nothing)."""
    exp, log, _ = _tables()
    log_z = np.array(log, dtype=np.int32)
    log_z[0] = _ZERO
    exp_z = np.zeros(2 * _ZERO + 1, dtype=np.uint16)
    exp_z[:_ZERO] = np.array(exp, dtype=np.uint16)[np.arange(_ZERO) % _GF_MODULUS]
    return log_z, exp_z


# One layer of one transform: (dist, blocks, the blocks' constants as logs, shape (blocks, 1, 1)).
_Layer = tuple[int, int, np.ndarray]


def _layers(size: int, truncated: int, skew_delta: int, inverse: bool) -> list[_Layer]:
    """The butterfly layers of one (I)FFT of `size` words of which the first `truncated`
    matter, in execution order: each block r (r < truncated, step 2*dist) has its skew."""
    skew = _tables()[2]
    dists = []
    dist = 1 if inverse else size // 2
    while 0 < dist < size:
        dists.append(dist)
        dist = dist * 2 if inverse else dist // 2
    out = []
    for dist in dists:
        starts = range(0, truncated, 2 * dist)
        logs = [skew[r + dist + skew_delta - 1] for r in starts]
        constants = np.array([_ZERO if v == _GF_MODULUS else v for v in logs], dtype=np.int32)
        out.append((dist, len(starts), constants.reshape(-1, 1, 1)))
    return out


@lru_cache(maxsize=8)
def _plan(original: int, total: int) -> tuple[int, list[_Layer], list[list[_Layer]]]:
    """The low-rate encoder's steps for `original` of `total` words (reed-solomon-simd):
    the chunk size m, the IFFT's layers and those of each FFT of m recovery words."""
    recovery = total - original
    chunk = 1 << (original - 1).bit_length()
    if chunk >= 1 << (recovery - 1).bit_length() or chunk + recovery > _GF_ORDER:
        raise ValueError(f"no low-rate code for {original} of {total} words")
    ifft = _layers(chunk, original, 0, inverse=True)
    ffts = [
        _layers(chunk, min(chunk, recovery - start), start + chunk, inverse=False)
        for start in range(0, recovery, chunk)
    ]
    return chunk, ifft, ffts


#: Pieces coded in one pass of array operations: the (512, pieces) working arrays and their
#: int32 temporaries stay within a core's cache (a W_B bundle's 20,164 pieces in one pass
#: cost about three times as much per piece).
_BATCH = 512


def _recovery(originals: np.ndarray, total: int) -> np.ndarray:
    """The recovery words (total - original, pieces) of the original words (original,
    pieces): column p is piece p, coded on its own but in the same array operations."""
    original, pieces = originals.shape
    out = np.empty((total - original, pieces), dtype=np.uint16)
    for start in range(0, pieces, _BATCH):
        stop = min(pieces, start + _BATCH)
        out[:, start:stop] = _recovery_batch(originals[:, start:stop], total)
    return out


def _recovery_batch(originals: np.ndarray, total: int) -> np.ndarray:
    log_z, exp_z = _arrays()
    original, pieces = originals.shape
    chunk, ifft, ffts = _plan(original, total)

    def times(b: np.ndarray, constants: np.ndarray) -> np.ndarray:
        product: np.ndarray = np.take(exp_z, np.take(log_z, b) + constants)
        return product

    coeffs = np.zeros((chunk, pieces), dtype=np.uint16)
    coeffs[:original] = originals
    for dist, blocks, constants in ifft:
        view = coeffs[: blocks * 2 * dist].reshape(blocks, 2, dist, pieces)
        a, b = view[:, 0], view[:, 1]
        b ^= a
        a ^= times(b, constants)
    out = []
    for layers in ffts:
        work = coeffs.copy()
        for dist, blocks, constants in layers:
            view = work[: blocks * 2 * dist].reshape(blocks, 2, dist, pieces)
            a, b = view[:, 0], view[:, 1]
            a ^= times(b, constants)
            b ^= a
        out.append(work)
    return np.concatenate(out)[: total - original]


def _words(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype="<u2")


def _chunk_array(data: bytes, piece_size: int, total: int) -> np.ndarray:
    """C_k(P_{W_E}(d)) as words (total, k): row i is chunk i."""
    original = piece_size // 2
    k = max(1, -(-len(data) // piece_size))
    padded = data + bytes(k * piece_size - len(data))
    positions = np.empty((total, k), dtype="<u2")
    positions[:original] = _words(padded).reshape(original, k)
    positions[original:] = _recovery(positions[:original], total)
    return positions


def chunks(data: bytes, piece_size: int = 684, total: int = 1023) -> list[bytes]:
    """C_k(P_{W_E}(d)) (GP 0.7.2 eq. erasurecoding): `data` zero-padded to k pieces of
    `piece_size` octets, coded to `total` chunks of 2k octets. Chunk i is word i of every
    piece, so the first piece_size/2 chunks are the padded data itself."""
    if len(data) <= piece_size:
        coded = _one_piece(data, piece_size, total).tobytes()
        return [coded[at : at + 2] for at in range(0, len(coded), 2)]
    return _split_rows(_chunk_array(data, piece_size, total))


@lru_cache(maxsize=4)
def _unit_recovery_logs(original: int, total: int) -> np.ndarray:
    """The recovery words of each unit piece, as logs (original, total - original), uint16:
    row j codes the piece whose word j is 1 (the field's one) and the others 0. Built once by
    the FFT coder itself (all unit pieces in one pass). None of them is 0 (the code is MDS:
    every entry of its systematic generator's parity part is non-zero), so every log is one
    of 0..65534 and no zero sentinel is needed."""
    recovery = _recovery(np.eye(original, dtype=np.uint16), total)  # (recovery, piece j)
    if not recovery.all():
        raise AssertionError("a unit piece has a zero recovery word")
    _, log, _ = _tables()
    return np.ascontiguousarray(np.array(log, dtype=np.uint16)[recovery.T])


@lru_cache(maxsize=1)
def _exp_log_words() -> tuple[np.ndarray, np.ndarray]:
    """exp (65,536 entries, exp[65535] = exp[0]) and log as uint16: the one-piece coder's
    tables, 128 KiB each (`_arrays`' exp over sums with a zero sentinel is 512 KiB; the
    one-piece coder multiplies non-zero words only, and its random look-ups are the cache
    misses of a package's coding)."""
    exp, log, _ = _tables()
    return np.array(exp, dtype=np.uint16), np.array(log, dtype=np.uint16)


@lru_cache(maxsize=1)
def _word_hashes() -> np.ndarray:
    """H(w) of every 2-octet chunk w (65,536 x 32 octets, 2 MiB, made once per process in
    about 50 ms): a one-piece bundle's 1023 chunk hashes become one gather."""
    table = b"".join(hashlib.blake2b(w.to_bytes(2, "little"), digest_size=32).digest()
                     for w in range(_GF_ORDER))
    return np.frombuffer(table, dtype=np.uint8).reshape(_GF_ORDER, 32)


def _one_piece(data: bytes, piece_size: int, total: int) -> np.ndarray:
    """C_1 of a blob of at most one piece, as its `total` words (chunk i is word i).

    The code is linear over GF(2^16), so the recovery words are the sum (XOR) over the
    piece's non-zero words x_j of x_j times unit piece j's recovery words: one gather and one
    reduction over the words the blob has (a report's bundle is mostly short, and its padding
    costs nothing), instead of the FFT's few dozen array operations on one column."""
    original = piece_size // 2
    words = np.zeros(total, dtype="<u2")
    given = np.frombuffer(data + bytes(len(data) % 2), dtype="<u2")
    words[: len(given)] = given
    present = np.flatnonzero(given)
    if present.size:
        exp, log = _exp_log_words()
        sums = _unit_recovery_logs(original, total)[present].astype(np.uint32)
        sums += np.take(log, given[present])[:, None]  # log x_j + log unit_j, below 2 * 65535
        sums += sums >> 16  # mod 65535, as _add_mod (65535 itself: exp[65535] = exp[0])
        sums &= _GF_MODULUS
        words[original:] = np.bitwise_xor.reduce(np.take(exp, sums), axis=0)
    return words


def _segment_chunk_array(segments: Sequence[bytes], piece_size: int, total: int) -> np.ndarray:
    """Every validator's chunk of every blob of s ++ P(s), as words (blob, validator, k):
    [j, i] is blob j's chunk for validator i (2k octets)."""
    blobs = list(segments) + paged_proofs(segments, len(segments[0]))
    original = piece_size // 2
    k = len(blobs[0]) // piece_size
    # (blob, word position, piece) -> (word position, blob, piece): all blobs' pieces side by
    # side, so blob j's pieces are columns kj..k(j+1) (each blob coded as C_k on its own).
    words = _words(b"".join(blobs)).reshape(len(blobs), original, k)
    positions = np.empty((total, len(blobs), k), dtype="<u2")
    positions[:original] = words.transpose(1, 0, 2)
    flat = positions.reshape(total, -1)
    flat[original:] = _recovery(flat[:original], total)
    return np.ascontiguousarray(positions.transpose(1, 0, 2))


def _split_rows(rows: np.ndarray) -> list[bytes]:
    data = rows.tobytes()
    width = len(data) // len(rows)
    return [data[at : at + width] for at in range(0, len(data), width)]


def segment_chunks(
    segments: Sequence[bytes], piece_size: int = 684, total: int = 1023
) -> list[list[bytes]]:
    """C_k^#(s ++ P(s)) transposed (GP 0.7.2 §14.4, s♣ before its roots): for each
    validator, its chunk of every segment and then of every paged-proof segment. All
    segments are coded in one pass (the pieces are independent)."""
    if not segments:
        return [[] for _ in range(total)]
    columns = [_split_rows(blob) for blob in _segment_chunk_array(segments, piece_size, total)]
    return [[column[i] for column in columns] for i in range(total)]


def paged_proofs(segments: Sequence[bytes], segment_size: int = 4104) -> list[bytes]:
    """P(s) (GP 0.7.2 eq. pagedproofs): per page of 64 segments, E(↕J_6(s, i), ↕L_6(s, i))
    zero-padded to a segment: the page's path from the root and its leaf hashes.

    C(s) is padded to a power of two, so N over it is the perfect tree: its levels are
    hashed once, and a page's path T(C(s), 64p)[:depth] is, from the top down, the sibling at
    each level of the node above the page (level h: node 64p >> h, sibling that ^ 1)."""
    count = len(segments)
    size = 1
    while size < count:
        size *= 2
    leaves = [blake2b_256(b"leaf" + s) for s in segments] + [ZERO_HASH] * (size - count)
    levels = [leaves]
    while len(levels[-1]) > 1:
        below = levels[-1]
        levels.append(list(map(node_pair, below[0::2], below[1::2])))
    height = size.bit_length() - 1
    pages = []
    for page in range(-(-count // 64)):
        index = 64 * page
        path = [levels[h][(index >> h) ^ 1] for h in range(height - 1, 5, -1)]
        page_leaves = leaves[index : min(index + 64, count)]
        blob = _length_prefixed(path) + _length_prefixed(page_leaves)
        pages.append(blob + bytes(segment_size - len(blob)))
    return pages


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
    hasher = hashlib.blake2b(bundle, digest_size=32)
    for segment in segments:
        hasher.update(segment)
    for number in (len(segments), piece_size, total):
        hasher.update(number.to_bytes(4, "little"))
    key = hasher.digest()
    root = _ROOTS.get(key)
    if root is None:
        if len(bundle) <= piece_size and not segments:
            root = _one_piece_root(bundle, piece_size, total)
        else:
            # each chunk hashed where it lies (a row of the coded array is contiguous)
            bundle_hashes = [blake2b_256(c) for c in _chunk_array(bundle, piece_size, total)]
            segment_roots = _segment_roots(segments, piece_size, total)
            root = well_balanced_root(
                [b + s for b, s in zip(bundle_hashes, segment_roots, strict=True)]
            )
        _ROOTS[key] = root
        while len(_ROOTS) > _ROOTS_KEPT:
            _ROOTS.popitem(last=False)
    return root


def _one_piece_root(bundle: bytes, piece_size: int, total: int) -> bytes:
    """The common case: a bundle of one piece and no exports. Each chunk is one word, so
    b♣_i is a look-up in the word hashes; s♣_i is the zero hash (M_B of no chunks); the
    pairs b♣_i ++ s♣_i lie end to end in one string for the tree. The zero words (the
    bundle's padding to a piece, most of the systematic half) make one repeated pair, whose
    subtrees the tree hashes once (merkle.well_balanced_root_of_rows)."""
    words = _one_piece(bundle, piece_size, total)
    hashes = _word_hashes()
    rows = np.zeros((total, 64), dtype=np.uint8)
    rows[:, :32] = hashes[words]
    blanks_before = np.zeros(total + 1, dtype=np.int64)
    np.cumsum(words == 0, out=blanks_before[1:])
    return well_balanced_root_of_rows(rows.tobytes(), 64, hashes[0].tobytes() + ZERO_HASH,
                                      blanks_before.tolist())


def _segment_roots(segments: Sequence[bytes], piece_size: int, total: int) -> list[bytes]:
    """s♣: M_B of each validator's chunks of s ++ P(s), all validators' trees at once."""
    if not segments:
        return [ZERO_HASH] * total
    coded = _segment_chunk_array(segments, piece_size, total)

    def pairs(j: int) -> list[bytes]:  # blob j's chunk ++ blob j + 1's, per validator
        return _split_rows(np.concatenate((coded[j], coded[j + 1]), axis=1))

    return well_balanced_roots(len(coded), lambda j: _split_rows(coded[j]), pairs)
