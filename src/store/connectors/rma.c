/* RMA connector: each rank's arena is exposed through MPI windows; same-node
 * peers read it through shared memory, other ranks with MPI_Get.
 *
 * ======================================================================
 * WINDOWS (see docs/DESIGN.md, section "Store arena: three modes"; the facts
 * behind it: docs/DESIGN.md, section "Open MPI 4.1.4 facts": osc/sm refuses
 * MPI_Win_create; rdma, ucx and pt2pt refuse MPI_Win_allocate_shared)
 *   arena, chosen at create (collective, same choice on every rank):
 *   1. shm on: MPI_Win_allocate_shared on the node communicator (shm_win), and
 *      MPI_Win_create over the same memory on the whole communicator
 *      (data_win, used only for MPI_Get). If Win_create is refused (user
 *      forced --mca osc sm) and the communicator is one node, data_win is
 *      not needed: every peer is reached through shared memory. Across nodes
 *      under osc sm alone nothing works: create fails naming the remedy.
 *   2. shm on but Win_allocate_shared refused (--mca osc rdma|ucx|pt2pt):
 *      our own POSIX shared-memory segment per rank (shm_open, mapped
 *      read-only by same-node peers, unlinked as soon as everyone mapped it,
 *      so nothing leaks), then MPI_Win_create over it on the whole
 *      communicator. The same-node path therefore works under every osc.
 *   3. shm off (PXS_SHM=0 / opts.shm = 0), or 1 and 2 failed: MPI_Win_allocate
 *      on the whole communicator; every peer uses MPI_Get.
 *   control (ctl_win): MPI_Win_allocate, 8-byte words, per slot s of n:
 *      A[s]          gen(40) << 24 | inflight(24)   MPI_UINT64_T
 *      U[n+s]        remaining resolve budget       MPI_INT64_T
 *      D[2n+3s..+2]  offset, size, crc | flags<<32  MPI_UINT64_T
 *   Every access to these words is an MPI atomic (Fetch_and_op,
 *   Accumulate, Get_accumulate(NO_OP)), the owner's included; no plain loads
 *   or CPU atomics. MPI_Compare_and_swap is never used (osc/rdma 4.1.4
 *   segfaults on it). One lock_all(MPI_MODE_NOCHECK) epoch per window from
 *   create to destroy; completion by MPI_Win_flush.
 *
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
 *   resolve:      1 claim: old = Fetch_and_op(SUM, +1) on A and
 *                   Get_accumulate(NO_OP) of D; one flush. If gen(old) !=
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
 * MEMORY ORDERING: C11 fences carry the same-node protocol; MPI_Win_sync is
 * kept for MPI's semantics but not relied on (under osc rdma/pt2pt it holds
 * no barrier). F1 (owner, release: after copying the bytes in, before
 * publishing D and gen) pairs with F2 (reader, acquire: after the claim saw
 * the live gen, before reading bytes; resolve and view). F3 (reader,
 * release: in unclaim, after its last read of the bytes) pairs with F4
 * (owner, acquire: after the inflight snapshot read 0, before the block is
 * reused). See docs/DESIGN.md, section "Store: memory ordering".
 *
 * CREATE: every collective step is agreed (pxsi_agree) before the next, so a
 * failure on some ranks fails all without a hang; a window or communicator
 * that exists on only some ranks is leaked (freeing it would be collective).
 * The node's memory is checked before any window call (pxsi_node_mem_fits):
 * a window allocation that fails on one rank leaves the others inside it.
 *
 * TIMEOUTS/PROGRESS: under osc/ucx (atomics) and osc/pt2pt (everything) the
 * owner must call MPI for a peer's atomics to complete; the owner's put
 * back-off calls MPI_Iprobe now and then. destroy: see store.c (agreement
 * that no rank has outstanding work, then Win_free, which is collective).
 * ====================================================================== */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/store_int.h"

#define SUB         "store.rma"
#define GEN_ONE     ((uint64_t)1 << PXSI_INFLIGHT_BITS) /* +1 on A's gen */
#define KEEP_BUDGET ((int64_t)1 << 62)

enum { SLOT_FREE = 0, SLOT_LIVE = 1, SLOT_DYING = 2, SLOT_BROKEN = 3, SLOT_RETIRED = 4 };
enum { MODE_NONE = 0, MODE_PLAIN, MODE_MPI_SHM, MODE_POSIX_SHM };

typedef struct rma_slot {
    uint64_t gen; /* mirror of A's gen (40 bits): only the owner changes it */
    uint8_t state;
    uint8_t evict;
    uint16_t flags; /* mirror of D (written only by the owner) */
    uint32_t crc;
    uint64_t size;
} rma_slot_t;

typedef struct rma {
    MPI_Comm comm; /* the front end's duplicate (not ours to free) */
    uint64_t nonce; /* the store instance's nonce (same on every rank) */
    MPI_Comm node;
    int rank, size, nrank, nsize;
    int mode, shm_on;
    uint64_t cap;
    uint32_t nslots;
    unsigned char *arena;
    MPI_Win shm_win, data_win, ctl_win, sync_win;
    uint64_t *ctl;
    uint64_t *peer_cap;
    uint32_t *peer_nslots;
    const unsigned char **peer_base; /* NULL: not reachable through shm */
    /* POSIX segments: [0] own, others peers' (read-only) */
    void **maps;
    size_t *map_len;
    int nmaps;
    pxsi_arena_t al;
    rma_slot_t *slots;
    uint32_t ndying;
    uint64_t *snap; /* 2 * nslots scratch: result, origin (NO_OP, unused) */
    size_t chunk, piece;
    pxsi_store_stats_t stats;
} rma_t;

static inline MPI_Aint
w_a(uint32_t s)
{
    return (MPI_Aint)s;
}
static inline MPI_Aint
w_u(const rma_t *r, int o, uint32_t s)
{
    return (MPI_Aint)r->peer_nslots[o] + (MPI_Aint)s;
}
static inline MPI_Aint
w_d(const rma_t *r, int o, uint32_t s)
{
    return 2 * (MPI_Aint)r->peer_nslots[o] + 3 * (MPI_Aint)s;
}

static int
path_of(const rma_t *r, int o)
{
    if (o == r->rank)
        return PXSI_PATH_SELF;
    return r->peer_base[o] ? PXSI_PATH_SHM : PXSI_PATH_RMA;
}

/* ------------------------------------------------------------ claim protocol */
static int
unclaim(rma_t *r, int o, uint32_t s)
{
    uint64_t m = UINT64_MAX, ign; /* -1 modulo 2^64 */
    /* F3 (release): every read of the object's bytes through shared memory
     * (a resolve's copy, a view's user) happens before the claim is given
     * back; pairs with F4 in reclaim. See docs/DESIGN.md, section "Store:
     * memory ordering". */
    atomic_thread_fence(memory_order_release);
    PXSI_MPI_CHECK(MPI_Fetch_and_op(&m, &ign, MPI_UINT64_T, o, w_a(s), MPI_SUM, r->ctl_win), SUB);
    PXSI_MPI_CHECK(MPI_Win_flush(o, r->ctl_win), SUB);
    return PXS_OK;
}

/* Step 1: claim the slot and read its descriptor in one flush; STALE or
 * CORRUPT release the claim. An MPI failure of the claim itself leaves it
 * alone (it may or may not have been applied: a leaked pin is safe, a second
 * decrement would corrupt the gen). */
static int
claim(rma_t *r, const pxs_proxy_info_t *pi)
{
    int o = (int)pi->owner;
    uint32_t s = pxsi_gen_slot(pi->generation);
    uint64_t gen = pxsi_gen_gen(pi->generation);
    uint64_t one = 1, old = 0, d[3] = {0, 0, 0}, dummy[3] = {0, 0, 0};
    int mrc = MPI_Fetch_and_op(&one, &old, MPI_UINT64_T, o, w_a(s), MPI_SUM, r->ctl_win);
    if (mrc == MPI_SUCCESS)
        mrc = MPI_Get_accumulate(dummy, 3, MPI_UINT64_T, d, 3, MPI_UINT64_T, o, w_d(r, o, s), 3,
                                 MPI_UINT64_T, MPI_NO_OP, r->ctl_win);
    if (mrc == MPI_SUCCESS)
        mrc = MPI_Win_flush(o, r->ctl_win);
    if (mrc != MPI_SUCCESS)
        return pxsi_mpi_err(mrc, SUB, "claim: generation/descriptor atomics");
    if (old >> PXSI_INFLIGHT_BITS != gen) {
        int rc = unclaim(r, o, s);
        return rc ? rc
                  : pxsi_err(PXS_ERR_STALE, SUB,
                             "object (rank %d slot %u gen %llu) is gone (gen %llu)", o, s,
                             (unsigned long long)gen,
                             (unsigned long long)(old >> PXSI_INFLIGHT_BITS));
    }
    if ((old & PXSI_INFLIGHT_MASK) >= PXSI_INFLIGHT_LIMIT) {
        int rc = unclaim(r, o, s);
        return rc ? rc
                  : pxsi_err(PXS_ERR_BUSY, SUB,
                             "object (rank %d slot %u) has %llu claims in flight (limit %llu)", o,
                             s, (unsigned long long)(old & PXSI_INFLIGHT_MASK),
                             (unsigned long long)PXSI_INFLIGHT_LIMIT);
    }
    if (d[0] != pi->offset || d[1] != pi->size || (uint32_t)d[2] != pi->payload_crc ||
        (uint16_t)(d[2] >> 32) != pi->flags) {
        (void)unclaim(r, o, s);
        return pxsi_err(PXS_ERR_CORRUPT, SUB,
                        "proxy does not match object (rank %d slot %u): forged offset/size/flags", o,
                        s);
    }
    return PXS_OK;
}

/* Step 2, after a successful claim: take one unit of the budget (nothing for
 * a keep object). On any failure the claim is released. */
static int
take(rma_t *r, const pxs_proxy_info_t *pi)
{
    if (pi->flags & PXS_PROXY_F_KEEP)
        return PXS_OK;
    int o = (int)pi->owner;
    uint32_t s = pxsi_gen_slot(pi->generation);
    int64_t delta = -1, rem = 0;
    int mrc = MPI_Fetch_and_op(&delta, &rem, MPI_INT64_T, o, w_u(r, o, s), MPI_SUM, r->ctl_win);
    if (mrc == MPI_SUCCESS)
        mrc = MPI_Win_flush(o, r->ctl_win);
    if (mrc != MPI_SUCCESS) {
        int rc = pxsi_mpi_err(mrc, SUB, "resolve: budget atomic");
        (void)unclaim(r, o, s);
        return rc;
    }
    if (rem <= 0) {
        (void)unclaim(r, o, s);
        return pxsi_err(PXS_ERR_STALE, SUB, "object (rank %d slot %u) used its resolve budget",
                        o, s);
    }
    return PXS_OK;
}

/* Steps 1 and 2. */
static int
acquire(rma_t *r, const pxs_proxy_info_t *pi)
{
    int rc = claim(r, pi);
    return rc ? rc : take(r, pi);
}

static int
fetch(rma_t *r, int o, uint64_t off, void *buf, size_t len, int path)
{
    if (path != PXSI_PATH_RMA) {
        /* acquire: see the owner's bytes published before the gen we read.
         * F2 (acquire) orders our loads after the claim that saw the live
         * gen; pairs with F1 in put. MPI_Win_sync stays for MPI's own
         * semantics but is not relied on (osc rdma/pt2pt: no barrier). */
        atomic_thread_fence(memory_order_acquire);
        if (r->sync_win != MPI_WIN_NULL)
            PXSI_MPI_CHECK(MPI_Win_sync(r->sync_win), SUB);
        pxsi_copy_pieces(buf, r->peer_base[o] + off, len, r->piece);
        if (path == PXSI_PATH_SHM)
            r->stats.resolves_shm++;
        else
            r->stats.resolves_self++;
        return PXS_OK;
    }
    unsigned char *b = buf;
    for (size_t done = 0; done < len;) {
        size_t n = len - done < r->chunk ? len - done : r->chunk;
        PXSI_MPI_CHECK(MPI_Get(b + done, (int)n, MPI_BYTE, o, (MPI_Aint)(off + done), (int)n,
                               MPI_BYTE, r->data_win),
                       SUB);
        r->stats.gets++;
        done += n;
    }
    if (len)
        PXSI_MPI_CHECK(MPI_Win_flush(o, r->data_win), SUB);
    r->stats.resolves_rma++;
    return PXS_OK;
}

static int
crc_check(const pxs_proxy_info_t *pi, const void *data)
{
    if (!(pi->flags & PXS_PROXY_F_PAYLOAD_CRC))
        return PXS_OK;
    uint32_t c = pxs_crc32c(0, data, (size_t)pi->size);
    if (c != pi->payload_crc)
        return pxsi_err(PXS_ERR_CORRUPT, SUB, "payload checksum mismatch (0x%08x != 0x%08x)", c,
                        pi->payload_crc);
    return PXS_OK;
}

/* ------------------------------------------------------------ owner side */
static int
kill_slot(rma_t *r, uint32_t s)
{
    uint64_t g = GEN_ONE, ign;
    PXSI_MPI_CHECK(MPI_Fetch_and_op(&g, &ign, MPI_UINT64_T, r->rank, w_a(s), MPI_SUM, r->ctl_win),
                   SUB);
    r->slots[s].gen++;
    r->slots[s].state = SLOT_DYING;
    r->ndying++;
    return PXS_OK;
}

static int
reclaim(rma_t *r)
{
    uint32_t n = r->al.hwm;
    if (!r->al.nlive || !n)
        return PXS_OK;
    int64_t *u = (int64_t *)r->snap;
    PXSI_MPI_CHECK(MPI_Get_accumulate(r->snap + r->nslots, (int)n, MPI_INT64_T, u, (int)n,
                                      MPI_INT64_T, r->rank, w_u(r, r->rank, 0), (int)n,
                                      MPI_INT64_T, MPI_NO_OP, r->ctl_win),
                   SUB);
    PXSI_MPI_CHECK(MPI_Win_flush(r->rank, r->ctl_win), SUB);
    int kills = 0;
    for (uint32_t s = 0; s < n; s++) {
        if (r->slots[s].state == SLOT_LIVE && (u[s] <= 0 || r->slots[s].evict)) {
            int rc = kill_slot(r, s);
            if (rc)
                return rc;
            kills++;
        }
    }
    if (kills)
        PXSI_MPI_CHECK(MPI_Win_flush(r->rank, r->ctl_win), SUB);
    if (!r->ndying)
        return PXS_OK;
    PXSI_MPI_CHECK(MPI_Get_accumulate(r->snap + r->nslots, (int)n, MPI_UINT64_T, r->snap, (int)n,
                                      MPI_UINT64_T, r->rank, w_a(0), (int)n, MPI_UINT64_T,
                                      MPI_NO_OP, r->ctl_win),
                   SUB);
    PXSI_MPI_CHECK(MPI_Win_flush(r->rank, r->ctl_win), SUB);
    /* F4 (acquire): a block is reused (the next put writes into it) only
     * after we saw inflight 0, i.e. after every reader's F3 + unclaim */
    atomic_thread_fence(memory_order_acquire);
    for (uint32_t s = 0; s < n; s++) {
        if (r->slots[s].state == SLOT_DYING && (r->snap[s] & PXSI_INFLIGHT_MASK) == 0) {
            r->ndying--;
            r->stats.reclaimed++;
            if (r->slots[s].gen >= PXSI_GEN_RETIRE) {
                /* generation exhausted: never reuse the slot (no wrap) */
                r->slots[s].state = SLOT_RETIRED;
                pxsi_arena_retire(&r->al, s);
                PXSI_DEBUG(SUB, "slot %u retired at gen %llu", s,
                           (unsigned long long)r->slots[s].gen);
            } else {
                r->slots[s].state = SLOT_FREE;
                pxsi_arena_free(&r->al, s); /* may lower hwm: n stays valid */
            }
        }
    }
    return PXS_OK;
}

static int
rma_put(void *st, const void *data, size_t len, const pxs_put_opts_t *o, double timeout,
        pxs_proxy_info_t *out)
{
    rma_t *r = st;
    if (pxsi_arena_need(len) > r->al.cap)
        return pxsi_err(PXS_ERR_TOO_BIG, SUB, "object of %zu bytes > arena of %llu bytes", len,
                        (unsigned long long)r->al.cap);
    uint32_t s = 0;
    uint64_t off = 0;
    int rc = pxsi_arena_alloc(&r->al, len, &s, &off);
    if (rc == PXS_ERR_AGAIN) {
        if ((rc = reclaim(r)) != PXS_OK)
            return rc;
        rc = pxsi_arena_alloc(&r->al, len, &s, &off);
    }
    if (rc == PXS_ERR_AGAIN) {
        /* backpressure: wait for resolvers (their releases need no action
         * from us, but software-atomic osc components need us in MPI) */
        r->stats.put_waits++;
        pxsi_backoff_t b;
        pxsi_backoff_init(&b, timeout);
        for (;;) {
            if (pxsi_backoff_expired(&b))
                return pxsi_arena_full_detail(&r->al, PXS_ERR_AGAIN, SUB, len, timeout);
            /* short naps and MPI now and then: resolvers' atomics on our
             * windows need us in MPI under osc/ucx and pt2pt (measured:
             * 1 ms naps held a ucx pipeline at ~1400 chunks/s) */
            pxsi_backoff_pause_mpi(&b, r->comm);
            if ((rc = reclaim(r)) != PXS_OK)
                return rc;
            rc = pxsi_arena_alloc(&r->al, len, &s, &off);
            if (rc == PXS_OK)
                break;
        }
    }
    if (rc)
        return rc;
    uint32_t crc = 0;
    unsigned char *dst = r->arena + off;
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
        pxsi_copy_pieces(dst, data, len, r->piece);
    }
    uint16_t flags = (uint16_t)((o->checksum ? PXS_PROXY_F_PAYLOAD_CRC : 0) |
                                (o->resolves == 0 ? PXS_PROXY_F_KEEP : 0));
    int mrc = MPI_SUCCESS;
    /* F1 (release): the bytes are written before the descriptor and the
     * gen are published (pairs with F2 in fetch/view); MPI_Win_sync alone
     * is no barrier under osc rdma/pt2pt */
    atomic_thread_fence(memory_order_release);
    if (r->sync_win != MPI_WIN_NULL)
        mrc = MPI_Win_sync(r->sync_win); /* release: bytes before the descriptor */
    uint64_t d[3] = {off, (uint64_t)len, (uint64_t)crc | ((uint64_t)flags << 32)};
    int64_t u = o->resolves ? (int64_t)o->resolves : KEEP_BUDGET, ign_i;
    uint64_t g = GEN_ONE, ign_u;
    if (mrc == MPI_SUCCESS)
        mrc = MPI_Accumulate(d, 3, MPI_UINT64_T, r->rank, w_d(r, r->rank, s), 3, MPI_UINT64_T,
                             MPI_REPLACE, r->ctl_win);
    if (mrc == MPI_SUCCESS)
        mrc = MPI_Fetch_and_op(&u, &ign_i, MPI_INT64_T, r->rank, w_u(r, r->rank, s), MPI_REPLACE,
                               r->ctl_win);
    if (mrc == MPI_SUCCESS)
        mrc = MPI_Win_flush(r->rank, r->ctl_win);
    int gen_issued = 0;
    if (mrc == MPI_SUCCESS) {
        gen_issued = 1;
        mrc = MPI_Fetch_and_op(&g, &ign_u, MPI_UINT64_T, r->rank, w_a(s), MPI_SUM, r->ctl_win);
    }
    if (mrc == MPI_SUCCESS)
        mrc = MPI_Win_flush(r->rank, r->ctl_win);
    if (mrc != MPI_SUCCESS) {
        if (gen_issued) {
            /* the gen word may be odd now, out of step with our mirror:
             * never free or reuse this slot (leak its block) */
            r->slots[s].state = SLOT_BROKEN;
        } else {
            pxsi_arena_free(&r->al, s); /* gen untouched: drop it */
        }
        return pxsi_mpi_err(mrc, SUB, "put: publishing the descriptor");
    }
    r->slots[s].gen++;
    r->slots[s].state = SLOT_LIVE;
    r->slots[s].evict = 0;
    r->slots[s].flags = flags;
    r->slots[s].crc = crc;
    r->slots[s].size = len;
    out->offset = off;
    out->size = len;
    out->generation = pxsi_gen_make(s, r->slots[s].gen);
    out->flags = flags;
    out->payload_crc = crc;
    out->budget = o->resolves;
    return PXS_OK;
}

/* ------------------------------------------------------------ resolve */
static int
rma_check(void *st, const pxs_proxy_info_t *pi)
{
    rma_t *r = st;
    int o = (int)pi->owner;
    /* the owner's record of the instance is the store's nonce (agreed at
     * create): store.c checked it already; a connector never acts on
     * another instance's proxy */
    if (pi->store_nonce != r->nonce)
        return pxsi_err(PXS_ERR_STALE, SUB,
                        "proxy of store instance 0x%016llx given to store instance 0x%016llx "
                        "(another store, job or run)",
                        (unsigned long long)pi->store_nonce, (unsigned long long)r->nonce);
    uint64_t s = pxsi_gen_slot(pi->generation);
    if (s >= r->peer_nslots[o])
        return pxsi_err(PXS_ERR_CORRUPT, SUB, "slot %llu beyond rank %d's table of %u",
                        (unsigned long long)s, o, r->peer_nslots[o]);
    if (pi->offset % PXSI_ARENA_ALIGN)
        return pxsi_err(PXS_ERR_CORRUPT, SUB, "misaligned offset %llu",
                        (unsigned long long)pi->offset);
    if (pi->offset > r->peer_cap[o] || pi->size > r->peer_cap[o] - pi->offset)
        return pxsi_err(PXS_ERR_CORRUPT, SUB, "offset %llu + size %llu beyond rank %d's arena (%llu)",
                        (unsigned long long)pi->offset, (unsigned long long)pi->size, o,
                        (unsigned long long)r->peer_cap[o]);
    if (!(pxsi_gen_gen(pi->generation) & 1u))
        return pxsi_err(PXS_ERR_STALE, SUB, "generation %llu is not a live one",
                        (unsigned long long)pxsi_gen_gen(pi->generation));
    return PXS_OK;
}

static int
rma_resolve(void *st, const pxs_proxy_info_t *pi, void *buf, size_t cap, size_t *len_out)
{
    rma_t *r = st;
    (void)cap;
    int o = (int)pi->owner;
    uint32_t s = pxsi_gen_slot(pi->generation);
    int rc = acquire(r, pi);
    if (rc)
        return rc;
    rc = fetch(r, o, pi->offset, buf, (size_t)pi->size, path_of(r, o));
    if (rc == PXS_OK)
        rc = crc_check(pi, buf);
    int rc2 = unclaim(r, o, s);
    if (rc == PXS_OK)
        rc = rc2;
    if (rc == PXS_OK)
        *len_out = (size_t)pi->size;
    return rc;
}

static int
rma_finish_req(rma_t *r, pxs_request_t *q, int rc)
{
    free(q->mpi_reqs);
    q->mpi_reqs = NULL;
    if (rc == PXS_OK)
        rc = crc_check(&q->pi, q->buf);
    int rc2 = q->claimed ? unclaim(r, q->owner, q->slot) : PXS_OK;
    q->claimed = 0;
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
    rma_t *r = st;
    int o = (int)pi->owner;
    int path = path_of(r, o);
    if (path != PXSI_PATH_RMA || pi->size == 0) {
        /* a local copy: done now */
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
    size_t nreq = (len + r->chunk - 1) / r->chunk;
    MPI_Request *reqs = malloc(nreq * sizeof *reqs);
    if (!reqs) {
        (void)unclaim(r, o, s);
        return pxsi_err(PXS_ERR_NOMEM, SUB, "resolve_start: %zu requests", nreq);
    }
    q->owner = o;
    q->slot = s;
    q->claimed = 1;
    q->mpi_reqs = reqs;
    q->nmpi = 0;
    unsigned char *b = buf;
    for (size_t done = 0; done < len;) {
        size_t n = len - done < r->chunk ? len - done : r->chunk;
        int mrc = MPI_Rget(b + done, (int)n, MPI_BYTE, o, (MPI_Aint)(pi->offset + done), (int)n,
                           MPI_BYTE, r->data_win, &reqs[q->nmpi]);
        if (mrc != MPI_SUCCESS) {
            rc = pxsi_mpi_err(mrc, SUB, "MPI_Rget");
            if (q->nmpi)
                (void)reqs_wait(q->nmpi, reqs);
            free(reqs);
            q->mpi_reqs = NULL;
            (void)unclaim(r, o, s);
            return rc;
        }
        q->nmpi++;
        r->stats.gets++;
        done += n;
    }
    return PXS_OK;
}

static int
rma_resolve_test(void *st, pxs_request_t *q)
{
    int flag = 0;
    int mrc = reqs_test(q->nmpi, q->mpi_reqs, &flag);
    if (mrc != MPI_SUCCESS)
        return rma_finish_req(st, q, pxsi_mpi_err(mrc, SUB, "MPI_Test"));
    if (!flag)
        return PXS_OK;
    return rma_finish_req(st, q, PXS_OK);
}

static int
rma_resolve_wait(void *st, pxs_request_t *q)
{
    int mrc = reqs_wait(q->nmpi, q->mpi_reqs);
    return rma_finish_req(st, q, mrc == MPI_SUCCESS ? PXS_OK : pxsi_mpi_err(mrc, SUB, "MPI_Wait"));
}

/* ------------------------------------------------------------ view */
static int
rma_view(void *st, const pxs_proxy_info_t *pi, pxs_view_t *v)
{
    rma_t *r = st;
    int o = (int)pi->owner;
    int path = path_of(r, o);
    if (path == PXSI_PATH_RMA) {
        /* another node (or shm off): a private copy, freed by release */
        void *b = malloc(pi->size ? (size_t)pi->size : 1);
        if (!b)
            return pxsi_err(PXS_ERR_NOMEM, SUB, "view copy of %llu bytes",
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
    if (r->sync_win != MPI_WIN_NULL)
        (void)MPI_Win_sync(r->sync_win);
    const unsigned char *p = r->peer_base[o] + pi->offset;
    if ((rc = crc_check(pi, p)) != PXS_OK) {
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
    rma_t *r = st;
    if (v->internal_u_[2] == 1)
        return unclaim(r, (int)v->internal_u_[0], (uint32_t)v->internal_u_[1]);
    free(v->internal_[0]);
    return PXS_OK;
}

/* ------------------------------------------------------------ evict, progress */
/* Drop: one unit of the budget from any rank, the owner's included (its own
 * words through MPI atomics, like a peer); a keep object is validated only. */
static int
rma_drop(void *st, const pxs_proxy_info_t *pi)
{
    rma_t *r = st;
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
    rma_t *r = st;
    int o = (int)pi->owner;
    uint32_t s = pxsi_gen_slot(pi->generation);
    uint64_t g = pxsi_gen_gen(pi->generation);
    if (o != r->rank)
        return rma_drop(st, pi); /* holder: one unit; keep objects: nothing */
    rma_slot_t *sl = &r->slots[s];
    if (sl->state != SLOT_LIVE || sl->gen != g)
        return pxsi_err(PXS_ERR_STALE, SUB, "evict: object already gone");
    if (r->al.off[s] != pi->offset || sl->size != pi->size || sl->flags != pi->flags ||
        sl->crc != pi->payload_crc)
        return pxsi_err(PXS_ERR_CORRUPT, SUB, "evict: proxy does not match the object");
    int rc = kill_slot(r, s);
    if (rc == PXS_OK) {
        PXSI_MPI_CHECK(MPI_Win_flush(r->rank, r->ctl_win), SUB);
        rc = reclaim(r);
    }
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
    rma_t *r = st;
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
    *out = ((rma_t *)st)->stats;
}

#ifdef PXS_TEST_HOOKS
static int
rma_corrupt(void *st, uint64_t offset)
{
    rma_t *r = st;
    if (offset >= r->cap)
        return PXS_ERR_INVALID;
    r->arena[offset] ^= 0x5a;
    if (r->sync_win != MPI_WIN_NULL)
        (void)MPI_Win_sync(r->sync_win);
    return PXS_OK;
}

/* Move a free slot's gen (mirror and A, keeping A's inflight bits). */
static int
rma_set_gen(void *st, uint32_t s, uint64_t gen)
{
    rma_t *r = st;
    if (s >= r->nslots || r->slots[s].state != SLOT_FREE)
        return pxsi_err(PXS_ERR_INVALID, SUB, "test_set_gen: slot %u is not a free slot", s);
    for (uint32_t i = 0; i < r->al.nfree; i++) {
        if (r->al.free_stack[i] != s)
            continue;
        uint64_t delta = (gen - r->slots[s].gen) << PXSI_INFLIGHT_BITS, ign;
        PXSI_MPI_CHECK(MPI_Fetch_and_op(&delta, &ign, MPI_UINT64_T, r->rank, w_a(s), MPI_SUM,
                                        r->ctl_win),
                       SUB);
        PXSI_MPI_CHECK(MPI_Win_flush(r->rank, r->ctl_win), SUB);
        r->slots[s].gen = gen;
        return PXS_OK;
    }
    return pxsi_err(PXS_ERR_INVALID, SUB, "test_set_gen: slot %u is in use", s);
}

static int
rma_add_claims(void *st, uint32_t s, int64_t n)
{
    rma_t *r = st;
    uint64_t zero = 0, old = 0, ign;
    if (s >= r->nslots)
        return pxsi_err(PXS_ERR_INVALID, SUB, "test_add_claims: slot %u beyond the table", s);
    PXSI_MPI_CHECK(MPI_Fetch_and_op(&zero, &old, MPI_UINT64_T, r->rank, w_a(s), MPI_NO_OP,
                                    r->ctl_win),
                   SUB);
    PXSI_MPI_CHECK(MPI_Win_flush(r->rank, r->ctl_win), SUB);
    int64_t now = (int64_t)(old & PXSI_INFLIGHT_MASK);
    if (now + n < 0 || now + n > (int64_t)PXSI_INFLIGHT_MASK)
        return pxsi_err(PXS_ERR_INVALID, SUB, "test_add_claims: %lld + %lld out of range",
                        (long long)now, (long long)n);
    uint64_t d = (uint64_t)n;
    PXSI_MPI_CHECK(MPI_Fetch_and_op(&d, &ign, MPI_UINT64_T, r->rank, w_a(s), MPI_SUM, r->ctl_win),
                   SUB);
    PXSI_MPI_CHECK(MPI_Win_flush(r->rank, r->ctl_win), SUB);
    return PXS_OK;
}
#endif

/* ------------------------------------------------------------ create / destroy */
/* keep_own: leave this rank's own segment mapped (a window that could not
 * be freed still covers it). */
static void
posix_teardown(rma_t *r, int keep_own)
{
    for (int i = 0; i < r->nmaps; i++)
        if (r->maps[i] && r->maps[i] != MAP_FAILED && !(keep_own && i == r->nrank))
            munmap(r->maps[i], r->map_len[i]);
    free(r->maps);
    free(r->map_len);
    r->maps = NULL;
    r->map_len = NULL;
    r->nmaps = 0;
}

/* Own POSIX segment per rank, mapped by same-node peers. Collective over
 * comm; every step agreed. On success r->arena and r->maps[] are set. */
static int
posix_setup(rma_t *r, const int *node_to_comm, uint64_t nonce)
{
    long leader = (long)getpid();
    int rc = pxsi_agree(r->comm, pxsi_mpi_err(MPI_Bcast(&leader, 1, MPI_LONG, 0, r->node), SUB,
                                              "MPI_Bcast (segment names)"));
    if (rc)
        return rc;
    r->maps = calloc((size_t)r->nsize, sizeof *r->maps);
    r->map_len = calloc((size_t)r->nsize, sizeof *r->map_len);
    r->nmaps = r->maps && r->map_len ? r->nsize : 0;
    if (!r->nmaps)
        rc = pxsi_err(PXS_ERR_NOMEM, SUB, "posix shm tables");
    char name[96];
    snprintf(name, sizeof name, "/pxs.%ld.%016llx.%d", leader, (unsigned long long)nonce,
             r->nrank);
    int created = 0;
    if (rc == PXS_OK) {
        int fd = shm_open(name, O_CREAT | O_EXCL | O_RDWR, 0600);
        if (fd < 0) {
            rc = pxsi_err(PXS_ERR_NOMEM, SUB, "shm_open(%s) failed", name);
        } else {
            created = 1;
            /* posix_fallocate, not only ftruncate: a sparse segment on a
             * /dev/shm filled later by someone else would SIGBUS on a put;
             * this way a lack of space is an agreed PXS_ERR_NOMEM here */
            int fe = 0;
            if (ftruncate(fd, (off_t)r->cap) != 0) {
                rc = pxsi_err(PXS_ERR_NOMEM, SUB, "ftruncate(%s, %llu) failed", name,
                              (unsigned long long)r->cap);
            } else if ((fe = posix_fallocate(fd, 0, (off_t)r->cap)) != 0 && fe != EINVAL &&
                       fe != EOPNOTSUPP) {
                rc = pxsi_err(PXS_ERR_NOMEM, SUB, "posix_fallocate(%s, %llu): %s", name,
                              (unsigned long long)r->cap, strerror(fe));
            } else {
                void *p = mmap(NULL, (size_t)r->cap, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
                if (p == MAP_FAILED) {
                    rc = pxsi_err(PXS_ERR_NOMEM, SUB, "mmap of own segment failed");
                } else {
                    r->maps[r->nrank] = p;
                    r->map_len[r->nrank] = (size_t)r->cap;
                }
            }
            close(fd);
        }
    }
    rc = pxsi_agree(r->comm, rc);
    for (int q = 0; rc == PXS_OK && q < r->nsize; q++) {
        if (q == r->nrank)
            continue;
        char pn[96];
        snprintf(pn, sizeof pn, "/pxs.%ld.%016llx.%d", leader, (unsigned long long)nonce, q);
        int cr = node_to_comm[q];
        int fd = shm_open(pn, O_RDONLY, 0);
        if (fd < 0) {
            rc = pxsi_err(PXS_ERR_NOMEM, SUB, "shm_open(%s) of a peer failed", pn);
            break;
        }
        void *p = mmap(NULL, (size_t)r->peer_cap[cr], PROT_READ, MAP_SHARED, fd, 0);
        close(fd);
        if (p == MAP_FAILED) {
            rc = pxsi_err(PXS_ERR_NOMEM, SUB, "mmap of a peer's segment failed");
            break;
        }
        r->maps[q] = p;
        r->map_len[q] = (size_t)r->peer_cap[cr];
    }
    rc = pxsi_agree(r->comm, rc);
    /* every peer has mapped (or failed): the name is not needed any more */
    int brc = MPI_Barrier(r->node);
    if (created)
        shm_unlink(name);
    rc = pxsi_agree(r->comm, rc ? rc : pxsi_mpi_err(brc, SUB, "MPI_Barrier"));
    if (rc) {
        posix_teardown(r, 0);
        return rc;
    }
    r->arena = r->maps[r->nrank];
    return PXS_OK;
}

/* Frees what every rank has (the creation steps are agreed, and windows that
 * exist on only some ranks were leaked by leak_partial). Not the comm: the
 * front end's. */
static void
rma_free_all(rma_t *r)
{
    if (r->ctl_win != MPI_WIN_NULL) {
        MPI_Win_unlock_all(r->ctl_win);
        MPI_Win_free(&r->ctl_win);
    }
    if (r->data_win != MPI_WIN_NULL) {
        MPI_Win_unlock_all(r->data_win);
        MPI_Win_free(&r->data_win);
    }
    if (r->shm_win != MPI_WIN_NULL) {
        MPI_Win_unlock_all(r->shm_win);
        MPI_Win_free(&r->shm_win);
    }
    posix_teardown(r, 0);
    if (r->node != MPI_COMM_NULL)
        MPI_Comm_free(&r->node);
    pxsi_arena_fini(&r->al);
    free(r->slots);
    free(r->snap);
    free(r->peer_cap);
    free(r->peer_nslots);
    free((void *)r->peer_base);
    free(r);
}

/* After a window creation that failed on some rank (agreed): a window that
 * exists on only some ranks cannot be freed (MPI_Win_free is collective), so
 * it is leaked. Returns whether any rank had one: the same answer on every
 * rank, so callers can decide collectively what to do with the memory under
 * it. Collective over comm. */
static int
leak_partial(rma_t *r, MPI_Win *w)
{
    int have = *w != MPI_WIN_NULL, any = 1;
    if (MPI_Allreduce(&have, &any, 1, MPI_INT, MPI_MAX, r->comm) != MPI_SUCCESS)
        any = 1;
    if (have)
        PXSI_DEBUG(SUB, "a window created here but not on every rank is leaked");
    *w = MPI_WIN_NULL;
    return any;
}


/* Agree on a window creation; on failure every rank (not only the failing
 * one) reports what to do about it. The remedy depends on the MPI library
 * (Open MPI: windows over several nodes need osc ucx or pt2pt on TCP
 * clusters; docs/DESIGN.md, section "MPICH"). */
static int
agree_window(rma_t *r, int mrc, const char *what)
{
    int rc = pxsi_agree(r->comm, pxsi_mpi_err(mrc, SUB, what));
    if (rc == PXS_OK)
        return PXS_OK;
    return pxsi_err(rc, SUB, "%s failed on %s (%s, %s): %s", what,
                    mrc != MPI_SUCCESS ? "this rank" : "a peer rank",
                    r->size == r->nsize ? "one node" : "several nodes", pxsi_mpi_impl_name(),
                    pxsi_mpi_window_remedy());
}

static int
unified(MPI_Win w)
{
    int *model = NULL, flag = 0;
    if (MPI_Win_get_attr(w, MPI_WIN_MODEL, &model, &flag) != MPI_SUCCESS || !flag)
        return 0;
    return *model == MPI_WIN_UNIFIED;
}

static int
rma_create(MPI_Comm comm, const pxs_store_opts_t *o, uint64_t nonce, void **out)
{
    rma_t *r = calloc(1, sizeof *r);
    int rc = r ? PXS_OK : pxsi_err(PXS_ERR_NOMEM, SUB, "store state");
    rc = pxsi_agree(comm, rc);
    if (rc) {
        free(r);
        return rc;
    }
    r->comm = comm; /* the front end's duplicate, MPI_ERRORS_RETURN */
    r->nonce = nonce;
    r->node = MPI_COMM_NULL;
    r->shm_win = r->data_win = r->ctl_win = r->sync_win = MPI_WIN_NULL;
    MPI_Comm_rank(r->comm, &r->rank);
    MPI_Comm_size(r->comm, &r->size);
    int mrc = MPI_Comm_split_type(r->comm, MPI_COMM_TYPE_SHARED, r->rank, MPI_INFO_NULL, &r->node);
    if (mrc != MPI_SUCCESS)
        r->node = MPI_COMM_NULL;
    rc = pxsi_agree(r->comm, pxsi_mpi_err(mrc, SUB, "MPI_Comm_split_type"));
    if (rc) {
        r->node = MPI_COMM_NULL; /* where it exists: leaked (freeing is collective) */
        rma_free_all(r);
        return rc;
    }
    MPI_Comm_set_errhandler(r->node, MPI_ERRORS_RETURN);
    MPI_Comm_rank(r->node, &r->nrank);
    MPI_Comm_size(r->node, &r->nsize);

    /* sizes, options */
    uint64_t cap = (uint64_t)pxsi_store_arena_bytes(o) & ~(uint64_t)(PXSI_ARENA_ALIGN - 1);
    uint64_t nsl =
        o->max_objects ? o->max_objects : pxsi_env_uint("PXS_MAX_OBJECTS", 0, 1, 1u << 24);
    if (!nsl) {
        nsl = cap / 4096;
        nsl = nsl < 1024 ? 1024 : nsl > (1u << 20) ? (1u << 20) : nsl;
    }
    rc = PXS_OK;
    if (cap < PXSI_ARENA_ALIGN)
        rc = pxsi_err(PXS_ERR_INVALID, SUB, "arena of %llu bytes is too small",
                      (unsigned long long)cap);
    else if (nsl > (1u << 24))
        rc = pxsi_err(PXS_ERR_INVALID, SUB, "max_objects %llu > 16M", (unsigned long long)nsl);
    r->cap = cap;
    r->nslots = (uint32_t)nsl;
    int shm = o->shm < 0 ? pxsi_env_bool("PXS_SHM", 1) : o->shm;
    r->chunk = pxsi_store_get_chunk(o);
    r->piece = r->chunk < PXSI_COPY_PIECE ? r->chunk : PXSI_COPY_PIECE;
    if (rc == PXS_OK) {
        r->peer_cap = calloc((size_t)r->size, sizeof *r->peer_cap);
        r->peer_nslots = calloc((size_t)r->size, sizeof *r->peer_nslots);
        r->peer_base = calloc((size_t)r->size, sizeof *r->peer_base);
        r->slots = calloc(r->nslots, sizeof *r->slots);
        r->snap = calloc(2 * (size_t)r->nslots, sizeof *r->snap);
        if (!r->peer_cap || !r->peer_nslots || !r->peer_base || !r->slots || !r->snap)
            rc = pxsi_err(PXS_ERR_NOMEM, SUB, "store tables");
        else
            rc = pxsi_arena_init(&r->al, cap, r->nslots);
    }
    rc = pxsi_agree(r->comm, rc);
    /* each collective agreed before the next: no rank is left in one */
    if (rc == PXS_OK) {
        mrc = MPI_Allreduce(MPI_IN_PLACE, &shm, 1, MPI_INT, MPI_MIN, r->comm);
        rc = pxsi_agree(r->comm, pxsi_mpi_err(mrc, SUB, "MPI_Allreduce (shm)"));
    }
    if (rc == PXS_OK) {
        mrc = MPI_Allgather(&r->cap, 1, MPI_UINT64_T, r->peer_cap, 1, MPI_UINT64_T, r->comm);
        rc = pxsi_agree(r->comm, pxsi_mpi_err(mrc, SUB, "MPI_Allgather (arena sizes)"));
    }
    if (rc == PXS_OK) {
        mrc = MPI_Allgather(&r->nslots, 1, MPI_UINT32_T, r->peer_nslots, 1, MPI_UINT32_T,
                            r->comm);
        rc = pxsi_agree(r->comm, pxsi_mpi_err(mrc, SUB, "MPI_Allgather (slot tables)"));
    }
    r->shm_on = shm;
    /* can this node hold the arenas? Before any window call, agreed with
     * the reason, so every rank fails with the size and the limit */
    if (rc == PXS_OK)
        rc = pxsi_node_mem_fits(r->comm, r->node, SUB, r->cap,
                                5 * (uint64_t)r->nslots * sizeof(uint64_t), r->shm_on, "arena",
                                "PXS_ARENA_BYTES / opts.arena_bytes");
    if (rc) {
        rma_free_all(r);
        return rc;
    }

    /* node rank -> comm rank */
    int *n2c = malloc((size_t)r->nsize * sizeof *n2c);
    int *nranks = malloc((size_t)r->nsize * sizeof *nranks);
    MPI_Group gn = MPI_GROUP_NULL, gc = MPI_GROUP_NULL;
    rc = (n2c && nranks) ? PXS_OK : pxsi_err(PXS_ERR_NOMEM, SUB, "node table");
    if (rc == PXS_OK) {
        for (int i = 0; i < r->nsize; i++)
            nranks[i] = i;
        mrc = MPI_Comm_group(r->node, &gn);
        if (mrc == MPI_SUCCESS)
            mrc = MPI_Comm_group(r->comm, &gc);
        if (mrc == MPI_SUCCESS)
            mrc = MPI_Group_translate_ranks(gn, r->nsize, nranks, gc, n2c);
        rc = pxsi_mpi_err(mrc, SUB, "translating node ranks");
        if (gn != MPI_GROUP_NULL)
            MPI_Group_free(&gn);
        if (gc != MPI_GROUP_NULL)
            MPI_Group_free(&gc);
    }
    rc = pxsi_agree(r->comm, rc);
    if (rc) {
        free(n2c);
        free(nranks);
        rma_free_all(r);
        return rc;
    }

    /* ---- the arena windows (see the comment at the top). Every creation
     * is agreed; a window that exists on only some ranks is leaked. */
    int mode = MODE_NONE;
    if (shm) {
        MPI_Info info;
        MPI_Info_create(&info);
        MPI_Info_set(info, "alloc_shared_noncontig", "true");
        void *base = NULL;
        mrc = MPI_Win_allocate_shared((MPI_Aint)cap, 1, info, r->node, &base, &r->shm_win);
        MPI_Info_free(&info);
        if (mrc != MPI_SUCCESS)
            r->shm_win = MPI_WIN_NULL;
        rc = pxsi_agree(r->comm, pxsi_mpi_err(mrc, SUB, "MPI_Win_allocate_shared"));
        if (rc) {
            (void)leak_partial(r, &r->shm_win);
        } else {
            MPI_Win_set_errhandler(r->shm_win, MPI_ERRORS_RETURN);
            r->arena = base;
            mrc = MPI_Win_create(base, (MPI_Aint)cap, 1, MPI_INFO_NULL, r->comm, &r->data_win);
            if (mrc != MPI_SUCCESS)
                r->data_win = MPI_WIN_NULL;
            rc = pxsi_agree(r->comm, pxsi_mpi_err(mrc, SUB, "MPI_Win_create over the shared arena"));
            if (rc == PXS_OK) {
                mode = MODE_MPI_SHM;
            } else {
                int partial = leak_partial(r, &r->data_win);
                if (r->nsize == r->size) {
                    /* osc sm alone: one node, every peer reached through shm */
                    mode = MODE_MPI_SHM;
                    rc = PXS_OK;
                    PXSI_DEBUG(SUB, "MPI_Win_create refused (osc sm?): shared memory only, one node");
                } else if (partial) {
                    /* a leaked data_win covers this memory: keep it (leak) */
                    r->shm_win = MPI_WIN_NULL;
                    r->arena = NULL;
                } else {
                    MPI_Win_free(&r->shm_win); /* every rank has it: agreed above */
                    r->shm_win = MPI_WIN_NULL;
                    r->arena = NULL;
                }
            }
        }
        if (mode == MODE_NONE) {
            /* Win_allocate_shared refused (osc rdma/ucx/pt2pt only), or the
             * shared arena could not be reached across nodes */
            rc = posix_setup(r, n2c, nonce);
            if (rc == PXS_OK) {
                mrc = MPI_Win_create(r->arena, (MPI_Aint)cap, 1, MPI_INFO_NULL, r->comm,
                                     &r->data_win);
                if (mrc != MPI_SUCCESS)
                    r->data_win = MPI_WIN_NULL;
                rc = pxsi_agree(r->comm, pxsi_mpi_err(mrc, SUB, "MPI_Win_create over POSIX shm"));
                if (rc == PXS_OK) {
                    mode = MODE_POSIX_SHM;
                } else {
                    int partial = leak_partial(r, &r->data_win);
                    posix_teardown(r, partial);
                    r->arena = NULL;
                }
            }
        }
    }
    if (mode == MODE_NONE) {
        void *base = NULL;
        mrc = MPI_Win_allocate((MPI_Aint)cap, 1, MPI_INFO_NULL, r->comm, &base, &r->data_win);
        if (mrc != MPI_SUCCESS)
            r->data_win = MPI_WIN_NULL;
        rc = agree_window(r, mrc, "MPI_Win_allocate of the arena");
        if (rc) {
            (void)leak_partial(r, &r->data_win);
            free(n2c);
            free(nranks);
            rma_free_all(r);
            return rc;
        }
        r->arena = base;
        mode = MODE_PLAIN;
    }
    r->mode = mode;

    /* ---- control words */
    size_t ctl_bytes = 5 * (size_t)r->nslots * sizeof(uint64_t);
    void *cbase = NULL;
    mrc = MPI_Win_allocate((MPI_Aint)ctl_bytes, (int)sizeof(uint64_t), MPI_INFO_NULL, r->comm,
                           &cbase, &r->ctl_win);
    if (mrc != MPI_SUCCESS)
        r->ctl_win = MPI_WIN_NULL;
    rc = agree_window(r, mrc, "MPI_Win_allocate of the control words");
    if (rc) {
        (void)leak_partial(r, &r->ctl_win);
    } else {
        r->ctl = cbase;
        memset(r->ctl, 0, ctl_bytes); /* before any peer's atomics: barrier below */
        MPI_Win_set_errhandler(r->ctl_win, MPI_ERRORS_RETURN);
        if (r->data_win != MPI_WIN_NULL)
            MPI_Win_set_errhandler(r->data_win, MPI_ERRORS_RETURN);
        int uni = unified(r->ctl_win) && (r->data_win == MPI_WIN_NULL || unified(r->data_win));
        rc = pxsi_agree(r->comm, uni ? PXS_OK
                                     : pxsi_err(PXS_ERR_NOTSUP, SUB,
                                                "window memory model is not MPI_WIN_UNIFIED"));
    }
    if (rc == PXS_OK) {
        mrc = MPI_Win_lock_all(MPI_MODE_NOCHECK, r->ctl_win);
        if (mrc == MPI_SUCCESS && r->data_win != MPI_WIN_NULL)
            mrc = MPI_Win_lock_all(MPI_MODE_NOCHECK, r->data_win);
        if (mrc == MPI_SUCCESS && r->shm_win != MPI_WIN_NULL)
            mrc = MPI_Win_lock_all(MPI_MODE_NOCHECK, r->shm_win);
        rc = pxsi_agree(r->comm, pxsi_mpi_err(mrc, SUB, "MPI_Win_lock_all"));
        /* failure after this point leaves epochs open: unlock in free_all is
         * harmless enough for this (already broken) case */
    }
    /* peers reachable through shared memory */
    if (rc == PXS_OK) {
        r->peer_base[r->rank] = r->arena;
        for (int q = 0; q < r->nsize && r->shm_on; q++) {
            int cr = n2c[q];
            if (cr == r->rank || cr < 0)
                continue;
            if (mode == MODE_MPI_SHM) {
                MPI_Aint sz = 0;
                int du = 0;
                void *p = NULL;
                mrc = MPI_Win_shared_query(r->shm_win, q, &sz, &du, &p);
                if (mrc != MPI_SUCCESS) {
                    rc = pxsi_mpi_err(mrc, SUB, "MPI_Win_shared_query");
                    break;
                }
                r->peer_base[cr] = p;
            } else if (mode == MODE_POSIX_SHM) {
                r->peer_base[cr] = r->maps[q];
            }
        }
        r->sync_win = r->shm_win != MPI_WIN_NULL ? r->shm_win : r->data_win;
        rc = pxsi_agree(r->comm, rc);
    }
    free(n2c);
    free(nranks);
    if (rc == PXS_OK)
        rc = pxsi_agree(r->comm, pxsi_mpi_err(MPI_Barrier(r->comm), SUB, "MPI_Barrier"));
    if (rc) {
        rma_free_all(r);
        return rc;
    }
    PXSI_DEBUG(SUB, "store %016llx: arena %llu B, %u slots, mode %d, shm %d, chunk %zu, %s",
               (unsigned long long)nonce,
               (unsigned long long)cap, r->nslots, mode, r->shm_on, r->chunk,
               pxsi_mpi_impl_name());
    *out = r;
    return PXS_OK;
}

static int
rma_destroy(void *st)
{
    rma_t *r = st;
    /* store.c agreed that no rank has outstanding work; Win_free is
     * collective, so no arena is unmapped while a peer could read it */
    rma_free_all(r);
    return PXS_OK;
}

const pxsi_store_conn_ops_t pxsi_store_rma_ops = {
    .name = "rma",
    .kind = PXS_CONN_RMA,
    .create = rma_create,
    .check = rma_check,
    .put = rma_put,
    .resolve = rma_resolve,
    .resolve_start = rma_resolve_start,
    .resolve_test = rma_resolve_test,
    .resolve_wait = rma_resolve_wait,
    .view = rma_view,
    .release = rma_release,
    .evict = rma_evict,
    .drop = rma_drop,
    .progress = rma_progress,
    .used = rma_used,
    .destroy = rma_destroy,
    .path = rma_path,
    .stats = rma_stats,
#ifdef PXS_TEST_HOOKS
    .corrupt = rma_corrupt,
    .set_gen = rma_set_gen,
    .add_claims = rma_add_claims,
#endif
};
