/* Event plane front end: options, argument checks, dispatch through the
 * publisher/subscriber function tables. Backends trust what arrives here. */
#include <stddef.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include <mpi.h>

#include "pubsub/inline.h"
#include "pubsub/pubsub_int.h"
#include "util/options.h"
#include "util/stats.h"
#include "util/util.h"

#define SUBSYS "pubsub"

int
pxs_bus_opts_init_(pxs_bus_opts_t *opts, size_t size)
{
    return pxsi_opts_init_from_table(PXSI_OWN_BUS, opts, size, SUBSYS, "pxs_bus_opts_init");
}

int
pxsi_bus_opts_resolve(const pxs_bus_opts_t *opts, pxs_bus_opts_t *o)
{
    int rc = pxs_bus_opts_init(o);
    if (rc != PXS_OK)
        return rc;
    if ((rc = pxsi_opts_take(o, sizeof *o, opts)) != PXS_OK)
        return rc;
    if (o->slots == 0)
        o->slots = (uint32_t)pxsi_opt_uint(PXSI_OPT_MAILBOX_SLOTS);
    if (o->batch == 0)
        o->batch = (uint32_t)pxsi_opt_uint(PXSI_OPT_BATCH);
    if (o->slots == 0 || o->slots > PXSI_SLOTS_MAX)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "slots %u out of range 1..%u", o->slots,
                        PXSI_SLOTS_MAX);
    if (o->batch == 0 || o->batch > PXSI_BATCH_MAX)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "batch %u out of range 1..%u", o->batch,
                        PXSI_BATCH_MAX);
    if (o->send_timeout != o->send_timeout)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "send_timeout is NaN");
    return pxsi_decl_check(o);
}

uint32_t
pxsi_bus_prefetch(const pxs_bus_opts_t *o)
{
    uint32_t pf = 0;
    for (size_t i = 0; i < o->n_subscribe; i++) {
        const pxs_subscription_t *s = &o->subscribe[i];
        if (!s->group || !s->group[0])
            continue;
        uint32_t v = s->prefetch;
        if (v == 0)
            v = (uint32_t)pxsi_opt_uint(PXSI_OPT_PREFETCH);
        if (v > pf)
            pf = v;
    }
    return pf;
}

/* ---------------------------------------------------------------- thread guards */
/* See docs/DESIGN.md, section "Event plane: threads". side 0: publisher,
 * 1: subscriber. */
void
pxsi_bus_guard_init(pxs_bus_t *b, int level)
{
    b->sides_need_multiple = level < MPI_THREAD_MULTIPLE;
    b->main_only = 0;
    int is_main = 0;
    if (level < MPI_THREAD_SERIALIZED && MPI_Is_thread_main(&is_main) == MPI_SUCCESS &&
        is_main) {
        b->main_thread = pthread_self();
        b->main_only = 1;
    }
}

static int
side_busy(int side)
{
    const char *name = side ? "subscriber" : "publisher";
    return pxsi_err(PXS_ERR_BUSY, SUBSYS,
                    "the %s of this bus is in use by another thread (one thread at a time per "
                    "%s)",
                    name, name);
}

static int
sides_multiple(void)
{
    return pxsi_err(PXS_ERR_INVALID, SUBSYS,
                    "the publisher and the subscriber of one MPI bus are used from two threads "
                    "at once: that needs MPI_THREAD_MULTIPLE (MPI was initialised with a lower "
                    "thread level)");
}

/* Below MPI_THREAD_SERIALIZED only the main thread may call MPI, so no two
 * calls on the bus overlap: a load of the flags (set by the test hook
 * pxsi_bus_test_hold: BUSY/INVALID as with the exchange) and the thread
 * test replace the exchange; another thread is refused before it touches
 * anything (MPI_Is_thread_main may be called from any thread). */
static int
side_enter_other(pxs_bus_t *b, int side)
{
    if (atomic_load_explicit(side ? &b->sub_in : &b->pub_in, memory_order_relaxed))
        return side_busy(side);
    if (atomic_load_explicit(side ? &b->pub_in : &b->sub_in, memory_order_relaxed))
        return sides_multiple();
    int is_main = 1;
    if (MPI_Is_thread_main(&is_main) == MPI_SUCCESS && !is_main)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS,
                        "the %s of an MPI bus called from a thread other than the main one, but "
                        "MPI was initialised below MPI_THREAD_SERIALIZED (initialise it with "
                        "MPI_THREAD_SERIALIZED or higher to use a bus from other threads)",
                        side ? "subscriber" : "publisher");
    return PXS_OK;
}

static inline int
side_enter(pxs_bus_t *b, int side)
{
    if (b->main_only) {
        /* both flags clear (one load each) and the main thread */
        if (PXSI_LIKELY(!atomic_load_explicit(&b->pub_in, memory_order_relaxed) &&
                        !atomic_load_explicit(&b->sub_in, memory_order_relaxed) &&
                        pthread_equal(pthread_self(), b->main_thread)))
            return PXS_OK;
        return side_enter_other(b, side);
    }
    atomic_int *mine = side ? &b->sub_in : &b->pub_in;
    atomic_int *other = side ? &b->pub_in : &b->sub_in;
    if (atomic_exchange(mine, 1))
        return side_busy(side);
    if (b->sides_need_multiple && atomic_load(other)) {
        atomic_store(mine, 0);
        return sides_multiple();
    }
    return PXS_OK;
}

/* a release store (no locked instruction): what the side did happens
 * before the next thread's exchange in side_enter sees the side free.
 * Nothing to clear where side_enter took nothing (main_only). */
static inline int
side_leave(pxs_bus_t *b, int side, int rc)
{
    if (!b->main_only)
        atomic_store_explicit(side ? &b->sub_in : &b->pub_in, 0, memory_order_release);
    return rc;
}

static pxs_bus_t *
pub_bus(pxs_publisher_t *pub)
{
    return (pxs_bus_t *)(void *)((char *)pub - offsetof(struct pxs_bus, pub));
}

static pxs_bus_t *
sub_bus(pxs_subscriber_t *sub)
{
    return (pxs_bus_t *)(void *)((char *)sub - offsetof(struct pxs_bus, sub));
}

#ifdef PXS_TEST_HOOKS
int
pxsi_bus_test_hold(pxs_bus_t *bus, int side, int on)
{
    if (!PXSI_HANDLE_OK(bus, PXSI_MAGIC_BUS) || side < 0 || side > 1)
        return PXS_ERR_INVALID;
    atomic_store(side ? &bus->sub_in : &bus->pub_in, on ? 1 : 0);
    return PXS_OK;
}
#else
int
pxsi_bus_test_hold(pxs_bus_t *bus, int side, int on)
{
    (void)bus;
    (void)side;
    (void)on;
    return PXS_ERR_NOTSUP;
}
#endif

int
pxs_bus_destroy(pxs_bus_t *bus)
{
    if (!bus)
        return PXS_OK;
    if (!PXSI_HANDLE_OK(bus, PXSI_MAGIC_BUS))
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "pxs_bus_destroy: not a bus handle");
    return bus->destroy(bus);
}

int
pxs_bus_publisher(pxs_bus_t *bus, pxs_publisher_t **pub_out)
{
    if (!PXSI_HANDLE_OK(bus, PXSI_MAGIC_BUS) || !pub_out)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "pxs_bus_publisher: bad bus or NULL output");
    *pub_out = &bus->pub;
    return PXS_OK;
}

int
pxs_bus_subscriber(pxs_bus_t *bus, pxs_subscriber_t **sub_out)
{
    if (!PXSI_HANDLE_OK(bus, PXSI_MAGIC_BUS) || !sub_out)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "pxs_bus_subscriber: bad bus or NULL output");
    *sub_out = &bus->sub;
    return PXS_OK;
}

int
pxs_bus_rank(const pxs_bus_t *bus)
{
    if (!PXSI_HANDLE_OK(bus, PXSI_MAGIC_BUS))
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "pxs_bus_rank: bad bus");
    return bus->rank;
}

int
pxs_publisher_send(pxs_publisher_t *pub, uint32_t topic, const pxs_proxy_t *proxy,
                   const void *meta, size_t meta_len, uint64_t *seq_out)
{
    if (!PXSI_HANDLE_OK(pub, PXSI_MAGIC_PUB))
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "pxs_publisher_send: bad publisher handle");
    if (!proxy)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "pxs_publisher_send: proxy is NULL");
    if (topic == PXS_TOPIC_ALL)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "PXS_TOPIC_ALL is not a topic");
    if (meta_len > PXS_EVENT_META_MAX)
        return pxsi_err(PXS_ERR_TOO_BIG, SUBSYS, "metadata %zu bytes, capacity %d", meta_len,
                        PXS_EVENT_META_MAX);
    if (meta_len && !meta)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "meta NULL with meta_len %zu", meta_len);
    int rc = pxs_proxy_validate(proxy);
    if (rc != PXS_OK) {
        char why[256];
        snprintf(why, sizeof why, "%s", pxs_last_error_detail());
        return pxsi_err(PXS_ERR_CORRUPT, SUBSYS,
                        "pxs_publisher_send: the proxy does not validate (%s); only proxies "
                        "made by a store (or pxs_proxy_encode) can be sent",
                        why);
    }
    if (proxy->bytes[1] == PXS_CONN_INLINE) { /* pxsi_inline_is: the version is checked */
        /* a received inline event forwarded: its payload travels again, in
         * the new event (docs/DESIGN.md, "Inline chunks"); the forward
         * consumes this process's copy */
        unsigned char *buf = malloc(PXSI_INLINE_HARD_MAX);
        size_t len = 0;
        if (!buf)
            return pxsi_err(PXS_ERR_NOMEM, SUBSYS, "forward of an inline event");
        rc = pxsi_inline_copy(proxy, buf, PXSI_INLINE_HARD_MAX, &len);
        if (rc == PXS_OK)
            rc = pxsi_publisher_send_inline(pub, topic, buf, len, meta, meta_len, seq_out);
        free(buf);
        if (rc == PXS_OK)
            (void)pxsi_inline_drop(proxy);
        return rc == PXS_OK ? rc : pxsi_err_prefix(rc, SUBSYS, "forward of an inline event");
    }
    pxs_bus_t *b = pub_bus(pub);
    if ((rc = side_enter(b, 0)) != PXS_OK)
        return rc;
    return side_leave(b, 0, pub->ops->send(pub->state, topic, proxy, meta, meta_len, seq_out));
}

int
pxsi_publisher_send_trusted(pxs_publisher_t *pub, uint32_t topic, const pxs_proxy_t *proxy,
                            const void *meta, size_t meta_len, uint64_t *seq_out)
{
    if (!PXSI_HANDLE_OK(pub, PXSI_MAGIC_PUB))
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "send: bad publisher handle");
    if (topic == PXS_TOPIC_ALL)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "PXS_TOPIC_ALL is not a topic");
    PXS_ASSERT(proxy && !pxsi_inline_is(proxy) && meta_len <= PXS_EVENT_META_MAX &&
               (meta || !meta_len));
    pxs_bus_t *b = pub_bus(pub);
    int rc = side_enter(b, 0);
    if (rc != PXS_OK)
        return rc;
    return side_leave(b, 0, pub->ops->send(pub->state, topic, proxy, meta, meta_len, seq_out));
}

int
pxsi_publisher_send_inline(pxs_publisher_t *pub, uint32_t topic, const void *data, size_t len,
                           const void *meta, size_t meta_len, uint64_t *seq_out)
{
    if (!PXSI_HANDLE_OK(pub, PXSI_MAGIC_PUB))
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "send_inline: bad publisher handle");
    if (topic == PXS_TOPIC_ALL)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "PXS_TOPIC_ALL is not a topic");
    if (meta_len > PXS_EVENT_META_MAX)
        return pxsi_err(PXS_ERR_TOO_BIG, SUBSYS, "metadata %zu bytes, capacity %d", meta_len,
                        PXS_EVENT_META_MAX);
    if ((meta_len && !meta) || (len && !data))
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "send_inline: NULL data or metadata");
    if (len > PXSI_INLINE_HARD_MAX)
        return pxsi_err(PXS_ERR_TOO_BIG, SUBSYS, "inline payload of %zu B (at most %u)", len,
                        PXSI_INLINE_HARD_MAX);
    if (!pub->ops->send_inline)
        return pxsi_err(PXS_ERR_NOTSUP, SUBSYS, "inline events not supported by this publisher");
    pxs_bus_t *b = pub_bus(pub);
    int rc = side_enter(b, 0);
    if (rc != PXS_OK)
        return rc;
    return side_leave(b, 0, pub->ops->send_inline(pub->state, topic, data, (uint32_t)len, meta,
                                                  meta_len, seq_out));
}

int
pxs_publisher_flush(pxs_publisher_t *pub)
{
    if (!PXSI_HANDLE_OK(pub, PXSI_MAGIC_PUB))
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "pxs_publisher_flush: bad publisher handle");
    if (!pub->ops->flush)
        return pxsi_err(PXS_ERR_NOTSUP, SUBSYS, "flush not supported by this transport");
    pxs_bus_t *b = pub_bus(pub);
    int rc = side_enter(b, 0);
    return rc != PXS_OK ? rc : side_leave(b, 0, pub->ops->flush(pub->state));
}

int
pxs_publisher_close_topic(pxs_publisher_t *pub, uint32_t topic)
{
    if (!PXSI_HANDLE_OK(pub, PXSI_MAGIC_PUB))
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "pxs_publisher_close_topic: bad handle");
    if (topic == PXS_TOPIC_ALL)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "PXS_TOPIC_ALL is not a topic");
    if (!pub->ops->close_topic)
        return pxsi_err(PXS_ERR_NOTSUP, SUBSYS, "close_topic not supported by this transport");
    pxs_bus_t *b = pub_bus(pub);
    int rc = side_enter(b, 0);
    return rc != PXS_OK ? rc : side_leave(b, 0, pub->ops->close_topic(pub->state, topic));
}

int
pxs_subscriber_recv(pxs_subscriber_t *sub, pxs_event_t *ev_out, double timeout)
{
    if (!PXSI_HANDLE_OK(sub, PXSI_MAGIC_SUB) || !ev_out)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "pxs_subscriber_recv: bad handle or NULL ev_out");
    if (timeout != timeout)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "pxs_subscriber_recv: timeout is NaN");
    if (sub->standalone)
        return sub->ops->recv(sub->state, ev_out, timeout);
    pxs_bus_t *b = sub_bus(sub);
    int rc = side_enter(b, 1);
    return rc != PXS_OK ? rc : side_leave(b, 1, sub->ops->recv(sub->state, ev_out, timeout));
}

/* ---------------------------------------------------------------- stats */
int
pxs_bus_stats_init_(pxs_bus_stats_t *s, size_t size)
{
    return pxsi_stats_init(s, size, SUBSYS, "pxs_bus_stats_init");
}

int
pxs_bus_stats(pxs_bus_t *bus, pxs_bus_stats_t *out)
{
    if (!PXSI_HANDLE_OK(bus, PXSI_MAGIC_BUS))
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "pxs_bus_stats: not a bus handle");
    int rc = pxsi_stats_check(out, SUBSYS, "pxs_bus_stats");
    if (rc != PXS_OK)
        return rc;
    pxs_bus_stats_t full;
    memset(&full, 0, sizeof full);
    full.struct_size = sizeof full;
    full.rank = bus->rank;
    bus->stats(bus, &full);
    pxsi_stats_copy(out, &full, sizeof full);
    return PXS_OK;
}

void
pxsi_bus_stats_print(const pxs_bus_stats_t *s, int mode)
{
    pxsi_statline_t l;
    pxsi_sl_begin(&l, mode, "bus");
    pxsi_sl_i64(&l, "bus_rank", s->rank);
    pxsi_sl_u64(&l, "sent", s->events_sent);
    pxsi_sl_u64(&l, "recv", s->events_received);
    pxsi_sl_u64(&l, "records", s->records_appended);
    pxsi_sl_u64(&l, "appends", s->appends);
    pxsi_sl_u64(&l, "ends_sent", s->ends_sent);
    pxsi_sl_u64(&l, "ends_recv", s->ends_received);
    pxsi_sl_u64(&l, "topics_pub", s->topics_published);
    pxsi_sl_u64(&l, "topics_closed", s->topics_closed);
    pxsi_sl_u64(&l, "topics_sub", s->topics_subscribed);
    pxsi_sl_u64(&l, "topics_ended", s->topics_ended);
    pxsi_sl_u64(&l, "slots", s->mailbox_slots);
    pxsi_sl_u64(&l, "depth", s->depth_now);
    pxsi_sl_u64(&l, "depth_hwm", s->depth_hwm);
    pxsi_sl_u64(&l, "bp_waits", s->backpressure_waits);
    pxsi_sl_dbl(&l, "bp_seconds", s->backpressure_seconds);
    pxsi_sl_u64(&l, "broken", (uint64_t)s->broken);
    pxsi_sl_u64(&l, "atomics", s->rma_atomics);
    pxsi_sl_u64(&l, "flushes", s->rma_flushes);
    pxsi_sl_u64(&l, "rma_bytes", s->rma_bytes);
    pxsi_sl_u64(&l, "group_picks", s->group_picks);
    pxsi_sl_u64(&l, "group_probes", s->group_probes);
    pxsi_sl_u64(&l, "sub_atomics", s->sub_rma_atomics);
    pxsi_sl_u64(&l, "routing_bytes", s->routing_bytes);
    for (uint32_t g = 0; g < s->n_groups; g++) {
        char key[48];
        size_t n = s->group_members[g] < PXS_STATS_MEMBERS_MAX ? s->group_members[g]
                                                                : PXS_STATS_MEMBERS_MAX;
        snprintf(key, sizeof key, "group%u_topic", g);
        pxsi_sl_u64(&l, key, s->group_topic[g]);
        snprintf(key, sizeof key, "group%u_ranks", g);
        pxsi_sl_i32s(&l, key, s->group_rank[g], n);
        snprintf(key, sizeof key, "group%u_sent", g);
        pxsi_sl_u64s(&l, key, s->group_sent[g], n);
    }
    pxsi_sl_end(&l);
}

void
pxsi_bus_stats_at_destroy(pxs_bus_t *bus)
{
    int mode = pxsi_stats_mode();
    if (mode == PXSI_STATS_OFF)
        return;
    pxs_bus_stats_t s;
    memset(&s, 0, sizeof s);
    s.struct_size = sizeof s;
    s.rank = bus->rank;
    bus->stats(bus, &s);
    pxsi_bus_stats_print(&s, mode);
}
