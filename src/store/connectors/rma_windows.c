/* RMA connector, window creation and teardown: the named steps of create,
 * the three arena modes, POSIX segments, the control window, the epochs and
 * the peers' shared-memory bases. The claim protocol that runs over these
 * windows: rma.c; the shared state: rma_int.h.
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
 *
 * CREATE: every collective step is agreed (pxsi_agree) before the next, so a
 * failure on some ranks fails all without a hang; a window or communicator
 * that exists on only some ranks is leaked (freeing it would be collective).
 * The node's memory is checked before any window call (pxsi_node_mem_fits):
 * a window allocation that fails on one rank leaves the others inside it.
 *
 *
 * One cleanup: every handle of pxsi_rma_t starts NULL / MPI_*_NULL and a
 * step that fails leaves only handles every rank has (a window or
 * communicator that exists on only some ranks is leaked by the step), so
 * pxsi_rma_create unwinds any partial state with pxsi_rma_free_all. See
 * docs/DESIGN.md, section "Collective failure agreement".
 * ====================================================================== */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include "store/connectors/rma_int.h"
#include "util/options.h"
#include "util/shmseg.h"
#include "util/window.h"

#define SUBSYS PXSI_RMA_SUB

/* Node-local control words (rma_int.h, PXSI_RMA_L_*): one read-write node
 * segment (util/shmseg.h) per rank of 5 words per slot. Any failure leaves
 * lmode NONE on every rank (the MPI words carry every claim, as before):
 * agreed. */
static int
rma_create_local_ctl(pxsi_rma_t *r)
{
    r->lmode = PXSI_RMA_L_NONE;
    if (!r->shm_on || r->mode == PXSI_RMA_MODE_PLAIN || r->mode == PXSI_RMA_MODE_NONE)
        return PXS_OK;
    r->peer_lctl = calloc((size_t)r->size, sizeof *r->peer_lctl);
    int rc = r->peer_lctl ? PXS_OK : pxsi_err(PXS_ERR_NOMEM, SUBSYS, "node-local word tables");
#ifdef PXS_TEST_HOOKS
    /* test hook: PXS_TEST_LOCAL_CTL_FAIL=<rank> refuses the segment on that
     * rank; every rank must then fall back to the MPI words */
    const char *tf = getenv("PXS_TEST_LOCAL_CTL_FAIL");
    if (rc == PXS_OK && tf && atoi(tf) == r->rank)
        rc = pxsi_err(PXS_ERR_NOMEM, SUBSYS, "node-local words refused (test hook)");
#endif
    rc = pxsi_agree(r->comm, rc);
    if (rc == PXS_OK)
        rc = pxsi_shmseg_create(r->comm, 5 * (size_t)r->nslots * sizeof(uint64_t), 1, SUBSYS,
                                "node-local claim words", &r->lseg);
    if (rc) {
        PXSI_DEBUG(SUBSYS, "node-local claim words refused (%s): MPI atomics for every claim",
                   pxs_last_error_detail());
        return PXS_OK;
    }
    for (int q = 0; q < r->size; q++)
        r->peer_lctl[q] = pxsi_shmseg_base(r->lseg, q);
    r->lmode = r->nsize == r->size ? PXSI_RMA_L_NODE : PXSI_RMA_L_MIXED;
    return PXS_OK;
}

/* Frees what every rank has (the creation steps are agreed, and windows that
 * exist on only some ranks were leaked by leak_partial). Not the comm: the
 * front end's. */
void
pxsi_rma_free_all(pxsi_rma_t *r)
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
    pxsi_shmseg_free(r->aseg);
    pxsi_shmseg_free(r->lseg);
    free(r->peer_lctl);
    if (r->node != MPI_COMM_NULL)
        MPI_Comm_free(&r->node);
    pxsi_arena_fini(&r->al);
    free(r->slots);
    free(r->snap);
    free(r->peer_cap);
    free(r->peer_nslots);
    free(r->peer_pid);
    free((void *)r->peer_base);
    free(r->node_to_comm);
    free(r);
}

/* After a window creation that failed on some rank (agreed): a window that
 * exists on only some ranks cannot be freed (MPI_Win_free is collective), so
 * it is leaked. Returns whether any rank had one: the same answer on every
 * rank, so callers can decide collectively what to do with the memory under
 * it. Collective over comm. */
static int
leak_partial(pxsi_rma_t *r, MPI_Win *w)
{
    int have = *w != MPI_WIN_NULL, any = 1;
    if (MPI_Allreduce(&have, &any, 1, MPI_INT, MPI_MAX, r->comm) != MPI_SUCCESS)
        any = 1;
    if (have)
        PXSI_DEBUG(SUBSYS, "a window created here but not on every rank is leaked");
    *w = MPI_WIN_NULL;
    return any;
}

static int
unified(MPI_Win w)
{
    int *model = NULL, flag = 0;
    if (MPI_Win_get_attr(w, MPI_WIN_MODEL, &model, &flag) != MPI_SUCCESS || !flag)
        return 0;
    return *model == MPI_WIN_UNIFIED;
}

/* Number of nodes for the remedy text: 1 when comm is one node, 2 for
 * "several". */
static int
nodes_of(const pxsi_rma_t *r)
{
    return r->size == r->nsize ? 1 : 2;
}

/* ------------------------------------------------------------ create steps */
/* Each step is collective over r->comm and returns a status agreed on every
 * rank (its last action is an agreement), so every rank takes the same
 * branch after it. */

/* The node communicator (MPI_COMM_TYPE_SHARED). */
static int
rma_create_node_comm(pxsi_rma_t *r)
{
    int mrc = MPI_Comm_split_type(r->comm, MPI_COMM_TYPE_SHARED, r->rank, MPI_INFO_NULL, &r->node);
    if (mrc != MPI_SUCCESS)
        r->node = MPI_COMM_NULL;
    int rc = pxsi_agree(r->comm, pxsi_mpi_err(mrc, SUBSYS, "MPI_Comm_split_type"));
    if (rc) {
        r->node = MPI_COMM_NULL; /* where it exists: leaked (freeing is collective) */
        return rc;
    }
    MPI_Comm_set_errhandler(r->node, MPI_ERRORS_RETURN);
    MPI_Comm_rank(r->node, &r->nrank);
    MPI_Comm_size(r->node, &r->nsize);
    return PXS_OK;
}

/* Sizes and options (conn_common.c), the peer and slot tables, the
 * allocator. *shm_out: this rank's wish for shared memory. */
static int
rma_create_tables(pxsi_rma_t *r, const pxs_store_opts_t *o, int *shm_out)
{
    int rc = pxsi_conn_sizes(SUBSYS, o, &r->cap, &r->nslots);
    *shm_out = o->shm < 0 ? pxsi_opt_bool(PXSI_OPT_SHM) : o->shm;
    r->chunk = pxsi_store_get_chunk(o);
    r->piece = pxsi_conn_piece(r->chunk);
    if (rc == PXS_OK) {
        r->peer_cap = calloc((size_t)r->size, sizeof *r->peer_cap);
        r->peer_nslots = calloc((size_t)r->size, sizeof *r->peer_nslots);
        r->peer_base = calloc((size_t)r->size, sizeof *r->peer_base);
        r->slots = calloc(r->nslots, sizeof *r->slots);
        r->snap = calloc(2 * (size_t)r->nslots, sizeof *r->snap);
        if (!r->peer_cap || !r->peer_nslots || !r->peer_base || !r->slots || !r->snap)
            rc = pxsi_err(PXS_ERR_NOMEM, SUBSYS, "store tables");
        else
            rc = pxsi_arena_init(&r->al, r->cap, r->nslots);
    }
    return pxsi_agree(r->comm, rc);
}

/* Agree shm (on only if every rank wants it) and gather every rank's arena
 * size and slot count; each collective agreed before the next. */
static int
rma_exchange_sizes(pxsi_rma_t *r, int shm)
{
    int mrc = MPI_Allreduce(MPI_IN_PLACE, &shm, 1, MPI_INT, MPI_MIN, r->comm);
    int rc = pxsi_agree(r->comm, pxsi_mpi_err(mrc, SUBSYS, "MPI_Allreduce (shm)"));
    if (rc == PXS_OK) {
        mrc = MPI_Allgather(&r->cap, 1, MPI_UINT64_T, r->peer_cap, 1, MPI_UINT64_T, r->comm);
        rc = pxsi_agree(r->comm, pxsi_mpi_err(mrc, SUBSYS, "MPI_Allgather (arena sizes)"));
    }
    if (rc == PXS_OK) {
        mrc = MPI_Allgather(&r->nslots, 1, MPI_UINT32_T, r->peer_nslots, 1, MPI_UINT32_T, r->comm);
        rc = pxsi_agree(r->comm, pxsi_mpi_err(mrc, SUBSYS, "MPI_Allgather (slot tables)"));
    }
    r->shm_on = shm;
    return rc;
}

/* Can this node hold the arenas? Before any window call, agreed with the
 * reason, so every rank fails with the size and the limit. */
static int
rma_check_node_memory(pxsi_rma_t *r)
{
    return pxsi_node_mem_fits(r->comm, r->node, SUBSYS, r->cap,
                              5 * (uint64_t)r->nslots * sizeof(uint64_t), r->shm_on, "arena",
                              "PXS_ARENA_BYTES / opts.arena_bytes");
}

/* Node rank -> comm rank (r->node_to_comm). */
static int
rma_create_node_table(pxsi_rma_t *r)
{
    r->node_to_comm = malloc((size_t)r->nsize * sizeof *r->node_to_comm);
    int *nranks = malloc((size_t)r->nsize * sizeof *nranks);
    MPI_Group gn = MPI_GROUP_NULL, gc = MPI_GROUP_NULL;
    int rc = (r->node_to_comm && nranks) ? PXS_OK : pxsi_err(PXS_ERR_NOMEM, SUBSYS, "node table");
    if (rc == PXS_OK) {
        for (int i = 0; i < r->nsize; i++)
            nranks[i] = i;
        int mrc = MPI_Comm_group(r->node, &gn);
        if (mrc == MPI_SUCCESS)
            mrc = MPI_Comm_group(r->comm, &gc);
        if (mrc == MPI_SUCCESS)
            mrc = MPI_Group_translate_ranks(gn, r->nsize, nranks, gc, r->node_to_comm);
        rc = pxsi_mpi_err(mrc, SUBSYS, "translating node ranks");
        if (gn != MPI_GROUP_NULL)
            MPI_Group_free(&gn);
        if (gc != MPI_GROUP_NULL)
            MPI_Group_free(&gc);
    }
    free(nranks);
    return pxsi_agree(r->comm, rc);
}

/* The first 64 B boundary at or after p (mode 1's segments). */
static unsigned char *
arena_aligned(void *p)
{
    uintptr_t a = (uintptr_t)p;
    return (unsigned char *)p + ((PXSI_ARENA_ALIGN - (a & (PXSI_ARENA_ALIGN - 1))) &
                                 (PXSI_ARENA_ALIGN - 1));
}

/* Mode 1: MPI_Win_allocate_shared on the node, MPI_Win_create over it on
 * comm (not needed on one node). PXS_OK with r->mode set, or PXS_OK with
 * the mode still NONE (fall through to mode 2), or an agreed failure. */
static int
rma_arena_mpi_shm(pxsi_rma_t *r)
{
    MPI_Info info;
    MPI_Info_create(&info);
    MPI_Info_set(info, "alloc_shared_noncontig", "true");
    void *base = NULL;
    /* + PXSI_ARENA_ALIGN: osc sm places a rank's segment at 8 B alignment;
     * the arena starts at the first 64 B boundary in it (every block on a
     * cache line, reserve's 64 B promise). A peer finds the same boundary
     * from its own mapping (rma_map_peers): the segment is mapped
     * page-aligned in every process, so an address mod 64 is the same. */
    int mrc = MPI_Win_allocate_shared((MPI_Aint)(r->cap + PXSI_ARENA_ALIGN), 1, info, r->node,
                                      &base, &r->shm_win);
    MPI_Info_free(&info);
    if (mrc != MPI_SUCCESS)
        r->shm_win = MPI_WIN_NULL;
    int rc = pxsi_agree(r->comm, pxsi_mpi_err(mrc, SUBSYS, "MPI_Win_allocate_shared"));
    if (rc) {
        (void)leak_partial(r, &r->shm_win);
        return PXS_OK; /* refused (osc rdma/ucx/pt2pt only): mode 2 */
    }
    MPI_Win_set_errhandler(r->shm_win, MPI_ERRORS_RETURN);
    r->arena = arena_aligned(base);
    mrc = MPI_Win_create(r->arena, (MPI_Aint)r->cap, 1, MPI_INFO_NULL, r->comm, &r->data_win);
    if (mrc != MPI_SUCCESS)
        r->data_win = MPI_WIN_NULL;
    rc = pxsi_agree(r->comm, pxsi_mpi_err(mrc, SUBSYS, "MPI_Win_create over the shared arena"));
    if (rc == PXS_OK) {
        r->mode = PXSI_RMA_MODE_MPI_SHM;
        return PXS_OK;
    }
    int partial = leak_partial(r, &r->data_win);
    if (r->nsize == r->size) {
        /* osc sm alone: one node, every peer reached through shm */
        r->mode = PXSI_RMA_MODE_MPI_SHM;
        PXSI_DEBUG(SUBSYS, "MPI_Win_create refused (osc sm?): shared memory only, one node");
    } else if (partial) {
        /* a leaked data_win covers this memory: keep it (leak) */
        r->shm_win = MPI_WIN_NULL;
        r->arena = NULL;
    } else {
        MPI_Win_free(&r->shm_win); /* every rank has it: agreed above */
        r->shm_win = MPI_WIN_NULL;
        r->arena = NULL;
    }
    return PXS_OK;
}

/* Mode 2: own POSIX segments (a node segment per rank, util/shmseg.h,
 * mapped read-only by the node peers), MPI_Win_create over them on comm.
 * PXS_OK with or without the mode set (a failure here falls through to
 * mode 3). */
static int
rma_arena_posix_shm(pxsi_rma_t *r)
{
    if (pxsi_shmseg_create_ex(r->comm, (size_t)r->cap, 1, PXSI_SHMSEG_PEER_RO, SUBSYS, "arena",
                              &r->aseg) != PXS_OK)
        return PXS_OK; /* agreed; r->aseg NULL */
    r->arena = pxsi_shmseg_base(r->aseg, r->rank);
    int mrc = MPI_Win_create(r->arena, (MPI_Aint)r->cap, 1, MPI_INFO_NULL, r->comm, &r->data_win);
    if (mrc != MPI_SUCCESS)
        r->data_win = MPI_WIN_NULL;
    int rc = pxsi_agree(r->comm, pxsi_mpi_err(mrc, SUBSYS, "MPI_Win_create over POSIX shm"));
    if (rc == PXS_OK) {
        r->mode = PXSI_RMA_MODE_POSIX_SHM;
    } else {
        int partial = leak_partial(r, &r->data_win);
        if (partial)
            pxsi_shmseg_free_keep_own(r->aseg); /* a leaked data_win covers it */
        else
            pxsi_shmseg_free(r->aseg);
        r->aseg = NULL;
        r->arena = NULL;
    }
    return PXS_OK;
}

/* Mode 3: MPI_Win_allocate on comm; its failure is the store's (with the
 * remedy text). */
static int
rma_arena_plain(pxsi_rma_t *r)
{
    void *base = NULL;
    int rc = pxsi_win_allocate(r->comm, (MPI_Aint)r->cap, 1, MPI_INFO_NULL, nodes_of(r), SUBSYS,
                               "MPI_Win_allocate of the arena", &base, &r->data_win);
    if (rc) {
        (void)leak_partial(r, &r->data_win);
        return rc;
    }
    r->arena = base;
    r->mode = PXSI_RMA_MODE_PLAIN;
    return PXS_OK;
}

/* The arena windows, in the three modes (see the comment at the top). Every
 * creation is agreed; a window that exists on only some ranks is leaked. */
static int
rma_create_arena(pxsi_rma_t *r)
{
    r->mode = PXSI_RMA_MODE_NONE;
    if (r->shm_on)
        (void)rma_arena_mpi_shm(r);
    else
        PXSI_DEBUG(SUBSYS, "arena: shared memory off (shm 0 / PXS_SHM=0): plain MPI_Win_allocate");
    /* Win_allocate_shared refused (osc rdma/ucx/pt2pt only), or the shared
     * arena could not be reached across nodes */
    if (r->shm_on && r->mode == PXSI_RMA_MODE_NONE) {
        PXSI_DEBUG(SUBSYS, "arena: MPI shared window refused or not reachable across nodes: "
                           "trying POSIX segments");
        (void)rma_arena_posix_shm(r);
        if (r->mode == PXSI_RMA_MODE_NONE)
            PXSI_DEBUG(SUBSYS, "arena: POSIX segments refused: plain MPI_Win_allocate");
    }
    if (r->mode == PXSI_RMA_MODE_NONE)
        return rma_arena_plain(r);
    return PXS_OK;
}

/* For debug lines. */
static const char *
mode_name(int mode)
{
    switch (mode) {
    case PXSI_RMA_MODE_PLAIN:
        return "plain (MPI_Win_allocate; same-node peers read with MPI_Get)";
    case PXSI_RMA_MODE_MPI_SHM:
        return "mpi-shm (MPI_Win_allocate_shared + MPI_Win_create)";
    case PXSI_RMA_MODE_POSIX_SHM:
        return "posix-shm (POSIX segments + MPI_Win_create)";
    default:
        return "none";
    }
}

/* The control words (ctl_win), zeroed before any peer's atomics (the final
 * barrier), and the memory model check. */
static int
rma_create_control(pxsi_rma_t *r)
{
    size_t ctl_bytes = 5 * (size_t)r->nslots * sizeof(uint64_t);
    void *cbase = NULL;
    int rc = pxsi_win_allocate(r->comm, (MPI_Aint)ctl_bytes, (int)sizeof(uint64_t), MPI_INFO_NULL,
                               nodes_of(r), SUBSYS, "MPI_Win_allocate of the control words", &cbase,
                               &r->ctl_win);
    if (rc) {
        (void)leak_partial(r, &r->ctl_win);
        return rc;
    }
    r->ctl = cbase;
    memset(r->ctl, 0, ctl_bytes); /* before any peer's atomics: barrier at the end */
    if (r->data_win != MPI_WIN_NULL)
        MPI_Win_set_errhandler(r->data_win, MPI_ERRORS_RETURN);
    int uni = unified(r->ctl_win) && (r->data_win == MPI_WIN_NULL || unified(r->data_win));
    return pxsi_agree(
        r->comm,
        uni ? PXS_OK : pxsi_err(PXS_ERR_NOTSUP, SUBSYS, "window memory model is not MPI_WIN_UNIFIED"));
}

/* One lock_all(MPI_MODE_NOCHECK) epoch per window, open until destroy. A
 * failure leaves epochs open: the unlock in free_all is harmless enough for
 * this (already broken) case. */
static int
rma_lock_epochs(pxsi_rma_t *r)
{
    int mrc = MPI_Win_lock_all(MPI_MODE_NOCHECK, r->ctl_win);
    if (mrc == MPI_SUCCESS && r->data_win != MPI_WIN_NULL)
        mrc = MPI_Win_lock_all(MPI_MODE_NOCHECK, r->data_win);
    if (mrc == MPI_SUCCESS && r->shm_win != MPI_WIN_NULL)
        mrc = MPI_Win_lock_all(MPI_MODE_NOCHECK, r->shm_win);
    return pxsi_agree(r->comm, pxsi_mpi_err(mrc, SUBSYS, "MPI_Win_lock_all"));
}

/* Peers reachable through shared memory: their arena bases. */
static int
rma_map_peers(pxsi_rma_t *r)
{
    int rc = PXS_OK;
    r->peer_base[r->rank] = r->arena;
    for (int q = 0; q < r->nsize && r->shm_on; q++) {
        int cr = r->node_to_comm[q];
        if (cr == r->rank || cr < 0)
            continue;
        if (r->mode == PXSI_RMA_MODE_MPI_SHM) {
            MPI_Aint sz = 0;
            int du = 0;
            void *p = NULL;
            int mrc = MPI_Win_shared_query(r->shm_win, q, &sz, &du, &p);
            if (mrc != MPI_SUCCESS) {
                rc = pxsi_mpi_err(mrc, SUBSYS, "MPI_Win_shared_query");
                break;
            }
            r->peer_base[cr] = arena_aligned(p); /* as the owner's r->arena */
        } else if (r->mode == PXSI_RMA_MODE_POSIX_SHM) {
            r->peer_base[cr] = pxsi_shmseg_base(r->aseg, cr);
        }
    }
    r->sync_win = r->shm_win != MPI_WIN_NULL ? r->shm_win : r->data_win;
    return pxsi_agree(r->comm, rc);
}

/* Map the shared arenas in now (issue 15): a put's first write to an arena
 * page and a peer's first read of it otherwise take a page fault each in
 * the middle of the stream (measured: one fault per 4 KiB of every put on a
 * fresh arena). Own arena (MADV_POPULATE_WRITE) up to PXS_PREFAULT bytes,
 * and the same-node peers' (MADV_POPULATE_READ) up to PXS_PREFAULT bytes in
 * all, in rank order (default 256 MiB each: page tables only, the pages
 * exist already, posix_fallocate or the osc; a peer's read faults map 16
 * pages at a time anyway, the own write faults one). A kernel without MADV_POPULATE_* (< 5.14) touches a byte per
 * page instead. Local and best effort: never a create failure. */
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
static uint64_t
prefault_range(const unsigned char *base, uint64_t len, int write, uint64_t budget)
{
    const uintptr_t pg = 4096;
    uintptr_t a = ((uintptr_t)base + pg - 1) & ~(pg - 1);
    uintptr_t e = ((uintptr_t)base + (uintptr_t)len) & ~(pg - 1);
    if (!base || e <= a || budget == 0)
        return 0;
    if (e - a > budget)
        e = a + (uintptr_t)(budget & ~(uint64_t)(pg - 1));
    if (e <= a)
        return 0;
    if (madvise((void *)a, e - a, write ? MADV_POPULATE_WRITE : MADV_POPULATE_READ) != 0) {
        volatile unsigned char sink = 0;
        for (uintptr_t p = a; p < e; p += pg) {
            if (write)
                *(volatile unsigned char *)p = *(volatile unsigned char *)p;
            else
                sink ^= *(volatile const unsigned char *)p;
        }
        (void)sink;
    }
    return (uint64_t)(e - a);
}

static void
rma_prefault(pxsi_rma_t *r)
{
    uint64_t budget = pxsi_opt_uint(PXSI_OPT_PREFAULT);
    (void)prefault_range(r->arena, r->cap, 1, budget);
    for (int q = 0; q < r->size && budget > 0; q++)
        if (q != r->rank && r->peer_base[q])
            budget -= prefault_range(r->peer_base[q], r->peer_cap[q], 0, budget);
}

/* ------------------------------------------------------------ create / destroy
 */
/* Lent buffers (docs/DESIGN.md, section "Lent buffers"): only when every
 * rank is on this node (lmode NODE: every claim on node-local words, and
 * every reader can reach the owner's memory) and PXS_LEND is on. Each rank
 * reads a probe word of every peer with process_vm_readv (cross-memory
 * attach: ptrace permission, Yama, containers may refuse it); lend is on
 * only if every read on every rank worked, agreed. Never a create failure:
 * a store that cannot lend copies (pxs_store_put_ref). */
static int
rma_create_lend(pxsi_rma_t *r)
{
    r->lend = 0;
    int ok = r->lmode == PXSI_RMA_L_NODE && pxsi_opt_bool(PXSI_OPT_LEND);
    int all = 0;
    int mrc = MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, r->comm);
    int rc = pxsi_agree(r->comm, pxsi_mpi_err(mrc, SUBSYS, "MPI_Allreduce (lend)"));
    if (rc || !all)
        return rc;
    uint64_t mine[2], *peers = NULL;
    volatile uint64_t probe = r->nonce ^ ((uint64_t)r->rank * 0x9e3779b97f4a7c15ull + 1);
    mine[0] = (uint64_t)getpid();
    mine[1] = (uint64_t)(uintptr_t)&probe;
    r->peer_pid = calloc((size_t)r->size, sizeof *r->peer_pid);
    peers = calloc(2 * (size_t)r->size, sizeof *peers);
    ok = r->peer_pid && peers;
    rc = pxsi_agree(r->comm, ok ? PXS_OK : pxsi_err(PXS_ERR_NOMEM, SUBSYS, "lend tables"));
    if (rc == PXS_OK) {
        mrc = MPI_Allgather(mine, 2, MPI_UINT64_T, peers, 2, MPI_UINT64_T, r->comm);
        rc = pxsi_agree(r->comm, pxsi_mpi_err(mrc, SUBSYS, "MPI_Allgather (lend)"));
    }
    if (rc) {
        free(peers);
        return rc;
    }
    for (int q = 0; q < r->size; q++) {
        r->peer_pid[q] = (int)peers[2 * q];
        if (q == r->rank)
            continue;
        uint64_t got = 0, want = r->nonce ^ ((uint64_t)q * 0x9e3779b97f4a7c15ull + 1);
        struct iovec l = {&got, sizeof got}, rm = {(void *)(uintptr_t)peers[2 * q + 1], sizeof got};
        if (process_vm_readv((pid_t)peers[2 * q], &l, 1, &rm, 1, 0) != (ssize_t)sizeof got ||
            got != want) {
            PXSI_DEBUG(SUBSYS, "lend: cross-memory attach to rank %d refused (%s): put_ref copies",
                       q, strerror(errno));
            ok = 0;
        }
    }
    free(peers);
#ifdef PXS_TEST_HOOKS
    /* test hook: PXS_TEST_CMA_FAIL=<rank> makes that rank's probe fail */
    const char *tf = getenv("PXS_TEST_CMA_FAIL");
    if (tf && atoi(tf) == r->rank)
        ok = 0;
#endif
    /* every rank read every probe before any returns (probe is on our stack) */
    mrc = MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, r->comm);
    rc = pxsi_agree(r->comm, pxsi_mpi_err(mrc, SUBSYS, "MPI_Allreduce (lend probe)"));
    if (rc == PXS_OK)
        r->lend = all;
    return rc;
}

int
pxsi_rma_create(MPI_Comm comm, const pxs_store_opts_t *o, uint64_t nonce, void **out)
{
    pxsi_rma_t *r = calloc(1, sizeof *r);
    int rc = pxsi_agree(comm, r ? PXS_OK : pxsi_err(PXS_ERR_NOMEM, SUBSYS, "store state"));
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

    int shm = 1;
    /* the steps, in order; each agreed, so every rank leaves at the same one */
    if ((rc = rma_create_node_comm(r)) != PXS_OK)
        goto fail;
    if ((rc = rma_create_tables(r, o, &shm)) != PXS_OK)
        goto fail;
    if ((rc = rma_exchange_sizes(r, shm)) != PXS_OK)
        goto fail;
    if ((rc = rma_check_node_memory(r)) != PXS_OK)
        goto fail;
    if ((rc = rma_create_node_table(r)) != PXS_OK)
        goto fail;
    if ((rc = rma_create_arena(r)) != PXS_OK)
        goto fail;
    if ((rc = rma_create_control(r)) != PXS_OK)
        goto fail;
    if ((rc = rma_create_local_ctl(r)) != PXS_OK)
        goto fail;
    if ((rc = rma_create_lend(r)) != PXS_OK)
        goto fail;
    if ((rc = rma_lock_epochs(r)) != PXS_OK)
        goto fail;
    if ((rc = rma_map_peers(r)) != PXS_OK)
        goto fail;
    rma_prefault(r);
    /* nobody targets a window before every rank initialised and locked it */
    rc = pxsi_agree(r->comm, pxsi_mpi_err(MPI_Barrier(r->comm), SUBSYS, "MPI_Barrier"));
    if (rc)
        goto fail;
    if (PXSI_LOG_ON(PXSI_LOG_DEBUG)) {
        char osc[200];
        pxsi_win_osc(r->data_win, osc, sizeof osc);
        PXSI_DEBUG(SUBSYS,
                   "store %016llx: arena %llu B, %u slots, mode %s, shm %d, claim words %s, "
                   "%d rank(s) on this node of %d, chunk %zu, lend %d, %s",
                   (unsigned long long)nonce, (unsigned long long)r->cap, r->nslots,
                   mode_name(r->mode), r->shm_on,
                   r->lmode == PXSI_RMA_L_NODE    ? "node-local"
                   : r->lmode == PXSI_RMA_L_MIXED ? "node-local + MPI"
                                                  : "MPI", r->nsize, r->size, r->chunk, r->lend, osc);
    }
    *out = r;
    return PXS_OK;

fail:
    /* the one cleanup: every step left only what every rank has */
    pxsi_rma_free_all(r);
    return rc;
}
