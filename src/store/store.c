/* Store front end: options, handle and argument validation, proxy decoding,
 * dispatch to the connector ops table (store_int.h).
 *
 * Proxy checks done here, before any connector runs (forged proxies):
 *   format / checksum / version / flags         -> pxs_proxy_decode: PXS_ERR_CORRUPT
 *   store nonce 0 (no store made this proxy)    -> PXS_ERR_CORRUPT
 *   store nonce differs: a proxy of another store
 *     instance (another store, job or run)      -> PXS_ERR_STALE
 *   connector kind differs from this store's    -> PXS_ERR_CORRUPT
 *   owner >= communicator size                  -> PXS_ERR_CORRUPT
 * (an RMA store skips the decode and these checks for a proxy byte-equal to
 * the last one that passed them: check_proxy)
 * and in the connector: offset/size beyond the owner's arena, misaligned
 * offset, slot index beyond the owner's table -> PXS_ERR_CORRUPT; generation
 * not the slot's current one -> PXS_ERR_STALE. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "proxystream/stats.h"
#include "pubsub/inline.h"
#include "store/connectors/hdf5_int.h"
#include "store/registry.h"
#include "store/store_int.h"
#include "util/options.h"
#include "util/stats.h"

#define SUBSYS "store"

/* Front-end counters (pxs_store_stats): plain increments; the local
 * connector may be used from several threads at once, so there under mu. */
#define FST_ADD(s, stmt)                                                       \
    do {                                                                       \
        if ((s)->kind == PXS_CONN_LOCAL) {                                     \
            pthread_mutex_lock(&(s)->mu);                                      \
            stmt;                                                              \
            pthread_mutex_unlock(&(s)->mu);                                    \
        } else {                                                               \
            stmt;                                                              \
        }                                                                      \
    } while (0)

/* A STALE or CORRUPT outcome of a call that names an object: counted, and
 * at debug level logged with the proxy's owner, slot and generation (as far
 * as it decoded). Other codes pass through. */
static int
bad_proxy(pxs_store_t *s, const pxs_proxy_info_t *pi, int rc, const char *what)
{
    if (PXSI_LIKELY(rc != PXS_ERR_STALE && rc != PXS_ERR_CORRUPT))
        return rc;
    if (rc == PXS_ERR_STALE)
        FST_ADD(s, s->fst.stale++);
    else
        FST_ADD(s, s->fst.corrupt++);
    PXSI_DEBUG(SUBSYS,
               "%s: %s proxy: owner %u slot %u gen %llu offset %llu size %llu (store "
               "0x%016llx): %s",
               what, pxs_errname(rc), pi->owner, pxsi_gen_slot(pi->generation),
               (unsigned long long)pxsi_gen_gen(pi->generation), (unsigned long long)pi->offset,
               (unsigned long long)pi->size, (unsigned long long)pi->store_nonce,
               pxs_last_error_detail());
    return rc;
}

/* A resolve (or view) that delivered n bytes. */
static inline void
resolved(pxs_store_t *s, const pxs_proxy_info_t *pi, size_t n)
{
    FST_ADD(s, (s->fst.resolves++, s->fst.bytes_resolved += n));
    PXSI_TRACE(SUBSYS, "resolve owner %u slot %u gen %llu: %zu B", pi->owner,
               pxsi_gen_slot(pi->generation), (unsigned long long)pxsi_gen_gen(pi->generation),
               n);
}

/* ------------------------------------------------------------ options */
int
pxs_store_opts_init_(pxs_store_opts_t *opts, size_t size)
{
    return pxsi_opts_init_from_table(PXSI_OWN_STORE, opts, size, SUBSYS, "pxs_store_opts_init");
}

int
pxs_put_opts_init_(pxs_put_opts_t *opts, size_t size)
{
    return pxsi_opts_init_from_table(PXSI_OWN_PUT, opts, size, SUBSYS, "pxs_put_opts_init");
}

size_t
pxsi_store_arena_bytes(const pxs_store_opts_t *o)
{
    if (o->arena_bytes)
        return o->arena_bytes;
    return (size_t)pxsi_opt_uint(PXSI_OPT_ARENA_BYTES);
}

size_t
pxsi_store_get_chunk(const pxs_store_opts_t *o)
{
    size_t c = o->get_chunk ? o->get_chunk
                            : (size_t)pxsi_opt_uint(PXSI_OPT_GET_CHUNK);
    if (c < PXSI_ARENA_ALIGN)
        c = PXSI_ARENA_ALIGN;
    if (c > ((size_t)1 << 30))
        c = (size_t)1 << 30; /* < INT_MAX: MPI counts are int */
    return c;
}

/* ------------------------------------------------------------ registry */
static const pxsi_store_conn_ops_t *
conn_ops(int kind)
{
    switch (kind) {
    case PXS_CONN_RMA:
        return &pxsi_store_rma_ops;
    case PXS_CONN_LOCAL:
        return &pxsi_store_local_ops;
#ifdef PXS_HAVE_HDF5
    case PXS_CONN_HDF5:
        return &pxsi_store_hdf5_ops;
#endif
#ifdef PXS_HAVE_UCX
    case PXS_CONN_UCX:
        return &pxsi_store_ucx_ops;
#endif
    default:
        return NULL; /* a connector this build does not have */
    }
}

static int
store_ok(const pxs_store_t *s)
{
    return PXSI_HANDLE_OK(s, PXSI_STORE_MAGIC);
}

/* ------------------------------------------------------------ optional ops */
/* Required ops: create, check, put, resolve, destroy. Every other op is
 * optional: NULL -> PXS_ERR_NOTSUP naming the op and the connector, checked
 * here before the connector is called (store_int.h). */
static int
notsup(const pxs_store_t *s, const char *op)
{
    return pxsi_err(PXS_ERR_NOTSUP, SUBSYS, "%s: not supported by the \"%s\" connector", op,
                    s->ops->name);
}
#define NEED_OP(s, op)                                                         \
    do {                                                                       \
        if (!(s)->ops->op)                                                     \
            return notsup((s), #op);                                           \
    } while (0)

/* ------------------------------------------------------------ thread guard */
/* RMA stores allow one thread at a time (MPI windows and the owner's
 * allocator are not thread-safe): with MPI_THREAD_SERIALIZED or more every
 * call takes the in-use flag with atomic_exchange and clears it on exit, so
 * a second thread gets PXS_ERR_BUSY instead of corrupting the store; below
 * that only the main thread may call, and the flag is only read (see
 * enter). The local connector is
 * thread-safe and skips the guard. Where MPI provides less than
 * MPI_THREAD_SERIALIZED, only the main thread may call MPI at all, so a call
 * from another thread is PXS_ERR_INVALID (MPI_Is_thread_main may be called
 * from any thread). A handle that is not a live store is left to the call
 * itself (PXS_ERR_INVALID there). *held says whether leave() is due. */
/* The guard's state at create: MPI's thread level and, below
 * MPI_THREAD_SERIALIZED, whether this (creating) thread is the main one. */
static void
guard_init(pxs_store_t *s, int mpi)
{
    atomic_init(&s->in_use, 0);
    s->thread_level = MPI_THREAD_MULTIPLE;
    s->main_known = 0;
    if (!mpi)
        return;
    MPI_Query_thread(&s->thread_level);
    int is_main = 0;
    if (s->thread_level < MPI_THREAD_SERIALIZED && MPI_Is_thread_main(&is_main) == MPI_SUCCESS &&
        is_main) {
        s->main_thread = pthread_self();
        s->main_known = 1;
    }
}

/* Below MPI_THREAD_SERIALIZED: may this thread call MPI? (the creating
 * main thread without asking MPI; another thread asks MPI_Is_thread_main) */
static int
on_main_thread(const pxs_store_t *s)
{
    if (PXSI_LIKELY(s->main_known && pthread_equal(pthread_self(), s->main_thread)))
        return 1;
    int is_main = 1;
    return !(MPI_Is_thread_main(&is_main) == MPI_SUCCESS && !is_main);
}

/* The whole guard (enter's slow path: errors, another thread, a test
 * hold); kept out of line so that enter's common case inlines. */
PXSI_NOINLINE static int
enter_slow(pxs_store_t *s, const char *what, int *held)
{
    *held = 0;
    if (!store_ok(s) || s->kind == PXS_CONN_LOCAL)
        return PXS_OK;
    if (s->thread_level < MPI_THREAD_SERIALIZED) {
        /* Only the main thread may call at all, so no two calls run at once:
         * a load of the flag (set by pxsi_store_test_hold) replaces the
         * exchange, and the main-thread test refuses every other thread
         * before anything is touched. */
        if (atomic_load_explicit(&s->in_use, memory_order_acquire))
            return pxsi_err(PXS_ERR_BUSY, SUBSYS,
                            "%s: store used from two threads at once (RMA stores allow one "
                            "thread at a time)",
                            what);
        if (!on_main_thread(s))
            return pxsi_err(PXS_ERR_INVALID, SUBSYS,
                            "%s: called from a thread other than the main one, but MPI provides "
                            "only %s (initialise MPI with MPI_THREAD_SERIALIZED or higher to use "
                            "an RMA store from other threads, one at a time)",
                            what,
                            s->thread_level == MPI_THREAD_FUNNELED ? "MPI_THREAD_FUNNELED"
                                                                   : "MPI_THREAD_SINGLE");
        return PXS_OK;
    }
    if (atomic_exchange_explicit(&s->in_use, 1, memory_order_acquire))
        return pxsi_err(PXS_ERR_BUSY, SUBSYS,
                        "%s: store used from two threads at once (RMA stores allow one thread "
                        "at a time)",
                        what);
    *held = 1;
    return PXS_OK;
}

/* The common case inline: a live RMA store, the flag free and, below
 * MPI_THREAD_SERIALIZED, the creating main thread; anything else (and every
 * error) takes enter_slow, which decides as before. */
static inline int
enter(pxs_store_t *s, const char *what, int *held)
{
    *held = 0;
    if (!store_ok(s) || s->kind == PXS_CONN_LOCAL)
        return PXS_OK;
    if (s->thread_level >= MPI_THREAD_SERIALIZED) {
        if (PXSI_LIKELY(!atomic_exchange_explicit(&s->in_use, 1, memory_order_acquire))) {
            *held = 1;
            return PXS_OK;
        }
    } else if (PXSI_LIKELY(!atomic_load_explicit(&s->in_use, memory_order_acquire) &&
                           s->main_known && pthread_equal(pthread_self(), s->main_thread))) {
        return PXS_OK;
    }
    return enter_slow(s, what, held);
}

static inline void
leave(pxs_store_t *s, int held)
{
    if (held)
        atomic_store_explicit(&s->in_use, 0, memory_order_release);
}

int
pxsi_store_test_hold(pxs_store_t *s, int hold)
{
    if (!store_ok(s) || s->kind == PXS_CONN_LOCAL)
        return PXS_ERR_INVALID;
    if (!hold) {
        atomic_store_explicit(&s->in_use, 0, memory_order_release);
        return PXS_OK;
    }
    if (atomic_exchange_explicit(&s->in_use, 1, memory_order_acquire))
        return pxsi_err(PXS_ERR_BUSY, SUBSYS, "test hold: already in use");
    return PXS_OK;
}

/* ------------------------------------------------------------ create / destroy */
int
pxs_store_create(MPI_Comm comm, const pxs_store_opts_t *opts, pxs_store_t **store_out)
{
    pxs_store_opts_t o;
    int rc = pxs_store_opts_init(&o);
    if (rc)
        return rc;
    int local_rc = PXS_OK;
    if ((rc = pxsi_opts_take(&o, sizeof o, opts)) != PXS_OK)
        local_rc = rc;
    if (o.connector == PXS_CONN_NONE)
        o.connector = PXS_CONN_RMA;
    int kind = o.connector;
    int is_local = kind == PXS_CONN_LOCAL;

    /* Only what makes agreement impossible returns at once (no usable
     * communicator); every other argument error is agreed over comm, so that
     * ranks passing different arguments all fail instead of hanging. */
    if (!is_local && comm == MPI_COMM_NULL)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "MPI_COMM_NULL needs the local connector");
    int initialized = 0, finalized = 0;
    if (comm != MPI_COMM_NULL) {
        MPI_Initialized(&initialized);
        MPI_Finalized(&finalized);
        if (!initialized || finalized)
            return pxsi_err(PXS_ERR_INVALID, SUBSYS, "MPI is not initialised (or finalised)");
    }
    int rank = 0, size = 1;
    if (comm != MPI_COMM_NULL) {
        if (MPI_Comm_rank(comm, &rank) != MPI_SUCCESS ||
            MPI_Comm_size(comm, &size) != MPI_SUCCESS)
            return pxsi_err(PXS_ERR_INVALID, SUBSYS, "invalid communicator");
    }
    /* a local store on a multi-rank communicator still agrees (and fails),
     * in case another rank asked for a collective connector */
    int collective = !is_local || size > 1;

    const pxsi_store_conn_ops_t *ops = conn_ops(kind);
    if (local_rc == PXS_OK && !store_out)
        local_rc = pxsi_err(PXS_ERR_INVALID, SUBSYS, "store_out is NULL");
    if (local_rc == PXS_OK && is_local && size != 1)
        local_rc = pxsi_err(PXS_ERR_INVALID, SUBSYS,
                            "the local connector needs MPI_COMM_SELF or MPI_COMM_NULL");
    if (local_rc == PXS_OK && kind < 0)
        local_rc = pxsi_err(PXS_ERR_INVALID, SUBSYS, "unknown connector %d", kind);
    else if (local_rc == PXS_OK && !ops)
        local_rc = pxsi_err(kind > 0 && kind < PXS_CONN_MAX_ ? PXS_ERR_NOTSUP
                                                             : PXS_ERR_INVALID,
                            SUBSYS, "connector %d is not built in this library", kind);
    if (local_rc == PXS_OK && o.put_timeout != PXS_TIMEOUT_DEFAULT &&
        o.put_timeout != o.put_timeout)
        local_rc = pxsi_err(PXS_ERR_INVALID, SUBSYS, "put_timeout is NaN");
    if (local_rc == PXS_OK && (o.shm < -1 || o.shm > 1))
        local_rc = pxsi_err(PXS_ERR_INVALID, SUBSYS, "shm must be -1, 0 or 1");
    if (local_rc == PXS_OK && o.spill_path && kind != PXS_CONN_RMA)
        local_rc = pxsi_err(PXS_ERR_INVALID, SUBSYS, "spill_path needs the RMA connector");
    if (local_rc == PXS_OK && o.spill_path && !(o.spill_after >= 0))
        local_rc = pxsi_err(PXS_ERR_INVALID, SUBSYS, "spill_after must be >= 0");
#ifndef PXS_HAVE_HDF5
    if (local_rc == PXS_OK && o.spill_path)
        local_rc = pxsi_err(PXS_ERR_NOTSUP, SUBSYS, "spill_path: this library was built without HDF5");
#endif
    if (local_rc == PXS_OK && (o.progress_thread < -1 || o.progress_thread > 1))
        local_rc = pxsi_err(PXS_ERR_INVALID, SUBSYS, "progress_thread must be -1, 0 or 1");
    rc = collective ? pxsi_agree(comm, local_rc) : local_rc;
    if (rc)
        return rc;

    /* The handle, and for a collective store our own duplicate of comm
     * (MPI_ERRORS_RETURN): the user may free theirs once create returns.
     * Agreed over the user's comm, the last use of it. */
    pxs_store_t *s = calloc(1, sizeof *s);
    rc = s ? PXS_OK : pxsi_err(PXS_ERR_NOMEM, SUBSYS, "store handle");
    if (rc == PXS_OK && pthread_mutex_init(&s->mu, NULL) != 0) {
        free(s);
        s = NULL;
        rc = pxsi_err(PXS_ERR_NOMEM, SUBSYS, "store mutex");
    }
    MPI_Comm dup = MPI_COMM_NULL;
    if (collective) {
        int mrc = MPI_Comm_dup(comm, &dup);
        if (mrc != MPI_SUCCESS)
            dup = MPI_COMM_NULL;
        else
            mrc = MPI_Comm_set_errhandler(dup, MPI_ERRORS_RETURN);
        if (rc == PXS_OK)
            rc = pxsi_mpi_err(mrc, SUBSYS, "MPI_Comm_dup");
        rc = pxsi_agree(comm, rc);
    }
    if (rc) {
        /* a dup that succeeded here but not everywhere cannot be freed
         * collectively: leak it rather than risk a hang */
        if (s)
            pthread_mutex_destroy(&s->mu);
        free(s);
        return rc;
    }

    /* The store instance's identity: a random nonce drawn on rank 0 and
     * broadcast (see docs/DESIGN.md, section "Object identity"). A failed
     * draw still takes part in the broadcast; the agreement fails all. */
    uint64_t nonce = 0;
    int nrc = !collective || rank == 0 ? pxsi_random_u64(&nonce) : PXS_OK;
    if (collective) {
        int mrc = MPI_Bcast(&nonce, 1, MPI_UINT64_T, 0, dup);
        if (nrc == PXS_OK)
            nrc = pxsi_mpi_err(mrc, SUBSYS, "MPI_Bcast (store nonce)");
        if (nrc == PXS_OK && nonce == 0)
            nrc = pxsi_err(PXS_ERR_NOTSUP, SUBSYS, "store nonce: rank 0 drew no random nonce");
        rc = pxsi_agree(dup, nrc);
    } else {
        rc = nrc;
    }
    if (rc == PXS_OK) {
        s->kind = kind;
        s->ops = ops;
        s->comm = dup;
        s->rank = rank;
        s->size = size;
        s->nowners = size;
        s->nonce = nonce;
        guard_init(s, !is_local);
        s->put_timeout = o.put_timeout == PXS_TIMEOUT_DEFAULT
                             ? pxsi_opt_double(PXSI_OPT_PUT_TIMEOUT)
                             : o.put_timeout;
        rc = ops->create(dup, &o, nonce, &s->st); /* collective, agrees itself */
    }
    if (rc) {
        if (dup != MPI_COMM_NULL)
            MPI_Comm_free(&dup); /* every rank has it: agreed above */
        pthread_mutex_destroy(&s->mu);
        free(s);
        return rc;
    }
    s->magic = PXSI_STORE_MAGIC;
    if (o.spill_path) {
        /* the spill store: an HDF5 store on the same ranks (collective,
         * agreed inside); failing, the RMA store goes again (collective) */
        pxs_store_opts_t ho;
        (void)pxs_store_opts_init(&ho);
        ho.connector = PXS_CONN_HDF5;
        ho.path = o.spill_path;
        rc = pxs_store_create(s->comm, &ho, &s->spill);
        if (rc) {
            s->spill = NULL;
            (void)pxsi_err_prefix(rc, SUBSYS, "spill store in \"%s\"", o.spill_path);
            char why[512];
            snprintf(why, sizeof why, "%s", pxs_last_error_detail());
            (void)pxs_store_destroy(s);
            return pxsi_err(rc, SUBSYS, "%s", strncmp(why, SUBSYS ": ", 7) == 0 ? why + 7 : why);
        }
        s->spill_after = o.spill_after;
    }
    pxsi_store_register(s); /* registry.c: bus destroy gives objects back */
    *store_out = s;
    return PXS_OK;
}

/* ------------------------------------------------------------ stats */
static void
store_stats_full(pxs_store_t *s, pxs_store_stats_t *f)
{
    memset(f, 0, sizeof *f);
    f->struct_size = sizeof *f;
    f->rank = s->rank;
    f->connector = s->kind;
    pxsi_store_stats_t cs;
    memset(&cs, 0, sizeof cs);
    if (s->ops->stats)
        s->ops->stats(s->st, &cs);
    if (s->kind == PXS_CONN_LOCAL)
        pthread_mutex_lock(&s->mu);
    f->puts = s->fst.puts;
    f->bytes_put = s->fst.bytes_put;
    f->resolves = s->fst.resolves;
    f->bytes_resolved = s->fst.bytes_resolved;
    f->stale = s->fst.stale;
    f->corrupt = s->fst.corrupt;
    if (s->kind == PXS_CONN_LOCAL)
        pthread_mutex_unlock(&s->mu);
    f->resolves_self = cs.resolves_self;
    f->resolves_shm = cs.resolves_shm;
    f->resolves_rma = cs.resolves_rma;
    f->put_waits = cs.put_waits;
    f->put_wait_seconds = cs.put_wait_seconds;
    f->arena_bytes = cs.arena_cap;
    f->arena_used = cs.arena_used;
    f->arena_hwm = cs.arena_hwm;
    f->largest_free = cs.largest_free;
    f->objects_live = cs.objects_live;
    f->reclaimed = cs.reclaimed;
    f->spill_objects = s->spilled;
    f->spill_bytes = s->spilled_bytes;
}

static void
store_stats_print(const pxs_store_stats_t *f, int mode)
{
    pxsi_statline_t l;
    pxsi_sl_begin(&l, mode, "store");
    pxsi_sl_i64(&l, "store_rank", f->rank);
    pxsi_sl_i64(&l, "connector", f->connector);
    pxsi_sl_u64(&l, "puts", f->puts);
    pxsi_sl_u64(&l, "bytes_put", f->bytes_put);
    pxsi_sl_u64(&l, "resolves", f->resolves);
    pxsi_sl_u64(&l, "bytes_resolved", f->bytes_resolved);
    pxsi_sl_u64(&l, "self", f->resolves_self);
    pxsi_sl_u64(&l, "shm", f->resolves_shm);
    pxsi_sl_u64(&l, "rma", f->resolves_rma);
    pxsi_sl_u64(&l, "stale", f->stale);
    pxsi_sl_u64(&l, "corrupt", f->corrupt);
    pxsi_sl_u64(&l, "put_waits", f->put_waits);
    pxsi_sl_dbl(&l, "put_wait_seconds", f->put_wait_seconds);
    pxsi_sl_u64(&l, "arena", f->arena_bytes);
    pxsi_sl_u64(&l, "used", f->arena_used);
    pxsi_sl_u64(&l, "used_hwm", f->arena_hwm);
    pxsi_sl_u64(&l, "largest_free", f->largest_free);
    pxsi_sl_u64(&l, "live", f->objects_live);
    pxsi_sl_u64(&l, "reclaimed", f->reclaimed);
    pxsi_sl_u64(&l, "spill_objects", f->spill_objects);
    pxsi_sl_u64(&l, "spill_bytes", f->spill_bytes);
    pxsi_sl_end(&l);
}

int
pxs_store_stats_init_(pxs_store_stats_t *st, size_t size)
{
    return pxsi_stats_init(st, size, SUBSYS, "pxs_store_stats_init");
}

static int
store_stats(pxs_store_t *s, pxs_store_stats_t *out)
{
    if (!store_ok(s))
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "stats: not a live store handle");
    int rc = pxsi_stats_check(out, SUBSYS, "pxs_store_stats");
    if (rc)
        return rc;
    pxs_store_stats_t full;
    store_stats_full(s, &full);
    pxsi_stats_copy(out, &full, sizeof full);
    return PXS_OK;
}
#ifdef PXS_HAVE_HDF5
/* One finished HDF5 store (its manifest `mpath`), read-only. Collective. */
static int
open_one(MPI_Comm comm, int rank, int size, const char *mpath, pxs_store_t **out)
{
    pxs_store_t *s = calloc(1, sizeof *s);
    int rc = s ? PXS_OK : pxsi_err(PXS_ERR_NOMEM, SUBSYS, "store handle");
    if (rc == PXS_OK && pthread_mutex_init(&s->mu, NULL) != 0) {
        free(s);
        s = NULL;
        rc = pxsi_err(PXS_ERR_NOMEM, SUBSYS, "store mutex");
    }
    MPI_Comm dup = MPI_COMM_NULL;
    int mrc = MPI_Comm_dup(comm, &dup);
    if (mrc != MPI_SUCCESS)
        dup = MPI_COMM_NULL;
    else
        mrc = MPI_Comm_set_errhandler(dup, MPI_ERRORS_RETURN);
    if (rc == PXS_OK)
        rc = pxsi_mpi_err(mrc, SUBSYS, "MPI_Comm_dup");
    rc = pxsi_agree(comm, rc);
    uint64_t nonce = 0;
    int nowners = 0;
    void *st = NULL;
    if (rc == PXS_OK)
        rc = pxsi_h5_open(dup, mpath, &nonce, &nowners, &st); /* collective, agreed */
    if (rc) {
        if (dup != MPI_COMM_NULL && rc != PXS_ERR_MPI)
            MPI_Comm_free(&dup);
        if (s)
            pthread_mutex_destroy(&s->mu);
        free(s);
        return rc;
    }
    s->kind = PXS_CONN_HDF5;
    s->ops = &pxsi_store_hdf5_ops;
    s->st = st;
    s->comm = dup;
    s->rank = rank;
    s->size = size;
    s->nowners = nowners;
    s->nonce = nonce;
    guard_init(s, 1);
    s->put_timeout = 0;
    s->magic = PXSI_STORE_MAGIC;
    pxsi_store_register(s);
    *out = s;
    return PXS_OK;
}
#endif

/* Finished HDF5 stores, read-only (docs/DESIGN.md, section "HDF5
 * connector"): every manifest at `path`; the first is the handle's own
 * store, the others are routed to by their nonce (route). */
int
pxs_store_open(MPI_Comm comm, const char *path, pxs_store_t **store_out)
{
    if (comm == MPI_COMM_NULL)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "open: MPI_COMM_NULL");
    int initialized = 0, finalized = 0;
    MPI_Initialized(&initialized);
    MPI_Finalized(&finalized);
    if (!initialized || finalized)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "open: MPI is not initialised (or finalised)");
    int rank = 0, size = 1;
    if (MPI_Comm_rank(comm, &rank) != MPI_SUCCESS || MPI_Comm_size(comm, &size) != MPI_SUCCESS)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "open: invalid communicator");
    int rc = PXS_OK;
    if (!store_out || !path)
        rc = pxsi_err(PXS_ERR_INVALID, SUBSYS, "open: NULL %s", path ? "store_out" : "path");
#ifndef PXS_HAVE_HDF5
    if (rc == PXS_OK)
        rc = pxsi_err(PXS_ERR_NOTSUP, SUBSYS, "open: the HDF5 connector is not built in this library");
    return pxsi_agree_why(comm, rc);
#else
    enum { LIST = 1 << 16 };
    char *list = calloc(1, LIST);
    int n = 0;
    if (rc == PXS_OK && !list)
        rc = pxsi_err(PXS_ERR_NOMEM, SUBSYS, "open: manifest list");
    if (rc == PXS_OK && rank == 0)
        rc = pxsi_h5_manifests(path, list, LIST, &n);
    if ((rc = pxsi_agree_why(comm, rc)) != PXS_OK) {
        free(list);
        return rc;
    }
    int mrc = MPI_Bcast(&n, 1, MPI_INT, 0, comm);
    if (mrc == MPI_SUCCESS)
        mrc = MPI_Bcast(list, LIST, MPI_CHAR, 0, comm);
    if ((rc = pxsi_agree_why(comm, pxsi_mpi_err(mrc, SUBSYS, "MPI_Bcast (manifests)"))) != PXS_OK) {
        free(list);
        return rc;
    }
    pxs_store_t *first = NULL;
    char *save = NULL;
    int k = 0;
    for (char *m = strtok_r(list, "\n", &save); m; m = strtok_r(NULL, "\n", &save), k++) {
        pxs_store_t *o = NULL;
        rc = open_one(comm, rank, size, m, &o); /* collective, agreed */
        if (rc)
            break;
        if (!first) {
            first = o;
            continue;
        }
        pxs_store_t **na = realloc(first->alt, (size_t)(first->nalt + 1) * sizeof *na);
        rc = pxsi_agree(comm, na ? PXS_OK : pxsi_err(PXS_ERR_NOMEM, SUBSYS, "open: store list"));
        if (na)
            first->alt = na;
        if (rc) {
            (void)pxs_store_destroy(o);
            break;
        }
        first->alt[first->nalt++] = o;
    }
    free(list);
    if (rc) {
        if (first)
            (void)pxs_store_destroy(first); /* and its alternates; collective */
        return rc;
    }
    (void)k;
    *store_out = first;
    return PXS_OK;
#endif
}

int
pxs_store_destroy(pxs_store_t *s)
{
    if (!s)
        return PXS_OK;
    if (!store_ok(s))
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "destroy: not a live store handle");
    /* another thread inside a call on this rank: a local error before any
     * collective step (the peers wait in the agreement below for this rank
     * to call destroy again) */
    int held = 0;
    int rc = enter(s, "destroy", &held);
    if (rc)
        return rc;
    pthread_mutex_lock(&s->mu);
    int nout = s->outstanding, nv = s->nviews;
    pthread_mutex_unlock(&s->mu);
    for (int i = -1; i < s->nalt; i++) { /* the spill store's and the
                                          * alternates' views and requests
                                          * count as ours */
        pxs_store_t *o = i < 0 ? s->spill : s->alt[i];
        if (!o)
            continue;
        pthread_mutex_lock(&o->mu);
        nout += o->outstanding;
        nv += o->nviews;
        pthread_mutex_unlock(&o->mu);
    }
    int busy = (nout || nv) ? pxsi_err(PXS_ERR_BUSY, SUBSYS,
                                       "destroy: rank %d has %d view(s) and %d async request(s) "
                                       "outstanding; the store stays usable on every rank: "
                                       "release/complete them, then every rank calls "
                                       "pxs_store_destroy again",
                                       s->rank, nv, nout)
                            : PXS_OK;
    /* The rule: nobody frees before everybody has entered destroy with no
     * outstanding work. Every resolve is complete when its call (or its
     * wait/test) returns, so once this agreement returns on any rank, no rank
     * reads any arena any more. A busy rank makes EVERY rank return BUSY
     * (with the busy rank's count in the detail) and nothing is freed
     * anywhere: every rank calls destroy again (store.h). Agreed over our
     * own communicator: the user's may be gone. */
    rc = s->comm == MPI_COMM_NULL ? busy : pxsi_agree_why(s->comm, busy);
    if (rc) {
        leave(s, held);
        return rc;
    }
    pxsi_store_unregister(s);
    int smode = pxsi_stats_mode();
    if (smode != PXSI_STATS_OFF) {
        pxs_store_stats_t full;
        store_stats_full(s, &full);
        store_stats_print(&full, smode);
    }
    if (s->spill) {
        int src = pxs_store_destroy(s->spill); /* collective, nothing outstanding */
        s->spill = NULL;
        if (src)
            PXSI_WARN(SUBSYS, "destroy of the spill store: %s", pxs_last_error_detail());
    }
    for (int i = 0; i < s->nalt; i++)
        (void)pxs_store_destroy(s->alt[i]); /* collective, read-only */
    free(s->alt);
    s->alt = NULL;
    s->nalt = 0;
    for (int i = 0; i < s->nresv; i++) {
        /* outstanding reservations: arena blocks go with the arena */
        if (s->rt[i].in_arena)
            s->ops->cancel(s->st, &s->rt[i].blk);
        else
            free(s->rt[i].data);
    }
    if (s->nresv)
        PXSI_DEBUG(SUBSYS, "destroy: %d reservation(s) outstanding, freed", s->nresv);
    free(s->rt);
    s->rt = NULL;
    s->nresv = 0;
    rc = s->ops->destroy(s->st);
    if (s->comm != MPI_COMM_NULL)
        MPI_Comm_free(&s->comm);
    s->magic = PXSI_MAGIC_DEAD;
    pthread_mutex_destroy(&s->mu);
    free(s->vt);
    free(s);
    return rc;
}

/* ------------------------------------------------------------ put */
/* A put's options resolved (defaults, the caller's, the timeout). */
static int
put_check(const pxs_put_opts_t *o)
{
    if (o->checksum != 0 && o->checksum != 1)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "put: checksum must be 0 or 1");
    if (o->timeout != o->timeout)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "put: timeout is NaN");
    return PXS_OK;
}

/* The store's default put options, made (and checked) once. */
static int
put_defaults(pxs_store_t *s)
{
    int rc;
    if (s->put_dflt_ok)
        return PXS_OK;
    if ((rc = pxs_put_opts_init(&s->put_dflt)) != PXS_OK || (rc = put_check(&s->put_dflt)))
        return rc;
    s->put_dflt_ok = 1;
    return PXS_OK;
}

static int
put_opts(pxs_store_t *s, const pxs_put_opts_t *opts, pxs_put_opts_t *out, double *timeout_out)
{
    int rc;
    if ((rc = put_defaults(s)) != PXS_OK)
        return rc;
    *out = s->put_dflt;
    if ((rc = pxsi_opts_take(out, sizeof *out, opts)) != PXS_OK)
        return rc;
    if ((rc = put_check(out)) != PXS_OK)
        return rc;
    *timeout_out = out->timeout == PXS_TIMEOUT_DEFAULT ? s->put_timeout : out->timeout;
    return PXS_OK;
}

/* The front end's half of a published object (put, put_ref, commit): the
 * proxy's identity fields, the counters, the encoding. */
static inline int
put_finish(pxs_store_t *s, pxs_proxy_info_t *pi, const pxs_put_opts_t *op, size_t len,
           pxs_proxy_t *proxy_out)
{
    pi->version = PXS_PROXY_VERSION;
    pi->kind = (uint8_t)s->kind;
    pi->owner = (uint32_t)s->rank;
    pi->store_nonce = s->nonce;
    pi->topic = op->topic;
    pi->seq = op->seq;
    FST_ADD(s, (s->fst.puts++, s->fst.bytes_put += len));
    PXSI_TRACE(SUBSYS, "put %zu B: slot %u gen %llu offset %llu", len,
               pxsi_gen_slot(pi->generation), (unsigned long long)pxsi_gen_gen(pi->generation),
               (unsigned long long)pi->offset);
    return pxs_proxy_encode(pi, proxy_out);
}

/* An arena full while this rank holds reservations: say so in the detail
 * (a caller that forgets to commit or cancel fills the arena with them;
 * docs/DESIGN.md, section "Reserved puts"). Error path only. */
static int
resv_note(pxs_store_t *s, int rc)
{
    if (rc != PXS_ERR_AGAIN)
        return rc;
    pthread_mutex_lock(&s->mu);
    int n = s->nresv;
    pthread_mutex_unlock(&s->mu);
    if (n == 0)
        return rc;
    return pxsi_err_prefix(rc, SUBSYS,
                           "%d reservation(s) of this rank outstanding (neither committed nor "
                           "cancelled)",
                           n);
}

static int
store_put(pxs_store_t *s, const void *data, size_t len, const pxs_put_opts_t *opts,
          pxs_proxy_t *proxy_out)
{
    if (!store_ok(s))
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "put: not a live store handle");
    if (!proxy_out || (!data && len))
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "put: NULL %s", proxy_out ? "data" : "proxy_out");
    int rc;
    pxs_put_opts_t ob;
    const pxs_put_opts_t *op = &ob;
    double timeout;
    if (!opts && s->put_dflt_ok) {
        /* the common case: the defaults as they are, checked once */
        op = &s->put_dflt;
        timeout = op->timeout == PXS_TIMEOUT_DEFAULT ? s->put_timeout : op->timeout;
    } else if ((rc = put_opts(s, opts, &ob, &timeout)) != PXS_OK) {
        return rc;
    }
    pxs_proxy_info_t pi;
    memset(&pi, 0, sizeof pi);
    if (s->spill && (timeout < 0 || timeout > s->spill_after))
        timeout = s->spill_after;
    rc = s->ops->put(s->st, data, len, op, timeout, &pi);
    if (s->spill && (rc == PXS_ERR_AGAIN || rc == PXS_ERR_TOO_BIG)) {
        /* does not fit: to the spill store (docs/DESIGN.md, section "Spill") */
        rc = pxs_store_put(s->spill, data, len, op, proxy_out);
        if (rc == PXS_OK) {
            s->spilled++;
            s->spilled_bytes += len;
        }
        return rc;
    }
    if (rc)
        return resv_note(s, rc);
    return put_finish(s, &pi, op, len, proxy_out);
}

/* Lend (docs/DESIGN.md, section "Lent buffers"): the connector publishes
 * the caller's buffer; a store that cannot lend (no put_ref op, or
 * PXS_ERR_NOTSUP from it) copies instead, *lent_out = 0. No spill: a lent
 * put that does not get a slot is PXS_ERR_AGAIN. */
static int
store_put_ref(pxs_store_t *s, const void *data, size_t len, const pxs_put_opts_t *opts,
              pxs_proxy_t *proxy_out, int *lent_out)
{
    if (lent_out)
        *lent_out = 0;
    if (!store_ok(s))
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "put_ref: not a live store handle");
    if (!proxy_out || !data)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "put_ref: NULL %s",
                        proxy_out ? "data" : "proxy_out");
    if (len == 0)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "put_ref: size 0 (nothing to lend)");
    pxs_put_opts_t o;
    double timeout = 0;
    int rc = put_opts(s, opts, &o, &timeout);
    if (rc)
        return rc;
    pxs_proxy_info_t pi;
    memset(&pi, 0, sizeof pi);
    rc = s->ops->put_ref ? s->ops->put_ref(s->st, data, len, &o, timeout, &pi) : PXS_ERR_NOTSUP;
    if (rc == PXS_ERR_NOTSUP) {
        PXSI_TRACE(SUBSYS, "put_ref of %zu B: copied (%s)", len,
                   s->ops->put_ref ? pxs_last_error_detail() : "connector cannot lend");
        rc = store_put(s, data, len, opts, proxy_out);
        if (rc == PXS_OK)
            FST_ADD(s, s->lend_copied++);
        return rc;
    }
    if (rc)
        return rc;
    rc = put_finish(s, &pi, &o, len, proxy_out);
    if (rc == PXS_OK && lent_out)
        *lent_out = 1;
    return rc;
}

/* ------------------------------------------------------------ reserved puts */
/* docs/DESIGN.md, section "Reserved puts": put split in its two halves.
 * reserve = the connector's allocation (block + slot, backpressure), or a
 * private page buffer where the store cannot hand out arena memory; commit =
 * the connector's publication of the bytes the caller wrote, or a put of the
 * private buffer (spill included). The front end keeps the live ones in rt. */
static int
resv_add(pxs_store_t *s, const pxsi_resv_rec_t *rec, uint64_t *id_out)
{
    pthread_mutex_lock(&s->mu);
    if (s->nresv == s->rcap) {
        int ncap = s->rcap ? 2 * s->rcap : 8;
        pxsi_resv_rec_t *nt = ncap > s->rcap ? realloc(s->rt, (size_t)ncap * sizeof *nt) : NULL;
        if (!nt) {
            pthread_mutex_unlock(&s->mu);
            return pxsi_err(PXS_ERR_NOMEM, SUBSYS, "reservation table of %d entries", ncap);
        }
        s->rt = nt;
        s->rcap = ncap;
    }
    uint64_t id = ++s->next_resv; /* never 0, never reused */
    s->rt[s->nresv] = *rec;
    s->rt[s->nresv].id = id;
    s->nresv++;
    pthread_mutex_unlock(&s->mu);
    *id_out = id;
    return PXS_OK;
}

/* Is res a live reservation of s? (take: remove it from the table) */
static int
resv_find(pxs_store_t *s, const pxs_reservation_t *res, const char *what, int take,
          pxsi_resv_rec_t *out)
{
    if (!res)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "%s: NULL reservation", what);
    if (res->internal_magic_ == PXSI_RESV_DEAD)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS,
                        "%s: reservation already committed or cancelled", what);
    if (res->internal_magic_ != PXSI_RESV_MAGIC || res->internal_u_[0] == 0)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS,
                        "%s: not a reservation (zeroed, failed, or never reserved)", what);
    if (res->internal_[0] != (void *)s)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "%s: reservation of another store", what);
    uint64_t id = res->internal_u_[0];
    int found = 0;
    pthread_mutex_lock(&s->mu);
    for (int i = s->nresv - 1; i >= 0; i--) {
        if (s->rt[i].id == id) {
            *out = s->rt[i];
            if (take)
                s->rt[i] = s->rt[--s->nresv];
            found = 1;
            break;
        }
    }
    pthread_mutex_unlock(&s->mu);
    if (!found)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS,
                        "%s: reservation %llu is not live (committed or cancelled already, "
                        "or a copy of one)",
                        what, (unsigned long long)id);
    if (out->data != res->data || out->len != res->len)
        PXSI_DEBUG(SUBSYS, "%s: reservation %llu: data/len changed by the caller; using the "
                           "store's record",
                   what, (unsigned long long)id);
    return PXS_OK;
}

static void
resv_end(pxs_reservation_t *res)
{
    res->internal_magic_ = PXSI_RESV_DEAD;
    res->internal_u_[0] = 0;
    res->data = NULL;
    res->len = 0;
}

static int
store_reserve(pxs_store_t *s, size_t len, const pxs_put_opts_t *opts, pxs_reservation_t *res)
{
    if (res)
        memset(res, 0, sizeof *res);
    if (!store_ok(s))
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "reserve: not a live store handle");
    if (!res)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "reserve: NULL res");
    if (len == 0)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "reserve: size 0");
    pxsi_resv_rec_t rec;
    memset(&rec, 0, sizeof rec);
    double timeout = 0;
    int rc = put_opts(s, opts, &rec.po, &timeout);
    if (rc)
        return rc;
    /* a store that takes no put (opened read-only, attached, a broken
     * file) or not this size (beyond the arena, no spill) refuses here
     * with the put's error, not at commit after a private buffer */
    if (s->ops->put_check && (rc = s->ops->put_check(s->st, len)) != PXS_OK &&
        !(s->spill && rc == PXS_ERR_TOO_BIG))
        return rc;
    if (s->spill && (timeout < 0 || timeout > s->spill_after))
        timeout = s->spill_after;
    rc = s->ops->reserve ? s->ops->reserve(s->st, len, timeout, &rec.blk, &rec.data)
                         : PXS_ERR_NOTSUP;
    if (rc == PXS_OK) {
        rec.in_arena = 1;
    } else if (rc == PXS_ERR_NOTSUP ||
               (s->spill && (rc == PXS_ERR_AGAIN || rc == PXS_ERR_TOO_BIG))) {
        /* no arena memory to hand out: a private buffer, put at commit */
        PXSI_TRACE(SUBSYS, "reserve of %zu B: private buffer (%s)", len,
                   s->ops->reserve ? pxs_last_error_detail() : "connector cannot reserve");
        rec.data = pxsi_alloc_pages(len);
        if (!rec.data)
            return pxsi_err(PXS_ERR_NOMEM, SUBSYS, "reserve: private buffer of %zu B", len);
    } else {
        return resv_note(s, rc);
    }
    rec.len = len;
    uint64_t id = 0;
    if ((rc = resv_add(s, &rec, &id)) != PXS_OK) {
        if (rec.in_arena)
            s->ops->cancel(s->st, &rec.blk);
        else
            free(rec.data);
        return rc;
    }
    res->data = rec.data;
    res->len = len;
    res->in_arena = rec.in_arena;
    res->internal_magic_ = PXSI_RESV_MAGIC;
    res->internal_[0] = s;
    res->internal_u_[0] = id;
    return PXS_OK;
}

static int
store_commit(pxs_store_t *s, pxs_reservation_t *res, const pxs_put_opts_t *po,
             pxs_proxy_t *proxy_out, void **keep_buf, const void **data_out, size_t *len_out)
{
    if (keep_buf)
        *keep_buf = NULL;
    if (data_out)
        *data_out = NULL;
    if (len_out)
        *len_out = 0;
    if (!store_ok(s))
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "commit: not a live store handle");
    if (!proxy_out)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "commit: NULL proxy_out");
    pxsi_resv_rec_t rec;
    int rc;
    pxs_put_opts_t ob;
    double timeout = 0;
    if (po) {
        /* checked before the reservation is taken: bad options end nothing */
        if ((rc = put_opts(s, po, &ob, &timeout)) != PXS_OK)
            return rc;
    }
    if ((rc = resv_find(s, res, "commit", 1, &rec)) != PXS_OK)
        return rc;
    resv_end(res);
    const pxs_put_opts_t *op = po ? &ob : &rec.po;
    if (!rec.in_arena) {
        rc = store_put(s, rec.data, rec.len, op, proxy_out);
        if (keep_buf)
            *keep_buf = rec.data;
        else
            free(rec.data);
    } else {
        pxs_proxy_info_t pi;
        memset(&pi, 0, sizeof pi);
        rc = s->ops->commit(s->st, &rec.blk, rec.len, op, &pi);
        if (rc == PXS_OK)
            rc = put_finish(s, &pi, op, rec.len, proxy_out);
    }
    if (rc == PXS_OK && (rec.in_arena || keep_buf)) {
        if (data_out)
            *data_out = rec.data;
        if (len_out)
            *len_out = rec.len;
    }
    return rc;
}

static int
store_cancel(pxs_store_t *s, pxs_reservation_t *res)
{
    if (!store_ok(s))
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "cancel: not a live store handle");
    pxsi_resv_rec_t rec;
    int rc = resv_find(s, res, "cancel", 1, &rec);
    if (rc)
        return rc;
    resv_end(res);
    if (rec.in_arena)
        s->ops->cancel(s->st, &rec.blk);
    else
        free(rec.data);
    return PXS_OK;
}

static inline int check_proxy(pxs_store_t *s, const pxs_proxy_t *proxy, pxs_proxy_info_t *pi);

#define PXSI_REF_YIELD_S 2e-3 /* ref_wait: yield (not sleep) this long first */

/* The owner waits (timeout s; 0 = one test) until its lent object is over:
 * every resolver is done and none can read the buffer again. */
static int
store_ref_wait(pxs_store_t *s, const pxs_proxy_t *proxy, double timeout)
{
    if (!store_ok(s))
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "ref_wait: not a live store handle");
    if (timeout != timeout)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "ref_wait: timeout is NaN");
    pxs_proxy_info_t pi;
    int rc = check_proxy(s, proxy, &pi);
    if (rc == PXS_OK && !(pi.flags & PXS_PROXY_F_LENT))
        rc = pxsi_err(PXS_ERR_INVALID, SUBSYS,
                      "ref_wait: not a lent object (pxs_store_put_ref copied it, lent_out 0, "
                      "or a plain put): its buffer was free at once");
    if (rc == PXS_OK && pi.owner != (uint32_t)s->rank)
        rc = pxsi_err(PXS_ERR_INVALID, SUBSYS,
                      "ref_wait: object of rank %u, not this rank's (%d): only the owner waits",
                      pi.owner, s->rank);
    if (rc == PXS_OK && !s->ops->ref_test)
        rc = pxsi_err(PXS_ERR_INVALID, SUBSYS, "ref_wait: the %s connector does not lend",
                      s->ops->name);
    if (rc)
        return rc;
    /* A lent buffer comes back one resolve after its event is read (us to
     * a few ms): spin, then yield for up to PXSI_REF_YIELD_S, and only then
     * the standard back-off's sleeps (a nanosleep's timer slack alone, ~50
     * us, is longer than a 1 MiB copy; sleeping here held stream-1to1-ref
     * at 0.06x of MPI_Send at 64 KiB). sched_yield gives the core away. */
    pxsi_backoff_t b;
    pxsi_backoff_init(&b, timeout);
    const double yield_until = pxsi_now() + PXSI_REF_YIELD_S;
    for (;;) {
        int done = 0;
        if ((rc = s->ops->ref_test(s->st, &pi, &done)) != PXS_OK)
            return rc;
        if (done)
            return PXS_OK;
        if (pxsi_backoff_expired(&b))
            return pxsi_err(PXS_ERR_AGAIN, SUBSYS,
                            "ref_wait: lent object (slot %u) still in use after %g s (budget not "
                            "used up, or a resolver holds a claim)",
                            pxsi_gen_slot(pi.generation), timeout);
        if (b.iter >= PXSI_BACKOFF_SLEEP - 1 && pxsi_now() < yield_until)
            b.iter = PXSI_BACKOFF_YIELD; /* stay in the yield phase */
        if (s->comm != MPI_COMM_NULL)
            pxsi_backoff_pause_mpi(&b, s->comm);
        else
            pxsi_backoff_pause(&b);
    }
}

/* ------------------------------------------------------------ proxies */
/* All 64 bytes equal? (no early exit: four 16-byte XORs ORed together
 * where SSE2 is there, else eight word compares) */
_Static_assert(PXS_PROXY_SIZE == 64, "proxy_same compares 4 x 16 bytes");
static inline int
proxy_same(const pxs_proxy_t *a, const pxs_proxy_t *b)
{
#if defined(__SSE2__)
#define PXS_X16(i)                                                             \
    _mm_xor_si128(_mm_loadu_si128((const __m128i *)(a->bytes + (i))),          \
                  _mm_loadu_si128((const __m128i *)(b->bytes + (i))))
    __m128i x =
        _mm_or_si128(_mm_or_si128(PXS_X16(0), PXS_X16(16)), _mm_or_si128(PXS_X16(32), PXS_X16(48)));
#undef PXS_X16
    return _mm_movemask_epi8(_mm_cmpeq_epi8(x, _mm_setzero_si128())) == 0xffff;
#else
    uint64_t x = 0;
    for (int i = 0; i < PXS_PROXY_SIZE; i += 8) {
        uint64_t u, v;
        memcpy(&u, a->bytes + i, 8);
        memcpy(&v, b->bytes + i, 8);
        x |= u ^ v;
    }
    return x == 0;
#endif
}

/* Decode and check a proxy. The decode and the front-end checks below are a
 * pure function of the 64 bytes and of fields fixed at create (nonce, kind,
 * nowners), so a store remembers the last proxy that passed them and the
 * connector's check, and reuses its decoded form when the next proxy is
 * equal in every byte (a flipped bit anywhere differs, and is decoded and
 * refused as before). The connector's check runs again on a hit, except
 * the RMA connector's, which is as pure; everything after it (generation,
 * claim, descriptor, budget) runs every time. Not for the local connector,
 * whose calls may run on several threads at once (the cache is guarded by
 * enter/leave). */
PXSI_NOINLINE static int
check_proxy_decode(pxs_store_t *s, const pxs_proxy_t *proxy, pxs_proxy_info_t *pi)
{
    memset(pi, 0, sizeof *pi);
    int rc = pxs_proxy_decode(proxy->bytes, PXS_PROXY_SIZE, pi);
    if (rc)
        return rc;
    /* Identity first, before anything reaches a connector (no remote word
     * is touched for another instance's proxy). Every rank of a store holds
     * the same nonce, so this rank's copy is the owner's. */
    if (pi->store_nonce == 0)
        return pxsi_err(PXS_ERR_CORRUPT, SUBSYS,
                        "proxy carries no store instance (nonce 0): no store made it");
    if (pi->store_nonce != s->nonce)
        return pxsi_err(PXS_ERR_STALE, SUBSYS,
                        "proxy of store instance 0x%016llx given to store instance 0x%016llx "
                        "(another store, job or run)",
                        (unsigned long long)pi->store_nonce, (unsigned long long)s->nonce);
    if (pi->kind != s->kind)
        return pxsi_err(PXS_ERR_CORRUPT, SUBSYS, "proxy of connector kind %u given to a kind %d store",
                        pi->kind, s->kind);
    if (pi->owner >= (uint32_t)s->nowners)
        return pxsi_err(PXS_ERR_CORRUPT, SUBSYS, "proxy owner %u out of range (%d ranks)",
                        pi->owner, s->nowners);
    if ((rc = s->ops->check(s->st, pi)) != PXS_OK)
        return rc;
    if (s->kind != PXS_CONN_LOCAL) {
        s->last_px = *proxy;
        s->last_pi = *pi;
        s->last_ok = 1;
    }
    return PXS_OK;
}

/* check_proxy's common case inline (NULL, and a hit on the last proxy that
 * passed); a miss decodes and checks out of line (check_proxy_decode). */
static inline int
check_proxy(pxs_store_t *s, const pxs_proxy_t *proxy, pxs_proxy_info_t *pi)
{
    if (!proxy) {
        memset(pi, 0, sizeof *pi);
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "NULL proxy");
    }
    if (s->last_ok && proxy_same(proxy, &s->last_px)) {
        *pi = s->last_pi;
        /* rma_check depends only on the proxy and on what create fixed
         * (nonce, the owners' slot counts and arena sizes, lending) */
        return s->kind == PXS_CONN_RMA ? PXS_OK : s->ops->check(s->st, pi);
    }
    return check_proxy_decode(s, proxy, pi);
}

/* check_proxy for resolve: *pp points at the checked form, on a hit of an
 * RMA store the cached one itself (no copy: nothing changes s->last_pi
 * while the guard is held, and the connector's resolve only reads it), else
 * pi. */
static inline int
check_proxy_ref(pxs_store_t *s, const pxs_proxy_t *proxy, pxs_proxy_info_t *pi,
                const pxs_proxy_info_t **pp)
{
    *pp = pi;
    if (!proxy || s->kind != PXS_CONN_RMA)
        return check_proxy(s, proxy, pi);
    if (PXSI_LIKELY(s->last_ok && proxy_same(proxy, &s->last_px))) {
        *pp = &s->last_pi; /* rma_check is pure (check_proxy) */
        return PXS_OK;
    }
    return check_proxy_decode(s, proxy, pi);
}

static int
store_resolve(pxs_store_t *s, const pxs_proxy_t *proxy, void *buf, size_t cap,
              size_t *len_out)
{
    if (!store_ok(s))
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "resolve: not a live store handle");
    if (!buf && cap)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "resolve: NULL buffer with cap %zu", cap);
    pxs_proxy_info_t pl;
    const pxs_proxy_info_t *pi;
    int rc = check_proxy_ref(s, proxy, &pl, &pi);
    if (rc)
        return bad_proxy(s, pi, rc, "resolve");
    if (pi->size > cap) {
        if (len_out)
            *len_out = (size_t)pi->size;
        return pxsi_err(PXS_ERR_TRUNC, SUBSYS, "resolve: object is %llu bytes, buffer %zu",
                        (unsigned long long)pi->size, cap);
    }
    size_t n = 0;
    rc = s->ops->resolve(s->st, pi, buf, cap, &n);
    if (rc != PXS_OK)
        return bad_proxy(s, pi, rc, "resolve");
    resolved(s, pi, n);
    if (len_out)
        *len_out = n;
    return rc;
}

static int
store_resolve_alloc(pxs_store_t *s, const pxs_proxy_t *proxy, void **buf_out,
                    size_t *len_out)
{
    if (!store_ok(s))
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "resolve_alloc: not a live store handle");
    if (!buf_out)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "resolve_alloc: buf_out is NULL");
    pxs_proxy_info_t pi;
    int rc = check_proxy(s, proxy, &pi);
    if (rc)
        return bad_proxy(s, &pi, rc, "resolve_alloc");
    if (pi.size > SIZE_MAX - 1)
        return pxsi_err(PXS_ERR_CORRUPT, SUBSYS, "resolve_alloc: size out of range");
    /* A forged size is bounded by the owner's arena, checked by the
     * connector; check it before allocating. */
    void *b = pxsi_alloc_pages((size_t)pi.size); /* page-aligned */
    if (!b)
        return pxsi_err(PXS_ERR_NOMEM, SUBSYS, "resolve_alloc: %llu bytes",
                        (unsigned long long)pi.size);
    size_t n = 0;
    rc = s->ops->resolve(s->st, &pi, b, (size_t)pi.size, &n);
    if (rc) {
        free(b);
        return bad_proxy(s, &pi, rc, "resolve_alloc");
    }
    resolved(s, &pi, n);
    *buf_out = b;
    if (len_out)
        *len_out = n;
    return PXS_OK;
}

static int
store_view(pxs_store_t *s, const pxs_proxy_t *proxy, pxs_view_t *view_out)
{
    if (!store_ok(s))
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "view: not a live store handle");
    if (!view_out)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "view: view_out is NULL");
    NEED_OP(s, view);
    NEED_OP(s, release);
    pxs_proxy_info_t pi;
    int rc = check_proxy(s, proxy, &pi);
    if (rc)
        return bad_proxy(s, &pi, rc, "view");
    pxs_view_t v;
    memset(&v, 0, sizeof v);
    rc = s->ops->view(s->st, &pi, &v);
    if (rc)
        return bad_proxy(s, &pi, rc, "view");
    resolved(s, &pi, v.len);
    pthread_mutex_lock(&s->mu);
    if (s->nviews == s->vcap) {
        int ncap = s->vcap ? 2 * s->vcap : 8;
        pxsi_view_rec_t *nt = ncap > s->vcap ? realloc(s->vt, (size_t)ncap * sizeof *nt) : NULL;
        if (!nt) {
            pthread_mutex_unlock(&s->mu);
            (void)s->ops->release(s->st, &v);
            return pxsi_err(PXS_ERR_NOMEM, SUBSYS, "view table of %d entries", ncap);
        }
        s->vt = nt;
        s->vcap = ncap;
    }
    uint64_t id = ++s->next_view; /* never 0, never reused */
    s->vt[s->nviews].id = id;
    s->vt[s->nviews].v = v;
    s->nviews++;
    pthread_mutex_unlock(&s->mu);
    v.internal_[3] = s;
    v.internal_u_[3] = id;
    *view_out = v;
    return PXS_OK;
}

static int
store_release(pxs_store_t *s, pxs_view_t *view)
{
    if (!store_ok(s))
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "release: not a live store handle");
    NEED_OP(s, release);
    if (!view || view->internal_[3] != s || view->internal_u_[3] == 0)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "release: not a live view of this store");
    uint64_t id = view->internal_u_[3];
    pxs_view_t v;
    int found = 0;
    pthread_mutex_lock(&s->mu);
    for (int i = s->nviews - 1; i >= 0; i--) {
        if (s->vt[i].id == id) {
            v = s->vt[i].v;
            s->vt[i] = s->vt[--s->nviews];
            found = 1;
            break;
        }
    }
    pthread_mutex_unlock(&s->mu);
    if (!found)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS,
                        "release: view %llu is not live (released already, or a copy of one)",
                        (unsigned long long)id);
    /* the connector gets the store's own record, not the caller's struct */
    int rc = s->ops->release(s->st, &v);
    view->internal_u_[3] = 0;
    view->internal_[3] = NULL;
    view->data = NULL;
    view->len = 0;
    return rc;
}

/* ------------------------------------------------------------ async */
/* Errors keep their cause: a request that finished with an error records
 * its detail, the connector's cause with the context prefixed
 * (pxsi_err_prefix), when the connector finishes it; test/wait give that
 * back, whatever ran on this thread in between. Kept without the "store: "
 * tag, which pxsi_err adds again. */
static void
req_note(pxs_request_t *r)
{
    if (!r->done || r->status == PXS_OK || r->why[0])
        return;
    (void)pxsi_err_prefix(r->status, SUBSYS, "async resolve failed (%s)", pxs_errname(r->status));
    const char *d = pxs_last_error_detail();
    size_t n = strlen(SUBSYS ": ");
    snprintf(r->why, sizeof r->why, "%s", strncmp(d, SUBSYS ": ", n) == 0 ? d + n : d);
}

static int
store_resolve_start(pxs_store_t *s, const pxs_proxy_t *proxy, void *buf, size_t cap,
                    pxs_request_t **req_out)
{
    if (!store_ok(s))
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "resolve_start: not a live store handle");
    if (!req_out || (!buf && cap))
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "resolve_start: NULL argument");
    NEED_OP(s, resolve_start);
    NEED_OP(s, resolve_test);
    NEED_OP(s, resolve_wait);
    pxs_proxy_info_t pi;
    int rc = check_proxy(s, proxy, &pi);
    if (rc)
        return bad_proxy(s, &pi, rc, "resolve_start");
    pxs_request_t *r = calloc(1, sizeof *r);
    if (!r)
        return pxsi_err(PXS_ERR_NOMEM, SUBSYS, "request");
    r->magic = PXSI_REQ_MAGIC;
    r->store = s;
    r->pi = pi;
    r->buf = buf;
    if (pi.size > cap) {
        /* reported by test/wait like any other resolve status */
        r->done = 1;
        r->status = pxsi_err(PXS_ERR_TRUNC, SUBSYS, "resolve_start: object is %llu bytes, buffer %zu",
                             (unsigned long long)pi.size, cap);
        r->len = (size_t)pi.size;
    } else {
        rc = s->ops->resolve_start(s->st, &pi, buf, cap, r);
        if (rc) {
            free(r);
            return bad_proxy(s, &pi, rc, "resolve_start");
        }
    }
    req_note(r);
    pthread_mutex_lock(&s->mu);
    s->outstanding++;
    pthread_mutex_unlock(&s->mu);
    *req_out = r;
    return PXS_OK;
}

/* An inline proxy (docs/DESIGN.md, "Inline chunks"): the payload is in this
 * process, so the request is done at start; a proxy the table refuses fails
 * here, as pxs_store_resolve would. */
static int
store_inline_start(pxs_store_t *s, const pxs_proxy_t *proxy, void *buf, size_t cap,
                   pxs_request_t **req_out)
{
    if (!store_ok(s))
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "resolve_start: not a live store handle");
    if (!req_out || (!buf && cap))
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "resolve_start: NULL argument");
    pxs_request_t *r = calloc(1, sizeof *r);
    if (!r)
        return pxsi_err(PXS_ERR_NOMEM, SUBSYS, "request");
    size_t n = 0;
    int rc = pxsi_inline_resolve(proxy, buf, cap, &n);
    if (rc != PXS_OK && rc != PXS_ERR_TRUNC) {
        free(r);
        return rc;
    }
    r->magic = PXSI_REQ_MAGIC;
    r->store = s;
    if (pxs_proxy_decode(proxy->bytes, PXS_PROXY_SIZE, &r->pi) != PXS_OK) /* checked above */
        memset(&r->pi, 0, sizeof r->pi);
    r->buf = buf;
    r->done = 1;
    r->status = rc;
    r->len = n;
    req_note(r);
    pthread_mutex_lock(&s->mu);
    s->outstanding++;
    pthread_mutex_unlock(&s->mu);
    *req_out = r;
    return PXS_OK;
}

static int
req_finish(pxs_request_t *r, size_t *len_out)
{
    int st = r->status;
    if ((st == PXS_OK || st == PXS_ERR_TRUNC) && len_out)
        *len_out = r->len;
    pxs_store_t *s = r->store;
    pthread_mutex_lock(&s->mu);
    s->outstanding--;
    pthread_mutex_unlock(&s->mu);
    if (st == PXS_OK)
        resolved(s, &r->pi, r->len);
    else if (st == PXS_ERR_STALE || st == PXS_ERR_CORRUPT)
        (void)bad_proxy(s, &r->pi, st, "async resolve");
    char why[sizeof r->why];
    memcpy(why, r->why, sizeof why);
    r->magic = PXSI_MAGIC_DEAD;
    free(r);
    if (st)
        return pxsi_err(st, SUBSYS, "%s", why[0] ? why : pxs_errname(st));
    return st;
}

static int
store_resolve_test(pxs_request_t *r, int *done_out, size_t *len_out)
{
    if (!PXSI_HANDLE_OK(r, PXSI_REQ_MAGIC) || !store_ok(r->store) || !done_out)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "resolve_test: not a live request");
    if (!r->done) {
        int rc = r->store->ops->resolve_test(r->store->st, r);
        if (rc < 0 && !r->done)
            return rc;
        req_note(r);
    }
    if (!r->done) {
        *done_out = 0;
        return PXS_OK;
    }
    *done_out = 1;
    return req_finish(r, len_out);
}

static int
store_resolve_wait(pxs_request_t *r, size_t *len_out)
{
    if (!PXSI_HANDLE_OK(r, PXSI_REQ_MAGIC) || !store_ok(r->store))
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "resolve_wait: not a live request");
    if (!r->done) {
        int rc = r->store->ops->resolve_wait(r->store->st, r);
        if (!r->done) {
            r->done = 1;
            /* a connector that returns OK must have finished the request */
            PXS_ASSERT(rc != PXS_OK);
            r->status = rc ? rc : PXS_ERR_MPI;
        }
        req_note(r);
    }
    return req_finish(r, len_out);
}

/* ------------------------------------------------------------ evict, progress */
static int
store_evict(pxs_store_t *s, const pxs_proxy_t *proxy)
{
    if (!store_ok(s))
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "evict: not a live store handle");
    NEED_OP(s, evict);
    pxs_proxy_info_t pi;
    int rc = check_proxy(s, proxy, &pi);
    if (rc)
        return bad_proxy(s, &pi, rc, "evict");
    return bad_proxy(s, &pi, s->ops->evict(s->st, &pi), "evict");
}

static int
store_drop(pxs_store_t *s, const pxs_proxy_t *proxy)
{
    if (!store_ok(s))
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "drop: not a live store handle");
    NEED_OP(s, drop);
    pxs_proxy_info_t pi;
    int rc = check_proxy(s, proxy, &pi);
    if (rc)
        return bad_proxy(s, &pi, rc, "drop");
    return bad_proxy(s, &pi, s->ops->drop(s->st, &pi), "drop");
}

static int
store_progress(pxs_store_t *s)
{
    if (!store_ok(s))
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "progress: not a live store handle");
    NEED_OP(s, progress);
    return s->ops->progress(s->st);
}

static int
store_used(pxs_store_t *s, size_t *used_out, size_t *capacity_out)
{
    if (!store_ok(s))
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "used: not a live store handle");
    NEED_OP(s, used);
    size_t u = 0, c = 0;
    int rc = s->ops->used(s->st, &u, &c);
    if (rc)
        return rc;
    if (used_out)
        *used_out = u;
    if (capacity_out)
        *capacity_out = c;
    return PXS_OK;
}

int
pxs_store_spilled(const pxs_store_t *s, uint64_t *objects_out, uint64_t *bytes_out)
{
    if (!store_ok(s))
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "spilled: not a live store handle");
    if (objects_out)
        *objects_out = s->spilled;
    if (bytes_out)
        *bytes_out = s->spilled_bytes;
    return PXS_OK;
}

/* A store with a spill store: a proxy of the spill store's kind and
 * instance goes there (consumers resolve spilled objects without knowing). */
PXSI_NOINLINE static pxs_store_t *
route_decode(pxs_store_t *s, const pxs_proxy_t *proxy)
{
    pxs_proxy_info_t pi;
    if (pxs_proxy_decode(proxy->bytes, PXS_PROXY_SIZE, &pi) != PXS_OK)
        return s;
    if (s->spill && pi.kind == s->spill->kind && pi.store_nonce == s->spill->nonce)
        return s->spill;
    for (int i = 0; i < s->nalt; i++)
        if (pi.kind == s->alt[i]->kind && pi.store_nonce == s->alt[i]->nonce)
            return s->alt[i];
    return s;
}

static inline pxs_store_t *
route(pxs_store_t *s, const pxs_proxy_t *proxy)
{
    if (!store_ok(s) || (!s->spill && !s->nalt) || !proxy)
        return s;
    return route_decode(s, proxy);
}

int
pxs_store_rank(const pxs_store_t *s)
{
    if (!store_ok(s))
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "rank: not a live store handle");
    return s->rank;
}

/* ------------------------------------------------------------ guarded entry points */
/* The public calls: the thread guard (enter/leave) around the bodies above. */
#define GUARDED(s, what, call)                                                 \
    do {                                                                       \
        int held_ = 0;                                                         \
        int grc_ = enter((s), (what), &held_);                                 \
        if (grc_)                                                              \
            return grc_;                                                       \
        grc_ = (call);                                                         \
        leave((s), held_);                                                     \
        return grc_;                                                           \
    } while (0)

int
pxs_store_stats(pxs_store_t *s, pxs_store_stats_t *out)
{
    GUARDED(s, "stats", store_stats(s, out));
}

int
pxs_store_put(pxs_store_t *s, const void *data, size_t len, const pxs_put_opts_t *opts,
              pxs_proxy_t *proxy_out)
{
    GUARDED(s, "put", store_put(s, data, len, opts, proxy_out));
}

int
pxs_store_put_ref(pxs_store_t *s, const void *data, size_t len, const pxs_put_opts_t *opts,
                  pxs_proxy_t *proxy_out, int *lent_out)
{
    GUARDED(s, "put_ref", store_put_ref(s, data, len, opts, proxy_out, lent_out));
}

int
pxs_store_reserve(pxs_store_t *s, size_t len, const pxs_put_opts_t *opts,
                  pxs_reservation_t *res)
{
    GUARDED(s, "reserve", store_reserve(s, len, opts, res));
}

int
pxs_store_commit(pxs_store_t *s, pxs_reservation_t *res, pxs_proxy_t *proxy_out)
{
    GUARDED(s, "commit", store_commit(s, res, NULL, proxy_out, NULL, NULL, NULL));
}

int
pxsi_store_commit_opts(pxs_store_t *s, pxs_reservation_t *res, const pxs_put_opts_t *po,
                       pxs_proxy_t *proxy_out, void **keep_buf, const void **data_out,
                       size_t *len_out)
{
    GUARDED(s, "commit", store_commit(s, res, po, proxy_out, keep_buf, data_out, len_out));
}

int
pxs_store_cancel(pxs_store_t *s, pxs_reservation_t *res)
{
    GUARDED(s, "cancel", store_cancel(s, res));
}

int
pxs_store_ref_wait(pxs_store_t *s, const pxs_proxy_t *proxy, double timeout)
{
    if (pxsi_inline_is(proxy))
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "ref_wait: an inline proxy is not lent");
    GUARDED(s, "ref_wait", store_ref_wait(s, proxy, timeout));
}

int
pxs_store_resolve(pxs_store_t *s, const pxs_proxy_t *proxy, void *buf, size_t cap,
                  size_t *len_out)
{
    if (pxsi_inline_is(proxy)) /* docs/DESIGN.md, "Inline chunks" */
        return pxsi_inline_resolve(proxy, buf, cap, len_out);
    s = route(s, proxy);
    GUARDED(s, "resolve", store_resolve(s, proxy, buf, cap, len_out));
}

int
pxs_store_resolve_alloc(pxs_store_t *s, const pxs_proxy_t *proxy, void **buf_out,
                        size_t *len_out)
{
    if (pxsi_inline_is(proxy))
        return pxsi_inline_resolve_alloc(proxy, buf_out, len_out);
    s = route(s, proxy);
    GUARDED(s, "resolve_alloc", store_resolve_alloc(s, proxy, buf_out, len_out));
}

int
pxs_store_view(pxs_store_t *s, const pxs_proxy_t *proxy, pxs_view_t *view_out)
{
    if (pxsi_inline_is(proxy))
        return pxsi_inline_view(proxy, view_out);
    s = route(s, proxy);
    GUARDED(s, "view", store_view(s, proxy, view_out));
}

int
pxs_store_release(pxs_store_t *s, pxs_view_t *view)
{
    if (pxsi_inline_is_view(view))
        return pxsi_inline_release(view);
    if (store_ok(s) && s->spill && view && view->internal_[3] == s->spill)
        s = s->spill;
    for (int i = 0; store_ok(s) && view && i < s->nalt; i++)
        if (view->internal_[3] == s->alt[i]) {
            s = s->alt[i];
            break;
        }
    GUARDED(s, "release", store_release(s, view));
}

int
pxs_store_resolve_start(pxs_store_t *s, const pxs_proxy_t *proxy, void *buf, size_t cap,
                        pxs_request_t **req_out)
{
    if (pxsi_inline_is(proxy))
        return store_inline_start(s, proxy, buf, cap, req_out);
    s = route(s, proxy);
    GUARDED(s, "resolve_start", store_resolve_start(s, proxy, buf, cap, req_out));
}

static pxs_store_t *
req_store(pxs_request_t *r)
{
    return PXSI_HANDLE_OK(r, PXSI_REQ_MAGIC) ? r->store : NULL;
}

int
pxs_store_resolve_test(pxs_request_t *r, int *done_out, size_t *len_out)
{
    pxs_store_t *s = req_store(r); /* r may be freed by the call; s is not */
    GUARDED(s, "resolve_test", store_resolve_test(r, done_out, len_out));
}

int
pxs_store_resolve_wait(pxs_request_t *r, size_t *len_out)
{
    pxs_store_t *s = req_store(r);
    GUARDED(s, "resolve_wait", store_resolve_wait(r, len_out));
}

int
pxs_store_evict(pxs_store_t *s, const pxs_proxy_t *proxy)
{
    if (pxsi_inline_is(proxy))
        return pxsi_inline_drop(proxy);
    s = route(s, proxy);
    GUARDED(s, "evict", store_evict(s, proxy));
}

int
pxs_store_drop(pxs_store_t *s, const pxs_proxy_t *proxy)
{
    if (pxsi_inline_is(proxy))
        return pxsi_inline_drop(proxy);
    s = route(s, proxy);
    GUARDED(s, "drop", store_drop(s, proxy));
}

int
pxs_store_progress(pxs_store_t *s)
{
    GUARDED(s, "progress", store_progress(s));
}

int
pxs_store_used(pxs_store_t *s, size_t *used_out, size_t *capacity_out)
{
    GUARDED(s, "used", store_used(s, used_out, capacity_out));
}

/* ------------------------------------------------------------ test hooks */
int
pxsi_store_path(pxs_store_t *s, int owner)
{
    if (!store_ok(s) || owner < 0 || owner >= s->size)
        return PXS_ERR_INVALID;
    NEED_OP(s, path);
    return s->ops->path(s->st, owner);
}

int
pxsi_store_stats(pxs_store_t *s, pxsi_store_stats_t *out)
{
    if (!store_ok(s) || !out)
        return PXS_ERR_INVALID;
    NEED_OP(s, stats);
    s->ops->stats(s->st, out);
    out->spilled = s->spilled;
    out->spilled_bytes = s->spilled_bytes;
    out->lend_copied = s->lend_copied;
    return PXS_OK;
}

int
pxsi_store_test_corrupt(pxs_store_t *s, uint64_t offset)
{
#ifdef PXS_TEST_HOOKS
    if (!store_ok(s))
        return PXS_ERR_INVALID;
    NEED_OP(s, corrupt);
    return s->ops->corrupt(s->st, offset);
#else
    (void)s;
    (void)offset;
    return PXS_ERR_NOTSUP;
#endif
}

int
pxsi_store_test_set_gen(pxs_store_t *s, uint32_t slot, uint64_t gen)
{
#ifdef PXS_TEST_HOOKS
    if (!store_ok(s))
        return PXS_ERR_INVALID;
    if ((gen & 1u) || gen >= PXSI_GEN_RETIRE)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "test_set_gen: gen %llu must be even and < 2^40 - 2",
                        (unsigned long long)gen);
    NEED_OP(s, set_gen);
    return s->ops->set_gen(s->st, slot, gen);
#else
    (void)s;
    (void)slot;
    (void)gen;
    return PXS_ERR_NOTSUP;
#endif
}

int
pxsi_store_test_add_claims(pxs_store_t *s, uint32_t slot, int64_t n)
{
#ifdef PXS_TEST_HOOKS
    if (!store_ok(s))
        return PXS_ERR_INVALID;
    NEED_OP(s, add_claims);
    return s->ops->add_claims(s->st, slot, n);
#else
    (void)s;
    (void)slot;
    (void)n;
    return PXS_ERR_NOTSUP;
#endif
}

uint64_t
pxsi_store_nonce(const pxs_store_t *s)
{
    return store_ok(s) ? s->nonce : 0;
}

const pxsi_store_conn_ops_t *
pxsi_store_test_swap_ops(pxs_store_t *s, const pxsi_store_conn_ops_t *ops)
{
#ifdef PXS_TEST_HOOKS
    if (!store_ok(s) || !ops)
        return NULL;
    const pxsi_store_conn_ops_t *old = s->ops;
    s->ops = ops;
    return old;
#else
    (void)s;
    (void)ops;
    return NULL;
#endif
}

/* ------------------------------------------------------------ attached stores */
int
pxsi_store_adopt(MPI_Comm comm, const pxsi_store_conn_ops_t *ops, void *st, uint64_t nonce,
                 int size, pxs_store_t **out)
{
    pxs_store_t *s = calloc(1, sizeof *s);
    if (!s)
        return pxsi_err(PXS_ERR_NOMEM, SUBSYS, "store handle");
    if (pthread_mutex_init(&s->mu, NULL) != 0) {
        free(s);
        return pxsi_err(PXS_ERR_NOMEM, SUBSYS, "store mutex");
    }
    s->kind = ops->kind;
    s->ops = ops;
    s->st = st;
    s->comm = comm;
    s->rank = -1; /* owns no object: every proxy's owner is another job's rank */
    s->size = size;
    s->nowners = size; /* the exporting job's ranks own the objects */
    s->nonce = nonce;
    guard_init(s, 1);
    s->put_timeout = 0;
    s->magic = PXSI_STORE_MAGIC;
    pxsi_store_register(s);
    *out = s;
    return PXS_OK;
}
