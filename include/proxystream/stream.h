/** @file proxystream/stream.h
 *  Streams: what applications call. A *producer* puts each chunk in a store
 *  and publishes an event carrying its proxy; a *consumer* receives events,
 *  optionally filters them on metadata, and resolves the proxies it wants.
 *
 *  Built on the two planes (store.h, pubsub.h); the caller creates the store
 *  and the bus (both collective) and hands them in. Producers and consumers
 *  themselves are local objects (not collective) and borrow the store and the
 *  publisher/subscriber: destroy them before the bus and the store.
 *
 *  Work sharing: subscribe to a topic as a member of a named group (see
 *  pxs_subscription_t.group in pubsub.h): each event then reaches exactly one
 *  member of the group. A member has at most `prefetch` events in flight,
 *  counting the one it is working on (pxs_subscription_t.prefetch,
 *  PXS_PREFETCH, default 2): its credit comes back when it asks for the next
 *  event, so a busy member is skipped and a slow member receives fewer. END
 *  reaches every member. A consumer on a group subscription is used exactly
 *  like a plain one. With software atomics (Open MPI osc/ucx and pt2pt,
 *  MPICH) the choice also depends on members entering MPI while they work.
 *  Measured shares: docs/DESIGN.md, section "Measured figures".
 *
 *  Forwarding: a proxy is 64 plain bytes. A dispatcher that received an event
 *  can hand the proxy to one worker either with pxs_producer_send_proxy() on a
 *  per-worker topic, or with MPI_Send(proxy.bytes, PXS_PROXY_SIZE, MPI_BYTE,
 *  ...) and pxs_proxy_validate() + pxs_store_resolve() on the worker. Neither
 *  touches the payload: only the rank that resolves moves the bytes.
 *
 *  Threads: one thread at a time per handle. Handles must not be used after
 *  their destroy call (the magic is poisoned before the memory is freed, so a
 *  stale handle is *usually* caught as PXS_ERR_INVALID, but reading freed
 *  memory is undefined behaviour: do not rely on it). */
#ifndef PROXYSTREAM_STREAM_H
#define PROXYSTREAM_STREAM_H

#include <mpi.h>

#include "proxystream/common.h"
#include "proxystream/proxy.h"
#include "proxystream/pubsub.h"
#include "proxystream/store.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pxs_producer pxs_producer_t;
typedef struct pxs_consumer pxs_consumer_t;

/* ------------------------------------------------------------- producer */

/** Producer options. Initialise with pxs_producer_opts_init(&o). */
typedef struct pxs_producer_opts {
    size_t struct_size;
    /** Topics this producer owns. NULL/0 (default): every topic the
     *  publisher declared: the producer may send on any of them, and its
     *  destroy sends END on all of them, also on those it never sent on
     *  (subscribers wait for END from every declared publisher of a topic).
     *  Several producers on one publisher: each destroy closes the topics
     *  its producer listed or used, and the last one destroyed also closes
     *  every other declared topic if any of them had no list.
     *  When given, a send or close on another topic fails with
     *  PXS_ERR_NOT_FOUND before anything is stored, and destroy closes every
     *  listed topic not yet closed. Copied at create. */
    const uint32_t *topics;
    size_t n_topics;
    /** Batching: the producer calls pxs_publisher_flush() after this many
     *  sends without a flush. 0 (default) = no producer-side limit: events are
     *  coalesced per destination by the bus (pxs_bus_opts_t.batch) and
     *  delivered when its batch fills, on pxs_producer_flush() or close.
     *  Whatever the batch, the producer also flushes once the events it
     *  holds name 1 MiB of payload (large chunks are read while still in
     *  cache; docs/DESIGN.md, "Batching"). */
    uint32_t batch;
    /** Batching: a send that finds the oldest unflushed event older than this
     *  many seconds flushes (checked in send only; no timer thread).
     *  0 (default) = off. */
    double max_delay;
    /** Default resolve budget of stored objects: evicted after this many
     *  resolves (+ drops). 0 (default): the topic's fan-out, i.e. the number
     *  of plain subscribers plus the number of groups subscribed to it (a
     *  group counts once: one member gets each event), at least 1; so with N
     *  plain subscribers every one of them can resolve each object. Set it
     *  when not every receiver resolves (or some forward the proxy to more
     *  than one resolver). */
    uint32_t resolves;
    /** Default payload checksum: 1 = CRC32C stored and verified on every
     *  resolve; 0 (default) = none. */
    int checksum;
    /** Store put timeout in s (arena full = backpressure);
     *  PXS_TIMEOUT_DEFAULT (default) = the store's put_timeout. */
    double put_timeout;
    /** 1 (default): destroy closes (sends END on) every topic this producer
     *  owns or used that is not closed yet; 0: destroy only flushes. */
    int close_on_destroy;
    /** Stream log (HDF5 builds; include/proxystream/log.h): a directory
     *  (created if missing) where every event this producer publishes and
     *  every END it sends is appended to its own HDF5 file, for replay by a
     *  later reader. NULL (default): no log. Copied at create. Without HDF5
     *  in the build: PXS_ERR_NOTSUP at create. */
    const char *log_path;
    /** 1: the log also keeps a durable copy of each payload sent with
     *  pxs_producer_send whose store is not an HDF5 store (an RMA object
     *  is gone when its job ends): an HDF5 store of this process in
     *  log_path/bytes-p<rank>-<random>/, and the logged event names the
     *  copy. A later job resolves them with pxs_store_open(log_path), which
     *  opens every store below it. send_proxy events are logged as sent.
     *  0 (default): the logged proxies are the published ones. */
    int log_bytes;
    /** Inline chunks (docs/DESIGN.md, "Inline chunks"): a pxs_producer_send
     *  of at most this many bytes carries the payload inside its event (no
     *  store space, no claim, no MPI_Get; resolve, view and next_object work
     *  as usual on the receiving side). 0 = off. Default PXS_INLINE_MAX
     *  (384), at most 16384. A chunk whose record run exceeds a
     *  destination mailbox's bound goes through the store. */
    uint32_t inline_max;
} pxs_producer_opts_t;

/** Per-send options. Initialise with pxs_send_opts_init(&o); NULL = defaults. */
typedef struct pxs_send_opts {
    size_t struct_size;
    const void *meta;  /**< inline metadata copied into the event (may be NULL) */
    size_t meta_len;   /**< <= PXS_EVENT_META_MAX, else PXS_ERR_TOO_BIG */
    uint32_t resolves; /**< resolve budget; 0 (default) = the producer's */
    int keep;          /**< 1 = keep until pxs_store_evict (no budget); default 0 */
    int checksum;      /**< -1 (default) = the producer's; 0 = off; 1 = on */
} pxs_send_opts_t;

PXS_API int pxs_producer_opts_init_(pxs_producer_opts_t *opts, size_t size);
/** Fill producer defaults. */
#define pxs_producer_opts_init(o) pxs_producer_opts_init_((o), sizeof *(o))
PXS_API int pxs_send_opts_init_(pxs_send_opts_t *opts, size_t size);
/** Fill per-send defaults. */
#define pxs_send_opts_init(o) pxs_send_opts_init_((o), sizeof *(o))

/** Create a producer on a store and a publisher (both borrowed: they must
 *  outlive the producer). Local, non-blocking.
 *  @param[in]  store      where send() puts payloads (may be NULL for a
 *                         producer that only forwards with send_proxy)
 *  @param[in]  publisher  from pxs_bus_publisher()
 *  @param[in]  opts       NULL = defaults
 *  @param[out] prod_out   new producer; destroy with pxs_producer_destroy
 *  @return PXS_OK, PXS_ERR_INVALID, PXS_ERR_NOMEM. */
PXS_API PXS_NODISCARD int pxs_producer_create(pxs_store_t *store,
                                              pxs_publisher_t *publisher,
                                              const pxs_producer_opts_t *opts,
                                              pxs_producer_t **prod_out);

/** Put `len` bytes in the store and publish an event with their proxy on
 *  `topic`. The bytes are copied: the caller may reuse `data` on return.
 *  Blocks on backpressure (arena full: up to the put timeout; mailbox full:
 *  up to the bus send_timeout). Local.
 *
 *  Exactly-once for retrying callers: PXS_OK means the event was accepted
 *  (queued in the publisher; it will be delivered), even if the delivery this
 *  send attempted (batch, max_delay) found the mailbox still full: that
 *  delivery is retried by the next send, pxs_producer_flush, close or
 *  destroy. Any error means the event was not accepted: it is never
 *  delivered, and the stored object is evicted again so the arena does not
 *  leak; retrying the send after PXS_ERR_AGAIN cannot publish it twice.
 *  @param[out] proxy_out  the stored object's proxy (may be NULL; written on
 *                         PXS_OK only); keep it to evict objects sent with
 *                         keep = 1
 *  @return PXS_OK, PXS_ERR_INVALID (NULL handle, data NULL with len > 0,
 *  reserved topic, no store), PXS_ERR_TOO_BIG (meta_len >
 *  PXS_EVENT_META_MAX, or len larger than the arena), PXS_ERR_NOT_FOUND
 *  (topic not owned / not declared as published), PXS_ERR_CLOSED (topic
 *  closed, or its close is pending), PXS_ERR_AGAIN (arena full past the put
 *  timeout, or mailbox full past send_timeout with the publisher's queue
 *  full: not accepted), PXS_ERR_MPI. */
PXS_API PXS_NODISCARD int pxs_producer_send(pxs_producer_t *prod, uint32_t topic,
                                            const void *data, size_t len,
                                            const pxs_send_opts_t *opts,
                                            pxs_proxy_t *proxy_out);

/** Like pxs_producer_send, but lends `data` instead of copying it
 *  (pxs_store_put_ref; docs/DESIGN.md, section "Lent buffers"): when
 *  *lent_out is 1 the caller must leave `data` unchanged until
 *  pxs_producer_ref_wait(prod, proxy_out, ...) returns PXS_OK. Where the
 *  store cannot lend, the bytes are copied and *lent_out is 0 (data is free
 *  at once). Never inline. proxy_out is required; lent_out may be NULL
 *  (then call pxs_producer_ref_wait only if the store lends).
 *  @return as pxs_producer_send; PXS_ERR_INVALID also for proxy_out NULL
 *  or len 0. */
PXS_API PXS_NODISCARD int pxs_producer_send_ref(pxs_producer_t *prod, uint32_t topic,
                                                const void *data, size_t len,
                                                const pxs_send_opts_t *opts,
                                                pxs_proxy_t *proxy_out, int *lent_out);

/** Reserve len bytes in the producer's store to fill in place
 *  (pxs_store_reserve with the producer's put options: checksum,
 *  put_timeout; docs/DESIGN.md, section "Reserved puts"): fill res->data,
 *  then pxs_producer_send_reserved, or pxs_store_cancel on the producer's
 *  store. A full arena delivers coalesced events before waiting (as send).
 *  @return as pxs_store_reserve. */
PXS_API PXS_NODISCARD int pxs_producer_reserve(pxs_producer_t *prod, size_t len,
                                               pxs_reservation_t *res);

/** Send a filled reservation on `topic`: pxs_store_commit (with the send's
 *  budget, checksum, topic and seq) + the same event as pxs_producer_send,
 *  never inline. With res->in_arena = 1 no byte is copied. The reservation
 *  is consumed whatever the outcome (a failure before the commit cancels
 *  it; a publish failure after it evicts the object, as send does): the
 *  bytes are never published twice, and after an error the caller reserves
 *  again. Exactly-once as send: PXS_OK = accepted.
 *  @return as pxs_producer_send; PXS_ERR_INVALID also for a reservation
 *  that is not a live one of the producer's store. */
PXS_API PXS_NODISCARD int pxs_producer_send_reserved(pxs_producer_t *prod, uint32_t topic,
                                                     pxs_reservation_t *res,
                                                     const pxs_send_opts_t *opts,
                                                     pxs_proxy_t *proxy_out);

/** Flush, then pxs_store_ref_wait on the producer's store: PXS_OK when the
 *  buffer lent by pxs_producer_send_ref may be reused.
 *  @return as pxs_store_ref_wait, and pxs_producer_flush's errors. */
PXS_API PXS_NODISCARD int pxs_producer_ref_wait(pxs_producer_t *prod, const pxs_proxy_t *proxy,
                                                double timeout);

/** Publish an existing proxy on `topic` without touching its bytes (the
 *  dispatcher's forward). The proxy is validated first; its resolve budget is
 *  unchanged (forwarding is not a resolve). Local. PXS_OK / errors mean
 *  accepted / not accepted, as for pxs_producer_send (nothing is evicted
 *  here: the proxy is the caller's).
 *  @return PXS_OK, PXS_ERR_INVALID (NULL), PXS_ERR_CORRUPT (the proxy does
 *  not validate: forged or damaged), PXS_ERR_TOO_BIG, PXS_ERR_NOT_FOUND,
 *  PXS_ERR_CLOSED, PXS_ERR_AGAIN, PXS_ERR_MPI. */
PXS_API PXS_NODISCARD int pxs_producer_send_proxy(pxs_producer_t *prod, uint32_t topic,
                                                  const pxs_proxy_t *proxy,
                                                  const void *meta, size_t meta_len);

/** Deliver every event still coalesced in the publisher, and the END of
 *  every topic whose close is pending (pxs_producer_close_topic returned an
 *  error). Local, may block on backpressure (up to send_timeout); after
 *  PXS_ERR_AGAIN call it again later: nothing is lost.
 *  @return PXS_OK, PXS_ERR_INVALID, PXS_ERR_AGAIN, PXS_ERR_MPI. */
PXS_API PXS_NODISCARD int pxs_producer_flush(pxs_producer_t *prod);

/** Flush and send END on `topic`. Local, may block on backpressure (up to
 *  send_timeout). From the first call on, sends on the topic give
 *  PXS_ERR_CLOSED, whatever it returns. PXS_ERR_AGAIN (mailbox full) or
 *  PXS_ERR_MPI: the close is pending; call close_topic again (PXS_OK once END
 *  is delivered, AGAIN while not), or pxs_producer_flush, and
 *  pxs_producer_destroy delivers it in any case (even with
 *  close_on_destroy = 0): consumers wait for END, so do not destroy the bus
 *  before it went out.
 *  @return PXS_OK, PXS_ERR_INVALID, PXS_ERR_NOT_FOUND, PXS_ERR_CLOSED
 *  (END already delivered), PXS_ERR_AGAIN, PXS_ERR_MPI. */
PXS_API PXS_NODISCARD int pxs_producer_close_topic(pxs_producer_t *prod, uint32_t topic);

/** Counters of one producer. Initialise with pxs_producer_stats_init(&s);
 *  the library fills what the caller's struct_size covers (see
 *  proxystream/stats.h). */
typedef struct pxs_producer_statistics {
    size_t struct_size;
    uint64_t sent;           /**< pxs_producer_send calls that returned PXS_OK */
    uint64_t bytes;          /**< payload bytes those sends put */
    uint64_t forwarded;      /**< pxs_producer_send_proxy calls that returned PXS_OK */
    uint64_t failed;         /**< sends and forwards that returned an error */
    uint32_t topics;         /**< topics in its table (listed, or used) */
    uint32_t topics_closed;  /**< of those, END delivered */
    uint32_t topics_closing; /**< of those, END queued but not yet delivered */
    uint32_t reserved_;
} pxs_producer_stats_t;
PXS_API int pxs_producer_stats_init_(pxs_producer_stats_t *s, size_t size);
#define pxs_producer_stats_init(s) pxs_producer_stats_init_((s), sizeof *(s))
/** This producer's counters. Local.
 *  @return PXS_OK, PXS_ERR_INVALID (bad handle, NULL, struct_size too small). */
PXS_API int pxs_producer_stats2(const pxs_producer_t *prod, pxs_producer_stats_t *out);
/** Counters of this producer (any output may be NULL); pxs_producer_stats2
 *  has more. */
PXS_API int pxs_producer_stats(const pxs_producer_t *prod, uint64_t *sent_out,
                               uint64_t *bytes_out, uint64_t *forwarded_out);

/** Close the producer's topics (if close_on_destroy: the listed ones, or
 *  with no list those it used, and, if it is the last producer of its
 *  publisher, every declared topic not closed yet) and those whose close is
 *  pending, flush the publisher (always: a queued END must go out), free the
 *  handle. Local, may block on backpressure. The store and publisher are not
 *  touched otherwise. NULL: no-op. The handle is freed even when flushing
 *  fails; the first failure is returned: after PXS_ERR_AGAIN, what is still
 *  queued stays in the publisher, and pxs_publisher_flush delivers it (before
 *  pxs_bus_destroy, which discards it and gives the objects of the discarded
 *  events back to their owner's store). Check the status: an END that did
 *  not go out leaves consumers waiting.
 *  @return PXS_OK, PXS_ERR_INVALID (stale/foreign), or the flush/close
 *  error. */
PXS_API PXS_NODISCARD int pxs_producer_destroy(pxs_producer_t *prod);

/* ------------------------------------------------------------- consumer */

/** Filter on an event (its metadata, topic, producer, seq): return non-zero
 *  to deliver it, 0 to drop it. Called inside pxs_consumer_next(); must not
 *  call back into the consumer. */
typedef int (*pxs_event_filter_fn)(const pxs_event_t *ev, void *arg);

/** What happens to an event the filter drops. */
enum pxs_drop_policy {
    PXS_DROP_EVICT = 0, /**< default: give up this consumer's claim on the
                             object (pxs_store_drop: its resolve budget counts
                             down by one, as for a resolve), so the owner
                             reclaims it once every holder resolved or dropped
                             it and its arena does not fill. Other holders can
                             still resolve it, also when this consumer is on
                             the owner's rank. No-op for keep objects. */
    PXS_DROP_IGNORE = 1 /**< leave the object alone (someone else evicts it) */
};

/** Consumer options. Initialise with pxs_consumer_opts_init(&o). */
typedef struct pxs_consumer_opts {
    size_t struct_size;
    pxs_event_filter_fn filter; /**< NULL (default): deliver everything */
    void *filter_arg;           /**< passed to filter */
    int drop_policy;            /**< enum pxs_drop_policy; default PXS_DROP_EVICT */
} pxs_consumer_opts_t;

PXS_API int pxs_consumer_opts_init_(pxs_consumer_opts_t *opts, size_t size);
/** Fill consumer defaults. */
#define pxs_consumer_opts_init(o) pxs_consumer_opts_init_((o), sizeof *(o))

/** Create a consumer on a store (to resolve; may be NULL if the caller only
 *  forwards proxies) and a subscriber (from pxs_bus_subscriber; borrowed).
 *  The consumer receives every topic that subscriber subscribed. Local.
 *  A NULL store with a filter needs drop_policy PXS_DROP_IGNORE: the default
 *  PXS_DROP_EVICT gives dropped objects back through the store, and without
 *  one they would fill the producer's arena (PXS_ERR_INVALID).
 *  @return PXS_OK, PXS_ERR_INVALID, PXS_ERR_NOMEM. */
PXS_API PXS_NODISCARD int pxs_consumer_create(pxs_store_t *store,
                                              pxs_subscriber_t *subscriber,
                                              const pxs_consumer_opts_t *opts,
                                              pxs_consumer_t **cons_out);

/** Next event that passes the filter. timeout in s: 0 polls, < 0 waits
 *  forever (PXS_WAIT_FOREVER); waits back off (spin, yield, sleep). The
 *  timeout holds while the filter keeps dropping events: once it has passed,
 *  at most 32 more dropped events are examined (so a poll gets through a
 *  burst of unwanted events), then PXS_TIMEOUT.
 *  Per-topic ENDs are absorbed; PXS_END is returned once every producer of
 *  every subscribed topic has closed (ev_out->topic = PXS_TOPIC_ALL), and on
 *  every call after that. Local.
 *  The caller owns the object the event refers to: resolve it
 *  (pxs_consumer_resolve, pxs_store_resolve, ...), forward it, or give up the
 *  claim with pxs_consumer_discard, else it stays in the owner's arena.
 *  @return PXS_OK (ev_out filled), PXS_TIMEOUT, PXS_END, PXS_ERR_INVALID
 *  (NULL, stale or foreign handle), PXS_ERR_CORRUPT (malformed record or a
 *  sequence gap), PXS_ERR_MPI. */
PXS_API PXS_NODISCARD int pxs_consumer_next(pxs_consumer_t *cons, pxs_event_t *ev_out,
                                            double timeout);

/** pxs_consumer_next, then resolve the object into a new buffer: *data_out
 *  (len_out bytes) belongs to the caller, free it with pxs_free(). Exception
 *  to "outputs only on success": when an event was received but its resolve
 *  failed, ev_out is still filled (so the caller knows which event failed)
 *  and data_out is left alone.
 *  @return as pxs_consumer_next, plus pxs_store_resolve's failures
 *  (PXS_ERR_STALE, PXS_ERR_CORRUPT, PXS_ERR_NOMEM, PXS_ERR_MPI). */
PXS_API PXS_NODISCARD int pxs_consumer_next_object(pxs_consumer_t *cons,
                                                   pxs_event_t *ev_out,
                                                   void **data_out, size_t *len_out,
                                                   double timeout);

/** Resolve an event's object into the caller's buffer (counts as one
 *  resolve). @return as pxs_store_resolve; PXS_ERR_INVALID without a store. */
PXS_API PXS_NODISCARD int pxs_consumer_resolve(pxs_consumer_t *cons,
                                               const pxs_event_t *ev, void *buf,
                                               size_t cap, size_t *len_out);

/** Give up this consumer's claim on an event's object without reading it
 *  (pxs_store_drop: counts the resolve budget down by one; other holders of
 *  the proxy can still resolve it, also when this consumer is on the owner's
 *  rank; no-op for keep objects, which only pxs_store_evict reclaims). Local.
 *  @return as pxs_store_drop: PXS_OK, PXS_ERR_INVALID (also without a
 *  store), PXS_ERR_CORRUPT, PXS_ERR_STALE, PXS_ERR_MPI. */
PXS_API PXS_NODISCARD int pxs_consumer_discard(pxs_consumer_t *cons,
                                               const pxs_event_t *ev);

/** Counters of one consumer. Initialise with pxs_consumer_stats_init(&s). */
typedef struct pxs_consumer_statistics {
    size_t struct_size;
    uint64_t delivered;      /**< events pxs_consumer_next returned */
    uint64_t dropped;        /**< events the filter dropped */
    uint64_t resolves;       /**< objects resolved through this consumer */
    uint64_t resolved_bytes; /**< their bytes */
    uint64_t topics_ended;   /**< per-topic ENDs seen (absorbed) */
    int ended;               /**< 1: every subscribed topic ended (PXS_END returned) */
    int reserved_;
} pxs_consumer_stats_t;
PXS_API int pxs_consumer_stats_init_(pxs_consumer_stats_t *s, size_t size);
#define pxs_consumer_stats_init(s) pxs_consumer_stats_init_((s), sizeof *(s))
/** This consumer's counters. Local.
 *  @return PXS_OK, PXS_ERR_INVALID (bad handle, NULL, struct_size too small). */
PXS_API int pxs_consumer_stats2(const pxs_consumer_t *cons, pxs_consumer_stats_t *out);
/** Counters (any output may be NULL): events delivered, events dropped by
 *  the filter, bytes resolved through this consumer; pxs_consumer_stats2
 *  has more. */
PXS_API int pxs_consumer_stats(const pxs_consumer_t *cons, uint64_t *delivered_out,
                               uint64_t *dropped_out, uint64_t *resolved_bytes_out);

/** Free the consumer (events not yet received stay in the subscriber).
 *  Local. NULL: no-op. @return PXS_OK, PXS_ERR_INVALID (stale/foreign). */
PXS_API int pxs_consumer_destroy(pxs_consumer_t *cons);

#ifdef __cplusplus
}
#endif
#endif
