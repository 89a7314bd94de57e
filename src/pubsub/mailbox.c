/* MPI mailbox transport (pxs_bus_create): every rank owns a ring of
 * fixed-size slots in one MPI_Win_allocate window, where off-node publishers
 * append with one-sided operations, and a node ring in its own shared-memory
 * segment, where same-node publishers append with C11 atomics (NR_* below;
 * docs/DESIGN.md, section "Node ring"). See docs/DESIGN.md, section "The event plane: mailboxes" (and
 * docs/DESIGN.md sections "Prefetch", "Broken bus", "Threads", "Memory
 * ordering of the mailbox").
 *
 * Window layout per rank (displacement unit 1):
 *     0  u64 tail ticket     (publishers: MPI_Fetch_and_op SUM)
 *     8  i64 credits         (publishers take with Fetch_and_op SUM -k; the
 *                             owner returns with Accumulate SUM +k)
 *    16  i64 group credits   (prefetch: one per group event in flight at
 *                             this member; taken and returned like credits,
 *                             starts at the rank's prefetch)
 *    24  i64 broken          (0, or 1 + the rank whose bus broke; written
 *                             with Accumulate REPLACE, best effort)
 *    64  u64 seq[slots]      (slot i holds ticket t when seq[i] == t + 1;
 *                             written with Accumulate REPLACE)
 *    64 + 8 slots: records[slots][PXSI_REC_SIZE]
 * Every word gets one accumulate op only (the MPI default "same_op_no_op").
 * A rank that subscribes to nothing has no ring (slots 0).
 *
 * Append of k records at target: credits (one Fetch_and_op), tickets (one
 * Fetch_and_op), one put run (two at the ring wrap), flush, the k sequence
 * words (one accumulate, two at the wrap), flush. The flush between records
 * and sequence words is what orders them (MPI orders nothing between
 * different addresses; RDMA reorders writes). Credits come first, so a
 * reserved ticket's slot is always free: no producer leaves a hole.
 * MPI_Compare_and_swap is never used (osc/rdma in 4.1.4 crashes on it).
 *
 * Sole-writer fast path. When the routing table (the same on every rank)
 * shows that exactly one rank publishes to a mailbox (every topic the owner
 * subscribes to, plainly or in a group, has that one producer), that rank
 * keeps the tail ticket locally (nobody else takes tickets there, so the FAO
 * on the tail is not needed) and tracks the credit word without changing it:
 * the owner only ever adds returned credits, so the credits gained since the
 * last look are (value now - value last seen), read with one
 * Fetch_and_op(NO_OP), when half its local credits are used. An append
 * is then put, flush, sequence words, flush: the same two round trips as a
 * raw put-and-flag chain, instead of four. Credits are still taken before
 * the ticket (both are local), so no hole can ever block the ring. The usual
 * shape (a generator feeding a dispatcher, a dispatcher feeding its workers,
 * 1 -> 1 streams) has one writer per mailbox. A slow work-sharing member is
 * also cheaper: its free credits are known locally and it is not touched
 * while others have room (under osc/ucx or pt2pt touching it waits for it to
 * enter MPI). */
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pubsub/pubsub_int.h"
#include "util/shmseg.h"
#include "util/util.h"
#include "util/window.h"

#define SUBSYS "mailbox"

#define MB_TAIL 0
#define MB_CRED 8
#define MB_GCRED 16
#define MB_BROKEN 24
#define MB_SEQ  64
/* Node ring (docs/DESIGN.md, section "Node ring"): every rank's own POSIX
 * segment (util/shmseg.h), mapped read-write by its node; same-node
 * publishers append there with C11 atomics and memcpy, never through MPI.
 * Every word on its own cache line; no word here is ever touched by MPI.
 *     0 u64 tail ticket   (same-node publishers: fetch_add)
 *    64 i64 credits       (publishers: CAS take; owner: fetch_add release)
 *   128 i64 group credits (as credits; starts at the node share of prefetch)
 *   192 i64 broken        (same-node peers: store release)
 *   256 u64 seq[slots]    (slot i holds ticket t when seq[i] == t + 1)
 *   nr_rec_off(slots): records[slots][PXSI_REC_SIZE] */
#define NR_TAIL   0
#define NR_CRED   64
#define NR_GCRED  128
#define NR_BROKEN 192
#define NR_SEQ    256
/* mb_inbox_next gives back held credits once this many pauses of its wait
 * passed (half the spin phase), not on the first miss */
#define MB_CREDIT_RETURN_STEP (PXSI_BACKOFF_YIELD / 2)
/* Pauses of a receive wait polled inline before the general loop (one
 * word per ring; mb_inbox_wait): at ~25-40 ns a pause, ~0.5 us, about a
 * same-node ping-pong's reply time. At most PXSI_BACKOFF_PROGRESS_FIRST, so
 * that MPI progress comes when the back-off says. */
#define MB_SPIN_INLINE PXSI_BACKOFF_PROGRESS_FIRST

/* A full shared mailbox (docs/DESIGN.md "Scale model", "Polling a full
 * mailbox"): after a take of a credit word came up short, the publisher
 * reads that word (Fetch_and_op NO_OP, one atomic, nothing to give back)
 * before it takes again, and not before `next`: the interval doubles with
 * each empty read, from MB_POLL_MIN_S to MB_POLL_MIN_S << MB_POLL_LOG2MAX
 * (64 us .. 65 ms). N producers waiting on one subscriber then cost it
 * O(log) reads per wait instead of two atomics per back-off pause each. */
#define MB_POLL_MIN_S 64e-6
#define MB_POLL_LOG2MAX 10u
struct mb_wait {
    double next;    /* no MPI operation on the word before this (pxsi_now) */
    uint32_t fails; /* empty takes and reads since the last successful take */
};

struct mbox {
    MPI_Comm comm;
    MPI_Win win;
    int have_win, locked;
    unsigned char *base;
    int rank, size;
    uint32_t *slots; /* per rank */
    uint32_t my_slots;
    uint64_t head;        /* next ticket to read here */
    int64_t pending;      /* consumed slots not yet given back as credits */
    int64_t credit_batch; /* give credits back once this many are pending */
    uint32_t prefetch;    /* initial group credits of this rank */
    /* MPI operand buffers: the publisher side and the subscriber side have
     * their own (they may run in two threads, docs/DESIGN.md "Threads") */
    uint64_t *seqbuf;     /* publisher: origin buffer for sequence words */
    int64_t cbuf[2];      /* publisher: origin/result buffers for atomics */
    int64_t gbuf[2];      /* publisher: group credit atomics */
    uint64_t tbuf[2];
    int64_t rbuf[2];      /* subscriber: credit and group credit returns */
    int64_t poison_val;   /* origin operand of the broken marker */
    int fail_step;        /* test hook: PXSI_FAIL_* */
    /* sole-writer fast path, per target (see top): */
    unsigned char *sole;  /* [size] 1: this rank is the only writer there */
    uint64_t *ltail;      /* [size] local tail ticket */
    uint32_t *lidx;       /* [size] ltail % slots at a node-ring target
                             (no division per append) */
    int64_t *lcred;       /* [size] credits held locally */
    int64_t *cseen;       /* [size] credit word value last seen */
    int64_t *lgcred;      /* [size] group credits held locally */
    int64_t *gseen;       /* [size] group credit word value last seen */
    uint64_t *crstart;    /* [size] ltail when the last credit refill started */
    int *writer;          /* [size] the sole writer's rank there, or -1 */
    MPI_Request *creq;    /* [size] pending credit refill (sole writer) */
    int64_t *cres;        /* [2 size] its result: credits, group credits */
    int64_t czero[2];     /* origin operand of the NO_OP */
    /* shared mailboxes, per (target, word): a word found empty is polled
     * with one read, at growing intervals (mb_poll_word) */
    struct mb_wait *wait; /* [2 size]: credits, group credits */
    /* node ring (see NR_* above): */
    pxsi_shmseg_t *seg;   /* every rank's segment (NULL base: other node, or off) */
    unsigned char *nbase; /* this rank's segment (NULL: node path off) */
    unsigned char **nr;   /* [size] target's segment when this rank appends
                             to its node ring, else NULL (MPI ring) */
    uint64_t nhead;       /* next ticket to read in the own node ring */
    uint32_t hidx, nidx;  /* head % my_slots, nhead % my_slots (no division
                             per receive) */
    int mpi_writers;      /* some declared publisher appends to this rank's
                             MPI ring (mb_routes): its wait progresses MPI
                             from the spin phase on, else from the yield
                             phase (nothing on the node ring needs it) */
    int64_t npending;     /* consumed node-ring slots not yet given back */
    int last_node;        /* the last record inbox_next returned came from
                             the node ring (give_group gives back there) */
    int turn;             /* ring looked at first by the next inbox_next */
    uint32_t pnode, pmpi; /* the rings' shares of the prefetch (mb_routes) */
    struct pxsi_core core;
    struct pxs_bus bus;
};

static MPI_Aint
rec_off(uint32_t slots)
{
    return (MPI_Aint)MB_SEQ + (MPI_Aint)8 * (MPI_Aint)slots;
}

static size_t
nr_rec_off(uint32_t slots)
{
    return (NR_SEQ + 8 * (size_t)slots + 63) & ~(size_t)63;
}

static int64_t *
nr_word(unsigned char *base, size_t off)
{
    return (int64_t *)(void *)(base + off);
}

static uint64_t *
nr_seq(unsigned char *base)
{
    return (uint64_t *)(void *)(base + NR_SEQ);
}

#define MB_CHECK(call)                                                         \
    do {                                                                       \
        int mrc_ = (call);                                                     \
        if (PXSI_UNLIKELY(mrc_ != MPI_SUCCESS))                                \
            return pxsi_mpi_err(mrc_, SUBSYS, #call);                          \
    } while (0)

/* test hook: fail step `st` of an append as an MPI error would (one shot) */
#ifdef PXS_TEST_HOOKS
static const char *const fail_names[PXSI_FAIL_N_] = {"", "credits", "ticket", "put", "flush",
                                                     "sequence word"};
#define MB_FAIL(m, st, target)                                                 \
    do {                                                                       \
        if (PXSI_UNLIKELY((m)->fail_step == (st))) {                           \
            (m)->fail_step = PXSI_FAIL_NONE;                                   \
            return pxsi_err(PXS_ERR_MPI, SUBSYS,                               \
                            "injected MPI failure at the %s step of an append " \
                            "to rank %d",                                      \
                            fail_names[st], (target));                         \
        }                                                                      \
    } while (0)
#else
#define MB_FAIL(m, st, target) ((void)0)
#endif

/* ---------------------------------------------------------------- transport */
/* The marker another rank wrote into this rank's window when its bus broke
 * (mb_poison): PXS_ERR_MPI naming it, else PXS_OK. A local load. */
static int
mb_peer_broken(struct mbox *m)
{
    int64_t br =
        __atomic_load_n((const int64_t *)(void *)(m->base + MB_BROKEN), __ATOMIC_ACQUIRE);
    if (PXSI_LIKELY(br == 0) && m->nbase) /* a same-node peer marks the node word */
        br = __atomic_load_n(nr_word(m->nbase, NR_BROKEN), __ATOMIC_ACQUIRE);
    if (PXSI_LIKELY(br == 0))
        return PXS_OK;
    return pxsi_err(PXS_ERR_MPI, SUBSYS,
                    "rank %d: the bus broke on rank %lld (an MPI error there); events from "
                    "it may never arrive",
                    m->rank, (long long)(br - 1));
}

/* Sole writer: refill local credits from the (only growing) credit word.
 * The refill is a request-based MPI_Rget_accumulate(NO_OP) that never waits:
 * under osc/ucx and pt2pt, and under MPICH, it completes only once the owner
 * enters MPI, and a work-sharing publisher must not stall on a busy member
 * while others have room. It starts when half the credits are used (at most
 * once per quarter of the ring appended), not only when none is left: a
 * refill started at the last credit may still be pending when a batch-1
 * send queues its event and the caller goes to wait in recv, and nothing
 * would deliver that event (docs/DESIGN.md, section "Sole-writer fast path").
 * An append while it is pending waits for it in its flush, which needs the
 * owner in MPI only where the append's own operations already do. */
static int
mb_take_credits_sole(struct mbox *m, int target, uint32_t want, int group, uint32_t *got_out,
                     uint32_t *left_out)
{
    int64_t *lc = &m->lcred[target], *lg = &m->lgcred[target];
    /* one refill reads both words (credits, group credits: adjacent). A
     * refill started for group credits while mailbox credits are left may
     * still be pending at the next direct append there: that append's flush
     * completes it (under osc ucx/pt2pt: once the member is inside MPI). */
    int64_t S = (int64_t)m->slots[target];
    uint64_t quarter = S >= 8 ? (uint64_t)(S / 4) : 1u;
    int low = *lc == 0 || (*lc <= S / 2 && m->ltail[target] - m->crstart[target] >= quarter);
    /* a refill that found nothing new: the next one waits out the poll
     * interval (struct mb_wait), as a read of a shared word does */
    struct mb_wait *w = &m->wait[2 * target];
    int due = !w->fails || pxsi_now() >= w->next;
    if (due && (low || (group && *lg == 0)) && m->creq[target] == MPI_REQUEST_NULL) {
        MB_CHECK(MPI_Rget_accumulate(m->czero, 2, MPI_INT64_T, &m->cres[2 * target], 2,
                                     MPI_INT64_T, target, MB_CRED, 2, MPI_INT64_T, MPI_NO_OP,
                                     m->win, &m->creq[target]));
        m->core.st.atomics++;
        m->crstart[target] = m->ltail[target];
    }
    if (m->creq[target] != MPI_REQUEST_NULL) {
        int done = 0;
        MB_CHECK(MPI_Test(&m->creq[target], &done, MPI_STATUS_IGNORE));
        if (done) {
            /* pairs with the owner's release fence before it returned the
             * credits: its reads of the freed slots happen before our puts */
            atomic_thread_fence(memory_order_acquire);
            const int64_t *res = &m->cres[2 * target];
            int fresh = 0;
            if (res[0] > m->cseen[target]) {
                *lc += res[0] - m->cseen[target];
                m->cseen[target] = res[0];
                fresh = 1;
            }
            if (res[1] > m->gseen[target]) {
                *lg += res[1] - m->gseen[target];
                m->gseen[target] = res[1];
                fresh = 1;
            }
            if (fresh || (*lc > 0 && (!group || *lg > 0))) {
                w->fails = 0;
            } else { /* nothing new and nothing to use: poll later */
                uint32_t sh = w->fails < MB_POLL_LOG2MAX ? w->fails : MB_POLL_LOG2MAX;
                w->fails++;
                w->next = pxsi_now() + MB_POLL_MIN_S * (double)(1u << sh);
            }
        }
    }
    int64_t avail = *lc;
    if (group && *lg < avail)
        avail = *lg;
    uint32_t got = avail < (int64_t)want ? (uint32_t)avail : want;
    if (got == 0 && !due)
        pxsi_mpi_progress(m->comm); /* no MPI operation: progress as a poll would */
    *lc -= got;
    if (group)
        *lg -= got;
    *got_out = got;
    *left_out = (uint32_t)(group && *lg < *lc ? *lg : *lc);
    return PXS_OK;
}

/* Shared word: take up to `want` with one Fetch_and_op; a shortfall is given
 * back. *got_out: taken, *left_out: left after taking. A word found short
 * is polled by mb_poll_word before the next take (struct mb_wait). */
static int
mb_take_word(struct mbox *m, int64_t *buf, int target, MPI_Aint disp, uint32_t want,
             uint32_t *got_out, uint32_t *left_out)
{
    struct mb_wait *w = &m->wait[2 * target + (disp == MB_GCRED)];
    int64_t *op = &buf[0], *old = &buf[1];
    if (w->fails) {
        /* found short before: wait out the interval, then read first */
        double now = pxsi_now();
        if (now < w->next) {
            /* no operation on the word; progress as a poll would */
            pxsi_mpi_progress(m->comm);
            *got_out = 0;
            *left_out = 0;
            return PXS_OK;
        }
        *op = 0; /* ignored by NO_OP */
        MB_CHECK(MPI_Fetch_and_op(op, old, MPI_INT64_T, target, disp, MPI_NO_OP, m->win));
        MB_CHECK(MPI_Win_flush(target, m->win));
        m->core.st.atomics++;
        m->core.st.flushes++;
        if (*old <= 0) {
            uint32_t sh = w->fails < MB_POLL_LOG2MAX ? w->fails : MB_POLL_LOG2MAX;
            w->fails++;
            w->next = now + MB_POLL_MIN_S * (double)(1u << sh);
            *got_out = 0;
            *left_out = 0;
            return PXS_OK;
        }
        if (*old < (int64_t)want)
            want = (uint32_t)*old; /* ask for what is there: nothing to give back */
    }
    *op = -(int64_t)want;
    MB_CHECK(MPI_Fetch_and_op(op, old, MPI_INT64_T, target, disp, MPI_SUM, m->win));
    MB_CHECK(MPI_Win_flush(target, m->win));
    m->core.st.atomics++;
    m->core.st.flushes++;
    atomic_thread_fence(memory_order_acquire); /* pairs with the owner's release */
    if (*old >= (int64_t)want) {
        *got_out = want;
        *left_out = (uint32_t)(*old - (int64_t)want);
        w->fails = 0;
        return PXS_OK;
    }
    /* short: keep what was there, give the rest back */
    int64_t avail = *old > 0 ? *old : 0;
    *op = (int64_t)want - avail;
    MB_CHECK(MPI_Accumulate(op, 1, MPI_INT64_T, target, disp, 1, MPI_INT64_T, MPI_SUM,
                            m->win));
    MB_CHECK(MPI_Win_flush(target, m->win));
    m->core.st.atomics++;
    m->core.st.flushes++;
    *got_out = (uint32_t)avail;
    *left_out = 0;
    if (avail > 0) /* got some: the word is empty now, read first, soon */
        w->fails = 0;
    uint32_t sh = w->fails < MB_POLL_LOG2MAX ? w->fails : MB_POLL_LOG2MAX;
    w->fails++;
    w->next = pxsi_now() + MB_POLL_MIN_S * (double)(1u << sh);
    return PXS_OK;
}

/* Node ring: take up to `want` from a CPU-atomic word (compare-and-swap,
 * never below 0). Acquire on success: pairs with the owner's release add
 * after its copies out of the freed slots. Returns the number taken. */
static uint32_t
nr_take(int64_t *w, uint32_t want, uint32_t *left_out)
{
    int64_t old = __atomic_load_n(w, __ATOMIC_RELAXED);
    for (;;) {
        int64_t take = old < (int64_t)want ? (old > 0 ? old : 0) : (int64_t)want;
        if (take == 0) {
            *left_out = 0;
            return 0;
        }
        if (__atomic_compare_exchange_n(w, &old, old - take, 1, __ATOMIC_ACQUIRE,
                                        __ATOMIC_RELAXED)) {
            *left_out = (uint32_t)(old - take);
            return (uint32_t)take;
        }
    }
}

/* Node-ring credits for an append at target: from the word, or for the
 * ring's sole writer from a local stash refilled with everything the word
 * holds when it runs short. The sole writer touches the credit word (a
 * cache line the owner adds returns to) once per refill, not once per
 * append: no line transfer on the send path in steady state
 * (docs/DESIGN.md "Event path cost"). Nobody else takes credits there, so
 * credits held in the stash keep no other writer waiting. */
static uint32_t
nr_cred_take(struct mbox *m, int target, uint32_t want, uint32_t *left_out)
{
    int64_t *w = nr_word(m->nr[target], NR_CRED);
    if (!m->sole[target])
        return nr_take(w, want, left_out);
    int64_t *lc = &m->lcred[target];
    if (*lc < (int64_t)want) {
        uint32_t l;
        *lc += nr_take(w, m->slots[target], &l);
    }
    uint32_t got = *lc < (int64_t)want ? (uint32_t)*lc : want;
    *lc -= got;
    *left_out = (uint32_t)*lc;
    return got;
}

/* take_credits at a same-node target: its node ring's words, no MPI. */
static int
nr_take_credits(struct mbox *m, int target, uint32_t want, int group, uint32_t *got_out,
                uint32_t *left_out)
{
    unsigned char *b = m->nr[target];
    uint32_t gleft = 0, left = 0;
    if (group) {
        uint32_t g = nr_take(nr_word(b, NR_GCRED), want, &gleft);
        if (g == 0) {
            pxsi_mpi_progress(m->comm); /* a miss: see below */
            *got_out = 0;
            *left_out = 0;
            return PXS_OK;
        }
        want = g;
    }
    uint32_t got = nr_cred_take(m, target, want, &left);
    if (group && got < want) { /* ring full: the unused group credits go back */
        __atomic_fetch_add(nr_word(b, NR_GCRED), (int64_t)(want - got), __ATOMIC_RELAXED);
        gleft += want - got;
    }
    /* a miss progresses MPI once, as an MPI-ring attempt does implicitly:
     * a caller polling a full node ring (send_timeout 0) in a loop must
     * not starve peers whose operations on this rank's windows need it
     * inside MPI (osc/ucx, pt2pt: e.g. the consumer's store claims) */
    if (got == 0)
        pxsi_mpi_progress(m->comm);
    *got_out = got;
    *left_out = group && gleft < left ? gleft : left;
    return PXS_OK;
}

static int
mb_take_credits(void *x, int target, uint32_t want, int group, uint32_t *got_out,
                uint32_t *left_out)
{
    struct mbox *m = x;
    MB_FAIL(m, PXSI_FAIL_CREDITS, target);
    int rc = mb_peer_broken(m);
    if (rc != PXS_OK)
        return rc;
    if (m->nr[target])
        return nr_take_credits(m, target, want, group, got_out, left_out);
    if (m->sole[target])
        return mb_take_credits_sole(m, target, want, group, got_out, left_out);
    uint32_t gleft = 0;
    if (group) {
        const struct mb_wait *cw = &m->wait[2 * target];
        if (cw->fails && pxsi_now() < cw->next) {
            /* its mailbox was full and is not due for a read: take no
             * group credit that would only go back */
            pxsi_mpi_progress(m->comm);
            *got_out = 0;
            *left_out = 0;
            return PXS_OK;
        }
        /* group (prefetch) credits first: a member at its prefetch count is
         * skipped without touching its mailbox credits */
        uint32_t ggot = 0;
        rc = mb_take_word(m, m->gbuf, target, MB_GCRED, want, &ggot, &gleft);
        if (rc != PXS_OK || ggot == 0) {
            *got_out = 0;
            *left_out = 0;
            return rc;
        }
        want = ggot;
    }
    uint32_t got = 0, left = 0;
    rc = mb_take_word(m, m->cbuf, target, MB_CRED, want, &got, &left);
    if (rc != PXS_OK)
        return rc;
    if (group && got < want) {
        /* mailbox full: the group credits not used go back */
        m->gbuf[0] = (int64_t)(want - got);
        MB_CHECK(MPI_Accumulate(&m->gbuf[0], 1, MPI_INT64_T, target, MB_GCRED, 1, MPI_INT64_T,
                                MPI_SUM, m->win));
        MB_CHECK(MPI_Win_flush(target, m->win));
        m->core.st.atomics++;
        m->core.st.flushes++;
        gleft += want - got;
    }
    *got_out = got;
    *left_out = group && gleft < left ? gleft : left;
    return PXS_OK;
}

/* append at a same-node target: tickets (fetch_add, or local for the
 * ring's sole writer), records by memcpy, release, sequence words. */
static int
nr_append(struct mbox *m, int target, const unsigned char *recs, uint32_t n)
{
    unsigned char *b = m->nr[target];
    uint32_t S = m->slots[target];
    uint64_t t0;
    if (m->sole[target]) {
        t0 = m->ltail[target];
        m->ltail[target] += n;
        m->lidx[target] += n; /* n <= S */
        if (m->lidx[target] >= S)
            m->lidx[target] -= S;
    } else {
        t0 = __atomic_fetch_add((uint64_t *)(void *)(b + NR_TAIL), (uint64_t)n,
                                __ATOMIC_RELAXED);
    }
    MB_FAIL(m, PXSI_FAIL_TICKET, target);
    MB_FAIL(m, PXSI_FAIL_PUT, target);
    uint32_t i0 = (uint32_t)(t0 % S);
    uint32_t first = n < S - i0 ? n : S - i0;
    unsigned char *ring = b + nr_rec_off(S);
    memcpy(ring + (size_t)i0 * PXSI_REC_SIZE, recs, (size_t)first * PXSI_REC_SIZE);
    if (n > first)
        memcpy(ring, recs + (size_t)first * PXSI_REC_SIZE, (size_t)(n - first) * PXSI_REC_SIZE);
    MB_FAIL(m, PXSI_FAIL_FLUSH, target);
    MB_FAIL(m, PXSI_FAIL_SEQ, target);
    /* records before sequence words: each store releases (pairs with the
     * owner's acquire load of the word in nr_next) */
    uint64_t *seq = nr_seq(b);
    for (uint32_t j = 0, i = i0; j < n; j++, i = i + 1 == S ? 0 : i + 1)
        __atomic_store_n(&seq[i], t0 + j + 1, __ATOMIC_RELEASE);
    return PXS_OK;
}

static int
mb_append(void *x, int target, unsigned char *recs, uint32_t n)
{
    struct mbox *m = x;
    uint32_t S = m->slots[target];
    uint64_t t0;
    if (m->nr[target])
        return nr_append(m, target, recs, n);
    if (m->sole[target]) {
        t0 = m->ltail[target]; /* nobody else takes tickets here */
        m->ltail[target] += n;
    } else {
        m->tbuf[0] = n;
        MB_CHECK(MPI_Fetch_and_op(&m->tbuf[0], &m->tbuf[1], MPI_UINT64_T, target, MB_TAIL,
                                  MPI_SUM, m->win));
        MB_CHECK(MPI_Win_flush(target, m->win));
        m->core.st.atomics++;
        m->core.st.flushes++;
        t0 = m->tbuf[1];
    }
    /* from here on a failure leaves an unwritten ticket (a hole the owner
     * would wait on): the core marks the bus broken and poisons the peers */
    MB_FAIL(m, PXSI_FAIL_TICKET, target);
    MB_FAIL(m, PXSI_FAIL_PUT, target);
    uint32_t i0 = (uint32_t)(t0 % S);
    uint32_t first = n < S - i0 ? n : S - i0;
    MPI_Aint ro = rec_off(S);
    /* n <= S <= PXSI_SLOTS_MAX, so n * PXSI_REC_SIZE fits an int */
    MB_CHECK(MPI_Put(recs, (int)(first * PXSI_REC_SIZE), MPI_BYTE, target,
                     ro + (MPI_Aint)i0 * PXSI_REC_SIZE, (int)(first * PXSI_REC_SIZE), MPI_BYTE,
                     m->win));
    if (n > first)
        MB_CHECK(MPI_Put(recs + (size_t)first * PXSI_REC_SIZE, (int)((n - first) * PXSI_REC_SIZE),
                         MPI_BYTE, target, ro, (int)((n - first) * PXSI_REC_SIZE), MPI_BYTE,
                         m->win));
    MB_FAIL(m, PXSI_FAIL_FLUSH, target);
    MB_CHECK(MPI_Win_flush(target, m->win));
    m->core.st.flushes++;
    m->core.st.bytes_put += (uint64_t)n * PXSI_REC_SIZE;
    /* records before sequence words: the flush completes the puts at the
     * target; when the puts were stores by this thread (shared memory), the
     * release fence orders them before the sequence-word stores. Pairs with
     * the owner's acquire load of the sequence word in mb_inbox_next. */
    atomic_thread_fence(memory_order_release);
    MB_FAIL(m, PXSI_FAIL_SEQ, target);
    for (uint32_t j = 0; j < n; j++)
        m->seqbuf[j] = t0 + j + 1;
    MB_CHECK(MPI_Accumulate(m->seqbuf, (int)first, MPI_UINT64_T, target,
                            MB_SEQ + (MPI_Aint)i0 * 8, (int)first, MPI_UINT64_T, MPI_REPLACE,
                            m->win));
    if (n > first)
        MB_CHECK(MPI_Accumulate(m->seqbuf + first, (int)(n - first), MPI_UINT64_T, target, MB_SEQ,
                                (int)(n - first), MPI_UINT64_T, MPI_REPLACE, m->win));
    MB_CHECK(MPI_Win_flush(target, m->win));
    m->core.st.atomics += n > first ? 2 : 1;
    m->core.st.flushes++;
    return PXS_OK;
}

/* The direct path's slot (pxsi_xport_ops_t.slot): at a same-node target
 * whose ring this rank is the sole writer of, one credit taken from the
 * local stash (refilled as nr_cred_take does) and the slot of its next
 * ticket, for the core to encode the record in place (no copy through a
 * scratch record); commit then publishes it as nr_append does. One call
 * instead of take_credits + slot (docs/DESIGN.md "Event path cost"): the
 * broken-peer check of take_credits comes first, as there. NULL, with
 * nothing taken, elsewhere, without a credit (the caller then goes through
 * take_credits, which reports what is wrong or progresses MPI on a miss),
 * and while a test hook is armed (append's failure points stay reachable). */
static unsigned char *
mb_slot(void *x, int target)
{
    struct mbox *m = x;
    unsigned char *b = m->nr[target];
    if (!b || !m->sole[target] || m->fail_step != PXSI_FAIL_NONE)
        return NULL;
    int64_t br = __atomic_load_n((const int64_t *)(void *)(m->base + MB_BROKEN), __ATOMIC_ACQUIRE);
    if (br == 0 && m->nbase)
        br = __atomic_load_n(nr_word(m->nbase, NR_BROKEN), __ATOMIC_ACQUIRE);
    if (PXSI_UNLIKELY(br != 0))
        return NULL; /* take_credits reports it (acquire loads there) */
    int64_t *lc = &m->lcred[target];
    uint32_t S = m->slots[target];
    if (PXSI_UNLIKELY(*lc < 1)) {
        uint32_t l;
        *lc += nr_take(nr_word(b, NR_CRED), S, &l);
        if (*lc < 1)
            return NULL;
    }
    --*lc;
    return b + nr_rec_off(S) + (size_t)m->lidx[target] * PXSI_REC_SIZE;
}

/* Ask for the sole writer's next slot in the target's ring for writing
 * (prefetchw of its record lines), right after a commit. The owner last
 * read those lines a ring ago, so the line transfer happens now, while this
 * rank goes on (typically to wait for a reply), and not when the next
 * append's stores must drain before its release store of the sequence word
 * can be seen: one cross-core line transfer fewer on the one-way path. The
 * sequence word's line is not touched (the owner is polling it). Only
 * with a credit in the stash: then the owner has given that slot back and
 * is not reading it (a full ring's next slot is). A hint: no effect on
 * what is written or read. */
static inline void
nr_prefetch_slot(struct mbox *m, int target)
{
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    uint32_t S = m->slots[target];
    const unsigned char *p = m->nr[target] + nr_rec_off(S) + (size_t)m->lidx[target] * PXSI_REC_SIZE;
    for (size_t o = 0; o < PXSI_REC_SIZE; o += 64)
        __asm__ __volatile__("prefetchw %0" ::"m"(p[o]));
#else
    (void)m;
    (void)target;
#endif
}

static void
mb_commit(void *x, int target)
{
    struct mbox *m = x;
    uint64_t t0 = m->ltail[target]++;
    uint32_t i = m->lidx[target];
    m->lidx[target] = i + 1 == m->slots[target] ? 0 : i + 1;
    /* the record's stores before the sequence word (pairs with the owner's
     * acquire load in nr_next) */
    __atomic_store_n(&nr_seq(m->nr[target])[i], t0 + 1, __ATOMIC_RELEASE);
    if (m->lcred[target] > 0) /* the next slot is free (not being read) */
        nr_prefetch_slot(m, target);
}

static void
mb_progress(void *x)
{
    struct mbox *m = x;
    pxsi_mpi_progress(m->comm);
}

static uint32_t
mb_capacity(void *x, int target)
{
    struct mbox *m = x;
    return m->slots[target];
}

/* Give consumed slots back (owner updates its own control word through MPI). */
static int
mb_return_credits(struct mbox *m)
{
    if (m->pending == 0)
        return PXS_OK;
    /* the record copies above happen before the credit becomes visible:
     * pairs with the publisher's acquire fence after it took the credits */
    atomic_thread_fence(memory_order_release);
    m->rbuf[0] = m->pending;
    MB_CHECK(MPI_Accumulate(&m->rbuf[0], 1, MPI_INT64_T, m->rank, MB_CRED, 1, MPI_INT64_T,
                            MPI_SUM, m->win));
    MB_CHECK(MPI_Win_flush(m->rank, m->win));
    m->core.st.sub_atomics++;
    m->pending = 0;
    return PXS_OK;
}

/* Node ring: consumed slots back (one release add: the copies out of the
 * slots happen before a publisher's acquire take sees the credits). */
static void
nr_return_credits(struct mbox *m)
{
    if (m->npending == 0)
        return;
    __atomic_fetch_add(nr_word(m->nbase, NR_CRED), m->npending, __ATOMIC_RELEASE);
    m->npending = 0;
}

/* The subscriber is done with n group events: n group credits back, to the
 * ring they came from. The core gives back at most the last event returned
 * (see give_group in pubsub_int.h), so that is the last record's ring. */
static int
mb_give_group(void *x, uint32_t n)
{
    struct mbox *m = x;
    if (m->last_node) {
        __atomic_fetch_add(nr_word(m->nbase, NR_GCRED), (int64_t)n, __ATOMIC_RELEASE);
        return PXS_OK;
    }
    m->rbuf[1] = (int64_t)n;
    MB_CHECK(MPI_Accumulate(&m->rbuf[1], 1, MPI_INT64_T, m->rank, MB_GCRED, 1, MPI_INT64_T,
                            MPI_SUM, m->win));
    MB_CHECK(MPI_Win_flush(m->rank, m->win));
    m->core.st.sub_atomics++;
    return PXS_OK;
}

/* Best effort after this rank's bus broke: mark every other rank's window,
 * so that a subscriber waiting there (perhaps on a ticket this rank reserved
 * and never wrote) stops with PXS_ERR_MPI. Errors are ignored: if MPI itself
 * is gone, the peers' waits are bounded only by their recv timeouts. */
static void
mb_poison(void *x)
{
    struct mbox *m = x;
    m->poison_val = (int64_t)m->rank + 1;
    for (int r = 0; r < m->size; r++) {
        if (r == m->rank)
            continue;
        /* a same-node peer: its node word (CPU store, no MPI needed there) */
        unsigned char *nb = pxsi_shmseg_base(m->seg, r);
        if (nb)
            __atomic_store_n(nr_word(nb, NR_BROKEN), m->poison_val, __ATOMIC_RELEASE);
        else
            (void)MPI_Accumulate(&m->poison_val, 1, MPI_INT64_T, r, MB_BROKEN, 1, MPI_INT64_T,
                                 MPI_REPLACE, m->win);
    }
    (void)MPI_Win_flush_all(m->win);
}

/* Raise the depth high-water mark (stats) from a ring whose slot `head` was
 * just read: is the slot `hwm` records ahead filled too? One relaxed load
 * per receive, amortised: every hit raises the mark (docs/DESIGN.md,
 * section "Logging and statistics"). */
static void
mb_hwm(struct mbox *m, const uint64_t *seqw, uint32_t S, uint64_t head, uint32_t idx)
{
    uint32_t *hwm = &m->core.st.depth_hwm;
    for (;;) {
        uint32_t h = *hwm;
        if (h >= S)
            return;
        uint32_t i = idx + h; /* (head + h) % S: idx = head % S, h < S */
        if (i >= S)
            i -= S;
        if (__atomic_load_n(&seqw[i], __ATOMIC_RELAXED) != head + h + 1)
            return;
        *hwm = h + 1;
    }
}

/* One look at the MPI ring: 1 and the record copied out, 0 nothing, or an
 * error. */
static int
mpi_next(struct mbox *m, unsigned char *rec_out)
{
    uint32_t S = m->my_slots;
    const uint64_t *seqw = (const uint64_t *)(void *)(m->base + MB_SEQ);
    uint32_t i = m->hidx;
    /* equality with head + 1: an older or torn value never matches. The
     * acquire load pairs with the publisher's release fence between its
     * record puts and the sequence words (mb_append): the record copy
     * below cannot read older bytes. MPI_Win_sync is kept for the MPI
     * memory model; the ordering does not depend on it. */
    if (__atomic_load_n(&seqw[i], __ATOMIC_ACQUIRE) != m->head + 1)
        return 0;
    if (!rec_out)
        return 1; /* a look only (mb_wait): nothing consumed */
    MB_CHECK(MPI_Win_sync(m->win));
    memcpy(rec_out, m->base + rec_off(S) + (size_t)i * PXSI_REC_SIZE, PXSI_REC_SIZE);
    mb_hwm(m, seqw, S, m->head, i);
    m->head++;
    m->hidx = i + 1 == S ? 0 : i + 1;
    if (++m->pending >= m->credit_batch) {
        int rc = mb_return_credits(m);
        if (rc != PXS_OK)
            return rc;
    }
    return 1;
}

/* Ask for a filled node-ring slot's record lines (all at once, as soon as
 * its sequence word was seen), so that the line transfers from the
 * publisher's core overlap each other and the way back to the caller that
 * reads them, instead of starting at the first field read. A hint. */
static inline void
nr_prefetch_rec(const struct mbox *m, uint32_t i)
{
    const unsigned char *p = m->nbase + nr_rec_off(m->my_slots) + (size_t)i * PXSI_REC_SIZE;
    for (size_t o = 0; o < PXSI_REC_SIZE; o += 64)
        __builtin_prefetch(p + o, 0, 3);
}

/* One look at the node ring: 1 and the record copied out, or 0. */
static int
nr_next(struct mbox *m, unsigned char *rec_out)
{
    uint32_t S = m->my_slots;
    const uint64_t *seqw = nr_seq(m->nbase);
    uint32_t i = m->nidx;
    /* pairs with the publisher's release store of the word (nr_append) */
    if (__atomic_load_n(&seqw[i], __ATOMIC_ACQUIRE) != m->nhead + 1)
        return 0;
    if (!rec_out) {
        nr_prefetch_rec(m, i); /* the caller reads it in place next (peek) */
        return 1;              /* a look only (mb_wait): nothing consumed */
    }
    memcpy(rec_out, m->nbase + nr_rec_off(S) + (size_t)i * PXSI_REC_SIZE, PXSI_REC_SIZE);
    mb_hwm(m, seqw, S, m->nhead, i);
    m->nhead++;
    m->nidx = i + 1 == S ? 0 : i + 1;
    if (++m->npending >= m->credit_batch)
        nr_return_credits(m);
    return 1;
}

/* pxsi_xport_ops_t.peek: the record nr_next would copy out, in place, when
 * mb_next would take it now (the node ring's turn, or the MPI ring empty);
 * consumed as nr_next does, except that the credit is given back only in
 * mb_peek_done, after the caller has read the slot. */
static const unsigned char *
mb_peek(void *x)
{
    struct mbox *m = x;
    if (!m->nbase || m->my_slots == 0)
        return NULL;
    uint32_t S = m->my_slots;
    if (!m->turn) { /* the MPI ring first: a record there goes through mpi_next */
        const uint64_t *mseq = (const uint64_t *)(void *)(m->base + MB_SEQ);
        if (__atomic_load_n(&mseq[m->hidx], __ATOMIC_ACQUIRE) == m->head + 1)
            return NULL;
    }
    const uint64_t *seqw = nr_seq(m->nbase);
    uint32_t i = m->nidx;
    /* pairs with the publisher's release store of the word (nr_append,
     * mb_commit) */
    if (__atomic_load_n(&seqw[i], __ATOMIC_ACQUIRE) != m->nhead + 1)
        return NULL;
    mb_hwm(m, seqw, S, m->nhead, i);
    m->nhead++;
    m->nidx = i + 1 == S ? 0 : i + 1;
    m->npending++;
    m->last_node = 1;
    m->turn = 0;
    return m->nbase + nr_rec_off(S) + (size_t)i * PXSI_REC_SIZE;
}

static void
mb_peek_done(void *x)
{
    struct mbox *m = x;
    if (m->npending >= m->credit_batch)
        nr_return_credits(m);
}

/* One look at both rings, starting with the one not served last (neither
 * kind of traffic starves the other). rec_out NULL: a look only (1: a
 * record is there), nothing consumed. */
static int
mb_next(struct mbox *m, unsigned char *rec_out)
{
    for (int k = 0; k < 2; k++) {
        int node = m->turn ^ k;
        if (node && !m->nbase)
            continue;
        int got = node ? nr_next(m, rec_out) : mpi_next(m, rec_out);
        if (got != 0) {
            if (got > 0 && rec_out) {
                m->last_node = node;
                m->turn = !node;
            }
            return got;
        }
    }
    return 0;
}

/* inbox_next, and with rec_out NULL the wait op: return PXS_OK once a
 * record is there, consuming nothing (the caller then takes it with peek,
 * in its slot, or inbox_next). The same wait either way. */
static int
mb_inbox_wait(struct mbox *m, unsigned char *rec_out, double timeout)
{
    if (m->my_slots == 0)
        return PXS_TIMEOUT; /* not reached: no subscriptions means END */
    /* a record already there (the hot path): no wait set up */
    int got0 = mb_next(m, rec_out);
    if (got0 != 0)
        return got0 < 0 ? got0 : PXS_OK;
    /* progress by hand (MPI_Win_sync's result is checked): no hook */
    pxsi_backoff_t b;
    pxsi_backoff_init_mpi(&b, timeout, NULL, NULL);
    /* the first pauses of the spin phase, inline: the one sequence word
     * each ring fills next, an acquire load and a cpu pause per poll, no
     * call, clock, MPI or other shared word (a ping-pong's reply lands
     * here). They count as pauses of the wait (b.iter), so the yield,
     * sleep, progress and credit-return steps come when they did (not
     * with a batch of credits to give back: the loop gives it first). The
     * loop below then takes the record (or fails) as before. */
    if (timeout != 0 && m->npending < m->credit_batch && m->pending < m->credit_batch) {
        const uint64_t *mw = (const uint64_t *)(void *)(m->base + MB_SEQ) + m->hidx;
        const uint64_t *nw = m->nbase ? nr_seq(m->nbase) + m->nidx : mw;
        uint64_t mwant = m->head + 1, nwant = m->nbase ? m->nhead + 1 : mwant;
        while (b.iter < MB_SPIN_INLINE && __atomic_load_n(nw, __ATOMIC_ACQUIRE) != nwant &&
               __atomic_load_n(mw, __ATOMIC_ACQUIRE) != mwant) {
            pxsi_cpu_pause();
            b.iter++;
        }
    }
    int polled_mpi = 0;
    for (;;) {
        int got = mb_next(m, rec_out);
        if (got < 0)
            return got;
        if (got)
            return PXS_OK;
        /* about to wait: never sit on credits a publisher may be waiting for.
         * Given back once the short spin phase is over (or before returning
         * PXS_TIMEOUT), not on the first miss: a reply that is about to land
         * (ping-pong) should not wait behind an accumulate and flush. */
        if (m->npending && (b.iter >= MB_CREDIT_RETURN_STEP || m->npending >= m->credit_batch))
            nr_return_credits(m);
        if (m->pending && (b.iter >= MB_CREDIT_RETURN_STEP || m->pending >= m->credit_batch)) {
            int rc = mb_return_credits(m);
            if (rc != PXS_OK)
                return rc;
        }
        /* not on the very first miss (a reply about to land should not
         * wait behind an MPI_Iprobe), except for a poll (timeout 0), which
         * gets one look after progress */
        if ((timeout == 0 && !polled_mpi) ||
            (m->mpi_writers ? pxsi_backoff_progress_due(&b) : b.iter >= PXSI_BACKOFF_YIELD)) {
            /* osc/ucx atomics and osc/pt2pt need the target inside MPI
             * (the MPI ring only: the node ring needs nothing from here) */
            pxsi_mpi_progress(m->comm);
            MB_CHECK(MPI_Win_sync(m->win));
            if (!polled_mpi) {
                polled_mpi = 1;
                continue; /* timeout 0 still gets one look after progress */
            }
        }
        /* a peer whose bus broke may have left a hole this rank would wait
         * on forever (docs/DESIGN.md "Broken bus") */
        int brc = mb_peer_broken(m);
        if (brc != PXS_OK) {
            /* records completed before the marker was written are still
             * delivered: the marker was seen (acquire) after the rings were
             * looked at above, so look again before failing */
            got = mb_next(m, rec_out);
            if (got < 0)
                return got;
            if (got)
                return PXS_OK;
            return brc;
        }
        if (pxsi_backoff_expired(&b)) {
            nr_return_credits(m);
            int rc = mb_return_credits(m);
            return rc != PXS_OK ? rc : PXS_TIMEOUT;
        }
        /* naps capped at 64 us (init_mpi): under osc/ucx and pt2pt,
         * publishers' atomics on this window wait for this loop to call MPI */
        pxsi_backoff_pause(&b);
    }
}

static int
mb_inbox_next(void *x, unsigned char *rec_out, double timeout)
{
    return mb_inbox_wait(x, rec_out, timeout);
}

static int
mb_wait(void *x, double timeout)
{
    return mb_inbox_wait(x, NULL, timeout);
}

/* Records waiting in this rank's ring now (stats): the filled slots from
 * the head on. */
static uint32_t
mb_depth(void *x)
{
    struct mbox *m = x;
    uint32_t S = m->my_slots, d = 0, e = 0;
    const uint64_t *seqw = (const uint64_t *)(void *)(m->base + MB_SEQ);
    while (d < S &&
           __atomic_load_n(&seqw[(uint32_t)((m->head + d) % S)], __ATOMIC_RELAXED) == m->head + d + 1)
        d++;
    if (m->nbase) { /* and the node ring's */
        const uint64_t *nseq = nr_seq(m->nbase);
        while (e < S && __atomic_load_n(&nseq[(uint32_t)((m->nhead + e) % S)],
                                        __ATOMIC_RELAXED) == m->nhead + e + 1)
            e++;
    }
    return d + e;
}

static void
mb_stats(pxs_bus_t *bus, pxs_bus_stats_t *out)
{
    struct mbox *m = bus->backend;
    pxsi_core_stats(&m->core, out);
    out->mailbox_slots = m->my_slots;
    out->depth_now = mb_depth(m);
}

static const pxsi_xport_ops_t mb_xops = {
    .take_credits = mb_take_credits,
    .give_group = mb_give_group,
    .poison = mb_poison,
    .append = mb_append,
    .slot = mb_slot,
    .commit = mb_commit,
    .progress = mb_progress,
    .inbox_next = mb_inbox_next,
    .wait = mb_wait,
    .peek = mb_peek,
    .peek_done = mb_peek_done,
    .capacity = mb_capacity,
    .depth = mb_depth,
};

/* ---------------------------------------------------------------- create/destroy */
static void
mb_free(struct mbox *m)
{
    if (!m)
        return;
    pxsi_core_fini(&m->core);
    if (m->locked)
        (void)MPI_Win_unlock_all(m->win);
    if (m->have_win)
        (void)MPI_Win_free(&m->win);
    if (m->comm != MPI_COMM_NULL)
        (void)MPI_Comm_free(&m->comm);
    free(m->slots);
    free(m->seqbuf);
    free(m->sole);
    free(m->ltail);
    free(m->lidx);
    free(m->lcred);
    free(m->cseen);
    free(m->lgcred);
    free(m->gseen);
    free(m->crstart);
    free(m->writer);
    free(m->creq);
    free(m->cres);
    free(m->wait);
    free(m->nr);
    pxsi_shmseg_free(m->seg);
    m->bus.magic = PXSI_MAGIC_DEAD;
    m->bus.pub.magic = PXSI_MAGIC_DEAD;
    m->bus.sub.magic = PXSI_MAGIC_DEAD;
    free(m);
}

static int
mb_destroy(pxs_bus_t *bus)
{
    struct mbox *m = bus->backend;
    /* queued sends are delivered if that needs no waiting; the rest is
     * dropped (call pxs_publisher_flush / close_topic before destroying) */
    pxsi_core_drain_nowait(&m->core);
    pxsi_bus_stats_at_destroy(bus);
    pxsi_core_giveback(&m->core); /* what stays queued is discarded */
    int brc = pxsi_core_check(&m->core); /* a broken bus still gets freed */
    char bdetail[512] = "";
    if (brc != PXS_OK)
        snprintf(bdetail, sizeof bdetail, "%s", pxs_last_error_detail());
    /* pending credit refills complete once their targets are in MPI, which
     * every rank is about to be (this destroy is collective) */
    int wrc = PXS_OK;
    for (int r = 0; r < m->size; r++)
        if (m->creq[r] != MPI_REQUEST_NULL && wrc == PXS_OK)
            wrc = pxsi_mpi_err(MPI_Wait(&m->creq[r], MPI_STATUS_IGNORE), SUBSYS,
                               "MPI_Wait (credit refill)");
    /* every rank's operations are complete (flushed) before it gets here;
     * the barrier makes sure nobody still targets a window being freed */
    int mrc = MPI_Barrier(m->comm);
    int rc = pxsi_mpi_err(mrc, SUBSYS, "MPI_Barrier (bus destroy)");
    if (rc == PXS_OK)
        rc = wrc;
    if (m->locked) {
        mrc = MPI_Win_unlock_all(m->win);
        m->locked = 0;
        if (rc == PXS_OK)
            rc = pxsi_mpi_err(mrc, SUBSYS, "MPI_Win_unlock_all");
    }
    if (m->have_win) {
        mrc = MPI_Win_free(&m->win);
        m->have_win = 0;
        if (rc == PXS_OK)
            rc = pxsi_mpi_err(mrc, SUBSYS, "MPI_Win_free");
    }
    mb_free(m);
    if (brc != PXS_OK) /* the original cause, again (the frees may have reset it) */
        rc = pxsi_err(PXS_ERR_MPI, SUBSYS, "bus destroyed; it was broken: %s", bdetail);
    return rc;
}

static int
mb_exchange(struct mbox *m, const pxs_bus_opts_t *o, unsigned char ***decls_out,
            unsigned char **all_out)
{
    unsigned char *mine = NULL;
    size_t len = 0;
    int rc = pxsi_decl_pack(o, o->n_subscribe ? o->slots : 0, &mine, &len);
    int ilen = rc == PXS_OK && len <= PXSI_INT_MAX_SIZE ? (int)len : -1;
    int *lens = calloc((size_t)m->size, sizeof *lens);
    int *displs = calloc((size_t)m->size, sizeof *displs);
    unsigned char **decls = calloc((size_t)m->size, sizeof *decls);
    unsigned char *all = NULL;
    if (rc == PXS_OK && (!lens || !displs || !decls))
        rc = pxsi_err(PXS_ERR_NOMEM, SUBSYS, "declaration exchange");
    if (rc == PXS_OK && ilen < 0)
        rc = pxsi_err(PXS_ERR_INVALID, SUBSYS, "declarations too large");
    rc = pxsi_agree(m->comm, rc);
    if (rc == PXS_OK)
        rc = pxsi_mpi_err(MPI_Allgather(&ilen, 1, MPI_INT, lens, 1, MPI_INT, m->comm), SUBSYS,
                          "MPI_Allgather (declaration sizes)");
    size_t total = 0;
    if (rc == PXS_OK) {
        for (int r = 0; r < m->size; r++) {
            displs[r] = (int)total;
            total += (size_t)lens[r];
        }
        if (total > PXSI_INT_MAX_SIZE)
            rc = pxsi_err(PXS_ERR_INVALID, SUBSYS, "declarations too large (%zu B)", total);
        else if (!(all = malloc(total ? total : 1)))
            rc = pxsi_err(PXS_ERR_NOMEM, SUBSYS, "declaration exchange");
    }
    rc = pxsi_agree(m->comm, rc);
    if (rc == PXS_OK)
        rc = pxsi_mpi_err(MPI_Allgatherv(mine, ilen, MPI_BYTE, all, lens, displs, MPI_BYTE,
                                         m->comm),
                          SUBSYS, "MPI_Allgatherv (declarations)");
    if (rc == PXS_OK)
        for (int r = 0; r < m->size; r++)
            decls[r] = all + displs[r];
    free(mine);
    free(lens);
    free(displs);
    if (rc != PXS_OK) {
        free(decls);
        free(all);
        return rc;
    }
    *decls_out = decls;
    *all_out = all;
    return PXS_OK;
}

struct pub_pair {
    uint32_t topic;
    int rank;
};

static int
cmp_pair(const void *a, const void *b)
{
    const struct pub_pair *x = a, *y = b;
    if (x->topic != y->topic)
        return x->topic < y->topic ? -1 : 1;
    return (x->rank > y->rank) - (x->rank < y->rank);
}

/* Do ranks a and b share a node (and the node path is on)? */
static int
mb_same_node(const struct mbox *m, int a, int b)
{
    return pxsi_shmseg_on(m->seg) &&
           pxsi_shmseg_node_of(m->seg, a) == pxsi_shmseg_node_of(m->seg, b);
}

/* Routes, from the declarations (the same on every rank, so writers and
 * owners agree on every choice):
 * - the ring this rank appends to at each target: the node ring when the
 *   target is on this node (m->nr), else the MPI ring. A writer uses one
 *   ring per target, so per-(producer, topic) order holds;
 * - the sole writers (m->sole, m->writer), per ring: this rank is the sole
 *   writer of a ring when no other rank appends to that ring (the other
 *   kind of ring may have writers of its own). PXS_MAILBOX_SOLE=0 (sole_on
 *   0) turns the fast path off;
 * - this rank's prefetch split between its two rings (m->pnode): all of it
 *   on the ring its group topics' publishers use, half each when both kinds
 *   publish to it (each ring at least 1).
 * Cost: one sort of all (topic, publisher) pairs, then a binary search per
 * subscribed topic of each mailbox. */
static int
mb_routes(struct mbox *m, unsigned char *const *decls, int sole_on)
{
    size_t np = 0;
    for (int r = 0; r < m->size; r++)
        np += pxsi_get_le32(decls[r] + 8);
    struct pub_pair *pp = malloc((np ? np : 1) * sizeof *pp);
    if (!pp)
        return pxsi_err(PXS_ERR_NOMEM, SUBSYS, "publisher table");
    size_t k = 0;
    for (int r = 0; r < m->size; r++) {
        uint32_t n = pxsi_get_le32(decls[r] + 8);
        for (uint32_t i = 0; i < n; i++) {
            pp[k].topic = pxsi_get_le32(decls[r] + 16 + 4 * (size_t)i);
            pp[k++].rank = r;
        }
    }
    qsort(pp, np, sizeof *pp, cmp_pair);
    int glocal = 0, gremote = 0; /* kinds of publishers of my group topics */
    for (int t = 0; t < m->size; t++) {
        if (m->slots[t] == 0)
            continue;
        int mine_node = mb_same_node(m, m->rank, t);
        m->nr[t] = mine_node ? pxsi_shmseg_base(m->seg, t) : NULL;
        const unsigned char *d = decls[t];
        uint32_t npub = pxsi_get_le32(d + 8), nsub = pxsi_get_le32(d + 12);
        const unsigned char *sp = d + 16 + 4 * (size_t)npub;
        int writer = -1, several = 0;
        for (uint32_t i = 0; i < nsub; i++) {
            uint32_t topic = pxsi_get_le32(sp);
            int is_group = sp[4] != 0;
            sp += 5 + sp[4];
            size_t lo = 0, hi = np; /* first pair with this topic */
            while (lo < hi) {
                size_t mid = (lo + hi) / 2;
                if (pp[mid].topic < topic)
                    lo = mid + 1;
                else
                    hi = mid;
            }
            for (size_t j = lo; j < np && pp[j].topic == topic; j++) {
                int w = pp[j].rank, w_node = mb_same_node(m, w, t);
                if (t == m->rank && !w_node)
                    m->mpi_writers = 1;
                if (t == m->rank && is_group) {
                    glocal |= w_node;
                    gremote |= !w_node;
                }
                if (w_node != mine_node)
                    continue; /* appends to the other ring */
                if (writer < 0)
                    writer = w;
                else if (w != writer)
                    several = 1;
            }
        }
        if (!sole_on)
            continue;
        if (!several)
            m->writer[t] = writer;
        if (!several && writer == m->rank) {
            m->sole[t] = 1;
            /* MPI ring: the word starts at the owner's slots (set before
             * the barrier that ends create): they are ours without a look.
             * Group credits start at the owner's prefetch share, which is
             * not known here: the first look gains them. (Node ring: the
             * credits are taken from the word itself.) */
            if (!m->nr[t])
                m->lcred[t] = m->cseen[t] = (int64_t)m->slots[t];
        }
    }
    free(pp);
    uint32_t P = m->prefetch;
    if (!m->nbase || !glocal) {
        m->pnode = 0;
        m->pmpi = P;
    } else if (!gremote) {
        m->pnode = P;
        m->pmpi = 0;
    } else { /* both kinds: half each, at least 1 each */
        m->pnode = P > 1 ? (P + 1) / 2 : 1;
        m->pmpi = P > 1 ? P - m->pnode : 1;
    }
    return PXS_OK;
}

int
pxs_bus_create(MPI_Comm comm, const pxs_bus_opts_t *opts, pxs_bus_t **bus_out)
{
    if (comm == MPI_COMM_NULL)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "pxs_bus_create: MPI_COMM_NULL");
    pxs_bus_opts_t o;
    int lrc = pxsi_bus_opts_resolve(opts, &o);
    if (lrc == PXS_OK && !bus_out)
        lrc = pxsi_err(PXS_ERR_INVALID, SUBSYS, "pxs_bus_create: bus_out is NULL");

    struct mbox *m = calloc(1, sizeof *m);
    MPI_Comm dup = MPI_COMM_NULL;
    int mrc = MPI_Comm_dup(comm, &dup);
    /* agreed over the caller's comm: a rank whose dup failed must not leave
     * the others waiting in the agreement over dup below; a dup that exists
     * on some ranks only is leaked (freeing it is collective) */
    int drc = pxsi_agree(comm, pxsi_mpi_err(mrc, SUBSYS, "MPI_Comm_dup"));
    if (drc != PXS_OK) {
        free(m);
        return drc;
    }
    (void)MPI_Comm_set_errhandler(dup, MPI_ERRORS_RETURN);
    if (lrc == PXS_OK && !m)
        lrc = pxsi_err(PXS_ERR_NOMEM, SUBSYS, "bus");
    int rc = pxsi_agree(dup, lrc);
    if (rc != PXS_OK) {
        (void)MPI_Comm_free(&dup);
        free(m);
        return rc;
    }
    m->comm = dup;
    MPI_Comm_rank(dup, &m->rank);
    MPI_Comm_size(dup, &m->size);
    m->prefetch = o.n_subscribe ? pxsi_bus_prefetch(&o) : 0;
    int level = MPI_THREAD_SINGLE;
    (void)MPI_Query_thread(&level);
    pxsi_bus_guard_init(&m->bus, level);

    unsigned char **decls = NULL, *all = NULL;
    /* agreed: an MPI failure of the exchange's last collective on some
     * ranks only must not split the ranks between mb_free's MPI_Comm_free
     * and the next agreement */
    if ((rc = pxsi_agree(m->comm, mb_exchange(m, &o, &decls, &all))) != PXS_OK) {
        free(decls);
        free(all);
        mb_free(m);
        return rc;
    }
    m->slots = calloc((size_t)m->size, sizeof *m->slots);
    uint32_t maxs = 1;
    for (int r = 0; m->slots && r < m->size; r++) {
        m->slots[r] = pxsi_decl_slots(decls[r]);
        if (m->slots[r] > maxs)
            maxs = m->slots[r];
    }
    m->my_slots = m->slots ? m->slots[m->rank] : 0;
    m->seqbuf = malloc((size_t)maxs * sizeof *m->seqbuf);
    m->sole = calloc((size_t)m->size, 1);
    m->ltail = calloc((size_t)m->size, sizeof *m->ltail);
    m->lidx = calloc((size_t)m->size, sizeof *m->lidx);
    m->lcred = calloc((size_t)m->size, sizeof *m->lcred);
    m->cseen = calloc((size_t)m->size, sizeof *m->cseen);
    m->lgcred = calloc((size_t)m->size, sizeof *m->lgcred);
    m->gseen = calloc((size_t)m->size, sizeof *m->gseen);
    m->crstart = calloc((size_t)m->size, sizeof *m->crstart);
    m->writer = malloc((size_t)m->size * sizeof *m->writer);
    m->creq = malloc((size_t)m->size * sizeof *m->creq);
    m->cres = calloc(2 * (size_t)m->size, sizeof *m->cres);
    m->wait = calloc(2 * (size_t)m->size, sizeof *m->wait);
    for (int r = 0; m->writer && m->creq && r < m->size; r++) {
        m->writer[r] = -1;
        m->creq[r] = MPI_REQUEST_NULL;
    }
    m->nr = calloc((size_t)m->size, sizeof *m->nr);
    lrc = m->slots && m->seqbuf && m->sole && m->ltail && m->lidx && m->lcred && m->cseen &&
                  m->lgcred && m->gseen && m->crstart && m->writer && m->creq && m->cres &&
                  m->wait && m->nr
              ? PXS_OK
              : pxsi_err(PXS_ERR_NOMEM, SUBSYS, "bus tables");
    if ((rc = pxsi_agree(m->comm, lrc)) != PXS_OK)
        goto fail;
    m->credit_batch = m->my_slots / 8;
    if (m->credit_batch < 1)
        m->credit_batch = 1;
    if (m->credit_batch > 64)
        m->credit_batch = 64;

    /* the window: plain MPI_Win_allocate (never create/dynamic: see docs/DESIGN.md, section "Open MPI 4.1.4 facts");
     * its size (up to ~192 MiB per rank at 1M slots) checked against the
     * node first: a window allocation failing on one rank hangs the others */
    MPI_Aint wsize = rec_off(m->my_slots) + (MPI_Aint)m->my_slots * PXSI_REC_SIZE;
    if ((rc = pxsi_node_mem_fits(m->comm, MPI_COMM_NULL, SUBSYS, (uint64_t)wsize, 0, 0,
                                 "mailbox window", "PXS_MAILBOX_SLOTS / opts.slots")) != PXS_OK)
        goto fail;
    MPI_Info info;
    MPI_Info_create(&info);
    MPI_Info_set(info, "accumulate_ordering", "none"); /* we order with flushes */
    MPI_Info_set(info, "same_disp_unit", "true");
    /* agreed, with the one remedy text (src/util/window.h) */
    rc = pxsi_win_allocate(m->comm, wsize, 1, info, 0, SUBSYS, "MPI_Win_allocate", &m->base,
                           &m->win);
    MPI_Info_free(&info);
    if (rc != PXS_OK) {
        /* a window that exists only on some ranks cannot be freed (collective):
         * it is leaked rather than risking a hang */
        m->have_win = 0;
        goto fail;
    }
    m->have_win = 1;
    int *model = NULL, flag = 0;
    mrc = MPI_Win_get_attr(m->win, MPI_WIN_MODEL, &model, &flag);
    if (mrc != MPI_SUCCESS)
        lrc = pxsi_mpi_err(mrc, SUBSYS, "MPI_Win_get_attr(MPI_WIN_MODEL)");
    else if (!flag || *model != MPI_WIN_UNIFIED)
        lrc = pxsi_err(PXS_ERR_NOTSUP, SUBSYS,
                       "the RMA window is not MPI_WIN_UNIFIED (separate memory model): the "
                       "mailbox polls window memory directly and needs the unified model");
    if ((rc = pxsi_agree(m->comm, lrc)) != PXS_OK)
        goto fail;
    /* the node ring: every rank's own segment (at least the control words:
     * a same-node peer marks a broken bus there), mapped by its node; off
     * with PXS_SHM=0. Agreed (a failure fails the create on every rank,
     * naming the remedy PXS_SHM=0). Then the routes, which need the nodes. */
    if ((rc = pxsi_shmseg_create(m->comm, nr_rec_off(m->my_slots) +
                                              (size_t)m->my_slots * PXSI_REC_SIZE,
                                 -1, SUBSYS, "mailbox node ring", &m->seg)) != PXS_OK)
        goto fail;
    m->nbase = pxsi_shmseg_base(m->seg, m->rank);
    if ((rc = pxsi_agree(m->comm, mb_routes(m, decls, pxsi_opt_bool(PXSI_OPT_MAILBOX_SOLE)))) !=
        PXS_OK)
        goto fail;
    if (PXSI_LOG_ON(PXSI_LOG_DEBUG)) {
        char osc[200], sole[300] = "";
        pxsi_win_osc(m->win, osc, sizeof osc);
        size_t pos = 0;
        int nsole = 0;
        for (int r = 0; r < m->size; r++)
            if (m->sole[r]) {
                if (pos + 16 < sizeof sole)
                    pos += (size_t)snprintf(sole + pos, sizeof sole - pos, "%s%d",
                                            nsole ? "," : "", r);
                nsole++;
            }
        int nnode = 0;
        for (int r = 0; r < m->size; r++)
            nnode += m->nr[r] != NULL;
        PXSI_DEBUG(SUBSYS,
                   "mailbox window: MPI_Win_allocate of %lld B (%u slots of %d B), %s; "
                   "sole-writer path %s: this rank is the only writer of %d ring(s) [%s]; "
                   "node ring %s: %d mailbox(es) reached through shared memory, prefetch "
                   "%u node + %u MPI",
                   (long long)wsize, m->my_slots, PXSI_REC_SIZE, osc,
                   pxsi_opt_bool(PXSI_OPT_MAILBOX_SOLE) ? "on" : "off (PXS_MAILBOX_SOLE=0)",
                   nsole, sole, m->nbase ? "on" : "off (PXS_SHM=0)", nnode, m->pnode,
                   m->pmpi);
    }

    /* initial state, before the epoch opens and before anyone can target it */
    memset(m->base, 0, (size_t)wsize);
    /* the prefetch split between the rings (mb_routes); with publishers of
     * both kinds and a prefetch of 1, each ring holds 1 */
    int64_t cred = m->my_slots, gcred = (int64_t)m->pmpi;
    memcpy(m->base + MB_CRED, &cred, sizeof cred);
    memcpy(m->base + MB_GCRED, &gcred, sizeof gcred);
    if (m->nbase) {
        __atomic_store_n(nr_word(m->nbase, NR_CRED), (int64_t)m->my_slots, __ATOMIC_RELAXED);
        __atomic_store_n(nr_word(m->nbase, NR_GCRED), (int64_t)m->pnode, __ATOMIC_RELAXED);
    }
    mrc = MPI_Win_lock_all(MPI_MODE_NOCHECK, m->win);
    if (mrc == MPI_SUCCESS) {
        m->locked = 1;
        mrc = MPI_Win_sync(m->win);
    }
    lrc = pxsi_mpi_err(mrc, SUBSYS, "MPI_Win_lock_all");
    if (lrc == PXS_OK)
        lrc = pxsi_core_init(&m->core, m->rank, m->size, decls, &o, &mb_xops, m);
    if ((rc = pxsi_agree(m->comm, lrc)) != PXS_OK)
        goto fail;
    /* nobody appends before every window is initialised and locked */
    if ((rc = pxsi_mpi_err(MPI_Barrier(m->comm), SUBSYS, "MPI_Barrier")) != PXS_OK)
        goto fail;
    free(decls);
    free(all);

    m->bus.magic = PXSI_MAGIC_BUS;
    m->bus.rank = m->rank;
    atomic_init(&m->bus.pub_in, 0);
    atomic_init(&m->bus.sub_in, 0);
    m->bus.destroy = mb_destroy;
    m->bus.stats = mb_stats;
    m->bus.backend = m;
    m->bus.pub = (struct pxs_publisher){PXSI_MAGIC_PUB, &pxsi_core_pub_ops, &m->core};
    m->bus.sub = (struct pxs_subscriber){PXSI_MAGIC_SUB, &pxsi_core_sub_ops, &m->core, 0};
    *bus_out = &m->bus;
    return PXS_OK;

fail:
    free(decls);
    free(all);
    mb_free(m);
    return rc;
}

/* ---------------------------------------------------------------- test hooks */
#ifdef PXS_TEST_HOOKS
int
pxsi_bus_test_inject(pxs_bus_t *bus, int target, const unsigned char *rec)
{
    if (!PXSI_HANDLE_OK(bus, PXSI_MAGIC_BUS) || !rec)
        return PXS_ERR_INVALID;
    if (bus->destroy != mb_destroy)
        return PXS_ERR_NOTSUP;
    struct mbox *m = bus->backend;
    if (target < 0 || target >= m->size || m->slots[target] == 0)
        return PXS_ERR_INVALID;
    /* a mailbox with another sole writer has its tail ticket kept there */
    if (m->writer[target] >= 0 && m->writer[target] != m->rank)
        return PXS_ERR_INVALID;
    unsigned char tmp[PXSI_REC_SIZE];
    memcpy(tmp, rec, sizeof tmp);
    uint32_t got = 0;
    pxsi_backoff_t b;
    pxsi_backoff_init_mpi(&b, 10.0, mb_progress, m);
    for (;;) {
        uint32_t left;
        int rc = mb_take_credits(m, target, 1, 0, &got, &left);
        if (rc != PXS_OK)
            return rc;
        if (got) {
            rc = mb_append(m, target, tmp, 1);
            return rc == PXS_ERR_MPI ? pxsi_core_break(&m->core) : rc;
        }
        if (pxsi_backoff_expired(&b))
            return PXS_ERR_AGAIN;
        pxsi_backoff_pause(&b);
    }
}

int
pxsi_bus_test_route(pxs_bus_t *bus, int target)
{
    if (!PXSI_HANDLE_OK(bus, PXSI_MAGIC_BUS))
        return PXS_ERR_INVALID;
    if (bus->destroy != mb_destroy)
        return PXS_ERR_NOTSUP;
    struct mbox *m = bus->backend;
    if (target < 0 || target >= m->size || m->slots[target] == 0)
        return PXS_ERR_INVALID;
    return m->nr[target] != NULL;
}

int
pxsi_bus_test_fail(pxs_bus_t *bus, int step)
{
    if (!PXSI_HANDLE_OK(bus, PXSI_MAGIC_BUS) || step < 0 || step >= PXSI_FAIL_N_)
        return PXS_ERR_INVALID;
    if (bus->destroy != mb_destroy)
        return PXS_ERR_NOTSUP;
    ((struct mbox *)bus->backend)->fail_step = step;
    return PXS_OK;
}
#else
int
pxsi_bus_test_route(pxs_bus_t *bus, int target)
{
    (void)bus;
    (void)target;
    return PXS_ERR_NOTSUP;
}

int
pxsi_bus_test_fail(pxs_bus_t *bus, int step)
{
    (void)bus;
    (void)step;
    return PXS_ERR_NOTSUP;
}

int
pxsi_bus_test_inject(pxs_bus_t *bus, int target, const unsigned char *rec)
{
    (void)bus;
    (void)target;
    (void)rec;
    return PXS_ERR_NOTSUP;
}
#endif
