/* In-process transport (pxs_inproc_bus_create): threads of one process share
 * a hub; each participant owns a bounded queue of records guarded by the hub
 * mutex. Credits are reservations in the target's queue, so the core's
 * backpressure, batching, groups and END logic are the same as over MPI. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pubsub/pubsub_int.h"
#include "util/util.h"

#define SUBSYS "inproc"

struct ip_queue {
    unsigned char *recs;
    uint32_t cap, head, count, reserved;
    uint32_t gcred; /* group (prefetch) credits free */
    pthread_cond_t cond; /* signalled when records arrive */
};

struct ip_part {
    int joined; /* index taken (ever) */
    int live;   /* bus not yet destroyed */
    unsigned char *decl;
    struct ip_queue q;
};

struct pxs_inproc_hub {
    uint32_t magic;
    int n;
    int n_joined;
    int n_live;
    pthread_mutex_t mu;
    pthread_cond_t joined_cond;
    struct ip_part *parts;
};

struct ip_bus {
    pxs_inproc_hub_t *hub;
    int index;
    /* routing built (every participant joined). Built lazily by the first
     * call of either side, which may run in two threads: see ip_ready */
    atomic_int ready;
    pthread_mutex_t init_mu;
    pxs_bus_opts_t o;
    struct pxsi_core core;
    struct pxs_bus bus;
};

static int
cond_init(pthread_cond_t *c)
{
    pthread_condattr_t a;
    if (pthread_condattr_init(&a) != 0)
        return -1;
    (void)pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(c, &a);
    (void)pthread_condattr_destroy(&a);
    return rc;
}

/* ---------------------------------------------------------------- hub */
int
pxs_inproc_hub_create(int participants, pxs_inproc_hub_t **hub_out)
{
    if (participants < 1 || participants > (1 << 20) || !hub_out)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "pxs_inproc_hub_create: %d participants",
                        participants);
    pxs_inproc_hub_t *h = calloc(1, sizeof *h);
    if (!h)
        return pxsi_err(PXS_ERR_NOMEM, SUBSYS, "hub");
    h->parts = calloc((size_t)participants, sizeof *h->parts);
    if (!h->parts) {
        free(h);
        return pxsi_err(PXS_ERR_NOMEM, SUBSYS, "hub");
    }
    h->n = participants;
    if (pthread_mutex_init(&h->mu, NULL) != 0 || cond_init(&h->joined_cond) != 0) {
        free(h->parts);
        free(h);
        return pxsi_err(PXS_ERR_NOMEM, SUBSYS, "hub mutex");
    }
    h->magic = PXSI_MAGIC_HUB;
    *hub_out = h;
    return PXS_OK;
}

int
pxs_inproc_hub_destroy(pxs_inproc_hub_t *hub)
{
    if (!hub)
        return PXS_OK;
    if (!PXSI_HANDLE_OK(hub, PXSI_MAGIC_HUB))
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "pxs_inproc_hub_destroy: not a hub");
    pthread_mutex_lock(&hub->mu);
    int live = hub->n_live;
    pthread_mutex_unlock(&hub->mu);
    if (live)
        return pxsi_err(PXS_ERR_BUSY, SUBSYS, "hub still has %d buses", live);
    for (int i = 0; i < hub->n; i++) {
        struct ip_part *p = &hub->parts[i];
        if (p->joined) {
            free(p->decl);
            free(p->q.recs);
            pthread_cond_destroy(&p->q.cond);
        }
    }
    pthread_cond_destroy(&hub->joined_cond);
    pthread_mutex_destroy(&hub->mu);
    free(hub->parts);
    hub->magic = PXSI_MAGIC_DEAD;
    free(hub);
    return PXS_OK;
}

/* ---------------------------------------------------------------- transport */
static int
ip_take_credits(void *x, int target, uint32_t want, int group, uint32_t *got_out,
                uint32_t *left_out)
{
    struct ip_bus *b = x;
    pxs_inproc_hub_t *h = b->hub;
    struct ip_queue *q = &h->parts[target].q;
    pthread_mutex_lock(&h->mu);
    uint32_t free_ = q->cap - q->count - q->reserved;
    if (group && q->gcred < free_)
        free_ = q->gcred;
    uint32_t got = want < free_ ? want : free_;
    q->reserved += got;
    if (group)
        q->gcred -= got;
    pthread_mutex_unlock(&h->mu);
    *got_out = got;
    *left_out = free_ - got;
    return PXS_OK;
}

static int
ip_append(void *x, int target, unsigned char *recs, uint32_t n)
{
    struct ip_bus *b = x;
    pxs_inproc_hub_t *h = b->hub;
    struct ip_queue *q = &h->parts[target].q;
    pthread_mutex_lock(&h->mu);
    for (uint32_t i = 0; i < n; i++) {
        uint32_t at = (q->head + q->count) % q->cap;
        memcpy(q->recs + (size_t)at * PXSI_REC_SIZE, recs + (size_t)i * PXSI_REC_SIZE,
               PXSI_REC_SIZE);
        q->count++;
    }
    q->reserved -= n;
    pthread_cond_signal(&q->cond);
    pthread_mutex_unlock(&h->mu);
    return PXS_OK;
}

static int
ip_give_group(void *x, uint32_t n)
{
    struct ip_bus *b = x;
    pxs_inproc_hub_t *h = b->hub;
    pthread_mutex_lock(&h->mu);
    h->parts[b->index].q.gcred += n;
    pthread_mutex_unlock(&h->mu);
    return PXS_OK;
}

static void
ip_progress(void *x)
{
    (void)x;
}

static uint32_t
ip_capacity(void *x, int target)
{
    struct ip_bus *b = x;
    return b->hub->parts[target].q.cap;
}

static int
ip_inbox_next(void *x, unsigned char *rec_out, double timeout)
{
    struct ip_bus *b = x;
    pxs_inproc_hub_t *h = b->hub;
    struct ip_queue *q = &h->parts[b->index].q;
    /* a condition-variable wait (blocks; no spin), with the deadline of the
     * one wait primitive (docs/DESIGN.md, section "Back-off rules") */
    pxsi_backoff_t dl;
    pxsi_backoff_init(&dl, timeout);
    struct timespec ts;
    if (timeout > 0)
        pxsi_backoff_abstime(&dl, &ts);
    pthread_mutex_lock(&h->mu);
    while (q->count == 0) {
        if (timeout == 0) {
            pthread_mutex_unlock(&h->mu);
            return PXS_TIMEOUT;
        }
        int rc = timeout < 0 ? pthread_cond_wait(&q->cond, &h->mu)
                             : pthread_cond_timedwait(&q->cond, &h->mu, &ts);
        if (rc == ETIMEDOUT && q->count == 0) {
            pthread_mutex_unlock(&h->mu);
            return PXS_TIMEOUT;
        }
    }
    memcpy(rec_out, q->recs + (size_t)q->head * PXSI_REC_SIZE, PXSI_REC_SIZE);
    if (q->count > b->core.st.depth_hwm)
        b->core.st.depth_hwm = q->count;
    q->head = (q->head + 1) % q->cap;
    q->count--;
    pthread_mutex_unlock(&h->mu);
    return PXS_OK;
}

static uint32_t
ip_depth(void *x)
{
    struct ip_bus *b = x;
    pthread_mutex_lock(&b->hub->mu);
    uint32_t d = b->hub->parts[b->index].q.count;
    pthread_mutex_unlock(&b->hub->mu);
    return d;
}

static const pxsi_xport_ops_t ip_xops = {
    .take_credits = ip_take_credits,
    .give_group = ip_give_group,
    .poison = NULL,
    .append = ip_append,
    .progress = ip_progress,
    .inbox_next = ip_inbox_next,
    .capacity = ip_capacity,
    .depth = ip_depth,
};

/* ---------------------------------------------------------------- readiness */
/* The routing table needs every participant's declarations: wait for them. */
static int
ip_ready(struct ip_bus *b, double timeout)
{
    /* either side may get here first, in two threads at once: the acquire
     * load pairs with the release store after the core is built, and the
     * build itself runs under init_mu */
    if (atomic_load_explicit(&b->ready, memory_order_acquire))
        return PXS_OK;
    pxs_inproc_hub_t *h = b->hub;
    /* a condition-variable wait (blocks; no spin), with the deadline of the
     * one wait primitive (docs/DESIGN.md, section "Back-off rules") */
    pxsi_backoff_t dl;
    pxsi_backoff_init(&dl, timeout);
    struct timespec ts;
    if (timeout > 0)
        pxsi_backoff_abstime(&dl, &ts);
    pthread_mutex_lock(&h->mu);
    while (h->n_joined < h->n) {
        int rc = 0;
        if (timeout == 0)
            rc = ETIMEDOUT;
        else if (timeout < 0)
            rc = pthread_cond_wait(&h->joined_cond, &h->mu);
        else
            rc = pthread_cond_timedwait(&h->joined_cond, &h->mu, &ts);
        if (rc == ETIMEDOUT && h->n_joined < h->n) {
            pthread_mutex_unlock(&h->mu);
            return PXS_TIMEOUT;
        }
    }
    unsigned char **decls = malloc((size_t)h->n * sizeof *decls);
    for (int i = 0; decls && i < h->n; i++)
        decls[i] = h->parts[i].decl; /* immutable once joined */
    pthread_mutex_unlock(&h->mu);
    if (!decls)
        return pxsi_err(PXS_ERR_NOMEM, SUBSYS, "routing");
    int rc = PXS_OK;
    pthread_mutex_lock(&b->init_mu);
    if (!atomic_load_explicit(&b->ready, memory_order_relaxed)) {
        rc = pxsi_core_init(&b->core, b->index, h->n, decls, &b->o, &ip_xops, b);
        if (rc == PXS_OK)
            atomic_store_explicit(&b->ready, 1, memory_order_release);
    }
    pthread_mutex_unlock(&b->init_mu);
    free(decls);
    return rc;
}

static int
ip_send(void *state, uint32_t topic, const pxs_proxy_t *proxy, const void *meta,
        size_t meta_len, uint64_t *seq_out)
{
    struct ip_bus *b = state;
    int rc = ip_ready(b, b->o.send_timeout);
    if (rc == PXS_TIMEOUT)
        return pxsi_err(PXS_ERR_TIMEDOUT, SUBSYS,
                        "gave up after send_timeout: not every participant joined the hub");
    if (rc != PXS_OK)
        return rc;
    return pxsi_core_pub_ops.send(&b->core, topic, proxy, meta, meta_len, seq_out);
}

static int
ip_flush(void *state)
{
    struct ip_bus *b = state;
    if (!atomic_load_explicit(&b->ready, memory_order_acquire))
        return PXS_OK; /* nothing can be queued before routing exists */
    return pxsi_core_pub_ops.flush(&b->core);
}

static int
ip_close_topic(void *state, uint32_t topic)
{
    struct ip_bus *b = state;
    int rc = ip_ready(b, b->o.send_timeout);
    if (rc == PXS_TIMEOUT)
        return pxsi_err(PXS_ERR_TIMEDOUT, SUBSYS,
                        "gave up after send_timeout: not every participant joined the hub");
    if (rc != PXS_OK)
        return rc;
    return pxsi_core_pub_ops.close_topic(&b->core, topic);
}

static int
ip_send_inline(void *state, uint32_t topic, const void *data, uint32_t len, const void *meta,
               size_t meta_len, uint64_t *seq_out)
{
    struct ip_bus *b = state;
    int rc = ip_ready(b, b->o.send_timeout);
    if (rc == PXS_TIMEOUT)
        return pxsi_err(PXS_ERR_TIMEDOUT, SUBSYS,
                        "gave up after send_timeout: not every participant joined the hub");
    if (rc != PXS_OK)
        return rc;
    return pxsi_core_pub_ops.send_inline(&b->core, topic, data, len, meta, meta_len, seq_out);
}

static int
ip_recv(void *state, pxs_event_t *ev_out, double timeout)
{
    struct ip_bus *b = state;
    pxsi_backoff_t dl;
    pxsi_backoff_init(&dl, timeout);
    int rc = ip_ready(b, timeout);
    if (rc != PXS_OK)
        return rc;
    if (timeout > 0)
        timeout = pxsi_backoff_left(&dl);
    return pxsi_core_sub_ops.recv(&b->core, ev_out, timeout);
}

static const pxsi_pub_ops_t ip_pub_ops = {
    .send = ip_send,
    .flush = ip_flush,
    .close_topic = ip_close_topic,
    .send_inline = ip_send_inline,
};
static const pxsi_sub_ops_t ip_sub_ops = {
    .recv = ip_recv,
};

/* Counters: the core's once routing exists (before, nothing moved). */
static void
ip_stats(pxs_bus_t *bus, pxs_bus_stats_t *out)
{
    struct ip_bus *b = bus->backend;
    if (atomic_load_explicit(&b->ready, memory_order_acquire))
        pxsi_core_stats(&b->core, out);
    out->mailbox_slots = b->o.n_subscribe ? b->hub->parts[b->index].q.cap : 0;
    out->depth_now = ip_depth(b);
}

static int
ip_destroy(pxs_bus_t *bus)
{
    struct ip_bus *b = bus->backend;
    pxs_inproc_hub_t *h = b->hub;
    if (atomic_load_explicit(&b->ready, memory_order_acquire)) {
        pxsi_core_drain_nowait(&b->core);
        pxsi_bus_stats_at_destroy(bus);
        pxsi_core_giveback(&b->core); /* what stays queued is discarded */
    }
    pxsi_core_fini(&b->core);
    pthread_mutex_destroy(&b->init_mu);
    pthread_mutex_lock(&h->mu);
    h->parts[b->index].live = 0;
    h->n_live--;
    pthread_mutex_unlock(&h->mu);
    b->bus.magic = PXSI_MAGIC_DEAD;
    b->bus.pub.magic = PXSI_MAGIC_DEAD;
    b->bus.sub.magic = PXSI_MAGIC_DEAD;
    free(b);
    return PXS_OK;
}

int
pxs_inproc_bus_create(pxs_inproc_hub_t *hub, int index, const pxs_bus_opts_t *opts,
                      pxs_bus_t **bus_out)
{
    if (!PXSI_HANDLE_OK(hub, PXSI_MAGIC_HUB) || !bus_out)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "pxs_inproc_bus_create: bad hub or NULL output");
    if (index < 0 || index >= hub->n)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "participant index %d not in 0..%d", index,
                        hub->n - 1);
    struct ip_bus *b = calloc(1, sizeof *b);
    if (!b)
        return pxsi_err(PXS_ERR_NOMEM, SUBSYS, "bus");
    int rc = pxsi_bus_opts_resolve(opts, &b->o);
    if (rc == PXS_OK && pthread_mutex_init(&b->init_mu, NULL) != 0)
        rc = pxsi_err(PXS_ERR_NOMEM, SUBSYS, "bus mutex");
    if (rc != PXS_OK) {
        free(b);
        return rc;
    }
    atomic_init(&b->ready, 0);
    uint32_t prefetch = b->o.n_subscribe ? pxsi_bus_prefetch(&b->o) : 0;
    /* the core reads this rank's topics from the declaration blob later
     * (first use), so the caller's arrays need not outlive this call */
    unsigned char *decl = NULL;
    size_t dlen = 0;
    uint32_t cap = b->o.n_subscribe ? b->o.slots : 1;
    unsigned char *ring = malloc((size_t)cap * PXSI_REC_SIZE);
    if (!ring || (rc = pxsi_decl_pack(&b->o, b->o.slots, &decl, &dlen)) != PXS_OK) {
        free(ring);
        pthread_mutex_destroy(&b->init_mu);
        free(b);
        return rc != PXS_OK ? rc : pxsi_err(PXS_ERR_NOMEM, SUBSYS, "bus");
    }
    b->o.publish = NULL;
    b->o.subscribe = NULL;

    pthread_mutex_lock(&hub->mu);
    struct ip_part *p = &hub->parts[index];
    if (p->joined) {
        pthread_mutex_unlock(&hub->mu);
        free(ring);
        free(decl);
        pthread_mutex_destroy(&b->init_mu);
        free(b);
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "participant %d already joined", index);
    }
    if (cond_init(&p->q.cond) != 0) {
        pthread_mutex_unlock(&hub->mu);
        free(ring);
        free(decl);
        pthread_mutex_destroy(&b->init_mu);
        free(b);
        return pxsi_err(PXS_ERR_NOMEM, SUBSYS, "queue condition variable");
    }
    p->joined = 1;
    p->live = 1;
    p->decl = decl;
    p->q.recs = ring;
    p->q.cap = cap;
    p->q.gcred = prefetch;
    hub->n_joined++;
    hub->n_live++;
    pthread_cond_broadcast(&hub->joined_cond);
    pthread_mutex_unlock(&hub->mu);

    b->hub = hub;
    b->index = index;
    b->bus.magic = PXSI_MAGIC_BUS;
    b->bus.rank = index;
    atomic_init(&b->bus.pub_in, 0);
    atomic_init(&b->bus.sub_in, 0);
    b->bus.sides_need_multiple = 0; /* the hub mutex serialises the queues */
    b->bus.destroy = ip_destroy;
    b->bus.stats = ip_stats;
    b->bus.backend = b;
    b->bus.pub = (struct pxs_publisher){PXSI_MAGIC_PUB, &ip_pub_ops, b};
    b->bus.sub = (struct pxs_subscriber){PXSI_MAGIC_SUB, &ip_sub_ops, b, 0};
    *bus_out = &b->bus;
    return PXS_OK;
}

/* ---------------------------------------------------------------- stream accessors */
int
pxsi_inproc_pub_core(pxs_publisher_t *pub, struct pxsi_core **core_out)
{
    if (pub->ops != &ip_pub_ops)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "not a publisher handle");
    struct ip_bus *b = pub->state;
    int rc = ip_ready(b, b->o.send_timeout);
    if (rc == PXS_TIMEOUT)
        return pxsi_err(PXS_ERR_TIMEDOUT, SUBSYS,
                        "gave up after send_timeout: not every participant joined the hub");
    if (rc != PXS_OK)
        return rc;
    *core_out = &b->core;
    return PXS_OK;
}
