/* mpi.store.ucx_nothread: the UCX connector with its progress thread off
 * (opts.progress_thread = 0): peers' resolves complete while the owner is
 * inside library calls (pxs_store_progress), and every byte is right. Each
 * rank in turn owns objects that all others resolve while it polls
 * pxs_store_progress and MPI_Test on a non-blocking barrier (never a plain
 * MPI collective while a peer may need it: that would wait forever, see
 * docs/DESIGN.md, section "UCX connector"). */
#include "pxs_test_ucx.h"

int
main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    pxs_store_t *st = pxs_test_ucx_store_nothread();
    enum { N = 20, LEN = 100000 };
    static unsigned char b[LEN];
    for (int owner = 0; owner < size; owner++) {
        pxs_proxy_t p[N];
        if (rank == owner) {
            pxs_put_opts_t po;
            CHECK_OK(pxs_put_opts_init(&po));
            po.resolves = (uint32_t)(size - 1);
            for (int i = 0; i < N; i++) {
                pxs_test_fill(b, LEN, (uint64_t)owner * 100 + (uint64_t)i);
                CHECK_OK(pxs_store_put(st, b, LEN, &po, &p[i]));
            }
        }
        MPI_Bcast(p, (int)sizeof p, MPI_BYTE, owner, MPI_COMM_WORLD);
        if (rank != owner) {
            for (int i = 0; i < N; i++) {
                size_t len = 0;
                CHECK_OK(pxs_store_resolve(st, &p[i], b, LEN, &len));
                CHECK(len == LEN && pxs_test_verify(b, LEN, (uint64_t)owner * 100 + (uint64_t)i));
            }
        }
        pxs_test_serve_until_all_done(st); /* everyone serves: the owner's words */
        if (rank == owner) {      /* every budget spent: all reclaimed */
            size_t used = 1;
            CHECK_OK(pxs_store_used(st, &used, NULL));
            CHECK(used == 0);
        }
    }
    CHECK_OK(pxs_store_destroy(st));
    if (rank == 0)
        printf("store ucx no progress thread OK (%d ranks)\n", size);
    MPI_Finalize();
    return 0;
}
