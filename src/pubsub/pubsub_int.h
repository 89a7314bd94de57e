/* Internal header of the event plane (src/pubsub): interfaces, the shared
 * routing/publisher/subscriber core, and the transport ops every backend
 * (MPI mailbox, in-process queues) provides. Not installed.
 *
 * Layering:
 *   pubsub.c   front end: validates public calls, dispatches through the
 *              pxsi_pub_ops_t / pxsi_sub_ops_t tables in the handles.
 *   core.c     declarations, routing table, publisher queues (batching,
 *              work-sharing groups, END), subscriber validation and END
 *              accounting. Transport-independent.
 *   mailbox.c  MPI one-sided mailbox transport (pxs_bus_create).
 *   inproc.c   mutex/condvar bounded queues (pxs_inproc_bus_create). */
#ifndef PXSI_PUBSUB_INT_H
#define PXSI_PUBSUB_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "proxystream/pubsub.h"
#include "proxystream/stats.h"
#include "proxystream/status.h"
#include "pubsub/pubsub_stream.h"
#include "util/options.h"

/* ---------------------------------------------------------------- interfaces */
typedef struct pxsi_pub_ops {
    int (*send)(void *state, uint32_t topic, const pxs_proxy_t *proxy,
                const void *meta, size_t meta_len, uint64_t *seq_out);
    int (*flush)(void *state);
    int (*close_topic)(void *state, uint32_t topic);
    /* an inline event: the payload rides in the record run (docs/DESIGN.md,
     * "Inline chunks"); PXS_ERR_TOO_BIG when a destination's bound does not
     * allow the run (pxsi_publisher_inline_fits says so first) */
    int (*send_inline)(void *state, uint32_t topic, const void *data, uint32_t len,
                       const void *meta, size_t meta_len, uint64_t *seq_out);
} pxsi_pub_ops_t;
typedef struct pxsi_sub_ops {
    int (*recv)(void *state, pxs_event_t *ev_out, double timeout);
} pxsi_sub_ops_t;

#define PXSI_MAGIC_BUS 0x50425553u /* "PBUS" */
#define PXSI_MAGIC_PUB 0x50505542u /* "PPUB" */
#define PXSI_MAGIC_SUB 0x50535542u /* "PSUB" */
#define PXSI_MAGIC_HUB 0x50485542u /* "PHUB" */

struct pxs_publisher {
    uint32_t magic;
    const pxsi_pub_ops_t *ops;
    void *state;
};
struct pxs_subscriber {
    uint32_t magic;
    const pxsi_sub_ops_t *ops;
    void *state;
    int standalone; /* not inside a bus (the replay subscriber, src/stream/slog.c):
                       pxs_subscriber_recv calls ops->recv without the bus's side guard */
};

/* ---------------------------------------------------------------- records */
/* Wire record (little-endian), one per mailbox slot; the slot's 8-byte
 * sequence word lives in a separate array so a run of k slots is one put and
 * k sequence words are one accumulate.
 *   0 u32 topic        4 i32 producer      8 u64 seq (per producer, topic)
 *  16 u64 link seq (per producer, destination, topic: contiguous even for
 *     work-sharing groups, so gaps are detectable there too)
 *  24 u16 flags       26 u16 meta_len     28 u32 reserved (0)
 *  32 64 B proxy      96 96 B metadata
 * Inline events (docs/DESIGN.md, "Inline chunks"): the head has flag INLINE,
 * reserved = payload length, the proxy field = payload bytes 0..63; then
 * PXSI_INLINE_CONTS(len) continuation records (flag CONT, same topic,
 * producer and seq, their own link seqs, meta_len 0, reserved = index 1..k,
 * 160 payload bytes each from offset 32), appended in the same run. */
#define PXSI_REC_SIZE     192
#define PXSI_REC_F_END    0x0001u
#define PXSI_REC_F_INLINE 0x0002u
#define PXSI_REC_F_CONT   0x0004u
#define PXSI_REC_F_MASK   0x0007u
#define PXSI_INLINE_HEAD  64u  /* payload bytes in the head record */
#define PXSI_INLINE_CONT  160u /* payload bytes per continuation record */
#define PXSI_INLINE_CONTS(len) \
    ((len) <= PXSI_INLINE_HEAD ? 0u : (uint32_t)(((len) - PXSI_INLINE_HEAD + PXSI_INLINE_CONT - 1) / PXSI_INLINE_CONT))
#define PXSI_REC_O_TOPIC  0
#define PXSI_REC_O_PROD   4
#define PXSI_REC_O_SEQ    8
#define PXSI_REC_O_LSEQ   16
#define PXSI_REC_O_FLAGS  24
#define PXSI_REC_O_MLEN   26
#define PXSI_REC_O_RSVD   28
#define PXSI_REC_O_PROXY  32
#define PXSI_REC_O_META   96
_Static_assert(PXSI_REC_O_META + PXS_EVENT_META_MAX == PXSI_REC_SIZE, "record layout");

void pxsi_rec_encode(unsigned char *rec, uint32_t topic, int32_t producer, uint64_t seq,
                     uint64_t lseq, uint16_t flags, const pxs_proxy_t *proxy,
                     const void *meta, uint16_t meta_len);

/* ---------------------------------------------------------------- transport */
/* What a backend provides to the core. Credits are taken before appending:
 * take_credits does not wait for room (got may be 0..want; left_out: free
 * credits seen after taking, a hint for group member choice); with `group`
 * set it also takes as many of the target's group (prefetch) credits, and
 * got is bounded by both; append(n) must only be called with n credits held
 * at target, and never fails for lack of room. Errors are PXS_ERR_MPI (the
 * core then marks the bus broken). */
typedef struct pxsi_xport_ops {
    int (*take_credits)(void *x, int target, uint32_t want, int group, uint32_t *got_out,
                        uint32_t *left_out);
    /* this rank (a group member) is done with n group events: give back n
     * group credits (see docs/DESIGN.md, section "Prefetch"). The core
     * calls it before the next inbox_next, for the group event inbox_next
     * returned last (n <= 1): the mailbox gives it back to that record's
     * ring (docs/DESIGN.md, section "Node ring") */
    int (*give_group)(void *x, uint32_t n);
    /* best effort, after the bus broke on this rank: make other ranks'
     * waits on this bus end (NULL: nothing to do) */
    void (*poison)(void *x);
    int (*append)(void *x, int target, unsigned char *recs, uint32_t n);
    /* optional (NULL: none). The direct path (docs/DESIGN.md "Event path
     * cost"): slot takes one credit at target and gives the ring slot where
     * the next record appended there goes, when this rank writes it there
     * by plain stores (node ring, sole writer); else NULL with nothing
     * taken (no credit, a broken peer, another kind of target: then
     * take_credits and append). The caller encodes the record into the
     * slot and calls commit, which publishes it (as append(1) would
     * have). */
    unsigned char *(*slot)(void *x, int target);
    void (*commit)(void *x, int target);
    /* called now and then while waiting for credits */
    void (*progress)(void *x);
    /* copy the next record of this rank's inbox out and consume it:
     * PXS_OK, PXS_TIMEOUT, or an error */
    int (*inbox_next)(void *x, unsigned char *rec_out, double timeout);
    /* optional (NULL: none): the next record of this rank's node ring in
     * place, consumed (no copy), when it is the record inbox_next would
     * return next; else NULL (then inbox_next). Its slot stays the
     * caller's until peek_done (which may give the slot back as a credit):
     * read it, then call peek_done. */
    const unsigned char *(*peek)(void *x);
    void (*peek_done)(void *x);
    /* optional (NULL: none; only with peek): wait as inbox_next does, up
     * to timeout, until a record is there, and consume nothing: PXS_OK,
     * PXS_TIMEOUT, or an error. The caller then looks with peek (the
     * record read in its slot, no copy out) and else calls inbox_next. */
    int (*wait)(void *x, double timeout);
    /* largest append accepted at target (its ring size); 0: not a mailbox */
    uint32_t (*capacity)(void *x, int target);
    /* records waiting in this rank's inbox now (stats; may be NULL) */
    uint32_t (*depth)(void *x);
} pxsi_xport_ops_t;

/* ---------------------------------------------------------------- declarations */
/* Serialized declarations of one participant (exchanged by allgather or
 * through the inproc hub). */
int pxsi_decl_pack(const pxs_bus_opts_t *o, uint32_t slots, unsigned char **buf_out,
                   size_t *len_out);
/* Validate a bus opts struct's declarations (topics, group names). */
int pxsi_decl_check(const pxs_bus_opts_t *o);
uint32_t pxsi_decl_slots(const unsigned char *decl);

/* ---------------------------------------------------------------- core */
struct pxsi_group {
    char name[PXS_GROUP_NAME_MAX + 1];
    int n;
    int *members;
    /* member choice (docs/DESIGN.md "Scale model"): a binary max-heap of
     * member indices on (known credits, least recently probed first), so a
     * pick and its re-keying cost O(log n), never a scan of the members */
    uint32_t *known; /* [n] free credits last seen at each member */
    uint64_t *stamp; /* [n] when each member was last probed (tie breaker) */
    uint64_t clock;  /* next stamp */
    int *heap;       /* [n] member indices, heap[0] the best */
    int *hpos;       /* [n] position of each member in heap */
    struct pxsi_queue *q;
    uint32_t topic;
    uint64_t *sent;  /* [n] events this rank sent to each member (stats) */
    double log_t;    /* last debug line on member choices (one per second) */
    int skip;        /* across jobs: this send's event goes to an attached
                        member of the same group instead (xport_ucx.c) */
};
/* Per destination rank of a published topic: its link sequence. */
struct pxsi_dest {
    int rank;
    uint64_t lseq; /* next link seq at that rank for this topic */
};
struct pxsi_ptopic {
    uint32_t id;
    pxsi_topic_state_t closed; /* see pubsub/pubsub_stream.h */
    uint64_t next_seq;
    int n_plain;
    int *plain;
    struct pxsi_queue **plainq; /* [n_plain] their direct queues */
    int n_groups;
    struct pxsi_group *groups;
    int n_dests;
    struct pxsi_dest *dests; /* sorted by rank: plain subscribers and group members */
    struct pxsi_dest *dest0; /* dest_of(plain[0]) (NULL: no plain subscriber) */
};
struct pxsi_queue {
    int target;              /* >= 0: a rank; -1: a group (chosen at flush) */
    struct pxsi_group *group;
    uint32_t n, cap;         /* records queued; flush threshold (batch) */
    uint32_t room;           /* records allocated: max(cap, rmax) */
    uint32_t rmax;           /* longest record run allowed to every target of
                                this queue (inline events; docs/DESIGN.md,
                                "Inline chunks") */
    unsigned char *recs;     /* room records */
    uint32_t *tidx;          /* topic index per queued record */
    uint32_t heads;          /* inline heads queued (0: every queued record
                                is a run of its own, queue_prefix walks none) */
    uint32_t held;           /* direct queue: mailbox credits of target taken
                                and not yet used (inline runs; the group
                                queues of topics it is a member of use them
                                too) */
    int dirty;               /* listed in owner->dirty (holds or held records) */
    struct pxsi_core *owner;
};
struct pxsi_link {
    int producer;
    uint64_t lseq_next;
    uint64_t seq_next;
    int ended;
};
struct pxsi_stopic {
    uint32_t id;
    int is_group;
    int n_producers;
    int n_ended;
    struct pxsi_link *links; /* [n_producers] sorted by producer */
    int link_last; /* index of the link received on last (looked at first) */
};
/* The link of producer p on subscribed topic st (NULL: not a declared
 * producer): O(log n_producers) (core.c). */
struct pxsi_link *pxsi_core_link(const struct pxsi_stopic *st, int p);

/* Counters of a bus (pxs_bus_stats): plain fields, the publisher's written
 * by the publishing thread, the subscriber's by the receiving thread. */
struct pxsi_core_stats {
    uint64_t events_sent, records_appended, appends, ends_sent;
    uint64_t bp_waits;
    double bp_seconds;
    uint64_t events_received, ends_received;
    uint32_t depth_hwm; /* written by the transport's inbox_next */
    /* per-event work (docs/DESIGN.md "Scale model"); publisher side, counted
     * by the transport: remote atomics (fetch-and-op, accumulate, get-
     * accumulate), flushes, record bytes put; by the core: group member
     * choices and members probed for them */
    uint64_t atomics, flushes, bytes_put, group_picks, group_probes;
    uint64_t sub_atomics; /* subscriber side: credit returns (atomics) */
    uint64_t routing_bytes; /* routing state kept by this rank (set at init) */
};

struct pxsi_core {
    int rank, size;
    struct pxsi_core_stats st;
    const pxsi_xport_ops_t *xops;
    void *x;
    uint32_t batch;
    double send_timeout;
    /* publisher */
    int n_ptopics;
    struct pxsi_ptopic *ptopics;
    /* routing state is O(what this rank publishes and subscribes), not
     * O(ranks): sorted arrays searched in O(log n) (docs/DESIGN.md "Scale model") */
    int n_direct;
    struct pxsi_queue **direct; /* [n_direct] one per destination rank, sorted by target */
    int n_queues;
    struct pxsi_queue **queues; /* every queue (direct and group) */
    int n_dirty;
    struct pxsi_queue **dirty; /* [n_queues] queues with records (flush_all) */
    int pt_last; /* publisher: index of the topic sent last (looked at first) */
    /* subscriber */
    int n_stopics;
    struct pxsi_stopic *stopics;
    int n_stopics_ended;
    int st_last; /* subscriber: index of the topic received last (looked at first) */
    uint32_t gowed; /* subscriber: group credits to give back at the next recv */
    /* inline events (docs/DESIGN.md, "Inline chunks") */
    int n_publishers;  /* ranks that publish anything (bounds a run) */
    unsigned char *ibuf; /* subscriber: PXSI_INLINE_HARD_MAX reassembly buffer */
    unsigned char *irun; /* publisher: one inline event's record run */
    /* broken bus (sticky, see docs/DESIGN.md "Broken bus"): 0 healthy, 1 the
     * first failure is recording its detail, 2 detail recorded */
    atomic_int broken;
    char broken_detail[400];
    /* across jobs (xport_ucx.c): export_wait of the bus opts (exporting
     * side); join_late: an attached job's subscriber, whose links start at
     * the first event after it registered (sequence numbers need not start
     * at 0) */
    uint32_t export_wait;
    int join_late;
    /* exported bus: a group member's events may come out of order (a
     * detached or dead attached member's events delivered again) */
    int group_redo;
    /* scratch records: one for the publisher side, one for the subscriber
     * side (different handles may be used from different threads) */
    unsigned char srec[PXSI_REC_SIZE];
    unsigned char rrec[PXSI_REC_SIZE];
};

/* The largest group prefetch of a rank's subscriptions (0 = default: the
 * environment's PXS_PREFETCH, else PXS_PREFETCH_DEFAULT); 0 when it is in no
 * group. */
uint32_t pxsi_bus_prefetch(const pxs_bus_opts_t *o);
/* PXS_ERR_MPI with the detail of the failure that broke the bus, or PXS_OK. */
int pxsi_core_check(struct pxsi_core *c);
/* Mark the bus broken (first call wins; its detail is the current thread's
 * last error detail) and poison peers. Returns PXS_ERR_MPI. */
int pxsi_core_break(struct pxsi_core *c);

/* Build from every participant's declarations (decls[r] for r in 0..size-1). */
int pxsi_core_init(struct pxsi_core *c, int rank, int size, unsigned char *const *decls,
                   const pxs_bus_opts_t *o, const pxsi_xport_ops_t *xops, void *x);
void pxsi_core_fini(struct pxsi_core *c);
/* The core's counters and END state into out (rank, slots, depth: the
 * transport's). */
void pxsi_core_stats(const struct pxsi_core *c, pxs_bus_stats_t *out);
/* PXS_STATS at destroy: print a bus's counters (pubsub.c). */
void pxsi_bus_stats_print(const pxs_bus_stats_t *s, int mode);
/* At a bus's destroy (after its last delivery attempt): PXS_STATS output. */
void pxsi_bus_stats_at_destroy(pxs_bus_t *bus);
/* Best-effort delivery of queued records without waiting (used at destroy). */
void pxsi_core_drain_nowait(struct pxsi_core *c);

extern const pxsi_pub_ops_t pxsi_core_pub_ops;
extern const pxsi_sub_ops_t pxsi_core_sub_ops;

/* ---------------------------------------------------------------- bus */
struct pxs_bus {
    uint32_t magic;
    int rank;
    /* thread guards (see docs/DESIGN.md "Threads"): each side is used by one
     * thread at a time; both at once need MPI_THREAD_MULTIPLE on an MPI bus */
    atomic_int pub_in, sub_in;
    int sides_need_multiple; /* MPI bus below MPI_THREAD_MULTIPLE */
    /* MPI bus below MPI_THREAD_SERIALIZED, created on the main thread
     * (pxsi_bus_guard_init): the guard is a load and a thread test, no
     * exchange (docs/DESIGN.md "Event plane: threads") */
    int main_only;
    pthread_t main_thread;
    int (*destroy)(pxs_bus_t *bus);
    /* this rank's counters into a full-size struct (pxs_bus_stats) */
    void (*stats)(pxs_bus_t *bus, pxs_bus_stats_t *out);
    void *backend;
    struct pxs_publisher pub;
    struct pxs_subscriber sub;
};

/* An MPI bus's thread guard state at create, from MPI_Query_thread's
 * level (sets sides_need_multiple and main_only). */
void pxsi_bus_guard_init(pxs_bus_t *bus, int level);

/* Normalise options: defaults, then the caller's struct; 0 = default. */
int pxsi_bus_opts_resolve(const pxs_bus_opts_t *opts, pxs_bus_opts_t *o_out);


/* ---------------------------------------------------------------- across jobs */
/* UCX event transport (xport_ucx.c; docs/DESIGN.md, section "Export and
 * attach"). Registration slots per exporting rank (one per attaching rank
 * attached now; reused after a detach or a death), subscriptions per
 * attaching rank. */
#define PXSI_XBUS_REGS     128
#define PXSI_XBUS_SUBS_MAX 16
#ifdef PXS_HAVE_UCX
extern const pxsi_pub_ops_t pxsi_xexp_pub_ops;
struct pxsi_core *pxsi_xexp_core(void *state);
/* Attached destinations of topic index ti now (plain registrations + groups,
 * each once); no registration is picked up until the next send returns. */
uint32_t pxsi_xexp_fanout(void *state, int ti);
/* Exporting side (pxs_export, local): wrap bus's publisher (routes also to
 * attached registrations picked up in its own calls) using the UCX store
 * state store_st's worker; this rank's contact-file bus entry (malloc). */
int pxsi_xbus_export(pxs_bus_t *bus, void *store_st, uint64_t token, uint32_t attach_slots,
                     unsigned char **blob_out, size_t *len_out);
/* Queue rec (one record, no inline run) for local group gi of topic index
 * ti, for delivery at the next flush (waits up to send_timeout for room). */
int pxsi_core_group_requeue(struct pxsi_core *c, int ti, int gi, const unsigned char *rec);
/* The export failed on another rank: unwrap (no registration can exist). */
void pxsi_xbus_unexport(pxs_bus_t *bus);
/* Attaching side (pxs_attach, collective over comm, a duplicate the bus
 * owns, freed on failure too): register subs at the E exporting ranks
 * (their bus entries ent/elen) through the attached store store_st. */
int pxsi_xbus_attach(MPI_Comm comm, void *store_st, uint64_t token, uint32_t attach_slots, int E,
                     const unsigned char *const *ent, const size_t *elen,
                     const pxs_subscription_t *subs, size_t n_subs, double timeout,
                     pxs_bus_t **bus_out);
#endif

/* ---------------------------------------------------------------- test hooks */
/* Append one raw PXSI_REC_SIZE-byte record to `target`'s mailbox through the
 * normal path (credits, ticket, put, flush, sequence word), bypassing every
 * check: lets tests provoke PXS_ERR_CORRUPT. Local. Only built with
 * PXS_TEST_HOOKS (returns PXS_ERR_NOTSUP on an inproc bus). */
int pxsi_bus_test_inject(pxs_bus_t *bus, int target, const unsigned char *rec);
/* Make the next step `step` of an append on this rank's MPI bus fail as an
 * MPI error would (one shot): 1 credits, 2 ticket (after it is reserved),
 * 3 record put, 4 flush after the put, 5 sequence words. 0 clears. */
enum { PXSI_FAIL_NONE, PXSI_FAIL_CREDITS, PXSI_FAIL_TICKET, PXSI_FAIL_PUT, PXSI_FAIL_FLUSH,
       PXSI_FAIL_SEQ, PXSI_FAIL_N_ };
int pxsi_bus_test_fail(pxs_bus_t *bus, int step);
/* Which ring this rank appends to at `target` on an MPI bus: 1 the node
 * ring (shared memory, docs/DESIGN.md "Node ring"), 0 the MPI ring,
 * PXS_ERR_INVALID (no mailbox there, bad arguments), PXS_ERR_NOTSUP (inproc
 * bus, or built without PXS_TEST_HOOKS). Local. */
int pxsi_bus_test_route(pxs_bus_t *bus, int target);
/* Set (1) or clear (0) a side's in-use flag as if a thread were inside it:
 * side 0 publisher, 1 subscriber. Tests the thread guards deterministically. */
int pxsi_bus_test_hold(pxs_bus_t *bus, int side, int on);

/* ---------------------------------------------------------------- stream accessors */
/* pxsi_publisher_topic / pxsi_publisher_fanout: see pubsub/pubsub_stream.h */
/* In-process bus: its core, once routing exists (waits up to send_timeout). */
int pxsi_inproc_pub_core(pxs_publisher_t *pub, struct pxsi_core **core_out);
/* Bus destroy: give back the objects of the events still queued (discarded). */
void pxsi_core_giveback(struct pxsi_core *c);

#endif
