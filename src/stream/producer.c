/* Streams, the producer: store put + publish on top of the store and the
 * event plane (the consumer is in consumer.c).
 *
 * Design notes
 * - Batching is the bus's: the publisher coalesces events per destination
 *   (pxs_bus_opts_t.batch) and appends a batch with one credit and one ticket
 *   operation. The producer only decides *when* to force delivery: after
 *   `batch` sends, when the oldest unflushed send is older than `max_delay`,
 *   once the unflushed events name 1 MiB of payload (PXSI_PROD_FLUSH_BYTES),
 *   on pxs_producer_flush and on close. Coalescing a second time here would
 *   add a copy and a queue without saving any remote operation.
 * - The store put happens before the publish (the event must carry the
 *   proxy). Checks that can fail the publish are made first (metadata size,
 *   owned topic, closed topic) so a bad send stores nothing; if the publish
 *   still fails, the object is evicted again by its owner.
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
#include "pubsub/inline.h"
#include "store/reserve.h"
#include "stream/slog.h"
#include "stream/stream_internal.h"
#include "util/stats.h"
#include "util/util.h"

#define SUBSYS "stream"

/* ------------------------------------------------------------- producer */

static pxsi_prod_topic_t *
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
prod_topic(pxs_producer_t *p, uint32_t topic, pxsi_prod_topic_t **out)
{
    if (topic == PXS_TOPIC_ALL)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "topic 0x%x is reserved", topic);
    pxsi_prod_topic_t *t = prod_find(p, topic);
    if (!t) {
        if (p->fixed_topics)
            return pxsi_err(PXS_ERR_NOT_FOUND, SUBSYS,
                            "topic %u is not one of this producer's topics", topic);
        if (p->n_topics == p->cap_topics) {
            size_t cap = p->cap_topics ? 2 * p->cap_topics : 8;
            pxsi_prod_topic_t *nt = realloc(p->topics, cap * sizeof *nt);
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
static pxsi_prod_topic_t *
prod_commit(pxs_producer_t *p, pxsi_prod_topic_t *t)
{
    if (t != &p->scratch)
        return t;
    PXS_ASSERT(p->n_topics < p->cap_topics);
    p->topics[p->n_topics] = *t;
    return &p->topics[p->n_topics++];
}

int
pxs_producer_create(pxs_store_t *store, pxs_publisher_t *publisher, const pxs_producer_opts_t *opts,
                    pxs_producer_t **prod_out)
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
    if ((rc = pxs_send_opts_init(&p->so_default)) < 0 ||
        (rc = pxs_put_opts_init(&p->po_default)) < 0) {
        free(p);
        return rc;
    }
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
                return pxsi_err(PXS_ERR_INVALID, SUBSYS, "topic 0x%x is reserved", o.topics[i]);
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
prod_closed(pxs_producer_t *p, pxsi_prod_topic_t *t)
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
        pxsi_prod_topic_t *t = &p->topics[i];
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
    if (rc >= 0) {
        p->unflushed = 0;
        p->unflushed_bytes = 0;
    }
    return rc;
}

/* Deliver once the held events name this many payload bytes, whatever the
 * batch: a consumer that hears of a chunk while it is still in cache reads
 * it from there; a batch of 16 x 1 MiB chunks (four times L2 here) was read
 * cold (stream-1to1 at 1 MiB: 0.69 -> 1.17 of MPI_Send with batch 2; docs/
 * BENCHMARKS.md, "Zero-copy cases"). A flush is one batch append: nothing
 * next to a 1 MiB copy. Small chunks still go in batches of `batch`. */
#define PXSI_PROD_FLUSH_BYTES ((uint64_t)1 << 20)

/* After a successful publish: apply the producer's batching policy. The event
 * is accepted (queued in the publisher) whatever happens here: a failed
 * delivery (PXS_ERR_AGAIN: mailbox still full) leaves `unflushed` set, so the
 * next send, flush or close retries it, and is not the send's failure: a
 * caller that retried the send would publish the event twice. */
static void
prod_after_publish(pxs_producer_t *p, uint64_t bytes)
{
    if (p->unflushed++ == 0) {
        if (p->opts.max_delay > 0)
            p->first_unflushed_t = pxsi_now();
    }
    /* capped: a forwarded proxy's size (up to 2^64 - 1) cannot wrap it */
    p->unflushed_bytes += bytes < PXSI_PROD_FLUSH_BYTES ? bytes : PXSI_PROD_FLUSH_BYTES;
    int due = (p->opts.batch && p->unflushed >= p->opts.batch) ||
              p->unflushed_bytes >= PXSI_PROD_FLUSH_BYTES ||
              (p->opts.max_delay > 0 && pxsi_now() - p->first_unflushed_t >= p->opts.max_delay);
    if (!due)
        return;
    int rc = prod_flush(p);
    if (rc == PXS_ERR_AGAIN)
        PXSI_DEBUG(SUBSYS, "batch flush: mailbox full; %u event(s) stay queued",
                   (unsigned)p->unflushed);
    else if (rc < 0)
        PXSI_WARN(SUBSYS,
                  "batch flush failed (%s); %u event(s) stay queued, retried on the "
                  "next send or flush",
                  pxs_errname(rc), (unsigned)p->unflushed);
}

static int
check_meta(const void *meta, size_t meta_len)
{
    if (meta_len > PXS_EVENT_META_MAX)
        return pxsi_err(PXS_ERR_TOO_BIG, SUBSYS, "metadata is %zu bytes, at most %d fit", meta_len,
                        PXS_EVENT_META_MAX);
    if (meta_len && !meta)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "metadata NULL with meta_len %zu", meta_len);
    return PXS_OK;
}

/* An inline send: the payload goes in the event's record run; the proxy
 * handed back names no stored object (pxsi_inline_sender_proxy). */
static int
prod_send_inline(pxs_producer_t *prod, pxsi_prod_topic_t *t, uint32_t topic, const void *data,
                 size_t len, const pxs_send_opts_t *so, pxs_proxy_t *proxy_out)
{
    uint64_t pseq = 0;
    int rc = pxsi_publisher_send_inline(prod->pub, topic, data, len, so->meta, so->meta_len,
                                        &pseq);
    if (rc < 0)
        return pxsi_err_prefix(rc, SUBSYS, "publish on topic %u failed (inline, %zu B)", topic,
                               len);
    if (proxy_out) {
        int prank = 0;
        (void)pxsi_publisher_rank(prod->pub, &prank);
        (void)pxsi_inline_sender_proxy(data, (uint32_t)len, topic, prank, pseq, proxy_out);
    }
    t = prod_commit(prod, t);
    t->next_seq++;
    t->used = 1;
    prod->sent++;
    prod->bytes += len;
    prod_after_publish(prod, 0); /* accepted: from here the send succeeded (inline: nothing
                                    to read cold) */
    return PXS_OK;
}

/* The chunk's store object: a copy put, or (lent_out set: send_ref) a lent
 * buffer, which falls back to a copy where the store cannot lend. */
static int
prod_put(pxs_producer_t *prod, const void *data, size_t len, const pxs_put_opts_t *po,
         pxs_proxy_t *proxy, int *lent_out)
{
    if (lent_out)
        return pxs_store_put_ref(prod->store, data, len, po, proxy, lent_out);
    return pxs_store_put(prod->store, data, len, po, proxy);
}

/* res set (send_reserved): data/len are the reservation's; the store
 * object is its commit with the send's put options (never inline). A
 * private-buffer reservation (in_arena 0) is a put at commit: handed back
 * in *res_buf (free()) while the stream log may still copy it. */
static int
prod_send(pxs_producer_t *prod, uint32_t topic, const void *data, size_t len,
          const pxs_send_opts_t *opts, pxs_proxy_t *proxy_out, int *lent_out,
          pxs_reservation_t *res, void **res_buf)
{
    if (!PXSI_HANDLE_OK(prod, PXSI_PRODUCER_MAGIC))
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "producer_send: bad producer handle");
    if (!data && len)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "producer_send: data NULL, len %zu", len);
    if (!prod->store)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS,
                        "producer_send: producer has no store (forward-only)");
    pxs_send_opts_t so = prod->so_default;
    int rc;
    if (opts && (rc = pxsi_opts_take(&so, sizeof so, opts)) < 0)
        return rc;
    if ((rc = check_meta(so.meta, so.meta_len)) < 0)
        return rc;
    pxsi_prod_topic_t *t;
    if ((rc = prod_topic(prod, topic, &t)) < 0)
        return rc;
    if (t->closed != PXSI_TOPIC_OPEN)
        return pxsi_err(PXS_ERR_CLOSED, SUBSYS, "send on topic %u after close", topic);

    /* small chunks ride inside the event (docs/DESIGN.md, "Inline chunks"):
     * not with store semantics asked for (keep, an explicit budget: the
     * proxy is meant to be resolved elsewhere) nor with a stream log (its
     * replay resolves the logged proxies) */
    if (len <= prod->opts.inline_max && !so.keep && !so.resolves && !prod->opts.resolves &&
        !prod->log && !lent_out && !res) {
        int fits = 0;
        if ((rc = pxsi_publisher_inline_fits(prod->pub, topic, len, &fits)) < 0)
            return rc;
        if (fits)
            return prod_send_inline(prod, t, topic, data, len, &so, proxy_out);
    }

    pxs_put_opts_t po = prod->po_default;
    uint32_t budget = so.resolves ? so.resolves : prod->opts.resolves;
    if (!so.keep && !budget) {
        /* default: one resolve per destination of the topic (plain
         * subscribers + groups), at least 1; asked once per topic */
        budget = t->budget;
        if (!budget) { /* an exported bus: attached destinations now, every send */
            uint32_t fan = 0;
            int fixed = 1;
            if ((rc = pxsi_publisher_fanout(prod->pub, topic, &fan, &fixed)) < 0)
                return rc;
            budget = fan ? fan : 1;
            if (fixed)
                t->budget = budget;
        }
    }
    po.resolves = so.keep ? 0 : budget;
    po.checksum = so.checksum < 0 ? prod->opts.checksum : so.checksum;
    if (prod->opts.put_timeout != PXS_TIMEOUT_DEFAULT)
        po.timeout = prod->opts.put_timeout;
    po.topic = topic;
    po.seq = t->next_seq;

    pxs_proxy_t proxy;
    if (res) {
        /* an arena reservation publishes without waiting; a private buffer
         * is a put that may wait: never while holding coalesced events */
        if (prod->unflushed && !res->in_arena && (rc = prod_flush(prod)) < 0)
            return rc;
        /* what the proxy names is the store's record of the reservation,
         * not res->data/len as the caller may have left them: the log's
         * durable copy and the byte counts follow it */
        rc = pxsi_store_commit_opts(prod->store, res, &po, &proxy, res_buf, &data, &len);
    } else if (prod->unflushed) {
        /* Events still coalesced here may be exactly what consumers need to
         * free the arena: never block on a full arena while holding them.
         * Try without waiting; if full, deliver them, then wait. */
        double wait = po.timeout;
        po.timeout = 0.0;
        rc = prod_put(prod, data, len, &po, &proxy, lent_out);
        po.timeout = wait;
        if (rc == PXS_ERR_AGAIN) {
            if ((rc = prod_flush(prod)) < 0)
                return rc;
            rc = prod_put(prod, data, len, &po, &proxy, lent_out);
        }
    } else {
        rc = prod_put(prod, data, len, &po, &proxy, lent_out);
    }
    if (rc < 0)
        return rc;
    uint64_t pseq = 0;
    /* the proxy was made by the store just now and the metadata checked
     * above: no second validation */
    rc = pxsi_publisher_send_trusted(prod->pub, topic, &proxy, so.meta, so.meta_len, &pseq);
    if (rc < 0) {
        /* Nobody got the proxy: take the object back so the arena does not
         * leak. The publisher's detail is the cause: keep it (a failed evict
         * would overwrite it, hence the copy) and prefix our context. */
        char cause[512];
        snprintf(cause, sizeof cause, "%s", pxs_last_error_detail());
        int erc = pxs_store_evict(prod->store, &proxy);
        if (erc < 0) {
            PXSI_WARN(SUBSYS, "evict after failed publish on topic %u: %s", topic,
                      pxs_errname(erc));
            return pxsi_err(rc, SUBSYS, "publish on topic %u failed, object not evicted (%s): %s",
                            topic, pxs_errname(erc), cause);
        }
        if (lent_out)
            *lent_out = 0; /* evicted before anyone had the proxy: buffer free */
        return pxsi_err_prefix(rc, SUBSYS, "publish on topic %u failed; object evicted", topic);
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
    prod_after_publish(prod, len); /* accepted: from here the send succeeded */
    return PXS_OK;
}

int
pxs_producer_send(pxs_producer_t *prod, uint32_t topic, const void *data, size_t len,
                  const pxs_send_opts_t *opts, pxs_proxy_t *proxy_out)
{
    int rc = prod_send(prod, topic, data, len, opts, proxy_out, NULL, NULL, NULL);
    if (PXSI_UNLIKELY(rc < 0) && PXSI_HANDLE_OK(prod, PXSI_PRODUCER_MAGIC))
        prod->failed++;
    return rc;
}

/* Forward a held inline payload through the store (docs/DESIGN.md,
 * "Inline chunks"): copy it out, send it as a chunk, then give up this
 * process's copy. Counted as a forward. */
static int
prod_forward_stored(pxs_producer_t *prod, uint32_t topic, const pxs_proxy_t *proxy,
                    const pxs_proxy_info_t *info, const void *meta, size_t meta_len)
{
    size_t cap = info->size < PXSI_INLINE_HARD_MAX ? (size_t)info->size : PXSI_INLINE_HARD_MAX;
    unsigned char *b = malloc(cap ? cap : 1);
    if (!b)
        return pxsi_err(PXS_ERR_NOMEM, SUBSYS, "send_proxy: %zu B", cap);
    size_t n = 0;
    int rc = pxsi_inline_copy(proxy, b, cap, &n);
    if (rc == PXS_OK) {
        pxs_send_opts_t so;
        if ((rc = pxs_send_opts_init(&so)) == PXS_OK) {
            so.meta = meta;
            so.meta_len = meta_len;
            rc = prod_send(prod, topic, b, n, &so, NULL, NULL, NULL, NULL);
        }
    }
    free(b);
    if (rc < 0)
        return pxsi_err_prefix(rc, SUBSYS, "send_proxy of an inline event through the store");
    (void)pxsi_inline_drop(proxy);
    prod->sent--;
    prod->bytes -= n;
    prod->forwarded++;
    return PXS_OK;
}

int
pxs_producer_send_ref(pxs_producer_t *prod, uint32_t topic, const void *data, size_t len,
                      const pxs_send_opts_t *opts, pxs_proxy_t *proxy_out, int *lent_out)
{
    int lent = 0, rc;
    if (!proxy_out)
        rc = pxsi_err(PXS_ERR_INVALID, SUBSYS,
                      "send_ref: proxy_out NULL (needed for pxs_producer_ref_wait)");
    else if (!data || len == 0)
        rc = pxsi_err(PXS_ERR_INVALID, SUBSYS, "send_ref: %s",
                      data ? "len 0 (nothing to lend)" : "data NULL");
    else
        rc = prod_send(prod, topic, data, len, opts, proxy_out, &lent, NULL, NULL);
    if (lent_out)
        *lent_out = rc == PXS_OK ? lent : 0;
    if (PXSI_UNLIKELY(rc < 0) && PXSI_HANDLE_OK(prod, PXSI_PRODUCER_MAGIC))
        prod->failed++;
    return rc;
}

int
pxs_producer_reserve(pxs_producer_t *prod, size_t len, pxs_reservation_t *res)
{
    if (res)
        memset(res, 0, sizeof *res);
    if (!PXSI_HANDLE_OK(prod, PXSI_PRODUCER_MAGIC))
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "producer_reserve: bad producer handle");
    if (!prod->store)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS,
                        "producer_reserve: producer has no store (forward-only)");
    pxs_put_opts_t po = prod->po_default;
    po.checksum = prod->opts.checksum;
    if (prod->opts.put_timeout != PXS_TIMEOUT_DEFAULT)
        po.timeout = prod->opts.put_timeout;
    if (!prod->unflushed)
        return pxs_store_reserve(prod->store, len, &po, res);
    /* Events still coalesced here may be exactly what consumers need to
     * free the arena: never wait for space while holding them (as send).
     * Try without waiting; if full, deliver them, then wait. */
    double wait = po.timeout;
    po.timeout = 0.0;
    int rc = pxs_store_reserve(prod->store, len, &po, res);
    po.timeout = wait;
    if (rc == PXS_ERR_AGAIN) {
        if ((rc = prod_flush(prod)) < 0)
            return rc;
        rc = pxs_store_reserve(prod->store, len, &po, res);
    }
    return rc;
}

int
pxs_producer_send_reserved(pxs_producer_t *prod, uint32_t topic, pxs_reservation_t *res,
                           const pxs_send_opts_t *opts, pxs_proxy_t *proxy_out)
{
    int rc;
    void *buf = NULL;
    if (!PXSI_HANDLE_OK(prod, PXSI_PRODUCER_MAGIC))
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "send_reserved: bad producer handle");
    if (!res)
        rc = pxsi_err(PXS_ERR_INVALID, SUBSYS, "send_reserved: NULL reservation");
    else
        rc = prod_send(prod, topic, res->data, res->len, opts, proxy_out, NULL, res, &buf);
    free(buf);
    if (PXSI_UNLIKELY(rc < 0)) {
        prod->failed++;
        if (res && prod->store && res->internal_magic_ == PXSI_RESV_MAGIC &&
            res->internal_[0] == (void *)prod->store) {
            /* failed before the commit (topic, metadata, closed): the
             * reservation is consumed all the same (stream.h) */
            char cause[512];
            snprintf(cause, sizeof cause, "%s", pxs_last_error_detail());
            if (pxs_store_cancel(prod->store, res) == PXS_OK)
                return pxsi_err(rc, SUBSYS, "%s (reservation cancelled)", cause);
        }
    }
    return rc;
}

int
pxs_producer_ref_wait(pxs_producer_t *prod, const pxs_proxy_t *proxy, double timeout)
{
    if (!PXSI_HANDLE_OK(prod, PXSI_PRODUCER_MAGIC))
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "ref_wait: bad producer handle");
    if (!prod->store)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "ref_wait: producer has no store");
    /* done already (the usual case in a ring of buffers): no flush, so the
     * batch keeps coalescing */
    int rc = pxs_store_ref_wait(prod->store, proxy, 0);
    if (rc != PXS_ERR_AGAIN || timeout == 0)
        return rc;
    /* the event naming the buffer may still be coalesced here: deliver it,
     * or its consumers could never resolve and the wait would not end */
    if ((rc = pxs_producer_flush(prod)) < 0)
        return rc;
    return pxs_store_ref_wait(prod->store, proxy, timeout);
}

static int
prod_send_proxy(pxs_producer_t *prod, uint32_t topic, const pxs_proxy_t *proxy,
                const void *meta, size_t meta_len)
{
    if (!PXSI_HANDLE_OK(prod, PXSI_PRODUCER_MAGIC))
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "send_proxy: bad producer handle");
    if (!proxy)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "send_proxy: proxy NULL");
    int rc = pxs_proxy_validate(proxy);
    if (rc < 0)
        return pxsi_err_prefix(rc, SUBSYS, "send_proxy: the proxy does not validate");
    pxs_proxy_info_t info;
    if ((rc = pxs_proxy_decode(proxy->bytes, PXS_PROXY_SIZE, &info)) < 0)
        return rc;
    if (info.kind == PXS_CONN_NONE)
        return pxsi_err(PXS_ERR_CORRUPT, SUBSYS, "send_proxy: proxy has no connector");
    if ((rc = check_meta(meta, meta_len)) < 0)
        return rc;
    pxsi_prod_topic_t *t;
    if ((rc = prod_topic(prod, topic, &t)) < 0)
        return rc;
    if (t->closed != PXSI_TOPIC_OPEN)
        return pxsi_err(PXS_ERR_CLOSED, SUBSYS, "send_proxy on topic %u after close", topic);
    if (info.kind == PXS_CONN_INLINE && prod->store) {
        /* a received inline payload whose run does not fit this topic's
         * destinations: this producer's store carries it instead */
        int fits = 0;
        if ((rc = pxsi_publisher_inline_fits(prod->pub, topic, (size_t)info.size, &fits)) < 0)
            return rc;
        if (!fits)
            return prod_forward_stored(prod, topic, proxy, &info, meta, meta_len);
    }
    uint64_t pseq = 0;
    rc = pxs_publisher_send(prod->pub, topic, proxy, meta, meta_len, &pseq);
    if (rc < 0)
        return rc;
    prod_log(prod, topic, pseq, proxy, meta, meta_len, 0);
    t = prod_commit(prod, t);
    t->next_seq++;
    t->used = 1;
    prod->forwarded++;
    prod_after_publish(prod, info.size); /* accepted: from here the send succeeded */
    return PXS_OK;
}

int
pxs_producer_send_proxy(pxs_producer_t *prod, uint32_t topic, const pxs_proxy_t *proxy,
                        const void *meta, size_t meta_len)
{
    int rc = prod_send_proxy(prod, topic, proxy, meta, meta_len);
    if (PXSI_UNLIKELY(rc < 0) && PXSI_HANDLE_OK(prod, PXSI_PRODUCER_MAGIC))
        prod->failed++;
    return rc;
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
    pxsi_prod_topic_t *t;
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
    return rc;                         /* NOT_FOUND (undeclared: not added), CLOSED, ... */
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
pxs_producer_stats_init_(pxs_producer_stats_t *s, size_t size)
{
    return pxsi_stats_init(s, size, SUBSYS, "pxs_producer_stats_init");
}

static void
prod_stats_full(const pxs_producer_t *p, pxs_producer_stats_t *f)
{
    memset(f, 0, sizeof *f);
    f->struct_size = sizeof *f;
    f->sent = p->sent;
    f->bytes = p->bytes;
    f->forwarded = p->forwarded;
    f->failed = p->failed;
    f->topics = (uint32_t)p->n_topics;
    for (size_t i = 0; i < p->n_topics; i++) {
        f->topics_closed += p->topics[i].closed == PXSI_TOPIC_CLOSED;
        f->topics_closing += p->topics[i].closed == PXSI_TOPIC_CLOSING;
    }
}

int
pxs_producer_stats2(const pxs_producer_t *prod, pxs_producer_stats_t *out)
{
    if (!PXSI_HANDLE_OK(prod, PXSI_PRODUCER_MAGIC))
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "producer_stats2: bad producer handle");
    int rc = pxsi_stats_check(out, SUBSYS, "pxs_producer_stats2");
    if (rc != PXS_OK)
        return rc;
    pxs_producer_stats_t f;
    prod_stats_full(prod, &f);
    pxsi_stats_copy(out, &f, sizeof f);
    return PXS_OK;
}

static void
prod_stats_print(const pxs_producer_t *p, int mode)
{
    pxs_producer_stats_t f;
    prod_stats_full(p, &f);
    pxsi_statline_t l;
    pxsi_sl_begin(&l, mode, "producer");
    pxsi_sl_u64(&l, "sent", f.sent);
    pxsi_sl_u64(&l, "bytes", f.bytes);
    pxsi_sl_u64(&l, "forwarded", f.forwarded);
    pxsi_sl_u64(&l, "failed", f.failed);
    pxsi_sl_u64(&l, "topics", f.topics);
    pxsi_sl_u64(&l, "topics_closed", f.topics_closed);
    pxsi_sl_u64(&l, "topics_closing", f.topics_closing);
    pxsi_sl_end(&l);
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
        pxsi_prod_topic_t *t = &prod->topics[i];
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
    int smode = pxsi_stats_mode();
    if (smode != PXSI_STATS_OFF)
        prod_stats_print(prod, smode); /* after its ENDs went out */
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
