/* Streams, the consumer: receive, filter, resolve on top of the event plane
 * and the store (the producer is in producer.c).
 *
 * Design notes
 * - Work sharing is the bus's (group subscriptions): the consumer does not
 *   know whether its subscription is plain or a group member.
 * - A consumer that drops an event in its filter gives up its claim on the
 *   object (pxs_store_drop: one unit of the resolve budget) so the owner
 *   reclaims it: otherwise a filtered stream fills the producer's arena and
 *   stalls it. Not pxs_store_evict: on the owner's rank that reclaims the
 *   object for every other holder too. */
#include <stdlib.h>
#include <string.h>

#include "pubsub/inline.h"
#include "stream/stream_internal.h"
#include "util/stats.h"
#include "util/util.h"

#define SUBSYS "stream"

/* pxs_consumer_next: events the filter may still drop after the deadline
 * before the call returns PXS_TIMEOUT (bounds the overrun to this many
 * filter calls + drops). */
#define PXSI_LATE_DROPS 32u

/* ------------------------------------------------------------- consumer */

int
pxs_consumer_create(pxs_store_t *store, pxs_subscriber_t *subscriber,
                    const pxs_consumer_opts_t *opts, pxs_consumer_t **cons_out)
{
    if (!subscriber || !cons_out)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "consumer_create: NULL %s",
                        !subscriber ? "subscriber" : "cons_out");
    pxs_consumer_opts_t o;
    int rc = pxs_consumer_opts_init(&o);
    if (rc < 0)
        return rc;
    if ((rc = pxsi_opts_take(&o, sizeof o, opts)) < 0)
        return rc;
    if (o.drop_policy != PXS_DROP_EVICT && o.drop_policy != PXS_DROP_IGNORE)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "consumer opts: drop_policy %d", o.drop_policy);
    if (!store && o.filter && o.drop_policy == PXS_DROP_EVICT)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS,
                        "consumer opts: a filter with drop_policy PXS_DROP_EVICT needs a "
                        "store (dropped events give their object back through it); pass "
                        "the store, or set drop_policy = PXS_DROP_IGNORE if someone else "
                        "evicts the dropped objects");
    pxs_consumer_t *c = calloc(1, sizeof *c);
    if (!c)
        return pxsi_err(PXS_ERR_NOMEM, SUBSYS, "consumer");
    c->store = store;
    c->sub = subscriber;
    c->opts = o;
    c->magic = PXSI_CONSUMER_MAGIC;
    *cons_out = c;
    return PXS_OK;
}

/* A dropped event: give up our claim (one unit of the resolve budget) so the
 * owner can reclaim the object once every holder resolved or dropped it.
 * pxs_store_drop, not pxs_store_evict: on the owner's rank, evict reclaims
 * the object for every holder, and the other subscribers' resolves of it
 * would fail with PXS_ERR_STALE. */
static void
cons_drop(pxs_consumer_t *c, const pxs_event_t *ev)
{
    c->dropped++;
    if (pxsi_inline_is(&ev->proxy)) {
        /* this process's copy of an inline payload: nobody else can give it
         * back (docs/DESIGN.md, "Inline chunks") */
        (void)pxsi_inline_drop(&ev->proxy);
        return;
    }
    if (c->opts.drop_policy != PXS_DROP_EVICT || !c->store)
        return;
    int rc = pxs_store_drop(c->store, &ev->proxy);
    /* STALE: already reclaimed (e.g. budget spent by others): nothing to give up. */
    if (rc < 0 && rc != PXS_ERR_STALE)
        PXSI_WARN(SUBSYS, "dropping a filtered event (topic %u, producer %d, seq %llu): %s",
                  ev->topic, (int)ev->producer, (unsigned long long)ev->seq, pxs_errname(rc));
}

int
pxs_consumer_next(pxs_consumer_t *cons, pxs_event_t *ev_out, double timeout)
{
    if (!PXSI_HANDLE_OK(cons, PXSI_CONSUMER_MAGIC))
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "consumer_next: bad consumer handle");
    if (!ev_out)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "consumer_next: ev_out NULL");
    pxs_event_t ev;
    if (cons->ended) {
        memset(&ev, 0, sizeof ev);
        ev.topic = PXS_TOPIC_ALL;
        ev.producer = -1;
        *ev_out = ev;
        return PXS_END;
    }
    /* the deadline of the one wait primitive; the waiting itself happens in
     * the subscriber's recv (docs/DESIGN.md, section "Back-off rules") */
    pxsi_backoff_t dl;
    pxsi_backoff_init(&dl, timeout);
    double left = timeout;
    unsigned late = 0; /* events dropped after the deadline */
    for (;;) {
        int rc = pxs_subscriber_recv(cons->sub, &ev, left);
        if (rc == PXS_OK) {
            if (cons->opts.filter && !cons->opts.filter(&ev, cons->opts.filter_arg)) {
                cons_drop(cons, &ev);
                /* The timeout bounds the call even while the filter keeps
                 * dropping a steady stream (measured before: next(0.1) took
                 * 3 s). Past the deadline a few more events are examined, so
                 * that a poll (timeout 0) still gets through a burst of
                 * unwanted events to a wanted one behind it. */
                if (pxsi_backoff_expired(&dl) && ++late > PXSI_LATE_DROPS)
                    return PXS_TIMEOUT;
            } else {
                cons->delivered++;
                *ev_out = ev;
                return PXS_OK;
            }
        } else if (rc == PXS_END) {
            if (ev.topic == PXS_TOPIC_ALL) {
                cons->ended = 1;
                *ev_out = ev;
                return PXS_END;
            }
            /* one topic ended; others still open: keep going */
            cons->topics_ended++;
        } else {
            return rc; /* PXS_TIMEOUT or a failure */
        }
        /* past the deadline: 0, one more poll drains what is already there */
        left = pxsi_backoff_left(&dl);
    }
}

int
pxs_consumer_resolve(pxs_consumer_t *cons, const pxs_event_t *ev, void *buf, size_t cap,
                     size_t *len_out)
{
    if (!PXSI_HANDLE_OK(cons, PXSI_CONSUMER_MAGIC))
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "consumer_resolve: bad consumer handle");
    if (!ev || !cons->store)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "consumer_resolve: %s",
                        !ev ? "event NULL" : "consumer has no store");
    size_t len = 0;
    int rc = pxs_store_resolve(cons->store, &ev->proxy, buf, cap, &len);
    if (rc == PXS_OK) {
        cons->resolved_bytes += len;
        cons->resolves++;
    }
    if (len_out && (rc == PXS_OK || rc == PXS_ERR_TRUNC))
        *len_out = len;
    return rc;
}

int
pxs_consumer_next_object(pxs_consumer_t *cons, pxs_event_t *ev_out, void **data_out,
                         size_t *len_out, double timeout)
{
    if (!PXSI_HANDLE_OK(cons, PXSI_CONSUMER_MAGIC))
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "consumer_next_object: bad consumer handle");
    if (!ev_out || !data_out || !len_out || !cons->store)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "consumer_next_object: %s",
                        !cons->store ? "consumer has no store" : "NULL output");
    int rc = pxs_consumer_next(cons, ev_out, timeout);
    if (rc != PXS_OK)
        return rc;
    void *buf = NULL;
    size_t len = 0;
    rc = pxs_store_resolve_alloc(cons->store, &ev_out->proxy, &buf, &len);
    if (rc < 0)
        return rc;
    cons->resolved_bytes += len;
    cons->resolves++;
    *data_out = buf;
    *len_out = len;
    return PXS_OK;
}

int
pxs_consumer_discard(pxs_consumer_t *cons, const pxs_event_t *ev)
{
    if (!PXSI_HANDLE_OK(cons, PXSI_CONSUMER_MAGIC))
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "consumer_discard: bad consumer handle");
    if (!ev || !cons->store)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "consumer_discard: %s",
                        !ev ? "event NULL" : "consumer has no store");
    return pxs_store_drop(cons->store, &ev->proxy);
}

int
pxs_consumer_stats(const pxs_consumer_t *cons, uint64_t *delivered_out, uint64_t *dropped_out,
                   uint64_t *resolved_bytes_out)
{
    if (!PXSI_HANDLE_OK(cons, PXSI_CONSUMER_MAGIC))
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "consumer_stats: bad consumer handle");
    if (delivered_out)
        *delivered_out = cons->delivered;
    if (dropped_out)
        *dropped_out = cons->dropped;
    if (resolved_bytes_out)
        *resolved_bytes_out = cons->resolved_bytes;
    return PXS_OK;
}

void
pxsi_consumer_poison(pxs_consumer_t *cons)
{
    cons->magic = PXSI_MAGIC_DEAD;
    cons->store = NULL;
    cons->sub = NULL;
}

void
pxsi_consumer_free(pxs_consumer_t *cons)
{
    free(cons);
}

int
pxs_consumer_stats_init_(pxs_consumer_stats_t *s, size_t size)
{
    return pxsi_stats_init(s, size, SUBSYS, "pxs_consumer_stats_init");
}

static void
cons_stats_full(const pxs_consumer_t *c, pxs_consumer_stats_t *f)
{
    memset(f, 0, sizeof *f);
    f->struct_size = sizeof *f;
    f->delivered = c->delivered;
    f->dropped = c->dropped;
    f->resolves = c->resolves;
    f->resolved_bytes = c->resolved_bytes;
    f->topics_ended = c->topics_ended;
    f->ended = c->ended;
}

int
pxs_consumer_stats2(const pxs_consumer_t *cons, pxs_consumer_stats_t *out)
{
    if (!PXSI_HANDLE_OK(cons, PXSI_CONSUMER_MAGIC))
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "consumer_stats2: bad consumer handle");
    int rc = pxsi_stats_check(out, SUBSYS, "pxs_consumer_stats2");
    if (rc != PXS_OK)
        return rc;
    pxs_consumer_stats_t f;
    cons_stats_full(cons, &f);
    pxsi_stats_copy(out, &f, sizeof f);
    return PXS_OK;
}

int
pxs_consumer_destroy(pxs_consumer_t *cons)
{
    if (!cons)
        return PXS_OK;
    if (!PXSI_HANDLE_OK(cons, PXSI_CONSUMER_MAGIC))
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "consumer_destroy: bad consumer handle");
    int mode = pxsi_stats_mode();
    if (mode != PXSI_STATS_OFF) {
        pxs_consumer_stats_t f;
        cons_stats_full(cons, &f);
        pxsi_statline_t l;
        pxsi_sl_begin(&l, mode, "consumer");
        pxsi_sl_u64(&l, "delivered", f.delivered);
        pxsi_sl_u64(&l, "dropped", f.dropped);
        pxsi_sl_u64(&l, "resolves", f.resolves);
        pxsi_sl_u64(&l, "resolved_bytes", f.resolved_bytes);
        pxsi_sl_u64(&l, "topics_ended", f.topics_ended);
        pxsi_sl_u64(&l, "ended", (uint64_t)f.ended);
        pxsi_sl_end(&l);
    }
    pxsi_consumer_poison(cons);
    pxsi_consumer_free(cons);
    return PXS_OK;
}
