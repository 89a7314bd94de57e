/* Local connector: the store's semantics in one process (heap arena, one
 * mutex), for unit tests and threads. Same allocator, generations, resolve
 * budget, keep-until-evict, checksum, views and backpressure as the RMA
 * connector; the owner is always rank 0 and nothing calls MPI.
 *
 * Thread safety: every operation may be called from any thread at once (the
 * handle itself is shared: the front end guards its counters and view table
 * with its own mutex); bytes are copied outside the lock while the object's
 * inflight count pins it, exactly like an RMA claim.
 *
 * evict: the caller is always the owner: the object dies now (keep objects
 * too). drop: one unit of the budget, like a resolve without the copy; a
 * keep object is only validated.
 *
 * Identity (docs/DESIGN.md, section "Object identity"): the store's nonce is
 * drawn by the front end and kept here too (checked in l_check); generations
 * are 40 bits, a slot whose dead gen reaches PXSI_GEN_RETIRE is retired
 * instead of reused, and a claim beyond PXSI_INFLIGHT_LIMIT is refused, as
 * in the RMA connector. */
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>

#include "store/store_int.h"

#define SUBSYS "store.local"

/* The common slot record (conn_common.c) plus what the RMA connector keeps
 * in its control words: claims in flight and the remaining budget. */
typedef struct lslot {
    pxsi_conn_slot_t c;
    uint32_t inflight;
    int64_t remaining;
} lslot_t;

typedef struct lstore {
    pthread_mutex_t mu;
    uint64_t nonce; /* the store instance's nonce */
    unsigned char *arena;
    uint64_t cap;
    pxsi_arena_t al;
    lslot_t *slots;
    size_t piece;
    pxsi_conn_waiter_t waiter; /* for put's backpressure */
    pxsi_store_stats_t stats;
} lstore_t;

static int l_reclaim_cb(void *ctx);
static void l_pause(void *ctx, pxsi_backoff_t *b);

static int
l_create(MPI_Comm comm, const pxs_store_opts_t *o, uint64_t nonce, void **out)
{
    (void)comm;
    uint64_t cap = 0;
    uint32_t nsl = 0;
    int rc = pxsi_conn_sizes(SUBSYS, o, &cap, &nsl);
    if (rc)
        return rc;
    lstore_t *l = calloc(1, sizeof *l);
    if (!l)
        return pxsi_err(PXS_ERR_NOMEM, SUBSYS, "store");
    l->cap = cap;
    l->nonce = nonce;
    l->arena = malloc((size_t)cap);
    l->slots = calloc((size_t)nsl, sizeof *l->slots);
    l->piece = pxsi_conn_piece(pxsi_store_get_chunk(o));
    rc = (l->arena && l->slots) ? pxsi_arena_init(&l->al, cap, nsl)
                                  : pxsi_err(PXS_ERR_NOMEM, SUBSYS, "arena of %llu bytes",
                                             (unsigned long long)cap);
    if (rc) {
        free(l->arena);
        free(l->slots);
        free(l);
        return rc;
    }
    pthread_mutex_init(&l->mu, NULL);
    l->waiter = (pxsi_conn_waiter_t){l_reclaim_cb, l_pause, l, &l->stats.put_waits,
                                     &l->stats.put_wait_seconds};
    *out = l;
    return PXS_OK;
}

static int
l_destroy(void *st)
{
    lstore_t *l = st;
    pthread_mutex_destroy(&l->mu);
    pxsi_arena_fini(&l->al);
    free(l->arena);
    free(l->slots);
    free(l);
    return PXS_OK;
}

/* under the lock */
static void
l_reclaim(lstore_t *l)
{
    uint32_t n = l->al.hwm;
    for (uint32_t s = 0; s < n; s++) {
        lslot_t *sl = &l->slots[s];
        if (sl->c.state == PXSI_SLOT_LIVE && sl->remaining <= 0) {
            sl->c.gen++;
            sl->c.state = PXSI_SLOT_DYING;
        }
        if (sl->c.state == PXSI_SLOT_DYING && sl->inflight == 0) {
            l->stats.reclaimed++;
            pxsi_conn_free_slot(&l->al, &sl->c, s, SUBSYS);
        }
    }
}

static int
l_reclaim_cb(void *ctx)
{
    l_reclaim(ctx);
    return PXS_OK;
}

/* back off with the lock released: resolvers and evicts need it */
static void
l_pause(void *ctx, pxsi_backoff_t *b)
{
    lstore_t *l = ctx;
    pthread_mutex_unlock(&l->mu);
    pxsi_backoff_pause(b);
    pthread_mutex_lock(&l->mu);
}

/* reserve's early check: larger than the arena is TOO_BIG (as put) */
static int
l_put_check(void *st, size_t len)
{
    lstore_t *l = st;
    pthread_mutex_lock(&l->mu);
    int rc = pxsi_conn_fits(SUBSYS, &l->al, len);
    pthread_mutex_unlock(&l->mu);
    return rc;
}

static int
l_put(void *st, const void *data, size_t len, const pxs_put_opts_t *o, double timeout,
      pxs_proxy_info_t *out)
{
    lstore_t *l = st;
    pxsi_conn_block_t blk;
    pthread_mutex_lock(&l->mu);
    int rc = pxsi_conn_alloc(SUBSYS, &l->al, len, timeout, &l->waiter, &blk);
    if (rc) {
        pthread_mutex_unlock(&l->mu);
        return rc;
    }
    uint32_t s = blk.slot;
    uint64_t off = blk.off;
    lslot_t *sl = &l->slots[s];
    sl->c.state = PXSI_SLOT_DYING; /* allocated, not yet visible (gen even) */
    sl->inflight = 1;    /* pins it against reclaim while we copy unlocked */
    pthread_mutex_unlock(&l->mu);

    unsigned char *dst = l->arena + off;
    uint32_t crc = 0;
    pxsi_copy(dst, data, len, l->piece);
    if (o->checksum)
        crc = pxs_crc32c(0, dst, len);
    pthread_mutex_lock(&l->mu);
    sl->inflight = 0;
    sl->remaining = pxsi_conn_put_budget(o);
    pxsi_conn_publish(&sl->c, s, off, len, pxsi_conn_put_flags(o), crc, o, out);
    pthread_mutex_unlock(&l->mu);
    return PXS_OK;
}

static int
l_check(void *st, const pxs_proxy_info_t *pi)
{
    lstore_t *l = st;
    return pxsi_conn_check(SUBSYS, pi, l->nonce, l->al.nslots, l->cap);
}

/* Is the proxy the slot's live object? PXS_ERR_STALE / PXS_ERR_CORRUPT.
 * Under the lock. */
static int
l_match(lstore_t *l, const pxs_proxy_info_t *pi, const char *what)
{
    uint32_t s = pxsi_gen_slot(pi->generation);
    return pxsi_conn_match(SUBSYS, &l->slots[s].c, l->al.off[s], pi, what);
}

/* Claim one resolve (delta from the budget); under the lock. */
static int
l_claim(lstore_t *l, const pxs_proxy_info_t *pi, int64_t delta, int pin)
{
    uint32_t s = pxsi_gen_slot(pi->generation);
    lslot_t *sl = &l->slots[s];
    int rc = l_match(l, pi, "resolve");
    if (rc)
        return rc;
    if (sl->remaining <= 0)
        return pxsi_err(PXS_ERR_STALE, SUBSYS, "resolve budget used up");
    if (pin && sl->inflight >= PXSI_INFLIGHT_LIMIT)
        return pxsi_err(PXS_ERR_BUSY, SUBSYS, "object has %u claims in flight (limit %llu)",
                        sl->inflight, (unsigned long long)PXSI_INFLIGHT_LIMIT);
    sl->remaining += delta;
    if (pin)
        sl->inflight++;
    return PXS_OK;
}

static void
l_unpin(lstore_t *l, uint32_t s)
{
    pthread_mutex_lock(&l->mu);
    l->slots[s].inflight--;
    pthread_mutex_unlock(&l->mu);
}

static int
l_resolve(void *st, const pxs_proxy_info_t *pi, void *buf, size_t cap, size_t *len_out)
{
    lstore_t *l = st;
    (void)cap;
    pthread_mutex_lock(&l->mu);
    int rc = l_claim(l, pi, -1, 1);
    pthread_mutex_unlock(&l->mu);
    if (rc)
        return rc;
    pxsi_copy(buf, l->arena + pi->offset, (size_t)pi->size, l->piece);
    rc = pxsi_conn_crc_check(SUBSYS, pi, buf);
    pthread_mutex_lock(&l->mu);
    l->slots[pxsi_gen_slot(pi->generation)].inflight--;
    l->stats.resolves_self++;
    pthread_mutex_unlock(&l->mu);
    if (rc == PXS_OK)
        *len_out = (size_t)pi->size;
    return rc;
}

static int
l_resolve_start(void *st, const pxs_proxy_info_t *pi, void *buf, size_t cap, pxs_request_t *q)
{
    size_t n = 0;
    q->status = l_resolve(st, pi, buf, cap, &n);
    q->len = n;
    q->done = 1;
    return PXS_OK;
}

static int
l_resolve_test(void *st, pxs_request_t *q)
{
    (void)st;
    q->done = 1;
    return PXS_OK;
}

static int
l_resolve_wait(void *st, pxs_request_t *q)
{
    return l_resolve_test(st, q);
}

static int
l_view(void *st, const pxs_proxy_info_t *pi, pxs_view_t *v)
{
    lstore_t *l = st;
    pthread_mutex_lock(&l->mu);
    int rc = l_claim(l, pi, -1, 1);
    if (rc == PXS_OK)
        l->stats.views_zero_copy++;
    pthread_mutex_unlock(&l->mu);
    if (rc)
        return rc;
    uint32_t s = pxsi_gen_slot(pi->generation);
    const unsigned char *p = l->arena + pi->offset;
    if ((rc = pxsi_conn_crc_check(SUBSYS, pi, p)) != PXS_OK) {
        l_unpin(l, s);
        return rc;
    }
    v->data = p;
    v->len = (size_t)pi->size;
    v->internal_u_[1] = s;
    return PXS_OK;
}

static int
l_release(void *st, pxs_view_t *v)
{
    l_unpin(st, (uint32_t)v->internal_u_[1]);
    return PXS_OK;
}

static int
l_evict(void *st, const pxs_proxy_info_t *pi)
{
    lstore_t *l = st;
    /* one process: the caller is always the owner: evict now (it is freed
     * once no view pins it), keep objects included */
    pthread_mutex_lock(&l->mu);
    int rc = l_match(l, pi, "evict");
    if (rc == PXS_OK) {
        l->slots[pxsi_gen_slot(pi->generation)].remaining = 0;
        l_reclaim(l);
    }
    pthread_mutex_unlock(&l->mu);
    return rc;
}

/* One unit of the budget, as a resolve without the copy; keep objects: a
 * validated no-op. */
static int
l_drop(void *st, const pxs_proxy_info_t *pi)
{
    lstore_t *l = st;
    pthread_mutex_lock(&l->mu);
    int rc = l_match(l, pi, "drop");
    if (rc == PXS_OK && !(pi->flags & PXS_PROXY_F_KEEP)) {
        lslot_t *sl = &l->slots[pxsi_gen_slot(pi->generation)];
        if (sl->remaining <= 0) {
            rc = pxsi_err(PXS_ERR_STALE, SUBSYS, "drop: resolve budget used up");
        } else {
            sl->remaining--;
            l_reclaim(l);
        }
    }
    pthread_mutex_unlock(&l->mu);
    return rc;
}

static int
l_progress(void *st)
{
    lstore_t *l = st;
    pthread_mutex_lock(&l->mu);
    l_reclaim(l);
    pthread_mutex_unlock(&l->mu);
    return PXS_OK;
}

static int
l_used(void *st, size_t *used_out, size_t *cap_out)
{
    lstore_t *l = st;
    pthread_mutex_lock(&l->mu);
    l_reclaim(l);
    *used_out = (size_t)l->al.used;
    *cap_out = (size_t)l->al.cap;
    pthread_mutex_unlock(&l->mu);
    return PXS_OK;
}

static int
l_path(void *st, int owner)
{
    (void)st;
    (void)owner;
    return PXSI_PATH_SELF;
}

static void
l_stats(void *st, pxsi_store_stats_t *out)
{
    lstore_t *l = st;
    pthread_mutex_lock(&l->mu);
    *out = l->stats;
    pxsi_conn_arena_stats(&l->al, out);
    pthread_mutex_unlock(&l->mu);
}

#ifdef PXS_TEST_HOOKS
static int
l_corrupt(void *st, uint64_t offset)
{
    lstore_t *l = st;
    return pxsi_conn_corrupt(l->arena, l->cap, offset);
}

static int
l_set_gen(void *st, uint32_t s, uint64_t gen)
{
    lstore_t *l = st;
    int rc = PXS_OK;
    pthread_mutex_lock(&l->mu);
    if (s >= l->al.nslots || l->slots[s].c.state != PXSI_SLOT_FREE || l->slots[s].inflight)
        rc = pxsi_conn_not_free(SUBSYS, s);
    else
        l->slots[s].c.gen = gen;
    pthread_mutex_unlock(&l->mu);
    return rc;
}

static int
l_add_claims(void *st, uint32_t s, int64_t n)
{
    lstore_t *l = st;
    int rc = PXS_OK;
    pthread_mutex_lock(&l->mu);
    if (s >= l->al.nslots || (int64_t)l->slots[s].inflight + n < 0 ||
        (int64_t)l->slots[s].inflight + n > (int64_t)PXSI_INFLIGHT_MASK)
        rc = pxsi_err(PXS_ERR_INVALID, SUBSYS, "test_add_claims: slot %u or count out of range", s);
    else
        l->slots[s].inflight = (uint32_t)((int64_t)l->slots[s].inflight + n);
    pthread_mutex_unlock(&l->mu);
    return rc;
}
#endif

const pxsi_store_conn_ops_t pxsi_store_local_ops = {
    .name = "local",
    .kind = PXS_CONN_LOCAL,
    PXSI_STORE_CONN_OPS(l),
    .put_check = l_put_check,
};
