/* The erasure root's Merkle tree in C: BLAKE2b-256 (RFC 7693, unkeyed, 32-octet digest)
 * and M_B of GP 0.7.2 appendix E over values of one width laid end to end, with exactly
 * the semantics of jamhost/engine/merkle.py `well_balanced_root_of_rows` (the reference,
 * which the unit tests compare this with, and which runs when the extension is not built).
 *
 * Why here: a one-piece package's availability root is 1022 node hashes, each a Python
 * call into hashlib (about 0.7 us of interpreter work for 1-2 compressions of 0.1 us); the
 * loop in C is the same hashes without the calls, and runs without the GIL. It lives in the
 * native PVM core's extension only because that is the one C extension jamhost builds. */

#ifndef JAMHOST_MERKLE_H
#define JAMHOST_MERKLE_H

#include <stdint.h>
#include <string.h>

static const uint64_t B2B_IV[8] = {
    0x6a09e667f3bcc908ULL, 0xbb67ae8584caa73bULL, 0x3c6ef372fe94f82bULL,
    0xa54ff53a5f1d36f1ULL, 0x510e527fade682d1ULL, 0x9b05688c2b3e6c1fULL,
    0x1f83d9abfb41bd6bULL, 0x5be0cd19137e2179ULL,
};

static const uint8_t B2B_SIGMA[12][16] = {
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
    {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
    {11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4},
    {7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8},
    {9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13},
    {2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9},
    {12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11},
    {13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10},
    {6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5},
    {10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0},
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
    {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
};

static inline uint64_t b2b_rotr(uint64_t x, int n) { return (x >> n) | (x << (64 - n)); }

#define B2B_G(a, b, c, d, x, y)                 \
    do {                                        \
        v[a] = v[a] + v[b] + (x);               \
        v[d] = b2b_rotr(v[d] ^ v[a], 32);       \
        v[c] = v[c] + v[d];                     \
        v[b] = b2b_rotr(v[b] ^ v[c], 24);       \
        v[a] = v[a] + v[b] + (y);               \
        v[d] = b2b_rotr(v[d] ^ v[a], 16);       \
        v[c] = v[c] + v[d];                     \
        v[b] = b2b_rotr(v[b] ^ v[c], 63);       \
    } while (0)

static void b2b_compress(uint64_t h[8], const uint8_t block[128], uint64_t t, int last) {
    uint64_t m[16], v[16];
    memcpy(m, block, 128); /* little-endian host (checked by _native.c) */
    for (int i = 0; i < 8; i++) {
        v[i] = h[i];
        v[i + 8] = B2B_IV[i];
    }
    v[12] ^= t; /* messages here are far below 2^64 octets: the high counter word is 0 */
    if (last) v[14] = ~v[14];
    _Pragma("GCC unroll 12") for (int r = 0; r < 12; r++) {
        const uint8_t *s = B2B_SIGMA[r];
        B2B_G(0, 4, 8, 12, m[s[0]], m[s[1]]);
        B2B_G(1, 5, 9, 13, m[s[2]], m[s[3]]);
        B2B_G(2, 6, 10, 14, m[s[4]], m[s[5]]);
        B2B_G(3, 7, 11, 15, m[s[6]], m[s[7]]);
        B2B_G(0, 5, 10, 15, m[s[8]], m[s[9]]);
        B2B_G(1, 6, 11, 12, m[s[10]], m[s[11]]);
        B2B_G(2, 7, 8, 13, m[s[12]], m[s[13]]);
        B2B_G(3, 4, 9, 14, m[s[14]], m[s[15]]);
    }
    for (int i = 0; i < 8; i++) h[i] ^= v[i] ^ v[i + 8];
}

/* BLAKE2b-256 of `n` octets at `d` into `out` (32 octets). */
static void blake2b_256(const uint8_t *d, size_t n, uint8_t out[32]) {
    uint64_t h[8];
    memcpy(h, B2B_IV, sizeof h);
    h[0] ^= 0x01010000ULL ^ 32u; /* fanout 1, depth 1, no key, 32-octet digest */
    uint64_t t = 0;
    while (n > 128) {
        t += 128;
        b2b_compress(h, d, t, 0);
        d += 128;
        n -= 128;
    }
    uint8_t last[128] = {0};
    memcpy(last, d, n);
    b2b_compress(h, last, t + n, 1);
    memcpy(out, h, 32);
}

#define MERKLE_MAX_WIDTH 256

/* N(values[lo:hi]) (GP eq. E.1) of values `width` octets each at `rows`: the value itself
 * for one (its `width` octets into `out`, *len = width), else H("node" ++ N(left) ++
 * N(right)) with the left half the larger (*len = 32). */
static void merkle_node(const uint8_t *rows, size_t width, size_t lo, size_t hi,
                        uint8_t *out, size_t *len) {
    if (hi - lo == 1) {
        memcpy(out, rows + lo * width, width);
        *len = width;
        return;
    }
    uint8_t msg[4 + 2 * MERKLE_MAX_WIDTH];
    size_t mid = lo + (hi - lo + 1) / 2, left, right;
    memcpy(msg, "node", 4);
    merkle_node(rows, width, lo, mid, msg + 4, &left);
    merkle_node(rows, width, mid, hi, msg + 4 + left, &right);
    blake2b_256(msg, 4 + left + right, out);
    *len = 32;
}

static PyObject *native_merkle_rows(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer b;
    Py_ssize_t width;
    if (!PyArg_ParseTuple(args, "y*n", &b, &width)) return NULL;
    if (width < 1 || width > MERKLE_MAX_WIDTH || b.len < 2 * width || b.len % width) {
        PyBuffer_Release(&b);
        PyErr_SetString(PyExc_ValueError,
                        "merkle_rows: two or more values of 1 to 256 octets each");
        return NULL;
    }
    uint8_t root[MERKLE_MAX_WIDTH];
    size_t len;
    Py_BEGIN_ALLOW_THREADS
    merkle_node(b.buf, (size_t)width, 0, (size_t)(b.len / width), root, &len);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&b);
    return PyBytes_FromStringAndSize((const char *)root, (Py_ssize_t)len);
}

#endif
