/* The table of received inline payloads (docs/DESIGN.md, section "Inline
 * chunks"): one per process, bounded (PXSI_INLINE_HOLD_*), under a mutex.
 * Entry ids grow by one per payload and never repeat within a process; an
 * id lives in slot id % PXSI_INLINE_HOLD_ENTRIES, so a lookup is one index
 * and an id compare. A proxy names an entry by (table nonce, id) and repeats
 * its size, payload CRC32C, producer, topic and seq: a proxy that does not
 * match its entry in every field is refused, so it never names other bytes. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "pubsub/inline.h"
#include "util/util.h"

#define SUBSYS     "inline"
#define VIEW_MAGIC 0x50494e56494557ull /* "PINVIEW" */

struct entry {
    uint64_t id; /* 0: empty */
    uint32_t len, crc, topic;
    int32_t producer;
    uint64_t seq;
    unsigned char *data;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct entry tab[PXSI_INLINE_HOLD_ENTRIES];
static uint64_t nonce, next_id = 1, oldest = 1, bytes;
static uint32_t held;
static int warned;
static const char view_tag = 0; /* pxs_view_t.internal_[3] of an inline view */

static void
evict_locked(struct entry *e)
{
    bytes -= e->len;
    held--;
    free(e->data);
    memset(e, 0, sizeof *e);
}

static void
encode(uint64_t nn, uint64_t id, uint32_t len, uint32_t crc, uint32_t topic, int32_t producer,
       uint64_t seq, pxs_proxy_t *out)
{
    pxs_proxy_info_t pi;
    memset(&pi, 0, sizeof pi);
    pi.kind = PXS_CONN_INLINE;
    pi.flags = PXS_PROXY_F_PAYLOAD_CRC;
    pi.owner = (uint32_t)producer;
    pi.store_nonce = nn;
    pi.offset = id;
    pi.size = len;
    pi.seq = seq;
    pi.payload_crc = crc;
    pi.budget = 1;
    pi.topic = topic;
    int rc = pxs_proxy_encode(&pi, out); /* fields are in range: cannot fail */
    PXS_ASSERT(rc == PXS_OK);
    (void)rc;
}

int
pxsi_inline_put(const void *data, uint32_t len, uint32_t topic, int32_t producer, uint64_t seq,
                pxs_proxy_t *proxy_out)
{
    if (len > PXSI_INLINE_HARD_MAX)
        return pxsi_err(PXS_ERR_CORRUPT, SUBSYS, "inline payload of %u B (at most %u)", len,
                        PXSI_INLINE_HARD_MAX);
    unsigned char *copy = NULL;
    if (len && !(copy = malloc(len)))
        return pxsi_err(PXS_ERR_NOMEM, SUBSYS, "inline payload of %u B", len);
    if (len)
        memcpy(copy, data, len);
    uint32_t crc = pxs_crc32c(0, data, len);
    pthread_mutex_lock(&mu);
    if (!nonce && pxsi_random_u64(&nonce) != PXS_OK) {
        pthread_mutex_unlock(&mu);
        free(copy);
        return pxsi_err(PXS_ERR_NOTSUP, SUBSYS, "no source of randomness for the table nonce");
    }
    uint64_t id = next_id++;
    int dropped = 0;
    struct entry *e = &tab[id % PXSI_INLINE_HOLD_ENTRIES];
    if (e->id) {
        evict_locked(e); /* id - PXSI_INLINE_HOLD_ENTRIES: the oldest slot user */
        dropped++;
    }
    while (bytes + len > PXSI_INLINE_HOLD_BYTES && oldest < id) {
        struct entry *o = &tab[oldest % PXSI_INLINE_HOLD_ENTRIES];
        if (o->id == oldest) {
            evict_locked(o);
            dropped++;
        }
        oldest++;
    }
    if (id >= PXSI_INLINE_HOLD_ENTRIES && oldest <= id - PXSI_INLINE_HOLD_ENTRIES)
        oldest = id - PXSI_INLINE_HOLD_ENTRIES + 1;
    e->id = id;
    e->len = len;
    e->crc = crc;
    e->topic = topic;
    e->producer = producer;
    e->seq = seq;
    e->data = copy;
    bytes += len;
    held++;
    uint64_t nn = nonce;
    int warn = dropped && !warned;
    warned |= dropped != 0;
    pthread_mutex_unlock(&mu);
    if (warn)
        PXSI_WARN(SUBSYS,
                  "more than %u unresolved inline payloads (or %u B) held by this process: the "
                  "oldest are dropped (their proxies resolve to PXS_ERR_STALE)",
                  PXSI_INLINE_HOLD_ENTRIES, PXSI_INLINE_HOLD_BYTES);
    encode(nn, id, len, crc, topic, producer, seq, proxy_out);
    return PXS_OK;
}

int
pxsi_inline_sender_proxy(const void *data, uint32_t len, uint32_t topic, int32_t producer,
                         uint64_t seq, pxs_proxy_t *proxy_out)
{
    encode(0, 0, len, pxs_crc32c(0, data, len), topic, producer, seq, proxy_out);
    return PXS_OK;
}

/* Find the entry a proxy names (mu held): its index, or an error. */
static int
lookup_locked(const pxs_proxy_t *p, const char *what, struct entry **out)
{
    pxs_proxy_info_t pi;
    int rc = pxs_proxy_decode(p->bytes, PXS_PROXY_SIZE, &pi);
    if (rc != PXS_OK)
        return rc;
    if (pi.kind != PXS_CONN_INLINE)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "%s: not an inline proxy", what);
    if (pi.store_nonce == 0)
        return pxsi_err(PXS_ERR_STALE, SUBSYS,
                        "%s: inline proxy returned by the send: the payload travelled inside "
                        "the event, and only a process that received the event holds it "
                        "(resolve the received event's proxy there)",
                        what);
    if (pi.store_nonce != nonce)
        return pxsi_err(PXS_ERR_STALE, SUBSYS,
                        "%s: inline proxy of another process (table 0x%016llx): an inline "
                        "payload is held only by the process that received its event",
                        what, (unsigned long long)pi.store_nonce);
    struct entry *e = &tab[pi.offset % PXSI_INLINE_HOLD_ENTRIES];
    if (pi.offset == 0 || e->id != pi.offset)
        return pxsi_err(PXS_ERR_STALE, SUBSYS,
                        "%s: inline payload %llu is no longer held (resolved, viewed, dropped "
                        "or forwarded already, or displaced: a process holds at most %u "
                        "unresolved inline payloads, %u B)",
                        what, (unsigned long long)pi.offset, PXSI_INLINE_HOLD_ENTRIES,
                        PXSI_INLINE_HOLD_BYTES);
    if (pi.size != e->len || pi.payload_crc != e->crc || pi.topic != e->topic ||
        pi.owner != (uint32_t)e->producer || pi.seq != e->seq ||
        pi.flags != PXS_PROXY_F_PAYLOAD_CRC)
        return pxsi_err(PXS_ERR_CORRUPT, SUBSYS,
                        "%s: inline proxy does not match the payload %llu it names (forged "
                        "or damaged fields)",
                        what, (unsigned long long)pi.offset);
    *out = e;
    return PXS_OK;
}

int
pxsi_inline_copy(const pxs_proxy_t *p, void *buf, size_t cap, size_t *len_out)
{
    if (!p || (!buf && cap))
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "copy: NULL argument");
    pthread_mutex_lock(&mu);
    struct entry *e = NULL;
    int rc = lookup_locked(p, "forward", &e);
    if (rc == PXS_OK) {
        if (len_out)
            *len_out = e->len;
        if (e->len > cap)
            rc = pxsi_err(PXS_ERR_TRUNC, SUBSYS, "inline payload is %u bytes, buffer %zu", e->len,
                          cap);
        else if (e->len)
            memcpy(buf, e->data, e->len);
    }
    pthread_mutex_unlock(&mu);
    return rc;
}

int
pxsi_inline_resolve(const pxs_proxy_t *p, void *buf, size_t cap, size_t *len_out)
{
    if (!p || (!buf && cap))
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "resolve: NULL %s", !p ? "proxy" : "buffer");
    pthread_mutex_lock(&mu);
    struct entry *e = NULL;
    int rc = lookup_locked(p, "resolve", &e);
    if (rc == PXS_OK) {
        if (len_out)
            *len_out = e->len;
        if (e->len > cap) {
            rc = pxsi_err(PXS_ERR_TRUNC, SUBSYS, "resolve: object is %u bytes, buffer %zu", e->len,
                          cap);
        } else {
            if (e->len)
                memcpy(buf, e->data, e->len);
            evict_locked(e);
        }
    }
    pthread_mutex_unlock(&mu);
    return rc;
}

/* Take the entry's bytes out of the table (consumes it). */
static int
take(const pxs_proxy_t *p, const char *what, unsigned char **data_out, size_t *len_out)
{
    if (!p)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "%s: NULL proxy", what);
    pthread_mutex_lock(&mu);
    struct entry *e = NULL;
    int rc = lookup_locked(p, what, &e);
    if (rc == PXS_OK) {
        unsigned char *d = e->data;
        size_t n = e->len;
        if (!d && !(d = malloc(1))) {
            rc = pxsi_err(PXS_ERR_NOMEM, SUBSYS, "%s", what);
        } else {
            e->data = NULL;
            evict_locked(e);
            *data_out = d;
            *len_out = n;
        }
    }
    pthread_mutex_unlock(&mu);
    return rc;
}

int
pxsi_inline_resolve_alloc(const pxs_proxy_t *p, void **buf_out, size_t *len_out)
{
    if (!buf_out)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "resolve_alloc: buf_out is NULL");
    unsigned char *d = NULL;
    size_t n = 0;
    int rc = take(p, "resolve_alloc", &d, &n);
    if (rc != PXS_OK)
        return rc;
    *buf_out = d; /* malloc'd: pxs_free() frees it */
    if (len_out)
        *len_out = n;
    return PXS_OK;
}

/* Live inline views (a release through a copy of a released view must be
 * refused, not free twice): their buffers, under mu. */
struct view_rec {
    void *p;
    uint64_t id;
};
static struct view_rec *views;
static size_t nviews, cviews;
static uint64_t next_view = 1;

int
pxsi_inline_view(const pxs_proxy_t *p, pxs_view_t *view_out)
{
    if (!view_out)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "view: view_out is NULL");
    pthread_mutex_lock(&mu);
    if (nviews == cviews) {
        size_t nc = cviews ? 2 * cviews : 16;
        struct view_rec *nv = realloc(views, nc * sizeof *nv);
        if (!nv) {
            pthread_mutex_unlock(&mu);
            return pxsi_err(PXS_ERR_NOMEM, SUBSYS, "view table");
        }
        views = nv;
        cviews = nc;
    }
    pthread_mutex_unlock(&mu);
    unsigned char *d = NULL;
    size_t n = 0;
    int rc = take(p, "view", &d, &n);
    if (rc != PXS_OK)
        return rc;
    pthread_mutex_lock(&mu);
    uint64_t vid = next_view++;
    views[nviews].p = d; /* room reserved above; only views grow the table */
    views[nviews++].id = vid;
    pthread_mutex_unlock(&mu);
    memset(view_out, 0, sizeof *view_out);
    view_out->data = d;
    view_out->len = n;
    view_out->internal_[0] = d;
    view_out->internal_[3] = (void *)&view_tag;
    view_out->internal_u_[3] = VIEW_MAGIC;
    view_out->internal_u_[0] = vid;
    return PXS_OK;
}

int
pxsi_inline_is_view(const pxs_view_t *v)
{
    return v && v->internal_[3] == (const void *)&view_tag;
}

int
pxsi_inline_release(pxs_view_t *v)
{
    int found = 0;
    if (pxsi_inline_is_view(v) && v->internal_u_[3] == VIEW_MAGIC && v->internal_[0]) {
        pthread_mutex_lock(&mu);
        for (size_t i = 0; i < nviews; i++)
            if (views[i].p == v->internal_[0] && views[i].id == v->internal_u_[0]) {
                views[i] = views[--nviews];
                found = 1;
                break;
            }
        pthread_mutex_unlock(&mu);
    }
    if (!found)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS,
                        "release: not a live inline view (released already, or a copy of one)");
    free(v->internal_[0]);
    memset(v, 0, sizeof *v);
    return PXS_OK;
}

int
pxsi_inline_drop(const pxs_proxy_t *p)
{
    if (!p)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "drop: NULL proxy");
    pthread_mutex_lock(&mu);
    struct entry *e = NULL;
    int rc = lookup_locked(p, "drop", &e);
    if (rc == PXS_OK)
        evict_locked(e);
    pthread_mutex_unlock(&mu);
    return rc;
}

uint32_t
pxsi_inline_held(void)
{
    pthread_mutex_lock(&mu);
    uint32_t n = held;
    pthread_mutex_unlock(&mu);
    return n;
}
