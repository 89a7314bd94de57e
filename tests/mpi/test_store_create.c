/* Store creation and handle lifetime over real ranks:
 *  - arguments that differ between ranks (rank 0 passes store_out = NULL, or
 *    asks for the local connector while the others ask for RMA, or a bad
 *    option): every rank gets PXS_ERR_INVALID, none hangs;
 *  - the store keeps its own communicator: created on a communicator from
 *    MPI_Comm_split that is freed at once, it still resolves, reclaims and
 *    destroys (collectively) without it;
 *  - views: releasing a view twice, or a copy of a released view, is
 *    PXS_ERR_INVALID and changes nothing, for zero-copy (same node) and
 *    copied (shm off / other node) views: the object stays resolvable, is
 *    reclaimed once the owner evicts it, and destroy is not BUSY. */
#include <stdlib.h>

#include "pxs_test.h"
#include "store/store_int.h"

static int rank, size;

static void
mismatched_arguments(void)
{
    pxs_store_opts_t so;
    CHECK_OK(pxs_store_opts_init(&so));
    so.connector = pxs_test_connector();
    pxs_store_t *st = NULL;
    /* rank 0: store_out NULL; the others: valid */
    CHECK_RC(pxs_store_create(MPI_COMM_WORLD, &so, rank == 0 ? NULL : &st), PXS_ERR_INVALID);
    CHECK(st == NULL);
    /* the last rank: local connector on a multi-rank communicator */
    if (size > 1) {
        pxs_store_opts_t lo;
        CHECK_OK(pxs_store_opts_init(&lo));
        if (rank == size - 1)
            lo.connector = PXS_CONN_LOCAL;
        CHECK_RC(pxs_store_create(MPI_COMM_WORLD, &lo, &st), PXS_ERR_INVALID);
        CHECK(st == NULL);
    }
    /* one rank with a bad option */
    CHECK_OK(pxs_store_opts_init(&so));
    so.connector = pxs_test_connector();
    if (rank == size / 2)
        so.shm = 5;
    CHECK_RC(pxs_store_create(MPI_COMM_WORLD, &so, &st), PXS_ERR_INVALID);
    CHECK(st == NULL);
    /* and afterwards a good create works (nobody was left behind) */
    CHECK_OK(pxs_store_opts_init(&so));
    so.connector = pxs_test_connector();
    so.arena_bytes = 1 << 20;
    CHECK_OK(pxs_store_create(MPI_COMM_WORLD, &so, &st));
    CHECK_OK(pxs_store_destroy(st));
}

static void
freed_communicator(void)
{
    /* ranks 0 and size-1 (two nodes in the two-node runs); no singleton:
     * osc/rdma refuses windows on a one-rank communicator */
    int in = rank == 0 || rank == size - 1;
    MPI_Comm sub;
    MPI_Comm_split(MPI_COMM_WORLD, in ? 0 : MPI_UNDEFINED, rank, &sub);
    pxs_store_t *st = NULL;
    int subsize = 0;
    if (in) {
        MPI_Comm_size(sub, &subsize);
        pxs_store_opts_t so;
        CHECK_OK(pxs_store_opts_init(&so));
        so.connector = pxs_test_connector();
        so.arena_bytes = 1 << 20;
        CHECK_OK(pxs_store_create(sub, &so, &st));
        MPI_Comm_free(&sub); /* the store must not need it any more */
        CHECK(sub == MPI_COMM_NULL);
    }
    int srank = in ? pxs_store_rank(st) : -1;
    CHECK(!in || (srank >= 0 && srank < subsize));
    unsigned char data[5000];
    pxs_test_fill(data, sizeof data, (uint64_t)rank + 500);
    pxs_put_opts_t po;
    CHECK_OK(pxs_put_opts_init(&po));
    po.resolves = subsize > 1 ? (uint32_t)(subsize - 1) : 1;
    pxs_proxy_t mine;
    memset(&mine, 0, sizeof mine);
    if (in)
        CHECK_OK(pxs_store_put(st, data, sizeof data, &po, &mine));
    pxs_proxy_t *all = calloc((size_t)size, sizeof *all);
    MPI_Allgather(&mine, 64, MPI_BYTE, all, 64, MPI_BYTE, MPI_COMM_WORLD);
    unsigned char buf[5000];
    if (in) {
        for (int q = 0; q < size; q++) {
            if (q == rank || !(q == 0 || q == size - 1))
                continue;
            size_t len = 0;
            CHECK_OK(pxs_store_resolve(st, &all[q], buf, sizeof buf, &len));
            CHECK(len == sizeof buf && pxs_test_verify(buf, len, (uint64_t)q + 500));
            CHECK_RC(pxs_store_resolve(st, &all[q], buf, sizeof buf, &len), PXS_ERR_STALE);
        }
    }
    MPI_Barrier(MPI_COMM_WORLD);
    if (in) {
        size_t used = 1;
        CHECK_OK(pxs_store_used(st, &used, NULL));
        CHECK(used == 0);
        /* an async resolve and a view still work without the user's comm */
        pxs_proxy_t k;
        pxs_put_opts_t ko;
        CHECK_OK(pxs_put_opts_init(&ko));
        ko.resolves = 0;
        CHECK_OK(pxs_store_put(st, data, sizeof data, &ko, &k));
        pxs_view_t v;
        CHECK_OK(pxs_store_view(st, &k, &v));
        CHECK(v.len == sizeof data && memcmp(v.data, data, v.len) == 0);
        CHECK_OK(pxs_store_release(st, &v));
        CHECK_OK(pxs_store_evict(st, &k));
        CHECK_OK(pxs_store_destroy(st)); /* collective, on the store's own comm */
    }
    free(all);
    MPI_Barrier(MPI_COMM_WORLD);
}

static void
view_double_release(int shm)
{
    pxs_store_opts_t so;
    CHECK_OK(pxs_store_opts_init(&so));
    so.connector = pxs_test_connector();
    so.arena_bytes = 1 << 20;
    so.shm = shm;
    pxs_store_t *st = NULL;
    CHECK_OK(pxs_store_create(MPI_COMM_WORLD, &so, &st));
    unsigned char data[3000];
    pxs_test_fill(data, sizeof data, 42);
    pxs_put_opts_t po;
    CHECK_OK(pxs_put_opts_init(&po));
    po.resolves = 0; /* keep: every rank views it many times */
    pxs_proxy_t p;
    if (rank == 0)
        CHECK_OK(pxs_store_put(st, data, sizeof data, &po, &p));
    MPI_Bcast(&p, 64, MPI_BYTE, 0, MPI_COMM_WORLD);

    for (int round = 0; round < 3; round++) {
        pxs_view_t v, c, v2;
        CHECK_OK(pxs_store_view(st, &p, &v));
        CHECK(v.len == sizeof data && memcmp(v.data, data, v.len) == 0);
        c = v; /* a copy of the live view */
        CHECK_OK(pxs_store_view(st, &p, &v2));
        CHECK_RC(pxs_store_destroy(st), PXS_ERR_BUSY); /* every rank holds views */
        CHECK_OK(pxs_store_release(st, &v));
        CHECK(v.data == NULL && v.len == 0);
        CHECK_RC(pxs_store_release(st, &v), PXS_ERR_INVALID);  /* twice */
        CHECK_RC(pxs_store_release(st, &c), PXS_ERR_INVALID);  /* its copy */
        CHECK(c.data != NULL); /* untouched by the refused release */
        pxs_view_t c2 = v2;
        CHECK_OK(pxs_store_release(st, &c2)); /* a copy may end a live view once */
        CHECK_RC(pxs_store_release(st, &v2), PXS_ERR_INVALID);
        CHECK_RC(pxs_store_release(st, &c2), PXS_ERR_INVALID);
        /* still intact: resolvable, same bytes */
        unsigned char buf[3000];
        size_t len = 0;
        CHECK_OK(pxs_store_resolve(st, &p, buf, sizeof buf, &len));
        CHECK(len == sizeof data && memcmp(buf, data, len) == 0);
    }
    pxsi_store_stats_t stats;
    CHECK_OK(pxsi_store_stats(st, &stats));
    if (rank != 0 && (shm == 0 || pxsi_store_path(st, 0) == PXSI_PATH_RMA))
        CHECK(stats.views_copied >= 6 && stats.views_zero_copy == 0);
    else
        CHECK(stats.views_zero_copy >= 6 && stats.views_copied == 0);
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 0) {
        /* the claims were released exactly once: the owner's evict frees it */
        CHECK_OK(pxs_store_evict(st, &p));
        size_t used = 1;
        CHECK_OK(pxs_store_used(st, &used, NULL));
        CHECK(used == 0);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    pxs_view_t v;
    CHECK_RC(pxs_store_view(st, &p, &v), PXS_ERR_STALE);
    CHECK_OK(pxs_store_destroy(st)); /* not BUSY: the view count is right */
}

int
main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    mismatched_arguments();
    freed_communicator();
    view_double_release(-1);
    view_double_release(0);
    if (rank == 0)
        printf("store create OK (%d ranks)\n", size);
    MPI_Finalize();
    return 0;
}
