/* mpi.store.dead_reader: a same-node reader dies holding a claim
 * (docs/DESIGN.md, section "Node-local claim words"). Rank 1 views rank 0's
 * object and exits without releasing it or calling MPI_Finalize (run with
 * orte_allowed_exit_without_sync so the job survives it). Rank 0 then
 * spends the rest of the budget: the object dies (a resolve is STALE, never
 * other bytes), its block is never reused (the dead reader's claim pins it:
 * a leak, never wrong bytes), and later puts and resolves keep working in
 * other blocks. Rank 0 leaves with _exit too (a collective destroy cannot
 * complete without rank 1). */
#include <unistd.h>

#include "pxs_test.h"

#define LEN 4096

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
    so.arena_bytes = 1 << 20;
    so.put_timeout = 0;
    pxs_store_t *st = NULL;
    CHECK_OK(pxs_store_create(MPI_COMM_WORLD, &so, &st));
    unsigned char b[LEN];
    pxs_proxy_t p;
    if (rank == 0) {
        pxs_test_fill(b, sizeof b, 7);
        pxs_put_opts_t po;
        CHECK_OK(pxs_put_opts_init(&po));
        po.resolves = 2;
        CHECK_OK(pxs_store_put(st, b, sizeof b, &po, &p));
    }
    MPI_Bcast(&p, sizeof p, MPI_BYTE, 0, MPI_COMM_WORLD);
    if (rank == 1) {
        pxs_view_t v;
        CHECK_OK(pxs_store_view(st, &p, &v)); /* one unit of the budget, claim held */
        CHECK(v.len == LEN && pxs_test_verify(v.data, v.len, 7));
    }
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 1)
        _exit(0); /* dies holding the view's claim */
    sleep(1);
    pxs_proxy_info_t pi;
    CHECK_OK(pxs_proxy_decode(p.bytes, PXS_PROXY_SIZE, &pi));
    uint32_t dead_slot = (uint32_t)(pi.generation >> 40);
    size_t len = 0;
    CHECK_OK(pxs_store_resolve(st, &p, b, sizeof b, &len)); /* the last unit */
    CHECK(len == LEN && pxs_test_verify(b, len, 7));
    CHECK_RC(pxs_store_resolve(st, &p, b, sizeof b, &len), PXS_ERR_STALE);
    size_t used = 0, cap = 0;
    CHECK_OK(pxs_store_used(st, &used, &cap));
    CHECK(used >= LEN); /* pinned by the dead reader: not freed */
    /* the arena keeps working around it: many put/resolve cycles, none in
     * the pinned slot, every byte right */
    for (int i = 0; i < 2000; i++) {
        pxs_proxy_t q;
        pxs_test_fill(b, sizeof b, 100 + (uint64_t)i);
        CHECK_OK(pxs_store_put(st, b, sizeof b, NULL, &q));
        pxs_proxy_info_t qi;
        CHECK_OK(pxs_proxy_decode(q.bytes, PXS_PROXY_SIZE, &qi));
        CHECK((uint32_t)(qi.generation >> 40) != dead_slot);
        memset(b, 0, sizeof b);
        CHECK_OK(pxs_store_resolve(st, &q, b, sizeof b, &len));
        CHECK(len == LEN && pxs_test_verify(b, len, 100 + (uint64_t)i));
    }
    CHECK_RC(pxs_store_resolve(st, &p, b, sizeof b, &len), PXS_ERR_STALE);
    CHECK_OK(pxs_store_used(st, &used, &cap));
    CHECK(used == (size_t)((LEN + 63) / 64 * 64)); /* only the pinned block */
    printf("store dead reader OK: the pinned block stays (%zu B used), the rest works\n", used);
    fflush(stdout);
    _exit(0);
}
