/* jamhost's native PVM core: GP 0.7.2 appendix A in C, with exactly the semantics of the
 * pure-Python engine (jamhost/pvm/interpreter.py is the reference).
 *
 * Program: the blob is kept (a reference to the bytes object) and checked once (GP eq. A.2
 * deblob); basic blocks are decoded on first entry into an instruction array (one header
 * entry carrying the block's gas cost, then the instructions), and a pc -> block map makes
 * every later entry a single load. Branch targets are checked against ϖ (GP eq. A.5) when
 * their block is decoded and resolved to block indices on first use. Loading a blob thus
 * costs its validation plus a zeroed map; a block is decoded once, when it first runs.
 *
 * Machine: 13 registers, gas, and a flat page table of 2^20 tagged words (page pointer |
 * flags) for the 32-bit space; pages are allocated on first touch, as the Python Memory
 * materialises lazily mapped pages, so every observable (including which pages sbrk may
 * turn writable) matches.
 *
 * Gas is charged per basic block at its header (GP charges ϱ_Δ = 1 per instruction; the
 * refund on an early exit makes the observable figure the per-instruction one). When the
 * gas left does not cover the block, the header marks the first instruction that cannot be
 * paid and execution stops before it with gas 0 (GP eq. A.1 ε = ∞). */

#define _GNU_SOURCE /* mremap */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stdint.h>
#include <string.h>
#include <stdlib.h>
#include <sys/mman.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the native PVM core assumes a little-endian host"
#endif

#define LIKELY(x) __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)

#define NREG 13
#define PAGE 4096u
#define PAGE_SHIFT 12
#define NPAGES (1u << 20)
#define LOW_PAGES 16u /* pages below 2^16 never map (GP §A.4) */
#define HALT_ADDRESS 0xFFFF0000u
#define MAX_SKIP 24
#define MAP_SLACK 32 /* pcs past the code that a fallthrough can reach (trap blocks) */
#define MAX_CODE ((uint64_t)1 << 31)

/* page-table word: page pointer (4096-aligned) | flags */
#define PF_R 1u    /* allocated and readable */
#define PF_W 2u    /* allocated and writable */
#define PF_LAZY 4u /* mapped, not yet allocated (all zero) */
#define PF_LAZY_W 8u
#define PF_FLAGS 4095u

/* exit kinds, shared with native.py */
enum { X_HALT = 0, X_PANIC = 1, X_OOG = 2, X_FAULT = 3, X_HOST = 4, X_YIELD = 5 };
/* X_YIELD: the run stopped at a block header, the block not yet charged, to call the machine's
 * safe_point (run_to_exit below); it never leaves the core. */

/* argument kinds of GP §A.5.1-A.5.13 */
enum {
    K_NONE, K_ONE_IMM, K_REG_EXT_IMM, K_TWO_IMM, K_OFFSET, K_REG_IMM, K_REG_TWO_IMM,
    K_REG_IMM_OFFSET, K_TWO_REG, K_TWO_REG_IMM, K_TWO_REG_OFFSET, K_TWO_REG_TWO_IMM,
    K_THREE_REG, K_INVALID
};

#define OP_BLOCK 255 /* pseudo-op: block header, x = gas cost */
#define OP_FALLTHROUGH_BLOCK 254 /* pseudo-op: a block of one fallthrough, header alone */
#define OP_CONTINUE 253 /* pseudo-op: a block cut at MAX_CHUNK goes on at next_pc */
#define MAX_CHUNK 64
/* A basic block is decoded in pieces of at most MAX_CHUNK instructions, each with its own
 * header: a block of 2 M straight-line instructions entered with 1,000 gas decoded all of
 * them (9 ms for 1,000 gas); now at most 64 past the last one paid for. Charging a block
 * piece by piece is charging it instruction by instruction, as the GP does. */
#define YIELD_GAS (1 << 16)
/* A run holds the GIL (blocks are decoded into shared per-program arrays). Every YIELD_GAS
 * gas it reaches a safe point at a block header: a machine with a safe_point calls it there
 * (cooperative preemption, docs/scheduling.md; the hook is Python, whose eval loop hands
 * the GIL to a thread that asked for it). Every GIL_EVERY safe points (2^20 gas, some 1.5 ms
 * of native run) it also lets other threads take the GIL (PyEval_SaveThread), so a long run
 * in an in-process worker does not stall the API's threads nor the other worker. Not more
 * often: CPython's waiter asks the holder to drop the GIL only when its switch interval
 * (0.1 ms, app/worker.py) passed with no switch, and a drop-and-retake counts as one; a
 * hand-over every 2^16 gas (about 0.1 ms) reset that clock each time, so the waiter never
 * asked and starved (2026-12-02: a quiet tenant's package on the other worker waited for
 * a whole 0.2 s package of another's). The gas is counted per machine
 * (Machine.yield_left), across host-call exits and runs. */
#define GIL_EVERY 16
#define GIL_HANDOVER(m) do { \
        if (((m)->yields & (GIL_EVERY - 1)) == 0) { \
            PyThreadState *ts_ = PyEval_SaveThread(); PyEval_RestoreThread(ts_); } } while (0)

static uint8_t ARG_KIND[256];
static void *const *HANDLERS; /* execute()'s label table, filled by execute(NULL) */
static uint8_t TERMINATOR[256]; /* T of GP §A.3 */

static void init_tables(void) {
    for (int i = 0; i < 256; i++) ARG_KIND[i] = K_INVALID;
    ARG_KIND[0] = ARG_KIND[1] = K_NONE;
    ARG_KIND[10] = K_ONE_IMM;
    ARG_KIND[20] = K_REG_EXT_IMM;
    for (int i = 30; i <= 33; i++) ARG_KIND[i] = K_TWO_IMM;
    ARG_KIND[40] = K_OFFSET;
    for (int i = 50; i <= 62; i++) ARG_KIND[i] = K_REG_IMM;
    for (int i = 70; i <= 73; i++) ARG_KIND[i] = K_REG_TWO_IMM;
    for (int i = 80; i <= 90; i++) ARG_KIND[i] = K_REG_IMM_OFFSET;
    for (int i = 100; i <= 111; i++) ARG_KIND[i] = K_TWO_REG;
    for (int i = 120; i <= 161; i++) ARG_KIND[i] = K_TWO_REG_IMM;
    for (int i = 170; i <= 175; i++) ARG_KIND[i] = K_TWO_REG_OFFSET;
    ARG_KIND[180] = K_TWO_REG_TWO_IMM;
    for (int i = 190; i <= 230; i++) ARG_KIND[i] = K_THREE_REG;
    memset(TERMINATOR, 0, sizeof TERMINATOR);
    TERMINATOR[0] = TERMINATOR[1] = TERMINATOR[40] = TERMINATOR[50] = 1;
    TERMINATOR[80] = TERMINATOR[180] = 1;
    for (int i = 81; i <= 90; i++) TERMINATOR[i] = 1;
    for (int i = 170; i <= 175; i++) TERMINATOR[i] = 1;
}

/* ---------------------------------------------------------------------------------------- */
/* Program                                                                                   */

typedef struct {
    const void *h; /* the run loop's handler for op (computed goto) */
    uint8_t op, a, b, d;
    uint32_t pc;
    uint32_t next_pc;
    int32_t t; /* branch/jump target block: -1 unresolved, -2 not in ϖ (panic) */
    uint64_t x, y;
} Ins;

typedef struct {
    PyObject_HEAD
    PyObject *blob;     /* keeps code and mask alive */
    const uint8_t *code;
    const uint8_t *mask; /* packed k, LSB first */
    uint64_t len;        /* |c| */
    uint64_t *jt;        /* jump table j */
    int32_t *jt_block;   /* resolved block per entry: -1 unresolved, -2 invalid */
    uint64_t jlen;
    int jt_shared;       /* zero-width entries: jt[0] / jt_block[0] stand for all */
    uint32_t *map;       /* pc -> block header index + 1, for pc < len + MAP_SLACK */
    Ins *ins;
    uint64_t n_ins, cap_ins;
    size_t ins_bytes;    /* of the mapping, once cap_ins >= INS_MAPPED_FROM */
    uint64_t n_starts;   /* popcount of k, for the cost estimate */
} Program;

static inline int kbit(const Program *p, uint64_t i) {
    if (i >= p->len) return 1; /* k ++ [1, 1, ...] */
    return (p->mask[i >> 3] >> (i & 7)) & 1;
}

/* GP eq. A.3 skip */
static inline uint32_t skip_at(const Program *p, uint64_t pc) {
    for (uint32_t j = 0; j < MAX_SKIP; j++)
        if (kbit(p, pc + 1 + j)) return j;
    return MAX_SKIP;
}

/* GP eq. A.19 opcode(n): c_n if k_n = 1 and c_n ∈ U, else trap */
static inline uint8_t opcode_at(const Program *p, uint64_t pc) {
    if (pc < p->len && kbit(p, pc)) {
        uint8_t op = p->code[pc];
        return ARG_KIND[op] != K_INVALID ? op : 0;
    }
    return 0;
}

/* ϖ membership (GP eq. A.5) as program.py computes it: a valid opcode at an instruction
 * start that is 0 or follows an instruction whose code octet is a terminator. */
static int is_block_start(const Program *p, int64_t t) {
    if (t < 0 || (uint64_t)t >= p->len) return 0;
    if (!kbit(p, (uint64_t)t) || ARG_KIND[p->code[t]] == K_INVALID) return 0;
    if (t == 0) return 1;
    /* the previous instruction ends at t only if it is the nearest start within 25 octets */
    for (int64_t n = t - 1; n >= 0 && t - n <= MAX_SKIP + 1; n--)
        if (kbit(p, (uint64_t)n)) return TERMINATOR[p->code[n]];
    return 0;
}

/* E^-1 of ζ_{start..+n}, zero past the code (GP eq. A.4) */
static inline uint64_t zeta(const Program *p, uint64_t start, uint32_t n) {
    uint64_t v = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t at = start + i;
        if (at >= p->len) break;
        v |= (uint64_t)p->code[at] << (8 * i);
    }
    return v;
}

static inline uint8_t octet(const Program *p, uint64_t i) { return i < p->len ? p->code[i] : 0; }

/* GP eq. A.16 X_n (unsigned representation) */
static inline uint64_t sext(uint64_t v, uint32_t n) {
    if (n == 0) return 0;
    if (n >= 8) return v;
    uint32_t bits = 8 * n;
    uint64_t sign = (uint64_t)1 << (bits - 1);
    return (v ^ sign) - sign;
}

static inline int64_t signed_n(uint64_t v, uint32_t n) { return (int64_t)sext(v, n); }

static inline uint32_t min_u32(uint32_t a, uint32_t b) { return a < b ? a : b; }
static inline uint8_t reg_of(uint32_t v) { return (uint8_t)(v > 12 ? 12 : v); }

/* Large zeroed tables (page table, pc map) come straight from mmap: zero pages are mapped
 * lazily by the kernel, and malloc's adaptive mmap threshold would otherwise turn a freed
 * big calloc into a memset of the whole table on every instantiation. */
static void *zalloc(size_t size) {
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static void zfree(void *p, size_t size) {
    if (p) munmap(p, size);
}

#define INS_MAPPED_FROM (((size_t)1 << 20) / sizeof(Ins)) /* entries: mmapped from here */
#define INS_POOL 4
#define INS_POOL_BYTES ((size_t)256 << 20)

/* Instruction arrays of freed programs, kept mapped for the next ones (the GIL guards the
 * pool). A cold program decodes one block per instruction it runs, 80 octets for a
 * one-instruction block, and first-touch page faults of fresh memory were half the cost of
 * running such code once; a recycled array is already backed (its old content is simply
 * overwritten by decoding). At most INS_POOL arrays and INS_POOL_BYTES are kept. */
static struct { void *at; size_t bytes; } ins_pool[INS_POOL];
static int ins_pool_n = 0;
static size_t ins_pool_bytes = 0;

static void ins_release(void *at, size_t bytes) {
    /* keep the largest arrays: evict smaller pooled ones while over the bounds */
    while (ins_pool_n && (ins_pool_n >= INS_POOL || ins_pool_bytes + bytes > INS_POOL_BYTES)) {
        int small = 0;
        for (int i = 1; i < ins_pool_n; i++)
            if (ins_pool[i].bytes < ins_pool[small].bytes) small = i;
        if (ins_pool[small].bytes >= bytes) break;
        munmap(ins_pool[small].at, ins_pool[small].bytes);
        ins_pool_bytes -= ins_pool[small].bytes;
        ins_pool[small] = ins_pool[--ins_pool_n];
    }
    if (ins_pool_n < INS_POOL && ins_pool_bytes + bytes <= INS_POOL_BYTES) {
        ins_pool[ins_pool_n].at = at;
        ins_pool[ins_pool_n].bytes = bytes;
        ins_pool_n++;
        ins_pool_bytes += bytes;
        return;
    }
    munmap(at, bytes);
}

/* A mapping of at least `bytes`: the largest pooled one if it fits, else a new one. */
static void *ins_acquire(size_t bytes, size_t *got) {
    int best = -1;
    for (int i = 0; i < ins_pool_n; i++)
        if (ins_pool[i].bytes >= bytes && (best < 0 || ins_pool[i].bytes > ins_pool[best].bytes))
            best = i;
    if (best >= 0) {
        void *at = ins_pool[best].at;
        *got = ins_pool[best].bytes;
        ins_pool_bytes -= *got;
        ins_pool[best] = ins_pool[--ins_pool_n];
        return at;
    }
    void *at = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (at == MAP_FAILED) return NULL;
    *got = bytes;
    return at;
}

static void ins_free(Program *p) {
    if (p->cap_ins >= INS_MAPPED_FROM) ins_release(p->ins, p->ins_bytes);
    else free(p->ins);
}

/* The decoded-instruction array grows by doubling: malloc'd while small, then mmapped
 * (recycled through ins_pool, grown in place by mremap). */
static int grow_ins(Program *p, uint64_t need) {
    if (p->n_ins + need <= p->cap_ins) return 0;
    uint64_t cap = p->cap_ins ? p->cap_ins : 256;
    while (cap < p->n_ins + need) cap *= 2;
    if (cap > INT32_MAX) return -1;
    if (cap < INS_MAPPED_FROM) {
        Ins *ni = realloc(p->ins, cap * sizeof(Ins));
        if (!ni) return -1;
        p->ins = ni;
        p->cap_ins = cap;
        return 0;
    }
    size_t got = cap * sizeof(Ins);
    Ins *ni;
    if (p->cap_ins >= INS_MAPPED_FROM) {
        void *at = mremap(p->ins, p->ins_bytes, got, MREMAP_MAYMOVE);
        if (at == MAP_FAILED) return -1;
        ni = at;
    } else {
        ni = ins_acquire(got, &got);
        if (!ni) return -1;
        /* the whole old array: block_at decodes a block past n_ins before counting it */
        if (p->cap_ins) memcpy(ni, p->ins, p->cap_ins * sizeof(Ins));
        free(p->ins);
    }
    p->ins = ni;
    p->ins_bytes = got;
    p->cap_ins = got / sizeof(Ins);
    return 0;
}

static int32_t target_state(const Program *p, int64_t target) {
    return is_block_start(p, target) ? -1 : -2;
}

/* Decode one instruction at pc (program.py Program._decode). */
static void decode_one(const Program *p, uint64_t pc, Ins *o) {
    uint8_t op = opcode_at(p, pc);
    uint32_t ell = skip_at(p, pc);
    uint8_t o1 = octet(p, pc + 1);
    uint32_t lx, ly;
    memset(o, 0, sizeof *o);
    o->op = op;
    o->h = HANDLERS[op];
    o->pc = (uint32_t)pc;
    o->next_pc = (uint32_t)(pc + 1 + ell);
    o->t = -2;
    switch (ARG_KIND[op]) {
    case K_NONE:
        break;
    case K_ONE_IMM:
        lx = min_u32(4, ell);
        o->x = sext(zeta(p, pc + 1, lx), lx);
        break;
    case K_REG_EXT_IMM:
        o->a = reg_of(o1 % 16);
        o->x = zeta(p, pc + 2, 8);
        break;
    case K_TWO_IMM:
        lx = min_u32(4, o1 % 8);
        ly = ell > lx + 1 ? min_u32(4, ell - lx - 1) : 0;
        o->x = sext(zeta(p, pc + 2, lx), lx);
        o->y = sext(zeta(p, pc + 2 + lx, ly), ly);
        break;
    case K_OFFSET:
        lx = min_u32(4, ell);
        o->y = (uint64_t)((int64_t)pc + signed_n(zeta(p, pc + 1, lx), lx));
        o->t = target_state(p, (int64_t)o->y);
        break;
    case K_REG_IMM:
        lx = ell > 1 ? min_u32(4, ell - 1) : 0;
        o->a = reg_of(o1 % 16);
        o->x = sext(zeta(p, pc + 2, lx), lx);
        break;
    case K_REG_TWO_IMM:
        lx = min_u32(4, (o1 / 16) % 8);
        ly = ell > lx + 1 ? min_u32(4, ell - lx - 1) : 0;
        o->a = reg_of(o1 % 16);
        o->x = sext(zeta(p, pc + 2, lx), lx);
        o->y = sext(zeta(p, pc + 2 + lx, ly), ly);
        break;
    case K_REG_IMM_OFFSET:
        lx = min_u32(4, (o1 / 16) % 8);
        ly = ell > lx + 1 ? min_u32(4, ell - lx - 1) : 0;
        o->a = reg_of(o1 % 16);
        o->x = sext(zeta(p, pc + 2, lx), lx);
        o->y = (uint64_t)((int64_t)pc + signed_n(zeta(p, pc + 2 + lx, ly), ly));
        o->t = target_state(p, (int64_t)o->y);
        break;
    case K_TWO_REG:
        o->d = reg_of(o1 % 16);
        o->a = reg_of(o1 / 16);
        break;
    case K_TWO_REG_IMM:
        lx = ell > 1 ? min_u32(4, ell - 1) : 0;
        o->a = reg_of(o1 % 16);
        o->b = reg_of(o1 / 16);
        o->x = sext(zeta(p, pc + 2, lx), lx);
        break;
    case K_TWO_REG_OFFSET:
        lx = ell > 1 ? min_u32(4, ell - 1) : 0;
        o->a = reg_of(o1 % 16);
        o->b = reg_of(o1 / 16);
        o->y = (uint64_t)((int64_t)pc + signed_n(zeta(p, pc + 2, lx), lx));
        o->t = target_state(p, (int64_t)o->y);
        break;
    case K_TWO_REG_TWO_IMM:
        lx = min_u32(4, octet(p, pc + 2) % 8);
        ly = ell > lx + 2 ? min_u32(4, ell - lx - 2) : 0;
        o->a = reg_of(o1 % 16);
        o->b = reg_of(o1 / 16);
        o->x = sext(zeta(p, pc + 3, lx), lx);
        o->y = sext(zeta(p, pc + 3 + lx, ly), ly);
        break;
    case K_THREE_REG:
        o->a = reg_of(o1 % 16);
        o->b = reg_of(o1 / 16);
        o->d = reg_of(octet(p, pc + 2));
        break;
    default:
        break;
    }
}

/* The block starting at pc (decoded on first use): header index, or -1 on allocation failure.
 * pc < len + MAP_SLACK. */
static int32_t block_at(Program *p, uint64_t pc) {
    uint32_t m = p->map[pc];
    if (LIKELY(m)) return (int32_t)(m - 1);
    uint64_t h = p->n_ins, n = 0, cur = pc;
    if (opcode_at(p, pc) == 1) {
        /* A lone fallthrough (the cheapest instruction, one octet) is its header alone: half
         * the memory and work for code made of them, which costs most to run once. */
        if (UNLIKELY(h + 1 > p->cap_ins) && grow_ins(p, 1) < 0) return -1;
        Ins *ft = &p->ins[h];
        memset(ft, 0, sizeof *ft);
        ft->op = OP_FALLTHROUGH_BLOCK;
        ft->h = HANDLERS[OP_FALLTHROUGH_BLOCK];
        ft->pc = (uint32_t)pc;
        ft->next_pc = (uint32_t)(pc + 1 + skip_at(p, pc));
        ft->x = 1;
        p->n_ins += 1;
        p->map[pc] = (uint32_t)(h + 1);
        return (int32_t)h;
    }
    /* one pass: instructions decoded in place after the header's slot, written last */
    uint64_t extra = 0;
    for (;;) {
        if (UNLIKELY(h + n + 3 > p->cap_ins) && grow_ins(p, n + 3) < 0) return -1;
        Ins *o = &p->ins[h + 1 + n];
        decode_one(p, cur, o);
        n++;
        if (TERMINATOR[o->op] || o->op == 10) break;
        cur = o->next_pc;
        if (n == MAX_CHUNK) {
            Ins *c = &p->ins[h + 1 + n];
            memset(c, 0, sizeof *c);
            c->op = OP_CONTINUE;
            c->h = HANDLERS[OP_CONTINUE];
            c->pc = (uint32_t)cur;
            c->next_pc = (uint32_t)cur;
            extra = 1;
            break;
        }
    }
    Ins *hdr = &p->ins[h];
    memset(hdr, 0, sizeof *hdr);
    hdr->op = OP_BLOCK;
    hdr->h = HANDLERS[OP_BLOCK];
    hdr->pc = (uint32_t)pc;
    hdr->x = n;
    p->n_ins += n + 1 + extra;
    p->map[pc] = (uint32_t)(h + 1);
    return (int32_t)h;
}

static void Program_dealloc(Program *p) {
    Py_XDECREF(p->blob);
    free(p->jt);
    free(p->jt_block);
    zfree(p->map, (p->len + MAP_SLACK) * sizeof(uint32_t));
    ins_free(p);
    Py_TYPE(p)->tp_free((PyObject *)p);
}

/* GP §C.1 variable-length natural */
static int decode_natural(const uint8_t *d, uint64_t n, uint64_t *off, uint64_t *out) {
    if (*off >= n) return -1;
    uint8_t first = d[*off];
    uint32_t extra = 0;
    while (extra < 8 && (first & (0x80 >> extra))) extra++;
    if (*off + 1 + extra > n) return -1;
    uint64_t tail = 0;
    for (uint32_t i = 0; i < extra; i++) tail |= (uint64_t)d[*off + 1 + i] << (8 * i);
    if (extra == 8) {
        *out = tail;
    } else {
        uint64_t high = first & ((1u << (7 - extra)) - 1);
        *out = tail + (high << (8 * extra));
    }
    *off += 1 + extra;
    return 0;
}

static PyTypeObject ProgramType;

/* load(blob) -> Program or None when the blob does not deblob (GP eq. A.2 ∇) */
static PyObject *native_load(PyObject *self, PyObject *arg) {
    (void)self;
    if (!PyBytes_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "blob must be bytes");
        return NULL;
    }
    const uint8_t *d = (const uint8_t *)PyBytes_AS_STRING(arg);
    uint64_t n = (uint64_t)PyBytes_GET_SIZE(arg);
    uint64_t off = 0, jlen, clen;
    if (decode_natural(d, n, &off, &jlen) < 0) Py_RETURN_NONE;
    if (off >= n) Py_RETURN_NONE;
    uint64_t z = d[off++];
    if (decode_natural(d, n, &off, &clen) < 0) Py_RETURN_NONE;
    /* every length is bounded by the blob before any product is formed */
    if (clen > n || (z && jlen > n / z)) Py_RETURN_NONE;

    uint64_t jt_end = off + jlen * z;
    uint64_t code_end = jt_end + clen;
    uint64_t mask_len = (clen + 7) / 8;
    if (code_end + mask_len != n) Py_RETURN_NONE;
    if (clen >= MAX_CODE) {
        PyErr_SetString(PyExc_ValueError, "code larger than the native core supports");
        return NULL;
    }
    Program *p = PyObject_New(Program, &ProgramType);
    if (!p) return NULL;
    p->blob = arg;
    Py_INCREF(arg);
    p->code = d + jt_end;
    p->mask = d + code_end;
    p->len = clen;
    p->jlen = jlen;
    p->jt = NULL;
    p->jt_block = NULL;
    p->ins = NULL;
    p->n_ins = p->cap_ins = 0;
    p->map = NULL;
    p->len = clen;
    p->map = zalloc((clen + MAP_SLACK) * sizeof(uint32_t));
    /* zero-width entries all decode to 0: one shared slot stands for the whole table */
    uint64_t slots = z ? jlen : (jlen ? 1 : 0);
    p->jt_shared = !z;
    if (slots) {
        p->jt = malloc(slots * sizeof(uint64_t));
        p->jt_block = malloc(slots * sizeof(int32_t));
    }
    if (!p->map || (slots && (!p->jt || !p->jt_block))) {
        Py_DECREF(p);
        return PyErr_NoMemory();
    }
    for (uint64_t i = 0; i < slots; i++) {
        const uint8_t *e = d + off + i * z;
        uint64_t v = 0;
        int big = 0;
        for (uint64_t k = 0; k < z; k++) {
            if (k < 8) v |= (uint64_t)e[k] << (8 * k);
            else if (e[k]) big = 1;
        }
        p->jt[i] = big ? UINT64_MAX : v;
        p->jt_block[i] = -1;
    }
    /* popcount of k by octet table (the build has no popcnt instruction: the builtin was a
     * libgcc call per octet, a millisecond for a 4 MB program) */
    static uint8_t bits[256];
    if (!bits[255])
        for (int i = 1; i < 256; i++) bits[i] = (uint8_t)(bits[i >> 1] + (i & 1));
    uint64_t starts = 0;
    for (uint64_t i = 0; i + 1 < mask_len; i++) starts += bits[p->mask[i]];
    if (mask_len) {
        uint32_t tail_bits = (uint32_t)(clen - 8 * (mask_len - 1));
        starts += bits[p->mask[mask_len - 1] & ((1u << tail_bits) - 1)];
    }
    p->n_starts = starts;
    return (PyObject *)p;
}

static PyObject *Program_cost(Program *p, PyObject *unused) {
    (void)unused;
    /* blob + map + every instruction decoded twice over (blocks entered mid-way), with a
     * header and a continuation per MAX_CHUNK of them */
    uint64_t cost = (uint64_t)PyBytes_GET_SIZE(p->blob) + (p->len + MAP_SLACK) * 4 +
                    (2 * p->n_starts + 4 * p->n_starts / MAX_CHUNK + 64) * sizeof(Ins) +
                    (p->jt_shared ? 12 : p->jlen * 12);
    return PyLong_FromUnsignedLongLong(cost);
}

static PyObject *Program_decoded(Program *p, PyObject *unused) {
    (void)unused;
    return PyLong_FromUnsignedLongLong(p->n_ins);
}

static PyMethodDef Program_methods[] = {
    {"cost", (PyCFunction)Program_cost, METH_NOARGS, "bytes the decoded program may hold"},
    {"decoded", (PyCFunction)Program_decoded, METH_NOARGS, "decoded entries so far"},
    {NULL, NULL, 0, NULL},
};

static PyObject *Program_get_blob(Program *p, void *c);
static PyGetSetDef Program_getset[] = {
    {"blob", (getter)Program_get_blob, NULL, "the checked blob", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject ProgramType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "jamhost.pvm._native.Program",
    .tp_getset = Program_getset,
    .tp_basicsize = sizeof(Program),
    .tp_dealloc = (destructor)Program_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A checked program blob with its lazily decoded basic blocks.",
    .tp_methods = Program_methods,
};

/* ---------------------------------------------------------------------------------------- */
/* Machine                                                                                   */

typedef struct {
    PyObject_HEAD
    Program *prog;
    uint64_t r[NREG];
    int64_t gas;
    int64_t pc;        /* negative or past the code: trap */
    int64_t resume_pc; /* -1: none */
    int64_t heap_top;  /* -1: no standard layout (sbrk takes h = 0) */
    int64_t heap_limit; /* highest break sbrk may reach; -1: 2^32 (memory.py heap_limit) */
    uintptr_t *pt;     /* NPAGES words */
    uint32_t *touched; /* page indices ever mapped, for teardown and listing */
    uint32_t n_touched, cap_touched;
    uint64_t fault_address;
    uint64_t host_id;
    uint64_t yields; /* times a run let other threads take the GIL */
    int64_t yield_left; /* gas the runs may still spend before the next hand-over and safe
                         * point, in [0, YIELD_GAS]: kept across exits (a host call every few
                         * gas must not reset it), YIELD_GAS at instantiation and after each */
    PyObject *safe_point; /* called every YIELD_GAS gas at a block header; NULL: never */
    struct FastHost *fh; /* host calls served in C (_fasthost.h); NULL: every call exits */
} Machine;

static int note_touched(Machine *m, uint32_t index) {
    if (m->n_touched == m->cap_touched) {
        uint32_t cap = m->cap_touched ? m->cap_touched * 2 : 64;
        uint32_t *nt = realloc(m->touched, cap * sizeof(uint32_t));
        if (!nt) return -1;
        m->touched = nt;
        m->cap_touched = cap;
    }
    m->touched[m->n_touched++] = index;
    return 0;
}

static uint8_t *new_page(void) {
    void *mem = NULL;
    if (posix_memalign(&mem, PAGE, PAGE) != 0) return NULL;
    memset(mem, 0, PAGE);
    return mem;
}

/* Memory._materialise: allocate a lazily mapped page on first touch. -1 on no memory. */
static inline int materialise(Machine *m, uint32_t index) {
    uintptr_t e = m->pt[index];
    if (!(e & PF_LAZY)) return 0;
    uint8_t *pg = new_page();
    if (!pg) return -1;
    m->pt[index] = (uintptr_t)pg | PF_R | ((e & PF_LAZY_W) ? PF_W : 0);
    return 0;
}

/* memory.py _raise_for over the unreduced indices [address, address + length): 0 when all
 * accessible, X_FAULT (fault_address set) or X_PANIC; -1 on allocation failure. */
static int check_access(Machine *m, uint64_t address, uint64_t length, int write) {
    uint64_t pos = address, end = address + length;
    uintptr_t need = write ? PF_W : PF_R;
    while (pos < end) {
        uint32_t x = (uint32_t)pos;
        if (x < (LOW_PAGES << PAGE_SHIFT)) {
            m->fault_address = x; /* MemoryPanic carries the low index itself */
            return X_PANIC;
        }
        uint32_t index = x >> PAGE_SHIFT;
        if (materialise(m, index) < 0) return -1;
        if (!(m->pt[index] & need)) {
            m->fault_address = x & ~(PAGE - 1);
            return X_FAULT;
        }
        pos = (pos | (PAGE - 1)) + 1;
    }
    return 0;
}

static inline uint8_t *page_ptr(const Machine *m, uint32_t index) {
    return (uint8_t *)(m->pt[index] & ~(uintptr_t)PF_FLAGS);
}

/* Copy out/in after a successful check, crossing pages and wrapping mod 2^32. */
static void copy_out(const Machine *m, uint32_t address, uint8_t *dst, uint64_t length) {
    while (length) {
        uint32_t off = address & (PAGE - 1);
        uint64_t n = PAGE - off < length ? PAGE - off : length;
        memcpy(dst, page_ptr(m, address >> PAGE_SHIFT) + off, n);
        dst += n;
        length -= n;
        address = (uint32_t)(address + n);
    }
}

static void copy_in(Machine *m, uint32_t address, const uint8_t *src, uint64_t length) {
    while (length) {
        uint32_t off = address & (PAGE - 1);
        uint64_t n = PAGE - off < length ? PAGE - off : length;
        memcpy(page_ptr(m, address >> PAGE_SHIFT) + off, src, n);
        src += n;
        length -= n;
        address = (uint32_t)(address + n);
    }
}

/* Slow paths of the instructions' loads and stores (n <= 8 octets at a reduced address). */
static int slow_load(Machine *m, uint32_t a, uint32_t n, uint64_t *v) {
    int rc = check_access(m, a, n, 0);
    if (rc) return rc;
    uint64_t out = 0;
    copy_out(m, a, (uint8_t *)&out, n);
    *v = out;
    return 0;
}

static int slow_store(Machine *m, uint32_t a, uint32_t n, uint64_t v) {
    int rc = check_access(m, a, n, 1);
    if (rc) return rc;
    copy_in(m, a, (const uint8_t *)&v, n);
    return 0;
}

/* Memory.map: whole pages, zero-filled when new; an allocated page keeps its content. */
static int map_pages(Machine *m, uint32_t first, uint32_t last, int writable) {
    for (uint64_t i = first; i <= last; i++) {
        uintptr_t e = m->pt[i];
        if (e == 0 && note_touched(m, (uint32_t)i) < 0) return -1;
        if (!(e & PF_R)) m->pt[i] = PF_LAZY | (writable ? PF_LAZY_W : 0);
        else if (writable) m->pt[i] = e | PF_W;
        else m->pt[i] = e & ~(uintptr_t)PF_W;
    }
    return 0;
}

/* Memory.sbrk (GP §A.5.9): -1 on allocation failure, else 0 with *out set */
static int do_sbrk(Machine *m, uint64_t size, uint64_t *out) {
    uint64_t top = m->heap_top >= 0 ? (uint64_t)m->heap_top : 0;
    if (size == 0) { *out = top; return 0; }
    if (size > ((uint64_t)1 << 32) || top + size > ((uint64_t)1 << 32)) { *out = 0; return 0; }
    if (m->heap_limit >= 0 && top + size > (uint64_t)m->heap_limit) { *out = 0; return 0; }
    uint64_t new_top = top + size;
    uint64_t first = (top + PAGE - 1) / PAGE, last = (new_top + PAGE - 1) / PAGE;
    if (first < LOW_PAGES) first = LOW_PAGES;
    for (uint64_t i = first; i < last; i++) {
        uintptr_t e = m->pt[i];
        if (e & PF_R) continue; /* allocated pages keep their access */
        if (e == 0 && note_touched(m, (uint32_t)i) < 0) return -1;
        m->pt[i] = PF_LAZY | PF_LAZY_W;
    }
    m->heap_top = (int64_t)new_top;
    *out = top;
    return 0;
}

#include "_fasthost.h"

static PyTypeObject MachineType;

/* Page tables of freed machines, all entries zero, reused by the next ones: an mmap and
 * munmap of 8 MiB per invocation would cost more than a small program's run. (The GIL
 * guards the pool.) */
#define PT_POOL 8
static uintptr_t *pt_pool[PT_POOL];
static int pt_pool_n = 0;

static int Machine_init(Machine *m, PyObject *args, PyObject *kw) {
    (void)kw;
    PyObject *prog;
    if (!PyArg_ParseTuple(args, "O!", &ProgramType, &prog)) return -1;
    Py_XSETREF(m->prog, (Program *)prog);
    Py_INCREF(prog);
    if (!m->pt) {
        m->pt = pt_pool_n ? pt_pool[--pt_pool_n] : zalloc(NPAGES * sizeof(uintptr_t));
        if (!m->pt) { PyErr_NoMemory(); return -1; }
    }
    m->resume_pc = -1;
    m->heap_top = -1;
    m->heap_limit = -1;
    m->yield_left = YIELD_GAS;
    return 0;
}

static void Machine_dealloc(Machine *m) {
    PyObject_GC_UnTrack(m);
    if (m->pt) {
        for (uint32_t i = 0; i < m->n_touched; i++) {
            uintptr_t e = m->pt[m->touched[i]];
            if (e & PF_R) free(page_ptr(m, m->touched[i]));
            m->pt[m->touched[i]] = 0;
        }
        /* every entry is zero again: keep the table for the next machine */
        if (pt_pool_n < PT_POOL) pt_pool[pt_pool_n++] = m->pt;
        else zfree(m->pt, NPAGES * sizeof(uintptr_t));
    }
    free(m->touched);
    fh_free(m->fh);
    Py_CLEAR(m->safe_point);
    Py_XDECREF(m->prog);
    Py_TYPE(m)->tp_free((PyObject *)m);
}

/* The garbage collector's view: a safe point closing over its machine is a cycle
 * (machine -> safe_point -> closure -> machine). The program holds no object references. */
static int Machine_traverse(Machine *m, visitproc visit, void *arg) {
    Py_VISIT(m->safe_point); /* (a heap subtype's traverse visits the type itself) */
    return 0;
}

static int Machine_clear(Machine *m) {
    Py_CLEAR(m->safe_point);
    return 0;
}

/* the budget left at an exit, in [0, YIELD_GAS]; 0 when overdue (past yield_at, the exit
 * before a header could stop): the next run stops at the header after its first block */
static inline int64_t yield_left(int64_t gas, int64_t yield_at) {
    int64_t left = gas - yield_at;
    return left < 0 ? 0 : left > YIELD_GAS ? YIELD_GAS : left;
}

static inline uint64_t sx32(uint64_t v) { return (uint64_t)(int64_t)(int32_t)(uint32_t)v; }
static inline uint64_t rotr64(uint64_t x, uint64_t s) {
    s &= 63;
    return s ? (x >> s) | (x << (64 - s)) : x;
}
static inline uint64_t rotr32(uint64_t v, uint64_t s) {
    uint32_t x = (uint32_t)v;
    s &= 31;
    return sx32(s ? (x >> s) | (x << (32 - s)) : x);
}

/* run(): execute from pc; returns the exit kind. On return m->pc is the exit pc. */
static int execute(Machine *m) {
    Program *p;
    uint64_t r[NREG]; /* a local copy: page stores cannot alias it, so it stays in cache lines
                         the compiler reasons about */
    uintptr_t *pt;
    int64_t gas;
    int64_t charged = 0;      /* gas taken at the current block's header */
    const Ins *hdr = NULL;    /* current block header */
    const Ins *stop = NULL;   /* first instruction the gas does not cover */
    const Ins *ins;
    int kind;
    int32_t blk;
    uint64_t cold_pc = 0;
    uint64_t a_, v_;
    uintptr_t e_;
    int rc_;

    static void *labels[256];
    static int labels_ready = 0;
    if (UNLIKELY(!labels_ready)) {
        for (int i = 0; i < 256; i++) labels[i] = &&L_TRAP;
#define SET(n) labels[n] = &&L_##n;
        SET(0) SET(1) SET(10) SET(20) SET(30) SET(31) SET(32) SET(33) SET(40) SET(50) SET(51)
        SET(52) SET(53) SET(54) SET(55) SET(56) SET(57) SET(58) SET(59) SET(60) SET(61) SET(62)
        SET(70) SET(71) SET(72) SET(73) SET(80) SET(81) SET(82) SET(83) SET(84) SET(85) SET(86)
        SET(87) SET(88) SET(89) SET(90) SET(100) SET(101) SET(102) SET(103) SET(104) SET(105)
        SET(106) SET(107) SET(108) SET(109) SET(110) SET(111) SET(120) SET(121) SET(122)
        SET(123) SET(124) SET(125) SET(126) SET(127) SET(128) SET(129) SET(130) SET(131)
        SET(132) SET(133) SET(134) SET(135) SET(136) SET(137) SET(138) SET(139) SET(140)
        SET(141) SET(142) SET(143) SET(144) SET(145) SET(146) SET(147) SET(148) SET(149)
        SET(150) SET(151) SET(152) SET(153) SET(154) SET(155) SET(156) SET(157) SET(158)
        SET(159) SET(160) SET(161) SET(170) SET(171) SET(172) SET(173) SET(174) SET(175)
        SET(180) SET(190) SET(191) SET(192) SET(193) SET(194) SET(195) SET(196) SET(197)
        SET(198) SET(199) SET(200) SET(201) SET(202) SET(203) SET(204) SET(205) SET(206)
        SET(207) SET(208) SET(209) SET(210) SET(211) SET(212) SET(213) SET(214) SET(215)
        SET(216) SET(217) SET(218) SET(219) SET(220) SET(221) SET(222) SET(223) SET(224)
        SET(225) SET(226) SET(227) SET(228) SET(229) SET(230)
#undef SET
        labels[OP_BLOCK] = &&L_BLOCK;
        labels[OP_FALLTHROUGH_BLOCK] = &&L_FALLTHROUGH_BLOCK;
        labels[OP_CONTINUE] = &&L_CONTINUE;
        labels_ready = 1;
        HANDLERS = labels;
    }
    if (!m) return 0;
    p = m->prog;
    pt = m->pt;
    gas = m->gas;
    /* the machine's budget, not a fresh one: a run that exits to the host every few gas
     * reaches its safe points all the same (saved back at every exit below) */
    int64_t yield_at = gas - m->yield_left;

    if ((uint64_t)m->pc >= p->len + MAP_SLACK) {
        /* outside the code: opcode(pc) = trap */
        if (gas < 1) { m->gas = 0; m->yield_left = yield_left(0, yield_at); return X_OOG; }
        m->gas = gas - 1;
        m->yield_left = yield_left(m->gas, yield_at);
        return X_PANIC;
    }
    blk = block_at(p, (uint64_t)m->pc);
    if (blk < 0) return -1;
    ins = &p->ins[blk];
    memcpy(r, m->r, sizeof r);

#define DISPATCH() goto *ins->h
#define NEXT() do { ins++; if (UNLIKELY(ins == stop)) goto out_of_gas; DISPATCH(); } while (0)
#define GOTO_PC(target_pc) do { \
        uint32_t m_ = p->map[(target_pc)]; \
        if (LIKELY(m_)) { ins = &p->ins[m_ - 1]; DISPATCH(); } \
        blk = block_at(p, (target_pc)); \
        if (UNLIKELY(blk < 0)) goto nomem; \
        ins = &p->ins[blk]; DISPATCH(); } while (0)
#define EXIT(k) do { kind = (k); goto finish; } while (0)
#define RA r[ins->a]
#define RB r[ins->b]
#define RD r[ins->d]

    DISPATCH();

L_CONTINUE:
    /* the block goes on in its next piece (decoded on first use): nothing to charge here */
    GOTO_PC(ins->next_pc);

L_FALLTHROUGH_BLOCK:
    /* the block [fallthrough]: charge its one gas and go on (the pc of the header is the
     * fallthrough's, so an exit here reports it). The fallthroughs that follow and have
     * never been entered are run here without being decoded at all: a run of them costs
     * a few ns each instead of a block each (the cheapest code to make, run once). */
    if (UNLIKELY(gas < 1)) goto out_of_gas;
    gas -= 1;
    {
        uint64_t next = ins->next_pc;
        while (next < p->len && p->map[next] == 0 && opcode_at(p, next) == 1) {
            if (UNLIKELY(gas < 1)) {
                cold_pc = next;
                goto out_of_gas_cold;
            }
            gas -= 1;
            next = next + 1 + skip_at(p, next);
            if (UNLIKELY(gas < yield_at)) {
                m->yields++;
                GIL_HANDOVER(m); /* `ins` is not used after this */
                yield_at = gas - YIELD_GAS;
            }
        }
        if (UNLIKELY(gas < yield_at)) {
            m->yields++;
            GIL_HANDOVER(m);
            yield_at = gas - YIELD_GAS;
        }
        GOTO_PC(next);
    }

L_BLOCK:
    if (UNLIKELY(gas < yield_at)) {
        /* another thread may decode blocks meanwhile (moving p->ins): keep an index */
        uint64_t at = (uint64_t)(ins - p->ins);
        m->yields++;
        if (!m->safe_point) GIL_HANDOVER(m); /* the hook's Python call hands it over */
        ins = &p->ins[at];
        yield_at = gas - YIELD_GAS;
        if (m->safe_point) {
            /* back to run_to_exit, which calls it and runs on from this very header: the
             * block is not charged yet, so gas, pc and registers are as if never stopped */
            memcpy(m->r, r, sizeof r);
            m->gas = gas;
            m->pc = ins->pc;
            m->yield_left = YIELD_GAS;
            return X_YIELD;
        }
    }
    hdr = ins;
    if (LIKELY(gas >= (int64_t)ins->x)) {
        charged = (int64_t)ins->x;
        gas -= charged;
    } else {
        if (gas <= 0) { ins++; goto out_of_gas; }
        charged = gas;
        stop = ins + 1 + gas;
        gas = 0;
    }
    ins++;
    DISPATCH();

/* branch to a checked target: t resolved lazily to its block */
#define TAKE_BRANCH() do { \
        int32_t t_ = ins->t; \
        if (UNLIKELY(t_ < 0)) { \
            if (t_ == -2) EXIT(X_PANIC); \
            uint64_t self_ = (uint64_t)(ins - p->ins); \
            t_ = block_at(p, ins->y); \
            if (t_ < 0) goto nomem; \
            p->ins[self_].t = t_; \
        } \
        ins = &p->ins[t_]; DISPATCH(); } while (0)

/* djump (GP eq. A.18) to address a_ */
#define DJUMP() do { \
        if (a_ == HALT_ADDRESS) EXIT(X_HALT); \
        if (a_ == 0 || (a_ & 1) || a_ / 2 > p->jlen) EXIT(X_PANIC); \
        uint64_t j_ = p->jt_shared ? 0 : a_ / 2 - 1; \
        int32_t t_ = p->jt_block[j_]; \
        if (UNLIKELY(t_ < 0)) { \
            if (t_ == -2) EXIT(X_PANIC); \
            if (p->jt[j_] > INT64_MAX || !is_block_start(p, (int64_t)p->jt[j_])) { \
                p->jt_block[j_] = -2; EXIT(X_PANIC); } \
            t_ = block_at(p, p->jt[j_]); \
            if (t_ < 0) goto nomem; \
            p->jt_block[j_] = t_; \
        } \
        ins = &p->ins[t_]; DISPATCH(); } while (0)

#define FAULT_OR_PANIC(rc) do { if ((rc) < 0) goto nomem; EXIT(rc); } while (0)

#define LOADN(addr, n, T, dest, conv) do { \
        a_ = (uint32_t)(addr); e_ = pt[a_ >> PAGE_SHIFT]; \
        if (LIKELY((e_ & PF_R) && (a_ & (PAGE - 1)) <= PAGE - (n))) { \
            T t_; memcpy(&t_, (uint8_t *)(e_ & ~(uintptr_t)PF_FLAGS) + (a_ & (PAGE - 1)), n); \
            v_ = (uint64_t)t_; \
        } else { \
            rc_ = slow_load(m, (uint32_t)a_, n, &v_); \
            if (rc_) FAULT_OR_PANIC(rc_); \
        } \
        dest = conv; NEXT(); } while (0)

#define STOREN(addr, n, T, value) do { \
        a_ = (uint32_t)(addr); e_ = pt[a_ >> PAGE_SHIFT]; v_ = (value); \
        if (LIKELY((e_ & PF_W) && (a_ & (PAGE - 1)) <= PAGE - (n))) { \
            T t_ = (T)v_; memcpy((uint8_t *)(e_ & ~(uintptr_t)PF_FLAGS) + (a_ & (PAGE - 1)), &t_, n); \
        } else { \
            rc_ = slow_store(m, (uint32_t)a_, n, v_); \
            if (rc_) FAULT_OR_PANIC(rc_); \
        } \
        NEXT(); } while (0)

L_TRAP:
L_0:
    EXIT(X_PANIC);
L_1:
    GOTO_PC(ins->next_pc);
L_10:
    m->host_id = ins->x;
    if (m->fh) {
        /* the ecalli ends its block, so the block is paid in full: no refund is due */
        rc_ = fast_call(m, ins->x, r, &gas);
        if (rc_ != FC_DEFER) {
            if (rc_ < 0) goto nomem;
            m->fh->calls++;
            if (rc_ == FC_OOG) goto out_of_gas;
            if (rc_ == FC_PANIC) EXIT(X_PANIC);
            GOTO_PC(ins->next_pc);
        }
    }
    EXIT(X_HOST);
L_20:
L_51:
    RA = ins->x; NEXT();
L_30: STOREN(ins->x, 1, uint8_t, ins->y);
L_31: STOREN(ins->x, 2, uint16_t, ins->y);
L_32: STOREN(ins->x, 4, uint32_t, ins->y);
L_33: STOREN(ins->x, 8, uint64_t, ins->y);
L_40: TAKE_BRANCH();
L_50: a_ = (uint32_t)(RA + ins->x); DJUMP();
L_52: LOADN(ins->x, 1, uint8_t, RA, v_);
L_53: LOADN(ins->x, 1, uint8_t, RA, (uint64_t)(int64_t)(int8_t)v_);
L_54: LOADN(ins->x, 2, uint16_t, RA, v_);
L_55: LOADN(ins->x, 2, uint16_t, RA, (uint64_t)(int64_t)(int16_t)v_);
L_56: LOADN(ins->x, 4, uint32_t, RA, v_);
L_57: LOADN(ins->x, 4, uint32_t, RA, (uint64_t)(int64_t)(int32_t)v_);
L_58: LOADN(ins->x, 8, uint64_t, RA, v_);
L_59: STOREN(ins->x, 1, uint8_t, RA);
L_60: STOREN(ins->x, 2, uint16_t, RA);
L_61: STOREN(ins->x, 4, uint32_t, RA);
L_62: STOREN(ins->x, 8, uint64_t, RA);
L_70: STOREN(RA + ins->x, 1, uint8_t, ins->y);
L_71: STOREN(RA + ins->x, 2, uint16_t, ins->y);
L_72: STOREN(RA + ins->x, 4, uint32_t, ins->y);
L_73: STOREN(RA + ins->x, 8, uint64_t, ins->y);
L_80: RA = ins->x; TAKE_BRANCH();
#define BR(cond) do { if (cond) TAKE_BRANCH(); GOTO_PC(ins->next_pc); } while (0)
L_81: BR(RA == ins->x);
L_82: BR(RA != ins->x);
L_83: BR(RA < ins->x);
L_84: BR(RA <= ins->x);
L_85: BR(RA >= ins->x);
L_86: BR(RA > ins->x);
L_87: BR((int64_t)RA < (int64_t)ins->x);
L_88: BR((int64_t)RA <= (int64_t)ins->x);
L_89: BR((int64_t)RA >= (int64_t)ins->x);
L_90: BR((int64_t)RA > (int64_t)ins->x);
L_100: RD = RA; NEXT();
L_101:
    if (do_sbrk(m, RA, &v_) < 0) goto nomem;
    RD = v_; NEXT();
L_102: RD = (uint64_t)__builtin_popcountll(RA); NEXT();
L_103: RD = (uint64_t)__builtin_popcount((uint32_t)RA); NEXT();
L_104: RD = RA ? (uint64_t)__builtin_clzll(RA) : 64; NEXT();
L_105: RD = (uint32_t)RA ? (uint64_t)__builtin_clz((uint32_t)RA) : 32; NEXT();
L_106: RD = RA ? (uint64_t)__builtin_ctzll(RA) : 64; NEXT();
L_107: RD = (uint32_t)RA ? (uint64_t)__builtin_ctz((uint32_t)RA) : 32; NEXT();
L_108: RD = (uint64_t)(int64_t)(int8_t)RA; NEXT();
L_109: RD = (uint64_t)(int64_t)(int16_t)RA; NEXT();
L_110: RD = RA & 0xFFFF; NEXT();
L_111: RD = __builtin_bswap64(RA); NEXT();
L_120: STOREN(RB + ins->x, 1, uint8_t, RA);
L_121: STOREN(RB + ins->x, 2, uint16_t, RA);
L_122: STOREN(RB + ins->x, 4, uint32_t, RA);
L_123: STOREN(RB + ins->x, 8, uint64_t, RA);
L_124: LOADN(RB + ins->x, 1, uint8_t, RA, v_);
L_125: LOADN(RB + ins->x, 1, uint8_t, RA, (uint64_t)(int64_t)(int8_t)v_);
L_126: LOADN(RB + ins->x, 2, uint16_t, RA, v_);
L_127: LOADN(RB + ins->x, 2, uint16_t, RA, (uint64_t)(int64_t)(int16_t)v_);
L_128: LOADN(RB + ins->x, 4, uint32_t, RA, v_);
L_129: LOADN(RB + ins->x, 4, uint32_t, RA, (uint64_t)(int64_t)(int32_t)v_);
L_130: LOADN(RB + ins->x, 8, uint64_t, RA, v_);
L_131: RA = sx32(RB + ins->x); NEXT();
L_132: RA = RB & ins->x; NEXT();
L_133: RA = RB ^ ins->x; NEXT();
L_134: RA = RB | ins->x; NEXT();
L_135: RA = sx32((uint64_t)((uint32_t)RB * (uint32_t)ins->x)); NEXT();
L_136: RA = RB < ins->x; NEXT();
L_137: RA = (int64_t)RB < (int64_t)ins->x; NEXT();
L_138: RA = sx32(RB << (ins->x & 31)); NEXT();
L_139: RA = sx32((uint32_t)RB >> (ins->x & 31)); NEXT();
L_140: RA = (uint64_t)(int64_t)((int32_t)(uint32_t)RB >> (ins->x & 31)); NEXT();
L_141: RA = sx32(ins->x - RB); NEXT();
L_142: RA = RB > ins->x; NEXT();
L_143: RA = (int64_t)RB > (int64_t)ins->x; NEXT();
L_144: RA = sx32(ins->x << (RB & 31)); NEXT();
L_145: RA = sx32((uint32_t)ins->x >> (RB & 31)); NEXT();
L_146: RA = (uint64_t)(int64_t)((int32_t)(uint32_t)ins->x >> (RB & 31)); NEXT();
L_147: if (RB == 0) RA = ins->x; NEXT();
L_148: if (RB != 0) RA = ins->x; NEXT();
L_149: RA = RB + ins->x; NEXT();
L_150: RA = RB * ins->x; NEXT();
L_151: RA = RB << (ins->x & 63); NEXT();
L_152: RA = RB >> (ins->x & 63); NEXT();
L_153: RA = (uint64_t)((int64_t)RB >> (ins->x & 63)); NEXT();
L_154: RA = ins->x - RB; NEXT();
L_155: RA = ins->x << (RB & 63); NEXT();
L_156: RA = ins->x >> (RB & 63); NEXT();
L_157: RA = (uint64_t)((int64_t)ins->x >> (RB & 63)); NEXT();
L_158: RA = rotr64(RB, ins->x); NEXT();
L_159: RA = rotr64(ins->x, RB); NEXT();
L_160: RA = rotr32(RB, ins->x); NEXT();
L_161: RA = rotr32(ins->x, RB); NEXT();
L_170: BR(RA == RB);
L_171: BR(RA != RB);
L_172: BR(RA < RB);
L_173: BR((int64_t)RA < (int64_t)RB);
L_174: BR(RA >= RB);
L_175: BR((int64_t)RA >= (int64_t)RB);
L_180:
    a_ = (uint32_t)(RB + ins->y); /* the target uses the prior r_B (r_A may alias it) */
    RA = ins->x;
    DJUMP();
L_190: RD = sx32(RA + RB); NEXT();
L_191: RD = sx32(RA - RB); NEXT();
L_192: RD = sx32((uint64_t)((uint32_t)RA * (uint32_t)RB)); NEXT();
L_193: {
        uint32_t b = (uint32_t)RB;
        RD = b == 0 ? UINT64_MAX : sx32((uint32_t)RA / b);
        NEXT();
    }
L_194: {
        int32_t a = (int32_t)(uint32_t)RA, b = (int32_t)(uint32_t)RB;
        if (b == 0) RD = UINT64_MAX;
        else if (a == INT32_MIN && b == -1) RD = (uint64_t)(int64_t)a;
        else RD = (uint64_t)(int64_t)(a / b);
        NEXT();
    }
L_195: {
        uint32_t b = (uint32_t)RB;
        RD = b == 0 ? sx32(RA) : sx32((uint32_t)RA % b);
        NEXT();
    }
L_196: {
        int32_t a = (int32_t)(uint32_t)RA, b = (int32_t)(uint32_t)RB;
        if (a == INT32_MIN && b == -1) RD = 0;
        else if (b == 0) RD = (uint64_t)(int64_t)a;
        else RD = (uint64_t)(int64_t)(a % b);
        NEXT();
    }
L_197: RD = sx32(RA << (RB & 31)); NEXT();
L_198: RD = sx32((uint32_t)RA >> (RB & 31)); NEXT();
L_199: RD = (uint64_t)(int64_t)((int32_t)(uint32_t)RA >> (RB & 31)); NEXT();
L_200: RD = RA + RB; NEXT();
L_201: RD = RA - RB; NEXT();
L_202: RD = RA * RB; NEXT();
L_203: RD = RB == 0 ? UINT64_MAX : RA / RB; NEXT();
L_204: {
        int64_t a = (int64_t)RA, b = (int64_t)RB;
        if (b == 0) RD = UINT64_MAX;
        else if (a == INT64_MIN && b == -1) RD = (uint64_t)a;
        else RD = (uint64_t)(a / b);
        NEXT();
    }
L_205: RD = RB == 0 ? RA : RA % RB; NEXT();
L_206: {
        int64_t a = (int64_t)RA, b = (int64_t)RB;
        if (a == INT64_MIN && b == -1) RD = 0;
        else if (b == 0) RD = (uint64_t)a;
        else RD = (uint64_t)(a % b);
        NEXT();
    }
L_207: RD = RA << (RB & 63); NEXT();
L_208: RD = RA >> (RB & 63); NEXT();
L_209: RD = (uint64_t)((int64_t)RA >> (RB & 63)); NEXT();
L_210: RD = RA & RB; NEXT();
L_211: RD = RA ^ RB; NEXT();
L_212: RD = RA | RB; NEXT();
L_213: RD = (uint64_t)(((__int128)(int64_t)RA * (__int128)(int64_t)RB) >> 64); NEXT();
L_214: RD = (uint64_t)(((unsigned __int128)RA * (unsigned __int128)RB) >> 64); NEXT();
L_215: RD = (uint64_t)(((__int128)(int64_t)RA * (__int128)RB) >> 64); NEXT();
L_216: RD = RA < RB; NEXT();
L_217: RD = (int64_t)RA < (int64_t)RB; NEXT();
L_218: if (RB == 0) RD = RA; NEXT();
L_219: if (RB != 0) RD = RA; NEXT();
L_220: RD = rotr64(RA, (64 - (RB & 63)) & 63); NEXT();
L_221: RD = rotr32(RA, (32 - (RB & 31)) & 31); NEXT();
L_222: RD = rotr64(RA, RB); NEXT();
L_223: RD = rotr32(RA, RB); NEXT();
L_224: RD = RA & ~RB; NEXT();
L_225: RD = RA | ~RB; NEXT();
L_226: RD = ~(RA ^ RB); NEXT();
L_227: RD = (int64_t)RA > (int64_t)RB ? RA : RB; NEXT();
L_228: RD = RA > RB ? RA : RB; NEXT();
L_229: RD = (int64_t)RA < (int64_t)RB ? RA : RB; NEXT();
L_230: RD = RA < RB ? RA : RB; NEXT();

out_of_gas:
    memcpy(m->r, r, sizeof r);
    m->pc = ins->pc;
    m->gas = 0;
    m->yield_left = yield_left(0, yield_at);
    return X_OOG;

out_of_gas_cold: /* before a fallthrough run without being decoded (cold_pc) */
    memcpy(m->r, r, sizeof r);
    m->pc = (int64_t)cold_pc;
    m->gas = 0;
    m->yield_left = yield_left(0, yield_at);
    return X_OOG;

finish:
    memcpy(m->r, r, sizeof r);
    /* refund the instructions of the block after the one that exited */
    m->gas = gas + charged - (int64_t)(ins - hdr);
    m->yield_left = yield_left(m->gas, yield_at);
    m->pc = ins->pc;
    if (kind == X_HOST) m->resume_pc = ins->next_pc;
    return kind;

nomem:
    memcpy(m->r, r, sizeof r);
    m->gas = gas;
    m->yield_left = yield_left(gas, yield_at);
    return -1;
}

/* execute() to a real exit, calling the safe point at each X_YIELD (a nested run may decode
 * blocks of the same program meanwhile, moving p->ins: execute starts afresh from m->pc).
 * -1: out of memory; -2: the safe point raised (its exception is set). */
static int run_to_exit(Machine *m) {
    int kind = execute(m);
    while (kind == X_YIELD) {
        PyObject *hook = m->safe_point;
        if (hook) {
            Py_INCREF(hook); /* the call may clear the attribute */
            PyObject *res = PyObject_CallNoArgs(hook);
            Py_DECREF(hook);
            if (!res) return -2;
            Py_DECREF(res);
        }
        kind = execute(m);
    }
    return kind;
}

static PyObject *Machine_run(Machine *m, PyObject *unused) {
    (void)unused;
    m->resume_pc = -1;
    int kind = run_to_exit(m);
    if (kind == -2) return NULL;
    if (kind < 0) return PyErr_NoMemory();
    return PyLong_FromLong(kind);
}

static PyObject *Machine_resume(Machine *m, PyObject *unused) {
    (void)unused;
    if (m->resume_pc < 0) {
        PyErr_SetString(PyExc_RuntimeError, "resume() is only valid after a host-call exit");
        return NULL;
    }
    m->pc = m->resume_pc;
    return Machine_run(m, NULL);
}

/* _run_host() / _resume_host(): ν_X (>= 0) on a host-call exit, else -1 - the exit kind */
static PyObject *host_or_kind(int kind) {
    if (kind == -2) return NULL;
    if (kind < 0) return PyErr_NoMemory();
    return kind == X_HOST ? NULL : PyLong_FromLong(-1 - kind);
}

static PyObject *Machine_run_host(Machine *m, PyObject *unused) {
    (void)unused;
    m->resume_pc = -1;
    int kind = run_to_exit(m);
    PyObject *r = host_or_kind(kind);
    return r || kind < 0 ? r : PyLong_FromUnsignedLongLong(m->host_id);
}

static PyObject *Machine_resume_host(Machine *m, PyObject *unused) {
    (void)unused;
    if (m->resume_pc < 0) {
        PyErr_SetString(PyExc_RuntimeError, "resume() is only valid after a host-call exit");
        return NULL;
    }
    m->pc = m->resume_pc;
    return Machine_run_host(m, NULL);
}

static PyObject *Machine_get_registers(Machine *m, PyObject *unused) {
    (void)unused;
    PyObject *out = PyList_New(NREG);
    if (!out) return NULL;
    for (int i = 0; i < NREG; i++) {
        PyObject *v = PyLong_FromUnsignedLongLong(m->r[i]);
        if (!v) { Py_DECREF(out); return NULL; }
        PyList_SET_ITEM(out, i, v);
    }
    return out;
}

/* value mod 2^64 from any Python int */
static int as_u64(PyObject *v, uint64_t *out) {
    if (!PyLong_Check(v)) {
        PyErr_SetString(PyExc_TypeError, "register values are ints");
        return -1;
    }
    uint64_t x = PyLong_AsUnsignedLongLongMask(v);
    if (x == (uint64_t)-1 && PyErr_Occurred()) return -1;
    *out = x;
    return 0;
}

static PyObject *Machine_set_registers(Machine *m, PyObject *arg) {
    PyObject *seq = PySequence_Fast(arg, "registers must be a sequence");
    if (!seq) return NULL;
    if (PySequence_Fast_GET_SIZE(seq) != NREG) {
        Py_DECREF(seq);
        PyErr_SetString(PyExc_ValueError, "13 registers expected");
        return NULL;
    }
    uint64_t vals[NREG];
    for (int i = 0; i < NREG; i++) {
        if (as_u64(PySequence_Fast_GET_ITEM(seq, i), &vals[i]) < 0) { Py_DECREF(seq); return NULL; }
    }
    Py_DECREF(seq);
    memcpy(m->r, vals, sizeof vals);
    Py_RETURN_NONE;
}

static int reg_index(PyObject *o, int *out) {
    long i = PyLong_AsLong(o);
    if (i == -1 && PyErr_Occurred()) return -1;
    if (i < 0) i += NREG; /* list indexing, as the Python engine's register list */
    if (i < 0 || i >= NREG) {
        PyErr_SetString(PyExc_IndexError, "register index out of range");
        return -1;
    }
    *out = (int)i;
    return 0;
}

static PyObject *Machine_get_register(Machine *m, PyObject *arg) {
    int i;
    if (reg_index(arg, &i) < 0) return NULL;
    return PyLong_FromUnsignedLongLong(m->r[i]);
}

static PyObject *Machine_set_register(Machine *m, PyObject *args) {
    PyObject *io, *vo;
    int i;
    uint64_t v;
    if (!PyArg_ParseTuple(args, "OO", &io, &vo)) return NULL;
    if (reg_index(io, &i) < 0 || as_u64(vo, &v) < 0) return NULL;
    m->r[i] = v;
    Py_RETURN_NONE;
}

/* read(address, length) -> bytes, or (kind, address) when the access faults or panics */
static PyObject *access_error(Machine *m, int rc) {
    if (rc < 0) return PyErr_NoMemory();
    return Py_BuildValue("(iK)", rc, (unsigned long long)m->fault_address);
}

static PyObject *Machine_read(Machine *m, PyObject *args) {
    unsigned long long address;
    Py_ssize_t length;
    if (!PyArg_ParseTuple(args, "Kn", &address, &length)) return NULL;
    if (length < 0) { PyErr_SetString(PyExc_ValueError, "negative length"); return NULL; }
    address &= 0xFFFFFFFFull;
    if (length == 0) return PyBytes_FromStringAndSize(NULL, 0);
    int rc = check_access(m, address, (uint64_t)length, 0);
    if (rc) return access_error(m, rc);
    PyObject *out = PyBytes_FromStringAndSize(NULL, length);
    if (!out) return NULL;
    copy_out(m, (uint32_t)address, (uint8_t *)PyBytes_AS_STRING(out), (uint64_t)length);
    return out;
}

/* write(address, data) -> None, or (kind, address); nothing is written then */
static PyObject *Machine_write(Machine *m, PyObject *args) {
    unsigned long long address;
    Py_buffer buf;
    if (!PyArg_ParseTuple(args, "Ky*", &address, &buf)) return NULL;
    address &= 0xFFFFFFFFull;
    PyObject *res = Py_None;
    if (buf.len > 0) {
        int rc = check_access(m, address, (uint64_t)buf.len, 1);
        if (rc) {
            res = access_error(m, rc);
            PyBuffer_Release(&buf);
            return res;
        }
        copy_in(m, (uint32_t)address, buf.buf, (uint64_t)buf.len);
    }
    PyBuffer_Release(&buf);
    Py_INCREF(res);
    return res;
}

/* Memory.is_readable / is_writable: the caller has checked address + length <= 2^32 */
static PyObject *Machine_accessible(Machine *m, PyObject *args) {
    unsigned long long address, length;
    int write;
    if (!PyArg_ParseTuple(args, "KKp", &address, &length, &write)) return NULL;
    if (length == 0) Py_RETURN_TRUE;
    int rc = check_access(m, address, length, write);
    if (rc < 0) return PyErr_NoMemory();
    return PyBool_FromLong(rc == 0);
}

/* map_pages(first, last, writable): page indices, checked by the caller */
static PyObject *Machine_map_pages(Machine *m, PyObject *args) {
    unsigned int first, last;
    int writable;
    if (!PyArg_ParseTuple(args, "IIp", &first, &last, &writable)) return NULL;
    if (first < LOW_PAGES || last >= NPAGES || first > last) {
        PyErr_SetString(PyExc_ValueError, "page range outside 2^16..2^32");
        return NULL;
    }
    if (map_pages(m, first, last, writable) < 0) return PyErr_NoMemory();
    Py_RETURN_NONE;
}

/* load_page(index, content, writable): an allocated page with its content */
static PyObject *Machine_load_page(Machine *m, PyObject *args) {
    unsigned int index;
    Py_buffer buf;
    int writable;
    if (!PyArg_ParseTuple(args, "Iy*p", &index, &buf, &writable)) return NULL;
    if (index < LOW_PAGES || index >= NPAGES || buf.len != PAGE) {
        PyBuffer_Release(&buf);
        PyErr_SetString(PyExc_ValueError, "a page index in 16..2^20 and 4096 octets expected");
        return NULL;
    }
    uintptr_t e = m->pt[index];
    uint8_t *pg;
    if (e & PF_R) {
        pg = page_ptr(m, index);
    } else {
        pg = new_page();
        if (!pg || (e == 0 && note_touched(m, index) < 0)) {
            free(pg);
            PyBuffer_Release(&buf);
            return PyErr_NoMemory();
        }
    }
    memcpy(pg, buf.buf, PAGE);
    PyBuffer_Release(&buf);
    m->pt[index] = (uintptr_t)pg | PF_R | (writable ? PF_W : 0);
    Py_RETURN_NONE;
}

/* pages() -> [(index, state, content or None)], state 'W'/'R' allocated, 'w'/'r' lazy */
static PyObject *Machine_pages(Machine *m, PyObject *unused) {
    (void)unused;
    PyObject *out = PyList_New(0);
    if (!out) return NULL;
    for (uint32_t i = 0; i < m->n_touched; i++) {
        uint32_t index = m->touched[i];
        uintptr_t e = m->pt[index];
        PyObject *item;
        if (e & PF_R) {
            item = Py_BuildValue("(Isy#)", index, (e & PF_W) ? "W" : "R",
                                 (const char *)page_ptr(m, index), (Py_ssize_t)PAGE);
        } else {
            item = Py_BuildValue("(IsO)", index, (e & PF_LAZY_W) ? "w" : "r", Py_None);
        }
        if (!item || PyList_Append(out, item) < 0) {
            Py_XDECREF(item);
            Py_DECREF(out);
            return NULL;
        }
        Py_DECREF(item);
    }
    return out;
}

static PyObject *Machine_get_gas(Machine *m, void *c) {
    (void)c;
    return PyLong_FromLongLong(m->gas);
}

static int Machine_set_gas(Machine *m, PyObject *v, void *c) {
    (void)c;
    if (!v) { PyErr_SetString(PyExc_AttributeError, "gas cannot be deleted"); return -1; }
    long long g = PyLong_AsLongLong(v);
    if (g == -1 && PyErr_Occurred()) return -1;
    m->gas = g;
    return 0;
}

static PyObject *Machine_get_pc(Machine *m, void *c) {
    (void)c;
    return PyLong_FromLongLong(m->pc);
}

static int Machine_set_pc(Machine *m, PyObject *v, void *c) {
    (void)c;
    if (!v) { PyErr_SetString(PyExc_AttributeError, "pc cannot be deleted"); return -1; }
    long long pc = PyLong_AsLongLong(v);
    if (pc == -1 && PyErr_Occurred()) return -1;
    m->pc = pc;
    return 0;
}

static PyObject *Machine_get_heap_top(Machine *m, void *c) {
    (void)c;
    if (m->heap_top < 0) Py_RETURN_NONE;
    return PyLong_FromLongLong(m->heap_top);
}

static int Machine_set_heap_top(Machine *m, PyObject *v, void *c) {
    (void)c;
    if (!v || v == Py_None) { m->heap_top = -1; return 0; }
    long long h = PyLong_AsLongLong(v);
    if (h == -1 && PyErr_Occurred()) return -1;
    if (h < 0) { PyErr_SetString(PyExc_ValueError, "negative heap top"); return -1; }
    m->heap_top = h;
    return 0;
}

static PyObject *Machine_get_heap_limit(Machine *m, void *c) {
    (void)c;
    if (m->heap_limit < 0) Py_RETURN_NONE;
    return PyLong_FromLongLong(m->heap_limit);
}

static int Machine_set_heap_limit(Machine *m, PyObject *v, void *c) {
    (void)c;
    if (!v || v == Py_None) { m->heap_limit = -1; return 0; }
    long long h = PyLong_AsLongLong(v);
    if (h == -1 && PyErr_Occurred()) return -1;
    if (h < 0) { PyErr_SetString(PyExc_ValueError, "negative heap limit"); return -1; }
    m->heap_limit = h;
    return 0;
}

static PyObject *Machine_get_safe_point(Machine *m, void *c) {
    (void)c;
    PyObject *v = m->safe_point ? m->safe_point : Py_None;
    Py_INCREF(v);
    return v;
}

static int Machine_set_safe_point(Machine *m, PyObject *v, void *c) {
    (void)c;
    if (v == Py_None) v = NULL;
    if (v && !PyCallable_Check(v)) {
        PyErr_SetString(PyExc_TypeError, "safe_point must be callable or None");
        return -1;
    }
    Py_XINCREF(v);
    Py_XSETREF(m->safe_point, v);
    return 0;
}

static PyObject *Machine_get_u64(Machine *m, void *c) {
    uintptr_t which = (uintptr_t)c;
    return PyLong_FromUnsignedLongLong(which == 2 ? m->yields
                                       : which == 1 ? m->host_id : m->fault_address);
}

/* --- the fast host-call path's configuration (see _fasthost.h and native.py) --- */

/* _fast_host(call_gas, log_gas, gas_id, fetch_id, preimage_id, log_id, known_lo, known_hi,
 *            fetch_args, self_id, where_chars, where_bytes, log_room, table_budget) */
static PyObject *Machine_fast_host(Machine *m, PyObject *args) {
    long long call_gas, log_gas, log_room;
    unsigned long long gas_id, fetch_id, preimage_id, log_id, known_lo, known_hi, self_id;
    unsigned long long where_chars, where_bytes, budget;
    Py_buffer fa;
    if (!PyArg_ParseTuple(args, "LLKKKKKKy*KKKLK", &call_gas, &log_gas, &gas_id, &fetch_id,
                          &preimage_id, &log_id, &known_lo, &known_hi, &fa, &self_id,
                          &where_chars, &where_bytes, &log_room, &budget))
        return NULL;
    if (fa.len != FH_FETCH_SELECTORS || call_gas < 0 || log_gas < 0 || log_room < 0) {
        PyBuffer_Release(&fa);
        PyErr_SetString(PyExc_ValueError, "bad fast host-call configuration");
        return NULL;
    }
    FastHost *f = calloc(1, sizeof *f);
    if (!f) { PyBuffer_Release(&fa); return PyErr_NoMemory(); }
    memcpy(f->fetch_args, fa.buf, FH_FETCH_SELECTORS);
    PyBuffer_Release(&fa);
    f->call_gas = call_gas;
    f->log_gas = log_gas;
    f->gas_id = gas_id;
    f->fetch_id = fetch_id;
    f->preimage_id = preimage_id;
    f->log_id = log_id;
    f->known[0] = known_lo;
    f->known[1] = known_hi;
    f->self_id = self_id;
    f->where_chars = where_chars;
    f->where_bytes = where_bytes;
    f->log_room = log_room;
    f->table_budget = budget;
    f->transfer_id = FH_NONE_ID;
    fh_free(m->fh);
    m->fh = f;
    Py_RETURN_NONE;
}

static FastHost *fast_host_of(Machine *m) {
    if (!m->fh) PyErr_SetString(PyExc_RuntimeError, "fast host calls are not configured");
    return m->fh;
}

static int value_arg(PyObject *v) {
    if (v == Py_None || PyBytes_CheckExact(v)) return 0;
    PyErr_SetString(PyExc_TypeError, "value must be bytes or None");
    return -1;
}

/* _fast_put_fetch(selector, a, b, value or None) -> bool (False: the table is full) */
static PyObject *Machine_fast_put_fetch(Machine *m, PyObject *args) {
    unsigned long long sel, a, b;
    PyObject *v;
    if (!PyArg_ParseTuple(args, "KKKO", &sel, &a, &b, &v) || value_arg(v) < 0) return NULL;
    FastHost *f = fast_host_of(m);
    if (!f) return NULL;
    uint8_t used = sel < FH_FETCH_SELECTORS ? f->fetch_args[sel] : 0;
    int rc = fh_put(f, FK_FETCH, sel, (used & 1) ? a : 0, (used & 2) ? b : 0, NULL,
                    v == Py_None ? NULL : v);
    if (rc < 0) return PyErr_NoMemory();
    return PyBool_FromLong(rc);
}

/* _fast_put_preimage(service, hash, value or None) -> bool */
static PyObject *Machine_fast_put_preimage(Machine *m, PyObject *args) {
    unsigned long long service;
    Py_buffer h;
    PyObject *v;
    if (!PyArg_ParseTuple(args, "Ky*O", &service, &h, &v)) return NULL;
    if (h.len != 32 || value_arg(v) < 0) {
        PyBuffer_Release(&h);
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "a 32-octet hash expected");
        return NULL;
    }
    FastHost *f = fast_host_of(m);
    if (!f) { PyBuffer_Release(&h); return NULL; }
    if (service == FH_SELF) service = f->self_id;
    int rc = fh_put(f, FK_PREIMAGE, service, 0, 0, h.buf, v == Py_None ? NULL : v);
    PyBuffer_Release(&h);
    if (rc < 0) return PyErr_NoMemory();
    return PyBool_FromLong(rc);
}

/* _fast_put_preimage_window(service, hash, window, total, at) -> bool: the key answers
 * ω7 = total and copies from window = v[at .. at + |window|); a later window of the same key
 * replaces it (a key installed whole stays whole). */
static PyObject *Machine_fast_put_preimage_window(Machine *m, PyObject *args) {
    unsigned long long service, total, at;
    Py_buffer h;
    PyObject *v;
    if (!PyArg_ParseTuple(args, "Ky*OKK", &service, &h, &v, &total, &at)) return NULL;
    if (h.len != 32 || !PyBytes_Check(v) || at > total ||
        (unsigned long long)PyBytes_GET_SIZE(v) > total - at) {
        PyBuffer_Release(&h);
        PyErr_SetString(PyExc_ValueError, "a 32-octet hash and a window inside the value");
        return NULL;
    }
    FastHost *f = fast_host_of(m);
    if (!f) { PyBuffer_Release(&h); return NULL; }
    if (service == FH_SELF) service = f->self_id;
    FhEntry *e = fh_find(f, FK_PREIMAGE, service, 0, 0, h.buf);
    if (e && e->windowed) {
        uint64_t old = (uint64_t)PyBytes_GET_SIZE(e->value), size = (uint64_t)PyBytes_GET_SIZE(v);
        if (f->table_bytes - old + size > f->table_budget) {
            PyBuffer_Release(&h);
            Py_RETURN_FALSE;
        }
        Py_INCREF(v);
        Py_SETREF(e->value, v);
        f->table_bytes = f->table_bytes - old + size;
        e->total = total;
        e->at = at;
        PyBuffer_Release(&h);
        Py_RETURN_TRUE;
    }
    if (e) { PyBuffer_Release(&h); Py_RETURN_TRUE; }
    int rc = fh_put(f, FK_PREIMAGE, service, 0, 0, h.buf, v);
    if (rc == 1) {
        e = fh_find(f, FK_PREIMAGE, service, 0, 0, h.buf);
        e->windowed = 1;
        e->total = total;
        e->at = at;
    }
    PyBuffer_Release(&h);
    if (rc < 0) return PyErr_NoMemory();
    return PyBool_FromLong(rc);
}

static PyObject *Machine_fast_clear_preimages(Machine *m, PyObject *unused) {
    (void)unused;
    if (m->fh) fh_clear(m->fh, FK_PREIMAGE);
    Py_RETURN_NONE;
}

/* _fast_log_take() -> ([(level, target, message)], dropped); empties both */
static PyObject *Machine_fast_log_take(Machine *m, PyObject *unused) {
    (void)unused;
    FastHost *f = fast_host_of(m);
    if (!f) return NULL;
    PyObject *out = PyList_New(0);
    if (!out) return NULL;
    size_t at = 0;
    while (at < f->log_len) {
        uint64_t level, t_len, m_len;
        memcpy(&level, f->log_buf + at, 8);
        memcpy(&t_len, f->log_buf + at + 8, 8);
        memcpy(&m_len, f->log_buf + at + 16, 8);
        const char *text = (const char *)f->log_buf + at + FH_RECORD;
        PyObject *item = Py_BuildValue("(Ky#y#)", (unsigned long long)level, text,
                                       (Py_ssize_t)t_len, text + t_len, (Py_ssize_t)m_len);
        if (!item || PyList_Append(out, item) < 0) {
            Py_XDECREF(item);
            Py_DECREF(out);
            return NULL;
        }
        Py_DECREF(item);
        at += FH_RECORD + t_len + m_len;
    }
    PyObject *res = Py_BuildValue("(NK)", out, (unsigned long long)f->log_dropped);
    if (!res) return NULL;
    f->log_len = 0;
    f->log_dropped = 0;
    return res;
}

static PyObject *Machine_fast_log_room(Machine *m, PyObject *arg) {
    FastHost *f = fast_host_of(m);
    if (!f) return NULL;
    long long room = PyLong_AsLongLong(arg);
    if (room == -1 && PyErr_Occurred()) return NULL;
    if (room < 0) room = 0;
    f->log_room = room;
    Py_RETURN_NONE;
}

/* _fast_transfer(transfer_id, memo_size, limited): serve Ω_T for described destinations */
static PyObject *Machine_fast_transfer(Machine *m, PyObject *args) {
    unsigned long long id, memo_size;
    int limited;
    if (!PyArg_ParseTuple(args, "KKp", &id, &memo_size, &limited)) return NULL;
    FastHost *f = fast_host_of(m);
    if (!f) return NULL;
    if (memo_size > 4096) { PyErr_SetString(PyExc_ValueError, "memo too large"); return NULL; }
    f->transfer_id = id;
    f->memo_size = memo_size;
    f->xfer_limited = limited;
    Py_RETURN_NONE;
}

/* _fast_spend(balance - threshold, or None when unknown): negative: every amount is CASH */
static PyObject *Machine_fast_spend(Machine *m, PyObject *arg) {
    FastHost *f = fast_host_of(m);
    if (!f) return NULL;
    f->spend_known = 0;
    if (arg == Py_None) Py_RETURN_NONE;
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(arg, &overflow);
    if (v == -1 && PyErr_Occurred()) return NULL;
    if (overflow < 0 || (!overflow && v < 0)) {
        f->spend_known = 1;
        f->spend_ok = 0;
        f->spend = 0;
        Py_RETURN_NONE;
    }
    unsigned long long u = overflow ? PyLong_AsUnsignedLongLong(arg) : (unsigned long long)v;
    if (u == (unsigned long long)-1 && PyErr_Occurred()) {
        PyErr_Clear(); /* 2^64 or more: left to Python */
        Py_RETURN_NONE;
    }
    f->spend_known = 1;
    f->spend_ok = 1;
    f->spend = u;
    Py_RETURN_NONE;
}

/* _fast_put_dest(dest, who, min_memo_gas, count_room, gas_room) -> bool; replaces */
static PyObject *Machine_fast_put_dest(Machine *m, PyObject *args) {
    unsigned long long dest, min_memo_gas;
    int who;
    PyObject *cro, *gro;
    if (!PyArg_ParseTuple(args, "KpKOO", &dest, &who, &min_memo_gas, &cro, &gro)) return NULL;
    FastHost *f = fast_host_of(m);
    if (!f) return NULL;
    int o1 = 0, o2 = 0;
    long long cr = PyLong_AsLongLongAndOverflow(cro, &o1);
    if (cr == -1 && PyErr_Occurred()) return NULL;
    long long gr = PyLong_AsLongLongAndOverflow(gro, &o2);
    if (gr == -1 && PyErr_Occurred()) return NULL;
    if (o1 || o2) Py_RETURN_FALSE; /* rooms past 2^63: left to Python */
    FhEntry *e = fh_find(f, FK_DEST, dest, 0, 0, NULL);
    if (!e) {
        int rc = fh_put(f, FK_DEST, dest, 0, 0, NULL, NULL);
        if (rc < 0) return PyErr_NoMemory();
        if (!rc) Py_RETURN_FALSE;
        e = fh_find(f, FK_DEST, dest, 0, 0, NULL);
    }
    e->who = (uint8_t)who;
    e->min_memo_gas = min_memo_gas;
    e->count_room = cr;
    e->gas_room = gr;
    Py_RETURN_TRUE;
}

static PyObject *Machine_fast_clear_dests(Machine *m, PyObject *unused) {
    (void)unused;
    if (m->fh) fh_clear(m->fh, FK_DEST);
    Py_RETURN_NONE;
}

/* _fast_transfers_take(cls, source) -> ([cls instances], total amount); empties the records.
 * cls is a slots class with members source, dest, amount, memo, gas (DeferredTransfer): its
 * instances are made here member by member, as its __init__ would set them (the caller
 * checks what __post_init__ would: the memo size). 4,000 transfers cost 2.5 ms through
 * __init__, as much as the whole accumulate that made them. */
static PyObject *Machine_fast_transfers_take(Machine *m, PyObject *args) {
    PyTypeObject *cls;
    PyObject *source;
    if (!PyArg_ParseTuple(args, "O!O!", &PyType_Type, &cls, &PyLong_Type, &source)) return NULL;
    FastHost *f = fast_host_of(m);
    if (!f) return NULL;
    static const char *names[5] = {"source", "dest", "amount", "memo", "gas"};
    PyMemberDef *members[5];
    for (int k = 0; k < 5; k++) {
        PyObject *d = PyObject_GetAttrString((PyObject *)cls, names[k]);
        if (!d) return NULL;
        int ok = Py_IS_TYPE(d, &PyMemberDescr_Type);
        members[k] = ok ? ((PyMemberDescrObject *)d)->d_member : NULL;
        Py_DECREF(d); /* the class keeps the descriptor alive */
        if (!ok || members[k]->type != T_OBJECT_EX) {
            PyErr_SetString(PyExc_TypeError, "a slots class with the transfer's members expected");
            return NULL;
        }
    }
    size_t size = 24 + f->memo_size;
    Py_ssize_t n = (Py_ssize_t)(f->x_len / size);
    PyObject *out = PyList_New(n);
    if (!out) return NULL;
    PyObject_GC_UnTrack(out); /* not visited by collections its own items trigger */
    /* No automatic collection while the items are made: each allocation of a GC type counts
     * toward a collection even though the item is untracked at once, and the collections
     * 4,000 transfers set off (of the whole heap, not of these) were a third of the run. */
    int gc_was = PyGC_Disable();
    PyObject *prev_dest = NULL, *prev_memo = NULL;
    uint64_t prev_dest_v = 0;
    uint64_t total = 0; /* at most the spendable balance given, itself a u64 */
    for (Py_ssize_t i = 0; i < n; i++) {
        const uint8_t *rec = f->xbuf + (size_t)i * size;
        uint64_t dest, amount, tgas;
        memcpy(&dest, rec, 8);
        memcpy(&amount, rec + 8, 8);
        memcpy(&tgas, rec + 16, 8);
        total += amount;
        PyObject *obj = cls->tp_alloc(cls, 0);
        /* A destination and a memo equal to the previous transfer's share its (immutable)
         * object: a run of transfers to one service with one memo makes one int and one
         * bytes, not one of each per transfer. */
        PyObject *dest_obj, *memo_obj;
        if (prev_dest && dest == prev_dest_v) {
            Py_INCREF(prev_dest);
            dest_obj = prev_dest;
        } else {
            dest_obj = PyLong_FromUnsignedLongLong(dest);
            if (dest_obj) {
                Py_XDECREF(prev_dest);
                Py_INCREF(dest_obj);
                prev_dest = dest_obj;
                prev_dest_v = dest;
            }
        }
        const uint8_t *memo = rec + 24;
        if (prev_memo && memcmp(memo, PyBytes_AS_STRING(prev_memo), f->memo_size) == 0) {
            Py_INCREF(prev_memo);
            memo_obj = prev_memo;
        } else {
            memo_obj = PyBytes_FromStringAndSize((const char *)memo, (Py_ssize_t)f->memo_size);
            if (memo_obj) {
                Py_XDECREF(prev_memo);
                Py_INCREF(memo_obj);
                prev_memo = memo_obj;
            }
        }
        PyObject *vals[5] = {source, dest_obj, PyLong_FromUnsignedLongLong(amount), memo_obj,
                             PyLong_FromUnsignedLongLong(tgas)};
        int bad = !obj || !vals[1] || !vals[2] || !vals[3] || !vals[4];
        for (int k = 0; k < 5 && !bad; k++)
            if (PyMember_SetOne((char *)obj, members[k], vals[k]) < 0) bad = 1;
        for (int k = 1; k < 5; k++) Py_XDECREF(vals[k]);
        if (bad) {
            Py_XDECREF(obj);
            Py_DECREF(out);
            Py_XDECREF(prev_dest);
            Py_XDECREF(prev_memo);
            if (gc_was) PyGC_Enable();
            if (!PyErr_Occurred()) PyErr_NoMemory();
            return NULL;
        }
        /* Its members are ints and bytes and the class is frozen: it can never be part of a
         * cycle, so the collector need not visit it (as CPython untracks such tuples). 4,000
         * tracked transfers made the garbage collector the largest cost of the run. */
        if (PyObject_GC_IsTracked(obj)) PyObject_GC_UnTrack(obj);
        PyList_SET_ITEM(out, i, obj);
    }
    Py_XDECREF(prev_dest);
    Py_XDECREF(prev_memo);
    if (gc_was) PyGC_Enable();
    PyObject_GC_Track(out);
    f->x_len = 0;
    PyObject *sum = PyLong_FromUnsignedLongLong(total);
    if (!sum) { Py_DECREF(out); return NULL; }
    return Py_BuildValue("(NN)", out, sum);
}

static PyObject *Machine_get_fast_calls(Machine *m, void *c) {
    (void)c;
    return PyLong_FromUnsignedLongLong(m->fh ? m->fh->calls : 0);
}

static PyGetSetDef Machine_getset[] = {
    {"gas", (getter)Machine_get_gas, (setter)Machine_set_gas, "ϱ", NULL},
    {"pc", (getter)Machine_get_pc, (setter)Machine_set_pc, "ı", NULL},
    {"heap_top", (getter)Machine_get_heap_top, (setter)Machine_set_heap_top, "sbrk break", NULL},
    {"heap_limit", (getter)Machine_get_heap_limit, (setter)Machine_set_heap_limit,
     "highest break sbrk may reach", NULL},
    {"fault_address", (getter)Machine_get_u64, NULL, "page of the last fault", NULL},
    {"host_id", (getter)Machine_get_u64, NULL, "ν_X of the last ecalli", (void *)1},
    {"yields", (getter)Machine_get_u64, NULL, "GIL hand-overs during runs", (void *)2},
    {"safe_point", (getter)Machine_get_safe_point, (setter)Machine_set_safe_point,
     "called with no argument every YIELD_GAS gas of a run (None: never)", NULL},
    {"fast_calls", (getter)Machine_get_fast_calls, NULL, "host calls served in C", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMethodDef Machine_methods[] = {
    {"_run", (PyCFunction)Machine_run, METH_NOARGS, "run from pc; the exit kind"},
    {"_resume", (PyCFunction)Machine_resume, METH_NOARGS, "run from after the ecalli"},
    {"_run_host", (PyCFunction)Machine_run_host, METH_NOARGS, "run; ν_X or -1 - kind"},
    {"_resume_host", (PyCFunction)Machine_resume_host, METH_NOARGS, "resume; ν_X or -1 - kind"},
    {"get_registers", (PyCFunction)Machine_get_registers, METH_NOARGS, NULL},
    {"set_registers", (PyCFunction)Machine_set_registers, METH_O, NULL},
    {"get_register", (PyCFunction)Machine_get_register, METH_O, NULL},
    {"set_register", (PyCFunction)Machine_set_register, METH_VARARGS, NULL},
    {"_read", (PyCFunction)Machine_read, METH_VARARGS, NULL},
    {"_write", (PyCFunction)Machine_write, METH_VARARGS, NULL},
    {"_accessible", (PyCFunction)Machine_accessible, METH_VARARGS, NULL},
    {"_map_pages", (PyCFunction)Machine_map_pages, METH_VARARGS, NULL},
    {"_load_page", (PyCFunction)Machine_load_page, METH_VARARGS, NULL},
    {"_pages", (PyCFunction)Machine_pages, METH_NOARGS, NULL},
    {"_fast_host", (PyCFunction)Machine_fast_host, METH_VARARGS, NULL},
    {"_fast_put_fetch", (PyCFunction)Machine_fast_put_fetch, METH_VARARGS, NULL},
    {"_fast_put_preimage", (PyCFunction)Machine_fast_put_preimage, METH_VARARGS, NULL},
    {"_fast_put_preimage_window", (PyCFunction)Machine_fast_put_preimage_window, METH_VARARGS,
     NULL},
    {"_fast_clear_preimages", (PyCFunction)Machine_fast_clear_preimages, METH_NOARGS, NULL},
    {"_fast_log_take", (PyCFunction)Machine_fast_log_take, METH_NOARGS, NULL},
    {"_fast_log_room", (PyCFunction)Machine_fast_log_room, METH_O, NULL},
    {"_fast_transfer", (PyCFunction)Machine_fast_transfer, METH_VARARGS, NULL},
    {"_fast_spend", (PyCFunction)Machine_fast_spend, METH_O, NULL},
    {"_fast_put_dest", (PyCFunction)Machine_fast_put_dest, METH_VARARGS, NULL},
    {"_fast_clear_dests", (PyCFunction)Machine_fast_clear_dests, METH_NOARGS, NULL},
    {"_fast_transfers_take", (PyCFunction)Machine_fast_transfers_take, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject MachineType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "jamhost.pvm._native.Machine",
    .tp_basicsize = sizeof(Machine),
    .tp_dealloc = (destructor)Machine_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "One machine state (pc, registers, gas, RAM) of a loaded program.",
    .tp_traverse = (traverseproc)Machine_traverse,
    .tp_clear = (inquiry)Machine_clear,
    .tp_methods = Machine_methods,
    .tp_getset = Machine_getset,
    .tp_init = (initproc)Machine_init,
    .tp_new = PyType_GenericNew,
};

/* digest(blob) -> a seeded 64-bit hash of the octets (an xxh64-style round over four lanes),
 * the program cache's key: Python's own hash of a 4 MB blob cost more than loading it. Not
 * cryptographic; the cache compares the blob itself on a hit. */
static inline uint64_t rotl64(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }
#define XP1 0x9E3779B185EBCA87ull
#define XP2 0xC2B2AE3D27D4EB4Full
#define XP3 0x165667B19E3779F9ull
static inline uint64_t xround(uint64_t acc, uint64_t w) {
    return rotl64(acc + w * XP2, 31) * XP1;
}

static PyObject *native_digest(PyObject *self, PyObject *arg) {
    (void)self;
    Py_buffer b;
    if (PyObject_GetBuffer(arg, &b, PyBUF_SIMPLE) < 0) return NULL;
    const uint8_t *d = b.buf;
    size_t n = (size_t)b.len, i = 0;
    uint64_t v1 = fh_seed + XP1 + XP2, v2 = fh_seed + XP2, v3 = fh_seed, v4 = fh_seed - XP1;
    for (; i + 32 <= n; i += 32) {
        uint64_t w[4];
        memcpy(w, d + i, 32);
        v1 = xround(v1, w[0]);
        v2 = xround(v2, w[1]);
        v3 = xround(v3, w[2]);
        v4 = xround(v4, w[3]);
    }
    uint64_t h = rotl64(v1, 1) + rotl64(v2, 7) + rotl64(v3, 12) + rotl64(v4, 18) + (uint64_t)n;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, d + i, 8);
        h = rotl64(h ^ xround(0, w), 27) * XP1 + XP3;
    }
    for (; i < n; i++) h = rotl64(h ^ (d[i] * XP3), 11) * XP1;
    h ^= h >> 33;
    h *= XP2;
    h ^= h >> 29;
    h *= XP3;
    h ^= h >> 32;
    PyBuffer_Release(&b);
    return PyLong_FromUnsignedLongLong(h);
}

static PyObject *Program_get_blob(Program *p, void *c) {
    (void)c;
    Py_INCREF(p->blob);
    return p->blob;
}

static PyMethodDef module_methods[] = {
    {"digest", native_digest, METH_O, "seeded 64-bit hash of a blob (the program cache's key)"},
    {"load", native_load, METH_O, "check a program blob (GP eq. A.2); None when it does not deblob"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef native_module = {
    PyModuleDef_HEAD_INIT, "_native", "jamhost's native PVM core", -1, module_methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__native(void) {
    init_tables();
    fh_init_seed();
    execute(NULL); /* fills HANDLERS before any block is decoded */
    if (PyType_Ready(&ProgramType) < 0 || PyType_Ready(&MachineType) < 0) return NULL;
    PyObject *mod = PyModule_Create(&native_module);
    if (!mod) return NULL;
    Py_INCREF(&ProgramType);
    Py_INCREF(&MachineType);
    if (PyModule_AddObject(mod, "Program", (PyObject *)&ProgramType) < 0 ||
        PyModule_AddObject(mod, "Machine", (PyObject *)&MachineType) < 0) {
        Py_DECREF(mod);
        return NULL;
    }
    PyModule_AddIntConstant(mod, "EXIT_HALT", X_HALT);
    PyModule_AddIntConstant(mod, "EXIT_PANIC", X_PANIC);
    PyModule_AddIntConstant(mod, "EXIT_OUT_OF_GAS", X_OOG);
    PyModule_AddIntConstant(mod, "EXIT_PAGE_FAULT", X_FAULT);
    PyModule_AddIntConstant(mod, "EXIT_HOST", X_HOST);
    PyModule_AddIntConstant(mod, "YIELD_GAS", YIELD_GAS);
    PyModule_AddIntConstant(mod, "GIL_EVERY", GIL_EVERY);
    return mod;
}
