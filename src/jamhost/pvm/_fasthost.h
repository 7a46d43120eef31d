/* Host calls served inside the native core (included by _native.c after the memory helpers).
 *
 * A host call that exits to Python costs about 4 us (the exit, jamhost.pvm.host's loop, the
 * dispatcher, the handler, resume) against 2-3 ns per instruction, so a program looping on
 * a 10-gas host call made the runtime spend some 100 times more CPU per gas than plain
 * execution. The Python host layer (engine/hostio.py Dispatch) configures, per invocation,
 * which calls this file answers without leaving C; everything else, and every case below
 * that is not plainly decided here, exits to Python exactly as before (FC_DEFER: nothing
 * charged, nothing changed), where the Python handler is the reference.
 *
 * Served here, with the gas and every register and memory effect of the Python handlers
 * (GP 0.7.2 §B.6; the checks in the same order):
 * - gas (Ω_G): charge g, ω7 = gas left;
 * - an id without a handler: charge g, ω7 = WHAT;
 * - JIP-1 log: charge log gas; the level, target and message are kept as raw records in a
 *   buffer up to the invocation's log room (the bytes of the lines LogSink would make, which
 *   is exact for valid UTF-8; a message that is not valid UTF-8 is left to Python); past
 *   the room, dropped and counted. Python formats the records into lines (LogSink.absorb);
 * - fetch (Ω_Y) and lookup / historical_lookup (Ω_L / Ω_H) answered from a per-invocation
 *   table of values Python has already resolved (a key's first call exits to Python, which
 *   answers it and installs the value): fetch by (selector, and ω11/ω12 where the selector
 *   reads them), preimages by (service, hash) with 2^64-1 standing for the invocation's own
 *   service. Python clears the preimage entries after a handler that changes what they
 *   answer (accumulate's forget, new, eject).
 */

#include <sys/random.h>

#define FH_SLOTS 1024u       /* open addressing, a power of two */
#define FH_MAX_ENTRIES 256u  /* at most a quarter full: short probes */
#define FH_NONE_ID UINT64_MAX
#define FH_SELF UINT64_MAX   /* the register value meaning "this service" */
#define FH_NONE UINT64_MAX   /* GP NONE */
#define FH_WHAT (UINT64_MAX - 1)
#define FH_MAX_MESSAGE 65536u /* hostio.MAX_LOG_MESSAGE */
#define FH_MAX_TARGET 4096u   /* hostio.MAX_LOG_TARGET */
#define FH_FETCH_SELECTORS 32u

enum { FC_SERVED = 0, FC_DEFER = 1, FC_PANIC = 2, FC_OOG = 3 };
enum { FK_FREE = 0, FK_FETCH = 1, FK_PREIMAGE = 2, FK_GONE = 3, FK_DEST = 4 };
#define FH_WHO (UINT64_MAX - 3)
#define FH_CASH (UINT64_MAX - 6)
#define FH_LOW (UINT64_MAX - 7)

typedef struct {
    uint8_t kind;
    uint64_t k1, k2, k3; /* fetch: selector, a, b; preimage: service */
    uint8_t hash[32];     /* preimage */
    PyObject *value;      /* bytes, or NULL for none */
    /* FK_PREIMAGE read as a window (windowed = 1): value = v[at .. at + |value|), |v| = total */
    uint8_t windowed;
    uint64_t total, at;
    /* FK_DEST (k1 = destination): */
    uint8_t who;          /* no such service (to this invocation) */
    uint64_t min_memo_gas;
    int64_t count_room, gas_room; /* transfers and gas its queue still takes */
} FhEntry;

typedef struct FastHost {
    int64_t call_gas, log_gas;
    uint64_t known[2];  /* ids < 128 that have a handler; any other id answers WHAT */
    uint64_t gas_id, fetch_id, preimage_id, log_id; /* FH_NONE_ID: not served here */
    uint8_t fetch_args[FH_FETCH_SELECTORS]; /* bit 0: ω11 is part of the key, bit 1: ω12 */
    uint64_t self_id;
    /* log */
    uint64_t where_chars, where_bytes;
    int64_t log_room;
    uint64_t log_dropped;
    uint8_t *log_buf;
    size_t log_len, log_cap;
    /* table */
    FhEntry *slots;
    uint32_t n_entries;
    uint64_t table_bytes, table_budget;
    /* transfer */
    uint64_t transfer_id, memo_size;
    int xfer_limited;        /* the destinations' queues are bounded (count_room, gas_room) */
    int spend_known, spend_ok; /* balance known; balance >= threshold */
    uint64_t spend;          /* balance - threshold */
    uint8_t *xbuf;
    size_t x_len, x_cap;
    uint64_t calls; /* host calls served here */
} FastHost;

static uint64_t fh_seed;

static void fh_init_seed(void) {
    /* slots are chosen by a keyed hash, so a tenant cannot pick hashes that collide */
    if (getrandom(&fh_seed, sizeof fh_seed, 0) != (ssize_t)sizeof fh_seed)
        fh_seed = (uint64_t)(uintptr_t)&fh_seed ^ 0x9E3779B97F4A7C15ull;
    fh_seed |= 1;
}

static inline uint64_t fh_mix(uint64_t h, uint64_t v) {
    h ^= v + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
    h *= 0xFF51AFD7ED558CCDull;
    return h ^ (h >> 33);
}

static uint64_t fh_hash(int kind, uint64_t k1, uint64_t k2, uint64_t k3, const uint8_t *hash) {
    uint64_t h = fh_mix(fh_seed, (uint64_t)kind);
    h = fh_mix(h, k1);
    h = fh_mix(h, k2);
    h = fh_mix(h, k3);
    if (hash) {
        for (int i = 0; i < 4; i++) {
            uint64_t w;
            memcpy(&w, hash + 8 * i, 8);
            h = fh_mix(h, w);
        }
    }
    return h;
}

static inline int fh_same(const FhEntry *e, int kind, uint64_t k1, uint64_t k2, uint64_t k3,
                          const uint8_t *hash) {
    return e->kind == kind && e->k1 == k1 && e->k2 == k2 && e->k3 == k3 &&
           (!hash || memcmp(e->hash, hash, 32) == 0);
}

/* The entry of the key, or NULL. */
static FhEntry *fh_find(FastHost *f, int kind, uint64_t k1, uint64_t k2, uint64_t k3,
                        const uint8_t *hash) {
    if (!f->slots || !f->n_entries) return NULL;
    uint32_t i = (uint32_t)fh_hash(kind, k1, k2, k3, hash) & (FH_SLOTS - 1);
    for (uint32_t n = 0; n < FH_SLOTS; n++, i = (i + 1) & (FH_SLOTS - 1)) {
        FhEntry *e = &f->slots[i];
        if (e->kind == FK_FREE) return NULL;
        if (fh_same(e, kind, k1, k2, k3, hash)) return e;
    }
    return NULL;
}

/* 1 installed (or already there), 0 refused (table full or over its byte budget), -1 no
 * memory. The table keeps a reference to value. */
static int fh_put(FastHost *f, int kind, uint64_t k1, uint64_t k2, uint64_t k3,
                  const uint8_t *hash, PyObject *value) {
    if (fh_find(f, kind, k1, k2, k3, hash)) return 1;
    uint64_t size = value ? (uint64_t)PyBytes_GET_SIZE(value) : 0;
    if (f->n_entries >= FH_MAX_ENTRIES || f->table_bytes + size > f->table_budget) return 0;
    if (!f->slots) {
        f->slots = calloc(FH_SLOTS, sizeof(FhEntry));
        if (!f->slots) return -1;
    }
    uint32_t i = (uint32_t)fh_hash(kind, k1, k2, k3, hash) & (FH_SLOTS - 1);
    while (f->slots[i].kind != FK_FREE && f->slots[i].kind != FK_GONE)
        i = (i + 1) & (FH_SLOTS - 1);
    FhEntry *e = &f->slots[i];
    e->kind = (uint8_t)kind;
    e->k1 = k1;
    e->k2 = k2;
    e->k3 = k3;
    if (hash) memcpy(e->hash, hash, 32);
    else memset(e->hash, 0, 32);
    Py_XINCREF(value);
    e->value = value;
    e->windowed = 0;
    e->total = e->at = 0;
    f->n_entries++;
    f->table_bytes += size;
    return 1;
}

/* Drop every entry of `kind` (all kinds for FK_FREE). */
static void fh_clear(FastHost *f, int kind) {
    if (!f->slots) return;
    int any_left = 0;
    for (uint32_t i = 0; i < FH_SLOTS; i++) {
        FhEntry *e = &f->slots[i];
        if (e->kind == FK_FREE || e->kind == FK_GONE) continue;
        if (kind != FK_FREE && e->kind != kind) { any_left = 1; continue; }
        f->table_bytes -= e->value ? (uint64_t)PyBytes_GET_SIZE(e->value) : 0;
        Py_CLEAR(e->value);
        e->kind = FK_GONE;
        f->n_entries--;
    }
    if (!any_left) memset(f->slots, 0, FH_SLOTS * sizeof(FhEntry)); /* no tombstones left */
}

static void fh_free(FastHost *f) {
    if (!f) return;
    fh_clear(f, FK_FREE);
    free(f->slots);
    free(f->log_buf);
    free(f->xbuf);
    free(f);
}

/* hostio.readable/writable: 1 when the range is accessible (the empty one always is), 0 when
 * not, -1 on allocation failure. */
static int fh_accessible(Machine *m, uint64_t address, uint64_t length, int write) {
    if (length == 0) return 1;
    if (address > ((uint64_t)1 << 32) || length > ((uint64_t)1 << 32) - address) return 0;
    int rc = check_access(m, address, length, write);
    if (rc < 0) return -1;
    return rc == 0;
}

static inline int fh_charge(int64_t *gas, int64_t g) {
    if (*gas < g) return 0;
    *gas -= g;
    return 1;
}

/* hostio.answer_blob for a resolved value (NULL: none): FC_SERVED, FC_PANIC or -1. */
static int fh_answer(Machine *m, uint64_t *r, PyObject *value, uint64_t out, uint64_t offset,
                     uint64_t limit) {
    uint64_t length = 0, start = 0, vlen = 0;
    if (value) {
        vlen = (uint64_t)PyBytes_GET_SIZE(value);
        start = offset < vlen ? offset : vlen;
        length = limit < vlen - start ? limit : vlen - start;
    }
    int ok = fh_accessible(m, out, length, 1);
    if (ok < 0) return -1;
    if (!ok) return FC_PANIC;
    if (!value) {
        r[7] = FH_NONE;
        return FC_SERVED;
    }
    if (length)
        copy_in(m, (uint32_t)out, (const uint8_t *)PyBytes_AS_STRING(value) + start, length);
    r[7] = vlen;
    return FC_SERVED;
}

/* hostio.answer_window for an entry holding a window of the preimage: FC_DEFER when the
 * octets the call copies are not all in the window (Python reads them; nothing charged). */
static int fh_answer_window(Machine *m, uint64_t *r, const FhEntry *e, uint64_t out,
                            uint64_t offset, uint64_t limit) {
    uint64_t total = e->total, held = (uint64_t)PyBytes_GET_SIZE(e->value);
    uint64_t start = offset < total ? offset : total;
    uint64_t length = limit < total - start ? limit : total - start;
    if (length && (start < e->at || start - e->at > held || length > held - (start - e->at)))
        return FC_DEFER;
    int ok = fh_accessible(m, out, length, 1);
    if (ok < 0) return -1;
    if (!ok) return FC_PANIC;
    if (length)
        copy_in(m, (uint32_t)out,
                (const uint8_t *)PyBytes_AS_STRING(e->value) + (start - e->at), length);
    r[7] = total;
    return FC_SERVED;
}

/* Strict UTF-8 (what Python's decoder accepts without replacing anything). */
static int fh_utf8_valid(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        if (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (!(w & 0x8080808080808080ull)) { i += 8; continue; }
        }
        uint8_t c = s[i];
        if (c < 0x80) { i++; continue; }
        size_t need;
        uint8_t lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF) need = 1;
        else if (c == 0xE0) { need = 2; lo = 0xA0; }
        else if (c >= 0xE1 && c <= 0xEC) need = 2;
        else if (c == 0xED) { need = 2; hi = 0x9F; }
        else if (c >= 0xEE && c <= 0xEF) need = 2;
        else if (c == 0xF0) { need = 3; lo = 0x90; }
        else if (c >= 0xF1 && c <= 0xF3) need = 3;
        else if (c == 0xF4) { need = 3; hi = 0x8F; }
        else return 0;
        if (i + need >= n) return 0;
        if (s[i + 1] < lo || s[i + 1] > hi) return 0;
        for (size_t k = 2; k <= need; k++)
            if (s[i + k] < 0x80 || s[i + k] > 0xBF) return 0;
        i += need + 1;
    }
    return 1;
}

static uint64_t fh_level_name_len(uint64_t level) {
    static const uint8_t names[5] = {5, 4, 4, 5, 5}; /* FATAL WARN INFO DEBUG TRACE */
    if (level < 5) return names[level];
    uint64_t digits = 1;
    while (level >= 10) { level /= 10; digits++; }
    return 1 + digits; /* "L" + the decimal level */
}

static int fh_log_reserve(FastHost *f, size_t extra) {
    if (f->log_len + extra <= f->log_cap) return 0;
    size_t cap = f->log_cap ? f->log_cap : 4096;
    while (cap < f->log_len + extra) cap *= 2;
    uint8_t *nb = realloc(f->log_buf, cap);
    if (!nb) return -1;
    f->log_buf = nb;
    f->log_cap = cap;
    return 0;
}

#define FH_RECORD 24 /* level u64, target length u64, message length u64, then the octets */

/* JIP-1 log as dispatch + hostio.LogSink do it. */
static int fh_log(Machine *m, FastHost *f, uint64_t *r, int64_t *gas) {
    if (*gas < f->log_gas) return FC_OOG;
    uint64_t level = r[7], t_ptr = r[8], t_len = r[9], m_ptr = r[10], m_len = r[11];
    if (m_len > FH_MAX_MESSAGE || t_len > FH_MAX_TARGET) goto charged;
    if ((int64_t)(m_len + f->where_chars) > f->log_room) {
        f->log_dropped++;
        goto charged;
    }
    int ok = fh_accessible(m, m_ptr, m_len, 0);
    if (ok < 0) return -1;
    if (!ok) goto charged;
    if (t_ptr || t_len) {
        ok = fh_accessible(m, t_ptr, t_len, 0);
        if (ok < 0) return -1;
        if (!ok) goto charged;
    }
    if (fh_log_reserve(f, FH_RECORD + t_len + m_len) < 0) return -1;
    uint8_t *rec = f->log_buf + f->log_len;
    uint8_t *text = rec + FH_RECORD;
    if (t_len) copy_out(m, (uint32_t)t_ptr, text, t_len);
    if (m_len) copy_out(m, (uint32_t)m_ptr, text + t_len, m_len);
    if (!fh_utf8_valid(text, t_len + m_len)) return FC_DEFER; /* Python replaces, exactly */
    *gas -= f->log_gas;
    uint64_t size = fh_level_name_len(level) + f->where_bytes + 1 + (t_len ? t_len + 1 : 0) +
                    m_len;
    if ((int64_t)size > f->log_room) {
        f->log_dropped++;
        return FC_SERVED;
    }
    memcpy(rec, &level, 8);
    memcpy(rec + 8, &t_len, 8);
    memcpy(rec + 16, &m_len, 8);
    f->log_len += FH_RECORD + t_len + m_len;
    f->log_room -= (int64_t)size;
    return FC_SERVED;
charged:
    *gas -= f->log_gas;
    return FC_SERVED;
}

/* Ω_T as accumulate.py's transfer with a destination described by Python. */
static int fh_transfer(Machine *m, FastHost *f, uint64_t *r, int64_t *gas) {
    if (*gas < f->call_gas) return FC_OOG;
    uint64_t dest = r[7], amount = r[8], tgas = r[9], memo_at = r[10];
    int ok = fh_accessible(m, memo_at, f->memo_size, 0);
    if (ok < 0) return -1;
    if (!ok) {
        *gas -= f->call_gas;
        return FC_PANIC;
    }
    FhEntry *e = fh_find(f, FK_DEST, dest, 0, 0, NULL);
    if (!e || !f->spend_known) return FC_DEFER;
    *gas -= f->call_gas;
    uint64_t code = 0;
    if (e->who) code = FH_WHO;
    else if (tgas < e->min_memo_gas) code = FH_LOW;
    else if (f->xfer_limited &&
             (e->count_room < 1 || e->gas_room < 0 || tgas > (uint64_t)e->gas_room))
        code = FH_LOW;
    else if (!f->spend_ok || amount > f->spend) code = FH_CASH;
    if (code) {
        r[7] = code;
        return FC_SERVED;
    }
    if (tgas > (uint64_t)*gas) return FC_OOG;
    size_t size = 24 + f->memo_size;
    if (f->x_len + size > f->x_cap) {
        size_t cap = f->x_cap ? f->x_cap * 2 : 64 * size;
        uint8_t *nb = realloc(f->xbuf, cap);
        if (!nb) return -1;
        f->xbuf = nb;
        f->x_cap = cap;
    }
    uint8_t *rec = f->xbuf + f->x_len;
    memcpy(rec, &dest, 8);
    memcpy(rec + 8, &amount, 8);
    memcpy(rec + 16, &tgas, 8);
    if (f->memo_size) copy_out(m, (uint32_t)memo_at, rec + 24, f->memo_size);
    f->x_len += size;
    *gas -= (int64_t)tgas;
    f->spend -= amount;
    if (f->xfer_limited) {
        e->count_room -= 1;
        e->gas_room -= (int64_t)tgas;
    }
    r[7] = 0; /* OK */
    return FC_SERVED;
}

/* One host call id at an ecalli, with the run loop's registers and gas. */
static int fast_call(Machine *m, uint64_t id, uint64_t *r, int64_t *gas) {
    FastHost *f = m->fh;
    if (id == f->log_id) return fh_log(m, f, r, gas);
    int known = id < 128 && ((f->known[id >> 6] >> (id & 63)) & 1);
    if (!known) {
        if (!fh_charge(gas, f->call_gas)) return FC_OOG;
        r[7] = FH_WHAT;
        return FC_SERVED;
    }
    if (id == f->gas_id) {
        if (!fh_charge(gas, f->call_gas)) return FC_OOG;
        r[7] = (uint64_t)*gas;
        return FC_SERVED;
    }
    if (id == f->fetch_id) {
        if (*gas < f->call_gas) return FC_OOG;
        uint64_t sel = r[10];
        uint8_t args = sel < FH_FETCH_SELECTORS ? f->fetch_args[sel] : 0;
        FhEntry *e = fh_find(f, FK_FETCH, sel, (args & 1) ? r[11] : 0, (args & 2) ? r[12] : 0,
                             NULL);
        if (!e) return FC_DEFER;
        *gas -= f->call_gas;
        return fh_answer(m, r, e->value, r[7], r[8], r[9]);
    }
    if (id == f->transfer_id) return fh_transfer(m, f, r, gas);
    if (id == f->preimage_id) {
        if (*gas < f->call_gas) return FC_OOG;
        int ok = fh_accessible(m, r[8], 32, 0);
        if (ok < 0) return -1;
        if (!ok) {
            *gas -= f->call_gas;
            return FC_PANIC;
        }
        uint8_t hash[32];
        copy_out(m, (uint32_t)r[8], hash, 32);
        uint64_t service = r[7] == FH_SELF ? f->self_id : r[7];
        FhEntry *e = fh_find(f, FK_PREIMAGE, service, 0, 0, hash);
        if (!e) return FC_DEFER;
        if (e->windowed) {
            int rc = fh_answer_window(m, r, e, r[9], r[10], r[11]);
            if (rc != FC_DEFER) *gas -= f->call_gas;
            return rc;
        }
        *gas -= f->call_gas;
        return fh_answer(m, r, e->value, r[9], r[10], r[11]);
    }
    return FC_DEFER;
}
