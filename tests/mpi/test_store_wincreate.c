/* Store creation across nodes: osc/rdma and osc/sm cannot create a window
 * spanning TCP nodes. pxs_store_create must then return PXS_ERR_MPI on every
 * rank (no abort, no hang) with the remedy (--mca osc ucx / pt2pt) in the
 * detail, and MPI must stay usable; on one node, or with osc ucx / pt2pt, it
 * must succeed and a resolve across the store must work. */
#include <stdlib.h>

#include "pxs_test.h"

int
main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, size, nsize;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    MPI_Comm node;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
    MPI_Comm_size(node, &nsize);
    MPI_Comm_free(&node);
    int multi = nsize < size;
    const char *osc = getenv("OMPI_MCA_osc");
    int must_fail = multi && osc && (strstr(osc, "rdma") || strcmp(osc, "sm") == 0);

    for (int shm = -1; shm <= 0; shm++) {
        pxs_store_opts_t so;
        CHECK_OK(pxs_store_opts_init(&so));
        so.arena_bytes = 1 << 20;
        so.shm = shm;
        pxs_store_t *st = NULL;
        int rc = pxs_store_create(MPI_COMM_WORLD, &so, &st);
        if (rank == 0)
            printf("multi-node %d osc %s shm %d: pxs_store_create -> %s (%s)\n", multi,
                   osc ? osc : "(default)", shm, pxs_errname(rc),
                   rc < 0 ? pxs_last_error_detail() : "");
        if (must_fail || rc == PXS_ERR_MPI) {
            CHECK(multi);
            CHECK_RC(rc, PXS_ERR_MPI);
            CHECK(st == NULL);
            CHECK(strstr(pxs_last_error_detail(), "--mca osc") != NULL);
            CHECK(strstr(pxs_last_error_detail(), "ucx") != NULL);
            int x = 1, y = 0; /* MPI still usable */
            MPI_Allreduce(&x, &y, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
            CHECK(y == size);
            continue;
        }
        CHECK_OK(rc);
        unsigned char data[4096], buf[4096];
        pxs_test_fill(data, sizeof data, 9);
        pxs_proxy_t p;
        if (rank == 0)
            CHECK_OK(pxs_store_put(st, data, sizeof data, NULL, &p));
        MPI_Bcast(&p, 64, MPI_BYTE, 0, MPI_COMM_WORLD);
        if (rank == size - 1) {
            size_t len = 0;
            CHECK_OK(pxs_store_resolve(st, &p, buf, sizeof buf, &len));
            CHECK(len == sizeof data && memcmp(buf, data, len) == 0);
        }
        MPI_Barrier(MPI_COMM_WORLD);
        CHECK_OK(pxs_store_destroy(st));
    }
    MPI_Finalize();
    return 0;
}
