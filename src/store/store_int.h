/* Store internals: the connector interface (ops table), the front-end handle,
 * the arena allocator shared by the connectors, and test/introspection hooks.
 * Not installed. Tests include it (they see src/). */
#ifndef PXSI_STORE_INT_H
#define PXSI_STORE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "proxystream/store.h"
#include "store/reserve.h"
#include "util/util.h"

#define PXSI_STORE_MAGIC 0x50585353u /* "PXSS" */
#define PXSI_REQ_MAGIC   0x50585352u /* "PXSR" */

#define PXSI_ARENA_ALIGN    64u                 /* every block starts on a cache line */
#define PXSI_COPY_PIECE                                                                            \
    ((size_t)256 << 10) /* memcpy piece: see docs/DESIGN.md, section "Arena and allocator" */
#define PXSI_NONE UINT32_MAX

/* ------------------------------------------------------------ object identity */
/* See docs/DESIGN.md, section "Object identity". A proxy's generation field
 * is slot (24 bits) << 40 | gen (40 bits). gen is odd while the object is
 * live, even when dead or free, and only grows (+2 per reuse of the slot).
 * A slot whose dead gen reaches PXSI_GEN_RETIRE is retired: its arena block
 * is freed but the slot is never handed out again, so a gen never wraps and
 * no old proxy ever names a later object (a slot lives at most 2^39 - 1
 * times). Slots are < 2^24: max_objects is capped at 16M. */
#define PXSI_SLOT_BITS     24
#define PXSI_GEN_BITS      40
#define PXSI_GEN_MASK      (((uint64_t)1 << PXSI_GEN_BITS) - 1)
#define PXSI_GEN_RETIRE    (PXSI_GEN_MASK - 1) /* 2^40 - 2: last dead gen */
#define PXSI_MAX_SLOTS     ((uint64_t)1 << PXSI_SLOT_BITS)
/* Claims (resolves, views, async resolves) in flight on one object: a claim
 * that finds this many already is backed out with PXS_ERR_BUSY, so the
 * 24-bit inflight count of the RMA control word can never carry into the
 * gen (see the bound in docs/DESIGN.md, section "Object identity"). */
#define PXSI_INFLIGHT_BITS  24
#define PXSI_INFLIGHT_MASK  (((uint64_t)1 << PXSI_INFLIGHT_BITS) - 1)
#define PXSI_INFLIGHT_LIMIT ((uint64_t)1 << 23)

static inline uint32_t
pxsi_gen_slot(uint64_t generation)
{
    return (uint32_t)(generation >> PXSI_GEN_BITS);
}
static inline uint64_t
pxsi_gen_gen(uint64_t generation)
{
    return generation & PXSI_GEN_MASK;
}
static inline uint64_t
pxsi_gen_make(uint32_t slot, uint64_t gen)
{
    return (uint64_t)slot << PXSI_GEN_BITS | (gen & PXSI_GEN_MASK);
}

/* ------------------------------------------------------------ allocator */
/* Allocator over the address-ordered list of live blocks: the free space is
 * the gaps between live blocks, so a free coalesces by construction
 * (unlinking a block merges its gap with both neighbours) and an object may be
 * freed in any order. Next-fit from the last allocation (a ring; long-lived
 * objects are simply skipped over), except that a free below the search
 * start moves it back there: gaps freed moments ago (still in cache) are
 * reused, lowest first, before untouched arena. Bounded: the arena never grows; slots (object
 * descriptors) are a fixed table. Not thread-safe. */
typedef struct pxsi_arena {
    uint64_t cap;         /* usable bytes (multiple of PXSI_ARENA_ALIGN) */
    uint32_t nslots;
    uint32_t head;        /* lowest-address live block, PXSI_NONE if none */
    uint32_t rover;       /* search starts in the gap after this block */
    uint64_t since_reclaim; /* bytes allocated since the last early reclaim */
    uint32_t nlive;
    uint32_t nfree;
    uint32_t hwm;         /* highest slot index ever handed out + 1 */
    uint32_t nretired;    /* slots retired for good (generation exhausted) */
    uint64_t used;        /* bytes in live blocks (rounded) */
    uint64_t used_hwm;    /* most bytes ever in live blocks (stats) */
    uint32_t nlent;       /* live lent slots (no block; counted in nlive) */
    uint32_t *prev, *next, *free_stack;
    uint64_t *off, *len;
    uint8_t *lent;        /* [slot] 1: a lent buffer, no arena block */
} pxsi_arena_t;

/* A put's block reclaims dead objects first once this many bytes were
 * allocated since it last did (pxsi_conn_alloc), so the gaps they leave are
 * reused while hot instead of the allocator walking cold arena until it is
 * full (docs/DESIGN.md, section "Arena and allocator"). */
#define PXSI_RECLAIM_EVERY ((uint64_t)1 << 20)

int pxsi_arena_init(pxsi_arena_t *a, uint64_t cap, uint32_t nslots);
void pxsi_arena_fini(pxsi_arena_t *a);
/* Rounded block size for `size` bytes. */
static inline uint64_t
pxsi_arena_need(uint64_t size)
{
    if (size == 0)
        return PXSI_ARENA_ALIGN;
    if (size > UINT64_MAX - PXSI_ARENA_ALIGN)
        return UINT64_MAX;
    return (size + PXSI_ARENA_ALIGN - 1) & ~(uint64_t)(PXSI_ARENA_ALIGN - 1);
}
/* PXS_OK, PXS_ERR_AGAIN (no gap or no slot; nothing changed). */
int pxsi_arena_alloc(pxsi_arena_t *a, uint64_t size, uint32_t *slot_out, uint64_t *off_out);
void pxsi_arena_free(pxsi_arena_t *a, uint32_t slot);
/* A slot without arena bytes for a lent buffer (docs/DESIGN.md, section
 * "Lent buffers"): counted in nlive and hwm like a block, freed and retired
 * the same way. PXS_OK, PXS_ERR_AGAIN (slot table full; nothing changed). */
int pxsi_arena_alloc_lent(pxsi_arena_t *a, uint32_t *slot_out);
/* Free the slot's block but never hand the slot out again (its generation
 * is exhausted: see PXSI_GEN_RETIRE). */
void pxsi_arena_retire(pxsi_arena_t *a, uint32_t slot);
/* Free space as it really is: the number of gaps and the largest one (a put
 * needs one gap of pxsi_arena_need(size) bytes). O(live blocks). */
void pxsi_arena_gaps(const pxsi_arena_t *a, uint32_t *ngaps_out, uint64_t *largest_out);
/* pxsi_err(code, ...) with the "arena full" detail: needed size, free bytes,
 * number of gaps, largest free block (or "slot table full"). */
int pxsi_arena_full_detail(const pxsi_arena_t *a, int code, const char *subsys, uint64_t size,
                           double waited);

/* Page-aligned (4096) memory for what the store hands out (resolve_alloc,
 * a view's private copy), freed with free() / pxs_free; at least 1 byte.
 * NULL when out of memory. See docs/DESIGN.md, section "Remote reads into
 * unaligned buffers". */
void *pxsi_alloc_pages(size_t len);

/* ------------------------------------------------------------ statistics */
typedef struct pxsi_store_stats {
    uint64_t resolves_self;   /* owner resolved its own object (memcpy) */
    uint64_t resolves_shm;    /* same-node peer, memcpy from shared memory */
    uint64_t resolves_rma;    /* MPI_Get */
    uint64_t views_zero_copy;
    uint64_t views_copied;
    uint64_t gets;            /* MPI_Get/Rget calls (chunks) */
    uint64_t claims_local;    /* claims on node-local words (C11 atomics) */
    uint64_t claims_mpi;      /* claims with MPI atomics */
    uint64_t put_waits;       /* puts that had to wait for space */
    uint64_t reclaimed;       /* objects freed */
    double put_wait_seconds;  /* total time those puts waited */
    /* the arena now (filled by pxsi_conn_arena_stats when asked) */
    uint64_t arena_cap, arena_used, arena_hwm, largest_free, objects_live;
    uint64_t lent;            /* put_ref that lent the buffer (no copy) */
    uint64_t lend_copied;     /* put_ref that fell back to a copy (front end) */
    uint64_t spilled;         /* puts that went to the spill store (front end) */
    uint64_t spilled_bytes;
} pxsi_store_stats_t;

/* Paths, for tests and the benchmark. */
enum { PXSI_PATH_SELF = 0, PXSI_PATH_SHM = 1, PXSI_PATH_RMA = 2 };

/* ------------------------------------------------------------ requests */
/* An async resolve. The front end owns the request and the fields above
 * `conn`; a connector that needs state of its own for a request in flight
 * (the RMA connector: the claim and its MPI_Rget requests) allocates it in
 * resolve_start, hangs it on `conn`, and frees it (setting conn to NULL) when
 * it sets done. The front end never looks behind `conn`. */
struct pxs_request {
    uint32_t magic;
    int done;
    int status;
    size_t len;
    pxs_store_t *store;
    pxs_proxy_info_t pi; /* the checked proxy */
    void *buf;
    void *conn;    /* connector-private state, NULL when done */
    char why[400]; /* failed: the cause, kept for test/wait (store.c) */
};

/* ------------------------------------------------------------ connector common */
/* What every connector implements the same way (conn_common.c): budget and
 * keep, slot states with the generation/retire arithmetic, the descriptor
 * checks of a proxy, the payload checksum, the slot-count default. A new
 * connector starts from these (see CONTRIBUTING.md, "Adding a store
 * connector"). `subsys` names the connector in error details. */

/* Budget of a keep object (resolves == 0): never runs out by resolves or
 * drops; only the owner's evict ends it. */
#define PXSI_KEEP_BUDGET ((int64_t)1 << 62)

/* Slot states, the owner's view of a slot (docs/DESIGN.md, section "Object
 * identity"): FREE (gen even, on the free stack), LIVE (gen odd), DYING
 * (killed, gen even, waiting for its claims to go), BROKEN (publication
 * failed after the gen update was issued: never freed or reused), RETIRED
 * (dead gen reached PXSI_GEN_RETIRE: never reused). */
enum {
    PXSI_SLOT_FREE = 0,
    PXSI_SLOT_LIVE = 1,
    PXSI_SLOT_DYING = 2,
    PXSI_SLOT_BROKEN = 3,
    PXSI_SLOT_RETIRED = 4,
    PXSI_SLOT_RESERVED = 5 /* block + slot handed to pxs_store_reserve: gen even
                              (no reader can claim it), never reclaimed */
};

/* The owner's record of a slot's object (a mirror of the descriptor the
 * proxy carries). */
typedef struct pxsi_conn_slot {
    uint64_t gen; /* 40 bits, odd = live; only the owner changes it */
    uint8_t state; /* PXSI_SLOT_* */
    uint8_t evict; /* owner asked for the object to die (RMA) */
    uint16_t flags;
    uint32_t crc;
    uint64_t size;
} pxsi_conn_slot_t;

/* Resolved arena size (rounded down to PXSI_ARENA_ALIGN) and slot count
 * (opts.max_objects, PXS_MAX_OBJECTS, else one slot per 4 KiB of arena,
 * clamped to [1024, 2^20]); PXS_ERR_INVALID when the arena is too small or
 * the count beyond PXSI_MAX_SLOTS. Local. */
int pxsi_conn_sizes(const char *subsys, const pxs_store_opts_t *o, uint64_t *cap_out,
                    uint32_t *nslots_out);
/* Memcpy piece for a get chunk (the smaller of the chunk and PXSI_COPY_PIECE). */
size_t pxsi_conn_piece(size_t chunk);
/* PXS_ERR_TOO_BIG when an object of len bytes can never fit the arena. */
int pxsi_conn_fits(const char *subsys, const pxsi_arena_t *a, size_t len);
/* A put's block: fits (PXS_ERR_TOO_BIG), allocate; when the arena is full,
 * reclaim and retry; then backpressure: back off (w->pause) and reclaim
 * until a block is free or `timeout` s have passed (PXS_ERR_AGAIN with the
 * arena-full detail: pxsi_arena_full_detail). The connector's reclaim and
 * pause (the local connector unlocks its mutex around the pause; the RMA
 * connector's pause calls MPI for its peers' atomics) come in w, set once
 * at create; *w->waits (pxsi_store_stats_t.put_waits) counts the puts that
 * had to wait. */
typedef struct pxsi_conn_waiter {
    int (*reclaim)(void *ctx);
    void (*pause)(void *ctx, pxsi_backoff_t *b);
    void *ctx;
    uint64_t *waits;
    double *wait_seconds; /* pxsi_store_stats_t.put_wait_seconds */
} pxsi_conn_waiter_t;
typedef struct pxsi_conn_block {
    uint32_t slot;
    uint64_t off;
} pxsi_conn_block_t;
int pxsi_conn_alloc(const char *subsys, pxsi_arena_t *a, size_t len, double timeout,
                    const pxsi_conn_waiter_t *w, pxsi_conn_block_t *out);
/* A lent put's slot (no arena bytes): the same reclaim and backpressure
 * as pxsi_conn_alloc while the slot table is full. */
int pxsi_conn_alloc_lent(const char *subsys, pxsi_arena_t *a, double timeout,
                         const pxsi_conn_waiter_t *w, pxsi_conn_block_t *out);
/* The arena part of a connector's stats (capacity, used, high-water,
 * largest free block, live objects). O(live blocks). */
void pxsi_conn_arena_stats(const pxsi_arena_t *a, pxsi_store_stats_t *out);
/* A put's proxy flags and budget from its options. */
static inline uint16_t
pxsi_conn_put_flags(const pxs_put_opts_t *o)
{
    return (uint16_t)((o->checksum ? PXS_PROXY_F_PAYLOAD_CRC : 0) |
                      (o->resolves == 0 ? PXS_PROXY_F_KEEP : 0));
}
static inline int64_t
pxsi_conn_put_budget(const pxs_put_opts_t *o)
{
    return o->resolves ? (int64_t)o->resolves : PXSI_KEEP_BUDGET;
}
/* The object in slot s at offset off is published: the slot becomes LIVE
 * (gen + 1, odd) with the descriptor, and *out gets offset, size,
 * generation, flags, payload_crc and budget. */
void pxsi_conn_publish(pxsi_conn_slot_t *sl, uint32_t s, uint64_t off, size_t len,
                       uint16_t flags, uint32_t crc, const pxs_put_opts_t *o,
                       pxs_proxy_info_t *out);
/* A dead slot whose claims are gone goes back to the arena: freed, or
 * retired for good when its gen reached PXSI_GEN_RETIRE. Sets sl->state. */
void pxsi_conn_free_slot(pxsi_arena_t *a, pxsi_conn_slot_t *sl, uint32_t s, const char *subsys);
/* The descriptor checks every connector makes before touching a slot: the
 * store nonce (PXS_ERR_STALE), the slot against the owner's table of
 * nslots, offset alignment and offset + size against the owner's arena of
 * cap bytes (PXS_ERR_CORRUPT), an even gen (PXS_ERR_STALE). Local. */
int pxsi_conn_check(const char *subsys, const pxs_proxy_info_t *pi, uint64_t nonce,
                    uint32_t nslots, uint64_t cap);
/* Owner side: is the proxy the slot's live object? PXS_ERR_STALE (gone) or
 * PXS_ERR_CORRUPT (descriptor differs); `what` names the call. */
int pxsi_conn_match(const char *subsys, const pxsi_conn_slot_t *sl, uint64_t off,
                    const pxs_proxy_info_t *pi, const char *what);
/* The payload checksum of a flagged object over its bytes (PXS_ERR_CORRUPT). */
int pxsi_conn_crc_check(const char *subsys, const pxs_proxy_info_t *pi, const void *data);
/* Test hook helpers: flip the byte at offset of an arena of cap bytes
 * (PXS_ERR_INVALID beyond it); the "not a free slot" refusal of set_gen. */
int pxsi_conn_corrupt(unsigned char *arena, uint64_t cap, uint64_t offset);
int pxsi_conn_not_free(const char *subsys, uint32_t s);

/* ------------------------------------------------------------ connector ops */
/* Backend ops. The front end has validated the handle, the arguments and the
 * proxy's format, store nonce, kind and owner range (< comm size); backends check
 * what only they know (offset/size against the owner's arena, slot index) and
 * never read out of bounds. Required: create, check, put, resolve, destroy.
 * Every other op is optional: left NULL, the front end (store.c) returns
 * PXS_ERR_NOTSUP with a detail naming the op and the connector, without
 * calling the connector (resolve_start, resolve_test and resolve_wait go
 * together, as do view and release). Naming: pxsi_<iface>_ops_t. */
typedef struct pxsi_store_conn_ops {
    const char *name;
    int kind;
    /* Collective create over the store's own communicator (the front end's
     * duplicate, MPI_ERRORS_RETURN; MPI_COMM_NULL for the local connector;
     * the connector must not free it); on failure *state_out is untouched. */
    int (*create)(MPI_Comm comm, const pxs_store_opts_t *opts, uint64_t nonce,
                  void **state_out);
    /* Bounds of a decoded proxy against the owner's arena/slot table:
     * PXS_OK or PXS_ERR_CORRUPT; the store nonce against the connector's
     * own record of it (PXS_ERR_STALE). Local, no communication. */
    int (*check)(void *st, const pxs_proxy_info_t *pi);
    /* Copy in; fill offset, size, generation, flags, payload_crc, budget. */
    int (*put)(void *st, const void *data, size_t len, const pxs_put_opts_t *o,
               double timeout, pxs_proxy_info_t *info_out);
    int (*resolve)(void *st, const pxs_proxy_info_t *pi, void *buf, size_t cap,
                   size_t *len_out);
    /* Optional (docs/DESIGN.md, section "Lent buffers"): publish the
     * caller's buffer itself (no copy); PXS_ERR_NOTSUP = this store cannot
     * lend (the front end copies instead). ref_test: *done_out = 1 when
     * the owner's lent object is over (gen moved, no claim in flight), so
     * its buffer is never read again; PXS_ERR_INVALID for a proxy that is
     * not this rank's lent object. */
    int (*put_ref)(void *st, const void *data, size_t len, const pxs_put_opts_t *o,
                   double timeout, pxs_proxy_info_t *info_out);
    int (*ref_test)(void *st, const pxs_proxy_info_t *pi, int *done_out);
    /* Optional (docs/DESIGN.md, section "Reserved puts"): reserve = the
     * allocation half of put (block + slot, same backpressure, AGAIN /
     * TOO_BIG); *data_out the block's writable bytes; the slot stays
     * unpublished (gen even) and is never reclaimed. commit = the publish
     * half of put over the len bytes the caller wrote (CRC if asked); on
     * failure it has given the block back (or leaked it as put does when
     * the gen word may be out of step). cancel gives the block back. Left
     * NULL (or reserve's PXS_ERR_NOTSUP): the front end hands out a private
     * buffer and commit puts it. Each block is committed or cancelled once
     * (the front end keeps the table). */
    int (*reserve)(void *st, size_t len, double timeout, pxsi_conn_block_t *blk_out,
                   void **data_out);
    int (*commit)(void *st, const pxsi_conn_block_t *blk, size_t len, const pxs_put_opts_t *o,
                  pxs_proxy_info_t *info_out);
    void (*cancel)(void *st, const pxsi_conn_block_t *blk);
    /* Optional: PXS_OK when this store takes a put of len bytes now, else
     * the error and detail its put would give without touching anything (a
     * store opened read-only, an attached store, a broken file; TOO_BIG
     * beyond the arena): reserve fails with it at once instead of handing
     * out a private buffer whose commit cannot succeed. NULL: every put is
     * possible (or, RMA, the connector's reserve checks it). */
    int (*put_check)(void *st, size_t len);
    /* Start: on PXS_OK the request is in flight or done (req->done). */
    int (*resolve_start)(void *st, const pxs_proxy_info_t *pi, void *buf, size_t cap,
                         pxs_request_t *req);
    /* Test/wait: set req->done/status/len when finished. */
    int (*resolve_test)(void *st, pxs_request_t *req);
    int (*resolve_wait)(void *st, pxs_request_t *req);
    int (*view)(void *st, const pxs_proxy_info_t *pi, pxs_view_t *view_out);
    /* Gets the store's own copy of the view (never the caller's struct),
     * exactly once per successful view. */
    int (*release)(void *st, pxs_view_t *view);
    /* Owner: kill now. Holder: as drop. */
    int (*evict)(void *st, const pxs_proxy_info_t *pi);
    /* One budget unit, any rank; keep objects: validated no-op. */
    int (*drop)(void *st, const pxs_proxy_info_t *pi);
    int (*progress)(void *st);
    int (*used)(void *st, size_t *used_out, size_t *cap_out);
    /* Collective where the connector is; the front end already agreed that
     * no rank is busy. Frees the state. */
    int (*destroy)(void *st);
    /* Introspection for tests: path a resolve of owner's object takes. */
    int (*path)(void *st, int owner);
    void (*stats)(void *st, pxsi_store_stats_t *out);
#ifdef PXS_TEST_HOOKS
    /* Flip one byte of this rank's arena at offset (test hook). */
    int (*corrupt)(void *st, uint64_t offset);
    /* Set the gen (even) of this rank's free slot (test hook). */
    int (*set_gen)(void *st, uint32_t slot, uint64_t gen);
    /* Add n (may be negative) to the claims counted on this rank's slot. */
    int (*add_claims)(void *st, uint32_t slot, int64_t n);
#endif
} pxsi_store_conn_ops_t;

/* The ops of a connector whose functions follow the naming scheme
 * <p>_create, <p>_destroy, <p>_check, <p>_put, ... <p>_stats (and, in
 * test-hook builds, <p>_corrupt, <p>_set_gen, <p>_add_claims): one list of
 * the ops for every connector table; name and kind are given beside it. A
 * connector without some optional op writes its table by hand and leaves
 * that op NULL. */
#ifdef PXS_TEST_HOOKS
#define PXSI_STORE_CONN_TEST_OPS_(p)                                           \
    , .corrupt = p##_corrupt, .set_gen = p##_set_gen, .add_claims = p##_add_claims
#else
#define PXSI_STORE_CONN_TEST_OPS_(p)
#endif
#define PXSI_STORE_CONN_OPS(p)                                                                     \
    .create = p##_create, .destroy = p##_destroy, .check = p##_check, .put = p##_put,              \
    .resolve = p##_resolve, .resolve_start = p##_resolve_start, .resolve_test = p##_resolve_test,  \
    .resolve_wait = p##_resolve_wait, .view = p##_view, .release = p##_release,                    \
    .evict = p##_evict, .drop = p##_drop, .progress = p##_progress, .used = p##_used,              \
    .path = p##_path, .stats = p##_stats PXSI_STORE_CONN_TEST_OPS_(p)

extern const pxsi_store_conn_ops_t pxsi_store_rma_ops;
extern const pxsi_store_conn_ops_t pxsi_store_local_ops;
#ifdef PXS_HAVE_HDF5
extern const pxsi_store_conn_ops_t pxsi_store_hdf5_ops;
#endif
#ifdef PXS_HAVE_UCX
extern const pxsi_store_conn_ops_t pxsi_store_ucx_ops; /* connectors/ucx.c */
/* Export/attach (connectors/ucx.c; docs/DESIGN.md, section "Export and
 * attach"): this rank's contact entry (malloc'd), and the state of an
 * attached store built from every exporting rank's entry (collective over
 * the attaching job's comm, agreed). */
int pxsi_ucx_export_blob(void *st, unsigned char **blob_out, size_t *len_out);
int pxsi_ucx_attach(MPI_Comm comm, uint64_t nonce, int nranks, const unsigned char *const *blob,
                    const size_t *blen, double timeout, void **out);
#endif
/* An attached store's handle over connector state st (attach.c): rank -1
 * (owns nothing), size = the exporting job's. Takes comm (a duplicate). */
int pxsi_store_adopt(MPI_Comm comm, const pxsi_store_conn_ops_t *ops, void *st, uint64_t nonce,
                     int size, pxs_store_t **out);

/* A live view: the store's own copy of what the connector filled in. The
 * caller's pxs_view_t only carries the id (internal_u_[3]) and the store
 * (internal_[3]); release looks the id up here, so releasing a view twice (or
 * a copy of a released view) is PXS_ERR_INVALID and touches nothing. */
typedef struct pxsi_view_rec {
    uint64_t id;
    pxs_view_t v;
} pxsi_view_rec_t;

/* A live reservation (pxs_store_reserve): the store's own record; the
 * caller's pxs_reservation_t carries the magic, the store (internal_[0])
 * and the id (internal_u_[0]); commit/cancel look the id up here and remove
 * it, so a second end (or one through a copy) is PXS_ERR_INVALID. */
typedef struct pxsi_resv_rec {
    uint64_t id;
    void *data;           /* the arena block, or a private page buffer */
    size_t len;
    int in_arena;         /* 1: blk is the connector's; 0: data is ours (free) */
    pxsi_conn_block_t blk;
    pxs_put_opts_t po;    /* reserve's options, resolved */
} pxsi_resv_rec_t;

/* The front-end handle. mu guards outstanding, the view table and next_view
 * (the local connector may be used from several threads at once). in_use is
 * the one-thread-at-a-time guard of RMA stores (store.c, enter/leave): set by
 * atomic_exchange at the entry of every call, cleared on exit (below
 * MPI_THREAD_SERIALIZED only read: one thread may call at all); a call that
 * finds it set returns PXS_ERR_BUSY and touches nothing. */
struct pxs_store {
    uint32_t magic;
    int kind;
    const pxsi_store_conn_ops_t *ops;
    void *st;
    MPI_Comm comm;    /* our duplicate of the user's communicator
                         (MPI_ERRORS_RETURN; freed by destroy), or
                         MPI_COMM_NULL for the local connector */
    int rank, size;
    int nowners;      /* ranks that own objects (proxy owner bound): size,
                         or the producing job's size for pxs_store_open */
    uint64_t nonce;   /* store instance identity: random, agreed at create, never 0 */
    double put_timeout;
    /* pxs_put_opts_init's result, made by the first put (put options have
     * no environment override: the same every time; saves the table walk
     * on every put, issue 15 §3) */
    pxs_put_opts_t put_dflt;
    int put_dflt_ok;
    pthread_mutex_t mu;
    int outstanding;  /* async requests not yet completed on this rank */
    int nviews, vcap; /* live views on this rank: vt[0 .. nviews) */
    pxsi_view_rec_t *vt;
    uint64_t next_view;
    atomic_int in_use;    /* RMA only: a call is running (see above) */
    /* front-end counters (pxs_store_stats): plain fields; the local
     * connector, usable from several threads, updates them under mu */
    struct {
        uint64_t puts, bytes_put, resolves, bytes_resolved, stale, corrupt;
    } fst;
    int thread_level;     /* MPI_Query_thread at create (RMA) */
    /* below MPI_THREAD_SERIALIZED: the thread that created the store, when
     * MPI_Is_thread_main said it is the main one (store.c, enter: saves the
     * MPI call on every entry) */
    pthread_t main_thread;
    int main_known;
    /* the last proxy that passed check_proxy's front-end checks on this
     * handle and its decoded form (RMA kinds only, under the guard; store.c,
     * check_proxy): a proxy equal to it in all 64 bytes decodes the same */
    pxs_proxy_t last_px;
    pxs_proxy_info_t last_pi;
    int last_ok;
    /* spill (opts.spill_path): the HDF5 store a put that does not fit goes
     * to; proxies of its kind and nonce are routed to it (store.c, route) */
    pxs_store_t *spill;
    /* pxs_store_open of several stores: the others, routed to by nonce */
    pxs_store_t **alt;
    int nalt;
    double spill_after;
    uint64_t spilled, spilled_bytes;
    uint64_t lend_copied; /* put_ref that copied (the store cannot lend) */
    /* live reservations on this rank: rt[0 .. nresv) (under mu) */
    int nresv, rcap;
    pxsi_resv_rec_t *rt;
    uint64_t next_resv;
};

/* ------------------------------------------------------------ test / introspection */
/* Path a resolve of an object owned by `owner` takes from this rank
 * (PXSI_PATH_*), or a negative code. */
int pxsi_store_path(pxs_store_t *store, int owner);
/* Counters of this rank's store. */
int pxsi_store_stats(pxs_store_t *store, pxsi_store_stats_t *out);
/* Flip the byte at `offset` of this rank's arena (PXS_TEST_HOOKS builds only;
 * else PXS_ERR_NOTSUP). For the checksum-mismatch test. */
int pxsi_store_test_corrupt(pxs_store_t *store, uint64_t offset);
/* Start this rank's free `slot` at generation `gen` (even, < PXSI_GEN_RETIRE):
 * the next object in that slot gets gen + 1. PXS_TEST_HOOKS builds only (else
 * PXS_ERR_NOTSUP); PXS_ERR_INVALID if the slot is not free or gen is bad.
 * For the generation wrap / slot retirement test. Local. */
int pxsi_store_test_set_gen(pxs_store_t *store, uint32_t slot, uint64_t gen);
/* Add n (may be negative) to the claims in flight counted on this rank's
 * `slot`, as if n resolvers held it (PXS_TEST_HOOKS builds only; else
 * PXS_ERR_NOTSUP). PXS_ERR_INVALID if the count would leave
 * [0, 2^24 - 1]. For the PXSI_INFLIGHT_LIMIT test. Local. */
int pxsi_store_test_add_claims(pxs_store_t *store, uint32_t slot, int64_t n);
/* Replace a live store's ops table with `ops` (same connector state; e.g. a
 * copy of the connector's table with an optional op set NULL) and return
 * the previous table, to be swapped back before destroy. PXS_TEST_HOOKS
 * builds only (else NULL, nothing changed). For the optional-op test. */
const pxsi_store_conn_ops_t *pxsi_store_test_swap_ops(pxs_store_t *store,
                                                      const pxsi_store_conn_ops_t *ops);
/* This store instance's nonce (tests). */
uint64_t pxsi_store_nonce(const pxs_store_t *store);

/* Test hook: hold (1) or clear (0) an RMA store's in-use guard, as a call in
 * another thread would; PXS_ERR_BUSY if asked to hold a held guard. */
int pxsi_store_test_hold(pxs_store_t *store, int hold);

/* Resolved defaults (options, then PXS_* environment). */
size_t pxsi_store_arena_bytes(const pxs_store_opts_t *o);
size_t pxsi_store_get_chunk(const pxs_store_opts_t *o);

#endif
