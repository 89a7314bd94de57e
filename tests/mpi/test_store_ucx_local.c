/* mpi.store.ucx_local: the UCX connector's node-local claim words and its
 * get path, with the progress thread off (opts.progress_thread = 0).
 * Rank 0 owns NOBJ kept objects and NB objects with a budget of one
 * resolve per reader, and evicts object 0 before anyone resolves.
 *  - Same node (UCX's default transports: the SHM path): rank 0 then sits
 *    in a plain MPI_Barrier, calling no library function, while every
 *    other rank resolves the kept objects (every byte checked), takes and
 *    releases a zero-copy view, and gets PXS_ERR_STALE for the evicted
 *    one: a same-node resolve of a kept object needs no owner progress.
 *  - Get path (UCX_TLS=tcp: no rkey_ptr): the same resolves while rank 0
 *    serves from pxs_store_progress (the network path needs its progress).
 * Then the budget objects are resolved (the budget word is UCX's on both
 * paths: rank 0 serves), rank 0 evicts the kept objects and polls
 * pxs_store_used until the arena is empty: every claim, including the
 * unclaims the get path posts without waiting, was given back. */
#include <time.h>

#include "pxs_test_ucx.h"
#include "store/store_int.h"

enum { NOBJ = 8, NB = 4, LEN = 70000 };

int
main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    pxs_store_t *st = pxs_test_ucx_store_nothread();
    static unsigned char b[LEN];
    pxs_proxy_t p[NOBJ], pb[NB];
    if (rank == 0) {
        pxs_put_opts_t po;
        CHECK_OK(pxs_put_opts_init(&po));
        po.resolves = 0; /* kept */
        for (int i = 0; i < NOBJ; i++) {
            pxs_test_fill(b, LEN, 100 + (uint64_t)i);
            CHECK_OK(pxs_store_put(st, b, LEN, &po, &p[i]));
        }
        po.resolves = (uint32_t)(size - 1);
        for (int i = 0; i < NB; i++) {
            pxs_test_fill(b, LEN, 200 + (uint64_t)i);
            CHECK_OK(pxs_store_put(st, b, LEN, &po, &pb[i]));
        }
        CHECK_OK(pxs_store_evict(st, &p[0])); /* gone before anyone looks */
    }
    MPI_Bcast(p, (int)sizeof p, MPI_BYTE, 0, MPI_COMM_WORLD);
    MPI_Bcast(pb, (int)sizeof pb, MPI_BYTE, 0, MPI_COMM_WORLD);
    /* the path must be the same everywhere for the owner's choice below */
    int path = rank == 0 ? PXSI_PATH_SELF : pxsi_store_path(st, 0);
    int shm = path == PXSI_PATH_SHM, all_shm = 0;
    MPI_Allreduce(rank == 0 ? &(int){1} : &shm, &all_shm, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (rank != 0) {
        size_t len = 0;
        for (int rep = 0; rep < 3; rep++) {
            for (int i = 1; i < NOBJ; i++) {
                memset(b, 0, LEN);
                CHECK_OK(pxs_store_resolve(st, &p[i], b, LEN, &len));
                CHECK(len == LEN && pxs_test_verify(b, LEN, 100 + (uint64_t)i));
            }
            CHECK_RC(pxs_store_resolve(st, &p[0], b, LEN, &len), PXS_ERR_STALE);
        }
        pxs_view_t v;
        CHECK_OK(pxs_store_view(st, &p[1], &v));
        CHECK(v.len == LEN && pxs_test_verify(v.data, v.len, 101));
        CHECK_OK(pxs_store_release(st, &v));
        CHECK_RC(pxs_store_view(st, &p[0], &v), PXS_ERR_STALE);
    }
    if (all_shm)
        MPI_Barrier(MPI_COMM_WORLD); /* the owner calls nothing of ours */
    else
        pxs_test_serve_until_all_done(st);
    if (rank != 0) { /* budget objects: the UCX budget word, owner serving */
        for (int i = 0; i < NB; i++) {
            size_t len = 0;
            CHECK_OK(pxs_store_resolve(st, &pb[i], b, LEN, &len));
            CHECK(len == LEN && pxs_test_verify(b, LEN, 200 + (uint64_t)i));
        }
    }
    pxs_test_serve_until_all_done(st);
    if (rank == 0) {
        for (int i = 1; i < NOBJ; i++)
            CHECK_OK(pxs_store_evict(st, &p[i]));
        size_t used = 1;
        for (int k = 0; k < 100000 && used; k++) { /* claims drain; no timing */
            CHECK_OK(pxs_store_used(st, &used, NULL));
            if (used) {
                struct timespec ts = {0, 1000000};
                nanosleep(&ts, NULL);
            }
        }
        CHECK(used == 0);
    }
    pxs_test_serve_until_all_done(st);
    CHECK_OK(pxs_store_destroy(st));
    if (rank == 0)
        printf("store ucx local OK (%d ranks, %s)\n", size,
               all_shm ? "node-local words, owner idle" : "get path, owner serving");
    MPI_Finalize();
    return 0;
}
