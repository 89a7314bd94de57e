/** @file proxystream/store.h
 *  The data plane: a store holds payload bytes on the rank that put them and
 *  hands out proxies; any rank of the store's communicator holding a proxy
 *  can resolve it, and only that rank moves the bytes, straight from the owner.
 *
 *  Connectors: PXS_CONN_RMA (default; MPI window arena, same-node peers read
 *  through MPI shared memory), PXS_CONN_LOCAL (one process, heap arena) and
 *  PXS_CONN_HDF5 (durable: one HDF5 file per rank in opts.path; objects
 *  outlive the job and resolve in a later one through pxs_store_open; built
 *  when HDF5 is found, else PXS_ERR_NOTSUP). HDF5 objects are always
 *  keep-until-evict with a payload CRC32C (put's `resolves` and `checksum`
 *  are ignored): a resolve budget cannot be counted across jobs.
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
                               (PXS_TIMEOUT_DEFAULT, set by init, means
                               "the default") */
    int shm;              /**< same-node shared-memory path: -1 = auto (default;
                               PXS_SHM=0 turns it off), 0 = off, 1 = on */
    size_t get_chunk;     /**< largest single MPI_Get/memcpy piece; 0 = default
                               (PXS_GET_CHUNK, else 4 MiB) */
    size_t max_objects;   /**< live objects per rank (slot table); 0 = default
                               (PXS_MAX_OBJECTS, else arena_bytes / 4 KiB clamped
                               to [1024, 1M]); a full table is backpressure like
                               a full arena */
    const char *path;     /**< PXS_CONN_HDF5: the store directory (created if
                               missing; its parent must exist); one file per
                               rank, pxs-<nonce>-r<rank>.h5, and a manifest
                               pxs-<nonce>.manifest. Copied at create. */
    int durable;          /**< PXS_CONN_HDF5: when to fsync. Every put is
                               flushed to the OS (readers see it at once);
                               0 = fsync at destroy only (default), 1 = after
                               every put, N > 1 = after every N puts */
    const char *spill_path; /**< PXS_CONN_RMA: spill directory. Set, a put that
                               does not fit the arena (too big, or still full
                               after spill_after s of backpressure) goes to an
                               HDF5 store in this directory instead of failing
                               or blocking; its proxy is an HDF5 proxy, which
                               this store resolves (consumers need not know).
                               Spilled objects are keep-until-evict. NULL
                               (default): no spill. Needs HDF5 in the build
                               (else PXS_ERR_NOTSUP). Collective like create. */
    double spill_after;   /**< seconds of backpressure before a put spills;
                               default 0 (spill at once) */
    int progress_thread;  /**< PXS_CONN_UCX: a thread that progresses this rank's
                               UCX worker, so network peers' resolves complete
                               while this rank computes or waits in MPI:
                               -1 (default) = PXS_PROGRESS_THREAD (default on),
                               1 = on. Other connectors ignore it. */
} pxs_store_opts_t;

/** Per-put options. Initialise with pxs_put_opts_init(&o). */
typedef struct pxs_put_opts {
    size_t struct_size;
    uint32_t resolves;   /**< evict after this many resolves; default 1;
                              0 = keep until pxs_store_evict */
    int checksum;        /**< 1 = store a CRC32C, verified on every resolve */
    double timeout;      /**< put timeout in s; default PXS_TIMEOUT_DEFAULT =
                              the store's put_timeout */
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

/** A reserved put (docs/DESIGN.md, section "Reserved puts"), filled by
 *  pxs_store_reserve, ended by exactly one pxs_store_commit or
 *  pxs_store_cancel. */
typedef struct pxs_reservation {
    void *data;          /**< len writable bytes until commit/cancel: 64 B aligned
                              (8 B in a plain MPI_Win_allocate arena, PXS_SHM=0) */
    size_t len;
    int in_arena;        /**< 1: inside this rank's arena (commit copies nothing);
                              0: a private buffer (commit puts a copy of it) */
    uint32_t internal_magic_; /**< library use */
    void *internal_[2];
    uint64_t internal_u_[2];
} pxs_reservation_t;

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

/** Open a finished (or still running) HDF5 store read-only, e.g. in a later
 *  job: `path` is its pxs-<nonce>.manifest file, or a directory: every
 *  store in it and in its immediate subdirectories is opened, and the one
 *  handle resolves the proxies of all of them (e.g. the durable copies a
 *  stream log keeps with log_bytes). Collective over comm (MPI_COMM_SELF is fine);
 *  fails on every rank together. Proxies the producing job made resolve
 *  here (any rank, any owner); a proxy of another store is PXS_ERR_STALE,
 *  a damaged file PXS_ERR_CORRUPT; in a truncated file every record that
 *  lies wholly before the cut still resolves, the others are
 *  PXS_ERR_CORRUPT with the file and the cut in the detail; a deleted file
 *  PXS_ERR_IO: never
 *  other bytes. put returns PXS_ERR_INVALID; evict and drop only validate.
 *  Destroy with pxs_store_destroy.
 *  @return PXS_OK, PXS_ERR_INVALID, PXS_ERR_NOT_FOUND (no manifest),
 *  PXS_ERR_CORRUPT (bad manifest), PXS_ERR_IO, PXS_ERR_NOTSUP (no HDF5 in
 *  this build), PXS_ERR_MPI. */
PXS_API PXS_NODISCARD int pxs_store_open(MPI_Comm comm, const char *path,
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
 *  arena, restarting at the lowest gap freed since (recently freed,
 *  cache-hot space first); a put reclaims dead objects once per MiB put. What holds: any object up to the capacity
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

/** Reserve len bytes to fill in place (docs/DESIGN.md, section "Reserved
 *  puts"): res->data gets len writable bytes, 64 B aligned. Fill them, then
 *  pxs_store_commit publishes them exactly as pxs_store_put of those bytes
 *  with the same opts would, or pxs_store_cancel gives them back. Until then
 *  the block is this caller's: no reader can name it, nothing reclaims or
 *  reuses it. On PXS_CONN_RMA the block is in this rank's arena
 *  (res->in_arena = 1; commit copies nothing); where the store cannot hand
 *  out arena memory (other connectors, or a spill store when the arena is
 *  full or the object too big for it) res->data is a private page-aligned
 *  buffer (res->in_arena = 0) and commit puts it (spill included) and frees
 *  it. Space and backpressure as put: a full arena waits up to the timeout
 *  (opts->timeout, else the store's put_timeout), then PXS_ERR_AGAIN (for
 *  a private buffer: at its commit); larger than the arena:
 *  PXS_ERR_TOO_BIG at reserve (private buffer included, unless a spill
 *  store takes it). A reservation is ended once:
 *  a second commit or cancel (or one through a copy of the struct), a zeroed
 *  or failed reservation, or one of another store is PXS_ERR_INVALID.
 *  A store that takes no put (opened read-only by pxs_store_open, attached
 *  by pxs_attach, an HDF5 file broken by a failed write) fails the reserve
 *  at once with the error and detail its put gives (PXS_ERR_INVALID,
 *  PXS_ERR_IO). pxs_store_destroy frees reservations still outstanding:
 *  res->data is gone with the store, and a commit or cancel after destroy
 *  is a use of a destroyed handle (undefined, as every call on one). On
 *  failure *res is zeroed.
 *  @return PXS_OK, PXS_ERR_INVALID (NULL res, len 0, bad options, a store
 *  that takes no put), PXS_ERR_IO (a broken HDF5 file),
 *  PXS_ERR_TOO_BIG, PXS_ERR_AGAIN, PXS_ERR_NOMEM, PXS_ERR_BUSY, PXS_ERR_MPI. */
PXS_API PXS_NODISCARD int pxs_store_reserve(pxs_store_t *store, size_t len,
                                            const pxs_put_opts_t *opts,
                                            pxs_reservation_t *res);

/** Publish a reservation's res->len bytes: proxy_out names them. The
 *  reservation is ended whatever the outcome (except PXS_ERR_INVALID for a
 *  bad reservation or a NULL proxy_out, which ends nothing); res->data must
 *  not be written after commit. A private-buffer reservation (in_arena 0)
 *  is put here and may wait for space like a put.
 *  @return as pxs_store_put, and PXS_ERR_INVALID (not a live reservation of
 *  this store). */
PXS_API PXS_NODISCARD int pxs_store_commit(pxs_store_t *store, pxs_reservation_t *res,
                                           pxs_proxy_t *proxy_out);

/** Give a reservation's block back unpublished.
 *  @return PXS_OK, PXS_ERR_INVALID (not a live reservation of this store),
 *  PXS_ERR_BUSY. */
PXS_API int pxs_store_cancel(pxs_store_t *store, pxs_reservation_t *res);

/** Lend buf instead of copying it (docs/DESIGN.md, section "Lent buffers"):
 *  proxy_out names the caller's own bytes, which readers on this node copy
 *  out with cross-memory attach. The caller must not change or free buf
 *  until pxs_store_ref_wait returns PXS_OK for the proxy (every resolver is
 *  done: the budget used up, or the owner evicted it, and no claim in
 *  flight; after that a resolve is PXS_ERR_STALE and buf is never read
 *  again). A lent object takes a slot but no arena bytes; no free slot =
 *  backpressure up to the timeout, like a put.
 *  A store that cannot lend (not every rank on this node, shared memory or
 *  cross-memory attach refused at create, PXS_LEND=0, a connector other than
 *  RMA) copies as pxs_store_put does and sets *lent_out = 0 (buf is free
 *  at once; ref_wait on that proxy is PXS_ERR_INVALID); *lent_out = 1 when
 *  lent. lent_out may be NULL.
 *  @return PXS_OK, PXS_ERR_INVALID (NULL buf or proxy_out, len 0, bad
 *  options), PXS_ERR_AGAIN (slot table full past the timeout), PXS_ERR_BUSY,
 *  PXS_ERR_TOO_BIG (copy fallback), PXS_ERR_MPI. */
PXS_API PXS_NODISCARD int pxs_store_put_ref(pxs_store_t *store, const void *buf, size_t len,
                                            const pxs_put_opts_t *opts,
                                            pxs_proxy_t *proxy_out, int *lent_out);

/** Owner: wait up to timeout s (0 = poll once, < 0 = for ever) until the
 *  lent object of proxy is over and its buffer may be reused.
 *  @return PXS_OK (done), PXS_ERR_AGAIN (still in use at the timeout),
 *  PXS_ERR_INVALID (not a lent proxy, not this rank's, NULL, NaN timeout),
 *  PXS_ERR_STALE (a proxy of another store instance), PXS_ERR_CORRUPT
 *  (a malformed proxy), PXS_ERR_BUSY, PXS_ERR_MPI. */
PXS_API PXS_NODISCARD int pxs_store_ref_wait(pxs_store_t *store, const pxs_proxy_t *proxy,
                                             double timeout);

/** Copy the object into buf (cap bytes); len_out gets its size. Counts as one
 *  resolve. @return PXS_OK, PXS_ERR_INVALID, PXS_ERR_CORRUPT (forged proxy or
 *  payload checksum mismatch), PXS_ERR_STALE (evicted or reused, or a proxy
 *  of another store instance: another store, job or run),
 *  PXS_ERR_TRUNC (cap too small: len_out has the size, nothing consumed),
 *  PXS_ERR_BUSY (2^23 resolves/views of this one object already in flight),
 *  PXS_ERR_MPI. On an error other than TRUNC the contents of buf are
 *  unspecified but never another object's bytes (a remote resolve reads
 *  before it knows and zeroes buf on failure). */
PXS_API PXS_NODISCARD int pxs_store_resolve(pxs_store_t *store, const pxs_proxy_t *proxy,
                                            void *buf, size_t cap, size_t *len_out);

/** Like resolve, into a new page-aligned (4096) buffer: free *buf_out with
 *  pxs_free(). */
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
/** Objects and bytes this rank spilled to its HDF5 spill store (opts.spill_path);
 *  0 without spill. Either output may be NULL. */
PXS_API int pxs_store_spilled(const pxs_store_t *store, uint64_t *objects_out,
                              uint64_t *bytes_out);

/** This store's rank in its communicator. */
PXS_API int pxs_store_rank(const pxs_store_t *store);

#ifdef __cplusplus
}
#endif
#endif
