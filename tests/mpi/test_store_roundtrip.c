/* Store round trip over real ranks: every size class from 0 bytes to 64 MiB,
 * each object resolved (content-verified) by every other rank; a store with a
 * tiny get chunk so chunked gets run; async resolves with several outstanding;
 * view/release; checksum mismatch; and the path check: the same-node path is
 * taken exactly for same-node owners when shared memory is on (PXS_SHM). */
#include <stdlib.h>

#include "pxs_test.h"
#include "store/store_int.h"

static int rank, size;
static MPI_Comm node;
static int nrank_of_world[64];

static uint64_t
seed_of(int owner, int i)
{
    return (uint64_t)owner * 1000003u + (uint64_t)i * 7919u + 11u;
}

/* Each rank puts objects of `sizes`, budget size-1; everyone else resolves. */
static void
roundtrip(pxs_store_t *st, const size_t *sizes, int n, int checksum, int async)
{
    pxs_proxy_t *mine = calloc((size_t)n, sizeof *mine);
    pxs_proxy_t *all = calloc((size_t)n * (size_t)size, sizeof *all);
    size_t maxs = 0;
    for (int i = 0; i < n; i++) {
        if (sizes[i] > maxs)
            maxs = sizes[i];
        unsigned char *b = malloc(sizes[i] ? sizes[i] : 1);
        pxs_test_fill(b, sizes[i], seed_of(rank, i));
        pxs_put_opts_t po;
        CHECK_OK(pxs_put_opts_init(&po));
        po.resolves = (uint32_t)(size - 1);
        po.checksum = checksum;
        po.seq = (uint64_t)i;
        CHECK_OK(pxs_store_put(st, b, sizes[i], &po, &mine[i]));
        free(b);
    }
    MPI_Allgather(mine, n * 64, MPI_BYTE, all, n * 64, MPI_BYTE, MPI_COMM_WORLD);
    enum { NOUT = 4 };
    unsigned char *bufs[NOUT];
    /* page-aligned buffers with room for a misaligned destination (offset
     * 0, 16 or 4095: the head + aligned bulk split of remote reads) and a
     * guard after it */
    enum { ROOM = 8192, GUARD = 64 };
    for (int k = 0; k < NOUT; k++)
        CHECK(posix_memalign((void **)&bufs[k], 4096, maxs + ROOM) == 0);
    static const size_t mis_of[3] = {0, 16, 4095};
    for (int d = 1; d < size; d++) {
        int o = (rank + d) % size;
        if (!async) {
            for (int i = 0; i < n; i++) {
                size_t len = 77, mis = mis_of[(i + d) % 3];
                if ((i + d) % 4 == 3) {
                    /* resolve_alloc hands out page-aligned memory */
                    void *m = NULL;
                    CHECK_OK(pxs_store_resolve_alloc(st, &all[o * n + i], &m, &len));
                    CHECK(((uintptr_t)m & 4095u) == 0);
                    CHECK(len == sizes[i]);
                    CHECK(pxs_test_verify(m, len, seed_of(o, i)));
                    pxs_free(m);
                    continue;
                }
                unsigned char *dst = bufs[0] + mis;
                memset(dst + sizes[i], 0xEE, GUARD);
                if (mis)
                    memset(bufs[0], 0xEE, mis);
                CHECK_OK(pxs_store_resolve(st, &all[o * n + i], dst, maxs, &len));
                CHECK(len == sizes[i]);
                CHECK(pxs_test_verify(dst, len, seed_of(o, i)));
                for (size_t g = 0; g < GUARD; g++)
                    CHECK(dst[sizes[i] + g] == 0xEE); /* nothing written past the object */
                for (size_t g = 0; g < mis; g++)
                    CHECK(bufs[0][g] == 0xEE); /* nor before the destination */
            }
            continue;
        }
        for (int i0 = 0; i0 < n; i0 += NOUT) {
            pxs_request_t *rq[NOUT] = {0};
            int m = n - i0 < NOUT ? n - i0 : NOUT;
            for (int k = 0; k < m; k++)
                CHECK_OK(pxs_store_resolve_start(st, &all[o * n + i0 + k],
                                                 bufs[k] + mis_of[(i0 + k + d) % 3], maxs,
                                                 &rq[k]));
            for (int k = m - 1; k >= 0; k--) {
                size_t len = 0;
                if (k % 2) {
                    int done = 0;
                    while (!done)
                        CHECK_OK(pxs_store_resolve_test(rq[k], &done, &len));
                } else {
                    CHECK_OK(pxs_store_resolve_wait(rq[k], &len));
                }
                CHECK(len == sizes[i0 + k]);
                CHECK(pxs_test_verify(bufs[k] + mis_of[(i0 + k + d) % 3], len, seed_of(o, i0 + k)));
            }
        }
    }
    MPI_Barrier(MPI_COMM_WORLD);
    /* budgets used up: every object is reclaimed, arena empty */
    size_t used = 1, cap = 0;
    CHECK_OK(pxs_store_used(st, &used, &cap));
    CHECK(used == 0);
    /* (a stale resolve pins a slot for a moment: not during used() above) */
    MPI_Barrier(MPI_COMM_WORLD);
    /* and a further resolve is stale */
    if (size > 1 && n > 0) {
        int o = (rank + 1) % size;
        CHECK_RC(pxs_store_resolve(st, &all[o * n], bufs[0], maxs, NULL), PXS_ERR_STALE);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    for (int k = 0; k < NOUT; k++)
        free(bufs[k]);
    free(mine);
    free(all);
}

static void
check_paths(pxs_store_t *st, int shm_expected)
{
    for (int o = 0; o < size; o++) {
        int p = pxsi_store_path(st, o);
        if (o == rank)
            CHECK(p == PXSI_PATH_SELF);
        else if (shm_expected && nrank_of_world[o] >= 0)
            CHECK(p == PXSI_PATH_SHM);
        else
            CHECK(p == PXSI_PATH_RMA);
    }
}

int
main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    CHECK(size <= 64);
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node);
    {
        int nsz;
        MPI_Comm_size(node, &nsz);
        int wr[64], nr[64];
        MPI_Group gn, gw;
        MPI_Comm_group(node, &gn);
        MPI_Comm_group(MPI_COMM_WORLD, &gw);
        for (int i = 0; i < size; i++)
            wr[i] = i;
        MPI_Group_translate_ranks(gw, size, wr, gn, nr);
        for (int i = 0; i < size; i++)
            nrank_of_world[i] = nr[i] == MPI_UNDEFINED ? -1 : nr[i];
        MPI_Group_free(&gn);
        MPI_Group_free(&gw);
    }
    int shm = pxs_test_shm_expected();
    int nnodes_local = nrank_of_world[rank] == 0, nnodes = 0;
    MPI_Allreduce(&nnodes_local, &nnodes, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);

    /* ---- store 1: every size class, up to 64 MiB (one object) */
    pxs_store_opts_t so;
    CHECK_OK(pxs_store_opts_init(&so));
    so.connector = pxs_test_connector();
    so.arena_bytes = (size_t)80 << 20;
    so.put_timeout = 5;
    pxs_store_t *st = NULL;
    CHECK_OK(pxs_store_create(MPI_COMM_WORLD, &so, &st));
    CHECK(pxs_store_rank(st) == rank);

    check_paths(st, shm);

    static const size_t classes[] = {0, 1, 7, 63, 64, 65, 1000, 4096, 65536 + 3, 1 << 20,
                                     (4 << 20) + 5, 16 << 20};
    int ncls = (int)(sizeof classes / sizeof classes[0]);
    pxsi_store_stats_t s0, s1;
    CHECK_OK(pxsi_store_stats(st, &s0));
    roundtrip(st, classes, ncls, 0, 0);
    CHECK_OK(pxsi_store_stats(st, &s1));
    /* the paths actually taken match the expectation */
    {
        int same = 0, other = 0;
        for (int o = 0; o < size; o++)
            if (o != rank) {
                if (shm && nrank_of_world[o] >= 0)
                    same++;
                else
                    other++;
            }
        CHECK(s1.resolves_shm - s0.resolves_shm == (uint64_t)(same * ncls));
        CHECK(s1.resolves_rma - s0.resolves_rma == (uint64_t)(other * ncls));
        /* the claim words (docs/DESIGN.md, section "Node-local claim words"):
         * same-node claims on node-local words, others with MPI atomics;
         * with PXS_TEST_LOCAL_CTL_FAIL (one rank refused its segment) every
         * rank falls back to MPI atomics for every claim */
        if (pxs_test_connector() == PXS_CONN_RMA) {
            int refused = getenv("PXS_TEST_LOCAL_CTL_FAIL") != NULL;
            uint64_t loc = s1.claims_local - s0.claims_local, mpi = s1.claims_mpi - s0.claims_mpi;
            /* + the stale resolve at the end of roundtrip (owner rank + 1) */
            int o1 = (rank + 1) % size, o1_same = shm && nrank_of_world[o1] >= 0;
            uint64_t want_loc = refused ? 0 : (uint64_t)(same * ncls + o1_same);
            CHECK(loc == want_loc);
            CHECK(mpi == (uint64_t)((same + other) * ncls + 1) - want_loc);
        }
    }
    /* one 64 MiB object, from rank 0, resolved by everyone else */
    {
        size_t big = (size_t)64 << 20;
        unsigned char *b = malloc(big);
        pxs_proxy_t p;
        if (rank == 0) {
            pxs_test_fill(b, big, 64);
            pxs_put_opts_t po;
            CHECK_OK(pxs_put_opts_init(&po));
            po.resolves = (uint32_t)(size - 1);
            CHECK_OK(pxs_store_put(st, b, big, &po, &p));
        }
        MPI_Bcast(&p, 64, MPI_BYTE, 0, MPI_COMM_WORLD);
        if (rank != 0) {
            size_t len = 0;
            memset(b, 0, big);
            CHECK_OK(pxs_store_resolve(st, &p, b, big, &len));
            CHECK(len == big && pxs_test_verify(b, big, 64));
        }
        MPI_Barrier(MPI_COMM_WORLD);
        size_t used = 1;
        CHECK_OK(pxs_store_used(st, &used, NULL));
        CHECK(used == 0);
        free(b);
    }
    (void)nnodes;
    CHECK_OK(pxs_store_destroy(st));

    /* ---- store 2: tiny get chunk (chunking), checksums, async */
    CHECK_OK(pxs_store_opts_init(&so));
    so.connector = pxs_test_connector();
    so.arena_bytes = (size_t)16 << 20;
    so.get_chunk = 4096;
    so.put_timeout = 5;
    CHECK_OK(pxs_store_create(MPI_COMM_WORLD, &so, &st));
    static const size_t mid[] = {0, 100, 4096, 4097, 65536, (1 << 20) + 13, 3 << 20};
    int nmid = (int)(sizeof mid / sizeof mid[0]);
    CHECK_OK(pxsi_store_stats(st, &s0));
    roundtrip(st, mid, nmid, 1, 0);
    CHECK_OK(pxsi_store_stats(st, &s1));
    if (s1.resolves_rma > s0.resolves_rma) /* chunked: many gets per resolve */
        CHECK(s1.gets - s0.gets > s1.resolves_rma - s0.resolves_rma);
    roundtrip(st, mid, nmid, 0, 1); /* async, 4 outstanding */
    roundtrip(st, mid, nmid, 1, 1);

    /* view / release: zero copy on the same node, a copy otherwise */
    {
        unsigned char b[5000];
        pxs_test_fill(b, sizeof b, 4242u + (unsigned)rank);
        pxs_put_opts_t po;
        CHECK_OK(pxs_put_opts_init(&po));
        po.resolves = (uint32_t)(size - 1);
        pxs_proxy_t p, *all = calloc((size_t)size, sizeof *all);
        CHECK_OK(pxs_store_put(st, b, sizeof b, &po, &p));
        MPI_Allgather(&p, 64, MPI_BYTE, all, 64, MPI_BYTE, MPI_COMM_WORLD);
        pxs_view_t *v = calloc((size_t)size, sizeof *v);
        CHECK_OK(pxsi_store_stats(st, &s0));
        for (int o = 0; o < size; o++) {
            if (o == rank)
                continue;
            CHECK_OK(pxs_store_view(st, &all[o], &v[o]));
            CHECK(v[o].len == sizeof b);
            CHECK(pxs_test_verify(v[o].data, v[o].len, 4242u + (unsigned)o));
        }
        /* views outstanding: destroy is refused on every rank */
        CHECK_RC(pxs_store_destroy(st), PXS_ERR_BUSY);
        MPI_Barrier(MPI_COMM_WORLD);
        /* the owner cannot reclaim while views are held: bytes stay */
        CHECK_OK(pxs_store_progress(st));
        MPI_Barrier(MPI_COMM_WORLD);
        for (int o = 0; o < size; o++) {
            if (o == rank)
                continue;
            CHECK(pxs_test_verify(v[o].data, v[o].len, 4242u + (unsigned)o));
            if (pxsi_store_path(st, o) == PXSI_PATH_SHM) /* zero copy: points into the arena */
                CHECK(1);
            CHECK_OK(pxs_store_release(st, &v[o]));
            CHECK_RC(pxs_store_release(st, &v[o]), PXS_ERR_INVALID);
        }
        CHECK_OK(pxsi_store_stats(st, &s1));
        CHECK(s1.views_zero_copy + s1.views_copied - s0.views_zero_copy - s0.views_copied ==
              (uint64_t)(size - 1));
        MPI_Barrier(MPI_COMM_WORLD);
        size_t used = 1;
        CHECK_OK(pxs_store_used(st, &used, NULL));
        CHECK(used == 0);
        free(v);
        free(all);
    }

    /* checksum mismatch: corrupt one arena byte on purpose */
    {
        unsigned char b[3000];
        pxs_test_fill(b, sizeof b, 99);
        pxs_put_opts_t po;
        CHECK_OK(pxs_put_opts_init(&po));
        po.resolves = 0;
        po.checksum = 1;
        pxs_proxy_t p, q;
        pxs_proxy_info_t pi;
        CHECK_OK(pxs_store_put(st, b, sizeof b, &po, &p));
        CHECK_OK(pxs_proxy_decode(p.bytes, 64, &pi));
        q = p;
        MPI_Bcast(&q, 64, MPI_BYTE, 0, MPI_COMM_WORLD);
        unsigned char out[3000];
        size_t len = 0;
        CHECK_OK(pxs_store_resolve(st, &q, out, sizeof out, &len));
        CHECK(pxs_test_verify(out, len, 99));
        MPI_Barrier(MPI_COMM_WORLD);
        if (rank == 0)
            CHECK_OK(pxsi_store_test_corrupt(st, pi.offset + 1234));
        MPI_Barrier(MPI_COMM_WORLD);
        CHECK_RC(pxs_store_resolve(st, &q, out, sizeof out, &len), PXS_ERR_CORRUPT);
        pxs_view_t v;
        CHECK_RC(pxs_store_view(st, &q, &v), PXS_ERR_CORRUPT);
        pxs_request_t *rq = NULL;
        int rc = pxs_store_resolve_start(st, &q, out, sizeof out, &rq);
        if (rc == PXS_OK)
            rc = pxs_store_resolve_wait(rq, &len);
        CHECK_RC(rc, PXS_ERR_CORRUPT);
        MPI_Barrier(MPI_COMM_WORLD);
        CHECK_OK(pxs_store_evict(st, &p));
        CHECK_RC(pxs_store_evict(st, &p), PXS_ERR_STALE);
        MPI_Barrier(MPI_COMM_WORLD);
    }
    CHECK_OK(pxs_store_destroy(st));
    CHECK_OK(pxs_store_destroy(NULL));
    MPI_Comm_free(&node);
    if (rank == 0)
        printf("store roundtrip OK (%d ranks, %d nodes, shm %d)\n", size, nnodes, shm);
    MPI_Finalize();
    return 0;
}
