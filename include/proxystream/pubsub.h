/** @file proxystream/pubsub.h
 *  The event plane: publishers send small events (topic, proxy, inline
 *  metadata) to every subscriber of a topic; subscribers receive them.
 *
 *  Publisher and subscriber are interfaces (function tables inside the
 *  handle), so transports can be added without touching callers. A *bus*
 *  is one transport instance and hands out one publisher and one subscriber:
 *   - pxs_bus_create(): MPI mailbox bus (collective over a communicator);
 *   - pxs_inproc_bus_create(): in-process queues (threads of one process).
 *
 *  Guarantees: FIFO per (producer, topic) at every subscriber; no loss, no
 *  duplicates; a full mailbox is backpressure (wait up to send_timeout, then
 *  PXS_ERR_AGAIN), never a drop or an overwrite; closing a topic sends END and
 *  a subscriber sees PXS_END for a topic once every producer of it closed. */
#ifndef PROXYSTREAM_PUBSUB_H
#define PROXYSTREAM_PUBSUB_H

#include <mpi.h>

#include "proxystream/common.h"
#include "proxystream/proxy.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Inline metadata capacity per event (bytes); larger is PXS_ERR_TOO_BIG. */
#define PXS_EVENT_META_MAX 96
/** Reserved topic id: "all topics" in PXS_END results; not usable as a topic. */
#define PXS_TOPIC_ALL 0xFFFFFFFFu
/** Maximum length of a work-sharing group name (excluding NUL). */
#define PXS_GROUP_NAME_MAX 31

/** One received event. */
typedef struct pxs_event {
    pxs_proxy_t proxy;  /**< the object reference (all zero in END records) */
    uint32_t topic;     /**< topic id */
    int32_t producer;   /**< publishing rank in the bus communicator */
    uint64_t seq;       /**< per-(producer, topic) sequence, 0, 1, 2, ... */
    uint32_t meta_len;  /**< bytes used in meta */
    uint32_t reserved_;
    unsigned char meta[PXS_EVENT_META_MAX]; /**< inline metadata */
} pxs_event_t;

/** A subscription: a topic, plainly (group NULL or "") or as a member of a
 *  named work-sharing group (each event goes to exactly one group member).
 *
 *  Prefetch (group members only): the most group events this rank has in
 *  flight at once, counting those waiting in its mailbox and the one it is
 *  still working on (the last group event pxs_subscriber_recv returned: its
 *  credit comes back with the next pxs_subscriber_recv call). A member at its
 *  prefetch count is skipped; the group's events go to members with room, so
 *  a slow member gets fewer events. If every member is full, publishers wait
 *  (backpressure, up to send_timeout). One count per rank: with several group
 *  subscriptions the largest prefetch of them applies to all of them. Plain
 *  subscriptions are bounded only by the mailbox (`slots`). Initialise with
 *  designated initialisers, e.g. {.topic = 7, .group = "workers"}. */
typedef struct pxs_subscription {
    uint32_t topic;
    const char *group;
    uint32_t prefetch; /**< 0 = default: PXS_PREFETCH from the environment, else 2 */
} pxs_subscription_t;

/** Default group prefetch (see pxs_subscription_t). */
#define PXS_PREFETCH_DEFAULT 2

/** Bus options. Initialise with pxs_bus_opts_init(&o). */
typedef struct pxs_bus_opts {
    size_t struct_size;
    const uint32_t *publish;               /**< topics this rank publishes */
    size_t n_publish;
    const pxs_subscription_t *subscribe;   /**< topics this rank receives */
    size_t n_subscribe;
    uint32_t slots;        /**< mailbox slots per rank; 0 = default 1024 (PXS_MAILBOX_SLOTS) */
    uint32_t batch;        /**< events coalesced per destination before an automatic
                                flush; 0 = default 1 (PXS_BATCH) */
    double send_timeout;   /**< backpressure wait in s before PXS_ERR_AGAIN;
                                default 30 (PXS_SEND_TIMEOUT); <0 waits forever */
    uint32_t export_wait;  /**< exported bus (pxs_export): a send on an open
                                topic waits (up to send_timeout, then
                                PXS_ERR_AGAIN) while fewer than this many
                                attaching jobs are registered here; default
                                0 (PXS_EXPORT_WAIT) */
} pxs_bus_opts_t;

typedef struct pxs_bus pxs_bus_t;
typedef struct pxs_publisher pxs_publisher_t;
typedef struct pxs_subscriber pxs_subscriber_t;
typedef struct pxs_inproc_hub pxs_inproc_hub_t;

PXS_API int pxs_bus_opts_init_(pxs_bus_opts_t *opts, size_t size);
/** Fill defaults (reads PXS_* environment overrides). */
#define pxs_bus_opts_init(o) pxs_bus_opts_init_((o), sizeof *(o))

/** Create the MPI mailbox bus. Collective over comm; every rank passes its
 *  own declarations; the routing table is built here. Fails on all ranks if it
 *  fails on one. A window the osc component cannot create (e.g. osc/rdma or
 *  osc/sm across TCP nodes) gives PXS_ERR_MPI with a detail naming the remedy
 *  (--mca osc ucx or pt2pt). Non-UNIFIED windows give PXS_ERR_NOTSUP.
 *  @return PXS_OK, PXS_ERR_INVALID, PXS_ERR_NOMEM, PXS_ERR_MPI, PXS_ERR_NOTSUP. */
PXS_API PXS_NODISCARD int pxs_bus_create(MPI_Comm comm, const pxs_bus_opts_t *opts,
                                         pxs_bus_t **bus_out);

/** In-process hub shared by `participants` buses (threads of one process). */
PXS_API PXS_NODISCARD int pxs_inproc_hub_create(int participants,
                                                pxs_inproc_hub_t **hub_out);
/** Destroy the hub after every bus on it is destroyed (else PXS_ERR_BUSY). */
PXS_API int pxs_inproc_hub_destroy(pxs_inproc_hub_t *hub);
/** Join the hub as participant `index` (0..participants-1; its "rank").
 *  Sends wait until every participant has joined (up to send_timeout). */
PXS_API PXS_NODISCARD int pxs_inproc_bus_create(pxs_inproc_hub_t *hub, int index,
                                                const pxs_bus_opts_t *opts,
                                                pxs_bus_t **bus_out);

/** Destroy a bus (collective for MPI buses: every rank must call it). Events
 *  still queued for this rank are discarded; the objects of events this
 *  rank's publisher discards are given back to their store (one unit of the
 *  resolve budget per discarded copy) when that store is live in this
 *  process and this rank owns them (destroy the bus before the store, from
 *  the thread that uses the store). NULL is a no-op. */
PXS_API int pxs_bus_destroy(pxs_bus_t *bus);

/** The bus's publisher / subscriber (borrowed; valid until pxs_bus_destroy). */
PXS_API PXS_NODISCARD int pxs_bus_publisher(pxs_bus_t *bus, pxs_publisher_t **pub_out);
PXS_API PXS_NODISCARD int pxs_bus_subscriber(pxs_bus_t *bus, pxs_subscriber_t **sub_out);
/** Rank of this bus in its communicator (or its inproc index). */
PXS_API int pxs_bus_rank(const pxs_bus_t *bus);

/** Queue an event for every subscriber of `topic` (one member per group).
 *  Flushes automatically when `batch` events are queued for a destination.
 *  May block on backpressure up to send_timeout. seq_out (may be NULL) gets
 *  the event's sequence number. Local (not collective).
 *  PXS_ERR_AGAIN means this event was not accepted (retrying it never
 *  duplicates); PXS_OK means it was accepted: delivered, or queued (up to
 *  `batch` per destination) for the next send, flush or close to deliver.
 *  @return PXS_OK, PXS_ERR_INVALID, PXS_ERR_NOT_FOUND (topic not declared as
 *  published), PXS_ERR_CLOSED (topic closed), PXS_ERR_TOO_BIG (meta_len >
 *  PXS_EVENT_META_MAX), PXS_ERR_CORRUPT (the proxy does not validate),
 *  PXS_ERR_AGAIN (mailbox full past send_timeout), PXS_ERR_TIMEDOUT
 *  (in-process bus: not every participant joined within send_timeout),
 *  PXS_ERR_BUSY (this publisher is in use by another thread),
 *  PXS_ERR_MPI (the bus is broken: this event was not accepted; see
 *  "Broken bus" below).
 *
 *  Broken bus: an MPI error while moving events marks the bus broken for
 *  good. Every later send, flush, close and recv on this rank returns
 *  PXS_ERR_MPI with the first error's detail, and pxs_bus_destroy still
 *  completes (returning PXS_ERR_MPI). Events accepted before may be lost.
 *  The broken rank also tells every other rank's mailbox (best effort), so
 *  their subscribers stop waiting with PXS_ERR_MPI; if even that cannot
 *  reach them, their waits are bounded only by their recv timeout.
 *  A send whose own event was queued before an automatic flush failed
 *  returns PXS_OK (the event was accepted); the next call reports the error.
 *
 *  Threads: a publisher is used by one thread at a time, a subscriber by one
 *  thread at a time (else PXS_ERR_BUSY). The publisher and the subscriber of
 *  one bus may be used from two threads at once: for an MPI bus this needs
 *  MPI_THREAD_MULTIPLE (else the second side entered gets PXS_ERR_INVALID). */
PXS_API PXS_NODISCARD int pxs_publisher_send(pxs_publisher_t *pub, uint32_t topic,
                                             const pxs_proxy_t *proxy,
                                             const void *meta, size_t meta_len,
                                             uint64_t *seq_out);
/** Deliver every queued event now. @return as pxs_publisher_send. */
PXS_API PXS_NODISCARD int pxs_publisher_flush(pxs_publisher_t *pub);
/** Flush and send END for `topic` to all its subscribers (every group member).
 *  If the events queued before it cannot be delivered in time: PXS_ERR_AGAIN
 *  and the topic stays open. Once END is queued, later sends on the topic
 *  give PXS_ERR_CLOSED; if END itself could not be delivered in time the
 *  call returns PXS_ERR_AGAIN with END still queued, and a retry (or
 *  pxs_publisher_flush) delivers it. After END was delivered, a further close
 *  gives PXS_ERR_CLOSED. @return as pxs_publisher_send. */
PXS_API PXS_NODISCARD int pxs_publisher_close_topic(pxs_publisher_t *pub, uint32_t topic);

/** Receive the next event. timeout in s: 0 polls, <0 waits forever.
 *  @return PXS_OK (event in ev_out), PXS_TIMEOUT (nothing yet),
 *  PXS_END (ev_out->topic is the topic whose last producer just closed; once
 *  every subscribed topic has ended, every call returns PXS_END with topic
 *  PXS_TOPIC_ALL), PXS_ERR_INVALID, PXS_ERR_CORRUPT (malformed record or a
 *  sequence gap), PXS_ERR_BUSY (another thread is in this subscriber),
 *  PXS_ERR_MPI (the bus is broken, see pxs_publisher_send).
 *  A group event's prefetch credit is given back by the next call. */
PXS_API PXS_NODISCARD int pxs_subscriber_recv(pxs_subscriber_t *sub, pxs_event_t *ev_out,
                                              double timeout);

#ifdef __cplusplus
}
#endif
#endif
