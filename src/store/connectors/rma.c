/* RMA connector, the claim protocol and the ops: each rank's arena is
 * exposed through MPI windows (created in rma_windows.c); same-node peers
 * read it through shared memory, other ranks with MPI_Get. The control
 * words and the shared state: rma_int.h.
 *
 * ======================================================================
 * PROTOCOL (race-free against a concurrent reclaim; the full argument is in
 * docs/DESIGN.md, section "The claim protocol")
 *   The proxy carries generation = slot(24) << 40 | gen(40) and the store
 *   nonce (checked by store.c and rma_check before any atomic: a proxy of
 *   another store instance never reaches the claim). gen is odd while the
 *   object is live, even when dead/free; only the owner changes it, by
 *   adding 1 << 24 to A (never REPLACE, so concurrent inflight +/-1 are
 *   never lost). A slot whose dead gen reaches PXSI_GEN_RETIRE (2^40 - 2) is
 *   RETIRED when freed: never reused, so gen never wraps (docs/DESIGN.md,
 *   section "Object identity"). A claim that finds PXSI_INFLIGHT_LIMIT (2^23)
 *   claims already in A backs out (PXS_ERR_BUSY): at most 2^23 admitted
 *   claims plus one backing-out claim per rank (and thread) can be counted,
 *   so inflight never carries into gen.
 *   put (owner):  copy bytes into the arena; MPI_Win_sync; Accumulate(REPLACE)
 *                 D and U; flush; Accumulate(SUM, 1 << 24) on A (gen -> odd);
 *                 flush. The descriptor is complete before the gen is live.
 *   resolve:      1 claim: old = Fetch_and_op(SUM, +1) on A and a plain
 *                   MPI_Get of D (not a claim word); one flush. A sync
 *                   remote resolve issues its bulk gets in this epoch too
 *                   and zeroes the buffer on any failure (resolve_remote;
 *                   docs/DESIGN.md, "Remote resolve in one epoch"). If gen(old) !=
 *                   proxy gen: release (A -= 1) -> PXS_ERR_STALE. While our
 *                   +1 is in A the owner will not free the slot. D !=
 *                   proxy's offset/size/crc/flags: release -> PXS_ERR_CORRUPT
 *                   (forged proxy; U was never touched, so a forged proxy can
 *                   never make the owner see a spent budget).
 *                   Why D read in the same flush is D of this gen: the proxy
 *                   was made after the owner published gen (D first, flush,
 *                   then A), and D changes only when the slot is reused, after
 *                   gen has moved on; if our claim sees the proxy's gen, gen
 *                   did not move between publication and the claim, and after
 *                   the claim our +1 pins the slot: D read anywhere in that
 *                   window is this object's.
 *                 2 take (not for keep objects, which only the owner ends):
 *                   Fetch_and_op(SUM, -1) on U; flush. old U <= 0: budget used
 *                   up, release -> PXS_ERR_STALE.
 *                 3 copy: memcpy from shared memory (in pieces) or MPI_Get
 *                   (chunks of get_chunk, one flush); verify CRC32C if flagged.
 *                 4 release: Accumulate(SUM, -1) on A; flush.
 *   reclaim (owner, inside put/evict/progress/used only):
 *                 snapshot U (Get_accumulate NO_OP); a live slot with U <= 0
 *                 or evicted by the owner is killed: A += 1 << 24 (gen -> even,
 *                 every later claim fails), flush. Then snapshot A; a killed
 *                 slot whose inflight is 0 is freed (arena block, slot).
 *   Why it is safe: the owner's kill precedes its inflight read, and a
 *   resolver's claim precedes its use of the gen it read (both are atomics
 *   completed by flush at the same target), so either the resolver's claim
 *   is counted in the inflight the owner reads (no free until it releases),
 *   or the claim comes after the kill and sees the new gen (STALE). A stale
 *   claim never touches U or D, so the owner may REPLACE them at reuse.
 *   View = steps 1-3 without the copy; the claim is held until release.
 *   Drop (any rank, the owner's included) = steps 1, 2 and 4: one unit of
 *   the budget; a keep object is validated and left alone. Holder evict =
 *   drop. Owner evict kills the slot at once (keep objects too).
 *   A put whose publication failed after the gen update was issued leaves
 *   the slot BROKEN (never freed or reused: its word may be odd).
 *
 * NODE-LOCAL WORDS: between ranks of one node the same steps run on a
 *   second set of words (LA, LU, LD in a shared segment, C11 atomics only;
 *   never touched by MPI), the owner sums LA's and A's inflight; the budget
 *   is LU when the store is one node, else the MPI word U for everyone.
 *   See rma_int.h (PXSI_RMA_L_*) and docs/DESIGN.md, section "Node-local
 *   claim words".
 *
 * MEMORY ORDERING: C11 fences carry the same-node protocol; MPI_Win_sync is
 * kept for MPI's semantics but not relied on (under osc rdma/pt2pt it holds
 * no barrier). F1 (owner, release: after copying the bytes in, before
 * publishing D and gen) pairs with F2 (reader, acquire: after the claim saw
 * the live gen, before reading bytes; resolve and view). F3 (reader,
 * release: in unclaim, after its last read of the bytes) pairs with F4
 * (owner, acquire: after the inflight snapshot read 0, before the block is
 * reused). See docs/DESIGN.md, section "Store: memory ordering".
 *
 * TIMEOUTS/PROGRESS: under osc/ucx (atomics) and osc/pt2pt (everything) the
 * owner must call MPI for a peer's atomics to complete; the owner's put
 * back-off calls MPI_Iprobe now and then. destroy: see store.c (agreement
 * that no rank has outstanding work, then Win_free, which is collective).
 * ====================================================================== */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "store/connectors/rma_int.h"

#define SUBSYS     PXSI_RMA_SUB
#define GEN_ONE ((uint64_t)1 << PXSI_INFLIGHT_BITS) /* +1 on A's gen */

static int
path_of(const pxsi_rma_t *r, int o)
{
    if (o == r->rank)
        return PXSI_PATH_SELF;
    return r->peer_base[o] ? PXSI_PATH_SHM : PXSI_PATH_RMA;
}

/* Does a claim on owner o's objects use the node-local words? (rma_int.h,
 * PXSI_RMA_L_*; docs/DESIGN.md, section "Node-local claim words") */
static inline int
local_words(const pxsi_rma_t *r, int o)
{
    return r->lmode != PXSI_RMA_L_NONE && r->peer_lctl[o] != NULL;
}

/* Does this store use the MPI control words at all? (not in NODE mode) */
static inline int
mpi_words(const pxsi_rma_t *r)
{
    return r->lmode != PXSI_RMA_L_NODE;
}

/* ------------------------------------------------------------ claim protocol */
static int
unclaim(pxsi_rma_t *r, int o, uint32_t s)
{
    uint64_t m = UINT64_MAX, ign; /* -1 modulo 2^64 */
    /* F3 (release): every read of the object's bytes through shared memory
     * (a resolve's copy, a view's user) happens before the claim is given
     * back; pairs with F4 in reclaim. See docs/DESIGN.md, section "Store:
     * memory ordering". */
    atomic_thread_fence(memory_order_release);
    if (local_words(r, o)) {
        atomic_fetch_sub(pxsi_rma_l_a(r, o, s), 1); /* seq_cst: release too */
        return PXS_OK;
    }
    PXSI_MPI_CHECK(
        MPI_Fetch_and_op(&m, &ign, MPI_UINT64_T, o, pxsi_rma_w_a(s), MPI_SUM, r->ctl_win), SUBSYS);
    PXSI_MPI_CHECK(MPI_Win_flush(o, r->ctl_win), SUBSYS);
    return PXS_OK;
}

/* The end of step 1 once the claim's answer is in: old is A before our +1,
 * d the descriptor read with it. STALE, BUSY and CORRUPT release the claim. */
static int
claim_verdict(pxsi_rma_t *r, const pxs_proxy_info_t *pi, uint64_t old, const uint64_t d[3])
{
    int o = (int)pi->owner;
    uint32_t s = pxsi_gen_slot(pi->generation);
    uint64_t gen = pxsi_gen_gen(pi->generation);
    if (old >> PXSI_INFLIGHT_BITS != gen) {
        int rc = unclaim(r, o, s);
        return rc ? rc
                  : pxsi_err(PXS_ERR_STALE, SUBSYS,
                             "object (rank %d slot %u gen %llu) is gone (gen %llu)", o, s,
                             (unsigned long long)gen,
                             (unsigned long long)(old >> PXSI_INFLIGHT_BITS));
    }
    if ((old & PXSI_INFLIGHT_MASK) >= PXSI_INFLIGHT_LIMIT) {
        int rc = unclaim(r, o, s);
        return rc ? rc
                  : pxsi_err(PXS_ERR_BUSY, SUBSYS,
                             "object (rank %d slot %u) has %llu claims in flight (limit %llu)", o,
                             s, (unsigned long long)(old & PXSI_INFLIGHT_MASK),
                             (unsigned long long)PXSI_INFLIGHT_LIMIT);
    }
    if (d[0] != pi->offset || d[1] != pi->size || (uint32_t)d[2] != pi->payload_crc ||
        (uint16_t)(d[2] >> 32) != pi->flags) {
        (void)unclaim(r, o, s);
        return pxsi_err(PXS_ERR_CORRUPT, SUBSYS,
                        "proxy does not match object (rank %d slot %u): forged offset/size/flags",
                        o, s);
    }
    return PXS_OK;
}

/* Step 1: claim the slot and read its descriptor in one flush; STALE or
 * CORRUPT release the claim. An MPI failure of the claim itself leaves it
 * alone (it may or may not have been applied: a leaked pin is safe, a second
 * decrement would corrupt the gen). */
static int
claim(pxsi_rma_t *r, const pxs_proxy_info_t *pi)
{
    int o = (int)pi->owner;
    uint32_t s = pxsi_gen_slot(pi->generation);
    uint64_t gen = pxsi_gen_gen(pi->generation);
    uint64_t one = 1, old = 0, d[3] = {0, 0, 0};
    if (local_words(r, o)) {
        /* same node: the same step on LA/LD with C11 atomics (seq_cst RMW:
         * acquire of the owner's publication, and one total order with the
         * owner's kill on this word) */
        old = atomic_fetch_add(pxsi_rma_l_a(r, o, s), 1);
        r->stats.claims_local++;
        if (old >> PXSI_INFLIGHT_BITS == gen) {
            const _Atomic uint64_t *ld = pxsi_rma_l_d(r, o, s);
            for (int i = 0; i < 3; i++)
                d[i] = atomic_load_explicit(&ld[i], memory_order_relaxed);
        }
    } else {
        int mrc =
            MPI_Fetch_and_op(&one, &old, MPI_UINT64_T, o, pxsi_rma_w_a(s), MPI_SUM, r->ctl_win);
        if (mrc == MPI_SUCCESS) /* D: a plain get, as in resolve_remote */
            mrc =
                MPI_Get(d, 3, MPI_UINT64_T, o, pxsi_rma_w_d(r, o, s), 3, MPI_UINT64_T, r->ctl_win);
        if (mrc == MPI_SUCCESS)
            mrc = MPI_Win_flush(o, r->ctl_win);
        if (mrc != MPI_SUCCESS)
            return pxsi_mpi_err(mrc, SUBSYS, "claim: generation/descriptor atomics");
        r->stats.claims_mpi++;
    }
    return claim_verdict(r, pi, old, d);
}

/* Step 2, after a successful claim: take one unit of the budget (nothing for
 * a keep object). On any failure the claim is released. */
static int
take(pxsi_rma_t *r, const pxs_proxy_info_t *pi)
{
    if (pi->flags & PXS_PROXY_F_KEEP)
        return PXS_OK;
    int o = (int)pi->owner;
    uint32_t s = pxsi_gen_slot(pi->generation);
    int64_t delta = -1, rem = 0;
    if (r->lmode == PXSI_RMA_L_NODE) {
        /* every rank on this node: the budget is LU (node-local only) */
        rem = (int64_t)atomic_fetch_sub(pxsi_rma_l_u(r, o, s), 1);
        if (rem <= 0) {
            (void)unclaim(r, o, s);
            return pxsi_err(PXS_ERR_STALE, SUBSYS,
                            "object (rank %d slot %u) used its resolve budget", o, s);
        }
        return PXS_OK;
    }
    int mrc =
        MPI_Fetch_and_op(&delta, &rem, MPI_INT64_T, o, pxsi_rma_w_u(r, o, s), MPI_SUM, r->ctl_win);
    if (mrc == MPI_SUCCESS)
        mrc = MPI_Win_flush(o, r->ctl_win);
    if (mrc != MPI_SUCCESS) {
        int rc = pxsi_mpi_err(mrc, SUBSYS, "resolve: budget atomic");
        (void)unclaim(r, o, s);
        return rc;
    }
    if (rem <= 0) {
        (void)unclaim(r, o, s);
        return pxsi_err(PXS_ERR_STALE, SUBSYS, "object (rank %d slot %u) used its resolve budget",
                        o, s);
    }
    return PXS_OK;
}

/* Steps 1 and 2. */
static int
acquire(pxsi_rma_t *r, const pxs_proxy_info_t *pi)
{
    int rc = claim(r, pi);
    return rc ? rc : take(r, pi);
}

/* The next MPI_Get of a remote read into buf at `done` of len: chunks of
 * get_chunk; a destination that is not page-aligned first gets a head up to
 * its next page boundary when the read is >= PXSI_RMA_ALIGN_SPLIT, so the
 * bulk lands page-aligned (issue 15: osc/rdma over btl vader was measured
 * 12-28x slower into a page + 16 buffer; docs/DESIGN.md, section "Remote
 * reads into unaligned buffers"). */
#define PXSI_RMA_ALIGN_SPLIT ((size_t)64 << 10)
static size_t
get_piece(const pxsi_rma_t *r, const unsigned char *buf, size_t done, size_t len)
{
    size_t n = len - done < r->chunk ? len - done : r->chunk;
    if (done == 0 && len >= PXSI_RMA_ALIGN_SPLIT) {
        size_t head = (size_t)(-(uintptr_t)buf & 4095u);
        if (head && head < n)
            n = head;
    }
    return n;
}

/* Number of MPI_Gets get_piece makes for len bytes into buf. */
static size_t
get_pieces(const pxsi_rma_t *r, const unsigned char *buf, size_t len)
{
    size_t k = 0;
    for (size_t done = 0; done < len; k++)
        done += get_piece(r, buf, done, len);
    return k;
}

static int
fetch(pxsi_rma_t *r, int o, uint64_t off, void *buf, size_t len, int path)
{
    if (path != PXSI_PATH_RMA) {
        /* acquire: see the owner's bytes published before the gen we read.
         * F2 (acquire) orders our loads after the claim that saw the live
         * gen; pairs with F1 in put. MPI_Win_sync stays for MPI's own
         * semantics but is not relied on (osc rdma/pt2pt: no barrier). */
        atomic_thread_fence(memory_order_acquire);
        if (r->sync_win != MPI_WIN_NULL && !local_words(r, o))
            PXSI_MPI_CHECK(MPI_Win_sync(r->sync_win), SUBSYS);
        pxsi_copy(buf, r->peer_base[o] + off, len, r->piece);
        if (path == PXSI_PATH_SHM)
            r->stats.resolves_shm++;
        else
            r->stats.resolves_self++;
        return PXS_OK;
    }
    unsigned char *b = buf;
    for (size_t done = 0; done < len;) {
        size_t n = get_piece(r, b, done, len);
        PXSI_MPI_CHECK(MPI_Get(b + done, (int)n, MPI_BYTE, o, (MPI_Aint)(off + done), (int)n,
                               MPI_BYTE, r->data_win),
                       SUBSYS);
        r->stats.gets++;
        done += n;
    }
    if (len)
        PXSI_MPI_CHECK(MPI_Win_flush(o, r->data_win), SUBSYS);
    r->stats.resolves_rma++;
    return PXS_OK;
}

/* A remote resolve (PXSI_PATH_RMA, an arena object of > 0 bytes) in two
 * round trips instead of three or four: the claim, the descriptor read and
 * the bulk MPI_Gets of the proxy's extent are issued in one epoch and
 * completed by one flush per window; the take (budgeted objects only) and
 * the release follow. The bytes are read before we know the claim
 * succeeded: they are the object's if the claim saw the proxy's gen (the
 * slot was not killed before the claim and is pinned after it), and
 * scrubbed (zeroed) on every failure, so the caller never holds another
 * object's bytes. The full argument: docs/DESIGN.md, section "Remote resolve
 * in one epoch". */
static int
resolve_remote(pxsi_rma_t *r, const pxs_proxy_info_t *pi, void *buf, size_t *len_out)
{
    int o = (int)pi->owner;
    uint32_t s = pxsi_gen_slot(pi->generation);
    size_t len = (size_t)pi->size;
    unsigned char *b = buf;
    uint64_t one = 1, old = 0, d[3] = {0, 0, 0};
    int mrc = MPI_Fetch_and_op(&one, &old, MPI_UINT64_T, o, pxsi_rma_w_a(s), MPI_SUM, r->ctl_win);
    /* D by a plain get, not Get_accumulate: D is not a claim word, and it
     * is stable whenever the claim succeeds (see claim); a stale claim may
     * read it torn and ignores it. Measured 0.03 against 0.07 us under
     * osc/rdma, 0.05 against 0.69 us under osc/ucx (an accumulate there
     * takes the target's accumulate lock). */
    if (mrc == MPI_SUCCESS)
        mrc = MPI_Get(d, 3, MPI_UINT64_T, o, pxsi_rma_w_d(r, o, s), 3, MPI_UINT64_T, r->ctl_win);
    /* the bulk, only once the claim is issued (an unissued claim pins
     * nothing); bounds: rma_check held offset + size inside o's arena */
    int grc = MPI_SUCCESS, ngets = 0;
    for (size_t done = 0; mrc == MPI_SUCCESS && done < len;) {
        size_t n = get_piece(r, b, done, len);
        grc = MPI_Get(b + done, (int)n, MPI_BYTE, o, (MPI_Aint)(pi->offset + done), (int)n,
                      MPI_BYTE, r->data_win);
        if (grc != MPI_SUCCESS)
            break;
        ngets++;
        done += n;
    }
    r->stats.gets += (uint64_t)ngets;
    if (mrc == MPI_SUCCESS)
        mrc = MPI_Win_flush(o, r->ctl_win);
    /* always complete what was issued: nothing lands in buf after we return */
    int frc = ngets ? MPI_Win_flush(o, r->data_win) : MPI_SUCCESS;
    if (grc == MPI_SUCCESS)
        grc = frc;
    int rc;
    if (mrc != MPI_SUCCESS) {
        /* the claim may or may not be applied: leave it (see claim) */
        memset(buf, 0, len);
        return pxsi_mpi_err(mrc, SUBSYS, "claim: generation/descriptor atomics");
    }
    r->stats.claims_mpi++;
    if ((rc = claim_verdict(r, pi, old, d)) != PXS_OK) {
        memset(buf, 0, len); /* STALE/BUSY/CORRUPT: what we read is nobody's */
        return rc;
    }
    if (grc != MPI_SUCCESS) {
        rc = pxsi_mpi_err(grc, SUBSYS, "MPI_Get of the object");
        (void)unclaim(r, o, s);
        memset(buf, 0, len);
        return rc;
    }
    if ((rc = take(r, pi)) != PXS_OK) { /* releases on failure */
        memset(buf, 0, len);
        return rc;
    }
    r->stats.resolves_rma++;
    rc = pxsi_conn_crc_check(SUBSYS, pi, buf);
    int rc2 = unclaim(r, o, s);
    if (rc == PXS_OK)
        rc = rc2;
    if (rc == PXS_OK)
        *len_out = len;
    return rc;
}

/* A lent object's bytes (docs/DESIGN.md, section "Lent buffers"), under a
 * claim: the owner's own buffer (memcpy), or a same-node peer's through
 * cross-memory attach (process_vm_readv, partial reads continued). */
static int
fetch_lent(pxsi_rma_t *r, int o, uint64_t addr, void *buf, size_t len)
{
    atomic_thread_fence(memory_order_acquire); /* F2, as in fetch */
    if (o == r->rank) {
        pxsi_copy(buf, (const void *)(uintptr_t)addr, len, r->piece);
        r->stats.resolves_self++;
        return PXS_OK;
    }
    for (size_t done = 0; done < len;) {
        struct iovec l = {(unsigned char *)buf + done, len - done};
        struct iovec rm = {(void *)(uintptr_t)(addr + done), len - done};
        ssize_t n = process_vm_readv((pid_t)r->peer_pid[o], &l, 1, &rm, 1, 0);
        if (n <= 0)
            return pxsi_err(PXS_ERR_IO, SUBSYS,
                            "cross-memory read of rank %d's lent buffer failed at byte %zu of "
                            "%zu: %s",
                            o, done, len, n < 0 ? strerror(errno) : "no progress");
        done += (size_t)n;
    }
    r->stats.resolves_shm++;
    return PXS_OK;
}

/* ------------------------------------------------------------ owner side */
static int
kill_slot(pxsi_rma_t *r, uint32_t s)
{
    uint64_t g = GEN_ONE, ign;
    if (mpi_words(r))
        PXSI_MPI_CHECK(MPI_Fetch_and_op(&g, &ign, MPI_UINT64_T, r->rank, pxsi_rma_w_a(s), MPI_SUM,
                                        r->ctl_win),
                       SUBSYS);
    if (local_words(r, r->rank))
        atomic_fetch_add(pxsi_rma_l_a(r, r->rank, s), GEN_ONE); /* kill on LA (seq_cst) */
    r->slots[s].gen++;
    r->slots[s].state = PXSI_SLOT_DYING;
    r->ndying++;
    return PXS_OK;
}

static int
reclaim(pxsi_rma_t *r)
{
    uint32_t n = r->al.hwm;
    if (!r->al.nlive || !n)
        return PXS_OK;
    int64_t *u = (int64_t *)r->snap;
    int mpi = mpi_words(r), loc = local_words(r, r->rank);
    if (mpi) {
        PXSI_MPI_CHECK(MPI_Get_accumulate(r->snap + r->nslots, (int)n, MPI_INT64_T, u, (int)n,
                                          MPI_INT64_T, r->rank, pxsi_rma_w_u(r, r->rank, 0),
                                          (int)n, MPI_INT64_T, MPI_NO_OP, r->ctl_win),
                       SUBSYS);
        PXSI_MPI_CHECK(MPI_Win_flush(r->rank, r->ctl_win), SUBSYS);
    } else {
        /* NODE: the budget is LU */
        for (uint32_t s = 0; s < n; s++)
            u[s] = r->slots[s].state == PXSI_SLOT_LIVE
                       ? (int64_t)atomic_load(pxsi_rma_l_u(r, r->rank, s))
                       : 1;
    }
    int kills = 0;
    for (uint32_t s = 0; s < n; s++) {
        if (r->slots[s].state == PXSI_SLOT_LIVE && (u[s] <= 0 || r->slots[s].evict)) {
            int rc = kill_slot(r, s);
            if (rc)
                return rc;
            kills++;
        }
    }
    if (kills && mpi)
        PXSI_MPI_CHECK(MPI_Win_flush(r->rank, r->ctl_win), SUBSYS);
    if (!r->ndying)
        return PXS_OK;
    if (mpi) {
        PXSI_MPI_CHECK(MPI_Get_accumulate(r->snap + r->nslots, (int)n, MPI_UINT64_T, r->snap,
                                          (int)n, MPI_UINT64_T, r->rank, pxsi_rma_w_a(0), (int)n,
                                          MPI_UINT64_T, MPI_NO_OP, r->ctl_win),
                       SUBSYS);
        PXSI_MPI_CHECK(MPI_Win_flush(r->rank, r->ctl_win), SUBSYS);
    }
    /* F4 (acquire): a block is reused (the next put writes into it) only
     * after we saw inflight 0, i.e. after every reader's F3 + unclaim */
    atomic_thread_fence(memory_order_acquire);
    for (uint32_t s = 0; s < n; s++) {
        if (r->slots[s].state != PXSI_SLOT_DYING)
            continue;
        /* in flight: the remote claims (A) plus the same-node ones (LA),
         * each read after this slot's kill on that word */
        uint64_t inflight = mpi ? (r->snap[s] & PXSI_INFLIGHT_MASK) : 0;
        if (loc)
            inflight += atomic_load(pxsi_rma_l_a(r, r->rank, s)) & PXSI_INFLIGHT_MASK;
        if (inflight == 0) {
            r->ndying--;
            r->stats.reclaimed++;
            /* freed or retired; may lower hwm: n stays valid */
            pxsi_conn_free_slot(&r->al, &r->slots[s], s, SUBSYS);
        }
    }
    return PXS_OK;
}

static int
reclaim_cb(void *ctx)
{
    return reclaim(ctx);
}

/* short naps and MPI now and then: resolvers' atomics on our windows need
 * us in MPI under osc/ucx and pt2pt (measured: 1 ms naps held a ucx
 * pipeline at ~1400 chunks/s) */
static void
put_pause(void *ctx, pxsi_backoff_t *b)
{
    pxsi_rma_t *r = ctx;
    pxsi_backoff_pause_mpi(b, r->comm);
}

/* Put, first half: a block of len bytes and its slot (backpressure:
 * wait for resolvers; their releases need no action from us, but
 * software-atomic osc components need us in MPI). */
static inline int
alloc_block(pxsi_rma_t *r, size_t len, double timeout, pxsi_conn_block_t *blk)
{
    const pxsi_conn_waiter_t w = {reclaim_cb, put_pause, r, &r->stats.put_waits,
                                  &r->stats.put_wait_seconds};
    return pxsi_conn_alloc(SUBSYS, &r->al, len, timeout, &w, blk);
}

/* Put, second half: the len bytes in block (s, off) are written (and crc
 * is their checksum when o->checksum); publish the descriptor, the budget
 * and the gen. On failure the block is given back (or leaked when the gen
 * word may be out of step). */
static int
publish(pxsi_rma_t *r, uint32_t s, uint64_t off, size_t len, uint32_t crc,
        const pxs_put_opts_t *o, pxs_proxy_info_t *out)
{
    uint16_t flags = pxsi_conn_put_flags(o);
    int mrc = MPI_SUCCESS;
    /* F1 (release): the bytes are written before the descriptor and the
     * gen are published (pairs with F2 in fetch/view); MPI_Win_sync alone
     * is no barrier under osc rdma/pt2pt */
    atomic_thread_fence(memory_order_release);
    uint64_t d[3] = {off, (uint64_t)len, (uint64_t)crc | ((uint64_t)flags << 32)};
    int64_t u = pxsi_conn_put_budget(o), ign_i;
    uint64_t g = GEN_ONE, ign_u;
    int loc = local_words(r, r->rank);
    if (loc) {
        /* node-local words: LD (and LU when NODE) before LA's gen (the
         * seq_cst RMW below releases them) */
        _Atomic uint64_t *ld = pxsi_rma_l_d(r, r->rank, s);
        for (int i = 0; i < 3; i++)
            atomic_store_explicit(&ld[i], d[i], memory_order_relaxed);
        if (r->lmode == PXSI_RMA_L_NODE)
            atomic_store_explicit(pxsi_rma_l_u(r, r->rank, s), (uint64_t)u, memory_order_relaxed);
    }
    if (r->lmode == PXSI_RMA_L_NODE) {
        /* every reader is on this node: no MPI call at all */
        atomic_fetch_add(pxsi_rma_l_a(r, r->rank, s), GEN_ONE);
        pxsi_conn_publish(&r->slots[s], s, off, len, flags, crc, o, out);
        return PXS_OK;
    }
    if (r->sync_win != MPI_WIN_NULL)
        mrc = MPI_Win_sync(r->sync_win); /* release: bytes before the descriptor */
    if (mrc == MPI_SUCCESS)
        mrc = MPI_Accumulate(d, 3, MPI_UINT64_T, r->rank, pxsi_rma_w_d(r, r->rank, s), 3,
                             MPI_UINT64_T, MPI_REPLACE, r->ctl_win);
    if (mrc == MPI_SUCCESS)
        mrc = MPI_Fetch_and_op(&u, &ign_i, MPI_INT64_T, r->rank, pxsi_rma_w_u(r, r->rank, s),
                               MPI_REPLACE, r->ctl_win);
    if (mrc == MPI_SUCCESS)
        mrc = MPI_Win_flush(r->rank, r->ctl_win);
    int gen_issued = 0;
    if (mrc == MPI_SUCCESS) {
        gen_issued = 1;
        /* MIXED: LA's gen first (same-node readers), then A's (remote ones);
         * U, the one budget word, was published above */
        if (loc)
            atomic_fetch_add(pxsi_rma_l_a(r, r->rank, s), GEN_ONE);
        mrc = MPI_Fetch_and_op(&g, &ign_u, MPI_UINT64_T, r->rank, pxsi_rma_w_a(s), MPI_SUM,
                               r->ctl_win);
    }
    if (mrc == MPI_SUCCESS)
        mrc = MPI_Win_flush(r->rank, r->ctl_win);
    if (mrc != MPI_SUCCESS) {
        if (gen_issued) {
            /* the gen word may be odd now, out of step with our mirror:
             * never free or reuse this slot (leak its block) */
            r->slots[s].state = PXSI_SLOT_BROKEN;
        } else {
            r->slots[s].state = PXSI_SLOT_FREE;
            pxsi_arena_free(&r->al, s); /* gen untouched: drop it */
        }
        return pxsi_mpi_err(mrc, SUBSYS, "put: publishing the descriptor");
    }
    pxsi_conn_publish(&r->slots[s], s, off, len, flags, crc, o, out);
    return PXS_OK;
}

static int
rma_put(void *st, const void *data, size_t len, const pxs_put_opts_t *o, double timeout,
        pxs_proxy_info_t *out)
{
    pxsi_rma_t *r = st;
    pxsi_conn_block_t blk;
    int rc = alloc_block(r, len, timeout, &blk);
    if (rc)
        return rc;
    uint32_t crc = 0;
    unsigned char *dst = r->arena + blk.off;
    if (o->checksum) {
        /* copy and checksum piece by piece while the piece is in cache */
        const unsigned char *src = data;
        for (size_t done = 0; done < len;) {
            size_t n = len - done < r->piece ? len - done : r->piece;
            memcpy(dst + done, src + done, n);
            crc = pxs_crc32c(crc, dst + done, n);
            done += n;
        }
    } else {
        pxsi_copy(dst, data, len, r->piece);
    }
    return publish(r, blk.slot, blk.off, len, crc, o, out);
}

/* Reserved puts (docs/DESIGN.md, section "Reserved puts"): the two halves
 * of rma_put with the caller's writes between them. A RESERVED slot keeps
 * its even gen (no reader can claim it: STALE) and is skipped by reclaim;
 * its block is allocated, so no put gets it. */
static int
rma_reserve(void *st, size_t len, double timeout, pxsi_conn_block_t *blk, void **data_out)
{
    pxsi_rma_t *r = st;
    int rc = alloc_block(r, len, timeout, blk);
    if (rc)
        return rc;
    r->slots[blk->slot].state = PXSI_SLOT_RESERVED;
    *data_out = r->arena + blk->off;
    return PXS_OK;
}

static int
rma_commit(void *st, const pxsi_conn_block_t *blk, size_t len, const pxs_put_opts_t *o,
           pxs_proxy_info_t *out)
{
    pxsi_rma_t *r = st;
    uint32_t s = blk->slot;
    if (s >= r->nslots || r->slots[s].state != PXSI_SLOT_RESERVED || r->al.off[s] != blk->off)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "commit: slot %u is not reserved", s);
    uint32_t crc = o->checksum ? pxs_crc32c(0, r->arena + blk->off, len) : 0;
    return publish(r, s, blk->off, len, crc, o, out);
}

static void
rma_cancel(void *st, const pxsi_conn_block_t *blk)
{
    pxsi_rma_t *r = st;
    uint32_t s = blk->slot;
    if (s >= r->nslots || r->slots[s].state != PXSI_SLOT_RESERVED)
        return;
    r->slots[s].state = PXSI_SLOT_FREE;
    pxsi_arena_free(&r->al, s);
}

/* Lend the caller's buffer (docs/DESIGN.md, section "Lent buffers"): a
 * slot without arena bytes whose descriptor offset is the buffer's address;
 * the same publication as a put on the node-local words (lend is only on in
 * lmode NODE). */
static int
rma_put_ref(void *st, const void *data, size_t len, const pxs_put_opts_t *o, double timeout,
            pxs_proxy_info_t *out)
{
    pxsi_rma_t *r = st;
    if (!r->lend)
        return pxsi_err(PXS_ERR_NOTSUP, SUBSYS, "this store cannot lend: %s",
                        r->lmode != PXSI_RMA_L_NODE
                            ? "not every rank shares this node's memory (or shared memory is off)"
                            : "cross-memory attach refused on this node, or PXS_LEND=0");
    const pxsi_conn_waiter_t w = {reclaim_cb, put_pause, r, &r->stats.put_waits,
                                  &r->stats.put_wait_seconds};
    pxsi_conn_block_t blk;
    int rc = pxsi_conn_alloc_lent(SUBSYS, &r->al, timeout, &w, &blk);
    if (rc)
        return rc;
    uint32_t s = blk.slot;
    uint64_t addr = (uint64_t)(uintptr_t)data;
    r->al.off[s] = addr; /* what evict matches the proxy against */
    uint32_t crc = o->checksum ? pxs_crc32c(0, data, len) : 0;
    uint16_t flags = (uint16_t)(pxsi_conn_put_flags(o) | PXS_PROXY_F_LENT);
    /* F1 (release): the caller's writes to the buffer before the descriptor */
    atomic_thread_fence(memory_order_release);
    _Atomic uint64_t *ld = pxsi_rma_l_d(r, r->rank, s);
    uint64_t d[3] = {addr, (uint64_t)len, (uint64_t)crc | ((uint64_t)flags << 32)};
    for (int i = 0; i < 3; i++)
        atomic_store_explicit(&ld[i], d[i], memory_order_relaxed);
    atomic_store_explicit(pxsi_rma_l_u(r, r->rank, s), (uint64_t)pxsi_conn_put_budget(o),
                          memory_order_relaxed);
    atomic_fetch_add(pxsi_rma_l_a(r, r->rank, s), GEN_ONE); /* live (seq_cst: releases LD, LU) */
    pxsi_conn_publish(&r->slots[s], s, addr, len, flags, crc, o, out);
    r->stats.lent++;
    return PXS_OK;
}

/* The owner's reclaim of one lent slot (NODE mode: node-local words only),
 * the same two steps as reclaim() for that slot: kill when its budget is
 * used up (or evict asked), then free once the inflight count read after
 * the kill is 0. ref_test's fast path: O(1) whatever the slot table's hwm
 * (reclaim() scans 0 .. hwm, thousands of slots after a stream of small
 * puts). */
static int
reclaim_lent_slot(pxsi_rma_t *r, uint32_t s)
{
    pxsi_conn_slot_t *sl = &r->slots[s];
    if (sl->state == PXSI_SLOT_LIVE &&
        ((int64_t)atomic_load(pxsi_rma_l_u(r, r->rank, s)) <= 0 || sl->evict)) {
        int rc = kill_slot(r, s);
        if (rc)
            return rc;
    }
    if (sl->state != PXSI_SLOT_DYING)
        return PXS_OK;
    /* F4 (acquire), as in reclaim: the buffer is the caller's again only
     * after every reader's F3 + unclaim */
    atomic_thread_fence(memory_order_acquire);
    if ((atomic_load(pxsi_rma_l_a(r, r->rank, s)) & PXSI_INFLIGHT_MASK) == 0) {
        r->ndying--;
        r->stats.reclaimed++;
        pxsi_conn_free_slot(&r->al, sl, s, SUBSYS);
    }
    return PXS_OK;
}

/* Is the owner's lent object over? Reclaim its slot first (the whole table
 * only outside NODE mode, where nothing is lent); then done when its gen
 * moved on and it is not DYING with claims still in flight. */
static int
rma_ref_test(void *st, const pxs_proxy_info_t *pi, int *done)
{
    pxsi_rma_t *r = st;
    *done = 0;
    if ((int)pi->owner != r->rank)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS,
                        "ref_wait: object of rank %u, not this rank's (%d): only the owner waits "
                        "for its lent buffer",
                        pi->owner, r->rank);
    if (!(pi->flags & PXS_PROXY_F_LENT))
        return pxsi_err(PXS_ERR_INVALID, SUBSYS,
                        "ref_wait: not a lent object (a copy put: its buffer was free at once)");
    uint32_t s = pxsi_gen_slot(pi->generation);
    uint64_t gen = pxsi_gen_gen(pi->generation);
    int rc;
    if (s >= r->nslots)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "ref_wait: slot %u out of range (%u slots)", s,
                        r->nslots);
    if (r->lmode == PXSI_RMA_L_NODE && local_words(r, r->rank))
        rc = reclaim_lent_slot(r, s);
    else
        rc = reclaim(r);
    if (rc)
        return rc;
    const pxsi_conn_slot_t *sl = &r->slots[s];
    if (sl->gen < gen)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS,
                        "ref_wait: no such object (slot %u is at gen %llu, proxy gen %llu)", s,
                        (unsigned long long)sl->gen, (unsigned long long)gen);
    if (sl->gen == gen) {
        rc = pxsi_conn_match(SUBSYS, sl, r->al.off[s], pi, "ref_wait");
        return rc == PXS_ERR_CORRUPT ? pxsi_err(PXS_ERR_INVALID, SUBSYS,
                                                "ref_wait: proxy does not match the lent object")
                                     : rc;
    }
    *done = !(sl->gen == gen + 1 && sl->state == PXSI_SLOT_DYING);
    return PXS_OK;
}

/* ------------------------------------------------------------ resolve */
static int
rma_check(void *st, const pxs_proxy_info_t *pi)
{
    pxsi_rma_t *r = st;
    int o = (int)pi->owner;
    if (pi->flags & PXS_PROXY_F_LENT) {
        /* offset is the owner's address: no arena bounds; the claim checks
         * it against the descriptor (PXS_ERR_CORRUPT if forged) */
        if (!r->lend)
            return pxsi_err(PXS_ERR_CORRUPT, SUBSYS,
                            "proxy of a lent object given to a store that does not lend");
        pxs_proxy_info_t c = *pi;
        c.offset = 0;
        c.size = 0;
        return pxsi_conn_check(SUBSYS, &c, r->nonce, r->peer_nslots[o], r->peer_cap[o]);
    }
    /* the owner's record of the instance is the store's nonce (agreed at
     * create): store.c checked it already */
    return pxsi_conn_check(SUBSYS, pi, r->nonce, r->peer_nslots[o], r->peer_cap[o]);
}

/* A same-node (or own) arena object claimed on the node-local words: steps
 * 1-4 of the protocol in one function (issue 15: a 4 KiB same-node resolve
 * spent more instructions in calls and repeated path tests than in its
 * memcpy). The same checks in the same order as claim, take, fetch and
 * unclaim: the claim's gen, the inflight limit and the descriptor (any
 * mismatch goes to claim_verdict, which releases and reports it), the
 * budget, F2 before the copy, the CRC, F3 before the release. */
PXSI_NOINLINE static int
resolve_local(pxsi_rma_t *r, const pxs_proxy_info_t *pi, void *buf, size_t *len_out)
{
    int o = (int)pi->owner;
    uint32_t s = pxsi_gen_slot(pi->generation);
    _Atomic uint64_t *la = pxsi_rma_l_a(r, o, s);
    uint64_t old = atomic_fetch_add(la, 1); /* seq_cst, as in claim */
    r->stats.claims_local++;
    /* the descriptor is read only once the claim saw the proxy's gen (the
     * words are this object's then); three compares, no copy */
    if (PXSI_UNLIKELY(old >> PXSI_INFLIGHT_BITS != pxsi_gen_gen(pi->generation) ||
                      (old & PXSI_INFLIGHT_MASK) >= PXSI_INFLIGHT_LIMIT))
        return claim_verdict(r, pi, old, (const uint64_t[3]){0, 0, 0}); /* releases */
    const _Atomic uint64_t *ld = pxsi_rma_l_d(r, o, s);
    uint64_t d0 = atomic_load_explicit(&ld[0], memory_order_relaxed);
    uint64_t d1 = atomic_load_explicit(&ld[1], memory_order_relaxed);
    uint64_t d2 = atomic_load_explicit(&ld[2], memory_order_relaxed);
    if (PXSI_UNLIKELY(d0 != pi->offset || d1 != pi->size ||
                      d2 != ((uint64_t)pi->payload_crc | ((uint64_t)pi->flags << 32)))) {
        /* claim_verdict compares flags as 16 bits: the bits above them in
         * LD are 0 for every descriptor an owner writes, so it agrees */
        int rc = claim_verdict(r, pi, old, (const uint64_t[3]){d0, d1, d2}); /* releases */
        if (rc)
            return rc;
    }
    int rc;
    if (!(pi->flags & PXS_PROXY_F_KEEP) && (rc = take(r, pi)) != PXS_OK)
        return rc; /* take released the claim */
    atomic_thread_fence(memory_order_acquire); /* F2, as in fetch */
    size_t len = (size_t)pi->size;
    pxsi_copy(buf, r->peer_base[o] + pi->offset, len, r->piece);
    if (o == r->rank)
        r->stats.resolves_self++;
    else
        r->stats.resolves_shm++;
    rc = (pi->flags & PXS_PROXY_F_PAYLOAD_CRC) ? pxsi_conn_crc_check(SUBSYS, pi, buf) : PXS_OK;
    atomic_thread_fence(memory_order_release); /* F3, as in unclaim */
    atomic_fetch_sub(la, 1);
    if (rc == PXS_OK)
        *len_out = len;
    return rc;
}

/* Every resolve but the same-node arena one: remote arena objects
 * (resolve_remote), lent buffers and the rest (claim, take, fetch,
 * unclaim). */
PXSI_NOINLINE static int
resolve_other(pxsi_rma_t *r, const pxs_proxy_info_t *pi, void *buf, size_t *len_out)
{
    int o = (int)pi->owner;
    uint32_t s = pxsi_gen_slot(pi->generation);
    if (!(pi->flags & PXS_PROXY_F_LENT) && pi->size && path_of(r, o) == PXSI_PATH_RMA)
        return resolve_remote(r, pi, buf, len_out);
    int rc = acquire(r, pi);
    if (rc)
        return rc;
    if (pi->flags & PXS_PROXY_F_LENT)
        rc = fetch_lent(r, o, pi->offset, buf, (size_t)pi->size);
    else
        rc = fetch(r, o, pi->offset, buf, (size_t)pi->size, path_of(r, o));
    if (rc == PXS_OK)
        rc = pxsi_conn_crc_check(SUBSYS, pi, buf);
    int rc2 = unclaim(r, o, s);
    if (rc == PXS_OK)
        rc = rc2;
    if (rc == PXS_OK)
        *len_out = (size_t)pi->size;
    return rc;
}

/* Dispatch without a frame of its own (both callees are out of line, so
 * the same-node case is a tail jump into resolve_local). */
static int
rma_resolve(void *st, const pxs_proxy_info_t *pi, void *buf, size_t cap, size_t *len_out)
{
    pxsi_rma_t *r = st;
    (void)cap;
    int o = (int)pi->owner;
    if (!(pi->flags & PXS_PROXY_F_LENT) && local_words(r, o) && r->peer_base[o])
        return resolve_local(r, pi, buf, len_out);
    return resolve_other(r, pi, buf, len_out);
}

/* An async resolve in flight (pxs_request_t.conn): the claim it holds and
 * its MPI_Rget requests. Allocated by resolve_start, freed by finish. */
typedef struct rma_req {
    int owner;
    uint32_t slot;
    int nmpi;
    MPI_Request mpi[]; /* one per chunk */
} rma_req_t;

static int
rma_finish_req(pxsi_rma_t *r, pxs_request_t *q, int rc)
{
    rma_req_t *c = q->conn;
    if (rc == PXS_OK)
        rc = pxsi_conn_crc_check(SUBSYS, &q->pi, q->buf);
    int rc2 = c ? unclaim(r, c->owner, c->slot) : PXS_OK;
    free(c);
    q->conn = NULL;
    if (rc == PXS_OK)
        rc = rc2;
    if (rc == PXS_OK) {
        q->len = (size_t)q->pi.size;
        r->stats.resolves_rma++;
    }
    q->status = rc;
    q->done = 1;
    return PXS_OK;
}

/* MPI_Waitall / MPI_Testall one request at a time: MPICH's
 * MPI_STATUSES_IGNORE is (MPI_Status *)1, and GCC 12 flags every call that
 * passes it for an array parameter (-Wstringop-overflow; docs/DESIGN.md,
 * section "MPICH"). Completed requests become MPI_REQUEST_NULL, so a later
 * call skips them; the first error is returned. */
static int
reqs_wait(int n, MPI_Request *reqs)
{
    int mrc = MPI_SUCCESS;
    for (int i = 0; i < n; i++) {
        int e = MPI_Wait(&reqs[i], MPI_STATUS_IGNORE);
        if (e != MPI_SUCCESS && mrc == MPI_SUCCESS)
            mrc = e;
    }
    return mrc;
}

static int
reqs_test(int n, MPI_Request *reqs, int *all)
{
    *all = 1;
    for (int i = 0; i < n; i++) {
        int flag = 0, e = MPI_Test(&reqs[i], &flag, MPI_STATUS_IGNORE);
        if (e != MPI_SUCCESS)
            return e;
        *all &= flag != 0;
    }
    return MPI_SUCCESS;
}

static int
rma_resolve_start(void *st, const pxs_proxy_info_t *pi, void *buf, size_t cap,
                  pxs_request_t *q)
{
    pxsi_rma_t *r = st;
    int o = (int)pi->owner;
    int path = path_of(r, o);
    if (path != PXSI_PATH_RMA || pi->size == 0 || (pi->flags & PXS_PROXY_F_LENT)) {
        /* a local copy (or a lent buffer's cross-memory read): done now */
        size_t n = 0;
        q->status = rma_resolve(st, pi, buf, cap, &n);
        if (q->status == PXS_ERR_MPI)
            return q->status;
        q->len = n;
        q->done = 1;
        return PXS_OK;
    }
    uint32_t s = pxsi_gen_slot(pi->generation);
    int rc = acquire(r, pi);
    if (rc)
        return rc;
    size_t len = (size_t)pi->size;
    size_t nreq = get_pieces(r, buf, len);
    rma_req_t *c = malloc(sizeof *c + nreq * sizeof c->mpi[0]);
    if (!c) {
        (void)unclaim(r, o, s);
        return pxsi_err(PXS_ERR_NOMEM, SUBSYS, "resolve_start: %zu requests", nreq);
    }
    c->owner = o;
    c->slot = s;
    c->nmpi = 0;
    unsigned char *b = buf;
    for (size_t done = 0; done < len;) {
        size_t n = get_piece(r, b, done, len);
        int mrc = MPI_Rget(b + done, (int)n, MPI_BYTE, o, (MPI_Aint)(pi->offset + done), (int)n,
                           MPI_BYTE, r->data_win, &c->mpi[c->nmpi]);
        if (mrc != MPI_SUCCESS) {
            rc = pxsi_mpi_err(mrc, SUBSYS, "MPI_Rget");
            if (c->nmpi)
                (void)reqs_wait(c->nmpi, c->mpi);
            free(c);
            (void)unclaim(r, o, s);
            return rc;
        }
        c->nmpi++;
        r->stats.gets++;
        done += n;
    }
    q->conn = c;
    return PXS_OK;
}

static int
rma_resolve_test(void *st, pxs_request_t *q)
{
    rma_req_t *c = q->conn;
    int flag = 0;
    int mrc = reqs_test(c->nmpi, c->mpi, &flag);
    if (mrc != MPI_SUCCESS)
        return rma_finish_req(st, q, pxsi_mpi_err(mrc, SUBSYS, "MPI_Test"));
    if (!flag)
        return PXS_OK;
    return rma_finish_req(st, q, PXS_OK);
}

static int
rma_resolve_wait(void *st, pxs_request_t *q)
{
    rma_req_t *c = q->conn;
    int mrc = reqs_wait(c->nmpi, c->mpi);
    return rma_finish_req(st, q, mrc == MPI_SUCCESS ? PXS_OK : pxsi_mpi_err(mrc, SUBSYS, "MPI_Wait"));
}

/* ------------------------------------------------------------ view */
static int
rma_view(void *st, const pxs_proxy_info_t *pi, pxs_view_t *v)
{
    pxsi_rma_t *r = st;
    int o = (int)pi->owner;
    int path = path_of(r, o);
    if (pi->flags & PXS_PROXY_F_LENT) {
        /* a lent buffer (not mapped here): a private copy, and the claim is
         * held until release like a zero-copy view's (the owner's ref_wait
         * does not return while a view is out) */
        void *b = pxsi_alloc_pages((size_t)pi->size);
        if (!b)
            return pxsi_err(PXS_ERR_NOMEM, SUBSYS, "view copy of %llu bytes",
                            (unsigned long long)pi->size);
        uint32_t s = pxsi_gen_slot(pi->generation);
        int rc = acquire(r, pi); /* on failure, nothing held */
        if (rc) {
            free(b);
            return rc;
        }
        rc = fetch_lent(r, o, pi->offset, b, (size_t)pi->size);
        if (rc == PXS_OK)
            rc = pxsi_conn_crc_check(SUBSYS, pi, b);
        if (rc) {
            (void)unclaim(r, o, s);
            free(b);
            return rc;
        }
        v->data = b;
        v->len = (size_t)pi->size;
        v->internal_[0] = b;
        v->internal_u_[0] = (uint64_t)o;
        v->internal_u_[1] = s;
        v->internal_u_[2] = 2; /* holds a claim and a copy */
        r->stats.views_copied++;
        return PXS_OK;
    }
    if (path == PXSI_PATH_RMA) {
        /* another node (or shm off): a private copy, freed by release */
        void *b = pxsi_alloc_pages((size_t)pi->size);
        if (!b)
            return pxsi_err(PXS_ERR_NOMEM, SUBSYS, "view copy of %llu bytes",
                            (unsigned long long)pi->size);
        size_t n = 0;
        int rc = rma_resolve(st, pi, b, (size_t)pi->size, &n);
        if (rc) {
            free(b);
            return rc;
        }
        v->data = b;
        v->len = n;
        v->internal_[0] = b;
        v->internal_u_[2] = 0;
        r->stats.views_copied++;
        return PXS_OK;
    }
    uint32_t s = pxsi_gen_slot(pi->generation);
    int rc = acquire(r, pi);
    if (rc)
        return rc;
    atomic_thread_fence(memory_order_acquire); /* F2, as in fetch */
    if (r->sync_win != MPI_WIN_NULL && !local_words(r, o))
        (void)MPI_Win_sync(r->sync_win);
    const unsigned char *p = r->peer_base[o] + pi->offset;
    if ((rc = pxsi_conn_crc_check(SUBSYS, pi, p)) != PXS_OK) {
        (void)unclaim(r, o, s);
        return rc;
    }
    v->data = p;
    v->len = (size_t)pi->size;
    v->internal_[0] = NULL;
    v->internal_u_[0] = (uint64_t)o;
    v->internal_u_[1] = s;
    v->internal_u_[2] = 1; /* holds a claim */
    r->stats.views_zero_copy++;
    return PXS_OK;
}

static int
rma_release(void *st, pxs_view_t *v)
{
    pxsi_rma_t *r = st;
    if (v->internal_u_[2] == 1)
        return unclaim(r, (int)v->internal_u_[0], (uint32_t)v->internal_u_[1]);
    free(v->internal_[0]);
    if (v->internal_u_[2] == 2)
        return unclaim(r, (int)v->internal_u_[0], (uint32_t)v->internal_u_[1]);
    return PXS_OK;
}

/* ------------------------------------------------------------ evict, progress */
/* The owner's evict, after kill_slot(s): the free step of reclaim() for that
 * one slot (O(1); reclaim() scans 0 .. hwm, thousands of slots after a
 * stream of small puts). The kill is completed first (flush of A outside
 * NODE mode), then the inflight count is read after it on each word in use
 * (A through MPI, LA in shared memory), then F4; a slot with claims still in
 * flight stays DYING and the next full reclaim (put, progress, used) frees
 * it, as before. Other slots (spent budgets, earlier DYING ones) are left to
 * that reclaim too: a put reclaims when it finds no block and once per
 * PXSI_RECLAIM_EVERY bytes (docs/DESIGN.md, "The claim protocol"). */
static int
reclaim_evicted(pxsi_rma_t *r, uint32_t s)
{
    uint64_t inflight = 0;
    if (mpi_words(r)) {
        uint64_t ign = 0, a = 0;
        PXSI_MPI_CHECK(MPI_Win_flush(r->rank, r->ctl_win), SUBSYS); /* the kill */
        PXSI_MPI_CHECK(MPI_Fetch_and_op(&ign, &a, MPI_UINT64_T, r->rank, pxsi_rma_w_a(s), MPI_NO_OP,
                                        r->ctl_win),
                       SUBSYS);
        PXSI_MPI_CHECK(MPI_Win_flush(r->rank, r->ctl_win), SUBSYS);
        inflight = a & PXSI_INFLIGHT_MASK;
    }
    if (local_words(r, r->rank))
        inflight += atomic_load(pxsi_rma_l_a(r, r->rank, s)) & PXSI_INFLIGHT_MASK;
    /* F4 (acquire), as in reclaim: the block is reused only after every
     * reader's F3 + unclaim */
    atomic_thread_fence(memory_order_acquire);
    if (inflight == 0) {
        r->ndying--;
        r->stats.reclaimed++;
        pxsi_conn_free_slot(&r->al, &r->slots[s], s, SUBSYS);
    }
    return PXS_OK;
}

/* Drop: one unit of the budget from any rank, the owner's included (its own
 * words through MPI atomics, like a peer); a keep object is validated only. */
static int
rma_drop(void *st, const pxs_proxy_info_t *pi)
{
    pxsi_rma_t *r = st;
    int o = (int)pi->owner;
    int rc = acquire(r, pi);
    if (rc)
        return rc;
    rc = unclaim(r, o, pxsi_gen_slot(pi->generation));
    if (rc == PXS_OK && o == r->rank)
        rc = reclaim(r);
    return rc;
}

static int
rma_evict(void *st, const pxs_proxy_info_t *pi)
{
    pxsi_rma_t *r = st;
    int o = (int)pi->owner;
    uint32_t s = pxsi_gen_slot(pi->generation);
    if (o != r->rank)
        return rma_drop(st, pi); /* holder: one unit; keep objects: nothing */
    int rc = pxsi_conn_match(SUBSYS, &r->slots[s], r->al.off[s], pi, "evict");
    if (rc)
        return rc;
    rc = kill_slot(r, s);
    if (rc == PXS_OK)
        rc = reclaim_evicted(r, s);
    return rc;
}

static int
rma_progress(void *st)
{
    return reclaim(st);
}

static int
rma_used(void *st, size_t *used_out, size_t *cap_out)
{
    pxsi_rma_t *r = st;
    int rc = reclaim(r);
    if (rc)
        return rc;
    *used_out = (size_t)r->al.used;
    *cap_out = (size_t)r->al.cap;
    return PXS_OK;
}

static int
rma_path(void *st, int owner)
{
    return path_of(st, owner);
}

static void
rma_stats(void *st, pxsi_store_stats_t *out)
{
    pxsi_rma_t *r = st;
    *out = r->stats;
    pxsi_conn_arena_stats(&r->al, out);
}

#ifdef PXS_TEST_HOOKS
static int
rma_corrupt(void *st, uint64_t offset)
{
    pxsi_rma_t *r = st;
    int rc = pxsi_conn_corrupt(r->arena, r->cap, offset);
    if (rc)
        return rc;
    if (r->sync_win != MPI_WIN_NULL)
        (void)MPI_Win_sync(r->sync_win);
    return PXS_OK;
}

/* Move a free slot's gen (mirror and A, keeping A's inflight bits). */
static int
rma_set_gen(void *st, uint32_t s, uint64_t gen)
{
    pxsi_rma_t *r = st;
    if (s >= r->nslots || r->slots[s].state != PXSI_SLOT_FREE)
        return pxsi_conn_not_free(SUBSYS, s);
    for (uint32_t i = 0; i < r->al.nfree; i++) {
        if (r->al.free_stack[i] != s)
            continue;
        uint64_t delta = (gen - r->slots[s].gen) << PXSI_INFLIGHT_BITS, ign;
        if (mpi_words(r)) {
            PXSI_MPI_CHECK(MPI_Fetch_and_op(&delta, &ign, MPI_UINT64_T, r->rank, pxsi_rma_w_a(s),
                                            MPI_SUM, r->ctl_win),
                           SUBSYS);
            PXSI_MPI_CHECK(MPI_Win_flush(r->rank, r->ctl_win), SUBSYS);
        }
        if (local_words(r, r->rank))
            atomic_fetch_add(pxsi_rma_l_a(r, r->rank, s), delta);
        r->slots[s].gen = gen;
        return PXS_OK;
    }
    return pxsi_err(PXS_ERR_INVALID, SUBSYS, "test_set_gen: slot %u is in use", s);
}

/* Adds n claims to every claim word of slot s this store uses (A and/or LA),
 * so a resolver on any path sees them and the owner's sum stays 0 after the
 * matching -n. */
static int
rma_add_claims(void *st, uint32_t s, int64_t n)
{
    pxsi_rma_t *r = st;
    uint64_t zero = 0, old = 0, ign;
    if (s >= r->nslots)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "test_add_claims: slot %u beyond the table", s);
    int mpi = mpi_words(r), loc = local_words(r, r->rank);
    if (mpi) {
        PXSI_MPI_CHECK(MPI_Fetch_and_op(&zero, &old, MPI_UINT64_T, r->rank, pxsi_rma_w_a(s),
                                        MPI_NO_OP, r->ctl_win),
                       SUBSYS);
        PXSI_MPI_CHECK(MPI_Win_flush(r->rank, r->ctl_win), SUBSYS);
    }
    uint64_t lold = loc ? atomic_load(pxsi_rma_l_a(r, r->rank, s)) : 0;
    int64_t now = (int64_t)(old & PXSI_INFLIGHT_MASK), lnow = (int64_t)(lold & PXSI_INFLIGHT_MASK);
    if ((mpi && (now + n < 0 || now + n > (int64_t)PXSI_INFLIGHT_MASK)) ||
        (loc && (lnow + n < 0 || lnow + n > (int64_t)PXSI_INFLIGHT_MASK)))
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "test_add_claims: %lld + %lld out of range",
                        (long long)(mpi ? now : lnow), (long long)n);
    uint64_t d = (uint64_t)n;
    if (mpi) {
        PXSI_MPI_CHECK(MPI_Fetch_and_op(&d, &ign, MPI_UINT64_T, r->rank, pxsi_rma_w_a(s), MPI_SUM,
                                        r->ctl_win),
                       SUBSYS);
        PXSI_MPI_CHECK(MPI_Win_flush(r->rank, r->ctl_win), SUBSYS);
    }
    if (loc)
        atomic_fetch_add(pxsi_rma_l_a(r, r->rank, s), d);
    return PXS_OK;
}
#endif

static int
rma_create(MPI_Comm comm, const pxs_store_opts_t *o, uint64_t nonce, void **out)
{
    return pxsi_rma_create(comm, o, nonce, out); /* rma_windows.c */
}

static int
rma_destroy(void *st)
{
    pxsi_rma_t *r = st;
    /* store.c agreed that no rank has outstanding work; Win_free is
     * collective, so no arena is unmapped while a peer could read it */
    pxsi_rma_free_all(r);
    return PXS_OK;
}

const pxsi_store_conn_ops_t pxsi_store_rma_ops = {
    .name = "rma",
    .kind = PXS_CONN_RMA,
    .put_ref = rma_put_ref,
    .ref_test = rma_ref_test,
    .reserve = rma_reserve,
    .commit = rma_commit,
    .cancel = rma_cancel,
    PXSI_STORE_CONN_OPS(rma),
};
