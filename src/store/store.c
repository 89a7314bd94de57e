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
 * and in the connector: offset/size beyond the owner's arena, misaligned
 * offset, slot index beyond the owner's table -> PXS_ERR_CORRUPT; generation
 * not the slot's current one -> PXS_ERR_STALE. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/registry.h"
#include "store/store_int.h"

#define SUB "store"

/* ------------------------------------------------------------ options */
int
pxs_store_opts_init_(pxs_store_opts_t *opts, size_t size)
{
    if (!opts || size < sizeof(size_t))
        return pxsi_err(PXS_ERR_INVALID, SUB, "pxs_store_opts_init: NULL or size %zu", size);
    pxs_store_opts_t d;
    memset(&d, 0, sizeof d);
    d.struct_size = size < sizeof d ? size : sizeof d;
    d.connector = PXS_CONN_RMA;
    d.arena_bytes = 0;
    d.put_timeout = PXSI_TIMEOUT_DEFAULT_;
    d.shm = -1;
    d.get_chunk = 0;
    d.max_objects = 0;
    d.progress_thread = -1;
    memcpy(opts, &d, d.struct_size);
    opts->struct_size = size;
    return PXS_OK;
}

int
pxs_put_opts_init_(pxs_put_opts_t *opts, size_t size)
{
    if (!opts || size < sizeof(size_t))
        return pxsi_err(PXS_ERR_INVALID, SUB, "pxs_put_opts_init: NULL or size %zu", size);
    pxs_put_opts_t d;
    memset(&d, 0, sizeof d);
    d.resolves = 1;
    d.checksum = 0;
    d.timeout = PXSI_TIMEOUT_DEFAULT_;
    memcpy(opts, &d, size < sizeof d ? size : sizeof d);
    opts->struct_size = size;
    return PXS_OK;
}

size_t
pxsi_store_arena_bytes(const pxs_store_opts_t *o)
{
    if (o->arena_bytes)
        return o->arena_bytes;
    return (size_t)pxsi_env_size("PXS_ARENA_BYTES", PXSI_DEFAULT_ARENA);
}

size_t
pxsi_store_get_chunk(const pxs_store_opts_t *o)
{
    size_t c = o->get_chunk ? o->get_chunk
                            : (size_t)pxsi_env_size("PXS_GET_CHUNK", PXSI_DEFAULT_CHUNK);
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
#ifdef PXS_HAVE_UCX
    case PXS_CONN_UCX:
        return &pxsi_store_ucx_ops;
#endif
    default:
        return NULL; /* HDF5, and UCX when UCX was not found: not built */
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
    return pxsi_err(PXS_ERR_NOTSUP, SUB, "%s: not supported by the \"%s\" connector", op,
                    s->ops->name);
}
#define NEED_OP(s, op)                                                         \
    do {                                                                       \
        if (!(s)->ops->op)                                                     \
            return notsup((s), #op);                                           \
    } while (0)

/* ------------------------------------------------------------ thread guard */
/* RMA stores allow one thread at a time (MPI windows and the owner's
 * allocator are not thread-safe): every call takes the in-use flag with
 * atomic_exchange and clears it on exit, so a second thread gets
 * PXS_ERR_BUSY instead of corrupting the store. The local connector is
 * thread-safe and skips the guard. Where MPI provides less than
 * MPI_THREAD_SERIALIZED, only the main thread may call MPI at all, so a call
 * from another thread is PXS_ERR_INVALID (MPI_Is_thread_main may be called
 * from any thread). A handle that is not a live store is left to the call
 * itself (PXS_ERR_INVALID there). *held says whether leave() is due. */
static int
enter(pxs_store_t *s, const char *what, int *held)
{
    *held = 0;
    if (!store_ok(s) || s->kind == PXS_CONN_LOCAL)
        return PXS_OK;
    if (atomic_exchange_explicit(&s->in_use, 1, memory_order_acquire))
        return pxsi_err(PXS_ERR_BUSY, SUB,
                        "%s: store used from two threads at once (RMA stores allow one thread "
                        "at a time)",
                        what);
    if (s->thread_level < MPI_THREAD_SERIALIZED) {
        int is_main = 1;
        if (MPI_Is_thread_main(&is_main) == MPI_SUCCESS && !is_main) {
            atomic_store_explicit(&s->in_use, 0, memory_order_release);
            return pxsi_err(PXS_ERR_INVALID, SUB,
                            "%s: called from a thread other than the main one, but MPI provides "
                            "only %s (initialise MPI with MPI_THREAD_SERIALIZED or higher to use "
                            "an RMA store from other threads, one at a time)",
                            what,
                            s->thread_level == MPI_THREAD_FUNNELED ? "MPI_THREAD_FUNNELED"
                                                                   : "MPI_THREAD_SINGLE");
        }
    }
    *held = 1;
    return PXS_OK;
}

static void
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
        return pxsi_err(PXS_ERR_BUSY, SUB, "test hold: already in use");
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
        return pxsi_err(PXS_ERR_INVALID, SUB, "MPI_COMM_NULL needs the local connector");
    int initialized = 0, finalized = 0;
    if (comm != MPI_COMM_NULL) {
        MPI_Initialized(&initialized);
        MPI_Finalized(&finalized);
        if (!initialized || finalized)
            return pxsi_err(PXS_ERR_INVALID, SUB, "MPI is not initialised (or finalised)");
    }
    int rank = 0, size = 1;
    if (comm != MPI_COMM_NULL) {
        if (MPI_Comm_rank(comm, &rank) != MPI_SUCCESS ||
            MPI_Comm_size(comm, &size) != MPI_SUCCESS)
            return pxsi_err(PXS_ERR_INVALID, SUB, "invalid communicator");
    }
    /* a local store on a multi-rank communicator still agrees (and fails),
     * in case another rank asked for a collective connector */
    int collective = !is_local || size > 1;

    const pxsi_store_conn_ops_t *ops = conn_ops(kind);
    if (local_rc == PXS_OK && !store_out)
        local_rc = pxsi_err(PXS_ERR_INVALID, SUB, "store_out is NULL");
    if (local_rc == PXS_OK && is_local && size != 1)
        local_rc = pxsi_err(PXS_ERR_INVALID, SUB,
                            "the local connector needs MPI_COMM_SELF or MPI_COMM_NULL");
    if (local_rc == PXS_OK && kind < 0)
        local_rc = pxsi_err(PXS_ERR_INVALID, SUB, "unknown connector %d", kind);
    else if (local_rc == PXS_OK && !ops)
        local_rc = pxsi_err(kind > 0 && kind < PXS_CONN_MAX_ ? PXS_ERR_NOTSUP
                                                             : PXS_ERR_INVALID,
                            SUB, "connector %d is not built in this library", kind);
    if (local_rc == PXS_OK && o.put_timeout != PXSI_TIMEOUT_DEFAULT_ &&
        o.put_timeout != o.put_timeout)
        local_rc = pxsi_err(PXS_ERR_INVALID, SUB, "put_timeout is NaN");
    if (local_rc == PXS_OK && (o.shm < -1 || o.shm > 1))
        local_rc = pxsi_err(PXS_ERR_INVALID, SUB, "shm must be -1, 0 or 1");
    if (local_rc == PXS_OK && (o.progress_thread < -1 || o.progress_thread > 1))
        local_rc = pxsi_err(PXS_ERR_INVALID, SUB, "progress_thread must be -1, 0 or 1");
    rc = collective ? pxsi_agree(comm, local_rc) : local_rc;
    if (rc)
        return rc;

    /* The handle, and for a collective store our own duplicate of comm
     * (MPI_ERRORS_RETURN): the user may free theirs once create returns.
     * Agreed over the user's comm, the last use of it. */
    pxs_store_t *s = calloc(1, sizeof *s);
    rc = s ? PXS_OK : pxsi_err(PXS_ERR_NOMEM, SUB, "store handle");
    if (rc == PXS_OK && pthread_mutex_init(&s->mu, NULL) != 0) {
        free(s);
        s = NULL;
        rc = pxsi_err(PXS_ERR_NOMEM, SUB, "store mutex");
    }
    MPI_Comm dup = MPI_COMM_NULL;
    if (collective) {
        int mrc = MPI_Comm_dup(comm, &dup);
        if (mrc != MPI_SUCCESS)
            dup = MPI_COMM_NULL;
        else
            mrc = MPI_Comm_set_errhandler(dup, MPI_ERRORS_RETURN);
        if (rc == PXS_OK)
            rc = pxsi_mpi_err(mrc, SUB, "MPI_Comm_dup");
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
            nrc = pxsi_mpi_err(mrc, SUB, "MPI_Bcast (store nonce)");
        if (nrc == PXS_OK && nonce == 0)
            nrc = pxsi_err(PXS_ERR_NOTSUP, SUB, "store nonce: rank 0 drew no random nonce");
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
        s->nonce = nonce;
        atomic_init(&s->in_use, 0);
        s->thread_level = MPI_THREAD_MULTIPLE;
        if (!is_local)
            MPI_Query_thread(&s->thread_level);
        s->put_timeout = o.put_timeout == PXSI_TIMEOUT_DEFAULT_
                             ? pxsi_env_double("PXS_PUT_TIMEOUT", PXSI_DEFAULT_TIMEOUT)
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
    pxsi_store_register(s); /* registry.c: bus destroy gives objects back */
    *store_out = s;
    return PXS_OK;
}

int
pxs_store_destroy(pxs_store_t *s)
{
    if (!s)
        return PXS_OK;
    if (!store_ok(s))
        return pxsi_err(PXS_ERR_INVALID, SUB, "destroy: not a live store handle");
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
    int busy = (nout || nv) ? pxsi_err(PXS_ERR_BUSY, SUB,
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
static int
store_put(pxs_store_t *s, const void *data, size_t len, const pxs_put_opts_t *opts,
          pxs_proxy_t *proxy_out)
{
    if (!store_ok(s))
        return pxsi_err(PXS_ERR_INVALID, SUB, "put: not a live store handle");
    if (!proxy_out || (!data && len))
        return pxsi_err(PXS_ERR_INVALID, SUB, "put: NULL %s", proxy_out ? "data" : "proxy_out");
    pxs_put_opts_t o;
    int rc = pxs_put_opts_init(&o);
    if (rc)
        return rc;
    if ((rc = pxsi_opts_take(&o, sizeof o, opts)) != PXS_OK)
        return rc;
    if (o.checksum != 0 && o.checksum != 1)
        return pxsi_err(PXS_ERR_INVALID, SUB, "put: checksum must be 0 or 1");
    if (o.timeout != o.timeout)
        return pxsi_err(PXS_ERR_INVALID, SUB, "put: timeout is NaN");
    double timeout = o.timeout == PXSI_TIMEOUT_DEFAULT_ ? s->put_timeout : o.timeout;
    pxs_proxy_info_t pi;
    memset(&pi, 0, sizeof pi);
    rc = s->ops->put(s->st, data, len, &o, timeout, &pi);
    if (rc)
        return rc;
    pi.version = PXS_PROXY_VERSION;
    pi.kind = (uint8_t)s->kind;
    pi.owner = (uint32_t)s->rank;
    pi.store_nonce = s->nonce;
    pi.topic = o.topic;
    pi.seq = o.seq;
    return pxs_proxy_encode(&pi, proxy_out);
}

/* ------------------------------------------------------------ proxies */
static int
check_proxy(const pxs_store_t *s, const pxs_proxy_t *proxy, pxs_proxy_info_t *pi)
{
    if (!proxy)
        return pxsi_err(PXS_ERR_INVALID, SUB, "NULL proxy");
    int rc = pxs_proxy_decode(proxy->bytes, PXS_PROXY_SIZE, pi);
    if (rc)
        return rc;
    /* Identity first, before anything reaches a connector (no remote word
     * is touched for another instance's proxy). Every rank of a store holds
     * the same nonce, so this rank's copy is the owner's. */
    if (pi->store_nonce == 0)
        return pxsi_err(PXS_ERR_CORRUPT, SUB,
                        "proxy carries no store instance (nonce 0): no store made it");
    if (pi->store_nonce != s->nonce)
        return pxsi_err(PXS_ERR_STALE, SUB,
                        "proxy of store instance 0x%016llx given to store instance 0x%016llx "
                        "(another store, job or run)",
                        (unsigned long long)pi->store_nonce, (unsigned long long)s->nonce);
    if (pi->kind != s->kind)
        return pxsi_err(PXS_ERR_CORRUPT, SUB, "proxy of connector kind %u given to a kind %d store",
                        pi->kind, s->kind);
    if (pi->owner >= (uint32_t)s->size)
        return pxsi_err(PXS_ERR_CORRUPT, SUB, "proxy owner %u out of range (%d ranks)",
                        pi->owner, s->size);
    return s->ops->check(s->st, pi);
}

static int
store_resolve(pxs_store_t *s, const pxs_proxy_t *proxy, void *buf, size_t cap,
              size_t *len_out)
{
    if (!store_ok(s))
        return pxsi_err(PXS_ERR_INVALID, SUB, "resolve: not a live store handle");
    if (!buf && cap)
        return pxsi_err(PXS_ERR_INVALID, SUB, "resolve: NULL buffer with cap %zu", cap);
    pxs_proxy_info_t pi;
    int rc = check_proxy(s, proxy, &pi);
    if (rc)
        return rc;
    if (pi.size > cap) {
        if (len_out)
            *len_out = (size_t)pi.size;
        return pxsi_err(PXS_ERR_TRUNC, SUB, "resolve: object is %llu bytes, buffer %zu",
                        (unsigned long long)pi.size, cap);
    }
    size_t n = 0;
    rc = s->ops->resolve(s->st, &pi, buf, cap, &n);
    if (rc == PXS_OK && len_out)
        *len_out = n;
    return rc;
}

static int
store_resolve_alloc(pxs_store_t *s, const pxs_proxy_t *proxy, void **buf_out,
                    size_t *len_out)
{
    if (!store_ok(s))
        return pxsi_err(PXS_ERR_INVALID, SUB, "resolve_alloc: not a live store handle");
    if (!buf_out)
        return pxsi_err(PXS_ERR_INVALID, SUB, "resolve_alloc: buf_out is NULL");
    pxs_proxy_info_t pi;
    int rc = check_proxy(s, proxy, &pi);
    if (rc)
        return rc;
    if (pi.size > SIZE_MAX - 1)
        return pxsi_err(PXS_ERR_CORRUPT, SUB, "resolve_alloc: size out of range");
    /* A forged size is bounded by the owner's arena, checked by the
     * connector; check it before allocating. */
    void *b = malloc(pi.size ? (size_t)pi.size : 1);
    if (!b)
        return pxsi_err(PXS_ERR_NOMEM, SUB, "resolve_alloc: %llu bytes",
                        (unsigned long long)pi.size);
    size_t n = 0;
    rc = s->ops->resolve(s->st, &pi, b, (size_t)pi.size, &n);
    if (rc) {
        free(b);
        return rc;
    }
    *buf_out = b;
    if (len_out)
        *len_out = n;
    return PXS_OK;
}

static int
store_view(pxs_store_t *s, const pxs_proxy_t *proxy, pxs_view_t *view_out)
{
    if (!store_ok(s))
        return pxsi_err(PXS_ERR_INVALID, SUB, "view: not a live store handle");
    if (!view_out)
        return pxsi_err(PXS_ERR_INVALID, SUB, "view: view_out is NULL");
    NEED_OP(s, view);
    NEED_OP(s, release);
    pxs_proxy_info_t pi;
    int rc = check_proxy(s, proxy, &pi);
    if (rc)
        return rc;
    pxs_view_t v;
    memset(&v, 0, sizeof v);
    rc = s->ops->view(s->st, &pi, &v);
    if (rc)
        return rc;
    pthread_mutex_lock(&s->mu);
    if (s->nviews == s->vcap) {
        int ncap = s->vcap ? 2 * s->vcap : 8;
        pxsi_view_rec_t *nt = ncap > s->vcap ? realloc(s->vt, (size_t)ncap * sizeof *nt) : NULL;
        if (!nt) {
            pthread_mutex_unlock(&s->mu);
            (void)s->ops->release(s->st, &v);
            return pxsi_err(PXS_ERR_NOMEM, SUB, "view table of %d entries", ncap);
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
        return pxsi_err(PXS_ERR_INVALID, SUB, "release: not a live store handle");
    NEED_OP(s, release);
    if (!view || view->internal_[3] != s || view->internal_u_[3] == 0)
        return pxsi_err(PXS_ERR_INVALID, SUB, "release: not a live view of this store");
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
        return pxsi_err(PXS_ERR_INVALID, SUB,
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
    (void)pxsi_err_prefix(r->status, SUB, "async resolve failed (%s)", pxs_errname(r->status));
    const char *d = pxs_last_error_detail();
    size_t n = strlen(SUB ": ");
    snprintf(r->why, sizeof r->why, "%s", strncmp(d, SUB ": ", n) == 0 ? d + n : d);
}

static int
store_resolve_start(pxs_store_t *s, const pxs_proxy_t *proxy, void *buf, size_t cap,
                    pxs_request_t **req_out)
{
    if (!store_ok(s))
        return pxsi_err(PXS_ERR_INVALID, SUB, "resolve_start: not a live store handle");
    if (!req_out || (!buf && cap))
        return pxsi_err(PXS_ERR_INVALID, SUB, "resolve_start: NULL argument");
    NEED_OP(s, resolve_start);
    NEED_OP(s, resolve_test);
    NEED_OP(s, resolve_wait);
    pxs_proxy_info_t pi;
    int rc = check_proxy(s, proxy, &pi);
    if (rc)
        return rc;
    pxs_request_t *r = calloc(1, sizeof *r);
    if (!r)
        return pxsi_err(PXS_ERR_NOMEM, SUB, "request");
    r->magic = PXSI_REQ_MAGIC;
    r->store = s;
    r->pi = pi;
    r->buf = buf;
    if (pi.size > cap) {
        /* reported by test/wait like any other resolve status */
        r->done = 1;
        r->status = pxsi_err(PXS_ERR_TRUNC, SUB, "resolve_start: object is %llu bytes, buffer %zu",
                             (unsigned long long)pi.size, cap);
        r->len = (size_t)pi.size;
    } else {
        rc = s->ops->resolve_start(s->st, &pi, buf, cap, r);
        if (rc) {
            free(r);
            return rc;
        }
    }
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
    char why[sizeof r->why];
    memcpy(why, r->why, sizeof why);
    r->magic = PXSI_MAGIC_DEAD;
    free(r);
    if (st)
        return pxsi_err(st, SUB, "%s", why[0] ? why : pxs_errname(st));
    return st;
}

static int
store_resolve_test(pxs_request_t *r, int *done_out, size_t *len_out)
{
    if (!PXSI_HANDLE_OK(r, PXSI_REQ_MAGIC) || !store_ok(r->store) || !done_out)
        return pxsi_err(PXS_ERR_INVALID, SUB, "resolve_test: not a live request");
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
        return pxsi_err(PXS_ERR_INVALID, SUB, "resolve_wait: not a live request");
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
        return pxsi_err(PXS_ERR_INVALID, SUB, "evict: not a live store handle");
    NEED_OP(s, evict);
    pxs_proxy_info_t pi;
    int rc = check_proxy(s, proxy, &pi);
    if (rc)
        return rc;
    return s->ops->evict(s->st, &pi);
}

static int
store_drop(pxs_store_t *s, const pxs_proxy_t *proxy)
{
    if (!store_ok(s))
        return pxsi_err(PXS_ERR_INVALID, SUB, "drop: not a live store handle");
    NEED_OP(s, drop);
    pxs_proxy_info_t pi;
    int rc = check_proxy(s, proxy, &pi);
    if (rc)
        return rc;
    return s->ops->drop(s->st, &pi);
}

static int
store_progress(pxs_store_t *s)
{
    if (!store_ok(s))
        return pxsi_err(PXS_ERR_INVALID, SUB, "progress: not a live store handle");
    NEED_OP(s, progress);
    return s->ops->progress(s->st);
}

static int
store_used(pxs_store_t *s, size_t *used_out, size_t *capacity_out)
{
    if (!store_ok(s))
        return pxsi_err(PXS_ERR_INVALID, SUB, "used: not a live store handle");
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
pxs_store_rank(const pxs_store_t *s)
{
    if (!store_ok(s))
        return pxsi_err(PXS_ERR_INVALID, SUB, "rank: not a live store handle");
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
pxs_store_put(pxs_store_t *s, const void *data, size_t len, const pxs_put_opts_t *opts,
              pxs_proxy_t *proxy_out)
{
    GUARDED(s, "put", store_put(s, data, len, opts, proxy_out));
}

int
pxs_store_resolve(pxs_store_t *s, const pxs_proxy_t *proxy, void *buf, size_t cap,
                  size_t *len_out)
{
    GUARDED(s, "resolve", store_resolve(s, proxy, buf, cap, len_out));
}

int
pxs_store_resolve_alloc(pxs_store_t *s, const pxs_proxy_t *proxy, void **buf_out,
                        size_t *len_out)
{
    GUARDED(s, "resolve_alloc", store_resolve_alloc(s, proxy, buf_out, len_out));
}

int
pxs_store_view(pxs_store_t *s, const pxs_proxy_t *proxy, pxs_view_t *view_out)
{
    GUARDED(s, "view", store_view(s, proxy, view_out));
}

int
pxs_store_release(pxs_store_t *s, pxs_view_t *view)
{
    GUARDED(s, "release", store_release(s, view));
}

int
pxs_store_resolve_start(pxs_store_t *s, const pxs_proxy_t *proxy, void *buf, size_t cap,
                        pxs_request_t **req_out)
{
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
    GUARDED(s, "evict", store_evict(s, proxy));
}

int
pxs_store_drop(pxs_store_t *s, const pxs_proxy_t *proxy)
{
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
        return pxsi_err(PXS_ERR_INVALID, SUB, "test_set_gen: gen %llu must be even and < 2^40 - 2",
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
        return pxsi_err(PXS_ERR_NOMEM, SUB, "store handle");
    if (pthread_mutex_init(&s->mu, NULL) != 0) {
        free(s);
        return pxsi_err(PXS_ERR_NOMEM, SUB, "store mutex");
    }
    s->kind = ops->kind;
    s->ops = ops;
    s->st = st;
    s->comm = comm;
    s->rank = -1; /* owns no object: every proxy's owner is another job's rank */
    s->size = size;
    s->nonce = nonce;
    atomic_init(&s->in_use, 0);
    MPI_Query_thread(&s->thread_level);
    s->put_timeout = 0;
    s->magic = PXSI_STORE_MAGIC;
    pxsi_store_register(s);
    *out = s;
    return PXS_OK;
}
