/* Connector-common layer: what every store connector implements the same way
 * (budget and keep, slot states and the generation/retire arithmetic, the
 * descriptor checks of a proxy, the payload checksum, the slot-count
 * default). The local and RMA connectors use it; a new connector starts from
 * it. See docs/DESIGN.md, section "Connector-common layer". */
#include <stdlib.h>

#include "store/store_int.h"
#include "util/options.h"

int
pxsi_conn_sizes(const char *subsys, const pxs_store_opts_t *o, uint64_t *cap_out,
                uint32_t *nslots_out)
{
    uint64_t cap = (uint64_t)pxsi_store_arena_bytes(o) & ~(uint64_t)(PXSI_ARENA_ALIGN - 1);
    uint64_t nsl =
        o->max_objects ? o->max_objects : pxsi_opt_uint(PXSI_OPT_MAX_OBJECTS);
    if (!nsl) {
        nsl = cap / 4096;
        nsl = nsl < 1024 ? 1024 : nsl > (1u << 20) ? (1u << 20) : nsl;
    }
    *cap_out = cap;
    *nslots_out = nsl > PXSI_MAX_SLOTS ? 0 : (uint32_t)nsl;
    if (cap < PXSI_ARENA_ALIGN)
        return pxsi_err(PXS_ERR_INVALID, subsys, "arena of %llu bytes is too small",
                        (unsigned long long)cap);
    if (nsl > PXSI_MAX_SLOTS)
        return pxsi_err(PXS_ERR_INVALID, subsys, "max_objects %llu > 16M", (unsigned long long)nsl);
    return PXS_OK;
}

size_t
pxsi_conn_piece(size_t chunk)
{
    return chunk < PXSI_COPY_PIECE ? chunk : PXSI_COPY_PIECE;
}

int
pxsi_conn_fits(const char *subsys, const pxsi_arena_t *a, size_t len)
{
    if (pxsi_arena_need(len) > a->cap)
        return pxsi_err(PXS_ERR_TOO_BIG, subsys, "object of %zu bytes > arena of %llu bytes", len,
                        (unsigned long long)a->cap);
    return PXS_OK;
}

/* One allocation attempt: a block of len bytes, or (lent) a slot only. */
static int
try_alloc(pxsi_arena_t *a, size_t len, int lent, pxsi_conn_block_t *out)
{
    if (lent) {
        out->off = 0;
        return pxsi_arena_alloc_lent(a, &out->slot);
    }
    return pxsi_arena_alloc(a, len, &out->slot, &out->off);
}

/* No block at the first try: reclaim, then wait (backpressure). Out of
 * line, so that conn_alloc's common case (a block at once) stays small. */
PXSI_NOINLINE static int
conn_alloc_wait(const char *subsys, pxsi_arena_t *a, size_t len, int lent, double timeout,
                const pxsi_conn_waiter_t *w, pxsi_conn_block_t *out)
{
    int rc;
    if ((rc = w->reclaim(w->ctx)) != PXS_OK)
        return rc;
    rc = try_alloc(a, len, lent, out);
    /* backpressure: wait for resolvers to give their claims back */
    pxsi_backoff_t b;
    pxsi_backoff_init(&b, timeout);
    int waited = 0;
    double t0 = 0;
    while (rc == PXS_ERR_AGAIN) {
        /* a put that may wait (timeout != 0) and finds no room is one wait,
         * even if its deadline passed before the first pause */
        if (!waited && timeout == 0) {
            rc = pxsi_arena_full_detail(a, PXS_ERR_AGAIN, subsys, len, timeout);
            break;
        }
        if (!waited++) {
            (*w->waits)++;
            t0 = pxsi_now();
            if (PXSI_LOG_ON(PXSI_LOG_DEBUG)) {
                uint32_t ngaps = 0;
                uint64_t largest = 0;
                pxsi_arena_gaps(a, &ngaps, &largest);
                PXSI_DEBUG(subsys,
                           "backpressure start: arena full for a put of %zu B (used %llu of "
                           "%llu B, %u live object(s), largest free block %llu B), waiting up "
                           "to %g s",
                           len, (unsigned long long)a->used, (unsigned long long)a->cap,
                           a->nlive, (unsigned long long)largest, timeout);
            }
        }
        if (pxsi_backoff_expired(&b)) {
            rc = pxsi_arena_full_detail(a, PXS_ERR_AGAIN, subsys, len, timeout);
            break;
        }
        w->pause(w->ctx, &b);
        if ((rc = w->reclaim(w->ctx)) != PXS_OK)
            break;
        rc = try_alloc(a, len, lent, out);
    }
    if (waited) {
        double d = pxsi_now() - t0;
        if (w->wait_seconds)
            *w->wait_seconds += d;
        PXSI_DEBUG(subsys, "backpressure end: put of %zu B %s after %.6f s", len,
                   rc == PXS_OK ? "got its block" : pxs_errname(rc), d);
    }
    return rc;
}

static inline int
conn_alloc(const char *subsys, pxsi_arena_t *a, size_t len, int lent, double timeout,
           const pxsi_conn_waiter_t *w, pxsi_conn_block_t *out)
{
    int rc = lent ? PXS_OK : pxsi_conn_fits(subsys, a, len);
    if (rc == PXS_OK && a->since_reclaim >= PXSI_RECLAIM_EVERY && a->nlive) {
        /* early reclaim (amortized: once per PXSI_RECLAIM_EVERY bytes put):
         * dead objects' gaps are reused while still hot, not after a walk
         * through the whole cold arena */
        a->since_reclaim = 0;
        rc = w->reclaim(w->ctx);
    }
    if (rc == PXS_OK)
        rc = try_alloc(a, len, lent, out);
    if (PXSI_LIKELY(rc != PXS_ERR_AGAIN))
        return rc;
    return conn_alloc_wait(subsys, a, len, lent, timeout, w, out);
}

int
pxsi_conn_alloc(const char *subsys, pxsi_arena_t *a, size_t len, double timeout,
                const pxsi_conn_waiter_t *w, pxsi_conn_block_t *out)
{
    return conn_alloc(subsys, a, len, 0, timeout, w, out);
}

int
pxsi_conn_alloc_lent(const char *subsys, pxsi_arena_t *a, double timeout,
                     const pxsi_conn_waiter_t *w, pxsi_conn_block_t *out)
{
    return conn_alloc(subsys, a, 0, 1, timeout, w, out);
}

void
pxsi_conn_arena_stats(const pxsi_arena_t *a, pxsi_store_stats_t *out)
{
    uint32_t ngaps = 0;
    uint64_t largest = 0;
    pxsi_arena_gaps(a, &ngaps, &largest);
    out->arena_cap = a->cap;
    out->arena_used = a->used;
    out->arena_hwm = a->used_hwm;
    out->largest_free = largest;
    out->objects_live = a->nlive;
}

void
pxsi_conn_publish(pxsi_conn_slot_t *sl, uint32_t s, uint64_t off, size_t len, uint16_t flags,
                  uint32_t crc, const pxs_put_opts_t *o, pxs_proxy_info_t *out)
{
    sl->gen++; /* odd: live */
    sl->state = PXSI_SLOT_LIVE;
    sl->evict = 0;
    sl->flags = flags;
    sl->crc = crc;
    sl->size = len;
    out->offset = off;
    out->size = len;
    out->generation = pxsi_gen_make(s, sl->gen);
    out->flags = flags;
    out->payload_crc = crc;
    out->budget = o->resolves;
}

void
pxsi_conn_free_slot(pxsi_arena_t *a, pxsi_conn_slot_t *sl, uint32_t s, const char *subsys)
{
    if (sl->gen >= PXSI_GEN_RETIRE) {
        /* generation exhausted: never reuse the slot (no wrap) */
        sl->state = PXSI_SLOT_RETIRED;
        pxsi_arena_retire(a, s);
        PXSI_DEBUG(subsys, "slot %u retired at gen %llu", s, (unsigned long long)sl->gen);
    } else {
        sl->state = PXSI_SLOT_FREE;
        pxsi_arena_free(a, s); /* may lower hwm */
    }
}

int
pxsi_conn_check(const char *subsys, const pxs_proxy_info_t *pi, uint64_t nonce, uint32_t nslots,
                uint64_t cap)
{
    /* the connector's own record of the instance: a connector never acts on
     * another instance's proxy */
    if (pi->store_nonce != nonce)
        return pxsi_err(PXS_ERR_STALE, subsys,
                        "proxy of store instance 0x%016llx given to store "
                        "instance 0x%016llx "
                        "(another store, job or run)",
                        (unsigned long long)pi->store_nonce, (unsigned long long)nonce);
    uint64_t s = pxsi_gen_slot(pi->generation);
    int o = (int)pi->owner;
    if (s >= nslots)
        return pxsi_err(PXS_ERR_CORRUPT, subsys, "slot %llu beyond rank %d's table of %u",
                        (unsigned long long)s, o, nslots);
    if (pi->offset % PXSI_ARENA_ALIGN)
        return pxsi_err(PXS_ERR_CORRUPT, subsys, "misaligned offset %llu",
                        (unsigned long long)pi->offset);
    if (pi->offset > cap || pi->size > cap - pi->offset)
        return pxsi_err(PXS_ERR_CORRUPT, subsys,
                        "offset %llu + size %llu beyond rank %d's arena (%llu)",
                        (unsigned long long)pi->offset, (unsigned long long)pi->size, o,
                        (unsigned long long)cap);
    if (!(pxsi_gen_gen(pi->generation) & 1u))
        return pxsi_err(PXS_ERR_STALE, subsys, "generation %llu is not a live one",
                        (unsigned long long)pxsi_gen_gen(pi->generation));
    return PXS_OK;
}

int
pxsi_conn_match(const char *subsys, const pxsi_conn_slot_t *sl, uint64_t off,
                const pxs_proxy_info_t *pi, const char *what)
{
    if (sl->state != PXSI_SLOT_LIVE || sl->gen != pxsi_gen_gen(pi->generation))
        return pxsi_err(PXS_ERR_STALE, subsys, "%s: object is gone", what);
    if (off != pi->offset || sl->size != pi->size || sl->flags != pi->flags ||
        sl->crc != pi->payload_crc)
        return pxsi_err(PXS_ERR_CORRUPT, subsys, "%s: proxy does not match the object", what);
    return PXS_OK;
}

int
pxsi_conn_crc_check(const char *subsys, const pxs_proxy_info_t *pi, const void *data)
{
    if (!(pi->flags & PXS_PROXY_F_PAYLOAD_CRC))
        return PXS_OK;
    uint32_t c = pxs_crc32c(0, data, (size_t)pi->size);
    if (c != pi->payload_crc)
        return pxsi_err(PXS_ERR_CORRUPT, subsys, "payload checksum mismatch (0x%08x != 0x%08x)", c,
                        pi->payload_crc);
    return PXS_OK;
}

int
pxsi_conn_corrupt(unsigned char *arena, uint64_t cap, uint64_t offset)
{
    if (offset >= cap)
        return PXS_ERR_INVALID;
    arena[offset] ^= 0x5a;
    return PXS_OK;
}

int
pxsi_conn_not_free(const char *subsys, uint32_t s)
{
    return pxsi_err(PXS_ERR_INVALID, subsys, "test_set_gen: slot %u is not a free slot", s);
}
