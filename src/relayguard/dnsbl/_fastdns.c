/* The compiled hot path of relayguard's DNSBL server.
 *
 * It answers the questions a DNSBL mostly gets (a plain A or TXT question, with or without a plain
 * EDNS0 OPT, for a name under a zone of ip4set, ip4tset, ip4trie, dnset and live data) straight from the
 * arrays the Python datasets already hold, and receives and sends UDP in batches (recvmmsg/sendmmsg).
 * Anything else it declines: the packet goes back to Python (wire.answer_fast), which answers it the
 * general way. It mirrors wire.answer_fast and the datasets' fast() byte for byte; the tests compare the
 * two on generated and hostile packets.
 *
 * Why C: in Python the receive/lookup/send cycle costs ~25 us of CPU per query at 20,000 q/s (half a
 * core), which turns the machine's scheduling stalls into queueing delays; here it is a few us.
 *
 * Every packet is hostile input: every read is bounds-checked against the packet or the array it reads,
 * and a table that does not have the shape it should makes the engine refuse to build (ValueError).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#define MAX_RRS 32       /* more records than this in one answer: Python answers it */
#define MAX_LABELS 128   /* a 255-byte name has at most 127 labels */
#define RX_SIZE 4096     /* per received datagram, as the Python loop's recvfrom(4096) */
#define TX_SIZE 1232     /* = wire.MAX_UDP: no UDP answer is larger */
#define DECLINE (-1)
#define NOT_FOUND 0
#define FOUND 1
#define ABSENT (-2) /* a name not in a table */

/* ------------------------------------------------------------------------------------------------ */
/* tables                                                                                           */

typedef struct {
    Py_buffer keys, vals, buckets; /* uint16 low halves, uint8/16/32 values, uint32[65537] bucket edges */
    uint32_t mask;
} Level;

typedef struct {
    Py_buffer hashes, offs, lens, vals; /* uint64, uint64, uint32, uint32 */
    PyObject *blob;                     /* str: every name joined */
    Py_ssize_t n;
} NameTab;

typedef struct {
    int present;            /* 0: recs[v] is None (no record) */
    uint8_t a_tail[14];     /* TYPE A .. RDATA, TTL included */
    PyObject *parts;        /* NULL: no TXT; else tuple of bytes, the TXT text with the value between two */
} CRec;

typedef struct {
    int kind; /* 1 ip4set, 2 dnset, 3 ip4trie, 4 an IPv6 dataset (left to Python), 5 ip4tset */
    uint32_t ttl;
    Level *levels;
    int nlevels;
    NameTab exact, wild;
    Py_buffer tkeys; /* ip4tset: sorted uint32 addresses */
    int has_wild;
    int max_wild;
    CRec *recs;
    Py_ssize_t nrecs;
} CSet;

typedef struct {
    uint8_t wire[256];
    Py_ssize_t wlen;
    int capable;
    int reads_ip4;
    uint8_t *soa_tail;
    Py_ssize_t soa_len;
    CSet *sets;
    int nsets;
} CZone;

typedef struct {
    PyObject_HEAD
    CZone *zones;
    int nzones;
    uint8_t opt[11];
} Engine;

static void release_buf(Py_buffer *b) {
    if (b->obj != NULL)
        PyBuffer_Release(b);
}

static void free_set(CSet *s) {
    for (int i = 0; i < s->nlevels; i++) {
        release_buf(&s->levels[i].keys);
        release_buf(&s->levels[i].vals);
        release_buf(&s->levels[i].buckets);
    }
    PyMem_Free(s->levels);
    release_buf(&s->tkeys);
    NameTab *tabs[2] = {&s->exact, &s->wild};
    for (int t = 0; t < 2; t++) {
        release_buf(&tabs[t]->hashes);
        release_buf(&tabs[t]->offs);
        release_buf(&tabs[t]->lens);
        release_buf(&tabs[t]->vals);
        Py_CLEAR(tabs[t]->blob);
    }
    for (Py_ssize_t i = 0; i < s->nrecs; i++)
        Py_CLEAR(s->recs[i].parts);
    PyMem_Free(s->recs);
}

static void Engine_dealloc(Engine *self) {
    for (int z = 0; z < self->nzones; z++) {
        for (int i = 0; i < self->zones[z].nsets; i++)
            free_set(&self->zones[z].sets[i]);
        PyMem_Free(self->zones[z].sets);
        PyMem_Free(self->zones[z].soa_tail);
    }
    PyMem_Free(self->zones);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int get_buf(PyObject *o, Py_buffer *b, Py_ssize_t itemsize, const char *what) {
    if (PyObject_GetBuffer(o, b, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0)
        return -1;
    if (itemsize && b->itemsize != itemsize) {
        PyErr_Format(PyExc_ValueError, "%s: items of %zd bytes, expected %zd", what, b->itemsize, itemsize);
        return -1;
    }
    if (b->itemsize != 1 && b->itemsize != 2 && b->itemsize != 4 && b->itemsize != 8) {
        PyErr_Format(PyExc_ValueError, "%s: items of %zd bytes", what, b->itemsize);
        return -1;
    }
    return 0;
}

static inline uint64_t item(const Py_buffer *b, Py_ssize_t i) {
    switch (b->itemsize) {
    case 1: return ((const uint8_t *)b->buf)[i];
    case 2: return ((const uint16_t *)b->buf)[i];
    case 4: return ((const uint32_t *)b->buf)[i];
    default: return ((const uint64_t *)b->buf)[i];
    }
}

static inline Py_ssize_t count(const Py_buffer *b) { return b->len / b->itemsize; }

static inline void put16(uint8_t *p, unsigned v) {
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static inline void put32(uint8_t *p, uint32_t v) {
    put16(p, v >> 16);
    put16(p + 2, v & 0xFFFF);
}

/* The first index in keys[a:z) whose key is not below key (bisect_left), for each key width */
#define DEFINE_LOWER_BOUND(name, type)                                                   \
    static inline Py_ssize_t name(const type *keys, Py_ssize_t a, Py_ssize_t z, type key) { \
        while (a < z) {                                                                  \
            Py_ssize_t m = a + (z - a) / 2;                                              \
            if (keys[m] < key)                                                           \
                a = m + 1;                                                               \
            else                                                                         \
                z = m;                                                                   \
        }                                                                                \
        return a;                                                                        \
    }
DEFINE_LOWER_BOUND(lower_u16, uint16_t)
DEFINE_LOWER_BOUND(lower_u32, uint32_t)
DEFINE_LOWER_BOUND(lower_u64, uint64_t)

/* recs: list of None | (a_tail: bytes[14], parts: tuple[bytes, ...] | None) */
static int load_recs(CSet *s, PyObject *recs) {
    if (!PyList_Check(recs)) {
        PyErr_SetString(PyExc_TypeError, "recs must be a list");
        return -1;
    }
    Py_ssize_t n = PyList_GET_SIZE(recs);
    s->recs = PyMem_Calloc(n ? n : 1, sizeof(CRec));
    if (s->recs == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    s->nrecs = n; /* only now: free_set walks recs[0:nrecs] */
    for (Py_ssize_t i = 0; i < s->nrecs; i++) {
        PyObject *r = PyList_GET_ITEM(recs, i);
        if (r == Py_None)
            continue;
        PyObject *a, *parts;
        if (!PyTuple_Check(r) || !PyArg_ParseTuple(r, "SO", &a, &parts))
            return -1;
        if (PyBytes_GET_SIZE(a) != 14) {
            PyErr_SetString(PyExc_ValueError, "an A record tail is 14 bytes");
            return -1;
        }
        memcpy(s->recs[i].a_tail, PyBytes_AS_STRING(a), 14);
        s->recs[i].present = 1;
        if (parts != Py_None) {
            if (!PyTuple_Check(parts) || PyTuple_GET_SIZE(parts) < 1) {
                PyErr_SetString(PyExc_ValueError, "TXT parts must be a non-empty tuple");
                return -1;
            }
            for (Py_ssize_t j = 0; j < PyTuple_GET_SIZE(parts); j++)
                if (!PyBytes_Check(PyTuple_GET_ITEM(parts, j))) {
                    PyErr_SetString(PyExc_TypeError, "TXT parts must be bytes");
                    return -1;
                }
            Py_INCREF(parts);
            s->recs[i].parts = parts;
        }
    }
    return 0;
}

/* (hashes, offs, lens, vals, blob) */
static int load_nametab(NameTab *t, PyObject *desc) {
    PyObject *h, *o, *l, *v, *blob;
    if (!PyArg_ParseTuple(desc, "OOOOU", &h, &o, &l, &v, &blob))
        return -1;
    if (get_buf(h, &t->hashes, 8, "hashes") < 0 || get_buf(o, &t->offs, 8, "offs") < 0 ||
        get_buf(l, &t->lens, 4, "lens") < 0 || get_buf(v, &t->vals, 4, "vals") < 0)
        return -1;
    t->n = count(&t->hashes);
    if (count(&t->offs) != t->n || count(&t->lens) != t->n || count(&t->vals) != t->n) {
        PyErr_SetString(PyExc_ValueError, "name table arrays differ in length");
        return -1;
    }
    Py_INCREF(blob);
    t->blob = blob;
    return 0;
}

/* (1 ip4set | 3 ip4trie, ttl, [(keys, vals, buckets, mask), ...], recs),
 * (2 dnset, ttl, exact, wild | None, max_wild, recs), (5 ip4tset, ttl, keys, [rec]) or (4,) for an IPv6
 * dataset */
static int load_set(CSet *s, PyObject *desc) {
    if (!PyTuple_Check(desc) || PyTuple_GET_SIZE(desc) < 1) {
        PyErr_SetString(PyExc_TypeError, "a dataset is a tuple");
        return -1;
    }
    long kind = PyLong_AsLong(PyTuple_GET_ITEM(desc, 0));
    if (kind == 5) {
        PyObject *keys, *recs;
        unsigned long ttl;
        if (!PyArg_ParseTuple(desc, "lkOO", &kind, &ttl, &keys, &recs))
            return -1;
        s->kind = 5;
        s->ttl = (uint32_t)ttl;
        if (get_buf(keys, &s->tkeys, 4, "keys") < 0 || load_recs(s, recs) < 0)
            return -1;
        if (s->nrecs != 1 || !s->recs[0].present) {
            PyErr_SetString(PyExc_ValueError, "an ip4tset has one value");
            return -1;
        }
        return 0;
    }
    if (kind == 4) { /* an IPv6 dataset: the engine leaves questions of 32 labels to Python */
        s->kind = 4;
        return 0;
    }
    if (kind == 1 || kind == 3) {
        PyObject *levels, *recs;
        unsigned long ttl;
        if (!PyArg_ParseTuple(desc, "lkO!O", &kind, &ttl, &PyList_Type, &levels, &recs))
            return -1;
        s->kind = (int)kind;
        s->ttl = (uint32_t)ttl;
        Py_ssize_t nl = PyList_GET_SIZE(levels);
        if (nl > (kind == 1 ? 4 : 33)) {
            PyErr_SetString(PyExc_ValueError, "too many levels (4 octet levels, or 33 prefix lengths)");
            return -1;
        }
        s->levels = PyMem_Calloc(nl ? nl : 1, sizeof(Level));
        if (s->levels == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        for (Py_ssize_t i = 0; i < nl; i++) {
            PyObject *k, *v, *b;
            unsigned long mask;
            Level *lv = &s->levels[i];
            s->nlevels = (int)i + 1; /* so free_set releases what was taken */
            if (!PyArg_ParseTuple(PyList_GET_ITEM(levels, i), "OOOk", &k, &v, &b, &mask))
                return -1;
            lv->mask = (uint32_t)mask;
            if (get_buf(k, &lv->keys, 2, "keys") < 0 || get_buf(v, &lv->vals, 0, "vals") < 0 ||
                get_buf(b, &lv->buckets, 0, "buckets") < 0)
                return -1;
            if (count(&lv->buckets) != 65537 || count(&lv->vals) != count(&lv->keys)) {
                PyErr_SetString(PyExc_ValueError, "a level needs 65537 bucket edges and a value per key");
                return -1;
            }
        }
        return load_recs(s, recs);
    }
    if (kind == 2) {
        PyObject *exact, *wild, *recs;
        unsigned long ttl;
        int max_wild;
        if (!PyArg_ParseTuple(desc, "lkOOiO", &kind, &ttl, &exact, &wild, &max_wild, &recs))
            return -1;
        s->kind = 2;
        s->ttl = (uint32_t)ttl;
        s->max_wild = max_wild;
        if (load_nametab(&s->exact, exact) < 0)
            return -1;
        if (wild != Py_None) {
            if (load_nametab(&s->wild, wild) < 0)
                return -1;
            s->has_wild = s->wild.n > 0;
        }
        return load_recs(s, recs);
    }
    if (!PyErr_Occurred())
        PyErr_SetString(PyExc_ValueError, "unknown dataset kind");
    return -1;
}

/* Engine(zones, opt): zones longest name first, each (wire, capable, reads_ip4, soa_tail | None, [sets]) */
static int Engine_init(Engine *self, PyObject *args, PyObject *kw) {
    PyObject *zones;
    Py_buffer opt;
    if (self->zones != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "an Engine is built once");
        return -1;
    }
    if (!PyArg_ParseTuple(args, "O!y*", &PyList_Type, &zones, &opt))
        return -1;
    if (opt.len != 11) {
        PyBuffer_Release(&opt);
        PyErr_SetString(PyExc_ValueError, "the OPT record is 11 bytes");
        return -1;
    }
    memcpy(self->opt, opt.buf, 11);
    PyBuffer_Release(&opt);
    Py_ssize_t nz = PyList_GET_SIZE(zones);
    self->zones = PyMem_Calloc(nz ? nz : 1, sizeof(CZone));
    if (self->zones == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < nz; i++) {
        CZone *z = &self->zones[i];
        self->nzones = (int)i + 1;
        Py_buffer wire;
        int capable, reads_ip4;
        PyObject *soa, *sets;
        if (!PyArg_ParseTuple(PyList_GET_ITEM(zones, i), "y*ppOO!", &wire, &capable, &reads_ip4, &soa,
                              &PyList_Type, &sets))
            return -1;
        if (wire.len < 1 || wire.len > 255) {
            PyBuffer_Release(&wire);
            PyErr_SetString(PyExc_ValueError, "a zone name is 1-255 bytes of wire form");
            return -1;
        }
        memcpy(z->wire, wire.buf, wire.len);
        z->wlen = wire.len;
        PyBuffer_Release(&wire);
        z->capable = capable;
        z->reads_ip4 = reads_ip4;
        if (soa != Py_None) {
            if (!PyBytes_Check(soa) || PyBytes_GET_SIZE(soa) > 600) {
                PyErr_SetString(PyExc_ValueError, "the SOA tail must be bytes (at most 600)");
                return -1;
            }
            z->soa_len = PyBytes_GET_SIZE(soa);
            z->soa_tail = PyMem_Malloc(z->soa_len ? z->soa_len : 1);
            if (z->soa_tail == NULL) {
                PyErr_NoMemory();
                return -1;
            }
            memcpy(z->soa_tail, PyBytes_AS_STRING(soa), z->soa_len);
        }
        Py_ssize_t ns = PyList_GET_SIZE(sets);
        z->sets = PyMem_Calloc(ns ? ns : 1, sizeof(CSet));
        if (z->sets == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        for (Py_ssize_t j = 0; j < ns; j++) {
            z->nsets = (int)j + 1;
            if (load_set(&z->sets[j], PyList_GET_ITEM(sets, j)) < 0)
                return -1;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------------ */
/* answering                                                                                        */

typedef struct {
    uint8_t tail[10 + 256]; /* TYPE CLASS TTL RDLENGTH RDATA */
    int len;
} RR;

typedef struct {
    RR rrs[MAX_RRS];
    int n;
} Out;

/* wire.add_tail: a record of the same type and data (TTL aside) is not added twice */
static int add_rr(Out *out, const uint8_t *tail, int len) {
    for (int i = 0; i < out->n; i++) {
        RR *x = &out->rrs[i];
        if (x->len == len && memcmp(x->tail, tail, 2) == 0 && memcmp(x->tail + 8, tail + 8, len - 8) == 0)
            return 0;
    }
    if (out->n == MAX_RRS)
        return DECLINE;
    memcpy(out->rrs[out->n].tail, tail, len);
    out->rrs[out->n].len = len;
    out->n++;
    return 0;
}

/* answer.emit_a_txt: value is the listed value's text (the address, or the matched name) */
static int emit(Out *out, int qtype, const CRec *r, uint32_t ttl, const uint8_t *value, Py_ssize_t vlen) {
    if (qtype == 1)
        return add_rr(out, r->a_tail, 14);
    if (r->parts == NULL)
        return 0;
    uint8_t tail[10 + 256];
    int len = 0;
    Py_ssize_t np = PyTuple_GET_SIZE(r->parts);
    for (Py_ssize_t j = 0; j < np && len < 255; j++) {
        if (j) {
            Py_ssize_t take = vlen < 255 - len ? vlen : 255 - len;
            memcpy(tail + 11 + len, value, take);
            len += (int)take;
        }
        PyObject *p = PyTuple_GET_ITEM(r->parts, j);
        Py_ssize_t pl = PyBytes_GET_SIZE(p);
        Py_ssize_t take = pl < 255 - len ? pl : 255 - len;
        memcpy(tail + 11 + len, PyBytes_AS_STRING(p), take);
        len += (int)take;
    }
    if (len == 0)
        return 0; /* an empty text is no record */
    put16(tail, 16); /* TXT */
    put16(tail + 2, 1); /* IN */
    put32(tail + 4, ttl);
    put16(tail + 8, (unsigned)len + 1); /* RDLENGTH: 256 for a full string */
    tail[10] = (uint8_t)len;
    return add_rr(out, tail, 11 + len);
}

static int ip4_text(uint32_t ip, uint8_t *buf) {
    return sprintf((char *)buf, "%u.%u.%u.%u", ip >> 24, (ip >> 16) & 255, (ip >> 8) & 255, ip & 255);
}

/* The first entry of level lv equal to key (SortedKeys.find): its index, ABSENT, or DECLINE; *hi is the
 * end of its bucket (entries equal to key follow it up to there). */
static Py_ssize_t level_find(const Level *lv, uint32_t key, Py_ssize_t *hi_out) {
    uint32_t b = key >> 16;
    Py_ssize_t lo = (Py_ssize_t)item(&lv->buckets, b), hi = (Py_ssize_t)item(&lv->buckets, b + 1);
    if (lo == hi)
        return ABSENT;
    if (lo > hi || hi > count(&lv->keys))
        return DECLINE; /* not the shape built by SortedKeys: let Python say what it makes of it */
    const uint16_t *keys = lv->keys.buf;
    uint16_t low = key & 0xFFFF;
    Py_ssize_t a = lower_u16(keys, lo, hi, low);
    if (a == hi || keys[a] != low)
        return ABSENT;
    *hi_out = hi;
    return a;
}

/* ip4.Ip4Set.fast and ip4.Ip4Trie.fast (PrefixDataset.lookup over a CompactPrefixTable): the first level
 * holding the address decides (most specific octet level, or longest prefix); value 0 excludes. An
 * ip4set answers every value listed there, an ip4trie its one value. text is the address written out. */
static int levels_fast(const CSet *s, uint32_t ip, int qtype, const uint8_t *text, int tlen, Out *out) {
    int every = s->kind == 1;
    for (int l = 0; l < s->nlevels; l++) {
        const Level *lv = &s->levels[l];
        Py_ssize_t hi = 0;
        Py_ssize_t i = level_find(lv, ip & lv->mask, &hi);
        if (i == ABSENT)
            continue;
        if (i == DECLINE)
            return DECLINE;
        const uint16_t *keys = lv->keys.buf;
        uint16_t low = keys[i];
        uint64_t v = item(&lv->vals, i);
        if (v == 0)
            return NOT_FOUND;
        int found = NOT_FOUND;
        for (;;) {
            if ((Py_ssize_t)v >= s->nrecs)
                return DECLINE;
            const CRec *r = &s->recs[v];
            if (r->present) {
                if (emit(out, qtype, r, s->ttl, text, tlen) < 0)
                    return DECLINE;
                found = FOUND;
            }
            i++;
            if (!every || i == hi || keys[i] != low)
                return found;
            v = item(&lv->vals, i);
        }
    }
    return NOT_FOUND;
}

/* ip4.Ip4TSet.fast: listed addresses share the one value */
static int ip4tset_fast(const CSet *s, uint32_t ip, int qtype, const uint8_t *text, int tlen, Out *out) {
    const uint32_t *keys = s->tkeys.buf;
    Py_ssize_t n = count(&s->tkeys);
    Py_ssize_t a = lower_u32(keys, 0, n, ip);
    if (a == n || keys[a] != ip)
        return NOT_FOUND;
    return emit(out, qtype, &s->recs[0], s->ttl, text, tlen) < 0 ? DECLINE : FOUND;
}

/* dnset.NameTable.get: the value of name, ABSENT, or DECLINE on trouble */
static int64_t tab_get(const NameTab *t, const uint8_t *name, Py_ssize_t len) {
    PyObject *s = PyUnicode_DecodeLatin1((const char *)name, len, NULL);
    if (s == NULL) {
        PyErr_Clear();
        return DECLINE;
    }
    Py_hash_t hh = PyObject_Hash(s);
    Py_DECREF(s);
    if (hh == -1) {
        PyErr_Clear();
        return DECLINE;
    }
    uint64_t h = (uint64_t)hh;
    const uint64_t *hashes = t->hashes.buf;
    Py_ssize_t a = lower_u64(hashes, 0, t->n, h);
    Py_ssize_t blen = PyUnicode_GET_LENGTH(t->blob);
    int kind = PyUnicode_KIND(t->blob);
    const void *data = PyUnicode_DATA(t->blob);
    for (Py_ssize_t i = a; i < t->n && hashes[i] == h; i++) {
        uint64_t o = ((const uint64_t *)t->offs.buf)[i];
        if (((const uint32_t *)t->lens.buf)[i] != (uint64_t)len || o > (uint64_t)blen || (uint64_t)len > (uint64_t)blen - o)
            continue;
        Py_ssize_t j = 0;
        while (j < len && PyUnicode_READ(kind, data, (Py_ssize_t)o + j) == name[j])
            j++;
        if (j == len)
            return ((const uint32_t *)t->vals.buf)[i];
    }
    return ABSENT;
}

/* dnset.DnSet.fast: labels[i] starts at name + lstart[i]; the name is the labels joined by dots */
static int dnset_fast(const CSet *s, const uint8_t *name, Py_ssize_t nlen, const Py_ssize_t *lstart, int nlab,
                      int qtype, Out *out) {
    if (nlab == 0)
        return NOT_FOUND;
    int64_t v = tab_get(&s->exact, name, nlen);
    const uint8_t *matched = name;
    Py_ssize_t mlen = nlen;
    if (v == DECLINE)
        return DECLINE;
    if (v == ABSENT && s->has_wild) {
        int start = nlab - s->max_wild;
        if (start < 1)
            start = 1;
        for (int i = start; i < nlab; i++) {
            v = tab_get(&s->wild, name + lstart[i], nlen - lstart[i]);
            if (v == DECLINE)
                return DECLINE;
            if (v != ABSENT) {
                matched = name + lstart[i];
                mlen = nlen - lstart[i];
                break;
            }
        }
    }
    if (v == ABSENT || v == 0)
        return NOT_FOUND;
    if (v == 0xFFFFFFFF || v >= s->nrecs)
        return DECLINE; /* several values for one name (rare): Python has them */
    const CRec *r = &s->recs[v];
    if (!r->present)
        return NOT_FOUND;
    if (emit(out, qtype, r, s->ttl, matched, mlen) < 0)
        return DECLINE;
    return FOUND;
}

/* wire._edns_limit */
static int edns_limit(const uint8_t *d, Py_ssize_t end, Py_ssize_t n) {
    if (end + 11 > n || d[end] != 0 || d[end + 1] != 0 || d[end + 2] != 41 || d[end + 6] != 0)
        return 0;
    if (end + 11 + ((d[end + 9] << 8) | d[end + 10]) != n)
        return 0;
    int want = (d[end + 3] << 8) | d[end + 4];
    if (want < 512)
        want = 512;
    return want > TX_SIZE ? TX_SIZE : want;
}

/* The answer to the query d[0:n] into resp (TX_SIZE bytes): its length, or DECLINE. */
static Py_ssize_t answer(const Engine *e, const uint8_t *d, Py_ssize_t n, uint8_t *resp) {
    static const uint8_t plain[6] = {0, 1, 0, 0, 0, 0};
    if (n < 17 || (d[2] & 0xF8) || memcmp(d + 4, plain, 6) != 0 || d[10] || d[11] > 1)
        return DECLINE;
    Py_ssize_t offs[MAX_LABELS];
    int nl = 0;
    Py_ssize_t pos = 12;
    for (;;) {
        if (pos >= n)
            return DECLINE;
        int ln = d[pos];
        if (ln == 0)
            break;
        if (ln > 63 || nl == MAX_LABELS)
            return DECLINE;
        offs[nl++] = pos;
        pos += ln + 1;
        if (pos - 12 > 254)
            return DECLINE;
    }
    Py_ssize_t end = pos + 5;
    if (end > n || pos - 12 > 254)
        return DECLINE;
    int qtype = (d[pos + 1] << 8) | d[pos + 2];
    if ((qtype != 1 && qtype != 16) || d[pos + 3] != 0 || d[pos + 4] != 1)
        return DECLINE;
    int edns = d[11] == 1;
    int limit = 512;
    if (edns) {
        limit = edns_limit(d, end, n);
        if (!limit)
            return DECLINE;
    } else if (end != n) {
        return DECLINE;
    }
    uint8_t qn[256];
    Py_ssize_t qlen = pos + 1 - 12;
    for (Py_ssize_t i = 0; i < qlen; i++) {
        uint8_t c = d[12 + i];
        qn[i] = (c >= 'A' && c <= 'Z') ? c + 32 : c;
    }
    const CZone *z = NULL;
    Py_ssize_t zstart = 0;
    for (int i = 0; i < e->nzones && z == NULL; i++) {
        const CZone *c = &e->zones[i];
        Py_ssize_t cut = qlen - c->wlen;
        if (cut <= 0 || memcmp(qn + cut, c->wire, c->wlen) != 0)
            continue;
        for (int j = 0; j < nl; j++)
            if (offs[j] == cut + 12) {
                z = c;
                zstart = cut + 12;
                break;
            }
    }
    if (z == NULL || !z->capable)
        return DECLINE;
    /* the labels below the zone, joined by dots (as ".".join(labels) in Python) */
    uint8_t name[256];
    Py_ssize_t lstart[MAX_LABELS];
    int nlab = 0;
    Py_ssize_t nlen = 0;
    for (int j = 0; j < nl && offs[j] < zstart; j++) {
        int ln = d[offs[j]];
        if (nlab)
            name[nlen++] = '.';
        lstart[nlab++] = nlen;
        memcpy(name + nlen, qn + offs[j] - 11, ln);
        nlen += ln;
    }
    int have_ip = 0;
    uint32_t ip = 0;
    if (nlab == 4 && z->reads_ip4) { /* answer.ip4_of_labels */
        have_ip = 1;
        for (int j = 3; j >= 0 && have_ip; j--) {
            int ln = d[offs[j]];
            const uint8_t *p = qn + offs[j] - 11;
            if (ln < 1 || ln > 3) {
                have_ip = 0;
                break;
            }
            unsigned o = 0;
            for (int k = 0; k < ln; k++) {
                if (p[k] < '0' || p[k] > '9') {
                    have_ip = 0;
                    break;
                }
                o = o * 10 + (p[k] - '0');
            }
            if (o > 255)
                have_ip = 0;
            ip = (ip << 8) | o;
        }
    }
    uint8_t text[16]; /* the address as TXT templates write it, made once for every IPv4 dataset */
    int tlen = have_ip && qtype == 16 ? ip4_text(ip, text) : 0;
    Out out;
    out.n = 0;
    int found = 0;
    for (int i = 0; i < z->nsets; i++) {
        const CSet *s = &z->sets[i];
        int hit;
        switch (s->kind) {
        case 1:
        case 3: hit = have_ip ? levels_fast(s, ip, qtype, text, tlen, &out) : NOT_FOUND; break;
        case 5: hit = have_ip ? ip4tset_fast(s, ip, qtype, text, tlen, &out) : NOT_FOUND; break;
        case 2: hit = dnset_fast(s, name, nlen, lstart, nlab, qtype, &out); break;
        default: hit = nlab == 32 ? DECLINE : NOT_FOUND; /* an IPv6 question: Python's */
        }
        if (hit == DECLINE)
            return DECLINE;
        found = found || hit;
    }
    /* wire._finish */
    Py_ssize_t question = end - 12;
    unsigned flags = 0x8400 | ((d[2] & 0x01) << 8);
    Py_ssize_t body = 0;
    int ancount = 0, nscount = 0;
    if (out.n) {
        for (int i = 0; i < out.n; i++)
            body += 2 + out.rrs[i].len;
        ancount = out.n;
    } else {
        if (!found)
            flags |= 3;
        if (z->soa_tail != NULL) {
            body = 2 + z->soa_len;
            nscount = 1;
        }
    }
    Py_ssize_t optlen = edns ? 11 : 0;
    int tc = 12 + question + body + optlen > limit;
    if (tc) {
        flags |= 0x0200;
        ancount = nscount = 0;
        body = 0;
    }
    if (12 + question + body + optlen > TX_SIZE)
        return DECLINE;
    resp[0] = d[0];
    resp[1] = d[1];
    put16(resp + 2, flags);
    put16(resp + 4, 1);
    put16(resp + 6, ancount);
    put16(resp + 8, nscount);
    put16(resp + 10, edns ? 1 : 0);
    memcpy(resp + 12, d + 12, question);
    uint8_t *p = resp + 12 + question;
    if (!tc) {
        if (ancount) {
            for (int i = 0; i < out.n; i++) {
                p[0] = 0xC0;
                p[1] = 0x0C;
                memcpy(p + 2, out.rrs[i].tail, out.rrs[i].len);
                p += 2 + out.rrs[i].len;
            }
        } else if (nscount) {
            p[0] = 0xC0 | (uint8_t)(zstart >> 8);
            p[1] = (uint8_t)zstart;
            memcpy(p + 2, z->soa_tail, z->soa_len);
            p += 2 + z->soa_len;
        }
    }
    if (edns) {
        memcpy(p, e->opt, 11);
        p += 11;
    }
    return p - resp;
}

/* Engine.answer(query: bytes) -> bytes | None: one query, None when Python has to answer it (tests) */
static PyObject *Engine_answer(Engine *self, PyObject *arg) {
    Py_buffer q;
    if (PyObject_GetBuffer(arg, &q, PyBUF_SIMPLE) < 0)
        return NULL;
    uint8_t resp[TX_SIZE];
    Py_ssize_t n = answer(self, q.buf, q.len, resp);
    PyBuffer_Release(&q);
    if (PyErr_Occurred())
        return NULL;
    if (n < 0)
        Py_RETURN_NONE;
    return PyBytes_FromStringAndSize((const char *)resp, n);
}

static PyObject *peer_tuple(const struct sockaddr_storage *ss) {
    char host[INET6_ADDRSTRLEN];
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
        return Py_BuildValue("(si)", host, ntohs(a->sin_port));
    }
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
        return Py_BuildValue("(siII)", host, ntohs(a->sin6_port), ntohl(a->sin6_flowinfo), a->sin6_scope_id);
    }
    Py_RETURN_NONE;
}

#define BATCH 32

/* The per-thread scratch buffer that receive() fills and Engine.reply() reads: received datagrams, the
 * answers, and per datagram its sender, the sender's address length, its length and its flags. */
typedef struct {
    uint8_t rx[BATCH][RX_SIZE];
    uint8_t tx[BATCH][TX_SIZE];
    struct sockaddr_storage peer[BATCH];
    socklen_t peerlen[BATCH];
    unsigned len[BATCH];
    int flags[BATCH];
} Scratch;

static Scratch *get_scratch(Py_buffer *b, PyObject *obj) {
    if (PyObject_GetBuffer(obj, b, PyBUF_WRITABLE) < 0)
        return NULL;
    if (b->len < (Py_ssize_t)sizeof(Scratch)) {
        PyBuffer_Release(b);
        PyErr_SetString(PyExc_ValueError, "scratch buffer too small (see SCRATCH)");
        return NULL;
    }
    return b->buf;
}

/* receive(fd, scratch) -> (count, errno)
 *
 * Waits for at least one datagram on fd with the GIL released and takes up to BATCH that are already
 * there. Split from the answering so the caller picks the zones to answer from *after* the wait: a
 * reload that lands while the thread waits answers the very next query.
 * errno is that of a failed receive (0 when it worked); after shutdown(SHUT_RD) the caller stops.
 */
static PyObject *mod_receive(PyObject *m, PyObject *args) {
    int fd;
    PyObject *obj;
    Py_buffer b;
    if (!PyArg_ParseTuple(args, "iO", &fd, &obj))
        return NULL;
    Scratch *sc = get_scratch(&b, obj);
    if (sc == NULL)
        return NULL;
    struct mmsghdr in[BATCH];
    struct iovec iov[BATCH];
    memset(in, 0, sizeof in);
    for (int i = 0; i < BATCH; i++) {
        iov[i].iov_base = sc->rx[i];
        iov[i].iov_len = RX_SIZE;
        in[i].msg_hdr.msg_iov = &iov[i];
        in[i].msg_hdr.msg_iovlen = 1;
        in[i].msg_hdr.msg_name = &sc->peer[i];
        in[i].msg_hdr.msg_namelen = sizeof sc->peer[i];
    }
    int got, err = 0;
    Py_BEGIN_ALLOW_THREADS
    do {
        got = recvmmsg(fd, in, BATCH, MSG_WAITFORONE, NULL);
    } while (got < 0 && errno == EINTR);
    if (got < 0) {
        err = errno;
        got = 0;
    }
    Py_END_ALLOW_THREADS
    for (int i = 0; i < got; i++) {
        sc->peerlen[i] = in[i].msg_hdr.msg_namelen;
        sc->len[i] = in[i].msg_len;
        sc->flags[i] = in[i].msg_hdr.msg_flags;
    }
    PyBuffer_Release(&b);
    return Py_BuildValue("(ii)", got, err);
}

/* Engine.reply(fd, scratch, count) -> (answered, [(query, peer), ...])
 *
 * Answers what it can of the count datagrams receive() left in scratch and sends those answers in one
 * sendmmsg; the rest come back for Python to answer.
 */
static PyObject *Engine_reply(Engine *self, PyObject *args) {
    int fd, got;
    PyObject *obj;
    Py_buffer b;
    if (!PyArg_ParseTuple(args, "iOi", &fd, &obj, &got))
        return NULL;
    Scratch *sc = get_scratch(&b, obj);
    if (sc == NULL)
        return NULL;
    if (got < 0 || got > BATCH) {
        PyBuffer_Release(&b);
        PyErr_SetString(PyExc_ValueError, "count out of range");
        return NULL;
    }
    struct mmsghdr outm[BATCH];
    struct iovec oiov[BATCH];
    PyObject *declined = PyList_New(0);
    if (declined == NULL) {
        PyBuffer_Release(&b);
        return NULL;
    }
    int nout = 0;
    for (int i = 0; i < got; i++) {
        if ((sc->flags[i] & MSG_TRUNC) || sc->len[i] > RX_SIZE)
            continue; /* over 4 KiB: not a query we answer over UDP */
        const uint8_t *q = sc->rx[i];
        Py_ssize_t len = sc->len[i];
        Py_ssize_t n = answer(self, q, len, sc->tx[nout]);
        if (n >= 0) {
            oiov[nout].iov_base = sc->tx[nout];
            oiov[nout].iov_len = n;
            memset(&outm[nout], 0, sizeof outm[nout]);
            outm[nout].msg_hdr.msg_iov = &oiov[nout];
            outm[nout].msg_hdr.msg_iovlen = 1;
            outm[nout].msg_hdr.msg_name = &sc->peer[i];
            outm[nout].msg_hdr.msg_namelen = sc->peerlen[i];
            nout++;
            continue;
        }
        PyErr_Clear();
        PyObject *peer = peer_tuple(&sc->peer[i]);
        PyObject *item = peer ? Py_BuildValue("(y#N)", q, len, peer) : NULL;
        if (item == NULL || PyList_Append(declined, item) < 0) {
            Py_XDECREF(item);
            Py_DECREF(declined);
            PyBuffer_Release(&b);
            return NULL;
        }
        Py_DECREF(item);
    }
    if (nout) {
        Py_BEGIN_ALLOW_THREADS
        int sent = 0;
        while (sent < nout) {
            int r = sendmmsg(fd, outm + sent, nout - sent, 0);
            if (r < 0) {
                if (errno == EINTR)
                    continue;
                sent++; /* that one answer is lost (e.g. ICMP unreachable surfacing): the client retries */
                continue;
            }
            sent += r;
        }
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&b);
    return Py_BuildValue("(iN)", nout, declined);
}

static PyMethodDef Engine_methods[] = {
    {"answer", (PyCFunction)Engine_answer, METH_O, "answer(query) -> response bytes, or None for Python"},
    {"reply", (PyCFunction)Engine_reply, METH_VARARGS,
     "reply(fd, scratch, count) -> (answered, [(query, peer)...]): answer what receive() took"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject EngineType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "relayguard.dnsbl._fastdns.Engine",
    .tp_basicsize = sizeof(Engine),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Compiled answers for plain A/TXT questions to ip4set and dnset zones",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Engine_init,
    .tp_dealloc = (destructor)Engine_dealloc,
    .tp_methods = Engine_methods,
};

static PyMethodDef mod_methods[] = {
    {"receive", mod_receive, METH_VARARGS, "receive(fd, scratch) -> (count, errno): a batch of datagrams"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moddef = {
    PyModuleDef_HEAD_INIT, "_fastdns", "The DNSBL server's compiled hot path (see dnsbl/native.py)", -1,
    mod_methods,
};

PyMODINIT_FUNC PyInit__fastdns(void) {
    if (PyType_Ready(&EngineType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&moddef);
    if (m == NULL)
        return NULL;
    Py_INCREF(&EngineType);
    if (PyModule_AddObject(m, "Engine", (PyObject *)&EngineType) < 0) {
        Py_DECREF(&EngineType);
        Py_DECREF(m);
        return NULL;
    }
    PyModule_AddIntConstant(m, "BATCH", BATCH);
    PyModule_AddIntConstant(m, "SCRATCH", (long)sizeof(Scratch));
    return m;
}
