/** @file proxystream/store.h
 *  The data plane: a store holds payload bytes on the rank that put them and
 *  hands out proxies; any rank of the store's communicator holding a proxy
 *  can resolve it, and only that rank moves the bytes, straight from the owner.
 *
 *  Connectors: PXS_CONN_RMA (default; MPI window arena, same-node peers read
 *  through MPI shared memory), PXS_CONN_LOCAL (one process, heap arena) and
 *  PXS_CONN_UCX (UCX-registered arena, resolves by ucp_get_nbx; built when
 *  UCX is found, else PXS_ERR_NOTSUP; threads as PXS_CONN_RMA).
 *
 *  Threads: PXS_CONN_RMA: one thread at a time per store handle (and its
 *  requests and views). A call that finds another call on the same handle
 *  still running returns PXS_ERR_BUSY ("store used from two threads at
 *  once") and does nothing; this is a guard against misuse, not a lock to
 *  rely on. Calls from a thread other than the main one need MPI initialised
 *  with MPI_THREAD_SERIALIZED or higher (else PXS_ERR_INVALID, checked with
 *  MPI_Query_thread / MPI_Is_thread_main); different RMA stores used from
 *  different threads at the same time need MPI_THREAD_MULTIPLE (MPI's own
 *  rule; not checked). PXS_CONN_LOCAL: any function may be called from any
 *  thread at once on one handle. */
#ifndef PROXYSTREAM_STORE_H
#define PROXYSTREAM_STORE_H

#include <mpi.h>

#include "proxystream/common.h"
#include "proxystream/proxy.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pxs_store pxs_store_t;
typedef struct pxs_request pxs_request_t;

/** Store options. Initialise with pxs_store_opts_init(&o). */
typedef struct pxs_store_opts {
    size_t struct_size;
    int connector;        /**< enum pxs_connector_kind; 0 = PXS_CONN_RMA */
    size_t arena_bytes;   /**< arena per rank; 0 = default 64 MiB (PXS_ARENA_BYTES) */
    double put_timeout;   /**< wait for arena space before PXS_ERR_AGAIN; default 30 s
                               (PXS_PUT_TIMEOUT); 0 = fail at once; <0 = forever
                               (-2, set by init, means "the default") */
    int shm;              /**< same-node shared-memory path: -1 = auto (default;
                               PXS_SHM=0 turns it off), 0 = off, 1 = on */
    size_t get_chunk;     /**< largest single MPI_Get/memcpy piece; 0 = default
                               (PXS_GET_CHUNK, else 4 MiB) */
    size_t max_objects;   /**< live objects per rank (slot table); 0 = default
                               (PXS_MAX_OBJECTS, else arena_bytes / 4 KiB clamped
                               to [1024, 1M]); a full table is backpressure like
                               a full arena */
    int progress_thread;  /**< PXS_CONN_UCX: a thread that progresses this rank's
                               UCX worker, so network peers' resolves complete
                               while this rank computes or waits in MPI:
                               -1 = PXS_PROGRESS_THREAD (default 0), 0 = off,
                               1 = on. Other connectors ignore it. */
} pxs_store_opts_t;

/** Per-put options. Initialise with pxs_put_opts_init(&o). */
typedef struct pxs_put_opts {
    size_t struct_size;
    uint32_t resolves;   /**< evict after this many resolves; default 1;
                              0 = keep until pxs_store_evict */
    int checksum;        /**< 1 = store a CRC32C, verified on every resolve */
    double timeout;      /**< put timeout in s; default -2 = the store's put_timeout */
    uint32_t topic;      /**< stamped into the proxy (informational) */
    uint64_t seq;        /**< stamped into the proxy (informational) */
} pxs_put_opts_t;

/** A zero-copy view, filled by pxs_store_view, ended by pxs_store_release. */
typedef struct pxs_view {
    const void *data;    /**< read-only until released */
    size_t len;
    void *internal_[4];  /**< library use */
    uint64_t internal_u_[4];
} pxs_view_t;

PXS_API int pxs_store_opts_init_(pxs_store_opts_t *opts, size_t size);
#define pxs_store_opts_init(o) pxs_store_opts_init_((o), sizeof *(o))
PXS_API int pxs_put_opts_init_(pxs_put_opts_t *opts, size_t size);
#define pxs_put_opts_init(o) pxs_put_opts_init_((o), sizeof *(o))

/** Create a store. Collective over comm (PXS_CONN_LOCAL accepts
 *  MPI_COMM_SELF or MPI_COMM_NULL and needs no MPI). Fails on all ranks if it
 *  fails on one, argument errors on some ranks only included. The store
 *  works on its own duplicate of comm: the caller may free comm once create
 *  returns.
 *
 *  Before any window is created, the arenas of all ranks on a node (each
 *  rank's arena plus its control words: they share the node's /dev/shm and
 *  memory) are checked against /dev/shm free space, available memory
 *  (MemAvailable) and finite RLIMIT_AS / RLIMIT_DATA. An arena the node
 *  cannot hold, on any rank, gives PXS_ERR_NOMEM on every rank, with a detail
 *  naming the size and the limit, e.g. "arena of 32 GiB x 2 ranks on this
 *  node (64 GiB) exceeds /dev/shm free space 23.5 GiB" (on the other ranks
 *  followed by "(reported by rank R)"). PXS_MEMORY_CHECK=0 skips the check
 *  (for overcommitted nodes; a failing window allocation may then hang).
 *  @return PXS_OK, PXS_ERR_INVALID, PXS_ERR_NOMEM, PXS_ERR_MPI,
 *  PXS_ERR_NOTSUP (connector not built). */
PXS_API PXS_NODISCARD int pxs_store_create(MPI_Comm comm, const pxs_store_opts_t *opts,
                                           pxs_store_t **store_out);

/** Destroy a store. Collective: no rank frees its arena before every rank
 *  has entered destroy, so a peer's in-flight resolve completes first.
 *  NULL is a no-op.
 *
 *  Busy: when any rank has views or async requests outstanding, destroy
 *  returns PXS_ERR_BUSY on EVERY rank and frees nothing anywhere: the store
 *  stays usable on every rank (the busy rank's detail counts its views and
 *  requests; the others' detail names that rank). Every rank must then call
 *  destroy again, after the busy rank released its views and waited for its
 *  requests; a retry on the busy rank alone would wait for the others:
 *
 *      int rc;
 *      while ((rc = pxs_store_destroy(st)) == PXS_ERR_BUSY) {
 *          release_my_views();      // pxs_store_release, resolve_wait
 *      }
 *
 *  (every rank runs this loop; ranks with nothing outstanding just call
 *  again). One exception, local: a destroy that finds another thread inside
 *  a call on this handle returns PXS_ERR_BUSY on this rank only, before any
 *  collective step; the other ranks wait in destroy until this rank calls
 *  it again. */
PXS_API int pxs_store_destroy(pxs_store_t *store);

/** Copy len bytes into this rank's arena; proxy_out refers to them.
 *  Blocks (with back-off) while the arena is full, up to the timeout.
 *
 *  Space: an object needs ONE contiguous free block of its size rounded up
 *  to 64 B. Free space is the gaps between live objects (at most one gap
 *  more than there are live objects), so free bytes >= size does not mean
 *  it fits; the AGAIN detail says "arena full: need X B, free Y B in N
 *  gap(s), largest free block Z B, ...". Allocation is next-fit around the
 *  arena (a ring for streams). What holds: any object up to the capacity
 *  fits once the arena is empty; a stream of objects of one rounded size S,
 *  reclaimed in put order, keeps floor(capacity / S) in flight (so objects
 *  up to half the capacity overlap, larger ones go one at a time: each
 *  waits until the one before is reclaimed). With mixed sizes, or a
 *  long-lived object (resolves = 0, or one not yet resolved) in the middle,
 *  the free space is split around live objects and the largest object that
 *  fits can be half the free total or less. Practical rule: an arena of at
 *  least twice the largest object, plus whatever is kept.
 *  @return PXS_OK, PXS_ERR_INVALID, PXS_ERR_TOO_BIG (larger than the arena),
 *  PXS_ERR_AGAIN (arena full past the timeout, or the slot table full),
 *  PXS_ERR_BUSY (RMA store used from two threads at once), PXS_ERR_MPI. */
PXS_API PXS_NODISCARD int pxs_store_put(pxs_store_t *store, const void *data, size_t len,
                                        const pxs_put_opts_t *opts,
                                        pxs_proxy_t *proxy_out);

/** Copy the object into buf (cap bytes); len_out gets its size. Counts as one
 *  resolve. @return PXS_OK, PXS_ERR_INVALID, PXS_ERR_CORRUPT (forged proxy or
 *  payload checksum mismatch), PXS_ERR_STALE (evicted or reused, or a proxy
 *  of another store instance: another store, job or run),
 *  PXS_ERR_TRUNC (cap too small: len_out has the size, nothing consumed),
 *  PXS_ERR_BUSY (2^23 resolves/views of this one object already in flight),
 *  PXS_ERR_MPI. */
PXS_API PXS_NODISCARD int pxs_store_resolve(pxs_store_t *store, const pxs_proxy_t *proxy,
                                            void *buf, size_t cap, size_t *len_out);

/** Like resolve, into a new buffer: free *buf_out with pxs_free(). */
PXS_API PXS_NODISCARD int pxs_store_resolve_alloc(pxs_store_t *store,
                                                  const pxs_proxy_t *proxy,
                                                  void **buf_out, size_t *len_out);

/** Zero-copy view on the same node (a copy into a private buffer when the
 *  owner is on another node or shared memory is off). The object is not
 *  reclaimed before pxs_store_release; the view counts as one resolve.
 *  Release each view once (through it or a copy of it): a second release
 *  returns PXS_ERR_INVALID and does nothing. */
PXS_API PXS_NODISCARD int pxs_store_view(pxs_store_t *store, const pxs_proxy_t *proxy,
                                         pxs_view_t *view_out);
PXS_API int pxs_store_release(pxs_store_t *store, pxs_view_t *view);

/** Asynchronous resolve into buf. *req_out is freed by wait, or by test
 *  when it reports done. */
PXS_API PXS_NODISCARD int pxs_store_resolve_start(pxs_store_t *store,
                                                  const pxs_proxy_t *proxy, void *buf,
                                                  size_t cap, pxs_request_t **req_out);
/** Non-blocking: *done_out = 1 when finished (then the return value is the
 *  resolve's status and the request is freed). */
PXS_API PXS_NODISCARD int pxs_store_resolve_test(pxs_request_t *req, int *done_out,
                                                 size_t *len_out);
/** Block until finished; returns the resolve's status; frees the request. */
PXS_API PXS_NODISCARD int pxs_store_resolve_wait(pxs_request_t *req, size_t *len_out);

/** Evict the object now (owner; keep-until-evict objects too), or give up
 *  this holder's claim (non-owner: exactly pxs_store_drop: counts the
 *  resolve budget down by one without reading; a keep-until-evict object is
 *  left alone, only its owner ends it). On the owner's rank this ends the
 *  object for every holder: a consumer there wants pxs_store_drop.
 *  @return PXS_OK, PXS_ERR_INVALID, PXS_ERR_CORRUPT, PXS_ERR_STALE, PXS_ERR_MPI. */
PXS_API PXS_NODISCARD int pxs_store_evict(pxs_store_t *store, const pxs_proxy_t *proxy);

/** Give up one claim on the object without reading it, on any rank
 *  (including the owner's): counts its resolve budget down by one, exactly as
 *  a resolve would; the object is reclaimed when the budget reaches zero.
 *  For keep-until-evict objects (resolves = 0) it does nothing. This is what
 *  a consumer calls for an event it filters out or discards, so that other
 *  holders of the same proxy can still resolve it.
 *  @return PXS_OK, PXS_ERR_INVALID, PXS_ERR_CORRUPT, PXS_ERR_STALE, PXS_ERR_MPI. */
PXS_API PXS_NODISCARD int pxs_store_drop(pxs_store_t *store, const pxs_proxy_t *proxy);

/** Reclaim arena space of objects whose budget ran out (the owner also does
 *  this inside put/evict). Local, non-blocking. */
PXS_API int pxs_store_progress(pxs_store_t *store);

/** Bytes of the arena in use on this rank (after reclaiming). */
PXS_API PXS_NODISCARD int pxs_store_used(pxs_store_t *store, size_t *used_out,
                                         size_t *capacity_out);
/** This store's rank in its communicator. */
PXS_API int pxs_store_rank(const pxs_store_t *store);

#ifdef __cplusplus
}
#endif
#endif
