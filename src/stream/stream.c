/* Streams: producer (store put + publish) and consumer (receive, filter,
 * resolve) on top of the store and the event plane.
 *
 * Design notes
 * - Batching is the bus's: the publisher coalesces events per destination
 *   (pxs_bus_opts_t.batch) and appends a batch with one credit and one ticket
 *   operation. The producer only decides *when* to force delivery: after
 *   `batch` sends, when the oldest unflushed send is older than `max_delay`,
 *   on pxs_producer_flush and on close. Coalescing a second time here would
 *   add a copy and a queue without saving any remote operation.
 * - Work sharing is the bus's too (group subscriptions): the consumer does not
 *   know whether its subscription is plain or a group member.
 * - The store put happens before the publish (the event must carry the
 *   proxy). Checks that can fail the publish are made first (metadata size,
 *   owned topic, closed topic) so a bad send stores nothing; if the publish
 *   still fails, the object is evicted again by its owner.
 * - A consumer that drops an event in its filter gives up its claim on the
 *   object (pxs_store_drop: one unit of the resolve budget) so the owner
 *   reclaims it: otherwise a filtered stream fills the producer's arena and
 *   stalls it. Not pxs_store_evict: on the owner's rank that reclaims the
 *   object for every other holder too.
 * - A send is accepted once the publisher queued its event: a later delivery
 *   failure (mailbox full past send_timeout) is not the send's failure, it is
 *   retried by the next send, flush or close (else retrying callers would
 *   publish twice). PXS_ERR_AGAIN from a send means "not accepted, nothing
 *   stored". A close that fails leaves the topic CLOSING: no more sends, and
 *   close/flush/destroy retry until END is delivered. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pubsub/pubsub_stream.h"
#include "stream/slog.h"
#include "stream/stream_internal.h"
#include "util/util.h"

#define SUBSYS "stream"

/* pxs_consumer_next: events the filter may still drop after the deadline
 * before the call returns PXS_TIMEOUT (bounds the overrun to this many
 * filter calls + drops). */
#define PXSI_LATE_DROPS 32u

/* ------------------------------------------------------------- options */

int
pxs_producer_opts_init_(pxs_producer_opts_t *opts, size_t size)
{
    if (!opts || size < sizeof(size_t))
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "producer opts: NULL or size 0");
    pxs_producer_opts_t d;
    memset(&d, 0, sizeof d);
    d.batch = 0;
    d.max_delay = 0.0;
    d.resolves = 0; /* the topic's fan-out */
    d.checksum = 0;
    d.put_timeout = -2.0;
    d.close_on_destroy = 1;
    pxsi_opts_fill(opts, size, &d, sizeof d);
    return PXS_OK;
}

int
pxs_send_opts_init_(pxs_send_opts_t *opts, size_t size)
{
    if (!opts || size < sizeof(size_t))
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "send opts: NULL or size 0");
    pxs_send_opts_t d;
    memset(&d, 0, sizeof d);
    d.checksum = -1;
    pxsi_opts_fill(opts, size, &d, sizeof d);
    return PXS_OK;
}

int
pxs_consumer_opts_init_(pxs_consumer_opts_t *opts, size_t size)
{
    if (!opts || size < sizeof(size_t))
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "consumer opts: NULL or size 0");
    pxs_consumer_opts_t d;
    memset(&d, 0, sizeof d);
    d.drop_policy = PXS_DROP_EVICT;
    pxsi_opts_fill(opts, size, &d, sizeof d);
    return PXS_OK;
}

/* ------------------------------------------------------------- producer */

static pxsi_ptopic_t *
prod_find(pxs_producer_t *p, uint32_t topic)
{
    for (size_t i = 0; i < p->n_topics; i++)
        if (p->topics[i].topic == topic)
            return &p->topics[i];
    return NULL;
}

/* Find the topic's state. A topic not in the table yet (only without a topic
 * list) gets the scratch entry, and the table makes room for it now, so that
 * prod_commit() cannot fail after the publisher accepted the topic. The
 * table grows only through prod_commit(): a topic the publisher rejects
 * (NOT_FOUND: undeclared) is never added, however many are tried, and
 * allocation happens on the first use of a topic, never per event. */
static int
prod_topic(pxs_producer_t *p, uint32_t topic, pxsi_ptopic_t **out)
{
    if (topic == PXS_TOPIC_ALL)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "topic 0x%x is reserved", topic);
    pxsi_ptopic_t *t = prod_find(p, topic);
    if (!t) {
        if (p->fixed_topics)
            return pxsi_err(PXS_ERR_NOT_FOUND, SUBSYS,
                            "topic %u is not one of this producer's topics", topic);
        if (p->n_topics == p->cap_topics) {
            size_t cap = p->cap_topics ? 2 * p->cap_topics : 8;
            pxsi_ptopic_t *nt = realloc(p->topics, cap * sizeof *nt);
            if (!nt)
                return pxsi_err(PXS_ERR_NOMEM, SUBSYS, "producer topic table");
            p->topics = nt;
            p->cap_topics = cap;
        }
        t = &p->scratch;
        memset(t, 0, sizeof *t);
        t->topic = topic;
    }
    *out = t;
    return PXS_OK;
}

/* Producers per publisher (process-wide; publishers of different buses may
 * be used from different threads). With no topic list a producer owns every
 * topic its publisher declared; several producers may share a publisher
 * (e.g. one per thread phase, or a forwarder next to a sender), so the ENDs
 * of the declared topics nobody closed are sent by the *last* producer of
 * the publisher to be destroyed, if any of its producers had no topic list
 * and close_on_destroy. Each producer still closes the topics it listed or
 * used when it is destroyed.
 * See docs/DESIGN.md, section "END for every declared topic". */
struct pxsi_pubref {
    pxs_publisher_t *pub;
    int live;  /* producers on pub not yet destroyed */
    int sweep; /* one of them owned every declared topic */
    struct pxsi_pubref *next;
};
static pthread_mutex_t pubref_mu = PTHREAD_MUTEX_INITIALIZER;
static struct pxsi_pubref *pubrefs;

static struct pxsi_pubref *
pubref_get(pxs_publisher_t *pub, int sweep)
{
    pthread_mutex_lock(&pubref_mu);
    struct pxsi_pubref *r = pubrefs;
    while (r && r->pub != pub)
        r = r->next;
    if (!r && (r = calloc(1, sizeof *r)) != NULL) {
        r->pub = pub;
        r->next = pubrefs;
        pubrefs = r;
    }
    if (r) {
        r->live++;
        r->sweep |= sweep;
    }
    pthread_mutex_unlock(&pubref_mu);
    return r;
}

/* Drop one producer; returns 1 if it was the last and the publisher's
 * declared topics must all be closed. */
static int
pubref_put(struct pxsi_pubref *r)
{
    pthread_mutex_lock(&pubref_mu);
    int last = --r->live == 0;
    int sweep = last && r->sweep;
    if (last) {
        struct pxsi_pubref **pp = &pubrefs;
        while (*pp != r)
            pp = &(*pp)->next;
        *pp = r->next;
        free(r);
    }
    pthread_mutex_unlock(&pubref_mu);
    return sweep;
}

/* The publisher accepted a send or close on `t`: keep its state. */
static pxsi_ptopic_t *
prod_commit(pxs_producer_t *p, pxsi_ptopic_t *t)
{
    if (t != &p->scratch)
        return t;
    PXS_ASSERT(p->n_topics < p->cap_topics);
    p->topics[p->n_topics] = *t;
    return &p->topics[p->n_topics++];
}

int
pxs_producer_create(pxs_store_t *store, pxs_publisher_t *publisher,
                    const pxs_producer_opts_t *opts, pxs_producer_t **prod_out)
{
    if (!publisher || !prod_out)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "producer_create: NULL %s",
                        !publisher ? "publisher" : "prod_out");
    pxs_producer_opts_t o;
    int rc = pxs_producer_opts_init(&o);
    if (rc < 0)
        return rc;
    rc = pxsi_opts_take(&o, sizeof o, opts);
    if (rc < 0)
        return rc;
    if (o.n_topics && !o.topics)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "producer opts: n_topics %zu, topics NULL",
                        o.n_topics);
    if (o.max_delay < 0)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "producer opts: max_delay < 0");
    pxs_producer_t *p = calloc(1, sizeof *p);
    if (!p)
        return pxsi_err(PXS_ERR_NOMEM, SUBSYS, "producer");
    p->store = store;
    p->pub = publisher;
    p->opts = o;
    p->opts.topics = NULL;
    if (o.n_topics) {
        p->fixed_topics = 1;
        p->topics = calloc(o.n_topics, sizeof *p->topics);
        if (!p->topics) {
            free(p);
            return pxsi_err(PXS_ERR_NOMEM, SUBSYS, "producer topic table");
        }
        p->cap_topics = o.n_topics;
        for (size_t i = 0; i < o.n_topics; i++) {
            if (o.topics[i] == PXS_TOPIC_ALL) {
                free(p->topics);
                free(p);
                return pxsi_err(PXS_ERR_INVALID, SUBSYS, "topic 0x%x is reserved",
                                o.topics[i]);
            }
            if (!prod_find(p, o.topics[i])) {
                p->topics[p->n_topics].topic = o.topics[i];
                p->topics[p->n_topics++].used = 1;
            }
        }
    }
    /* the stream log (docs/DESIGN.md, section "Stream log and replay") */
    p->opts.log_path = NULL;
    rc = PXS_OK;
    if (o.log_bytes != 0 && o.log_bytes != 1)
        rc = pxsi_err(PXS_ERR_INVALID, SUBSYS, "producer opts: log_bytes must be 0 or 1");
    else if (o.log_bytes && !o.log_path)
        rc = pxsi_err(PXS_ERR_INVALID, SUBSYS, "producer opts: log_bytes needs log_path");
    else if (o.log_path) {
        int prank = 0;
        rc = pxsi_publisher_rank(publisher, &prank);
        if (rc == PXS_OK)
            rc = pxsi_slog_open(o.log_path, prank, &p->log);
        uint64_t r = 0;
        if (rc == PXS_OK && o.log_bytes && (rc = pxsi_random_u64(&r)) == PXS_OK) {
            /* durable copies: a store of this process alone, beside the log */
            char dir[4200];
            snprintf(dir, sizeof dir, "%s/bytes-p%d-%016llx", o.log_path, prank,
                     (unsigned long long)r);
            pxs_store_opts_t so;
            (void)pxs_store_opts_init(&so);
            so.connector = PXS_CONN_HDF5;
            so.path = dir;
            rc = pxs_store_create(MPI_COMM_SELF, &so, &p->log_store);
            if (rc < 0) {
                p->log_store = NULL;
                pxsi_slog_close(p->log);
                p->log = NULL;
            }
        }
    }
    if (rc < 0) {
        free(p->topics);
        free(p);
        return rc;
    }
    p->ref = pubref_get(publisher, !p->fixed_topics && o.close_on_destroy);
    if (!p->ref) {
        if (p->log_store)
            (void)pxs_store_destroy(p->log_store);
        pxsi_slog_close(p->log);
        free(p->topics);
        free(p);
        return pxsi_err(PXS_ERR_NOMEM, SUBSYS, "producer registry");
    }
    p->magic = PXSI_PRODUCER_MAGIC;
    *prod_out = p;
    return PXS_OK;
}

/* Append to the stream log, if any. A failure does not undo the publish
 * (the event went out): it is kept and reported by destroy. */
static void
prod_log(pxs_producer_t *p, uint32_t topic, uint64_t seq, const pxs_proxy_t *proxy,
         const void *meta, size_t meta_len, int end)
{
    if (!p->log)
        return;
    int rc = pxsi_slog_event(p->log, topic, seq, proxy, meta, meta_len, end);
    if (rc < 0) {
        PXSI_WARN(SUBSYS, "stream log: %s", pxs_last_error_detail());
        if (p->log_rc == PXS_OK)
            p->log_rc = rc;
    }
}

/* The publisher's close of `t` succeeded (or reports it done earlier). */
static void
prod_closed(pxs_producer_t *p, pxsi_ptopic_t *t)
{
    if (t->closed != PXSI_TOPIC_CLOSED)
        prod_log(p, t->topic, 0, NULL, NULL, 0, 1);
    if (t->closed == PXSI_TOPIC_CLOSING)
        p->n_closing--;
    t->closed = PXSI_TOPIC_CLOSED;
}

/* Retry the publisher's close of every CLOSING topic. The publisher's
 * close_topic, retried after a failure, queues END if it was not queued yet
 * and delivers it; PXS_ERR_CLOSED means END went out earlier. */
static int
prod_retry_closes(pxs_producer_t *p)
{
    for (size_t i = 0; i < p->n_topics && p->n_closing; i++) {
        pxsi_ptopic_t *t = &p->topics[i];
        if (t->closed != PXSI_TOPIC_CLOSING)
            continue;
        int rc = pxs_publisher_close_topic(p->pub, t->topic);
        if (rc < 0 && rc != PXS_ERR_CLOSED)
            return rc;
        prod_closed(p, t);
    }
    return PXS_OK;
}

/* Deliver everything queued in the publisher, pending ENDs included. */
static int
prod_flush(pxs_producer_t *p)
{
    int rc = prod_retry_closes(p);
    if (rc >= 0)
        rc = pxs_publisher_flush(p->pub);
    if (rc >= 0)
        p->unflushed = 0;
    return rc;
}

/* After a successful publish: apply the producer's batching policy. The event
 * is accepted (queued in the publisher) whatever happens here: a failed
 * delivery (PXS_ERR_AGAIN: mailbox still full) leaves `unflushed` set, so the
 * next send, flush or close retries it, and is not the send's failure: a
 * caller that retried the send would publish the event twice. */
static void
prod_after_publish(pxs_producer_t *p)
{
    if (p->unflushed++ == 0) {
        if (p->opts.max_delay > 0)
            p->first_unflushed_t = pxsi_now();
    }
    int due = (p->opts.batch && p->unflushed >= p->opts.batch) ||
              (p->opts.max_delay > 0 && pxsi_now() - p->first_unflushed_t >= p->opts.max_delay);
    if (!due)
        return;
    int rc = prod_flush(p);
    if (rc == PXS_ERR_AGAIN)
        PXSI_DEBUG(SUBSYS, "batch flush: mailbox full; %u event(s) stay queued",
                   (unsigned)p->unflushed);
    else if (rc < 0)
        PXSI_WARN(SUBSYS, "batch flush failed (%s); %u event(s) stay queued, retried on the "
                  "next send or flush", pxs_errname(rc), (unsigned)p->unflushed);
}

static int
check_meta(const void *meta, size_t meta_len)
{
    if (meta_len > PXS_EVENT_META_MAX)
        return pxsi_err(PXS_ERR_TOO_BIG, SUBSYS, "metadata is %zu bytes, at most %d fit",
                        meta_len, PXS_EVENT_META_MAX);
    if (meta_len && !meta)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "metadata NULL with meta_len %zu", meta_len);
    return PXS_OK;
}

int
pxs_producer_send(pxs_producer_t *prod, uint32_t topic, const void *data, size_t len,
                  const pxs_send_opts_t *opts, pxs_proxy_t *proxy_out)
{
    if (!PXSI_HANDLE_OK(prod, PXSI_PRODUCER_MAGIC))
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "producer_send: bad producer handle");
    if (!data && len)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "producer_send: data NULL, len %zu", len);
    if (!prod->store)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS,
                        "producer_send: producer has no store (forward-only)");
    pxs_send_opts_t so;
    int rc = pxs_send_opts_init(&so);
    if (rc < 0)
        return rc;
    if ((rc = pxsi_opts_take(&so, sizeof so, opts)) < 0)
        return rc;
    if ((rc = check_meta(so.meta, so.meta_len)) < 0)
        return rc;
    pxsi_ptopic_t *t;
    if ((rc = prod_topic(prod, topic, &t)) < 0)
        return rc;
    if (t->closed)
        return pxsi_err(PXS_ERR_CLOSED, SUBSYS, "send on topic %u after close", topic);

    pxs_put_opts_t po;
    if ((rc = pxs_put_opts_init(&po)) < 0)
        return rc;
    uint32_t budget = so.resolves ? so.resolves : prod->opts.resolves;
    if (!so.keep && !budget) {
        /* default: one resolve per destination of the topic (plain
         * subscribers + groups), at least 1; asked once per topic */
        if (!t->budget) {
            uint32_t fan = 0;
            if ((rc = pxsi_publisher_fanout(prod->pub, topic, &fan)) < 0)
                return rc;
            t->budget = fan ? fan : 1;
        }
        budget = t->budget;
    }
    po.resolves = so.keep ? 0 : budget;
    po.checksum = so.checksum < 0 ? prod->opts.checksum : so.checksum;
    if (prod->opts.put_timeout != -2.0)
        po.timeout = prod->opts.put_timeout;
    po.topic = topic;
    po.seq = t->next_seq;

    pxs_proxy_t proxy;
    if (prod->unflushed) {
        /* Events still coalesced here may be exactly what consumers need to
         * free the arena: never block on a full arena while holding them.
         * Try without waiting; if full, deliver them, then wait. */
        double wait = po.timeout;
        po.timeout = 0.0;
        rc = pxs_store_put(prod->store, data, len, &po, &proxy);
        po.timeout = wait;
        if (rc == PXS_ERR_AGAIN) {
            if ((rc = prod_flush(prod)) < 0)
                return rc;
            rc = pxs_store_put(prod->store, data, len, &po, &proxy);
        }
    } else {
        rc = pxs_store_put(prod->store, data, len, &po, &proxy);
    }
    if (rc < 0)
        return rc;
    uint64_t pseq = 0;
    rc = pxs_publisher_send(prod->pub, topic, &proxy, so.meta, so.meta_len, &pseq);
    if (rc < 0) {
        /* Nobody got the proxy: take the object back so the arena does not leak. */
        int erc = pxs_store_evict(prod->store, &proxy);
        if (erc < 0)
            PXSI_WARN(SUBSYS, "evict after failed publish on topic %u: %s", topic,
                      pxs_errname(erc));
        return pxsi_err(rc, SUBSYS, "publish on topic %u failed (%s); object evicted",
                        topic, pxs_errname(rc));
    }
    if (prod->log_store) {
        /* log_bytes: the log names a durable copy of the payload */
        pxs_proxy_info_t pi;
        pxs_proxy_t dur = proxy;
        if (pxs_proxy_decode(proxy.bytes, PXS_PROXY_SIZE, &pi) == PXS_OK &&
            pi.kind != PXS_CONN_HDF5) {
            pxs_put_opts_t dpo;
            (void)pxs_put_opts_init(&dpo);
            dpo.topic = topic;
            dpo.seq = pseq;
            int drc = pxs_store_put(prod->log_store, data, len, &dpo, &dur);
            if (drc < 0) {
                PXSI_WARN(SUBSYS, "stream log: durable copy: %s", pxs_last_error_detail());
                if (prod->log_rc == PXS_OK)
                    prod->log_rc = drc;
                dur = proxy;
            }
        }
        prod_log(prod, topic, pseq, &dur, so.meta, so.meta_len, 0);
    } else {
        prod_log(prod, topic, pseq, &proxy, so.meta, so.meta_len, 0);
    }
    t = prod_commit(prod, t);
    t->next_seq++;
    t->used = 1;
    prod->sent++;
    prod->bytes += len;
    if (proxy_out)
        *proxy_out = proxy;
    prod_after_publish(prod); /* accepted: from here the send succeeded */
    return PXS_OK;
}

int
pxs_producer_send_proxy(pxs_producer_t *prod, uint32_t topic, const pxs_proxy_t *proxy,
                        const void *meta, size_t meta_len)
{
    if (!PXSI_HANDLE_OK(prod, PXSI_PRODUCER_MAGIC))
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "send_proxy: bad producer handle");
    if (!proxy)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "send_proxy: proxy NULL");
    int rc = pxs_proxy_validate(proxy);
    if (rc < 0)
        return pxsi_err(rc, SUBSYS, "send_proxy: proxy does not validate (%s)",
                        pxs_errname(rc));
    pxs_proxy_info_t info;
    if ((rc = pxs_proxy_decode(proxy->bytes, PXS_PROXY_SIZE, &info)) < 0)
        return rc;
    if (info.kind == PXS_CONN_NONE)
        return pxsi_err(PXS_ERR_CORRUPT, SUBSYS, "send_proxy: proxy has no connector");
    if ((rc = check_meta(meta, meta_len)) < 0)
        return rc;
    pxsi_ptopic_t *t;
    if ((rc = prod_topic(prod, topic, &t)) < 0)
        return rc;
    if (t->closed)
        return pxsi_err(PXS_ERR_CLOSED, SUBSYS, "send_proxy on topic %u after close", topic);
    uint64_t pseq = 0;
    rc = pxs_publisher_send(prod->pub, topic, proxy, meta, meta_len, &pseq);
    if (rc < 0)
        return rc;
    prod_log(prod, topic, pseq, proxy, meta, meta_len, 0);
    t = prod_commit(prod, t);
    t->next_seq++;
    t->used = 1;
    prod->forwarded++;
    prod_after_publish(prod); /* accepted: from here the send succeeded */
    return PXS_OK;
}

int
pxs_producer_flush(pxs_producer_t *prod)
{
    if (!PXSI_HANDLE_OK(prod, PXSI_PRODUCER_MAGIC))
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "producer_flush: bad producer handle");
    return prod_flush(prod);
}

int
pxs_producer_close_topic(pxs_producer_t *prod, uint32_t topic)
{
    if (!PXSI_HANDLE_OK(prod, PXSI_PRODUCER_MAGIC))
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "close_topic: bad producer handle");
    pxsi_ptopic_t *t;
    int rc = prod_topic(prod, topic, &t);
    if (rc < 0)
        return rc;
    if (t->closed == PXSI_TOPIC_CLOSED)
        return pxsi_err(PXS_ERR_CLOSED, SUBSYS, "topic %u already closed", topic);
    rc = pxs_publisher_close_topic(prod->pub, topic);
    if (rc == PXS_OK || (rc == PXS_ERR_CLOSED && t->closed == PXSI_TOPIC_CLOSING)) {
        t = prod_commit(prod, t);
        t->used = 1;
        prod_closed(prod, t);
        prod->unflushed = 0; /* the publisher's close flushes everything */
        return PXS_OK;
    }
    if (rc == PXS_ERR_AGAIN || rc == PXS_ERR_MPI) {
        /* END queued, or not yet (the flush before it failed): either way
         * a retry of the publisher's close finishes the job. From now on the
         * topic takes no sends; close_topic, flush and destroy retry. */
        t = prod_commit(prod, t);
        t->used = 1;
        if (t->closed == PXSI_TOPIC_OPEN) {
            t->closed = PXSI_TOPIC_CLOSING;
            prod->n_closing++;
        }
        return rc;
    }
    if (rc == PXS_ERR_CLOSED && t != &prod->scratch)
        t->closed = PXSI_TOPIC_CLOSED; /* closed on the publisher directly */
    return rc; /* NOT_FOUND (undeclared: not added), CLOSED, ... */
}

int
pxs_producer_stats(const pxs_producer_t *prod, uint64_t *sent_out, uint64_t *bytes_out,
                   uint64_t *forwarded_out)
{
    if (!PXSI_HANDLE_OK(prod, PXSI_PRODUCER_MAGIC))
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "producer_stats: bad producer handle");
    if (sent_out)
        *sent_out = prod->sent;
    if (bytes_out)
        *bytes_out = prod->bytes;
    if (forwarded_out)
        *forwarded_out = prod->forwarded;
    return PXS_OK;
}

int
pxs_producer_destroy(pxs_producer_t *prod)
{
    if (!prod)
        return PXS_OK;
    if (!PXSI_HANDLE_OK(prod, PXSI_PRODUCER_MAGIC))
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "producer_destroy: bad producer handle");
    int first = PXS_OK;
    for (size_t i = 0; i < prod->n_topics; i++) {
        pxsi_ptopic_t *t = &prod->topics[i];
        /* a close that returned an error is finished even without
         * close_on_destroy: the caller asked for it */
        if (t->closed == PXSI_TOPIC_CLOSED ||
            (t->closed == PXSI_TOPIC_OPEN && !(prod->opts.close_on_destroy && t->used)))
            continue;
        int rc = pxs_publisher_close_topic(prod->pub, t->topic);
        if (rc < 0 && rc != PXS_ERR_CLOSED && first == PXS_OK)
            first = rc;
        if (rc == PXS_OK || rc == PXS_ERR_CLOSED)
            prod_log(prod, t->topic, 0, NULL, NULL, 0, 1);
        t->closed = PXSI_TOPIC_CLOSED;
    }
    /* The last producer of the publisher, if one of them had no topic list:
     * END on every declared topic nobody closed (subscribers count every
     * declared publisher, whether it sent or not). CLOSED: done earlier. */
    if (pubref_put(prod->ref)) {
        size_t n = 0;
        int rc = pxsi_publisher_topic(prod->pub, 0, NULL, &n);
        if (rc < 0 && first == PXS_OK)
            first = rc;
        for (size_t i = 0; rc >= 0 && i < n; i++) {
            uint32_t id = 0;
            if ((rc = pxsi_publisher_topic(prod->pub, i, &id, NULL)) < 0)
                break;
            int crc = pxs_publisher_close_topic(prod->pub, id);
            if (crc < 0 && crc != PXS_ERR_CLOSED && first == PXS_OK)
                first = crc;
            if (crc == PXS_OK)
                prod_log(prod, id, 0, NULL, NULL, 0, 1);
        }
    }
    /* Always: events or an END queued in the publisher by an earlier call
     * that returned PXS_ERR_AGAIN must go out, else a consumer waiting for
     * END never gets it and the collective pxs_bus_destroy hangs. */
    int rc = pxs_publisher_flush(prod->pub);
    if (rc < 0 && first == PXS_OK)
        first = rc;
    if (prod->log_store) {
        int drc = pxs_store_destroy(prod->log_store); /* MPI_COMM_SELF: local */
        if (drc < 0 && first == PXS_OK)
            first = drc;
    }
    if (prod->log) {
        pxsi_slog_close(prod->log);
        if (first == PXS_OK && prod->log_rc < 0)
            first = pxsi_err(prod->log_rc, SUBSYS,
                             "stream log: some events were published but not logged (see the "
                             "warnings, PXS_LOG=warn)");
    }
    prod->magic = PXSI_MAGIC_DEAD;
    free(prod->topics);
    free(prod);
    return first;
}

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
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "consumer opts: drop_policy %d",
                        o.drop_policy);
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
    if (c->opts.drop_policy != PXS_DROP_EVICT || !c->store)
        return;
    int rc = pxs_store_drop(c->store, &ev->proxy);
    /* STALE: already reclaimed (e.g. budget spent by others): nothing to give up. */
    if (rc < 0 && rc != PXS_ERR_STALE)
        PXSI_WARN(SUBSYS, "dropping a filtered event (topic %u, producer %d, seq %llu): %s",
                  ev->topic, (int)ev->producer, (unsigned long long)ev->seq,
                  pxs_errname(rc));
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
    double deadline = timeout < 0 ? -1.0 : pxsi_now() + timeout;
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
                if (deadline >= 0 && pxsi_now() >= deadline && ++late > PXSI_LATE_DROPS)
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
        } else {
            return rc; /* PXS_TIMEOUT or a failure */
        }
        if (deadline >= 0) {
            left = deadline - pxsi_now();
            if (left < 0)
                left = 0; /* one more poll: drain what is already there */
        }
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
    if (rc == PXS_OK)
        cons->resolved_bytes += len;
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
pxs_consumer_stats(const pxs_consumer_t *cons, uint64_t *delivered_out,
                   uint64_t *dropped_out, uint64_t *resolved_bytes_out)
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
pxs_consumer_destroy(pxs_consumer_t *cons)
{
    if (!cons)
        return PXS_OK;
    if (!PXSI_HANDLE_OK(cons, PXSI_CONSUMER_MAGIC))
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "consumer_destroy: bad consumer handle");
    pxsi_consumer_poison(cons);
    pxsi_consumer_free(cons);
    return PXS_OK;
}
