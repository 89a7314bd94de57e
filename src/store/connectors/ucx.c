/* UCX connector (PXS_CONN_UCX): each rank's arena and control words are
 * memory mapped with UCX (ucp_mem_map, once); worker addresses and remote
 * keys are exchanged at create (MPI_Allgatherv) and unpacked once per peer;
 * resolves are ucp_get_nbx, the claim protocol runs on UCX atomics. Built
 * when UCX is found (-DPXS_UCX=ON|OFF|AUTO, PXS_HAVE_UCX); otherwise
 * PXS_CONN_UCX is PXS_ERR_NOTSUP. See docs/DESIGN.md, section "UCX
 * connector".
 *
 * ======================================================================
 * WORDS: per rank, a control region of 5 * nslots 64-bit words, the same
 *   layout as the RMA connector (rma_int.h): A[s] = gen(40) << 24 |
 *   inflight(24), U[n+s] = remaining budget (int64), D[2n+3s..+2] = offset,
 *   size, crc | flags << 32. A and U are touched only by UCX atomics
 *   (ucp_atomic_op_nbx, always fetching so completion is remote completion),
 *   the owner's included: the owner updates its own words through an
 *   endpoint to itself, never with CPU atomics or plain loads (one kind of
 *   atomic per word: NIC atomics need not be coherent with CPU ones). D is
 *   written only by the owner with ucp_put_nbx (self endpoint) and read with
 *   ucp_get_nbx.
 * PROTOCOL: the RMA connector's, word for word (docs/DESIGN.md, section
 *   "The claim protocol"): claim = fetch-add(+1) on A and get of D, both
 *   completed; take = fetch-add(-1) on U; unclaim = fetch-add(-1) on A.
 *   put = bytes, put D, swap U, flush the self endpoint, then fetch-add
 *   (1 << 24) on A. Reclaim as in rma.c, snapshots by fetch-add(0).
 * PATHS: SELF (the owner's own arena: memcpy), SHM (a same-node peer whose
 *   arena UCX can map into this process: ucp_rkey_ptr; off with PXS_SHM=0 /
 *   opts.shm = 0 or when UCX cannot, e.g. UCX_TLS=tcp), RMA (ucp_get_nbx).
 *   Ordering of bytes against the words: fences F1-F4 as in rma.c.
 * NODE-LOCAL WORDS: SELF and SHM claims run on LA/LD in a node segment
 *   with C11 atomics (as rma.c's node-local claim words); the owner keeps
 *   LA and A both (publish, kill) and sums their inflight counts; the
 *   budget stays U (UCX). A kept object's same-node resolve needs no owner
 *   progress.
 * GET PATH: claim + D + the bytes' gets posted together, the take after
 *   the claim checked out, the unclaim posted and collected later
 *   (resolve_get, unclaim_post).
 * PROGRESS: over transports without remote hardware support (tcp), a peer's
 *   get or atomic on our memory completes only while our worker progresses:
 *   every wait here progresses it (and MPI now and then), and the optional
 *   progress thread (opts.progress_thread, PXS_PROGRESS_THREAD=1) does it
 *   while the owner computes or sits in MPI. With the thread, the worker is
 *   created UCS_THREAD_MODE_MULTI.
 * DEAD PEERS: endpoints use UCP_ERR_HANDLING_MODE_PEER; an operation on a
 *   dead peer completes with an error: PXS_ERR_PEER naming the rank and
 *   UCX's status text.
 * ====================================================================== */
#ifdef PXS_HAVE_UCX

#include <poll.h>
#include <sys/mman.h>
#include <stdlib.h>
#include <string.h>
#include <ucp/api/ucp.h>

#include "store/connectors/ucx_int.h"
#include "store/store_int.h"
#include "util/options.h"
#include "util/shmseg.h"

#define SUBSYS     "store.ucx"
#define GEN_ONE ((uint64_t)1 << PXSI_INFLIGHT_BITS)
#define BATCH   256 /* nonblocking operations posted before one wait */
/* control words per rank: A, U, D (5 per slot), then the store nonce */
#define CTL_WORDS(n) (5 * (size_t)(n) + 1)
/* node-local words per rank (a node segment): LA, LD (4 per slot) */
#define LCTL_WORDS(n) (4 * (size_t)(n))
/* unclaims of the get path posted and not waited for (completed later) */
#define PEND_MAX 64
/* descriptor cache entries (direct mapped by owner and slot) */
#define DCACHE 256

typedef struct ucx_st {
    MPI_Comm comm; /* the front end's duplicate */
    uint64_t nonce;
    int rank, size, shm_on, mt;
    int attached;      /* a handle of another job's store (pxs_attach): no arena
                          of its own, rank -1, size = the exporting job's */
    double op_timeout; /* attached: bound of every wait (< 0: none) */
    uint64_t cap;
    uint32_t nslots;
    size_t chunk, piece;
    ucp_context_h ctx;
    ucp_worker_h w;
    ucp_ep_h *ep;
    ucp_mem_h arena_mh, ctl_mh;
    unsigned char *arena;
    uint64_t *ctl;
    ucp_rkey_h *arena_rk, *ctl_rk;
    uint64_t *peer_arena, *peer_ctl, *peer_cap;
    uint32_t *peer_nslots;
    const unsigned char **peer_base; /* SELF/SHM base, NULL: ucp_get_nbx */
    ucs_status_t *peer_err;          /* first error seen on the endpoint */
    pxsi_arena_t al;
    pxsi_conn_slot_t *slots;
    uint32_t ndying;
    uint64_t *snap; /* nslots fetch results */
    pxsi_store_stats_t stats;
    /* node-local claim words (docs/DESIGN.md, section "UCX connector"):
     * one node segment per rank, LA[s] then LD[n+3s..]; peer_lctl[o] NULL:
     * o is not on this node, or the segment is off (PXS_SHM=0, refused) */
    pxsi_shmseg_t *lseg;
    _Atomic uint64_t **peer_lctl;
    /* unclaims posted on the get path, not yet completed (their reply
     * words live here until then) */
    struct pend {
        ucs_status_ptr_t rq;
        uint64_t res;
        int o;
    } pend[PEND_MAX];
    int npend;
    /* descriptors seen by a claim that checked out, by (owner, slot, gen):
     * D of a slot is fixed while its gen stays (written before the gen is
     * published, rewritten only after a kill moved it), so a resolve whose
     * proxy matches a cached entry of the gen its claim then sees needs no
     * get of D (resolve_get; docs/DESIGN.md, section "UCX connector") */
    struct dcache {
        int o; /* -1: empty */
        uint32_t s;
        uint64_t gen, d[3];
    } dcache[DCACHE];
    /* regions of the event transport handed over at a bus's destroy
     * (pxsi_ucx_keep_region): deregistered and freed after the worker */
    struct keep {
        ucp_mem_h mh;
        void *pages;
        size_t len;
    } *keep;
    int nkeep;
    /* progress thread */
    pthread_t thr;
    int thr_on;
    atomic_int stop;
    /* the calling thread's progress, seen by the progress thread, which
     * stays off the worker (and its lock) while the caller progresses it:
     * `inside` counts waits in progress, `epoch` moves at every progress
     * call of the caller (docs/DESIGN.md, section "UCX connector",
     * "Progress and the progress thread") */
    atomic_uint inside, epoch;
} ucx_t;

/* ------------------------------------------------------------ errors, waits */
static int
peer_fail(ucx_t *u, int o, ucs_status_t st, const char *what)
{
    if (u->peer_err[o] != UCS_OK && u->peer_err[o] != st)
        return pxsi_err(
            PXS_ERR_PEER, SUBSYS, "%s: rank %d: UCX: %s (endpoint: %s)", what, o,
            ucs_status_string(st), ucs_status_string(u->peer_err[o]));
    return pxsi_err(PXS_ERR_PEER, SUBSYS, "%s: rank %d: UCX: %s", what, o,
                    ucs_status_string(st));
}

static void
ep_error(void *arg, ucp_ep_h ep, ucs_status_t st)
{
    ucs_status_t *slot = arg;
    (void)ep;
    if (*slot == UCS_OK)
        *slot = st;
}

/* The caller's own progress of the worker (see ucx_t.epoch). */
static unsigned
main_progress(ucx_t *u)
{
    if (u->thr_on)
        atomic_fetch_add_explicit(&u->epoch, 1, memory_order_relaxed);
    return ucp_worker_progress(u->w);
}

static void
pause_progress(ucx_t *u, pxsi_backoff_t *b)
{
    if (main_progress(u))
        return;
    pxsi_backoff_pause_mpi(b, u->comm); /* sleeps capped, MPI now and then */
}

/* Progress until request r completes (no bound: used after its endpoint
 * was force-closed, which completes it); frees it. */
static ucs_status_t
wait_done(ucp_worker_h w, ucs_status_ptr_t r)
{
    if (r == NULL)
        return UCS_OK;
    if (UCS_PTR_IS_ERR(r))
        return UCS_PTR_STATUS(r);
    pxsi_backoff_t b;
    pxsi_backoff_init(&b, -1.0);
    ucs_status_t st;
    while ((st = ucp_request_check_status(r)) == UCS_INPROGRESS)
        if (!ucp_worker_progress(w))
            pxsi_backoff_pause(&b);
    ucp_request_free(r);
    return st;
}

/* Wait for n requests (NULL: done at once; errors: as posted); frees them.
 * The first failure wins. On expiry with ep: see pxsi_ucx_wait_ep (the
 * requests complete before the return); without: the request is released
 * while UCX may still complete it (its buffers must outlive the worker). See
 * ucx_int.h. */
static ucs_status_t
ucx_wait(ucp_worker_h w, MPI_Comm comm, ucs_status_ptr_t *rq, int n, double timeout,
         ucp_ep_h *ep)
{
    ucs_status_t first = UCS_OK;
    pxsi_backoff_t b;
    pxsi_backoff_init(&b, timeout);
    for (int i = 0; i < n; i++) {
        ucs_status_t st = UCS_OK;
        if (rq[i] == NULL) {
            st = UCS_OK;
        } else if (UCS_PTR_IS_ERR(rq[i])) {
            st = UCS_PTR_STATUS(rq[i]);
        } else {
            while ((st = ucp_request_check_status(rq[i])) == UCS_INPROGRESS) {
                if (pxsi_backoff_expired(&b)) {
                    st = UCS_ERR_ENDPOINT_TIMEOUT;
                    break;
                }
                if (ucp_worker_progress(w))
                    continue;
                if (comm != MPI_COMM_NULL)
                    pxsi_backoff_pause_mpi(&b, comm); /* sleeps capped, MPI now and then */
                else
                    pxsi_backoff_pause(&b);
            }
            if (st == UCS_ERR_ENDPOINT_TIMEOUT && ep && *ep) {
                /* the peer does not answer: cancel, force-close the
                 * endpoint, and collect every request still in flight */
                for (int j = i; j < n; j++)
                    if (rq[j] && !UCS_PTR_IS_ERR(rq[j]))
                        ucp_request_cancel(w, rq[j]);
                ucp_request_param_t p;
                memset(&p, 0, sizeof p);
                p.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS;
                p.flags = UCP_EP_CLOSE_FLAG_FORCE;
                ucs_status_ptr_t cr = ucp_ep_close_nbx(*ep, &p);
                *ep = NULL;
                for (int j = i; j < n; j++) {
                    if (rq[j] && !UCS_PTR_IS_ERR(rq[j]))
                        (void)wait_done(w, rq[j]);
                    rq[j] = NULL;
                }
                (void)wait_done(w, cr);
                PXSI_DEBUG(SUBSYS, "wait expired: endpoint force-closed, %d request(s) collected",
                           n - i);
                return first != UCS_OK ? first : st;
            }
            /* expired without ep: released, UCX completes it later */
            ucp_request_free(rq[i]);
        }
        rq[i] = NULL;
        if (first == UCS_OK)
            first = st;
    }
    return first;
}

ucs_status_t
pxsi_ucx_wait(ucp_worker_h w, MPI_Comm comm, ucs_status_ptr_t *rq, int n, double timeout)
{
    return ucx_wait(w, comm, rq, n, timeout, NULL);
}

ucs_status_t
pxsi_ucx_wait_ep(ucp_worker_h w, MPI_Comm comm, ucs_status_ptr_t *rq, int n, double timeout,
                 ucp_ep_h *ep)
{
    return ucx_wait(w, comm, rq, n, timeout, ep);
}

/* Waits as long as it takes (op_timeout < 0): with the peer error mode a
 * dead peer completes the request with an error. Attached: op_timeout bounds
 * the wait (the request's buffers are the state's or the caller's, which the
 * caller must not free before destroy). */
static ucs_status_t
wait_all(ucx_t *u, ucs_status_ptr_t *rq, int n)
{
    if (!u->thr_on)
        return pxsi_ucx_wait(u->w, u->comm, rq, n, u->op_timeout);
    atomic_fetch_add_explicit(&u->inside, 1, memory_order_relaxed);
    ucs_status_t st = pxsi_ucx_wait(u->w, u->comm, rq, n, u->op_timeout);
    atomic_fetch_add_explicit(&u->epoch, 1, memory_order_relaxed);
    atomic_fetch_sub_explicit(&u->inside, 1, memory_order_relaxed);
    return st;
}

static ucs_status_t
wait1(ucx_t *u, ucs_status_ptr_t r)
{
    return wait_all(u, &r, 1);
}

/* A fetching atomic on rank o's control word idx (always fetching: its
 * completion is the remote completion). */
static ucs_status_ptr_t
amo(ucx_t *u, int o, uint64_t idx, ucp_atomic_op_t op, const uint64_t *val,
    uint64_t *res)
{
    ucp_request_param_t p;
    memset(&p, 0, sizeof p);
    p.op_attr_mask =
        UCP_OP_ATTR_FIELD_DATATYPE | UCP_OP_ATTR_FIELD_REPLY_BUFFER;
    p.datatype = ucp_dt_make_contig(sizeof(uint64_t));
    p.reply_buffer = res;
    if (!u->ep[o]) /* force-closed after a timeout */
        return UCS_STATUS_PTR(UCS_ERR_NOT_CONNECTED);
    return ucp_atomic_op_nbx(u->ep[o], op, val, 1, u->peer_ctl[o] + 8 * idx,
                             u->ctl_rk[o], &p);
}

static ucs_status_ptr_t
get(ucx_t *u, int o, void *buf, size_t len, uint64_t raddr, ucp_rkey_h rk)
{
    ucp_request_param_t p;
    memset(&p, 0, sizeof p);
    if (!u->ep[o])
        return UCS_STATUS_PTR(UCS_ERR_NOT_CONNECTED);
    return ucp_get_nbx(u->ep[o], buf, len, raddr, rk, &p);
}

static ucs_status_ptr_t
flush_ep(ucx_t *u, int o)
{
    ucp_request_param_t p;
    memset(&p, 0, sizeof p);
    if (!u->ep[o])
        return UCS_STATUS_PTR(UCS_ERR_NOT_CONNECTED);
    return ucp_ep_flush_nbx(u->ep[o], &p);
}

static uint64_t
w_u(const ucx_t *u, int o, uint32_t s)
{
    return (uint64_t)u->peer_nslots[o] + s;
}
static uint64_t
w_d(const ucx_t *u, int o, uint32_t s)
{
    return 2 * (uint64_t)u->peer_nslots[o] + 3 * (uint64_t)s;
}

static int
path_of(const ucx_t *u, int o)
{
    if (o == u->rank && !u->attached)
        return PXSI_PATH_SELF;
    return u->peer_base[o] ? PXSI_PATH_SHM : PXSI_PATH_RMA;
}

/* Does a claim on owner o's objects use the node-local words? Where the
 * bytes are read in place (SELF, SHM) and o's node segment is mapped here;
 * else the UCX words. The owner keeps both sets (docs/DESIGN.md, section
 * "UCX connector", "Node-local claim words"). */
static int
local_words(const ucx_t *u, int o)
{
    return u->peer_lctl && u->peer_lctl[o] && path_of(u, o) != PXSI_PATH_RMA;
}

/* Does the owner keep node-local words for its own slots? */
static int
own_local(const ucx_t *u)
{
    return u->peer_lctl && !u->attached && u->peer_lctl[u->rank];
}

static _Atomic uint64_t *
l_a(const ucx_t *u, int o, uint32_t s)
{
    return u->peer_lctl[o] + s;
}

static _Atomic uint64_t *
l_d(const ucx_t *u, int o, uint32_t s)
{
    return u->peer_lctl[o] + u->peer_nslots[o] + 3 * (size_t)s;
}

/* ------------------------------------------------------------ claim protocol
 */
static int
unclaim(ucx_t *u, int o, uint32_t s)
{
    uint64_t m = UINT64_MAX, ign = 0;
    /* F3 (release): reads of the bytes before the claim goes back */
    atomic_thread_fence(memory_order_release);
    if (local_words(u, o)) {
        atomic_fetch_sub(l_a(u, o, s), 1); /* seq_cst: a release too */
        return PXS_OK;
    }
    ucs_status_t st = wait1(u, amo(u, o, s, UCP_ATOMIC_OP_ADD, &m, &ign));
    return st == UCS_OK ? PXS_OK : peer_fail(u, o, st, "unclaim");
}

/* Collect the posted unclaims that completed (all != 0: wait for every
 * one). A failed one is logged: its pin stays on a peer that failed (a
 * leaked pin is safe, see "The claim protocol"). */
static void
pend_collect(ucx_t *u, int all)
{
    for (int i = 0; u->npend && i < PEND_MAX; i++) {
        struct pend *e = &u->pend[i];
        if (!e->rq)
            continue;
        if (!all && ucp_request_check_status(e->rq) == UCS_INPROGRESS)
            continue;
        ucs_status_t st = wait1(u, e->rq); /* frees it */
        if (st != UCS_OK)
            PXSI_DEBUG(SUBSYS, "posted unclaim on rank %d: UCX: %s", e->o,
                       ucs_status_string(st));
        e->rq = NULL;
        u->npend--;
    }
}

/* The unclaim of the get path: posted, not waited for (the resolve's bytes
 * are in the caller's buffer already); completed by a later call (at the
 * latest destroy's). At most PEND_MAX in flight: when full, the first slot
 * is waited for. Node-local words: unclaim() (one CPU atomic). */
static int
unclaim_post(ucx_t *u, int o, uint32_t s)
{
    static const uint64_t m = UINT64_MAX;
    if (local_words(u, o))
        return unclaim(u, o, s);
    atomic_thread_fence(memory_order_release); /* F3 */
    pend_collect(u, 0);
    int i = 0;
    while (i < PEND_MAX && u->pend[i].rq)
        i++;
    if (i == PEND_MAX) {
        i = 0;
        ucs_status_t st = wait1(u, u->pend[0].rq);
        if (st != UCS_OK)
            PXSI_DEBUG(SUBSYS, "posted unclaim on rank %d: UCX: %s", u->pend[0].o,
                       ucs_status_string(st));
        u->pend[0].rq = NULL;
        u->npend--;
    }
    struct pend *e = &u->pend[i];
    ucs_status_ptr_t r = amo(u, o, s, UCP_ATOMIC_OP_ADD, &m, &e->res);
    if (r == NULL)
        return PXS_OK;
    if (UCS_PTR_IS_ERR(r))
        return peer_fail(u, o, UCS_PTR_STATUS(r), "unclaim");
    e->rq = r;
    e->o = o;
    u->npend++;
    (void)main_progress(u); /* sends it now over tcp too */
    return PXS_OK;
}

/* The checks of a claim whose fetch-add returned old and whose descriptor
 * read returned d: gen, claims in flight, descriptor. On failure the claim
 * is released. */
static int
claim_check(ucx_t *u, const pxs_proxy_info_t *pi, uint64_t old, const uint64_t d[3])
{
    int o = (int)pi->owner;
    uint32_t s = pxsi_gen_slot(pi->generation);
    uint64_t gen = pxsi_gen_gen(pi->generation);
    if (old >> PXSI_INFLIGHT_BITS != gen) {
        int rc = unclaim(u, o, s);
        return rc ? rc
                  : pxsi_err(
                        PXS_ERR_STALE, SUBSYS,
                        "object (rank %d slot %u gen %llu) is gone (gen %llu)",
                        o, s, (unsigned long long)gen,
                        (unsigned long long)(old >> PXSI_INFLIGHT_BITS));
    }
    if ((old & PXSI_INFLIGHT_MASK) >= PXSI_INFLIGHT_LIMIT) {
        int rc = unclaim(u, o, s);
        return rc ? rc
                  : pxsi_err(PXS_ERR_BUSY, SUBSYS,
                             "object (rank %d slot %u) has %llu claims in "
                             "flight (limit %llu)",
                             o, s,
                             (unsigned long long)(old & PXSI_INFLIGHT_MASK),
                             (unsigned long long)PXSI_INFLIGHT_LIMIT);
    }
    if (d[0] != pi->offset || d[1] != pi->size ||
        (uint32_t)d[2] != pi->payload_crc ||
        (uint16_t)(d[2] >> 32) != pi->flags) {
        (void)unclaim(u, o, s);
        return pxsi_err(PXS_ERR_CORRUPT, SUBSYS,
                        "proxy does not match object (rank %d slot %u): forged "
                        "offset/size/flags",
                        o, s);
    }
    return PXS_OK;
}

/* Step 1. Node-local words: fetch-add on LA (seq_cst: one order with the
 * owner's kill on this word), LD read only when the gen matches. Else the
 * UCX words: fetch-add on A and get of D, both completed. A failure of the
 * UCX claim itself leaves it alone (it may or may not have been applied: a
 * leaked pin is safe, a second decrement would corrupt the gen). */
static int
claim(ucx_t *u, const pxs_proxy_info_t *pi)
{
    int o = (int)pi->owner;
    uint32_t s = pxsi_gen_slot(pi->generation);
    uint64_t one = 1, old = 0, d[3] = {0, 0, 0};
    if (local_words(u, o)) {
        /* the words stay mapped after the owner died: once UCX saw the
         * endpoint fail, say so (a kept object's bytes would still be
         * right, but its owner is gone) */
        if (u->peer_err[o] != UCS_OK && o != u->rank)
            return peer_fail(u, o, u->peer_err[o], "claim (node-local)");
        old = atomic_fetch_add(l_a(u, o, s), 1);
        u->stats.claims_local++;
        if (old >> PXSI_INFLIGHT_BITS == pxsi_gen_gen(pi->generation)) {
            const _Atomic uint64_t *ld = l_d(u, o, s);
            for (int i = 0; i < 3; i++)
                d[i] = atomic_load_explicit(&ld[i], memory_order_relaxed);
        }
        return claim_check(u, pi, old, d);
    }
    ucs_status_ptr_t rq[2];
    rq[0] = amo(u, o, s, UCP_ATOMIC_OP_ADD, &one, &old);
    rq[1] =
        get(u, o, d, sizeof d, u->peer_ctl[o] + 8 * w_d(u, o, s), u->ctl_rk[o]);
    ucs_status_t st = wait_all(u, rq, 2);
    if (st != UCS_OK)
        return peer_fail(u, o, st, "claim: generation/descriptor");
    u->stats.claims_mpi++;
    return claim_check(u, pi, old, d);
}

/* Step 2 after a claim: one unit of the budget, always from the UCX word U
 * (one budget word per object, shared with remote and attached readers);
 * nothing for a keep object. On failure the claim is released. */
static int
take(ucx_t *u, const pxs_proxy_info_t *pi)
{
    if (pi->flags & PXS_PROXY_F_KEEP)
        return PXS_OK;
    int o = (int)pi->owner;
    uint32_t s = pxsi_gen_slot(pi->generation);
    uint64_t m = UINT64_MAX, rem = 0;
    ucs_status_t st =
        wait1(u, amo(u, o, w_u(u, o, s), UCP_ATOMIC_OP_ADD, &m, &rem));
    if (st != UCS_OK) {
        int rc = peer_fail(u, o, st, "resolve: budget");
        (void)unclaim(u, o, s);
        return rc;
    }
    if ((int64_t)rem <= 0) {
        (void)unclaim(u, o, s);
        return pxsi_err(PXS_ERR_STALE, SUBSYS,
                        "object (rank %d slot %u) used its resolve budget", o,
                        s);
    }
    return PXS_OK;
}

static int
acquire(ucx_t *u, const pxs_proxy_info_t *pi)
{
    int rc = claim(u, pi);
    return rc ? rc : take(u, pi);
}

/* Post the gets of [off, off + len) of rank o's arena in chunks into rq
 * (nrq entries at most); returns the number posted. */
static int
post_gets(ucx_t *u, int o, uint64_t off, void *buf, size_t len,
          ucs_status_ptr_t *rq)
{
    unsigned char *b = buf;
    int n = 0;
    for (size_t done = 0; done < len;) {
        size_t k = len - done < u->chunk ? len - done : u->chunk;
        rq[n++] = get(u, o, b + done, k, u->peer_arena[o] + off + done,
                      u->arena_rk[o]);
        u->stats.gets++;
        done += k;
    }
    return n;
}

static int
fetch(ucx_t *u, int o, uint64_t off, void *buf, size_t len, int path)
{
    if (path != PXSI_PATH_RMA) {
        atomic_thread_fence(
            memory_order_acquire); /* F2, pairs with F1 in put */
        pxsi_copy(buf, u->peer_base[o] + off, len, u->piece);
        if (path == PXSI_PATH_SHM)
            u->stats.resolves_shm++;
        else
            u->stats.resolves_self++;
        return PXS_OK;
    }
    ucs_status_ptr_t rq[BATCH];
    unsigned char *b = buf;
    for (size_t done = 0; done < len;) {
        size_t span = len - done;
        size_t most = (size_t)BATCH * u->chunk;
        if (span > most)
            span = most;
        int n = post_gets(u, o, off + done, b + done, span, rq);
        ucs_status_t st = wait_all(u, rq, n);
        if (st != UCS_OK)
            return peer_fail(u, o, st, "resolve: ucp_get_nbx");
        done += span;
    }
    u->stats.resolves_rma++;
    return PXS_OK;
}

/* The get path in one round trip for a keep object (two with a budget):
 * the claim's fetch-add on A, the get of D and the gets of the bytes (the
 * first BATCH chunks) are posted together; the take is posted once the
 * claim checked out, while the bytes are still in flight. Bytes read before
 * the claim took effect are right when the claim sees the proxy's gen: the
 * object was published before the proxy existed, and only a kill moves the
 * gen, so it was live from the publication to the claim, pinned after (the
 * argument that lets D be read alongside, docs/DESIGN.md, section "UCX
 * connector"). On any failure the bytes in buf are garbage and every get
 * has completed. On success the claim is held. */
static struct dcache *
dcache_at(ucx_t *u, int o, uint32_t s)
{
    return &u->dcache[((uint32_t)o * 2654435761u + s) % DCACHE];
}

/* Does the cache hold (o, s, gen) with the proxy's descriptor? */
static int
dcache_hit(ucx_t *u, const pxs_proxy_info_t *pi)
{
    int o = (int)pi->owner;
    uint32_t s = pxsi_gen_slot(pi->generation);
    const struct dcache *c = dcache_at(u, o, s);
    return c->o == o && c->s == s && c->gen == pxsi_gen_gen(pi->generation) &&
           c->d[0] == pi->offset && c->d[1] == pi->size &&
           (uint32_t)c->d[2] == pi->payload_crc && (uint16_t)(c->d[2] >> 32) == pi->flags;
}

static int
resolve_get(ucx_t *u, const pxs_proxy_info_t *pi, void *buf)
{
    int o = (int)pi->owner;
    uint32_t s = pxsi_gen_slot(pi->generation);
    size_t len = (size_t)pi->size, most = (size_t)BATCH * u->chunk;
    size_t first = len < most ? len : most;
    uint64_t one = 1, m = UINT64_MAX, old = 0, rem = 1, d[3] = {0, 0, 0};
    ucs_status_ptr_t rq[BATCH + 3];
    int hit = dcache_hit(u, pi);
    rq[0] = amo(u, o, s, UCP_ATOMIC_OP_ADD, &one, &old);
    if (hit) { /* D of this gen, seen before: the claim's gen check suffices */
        const struct dcache *c = dcache_at(u, o, s);
        memcpy(d, c->d, sizeof d);
        rq[1] = NULL;
    } else {
        rq[1] = get(u, o, d, sizeof d, u->peer_ctl[o] + 8 * w_d(u, o, s), u->ctl_rk[o]);
    }
    int n = post_gets(u, o, pi->offset, buf, first, rq + 2);
    ucs_status_t st = wait_all(u, rq, 2);
    if (st != UCS_OK) {
        (void)wait_all(u, rq + 2, n);
        return peer_fail(u, o, st, "claim: generation/descriptor");
    }
    u->stats.claims_mpi++;
    int rc = claim_check(u, pi, old, d);
    if (rc) {
        (void)wait_all(u, rq + 2, n);
        return rc;
    }
    if (!hit) /* D matched the proxy under the gen the claim saw */
        *dcache_at(u, o, s) = (struct dcache){o, s, pxsi_gen_gen(pi->generation),
                                              {d[0], d[1], d[2]}};
    if (!(pi->flags & PXS_PROXY_F_KEEP))
        rq[2 + n++] = amo(u, o, w_u(u, o, s), UCP_ATOMIC_OP_ADD, &m, &rem);
    st = wait_all(u, rq + 2, n);
    if (st == UCS_OK && (int64_t)rem <= 0) {
        (void)unclaim(u, o, s);
        return pxsi_err(PXS_ERR_STALE, SUBSYS,
                        "object (rank %d slot %u) used its resolve budget", o, s);
    }
    unsigned char *b = buf;
    for (size_t done = first; st == UCS_OK && done < len;) {
        size_t span = len - done < most ? len - done : most;
        n = post_gets(u, o, pi->offset + done, b + done, span, rq);
        st = wait_all(u, rq, n);
        done += span;
    }
    if (st != UCS_OK) {
        rc = peer_fail(u, o, st, "resolve: ucp_get_nbx / budget");
        (void)unclaim(u, o, s);
        return rc;
    }
    u->stats.resolves_rma++;
    return PXS_OK;
}

/* ------------------------------------------------------------ owner side */
static int
kill_slot(ucx_t *u, uint32_t s)
{
    uint64_t g = GEN_ONE, ign = 0;
    ucs_status_t st = wait1(u, amo(u, u->rank, s, UCP_ATOMIC_OP_ADD, &g, &ign));
    if (st != UCS_OK)
        return peer_fail(u, u->rank, st, "kill (own word)");
    if (own_local(u))
        atomic_fetch_add(l_a(u, u->rank, s), GEN_ONE); /* kill on LA (seq_cst) */
    u->slots[s].gen++;
    u->slots[s].state = PXSI_SLOT_DYING;
    u->ndying++;
    return PXS_OK;
}

/* Does reclaim need slot s's budget word? A live object that is neither
 * kept (nobody takes from its budget) nor evicted (dies anyway). */
static int
need_budget(const ucx_t *u, uint32_t s)
{
    const pxsi_conn_slot_t *sl = &u->slots[s];
    return sl->state == PXSI_SLOT_LIVE && !sl->evict && !(sl->flags & PXS_PROXY_F_KEEP);
}

/* Snapshot own words base + s for every s < n in state `state` (budgets:
 * only where need_budget), by fetch-add 0 in batches; results in
 * u->snap[s]. */
static int
snapshot(ucx_t *u, uint64_t base, uint32_t n, int state)
{
    static const uint64_t zero = 0;
    ucs_status_ptr_t rq[BATCH];
    int k = 0;
    for (uint32_t s = 0; s < n; s++) {
        if (u->slots[s].state != state ||
            (state == PXSI_SLOT_LIVE && !need_budget(u, s)))
            continue;
        rq[k++] =
            amo(u, u->rank, base + s, UCP_ATOMIC_OP_ADD, &zero, &u->snap[s]);
        if (k == BATCH) {
            ucs_status_t st = wait_all(u, rq, k);
            k = 0;
            if (st != UCS_OK)
                return peer_fail(u, u->rank, st,
                                 "reclaim: snapshot of own words");
        }
    }
    if (k) {
        ucs_status_t st = wait_all(u, rq, k);
        if (st != UCS_OK)
            return peer_fail(u, u->rank, st, "reclaim: snapshot of own words");
    }
    return PXS_OK;
}

static int
reclaim(ucx_t *u)
{
    uint32_t n = u->al.hwm;
    if (!u->al.nlive || !n)
        return PXS_OK;
    int rc = snapshot(u, w_u(u, u->rank, 0), n, PXSI_SLOT_LIVE);
    if (rc)
        return rc;
    for (uint32_t s = 0; s < n; s++) {
        if (u->slots[s].state == PXSI_SLOT_LIVE &&
            (u->slots[s].evict || (need_budget(u, s) && (int64_t)u->snap[s] <= 0))) {
            if ((rc = kill_slot(u, s)) != PXS_OK)
                return rc;
        }
    }
    if (!u->ndying)
        return PXS_OK;
    if ((rc = snapshot(u, 0, n, PXSI_SLOT_DYING)) != PXS_OK)
        return rc;
    atomic_thread_fence(
        memory_order_acquire); /* F4, pairs with F3 in unclaim */
    int loc = own_local(u);
    for (uint32_t s = 0; s < n; s++) {
        if (u->slots[s].state != PXSI_SLOT_DYING)
            continue;
        /* in flight: the UCX claims (A) plus the node-local ones (LA),
         * each read after this slot's kill on that word */
        uint64_t inflight = u->snap[s] & PXSI_INFLIGHT_MASK;
        if (loc)
            inflight += atomic_load(l_a(u, u->rank, s)) & PXSI_INFLIGHT_MASK;
        if (inflight == 0) {
            u->ndying--;
            u->stats.reclaimed++;
            pxsi_conn_free_slot(&u->al, &u->slots[s], s, SUBSYS);
        }
    }
    return PXS_OK;
}

static int
reclaim_cb(void *ctx)
{
    return reclaim(ctx);
}

static void
put_pause(void *ctx, pxsi_backoff_t *b)
{
    pause_progress(ctx, b);
}

static int
ucx_put_check(void *st, size_t len)
{
    const ucx_t *u = st;
    if (u->attached)
        return pxsi_err(
            PXS_ERR_INVALID, SUBSYS,
            "put on an attached store: objects are put by the exporting job");
    return pxsi_conn_fits(SUBSYS, &u->al, len);
}

static int
ucx_put(void *st, const void *data, size_t len, const pxs_put_opts_t *o,
        double timeout, pxs_proxy_info_t *out)
{
    ucx_t *u = st;
    if (u->attached)
        return ucx_put_check(u, 0);
    const pxsi_conn_waiter_t wt = {reclaim_cb, put_pause, u, &u->stats.put_waits,
                                   &u->stats.put_wait_seconds};
    pxsi_conn_block_t blk;
    int rc = pxsi_conn_alloc(SUBSYS, &u->al, len, timeout, &wt, &blk);
    if (rc)
        return rc;
    uint32_t s = blk.slot;
    uint64_t off = blk.off;
    uint32_t crc = 0;
    unsigned char *dst = u->arena + off;
    if (o->checksum) {
        const unsigned char *src = data;
        for (size_t done = 0; done < len;) {
            size_t n = len - done < u->piece ? len - done : u->piece;
            memcpy(dst + done, src + done, n);
            crc = pxs_crc32c(crc, dst + done, n);
            done += n;
        }
    } else {
        pxsi_copy(dst, data, len, u->piece);
    }
    uint16_t flags = pxsi_conn_put_flags(o);
    /* F1 (release): bytes before the descriptor and the gen */
    atomic_thread_fence(memory_order_release);
    uint64_t d[3] = {off, (uint64_t)len,
                     (uint64_t)crc | ((uint64_t)flags << 32)};
    int loc = own_local(u);
    if (loc) { /* LD: read by node peers only after they saw the gen on LA */
        _Atomic uint64_t *ld = l_d(u, u->rank, s);
        for (int i = 0; i < 3; i++)
            atomic_store_explicit(&ld[i], d[i], memory_order_relaxed);
    }
    uint64_t budget = (uint64_t)pxsi_conn_put_budget(o), ign = 0, g = GEN_ONE,
             ign2 = 0;
    ucp_request_param_t p;
    memset(&p, 0, sizeof p);
    ucs_status_ptr_t rq[3];
    rq[0] = ucp_put_nbx(u->ep[u->rank], d, sizeof d,
                        u->peer_ctl[u->rank] + 8 * w_d(u, u->rank, s),
                        u->ctl_rk[u->rank], &p);
    rq[1] =
        amo(u, u->rank, w_u(u, u->rank, s), UCP_ATOMIC_OP_SWAP, &budget, &ign);
    ucs_status_t us = wait_all(u, rq, 2);
    if (us == UCS_OK)
        us = wait1(u, flush_ep(u, u->rank)); /* the descriptor is in place */
    int gen_issued = 0;
    if (us == UCS_OK) {
        gen_issued = 1;
        if (loc) /* publish on LA (seq_cst: after LD, U and the bytes) */
            atomic_fetch_add(l_a(u, u->rank, s), GEN_ONE);
        us = wait1(u, amo(u, u->rank, s, UCP_ATOMIC_OP_ADD, &g, &ign2));
    }
    if (us != UCS_OK) {
        if (gen_issued)
            u->slots[s].state = PXSI_SLOT_BROKEN; /* never reused: see rma.c */
        else
            pxsi_arena_free(&u->al, s);
        return peer_fail(u, u->rank, us, "put: publishing the descriptor");
    }
    pxsi_conn_publish(&u->slots[s], s, off, len, flags, crc, o, out);
    return PXS_OK;
}

/* ------------------------------------------------------------ resolve */
static int
ucx_check(void *st, const pxs_proxy_info_t *pi)
{
    ucx_t *u = st;
    int o = (int)pi->owner;
    return pxsi_conn_check(SUBSYS, pi, u->nonce, u->peer_nslots[o],
                           u->peer_cap[o]);
}

static int
ucx_resolve(void *st, const pxs_proxy_info_t *pi, void *buf, size_t cap,
            size_t *len_out)
{
    ucx_t *u = st;
    (void)cap;
    int o = (int)pi->owner;
    uint32_t s = pxsi_gen_slot(pi->generation);
    int path = path_of(u, o);
    int rc = path == PXSI_PATH_RMA ? resolve_get(u, pi, buf) : acquire(u, pi);
    if (rc)
        return rc;
    if (path != PXSI_PATH_RMA)
        rc = fetch(u, o, pi->offset, buf, (size_t)pi->size, path);
    if (rc == PXS_OK)
        rc = pxsi_conn_crc_check(SUBSYS, pi, buf);
    int rc2 = unclaim_post(u, o, s);
    if (rc == PXS_OK)
        rc = rc2;
    if (rc == PXS_OK)
        *len_out = (size_t)pi->size;
    return rc;
}

/* An async resolve in flight: the claim and its gets. */
typedef struct ucx_req {
    int owner;
    uint32_t slot;
    int n;
    ucs_status_ptr_t rq[]; /* one per chunk */
} ucx_req_t;

static int
finish_req(ucx_t *u, pxs_request_t *q, int rc)
{
    ucx_req_t *c = q->conn;
    if (rc == PXS_OK)
        rc = pxsi_conn_crc_check(SUBSYS, &q->pi, q->buf);
    int rc2 = c ? unclaim_post(u, c->owner, c->slot) : PXS_OK;
    free(c);
    q->conn = NULL;
    if (rc == PXS_OK)
        rc = rc2;
    if (rc == PXS_OK) {
        q->len = (size_t)q->pi.size;
        u->stats.resolves_rma++;
    }
    q->status = rc;
    q->done = 1;
    return PXS_OK;
}

static int
ucx_resolve_start(void *st, const pxs_proxy_info_t *pi, void *buf, size_t cap,
                  pxs_request_t *q)
{
    ucx_t *u = st;
    int o = (int)pi->owner;
    if (path_of(u, o) != PXSI_PATH_RMA || pi->size == 0) {
        size_t n = 0;
        q->status = ucx_resolve(st, pi, buf, cap, &n);
        q->len = n;
        q->done = 1;
        return PXS_OK;
    }
    size_t len = (size_t)pi->size;
    size_t nreq = (len + u->chunk - 1) / u->chunk;
    ucx_req_t *c = malloc(sizeof *c + nreq * sizeof c->rq[0]);
    if (!c)
        return pxsi_err(PXS_ERR_NOMEM, SUBSYS, "resolve_start: %zu requests",
                        nreq);
    int rc = acquire(u, pi);
    if (rc) {
        free(c);
        return rc;
    }
    c->owner = o;
    c->slot = pxsi_gen_slot(pi->generation);
    c->n = post_gets(u, o, pi->offset, buf, len, c->rq);
    q->conn = c;
    return PXS_OK;
}

static int
ucx_resolve_test(void *st, pxs_request_t *q)
{
    ucx_t *u = st;
    ucx_req_t *c = q->conn;
    main_progress(u);
    for (int i = 0; i < c->n; i++) {
        if (c->rq[i] && !UCS_PTR_IS_ERR(c->rq[i]) &&
            ucp_request_check_status(c->rq[i]) == UCS_INPROGRESS)
            return PXS_OK;
    }
    ucs_status_t s = wait_all(u, c->rq, c->n); /* all complete: collects them */
    return finish_req(
        u, q, s == UCS_OK ? PXS_OK : peer_fail(u, c->owner, s, "ucp_get_nbx"));
}

static int
ucx_resolve_wait(void *st, pxs_request_t *q)
{
    ucx_t *u = st;
    ucx_req_t *c = q->conn;
    ucs_status_t s = wait_all(u, c->rq, c->n);
    return finish_req(
        u, q, s == UCS_OK ? PXS_OK : peer_fail(u, c->owner, s, "ucp_get_nbx"));
}

/* ------------------------------------------------------------ view */
static int
ucx_view(void *st, const pxs_proxy_info_t *pi, pxs_view_t *v)
{
    ucx_t *u = st;
    int o = (int)pi->owner;
    if (path_of(u, o) == PXSI_PATH_RMA) {
        void *b = pxsi_alloc_pages((size_t)pi->size);
        if (!b)
            return pxsi_err(PXS_ERR_NOMEM, SUBSYS, "view copy of %llu bytes",
                            (unsigned long long)pi->size);
        size_t n = 0;
        int rc = ucx_resolve(st, pi, b, (size_t)pi->size, &n);
        if (rc) {
            free(b);
            return rc;
        }
        v->data = b;
        v->len = n;
        v->internal_[0] = b;
        v->internal_u_[2] = 0;
        u->stats.views_copied++;
        return PXS_OK;
    }
    uint32_t s = pxsi_gen_slot(pi->generation);
    int rc = acquire(u, pi);
    if (rc)
        return rc;
    atomic_thread_fence(memory_order_acquire); /* F2 */
    const unsigned char *p = u->peer_base[o] + pi->offset;
    if ((rc = pxsi_conn_crc_check(SUBSYS, pi, p)) != PXS_OK) {
        (void)unclaim(u, o, s);
        return rc;
    }
    v->data = p;
    v->len = (size_t)pi->size;
    v->internal_[0] = NULL;
    v->internal_u_[0] = (uint64_t)o;
    v->internal_u_[1] = s;
    v->internal_u_[2] = 1;
    u->stats.views_zero_copy++;
    return PXS_OK;
}

static int
ucx_release(void *st, pxs_view_t *v)
{
    ucx_t *u = st;
    if (v->internal_u_[2] == 1)
        return unclaim(u, (int)v->internal_u_[0], (uint32_t)v->internal_u_[1]);
    free(v->internal_[0]);
    return PXS_OK;
}

/* ------------------------------------------------------------ evict, progress
 */
static int
ucx_drop(void *st, const pxs_proxy_info_t *pi)
{
    ucx_t *u = st;
    int o = (int)pi->owner;
    int rc = acquire(u, pi);
    if (rc)
        return rc;
    rc = unclaim(u, o, pxsi_gen_slot(pi->generation));
    if (rc == PXS_OK && o == u->rank)
        rc = reclaim(u);
    return rc;
}

/* The owner's evict, after kill_slot(s) (which waited for the kill): the
 * free step of reclaim() for that one slot, as in the RMA connector
 * (docs/DESIGN.md, "The claim protocol"): the inflight count read after
 * the kill on each word (one fetch-add 0 on A, a load of LA), F4, then the
 * slot freed if it is 0, else left DYING for the next full reclaim (put,
 * progress, used). O(1): reclaim() sends one atomic per live slot. */
static int
reclaim_evicted(ucx_t *u, uint32_t s)
{
    static const uint64_t zero = 0;
    uint64_t a = 0;
    ucs_status_t st = wait1(u, amo(u, u->rank, s, UCP_ATOMIC_OP_ADD, &zero, &a));
    if (st != UCS_OK)
        return peer_fail(u, u->rank, st, "evict: in-flight count of own word");
    atomic_thread_fence(memory_order_acquire); /* F4, as in reclaim */
    uint64_t inflight = a & PXSI_INFLIGHT_MASK;
    if (own_local(u))
        inflight += atomic_load(l_a(u, u->rank, s)) & PXSI_INFLIGHT_MASK;
    if (inflight == 0) {
        u->ndying--;
        u->stats.reclaimed++;
        pxsi_conn_free_slot(&u->al, &u->slots[s], s, SUBSYS);
    }
    return PXS_OK;
}

static int
ucx_evict(void *st, const pxs_proxy_info_t *pi)
{
    ucx_t *u = st;
    int o = (int)pi->owner;
    uint32_t s = pxsi_gen_slot(pi->generation);
    if (o != u->rank || u->attached)
        return ucx_drop(st, pi);
    int rc = pxsi_conn_match(SUBSYS, &u->slots[s], u->al.off[s], pi, "evict");
    if (rc)
        return rc;
    rc = kill_slot(u, s);
    return rc ? rc : reclaim_evicted(u, s);
}

static int
ucx_progress(void *st)
{
    ucx_t *u = st;
    main_progress(u);
    pend_collect(u, 0);
    return reclaim(u);
}

static int
ucx_used(void *st, size_t *used_out, size_t *cap_out)
{
    ucx_t *u = st;
    int rc = ucx_progress(u);
    if (rc)
        return rc;
    *used_out = (size_t)u->al.used;
    *cap_out = (size_t)u->al.cap;
    return PXS_OK;
}

static int
ucx_path(void *st, int owner)
{
    return path_of(st, owner);
}

static void
ucx_stats(void *st, pxsi_store_stats_t *out)
{
    *out = ((ucx_t *)st)->stats;
}

#ifdef PXS_TEST_HOOKS
static int
ucx_corrupt(void *st, uint64_t offset)
{
    ucx_t *u = st;
    return pxsi_conn_corrupt(u->arena, u->cap, offset);
}

static int
ucx_set_gen(void *st, uint32_t s, uint64_t gen)
{
    ucx_t *u = st;
    if (s >= u->nslots || u->slots[s].state != PXSI_SLOT_FREE)
        return pxsi_conn_not_free(SUBSYS, s);
    for (uint32_t i = 0; i < u->al.nfree; i++) {
        if (u->al.free_stack[i] != s)
            continue;
        uint64_t delta = (gen - u->slots[s].gen) << PXSI_INFLIGHT_BITS, ign = 0;
        ucs_status_t us =
            wait1(u, amo(u, u->rank, s, UCP_ATOMIC_OP_ADD, &delta, &ign));
        if (us != UCS_OK)
            return peer_fail(u, u->rank, us, "test_set_gen");
        if (own_local(u))
            atomic_fetch_add(l_a(u, u->rank, s), delta);
        u->slots[s].gen = gen;
        return PXS_OK;
    }
    return pxsi_err(PXS_ERR_INVALID, SUBSYS, "test_set_gen: slot %u is in use", s);
}

static int
ucx_add_claims(void *st, uint32_t s, int64_t n)
{
    ucx_t *u = st;
    uint64_t zero = 0, old = 0, ign = 0;
    if (s >= u->nslots)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS,
                        "test_add_claims: slot %u beyond the table", s);
    ucs_status_t us =
        wait1(u, amo(u, u->rank, s, UCP_ATOMIC_OP_ADD, &zero, &old));
    if (us != UCS_OK)
        return peer_fail(u, u->rank, us, "test_add_claims");
    /* every claim word of slot s (A and LA): a resolver on any path sees
     * them, and the owner's sum is 0 again after the matching -n */
    int loc = own_local(u);
    uint64_t lold = loc ? atomic_load(l_a(u, u->rank, s)) : 0;
    int64_t now = (int64_t)(old & PXSI_INFLIGHT_MASK);
    int64_t lnow = (int64_t)(lold & PXSI_INFLIGHT_MASK);
    if (now + n < 0 || now + n > (int64_t)PXSI_INFLIGHT_MASK ||
        (loc && (lnow + n < 0 || lnow + n > (int64_t)PXSI_INFLIGHT_MASK)))
        return pxsi_err(PXS_ERR_INVALID, SUBSYS,
                        "test_add_claims: %lld + %lld out of range",
                        (long long)now, (long long)n);
    uint64_t d = (uint64_t)n;
    us = wait1(u, amo(u, u->rank, s, UCP_ATOMIC_OP_ADD, &d, &ign));
    if (us != UCS_OK)
        return peer_fail(u, u->rank, us, "test_add_claims");
    if (loc)
        atomic_fetch_add(l_a(u, u->rank, s), d);
    return PXS_OK;
}
#endif

/* ------------------------------------------------------------ progress thread
 */
/* Progresses the worker while the owner computes or sits in MPI: drains
 * ucp_worker_progress, then arms the worker and sleeps on its event fd
 * (woken by network activity, by ucp_worker_signal at destroy, or after
 * 100 ms). While the calling thread progresses the worker itself (inside a
 * wait, or polling pxs_store_progress: `inside`, `epoch`), it keeps off
 * the worker and naps DEFER_NS: the worker's lock is a spinlock, and two
 * threads taking it in turns on a loaded node (a holder preempted while the
 * other spins) cost far more than the thread ever saves. See
 * docs/DESIGN.md, section "UCX connector". */
#define DEFER_NS 200000L
static void *
progress_main(void *arg)
{
    ucx_t *u = arg;
    int fd = -1;
    if (ucp_worker_get_efd(u->w, &fd) != UCS_OK)
        fd = -1;
    unsigned seen = atomic_load_explicit(&u->epoch, memory_order_relaxed);
    while (!atomic_load_explicit(&u->stop, memory_order_acquire)) {
        unsigned e = atomic_load_explicit(&u->epoch, memory_order_relaxed);
        if (e != seen || atomic_load_explicit(&u->inside, memory_order_relaxed)) {
            seen = e; /* the caller is progressing: stay off */
            struct timespec ts = {0, DEFER_NS};
            nanosleep(&ts, NULL);
            continue;
        }
        while (ucp_worker_progress(u->w))
            ;
        if (fd < 0) {
            struct timespec ts = {0, 50000};
            nanosleep(&ts, NULL);
            continue;
        }
        ucs_status_t st = ucp_worker_arm(u->w);
        if (st == UCS_ERR_BUSY)
            continue;
        struct pollfd pf = {fd, POLLIN, 0};
        (void)poll(&pf, 1, 100);
    }
    return NULL;
}

/* ------------------------------------------------------------ create / destroy
 */
/* A barrier that keeps our worker progressing: peers' operations on our
 * memory may need it (tcp) while we wait. */
static int
ucx_barrier(ucx_t *u, const char *what)
{
    MPI_Request r;
    int mrc = MPI_Ibarrier(u->comm, &r);
    if (mrc != MPI_SUCCESS)
        return pxsi_mpi_err(mrc, SUBSYS, what);
    pxsi_backoff_t b;
    pxsi_backoff_init(&b, -1.0);
    for (;;) {
        int flag = 0;
        mrc = MPI_Test(&r, &flag, MPI_STATUS_IGNORE);
        if (mrc != MPI_SUCCESS)
            return pxsi_mpi_err(mrc, SUBSYS, what);
        if (flag)
            return PXS_OK;
        if (!main_progress(u))
            pxsi_backoff_pause(&b);
    }
}

static void
free_all(ucx_t *u)
{
    if (u->thr_on) {
        atomic_store_explicit(&u->stop, 1, memory_order_release);
        ucp_worker_signal(u->w);
        pthread_join(u->thr, NULL);
        u->thr_on = 0;
    }
    for (int i = 0; i < u->size; i++) {
        if (u->arena_rk && u->arena_rk[i])
            ucp_rkey_destroy(u->arena_rk[i]);
        if (u->ctl_rk && u->ctl_rk[i])
            ucp_rkey_destroy(u->ctl_rk[i]);
    }
    if (u->npend)
        pend_collect(u, 1);
    pxsi_shmseg_free(u->lseg);
    free(u->peer_lctl);
    for (int i = 0; u->ep && i < u->size; i++) {
        if (!u->ep[i])
            continue;
        ucp_request_param_t p;
        memset(&p, 0, sizeof p);
        p.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS;
        p.flags = UCP_EP_CLOSE_FLAG_FORCE;
        (void)wait1(u, ucp_ep_close_nbx(u->ep[i], &p));
    }
    for (int i = 0; i < u->nkeep; i++)
        if (u->keep[i].mh)
            ucp_mem_unmap(u->ctx, u->keep[i].mh);
    if (u->arena_mh)
        ucp_mem_unmap(u->ctx, u->arena_mh);
    if (u->ctl_mh)
        ucp_mem_unmap(u->ctx, u->ctl_mh);
    if (u->w)
        ucp_worker_destroy(u->w);
    /* no incoming operation can touch them any more */
    for (int i = 0; i < u->nkeep; i++)
        if (u->keep[i].pages)
            munmap(u->keep[i].pages, u->keep[i].len);
    free(u->keep);
    if (u->ctx)
        ucp_cleanup(u->ctx);
    pxsi_arena_fini(&u->al);
    free(u->ep);
    free(u->arena_rk);
    free(u->ctl_rk);
    free(u->peer_arena);
    free(u->peer_ctl);
    free(u->peer_cap);
    free(u->peer_nslots);
    free((void *)u->peer_base);
    free(u->peer_err);
    free(u->slots);
    free(u->snap);
    free(u);
}

/* Tables and sizes. Agreed. */
static int
create_tables(ucx_t *u, const pxs_store_opts_t *o)
{
    int rc = pxsi_conn_sizes(SUBSYS, o, &u->cap, &u->nslots);
    u->shm_on = o->shm < 0 ? pxsi_env_bool("PXS_SHM", 1) : o->shm;
    u->mt = o->progress_thread < 0 ? pxsi_opt_bool(PXSI_OPT_PROGRESS_THREAD)
                                   : o->progress_thread;
    u->chunk = pxsi_store_get_chunk(o);
    u->piece = pxsi_conn_piece(u->chunk);
    size_t n = (size_t)u->size;
    if (rc == PXS_OK) {
        u->ep = calloc(n, sizeof *u->ep);
        u->arena_rk = calloc(n, sizeof *u->arena_rk);
        u->ctl_rk = calloc(n, sizeof *u->ctl_rk);
        u->peer_arena = calloc(n, sizeof *u->peer_arena);
        u->peer_ctl = calloc(n, sizeof *u->peer_ctl);
        u->peer_cap = calloc(n, sizeof *u->peer_cap);
        u->peer_nslots = calloc(n, sizeof *u->peer_nslots);
        u->peer_base = calloc(n, sizeof *u->peer_base);
        u->peer_err = calloc(n, sizeof *u->peer_err);
        u->slots = calloc(u->nslots, sizeof *u->slots);
        u->snap = calloc(u->nslots, sizeof *u->snap);
        if (!u->ep || !u->arena_rk || !u->ctl_rk || !u->peer_arena ||
            !u->peer_ctl || !u->peer_cap || !u->peer_nslots || !u->peer_base ||
            !u->peer_err || !u->slots || !u->snap)
            rc = pxsi_err(PXS_ERR_NOMEM, SUBSYS, "store tables");
        else
            rc = pxsi_arena_init(&u->al, u->cap, u->nslots);
    }
    return pxsi_agree(u->comm, rc);
}

static int
ucs_fail(ucs_status_t st, const char *what)
{
    return pxsi_err(st == UCS_ERR_NO_MEMORY ? PXS_ERR_NOMEM : PXS_ERR_NOTSUP,
                    SUBSYS, "%s: UCX: %s", what, ucs_status_string(st));
}

/* Context and worker (local, agreed). */
static int
create_worker(ucx_t *u)
{
    ucp_params_t cp;
    memset(&cp, 0, sizeof cp);
    cp.field_mask =
        UCP_PARAM_FIELD_FEATURES | UCP_PARAM_FIELD_MT_WORKERS_SHARED;
    cp.features =
        UCP_FEATURE_RMA | UCP_FEATURE_AMO64 | (u->mt ? UCP_FEATURE_WAKEUP : 0);
    cp.mt_workers_shared = 0;
    ucs_status_t st = ucp_init(&cp, NULL, &u->ctx);
    int rc = PXS_OK;
    if (st != UCS_OK) {
        u->ctx = NULL;
        rc = ucs_fail(st, "ucp_init");
    }
    if (rc == PXS_OK) {
        ucp_worker_params_t wp;
        memset(&wp, 0, sizeof wp);
        wp.field_mask = UCP_WORKER_PARAM_FIELD_THREAD_MODE;
        wp.thread_mode = u->mt ? UCS_THREAD_MODE_MULTI : UCS_THREAD_MODE_SINGLE;
        st = ucp_worker_create(u->ctx, &wp, &u->w);
        if (st != UCS_OK) {
            u->w = NULL;
            rc = ucs_fail(st, "ucp_worker_create");
        }
    }
    return pxsi_agree(u->comm, rc);
}

int
pxsi_ucx_map(ucp_context_h ctx, size_t len, unsigned prot, ucp_mem_h *mh, void **addr)
{
    ucp_mem_map_params_t mp;
    memset(&mp, 0, sizeof mp);
    mp.field_mask =
        UCP_MEM_MAP_PARAM_FIELD_ADDRESS | UCP_MEM_MAP_PARAM_FIELD_LENGTH |
        UCP_MEM_MAP_PARAM_FIELD_FLAGS | UCP_MEM_MAP_PARAM_FIELD_PROT;
    mp.address = *addr;
    mp.length = len;
    /* NULL: UCX allocates shareable memory (same-node peers map it); else
     * the caller's memory is registered */
    mp.flags = *addr ? 0 : UCP_MEM_MAP_ALLOCATE;
    mp.prot = prot;
    ucs_status_t st = ucp_mem_map(ctx, &mp, mh);
    if (st != UCS_OK) {
        *mh = NULL;
        return ucs_fail(st, "ucp_mem_map");
    }
    ucp_mem_attr_t ma;
    memset(&ma, 0, sizeof ma);
    ma.field_mask = UCP_MEM_ATTR_FIELD_ADDRESS | UCP_MEM_ATTR_FIELD_LENGTH;
    st = ucp_mem_query(*mh, &ma);
    if (st != UCS_OK || ma.length < len)
        return ucs_fail(st != UCS_OK ? st : UCS_ERR_NO_MEMORY, "ucp_mem_query");
    PXSI_DEBUG(SUBSYS, "mapped %zu B at %p (asked %zu)", ma.length, ma.address,
               len);
    *addr = ma.address;
    return PXS_OK;
}

static int
map_region(ucx_t *u, size_t len, unsigned prot, ucp_mem_h *mh, void **addr)
{
    *addr = NULL;
    return pxsi_ucx_map(u->ctx, len, prot, mh, addr);
}

int
pxsi_ucx_ep_open(ucp_worker_h w, const void *addr, ucs_status_t *err_slot, ucp_ep_h *ep)
{
    ucp_ep_params_t p;
    memset(&p, 0, sizeof p);
    p.field_mask = UCP_EP_PARAM_FIELD_REMOTE_ADDRESS |
                   UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE |
                   UCP_EP_PARAM_FIELD_ERR_HANDLER;
    p.address = (const ucp_address_t *)addr;
    p.err_mode = UCP_ERR_HANDLING_MODE_PEER;
    p.err_handler.cb = ep_error;
    p.err_handler.arg = err_slot;
    ucs_status_t st = ucp_ep_create(w, &p, ep);
    if (st != UCS_OK) {
        *ep = NULL;
        return pxsi_err(PXS_ERR_PEER, SUBSYS, "ucp_ep_create: UCX: %s",
                        ucs_status_string(st));
    }
    return PXS_OK;
}

void
pxsi_ucx_ep_close(ucp_worker_h w, ucp_ep_h ep)
{
    if (!ep)
        return;
    ucp_request_param_t p;
    memset(&p, 0, sizeof p);
    p.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS;
    p.flags = UCP_EP_CLOSE_FLAG_FORCE;
    ucs_status_ptr_t r = ucp_ep_close_nbx(ep, &p);
    (void)pxsi_ucx_wait(w, MPI_COMM_NULL, &r, 1, 5.0);
}

void
pxsi_ucx_keep_region(void *st, ucp_mem_h mh, void *pages, size_t len)
{
    ucx_t *u = st;
    struct keep *k = realloc(u->keep, (size_t)(u->nkeep + 1) * sizeof *k);
    if (!k) { /* deregister now; the pages stay (a late write lands there) */
        if (mh)
            ucp_mem_unmap(u->ctx, mh);
        return;
    }
    u->keep = k;
    k[u->nkeep++] = (struct keep){mh, pages, len};
}

void
pxsi_ucx_parts(void *st, pxsi_ucx_parts_t *out)
{
    ucx_t *u = st;
    out->ctx = u->ctx;
    out->w = u->w;
    out->comm = u->comm;
    out->rank = u->rank;
    out->n = u->size;
    out->ep = u->ep;
    out->peer_err = u->peer_err;
}

/* The arena (remote read only) and the control words (remote read and
 * write: atomics); the control words zeroed before any peer's atomics. */
static int
create_regions(ucx_t *u)
{
    int rc =
        pxsi_node_mem_fits(u->comm, MPI_COMM_NULL, SUBSYS, u->cap,
                           (uint64_t)CTL_WORDS(u->nslots) * sizeof(uint64_t), 0,
                           "arena", "PXS_ARENA_BYTES / opts.arena_bytes");
    if (rc)
        return rc;
    void *a = NULL, *c = NULL;
    rc = map_region(u, (size_t)u->cap,
                    UCP_MEM_MAP_PROT_LOCAL_READ | UCP_MEM_MAP_PROT_LOCAL_WRITE |
                        UCP_MEM_MAP_PROT_REMOTE_READ,
                    &u->arena_mh, &a);
    if (rc == PXS_OK)
        rc = map_region(
            u, CTL_WORDS(u->nslots) * sizeof(uint64_t),
            UCP_MEM_MAP_PROT_LOCAL_READ | UCP_MEM_MAP_PROT_LOCAL_WRITE |
                UCP_MEM_MAP_PROT_REMOTE_READ | UCP_MEM_MAP_PROT_REMOTE_WRITE,
            &u->ctl_mh, &c);
    if (rc == PXS_OK) {
        u->arena = a;
        u->ctl = c;
        memset(u->ctl, 0, CTL_WORDS(u->nslots) * sizeof(uint64_t));
        /* the instance's nonce, read (never changed) by attaching jobs to
         * recognise a stale contact file */
        u->ctl[CTL_WORDS(u->nslots) - 1] = u->nonce;
    }
    return pxsi_agree(u->comm, rc);
}

/* Allgatherv of one variable-length blob per rank; *all_out (malloc) and
 * displacements (malloc). Agreed. */
static int
gather_blobs(ucx_t *u, const void *mine, int len, char **all_out,
             int **displ_out, const char *what)
{
    int *lens = calloc((size_t)u->size, sizeof *lens);
    int *displ = calloc((size_t)u->size, sizeof *displ);
    char *all = NULL;
    int rc = lens && displ ? PXS_OK
                           : pxsi_err(PXS_ERR_NOMEM, SUBSYS, "%s: tables", what);
    int mrc = MPI_Allgather(&len, 1, MPI_INT, lens ? lens : &len, 1, MPI_INT,
                            u->comm);
    if (rc == PXS_OK)
        rc = pxsi_mpi_err(mrc, SUBSYS, what);
    rc = pxsi_agree(u->comm, rc);
    if (rc == PXS_OK) {
        long total = 0;
        for (int i = 0; i < u->size; i++) {
            displ[i] = (int)total;
            total += lens[i];
        }
        all = malloc(total ? (size_t)total : 1);
        rc = pxsi_agree(
            u->comm, all ? PXS_OK : pxsi_err(PXS_ERR_NOMEM, SUBSYS, "%s", what));
    }
    if (rc == PXS_OK) {
        mrc = MPI_Allgatherv(mine, len, MPI_BYTE, all, lens, displ, MPI_BYTE,
                             u->comm);
        rc = pxsi_agree(u->comm, pxsi_mpi_err(mrc, SUBSYS, what));
    }
    free(lens);
    if (rc) {
        free(displ);
        free(all);
        return rc;
    }
    *all_out = all;
    *displ_out = displ;
    return PXS_OK;
}

/* Worker addresses, endpoints (peer error mode) to every rank, ourselves
 * included. */
static int
create_endpoints(ucx_t *u)
{
    ucp_address_t *addr = NULL;
    size_t alen = 0;
    ucs_status_t st = ucp_worker_get_address(u->w, &addr, &alen);
    int rc = st == UCS_OK ? PXS_OK : ucs_fail(st, "ucp_worker_get_address");
    rc = pxsi_agree(u->comm, rc);
    if (rc)
        return rc;
    char *all = NULL;
    int *displ = NULL;
    rc = gather_blobs(u, addr, (int)alen, &all, &displ,
                      "MPI_Allgatherv (worker addresses)");
    ucp_worker_release_address(u->w, addr);
    if (rc)
        return rc;
    for (int i = 0; i < u->size && rc == PXS_OK; i++) {
        rc = pxsi_ucx_ep_open(u->w, all + displ[i], &u->peer_err[i], &u->ep[i]);
    }
    free(all);
    free(displ);
    return pxsi_agree(u->comm, rc);
}

/* Remote keys of both regions, packed once, gathered, unpacked once per
 * peer and kept until destroy; the regions' addresses and sizes; the
 * same-node shared-memory bases (ucp_rkey_ptr). */
static int
exchange_keys(ucx_t *u)
{
    void *ka = NULL, *kc = NULL;
    size_t la = 0, lc = 0;
    ucs_status_t st = ucp_rkey_pack(u->ctx, u->arena_mh, &ka, &la);
    if (st == UCS_OK)
        st = ucp_rkey_pack(u->ctx, u->ctl_mh, &kc, &lc);
    int rc = st == UCS_OK ? PXS_OK : ucs_fail(st, "ucp_rkey_pack");
    /* blob: u64 arena addr, ctl addr, cap, nslots, la; arena key; ctl key */
    size_t blen = 5 * sizeof(uint64_t) + la + lc;
    char *blob = rc == PXS_OK ? malloc(blen) : NULL;
    if (rc == PXS_OK && !blob)
        rc = pxsi_err(PXS_ERR_NOMEM, SUBSYS, "rkey blob");
    if (blob) {
        uint64_t h[5] = {(uint64_t)(uintptr_t)u->arena,
                         (uint64_t)(uintptr_t)u->ctl, u->cap, u->nslots, la};
        memcpy(blob, h, sizeof h);
        memcpy(blob + sizeof h, ka, la);
        memcpy(blob + sizeof h + la, kc, lc);
    }
    if (ka)
        ucp_rkey_buffer_release(ka);
    if (kc)
        ucp_rkey_buffer_release(kc);
    rc = pxsi_agree(u->comm, rc);
    if (rc) {
        free(blob);
        return rc;
    }
    char *all = NULL;
    int *displ = NULL;
    rc = gather_blobs(u, blob, (int)blen, &all, &displ,
                      "MPI_Allgatherv (remote keys)");
    free(blob);
    if (rc)
        return rc;
    for (int i = 0; i < u->size && rc == PXS_OK; i++) {
        uint64_t h[5];
        memcpy(h, all + displ[i], sizeof h);
        u->peer_arena[i] = h[0];
        u->peer_ctl[i] = h[1];
        u->peer_cap[i] = h[2];
        u->peer_nslots[i] = (uint32_t)h[3];
        const char *k = all + displ[i] + sizeof h;
        st = ucp_ep_rkey_unpack(u->ep[i], k, &u->arena_rk[i]);
        if (st == UCS_OK)
            st = ucp_ep_rkey_unpack(u->ep[i], k + h[4], &u->ctl_rk[i]);
        if (st != UCS_OK) {
            rc = ucs_fail(st, "ucp_ep_rkey_unpack");
            break;
        }
        if (i == u->rank) {
            u->peer_base[i] = u->arena;
        } else if (u->shm_on) {
            void *p = NULL;
            if (ucp_rkey_ptr(u->arena_rk[i], u->peer_arena[i], &p) == UCS_OK)
                u->peer_base[i] = p; /* same node, shareable: read in place */
        }
    }
    free(all);
    free(displ);
    return pxsi_agree(u->comm, rc);
}

/* Connect every endpoint now, while every rank progresses its worker here:
 * one atomic on each peer's first control word and one get of its arena
 * (UCX connects endpoints lazily, and the handshake needs the peer's
 * progress; afterwards an owner's progress is needed only where the
 * transport has no remote hardware support). */
static int
wire_up(ucx_t *u)
{
    static const uint64_t zero = 0;
    ucs_status_t first = UCS_OK;
    int bad = -1;
    for (int o = 0; o < u->size; o++) {
        uint64_t old = 0, b = 0;
        ucs_status_ptr_t rq[2];
        rq[0] = amo(u, o, 0, UCP_ATOMIC_OP_ADD, &zero, &old);
        rq[1] = get(u, o, &b, sizeof b, u->peer_arena[o], u->arena_rk[o]);
        ucs_status_t st = wait_all(u, rq, 2);
        if (st != UCS_OK && first == UCS_OK) {
            first = st;
            bad = o;
        }
    }
    int rc = first == UCS_OK ? PXS_OK
                             : peer_fail(u, bad, first, "connecting endpoints");
    /* peers still connecting need our progress: a progressing barrier first */
    int brc = ucx_barrier(u, "MPI_Ibarrier (connect)");
    return pxsi_agree(u->comm, rc ? rc : brc);
}

/* Node-local claim words: one node segment per rank (LA, LD; zeroed),
 * mapped read-write by its node peers (pxsi_shmseg_create, agreed; off
 * with PXS_SHM=0 / opts.shm = 0). Refused anywhere: every claim uses the
 * UCX words, as before (not an error). */
static int
create_local_ctl(ucx_t *u)
{
    if (!u->shm_on)
        return PXS_OK;
    u->peer_lctl = calloc((size_t)u->size, sizeof *u->peer_lctl);
    int rc = pxsi_agree(u->comm, u->peer_lctl ? PXS_OK
                                              : pxsi_err(PXS_ERR_NOMEM, SUBSYS,
                                                         "node-local word tables"));
    if (rc == PXS_OK)
        rc = pxsi_shmseg_create(u->comm, LCTL_WORDS(u->nslots) * sizeof(uint64_t), 1, SUBSYS,
                                "node-local claim words", &u->lseg);
    if (rc) {
        PXSI_DEBUG(SUBSYS, "node-local claim words refused (%s): UCX atomics for every claim",
                   pxs_last_error_detail());
        free(u->peer_lctl);
        u->peer_lctl = NULL;
        u->lseg = NULL;
        return PXS_OK;
    }
    for (int q = 0; q < u->size; q++)
        u->peer_lctl[q] = pxsi_shmseg_base(u->lseg, q);
    return PXS_OK;
}

static int
start_thread(ucx_t *u)
{
    int rc = PXS_OK;
    if (u->mt) {
        if (pthread_create(&u->thr, NULL, progress_main, u) != 0)
            rc = pxsi_err(PXS_ERR_NOMEM, SUBSYS,
                          "progress thread: pthread_create failed");
        else
            u->thr_on = 1;
    }
    return pxsi_agree(u->comm, rc);
}

static int
ucx_create(MPI_Comm comm, const pxs_store_opts_t *o, uint64_t nonce, void **out)
{
    ucx_t *u = calloc(1, sizeof *u);
    int rc = pxsi_agree(comm, u ? PXS_OK
                                : pxsi_err(PXS_ERR_NOMEM, SUBSYS, "store state"));
    if (rc) {
        free(u);
        return rc;
    }
    u->comm = comm;
    u->nonce = nonce;
    u->op_timeout = -1.0;
    atomic_init(&u->stop, 0);
    atomic_init(&u->inside, 0);
    atomic_init(&u->epoch, 0);
    for (int i = 0; i < DCACHE; i++)
        u->dcache[i].o = -1;
    MPI_Comm_rank(comm, &u->rank);
    MPI_Comm_size(comm, &u->size);
    /* the steps, each agreed: every rank leaves at the same one */
    if ((rc = create_tables(u, o)) != PXS_OK)
        goto fail;
    if ((rc = create_worker(u)) != PXS_OK)
        goto fail;
    if ((rc = create_regions(u)) != PXS_OK)
        goto fail;
    if ((rc = create_endpoints(u)) != PXS_OK)
        goto fail;
    if ((rc = exchange_keys(u)) != PXS_OK)
        goto fail;
    if ((rc = wire_up(u)) != PXS_OK)
        goto fail;
    if ((rc = create_local_ctl(u)) != PXS_OK)
        goto fail;
    if ((rc = start_thread(u)) != PXS_OK)
        goto fail;
    /* nobody targets a peer before every rank is ready */
    rc = pxsi_agree(u->comm, ucx_barrier(u, "MPI_Ibarrier"));
    if (rc)
        goto fail;
    PXSI_DEBUG(
        SUBSYS,
        "store %016llx: arena %llu B, %u slots, shm %d, node-local claim words %d, "
        "progress thread %d",
        (unsigned long long)nonce, (unsigned long long)u->cap, u->nslots,
        u->shm_on, u->peer_lctl != NULL, u->mt);
    *out = u;
    return PXS_OK;
fail:
    free_all(u);
    return rc;
}

static int
ucx_destroy(void *st)
{
    ucx_t *u = st;
    /* store.c agreed that no rank has outstanding work. Every rank's
     * operations have completed; the barrier keeps our worker progressing
     * so nobody leaves while a peer still needs it, and no memory is
     * unmapped while a peer could still read it. */
    pend_collect(u, 1); /* our posted unclaims, while peers still progress */
    int rc = ucx_barrier(u, "MPI_Ibarrier (destroy)");
    free_all(u);
    return rc;
}

/* ------------------------------------------------------------ export / attach
 */
/* See docs/DESIGN.md, section "Export and attach". A rank's export blob:
 *   u64 arena address, control address, arena bytes, slot count,
 *       worker address length, arena key length, control key length
 *   the worker address (UCP_WORKER_ADDRESS_FLAG_NET_ONLY: usable from other
 *   nodes), the arena key (remote read only), the control key. */
#define BLOB_HDR (7 * sizeof(uint64_t))

int
pxsi_ucx_export_blob(void *st, unsigned char **blob_out, size_t *len_out)
{
    ucx_t *u = st;
    if (u->attached)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "export of an attached store");
    ucp_worker_attr_t wa;
    memset(&wa, 0, sizeof wa);
    wa.field_mask =
        UCP_WORKER_ATTR_FIELD_ADDRESS | UCP_WORKER_ATTR_FIELD_ADDRESS_FLAGS;
    wa.address_flags = UCP_WORKER_ADDRESS_FLAG_NET_ONLY;
    ucs_status_t us = ucp_worker_query(u->w, &wa);
    if (us != UCS_OK)
        return ucs_fail(us, "ucp_worker_query (network address)");
    void *ka = NULL, *kc = NULL;
    size_t la = 0, lc = 0;
    us = ucp_rkey_pack(u->ctx, u->arena_mh, &ka, &la);
    if (us == UCS_OK)
        us = ucp_rkey_pack(u->ctx, u->ctl_mh, &kc, &lc);
    int rc = us == UCS_OK ? PXS_OK : ucs_fail(us, "ucp_rkey_pack");
    size_t len = BLOB_HDR + wa.address_length + la + lc;
    unsigned char *b = rc == PXS_OK ? malloc(len) : NULL;
    if (rc == PXS_OK && !b)
        rc = pxsi_err(PXS_ERR_NOMEM, SUBSYS, "export blob");
    if (b) {
        uint64_t h[7] = {(uint64_t)(uintptr_t)u->arena,
                         (uint64_t)(uintptr_t)u->ctl,
                         u->cap,
                         u->nslots,
                         wa.address_length,
                         la,
                         lc};
        memcpy(b, h, sizeof h);
        memcpy(b + BLOB_HDR, wa.address, wa.address_length);
        memcpy(b + BLOB_HDR + wa.address_length, ka, la);
        memcpy(b + BLOB_HDR + wa.address_length + la, kc, lc);
        *blob_out = b;
        *len_out = len;
    }
    if (ka)
        ucp_rkey_buffer_release(ka);
    if (kc)
        ucp_rkey_buffer_release(kc);
    ucp_worker_release_address(u->w, wa.address);
    return rc;
}

/* Parse and connect every exporting rank's blob; read each rank's nonce
 * word. Local (each attaching rank connects on its own); bounded by
 * timeout. */
static int
attach_connect(ucx_t *u, const unsigned char *const *blob, const size_t *blen,
               double timeout)
{
    u->op_timeout = timeout;
    for (int i = 0; i < u->size; i++) {
        uint64_t h[7];
        if (blen[i] < BLOB_HDR)
            return pxsi_err(PXS_ERR_CORRUPT, SUBSYS,
                            "contact: rank %d's entry is truncated", i);
        memcpy(h, blob[i], sizeof h);
        if (h[4] > blen[i] || h[5] > blen[i] || h[6] > blen[i] ||
            BLOB_HDR + h[4] + h[5] + h[6] != blen[i] || h[3] == 0 ||
            h[3] > PXSI_MAX_SLOTS || h[2] < PXSI_ARENA_ALIGN)
            return pxsi_err(PXS_ERR_CORRUPT, SUBSYS,
                            "contact: rank %d's entry is malformed", i);
        u->peer_arena[i] = h[0];
        u->peer_ctl[i] = h[1];
        u->peer_cap[i] = h[2];
        u->peer_nslots[i] = (uint32_t)h[3];
        const unsigned char *a = blob[i] + BLOB_HDR;
        if (pxsi_ucx_ep_open(u->w, a, &u->peer_err[i], &u->ep[i]) != PXS_OK)
            return pxsi_err(
                PXS_ERR_PEER, SUBSYS,
                "contact file is stale or the exporting job is gone: rank %d "
                "unreachable (%s)",
                i, pxs_last_error_detail());
        ucs_status_t us = ucp_ep_rkey_unpack(u->ep[i], a + h[4], &u->arena_rk[i]);
        if (us == UCS_OK)
            us = ucp_ep_rkey_unpack(u->ep[i], a + h[4] + h[5], &u->ctl_rk[i]);
        if (us != UCS_OK)
            return pxsi_err(PXS_ERR_CORRUPT, SUBSYS,
                            "contact: rank %d's remote keys: UCX: %s", i,
                            ucs_status_string(us));
    }
    /* liveness and identity: every exporting rank's nonce word (into the
     * state's scratch: a timed-out get may still land later) */
    for (int i = 0; i < u->size; i++) {
        ucs_status_ptr_t r =
            get(u, i, &u->snap[0], sizeof(uint64_t),
                u->peer_ctl[i] + 8 * (CTL_WORDS(u->peer_nslots[i]) - 1),
                u->ctl_rk[i]);
        /* on expiry the endpoint is force-closed and the get collected:
         * nothing lands in u->snap after this */
        ucs_status_t us = pxsi_ucx_wait_ep(u->w, u->comm, &r, 1, u->op_timeout, &u->ep[i]);
        if (us == UCS_ERR_ENDPOINT_TIMEOUT && !u->ep[i])
            u->peer_err[i] = us;
        if (us != UCS_OK)
            return pxsi_err(PXS_ERR_PEER, SUBSYS,
                            "contact file is stale or the exporting job is "
                            "gone: rank %d does "
                            "not answer (UCX: %s)",
                            i, ucs_status_string(us));
        if (u->snap[0] != u->nonce)
            return pxsi_err(PXS_ERR_STALE, SUBSYS,
                            "contact file is stale: rank %d serves store "
                            "instance 0x%016llx, "
                            "the file names 0x%016llx",
                            i, (unsigned long long)u->snap[0],
                            (unsigned long long)u->nonce);
    }
    u->op_timeout = -1.0; /* from now on: waits end by the peer error mode */
    return PXS_OK;
}

int
pxsi_ucx_attach(MPI_Comm comm, uint64_t nonce, int nranks,
                const unsigned char *const *blob, const size_t *blen,
                double timeout, void **out)
{
    ucx_t *u = calloc(1, sizeof *u);
    int rc = u ? PXS_OK : pxsi_err(PXS_ERR_NOMEM, SUBSYS, "attached store state");
    if (rc == PXS_OK) {
        u->comm = comm;
        u->nonce = nonce;
        u->attached = 1;
        u->rank = -1;
        u->size = nranks;
        u->op_timeout = -1.0;
        u->mt = pxsi_opt_bool(PXSI_OPT_PROGRESS_THREAD);
        u->chunk = pxsi_store_get_chunk(&(pxs_store_opts_t){.struct_size = 0});
        u->piece = pxsi_conn_piece(u->chunk);
        atomic_init(&u->stop, 0);
        atomic_init(&u->inside, 0);
        atomic_init(&u->epoch, 0);
        for (int i = 0; i < DCACHE; i++)
            u->dcache[i].o = -1;
        size_t n = (size_t)nranks;
        u->ep = calloc(n, sizeof *u->ep);
        u->arena_rk = calloc(n, sizeof *u->arena_rk);
        u->ctl_rk = calloc(n, sizeof *u->ctl_rk);
        u->peer_arena = calloc(n, sizeof *u->peer_arena);
        u->peer_ctl = calloc(n, sizeof *u->peer_ctl);
        u->peer_cap = calloc(n, sizeof *u->peer_cap);
        u->peer_nslots = calloc(n, sizeof *u->peer_nslots);
        u->peer_base = calloc(n, sizeof *u->peer_base);
        u->peer_err = calloc(n, sizeof *u->peer_err);
        u->snap = calloc(1, sizeof *u->snap);
        if (!u->ep || !u->arena_rk || !u->ctl_rk || !u->peer_arena ||
            !u->peer_ctl || !u->peer_cap || !u->peer_nslots || !u->peer_base ||
            !u->peer_err || !u->snap)
            rc = pxsi_err(PXS_ERR_NOMEM, SUBSYS, "attached store tables");
    }
    if (rc == PXS_OK)
        rc = create_worker(u); /* agreed over comm (the attaching job's) */
    if (rc == PXS_OK)
        rc = pxsi_agree(comm, attach_connect(u, blob, blen, timeout));
    if (rc == PXS_OK)
        rc = start_thread(u);
    if (rc) {
        if (u)
            free_all(u);
        return rc;
    }
    *out = u;
    return PXS_OK;
}

const pxsi_store_conn_ops_t pxsi_store_ucx_ops = {
    .name = "ucx",
    .kind = PXS_CONN_UCX,
    PXSI_STORE_CONN_OPS(ucx),
    .put_check = ucx_put_check,
};

#else
typedef int pxsi_ucx_not_built_; /* ISO C: no empty translation unit */
#endif /* PXS_HAVE_UCX */
