/* RMA connector internals, shared by its two halves (not installed):
 *   rma.c          the claim protocol and the ops (claim, take, unclaim,
 *                  publication, reclaim, resolve, view, drop, evict)
 *   rma_windows.c  creation and teardown: the node communicator, the
 *                  tables, the three arena modes, POSIX segments, the control
 *                  window, the epochs, the peers' shared-memory bases
 * See docs/DESIGN.md, sections "The claim protocol" and "Store arena: three
 * modes".
 *
 * WINDOWS: the arena (shm_win and/or data_win, see rma_windows.c) and
 *   the control words (ctl_win): MPI_Win_allocate, 8-byte words, per slot s of
 * n: A[s]          gen(40) << 24 | inflight(24)   MPI_UINT64_T U[n+s] remaining
 * resolve budget       MPI_INT64_T D[2n+3s..+2]  offset, size, crc | flags<<32
 * MPI_UINT64_T Every access to these words is an MPI atomic (Fetch_and_op,
 *   Accumulate, Get_accumulate(NO_OP)), the owner's included; no plain loads
 *   or CPU atomics. MPI_Compare_and_swap is never used (osc/rdma 4.1.4
 *   segfaults on it). One lock_all(MPI_MODE_NOCHECK) epoch per window from
 *   create to destroy; completion by MPI_Win_flush.
 */
#ifndef PXSI_STORE_RMA_INT_H
#define PXSI_STORE_RMA_INT_H

#include "store/store_int.h"
#include "util/shmseg.h"

#define PXSI_RMA_SUB "store.rma"

/* Arena modes (docs/DESIGN.md, section "Store arena: three modes"). */
enum {
    PXSI_RMA_MODE_NONE = 0,
    PXSI_RMA_MODE_PLAIN,
    PXSI_RMA_MODE_MPI_SHM,
    PXSI_RMA_MODE_POSIX_SHM
};

/* Node-local control words (docs/DESIGN.md, section "Node-local claim
 * words"): a POSIX segment per rank, mapped read-write by same-node peers,
 * with the same layout as ctl_win (LA[s], LU[n+s], LD[2n+3s..]) but touched
 * only with C11 atomics, never by MPI.
 *   NONE   no segment (shm off, plain arena, or the segment failed): every
 *          claim goes through the MPI words, as before.
 *   MIXED  the communicator spans nodes: same-node claims use LA (the owner
 *          sums LA's and A's inflight), the budget stays in the MPI word U
 *          for everyone (one budget word, so no split), LD mirrors D.
 *   NODE   every rank is on this node: every word is node-local (LA, LU,
 *          LD); the MPI control words are never touched after create. */
enum { PXSI_RMA_L_NONE = 0, PXSI_RMA_L_MIXED, PXSI_RMA_L_NODE };

/* One rank's RMA store. Every handle field starts NULL / MPI_*_NULL, so the
 * one cleanup (pxsi_rma_free_all) handles any partial state of create. */
typedef struct pxsi_rma {
    MPI_Comm comm;  /* the front end's duplicate (not ours to free) */
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
    int *node_to_comm;               /* node rank -> comm rank (create only) */
    /* arena mode POSIX_SHM: the node segments (own read-write, peers'
     * read-only; util/shmseg.h), else NULL */
    pxsi_shmseg_t *aseg;
    /* node-local control words: [comm rank] base of that rank's segment
     * (NULL: not on this node or lmode NONE), from lseg (read-write) */
    int lmode;
    _Atomic uint64_t **peer_lctl;
    pxsi_shmseg_t *lseg;
    pxsi_arena_t al;
    pxsi_conn_slot_t *slots; /* mirror of A's gen and D (only the owner writes) */
    uint32_t ndying;
    uint64_t *snap; /* 2 * nslots scratch: result, origin (NO_OP, unused) */
    size_t chunk, piece;
    /* lent buffers (docs/DESIGN.md, section "Lent buffers"): on when every
     * rank is on this node (lmode NODE) and cross-memory attach
     * (process_vm_readv) worked between the node's ranks at create, agreed;
     * peer_pid[comm rank] is that rank's process id */
    int lend;
    int *peer_pid;
    pxsi_store_stats_t stats;
} pxsi_rma_t;

/* Word offsets in rank o's control window: A[s], U[n+s], D[2n+3s]. */
static inline MPI_Aint
pxsi_rma_w_a(uint32_t s)
{
    return (MPI_Aint)s;
}
static inline MPI_Aint
pxsi_rma_w_u(const pxsi_rma_t *r, int o, uint32_t s)
{
    return (MPI_Aint)r->peer_nslots[o] + (MPI_Aint)s;
}
static inline MPI_Aint
pxsi_rma_w_d(const pxsi_rma_t *r, int o, uint32_t s)
{
    return 2 * (MPI_Aint)r->peer_nslots[o] + 3 * (MPI_Aint)s;
}

/* Node-local words of owner o's slot s (only when r->peer_lctl[o]). */
static inline _Atomic uint64_t *
pxsi_rma_l_a(const pxsi_rma_t *r, int o, uint32_t s)
{
    return r->peer_lctl[o] + s;
}
static inline _Atomic uint64_t *
pxsi_rma_l_u(const pxsi_rma_t *r, int o, uint32_t s)
{
    return r->peer_lctl[o] + r->peer_nslots[o] + s;
}
static inline _Atomic uint64_t *
pxsi_rma_l_d(const pxsi_rma_t *r, int o, uint32_t s)
{
    return r->peer_lctl[o] + 2 * (size_t)r->peer_nslots[o] + 3 * (size_t)s;
}

/* rma_windows.c. Collective create over comm (the ops table's create):
 * named steps, each agreed before the next, one cleanup. */
int pxsi_rma_create(MPI_Comm comm, const pxs_store_opts_t *o, uint64_t nonce, void **out);
/* Frees what every rank has (windows that exist on only some ranks were
 * leaked at create). Collective. Not the comm: the front end's. */
void pxsi_rma_free_all(pxsi_rma_t *r);

#endif
