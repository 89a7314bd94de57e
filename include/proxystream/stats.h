/** @file proxystream/stats.h
 *  Counters of a bus and of a store: one struct per handle, filled by
 *  pxs_bus_stats / pxs_store_stats (the producer's and consumer's are in
 *  proxystream/stream.h). The structs follow the options rule: start with
 *  struct_size, set by the init macro; the library fills only the fields the
 *  caller's struct covers, so a program built against an older, smaller
 *  struct keeps working. Counters are this rank's, since the handle's
 *  create; reading them is local and cheap (a few loads, no MPI; a bus also
 *  looks at its own mailbox for depth_now).
 *
 *  PXS_STATS=1 prints every handle's counters on stderr when it is
 *  destroyed, one line per handle per rank (`pxs[0] stats bus: sent=...`);
 *  PXS_STATS=json prints them as JSON lines (`{"rank":0,"handle":"bus",...}`).
 *  See the README, "Observing a run", and docs/DESIGN.md, section "Logging
 *  and statistics". */
#ifndef PROXYSTREAM_STATS_H
#define PROXYSTREAM_STATS_H

#include "proxystream/common.h"
#include "proxystream/pubsub.h"
#include "proxystream/store.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Work-sharing groups reported per bus (the first ones of this rank's
 *  published topics, in topic order), and members reported per group. */
#define PXS_STATS_GROUPS_MAX  4
#define PXS_STATS_MEMBERS_MAX 16

/** Counters of one bus on this rank. Initialise with pxs_bus_stats_init(&s). */
typedef struct pxs_bus_statistics {
    size_t struct_size;
    int rank;   /**< this bus's rank */
    int broken; /**< 1: the bus is broken (see pxs_publisher_send) */
    /* publisher side */
    uint64_t events_sent;        /**< events accepted by pxs_publisher_send */
    uint64_t records_appended;   /**< records put into mailboxes (one per destination,
                                      ENDs included) */
    uint64_t appends;            /**< append operations (a batch is one) */
    uint64_t ends_sent;          /**< END records queued for delivery (one per destination) */
    uint64_t backpressure_waits; /**< episodes a flush found every target full and waited */
    double backpressure_seconds; /**< total time of those episodes */
    uint32_t topics_published;   /**< topics this rank declared as published */
    uint32_t topics_closed;      /**< of those, closed (END delivered or queued) */
    /* subscriber side */
    uint64_t events_received;   /**< events returned by pxs_subscriber_recv (not ENDs) */
    uint64_t ends_received;     /**< END records received (one per producer and topic) */
    uint32_t topics_subscribed; /**< topics this rank subscribed */
    uint32_t topics_ended;      /**< of those, ended (every producer closed) */
    uint32_t mailbox_slots;     /**< this rank's mailbox (inproc: queue) size; 0 = none */
    uint32_t depth_now;         /**< records waiting in it now */
    uint32_t depth_hwm;         /**< most records seen waiting at a receive (<= slots) */
    uint32_t reserved_;
    /* work sharing (publisher side): events this rank sent to each member */
    uint32_t n_groups; /**< groups reported below (<= PXS_STATS_GROUPS_MAX) */
    uint32_t group_topic[PXS_STATS_GROUPS_MAX];
    uint32_t group_members[PXS_STATS_GROUPS_MAX];                     /**< members (all, even beyond
                                                                           PXS_STATS_MEMBERS_MAX) */
    int32_t group_rank[PXS_STATS_GROUPS_MAX][PXS_STATS_MEMBERS_MAX];  /**< member ranks */
    uint64_t group_sent[PXS_STATS_GROUPS_MAX][PXS_STATS_MEMBERS_MAX]; /**< events sent */
    /* per-event work (docs/DESIGN.md "Scale model"; 0 on an in-process bus) */
    uint64_t rma_atomics;     /**< publisher: remote atomic operations (credits, tickets,
                                   sequence words, group credits) */
    uint64_t rma_flushes;     /**< publisher: MPI_Win_flush calls */
    uint64_t rma_bytes;       /**< publisher: record bytes put into mailboxes */
    uint64_t group_picks;     /**< publisher: work-sharing member choices (flush passes) */
    uint64_t group_probes;    /**< publisher: members probed for them (scan length) */
    uint64_t sub_rma_atomics; /**< subscriber: credit and group-credit returns */
    uint64_t routing_bytes;   /**< routing state this rank keeps (O(its own topics)) */
} pxs_bus_stats_t;

/** Counters of one store on this rank. Initialise with pxs_store_stats_init(&s). */
typedef struct pxs_store_statistics {
    size_t struct_size;
    int rank;
    int connector; /**< enum pxs_connector_kind */
    uint64_t puts; /**< objects put */
    uint64_t bytes_put;
    uint64_t resolves; /**< resolves, views and async resolves that succeeded */
    uint64_t bytes_resolved;
    uint64_t resolves_self;  /**< of this rank's own objects */
    uint64_t resolves_shm;   /**< same-node peers', through shared memory */
    uint64_t resolves_rma;   /**< other nodes' (or with shm off), MPI_Get */
    uint64_t stale;          /**< resolves/views/drops that gave PXS_ERR_STALE */
    uint64_t corrupt;        /**< ... PXS_ERR_CORRUPT */
    uint64_t put_waits;      /**< puts that waited for arena space (backpressure) */
    double put_wait_seconds; /**< total time those puts waited */
    uint64_t arena_bytes;    /**< this rank's arena */
    uint64_t arena_used;     /**< bytes of live objects now (64 B blocks) */
    uint64_t arena_hwm;      /**< most bytes ever live at once */
    uint64_t largest_free;   /**< largest free block now (what one put can get) */
    uint64_t objects_live;   /**< objects in the arena now */
    uint64_t reclaimed;      /**< objects whose space was given back */
    uint64_t spill_objects;  /**< reserved for spilling connectors (0) */
    uint64_t spill_bytes;    /**< reserved (0) */
    uint64_t unspill_bytes;  /**< reserved (0) */
} pxs_store_stats_t;

PXS_API int pxs_bus_stats_init_(pxs_bus_stats_t *s, size_t size);
/** Zero the struct and stamp struct_size. */
#define pxs_bus_stats_init(s) pxs_bus_stats_init_((s), sizeof *(s))
PXS_API int pxs_store_stats_init_(pxs_store_stats_t *s, size_t size);
#define pxs_store_stats_init(s) pxs_store_stats_init_((s), sizeof *(s))

/** This rank's counters of `bus`. Local; not while another thread is inside
 *  the bus's publisher or subscriber (the counters are plain fields of
 *  those sides: the values may be torn, nothing worse).
 *  @return PXS_OK, PXS_ERR_INVALID (bad handle, NULL, struct_size too small). */
PXS_API int pxs_bus_stats(pxs_bus_t *bus, pxs_bus_stats_t *out);
/** This rank's counters of `store`. Local.
 *  @return PXS_OK, PXS_ERR_INVALID, PXS_ERR_BUSY (RMA store used from another
 *  thread at once). */
PXS_API int pxs_store_stats(pxs_store_t *store, pxs_store_stats_t *out);

#ifdef __cplusplus
}
#endif

#endif
