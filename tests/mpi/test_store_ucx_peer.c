/* mpi.store.ucx_peer: a UCX store whose owner process dies. Rank 1 puts a
 * kept object and exits without MPI_Finalize (run with
 * orte_allowed_exit_without_sync so the job survives it); rank 0's resolve
 * of that object then fails with PXS_ERR_PEER naming the rank, within a
 * bounded time, instead of hanging or returning bytes. Rank 0 leaves with
 * _exit too (a collective destroy cannot complete without rank 1). On the
 * same node a kept object is claimed on the node-local words: its bytes
 * stay right (the memory stays mapped) until UCX reports the endpoint
 * failed; an object with a budget (UCX word) fails at once. */
#include <unistd.h>

#include "pxs_test.h"
#include "store/store_int.h"

int
main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    CHECK(size == 2);
    pxs_store_opts_t so;
    CHECK_OK(pxs_store_opts_init(&so));
    so.connector = PXS_CONN_UCX;
    so.arena_bytes = 1 << 20;
    pxs_store_t *st = NULL;
    CHECK_OK(pxs_store_create(MPI_COMM_WORLD, &so, &st));
    unsigned char b[4096];
    pxs_proxy_t p, pb; /* kept; with a budget */
    if (rank == 1) {
        pxs_test_fill(b, sizeof b, 5);
        pxs_put_opts_t po;
        CHECK_OK(pxs_put_opts_init(&po));
        po.resolves = 0;
        CHECK_OK(pxs_store_put(st, b, sizeof b, &po, &p));
        po.resolves = 5;
        CHECK_OK(pxs_store_put(st, b, sizeof b, &po, &pb));
    }
    MPI_Bcast(&p, sizeof p, MPI_BYTE, 1, MPI_COMM_WORLD);
    MPI_Bcast(&pb, sizeof pb, MPI_BYTE, 1, MPI_COMM_WORLD);
    /* same node by default: the node-local claim words (no UCX operation
     * for a kept object) */
    int local = pxsi_store_path(st, 1) == PXSI_PATH_SHM;
    size_t len = 0;
    if (rank == 0) { /* alive: the bytes */
        CHECK_OK(pxs_store_resolve(st, &p, b, sizeof b, &len));
        CHECK(len == sizeof b && pxs_test_verify(b, len, 5));
    }
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 1)
        _exit(0); /* dies: its memory and endpoints go away */
    sleep(2);     /* rank 1 is gone by now */
    double t0 = MPI_Wtime();
    int rc = PXS_OK;
    /* the budget word is UCX's: the dead owner is PXS_ERR_PEER at once */
    for (int i = 0; i < 50 && rc == PXS_OK;
         i++) /* the first failure, at the latest */
        rc = pxs_store_resolve(st, &pb, b, sizeof b, &len);
    double dt = MPI_Wtime() - t0;
    CHECK_RC(rc, PXS_ERR_PEER);
    CHECK(strstr(pxs_last_error_detail(), "rank 1") != NULL);
    /* the kept object: over the network PXS_ERR_PEER; on the same node
     * the memory stays mapped while we map it, so the node-local path
     * gives the right bytes until UCX reported the endpoint's failure
     * (then PXS_ERR_PEER): never wrong bytes, never a hang */
    for (int i = 0; i < 50; i++) {
        memset(b, 0, sizeof b);
        rc = pxs_store_resolve(st, &p, b, sizeof b, &len);
        if (rc != PXS_OK || !local)
            break;
        CHECK(len == sizeof b && pxs_test_verify(b, len, 5));
    }
    if (!local || rc != PXS_OK)
        CHECK_RC(rc, PXS_ERR_PEER);
    CHECK(strstr(pxs_last_error_detail(), "rank 1") != NULL);
    printf("store ucx peer OK: %s after %.2f s (%s)\n", pxs_errname(rc), dt,
           pxs_last_error_detail());
    fflush(stdout);
    _exit(0);
}
