/* Reserved puts (docs/DESIGN.md, section "Reserved puts"): pxs_store_reserve,
 * pxs_store_commit, pxs_store_cancel over real ranks. Rank 0 reserves,
 * fills and commits; rank 1 views, rank 2 resolves (same node, PXS_SHM=0
 * and two emulated nodes as registered).
 *  - round trip 1 KiB .. 4 MiB (checksum on for one size): in_arena 1 on the
 *    RMA connector, 64 B aligned, bytes checked on both readers; the arena
 *    is empty again afterwards;
 *  - a reserved block is never reclaimed or reused: puts and reclaims
 *    while it is held leave its bytes alone;
 *  - cancel: the arena is empty again;
 *  - bad input: double commit, commit after cancel, cancel after commit, a
 *    copy of an ended reservation, a zeroed one, one of another store, NULL,
 *    size 0 -> PXS_ERR_INVALID with a detail; commit with NULL proxy_out
 *    ends nothing;
 *  - backpressure: an arena full of kept objects -> AGAIN after the timeout
 *    (the detail says "arena full"), TOO_BIG beyond the arena; a free gap
 *    lets the next reserve in;
 *  - destroy with a reservation outstanding frees it.
 * Also run on the UCX connector (PXS_TEST_CONNECTOR=ucx): private buffers
 * (in_arena 0), larger than the arena is still TOO_BIG at reserve, a full
 * arena is AGAIN at the commit's put. */
#include <stdint.h>
#include <stdlib.h>

#include "pxs_test.h"
#include "store/store_int.h"

static int rank, size;

static void
detail_has(const char *what)
{
    if (!strstr(pxs_last_error_detail(), what)) {
        fprintf(stderr, "rank %d: detail \"%s\" lacks \"%s\"\n", rank, pxs_last_error_detail(),
                what);
        CHECK(0);
    }
}

static void
roundtrip(pxs_store_t *st, size_t len, int checksum)
{
    pxs_proxy_t p;
    uint64_t seed = 3000 + len;
    if (rank == 0) {
        pxs_put_opts_t po;
        CHECK_OK(pxs_put_opts_init(&po));
        po.resolves = 2;
        po.checksum = checksum;
        pxs_reservation_t res;
        CHECK_OK(pxs_store_reserve(st, len, &po, &res));
        CHECK(res.data != NULL && res.len == len);
        /* 64 B where the arena is shared memory; a plain MPI_Win_allocate
         * window (PXS_SHM=0) has the MPI library's alignment (store.h) */
        CHECK(((uintptr_t)res.data & 7) == 0);
        if (pxs_test_shm_expected() && pxs_test_connector() == PXS_CONN_RMA)
            CHECK(((uintptr_t)res.data & 63) == 0);
        CHECK(res.in_arena == (pxs_test_connector() == PXS_CONN_RMA));
        pxs_test_fill(res.data, len, seed);
        CHECK_OK(pxs_store_commit(st, &res, &p));
        CHECK(res.data == NULL && res.len == 0);
    }
    MPI_Bcast(&p, (int)sizeof p, MPI_BYTE, 0, MPI_COMM_WORLD);
    if (rank == 1) {
        pxs_view_t v;
        CHECK_OK(pxs_store_view(st, &p, &v));
        CHECK(v.len == len && pxs_test_verify(v.data, v.len, seed));
        CHECK_OK(pxs_store_release(st, &v));
    } else if (rank == 2) {
        void *r = NULL;
        size_t n = 0;
        CHECK_OK(pxs_store_resolve_alloc(st, &p, &r, &n));
        CHECK(n == len && pxs_test_verify(r, n, seed));
        pxs_free(r);
    }
    pxs_test_check_reclaimed(st, rank);
    MPI_Barrier(MPI_COMM_WORLD);
}

/* A held reservation is never reclaimed or reused while puts cycle the
 * arena around it; committed afterwards, it still has its bytes. */
static void
held_block(pxs_store_t *st)
{
    const size_t len = 256 << 10;
    pxs_proxy_t p;
    if (rank == 0) {
        pxs_reservation_t res;
        CHECK_OK(pxs_store_reserve(st, len, NULL, &res));
        pxs_test_fill(res.data, len, 42);
        unsigned char *buf = malloc(len);
        CHECK(buf != NULL);
        for (int i = 0; i < 64; i++) {
            pxs_proxy_t q;
            pxs_test_fill(buf, len, (uint64_t)i);
            CHECK_OK(pxs_store_put(st, buf, len, NULL, &q));
            CHECK_OK(pxs_store_resolve(st, &q, buf, len, NULL)); /* budget 1: dead */
            CHECK_OK(pxs_store_progress(st));
            CHECK(pxs_test_verify(res.data, len, 42));
        }
        free(buf);
        size_t used = 0, cap = 0;
        CHECK_OK(pxs_store_used(st, &used, &cap));
        CHECK(used == (res.in_arena ? len : 0)); /* only the reservation */
        CHECK_OK(pxs_store_commit(st, &res, &p));
    }
    MPI_Bcast(&p, (int)sizeof p, MPI_BYTE, 0, MPI_COMM_WORLD);
    if (rank == 2) {
        void *r = NULL;
        size_t n = 0;
        CHECK_OK(pxs_store_resolve_alloc(st, &p, &r, &n));
        CHECK(n == len && pxs_test_verify(r, n, 42));
        pxs_free(r);
    }
    pxs_test_check_reclaimed(st, rank);
}

static void
bad_input(pxs_store_t *st, pxs_store_t *other)
{
    if (rank != 0)
        return;
    pxs_reservation_t res, copy, zero;
    pxs_proxy_t p;
    memset(&zero, 0, sizeof zero);
    CHECK_RC(pxs_store_reserve(st, 0, NULL, &res), PXS_ERR_INVALID);
    detail_has("size 0");
    CHECK_RC(pxs_store_reserve(st, 64, NULL, NULL), PXS_ERR_INVALID);
    CHECK_RC(pxs_store_commit(st, NULL, &p), PXS_ERR_INVALID);
    CHECK_RC(pxs_store_cancel(st, NULL), PXS_ERR_INVALID);
    CHECK_RC(pxs_store_commit(st, &zero, &p), PXS_ERR_INVALID);
    detail_has("not a reservation");
    CHECK_RC(pxs_store_cancel(st, &zero), PXS_ERR_INVALID);

    /* commit twice; a copy of a committed reservation; cancel after commit */
    CHECK_OK(pxs_store_reserve(st, 1000, NULL, &res));
    memset(res.data, 7, res.len);
    copy = res;
    CHECK_RC(pxs_store_commit(st, &res, NULL), PXS_ERR_INVALID); /* ends nothing */
    CHECK_OK(pxs_store_commit(st, &res, &p));
    CHECK_RC(pxs_store_commit(st, &res, &p), PXS_ERR_INVALID);
    detail_has("already committed or cancelled");
    CHECK_RC(pxs_store_commit(st, &copy, &p), PXS_ERR_INVALID);
    detail_has("not live");
    CHECK_RC(pxs_store_cancel(st, &copy), PXS_ERR_INVALID);
    CHECK_RC(pxs_store_cancel(st, &res), PXS_ERR_INVALID);
    CHECK_OK(pxs_store_evict(st, &p));

    /* commit after cancel; cancel twice */
    CHECK_OK(pxs_store_reserve(st, 5000, NULL, &res));
    copy = res;
    CHECK_OK(pxs_store_cancel(st, &res));
    CHECK_RC(pxs_store_commit(st, &res, &p), PXS_ERR_INVALID);
    CHECK_RC(pxs_store_cancel(st, &res), PXS_ERR_INVALID);
    CHECK_RC(pxs_store_commit(st, &copy, &p), PXS_ERR_INVALID);

    /* a reservation of another store */
    CHECK_OK(pxs_store_reserve(other, 4096, NULL, &res));
    CHECK_RC(pxs_store_commit(st, &res, &p), PXS_ERR_INVALID);
    detail_has("another store");
    CHECK_RC(pxs_store_cancel(st, &res), PXS_ERR_INVALID);
    CHECK_OK(pxs_store_cancel(other, &res));

    /* bad put options: nothing reserved */
    pxs_put_opts_t po;
    CHECK_OK(pxs_put_opts_init(&po));
    po.checksum = 3;
    CHECK_RC(pxs_store_reserve(st, 64, &po, &res), PXS_ERR_INVALID);
    CHECK_RC(pxs_store_cancel(st, &res), PXS_ERR_INVALID); /* zeroed on failure */

    size_t used = 1, cap = 0;
    CHECK_OK(pxs_store_progress(st));
    CHECK_OK(pxs_store_used(st, &used, &cap));
    CHECK(used == 0);
}

/* Cancel gives the block back: the arena is empty again. */
static void
cancel_empty(pxs_store_t *st)
{
    if (rank != 0)
        return;
    pxs_reservation_t r[8];
    for (int i = 0; i < 8; i++)
        CHECK_OK(pxs_store_reserve(st, (size_t)(i + 1) * 10000, NULL, &r[i]));
    size_t used = 0, cap = 0;
    CHECK_OK(pxs_store_used(st, &used, &cap));
    CHECK(used > 0 || !r[0].in_arena); /* private buffers take no arena */
    for (int i = 7; i >= 0; i -= 2)
        CHECK_OK(pxs_store_cancel(st, &r[i]));
    for (int i = 0; i < 8; i += 2)
        CHECK_OK(pxs_store_cancel(st, &r[i]));
    CHECK_OK(pxs_store_used(st, &used, &cap));
    CHECK(used == 0);
}

/* An arena full of kept objects: AGAIN after the timeout; TOO_BIG. */
static void
full_arena(void)
{
    pxs_store_opts_t so;
    CHECK_OK(pxs_store_opts_init(&so));
    so.connector = pxs_test_connector();
    so.arena_bytes = 1 << 20;
    so.put_timeout = 0.2;
    pxs_store_t *st;
    CHECK_OK(pxs_store_create(MPI_COMM_WORLD, &so, &st));
    if (rank == 0) {
        pxs_reservation_t res;
        size_t used = 0, cap = 0;
        CHECK_OK(pxs_store_used(st, &used, &cap));
        CHECK_RC(pxs_store_reserve(st, cap + 1, NULL, &res), PXS_ERR_TOO_BIG);
        pxs_put_opts_t po;
        CHECK_OK(pxs_put_opts_init(&po));
        po.resolves = 0; /* kept */
        unsigned char *buf = calloc(1, cap / 4);
        CHECK(buf != NULL);
        pxs_proxy_t k[4];
        for (int i = 0; i < 4; i++)
            CHECK_OK(pxs_store_put(st, buf, cap / 4, &po, &k[i]));
        if (pxs_test_connector() == PXS_CONN_RMA) {
            CHECK_RC(pxs_store_reserve(st, 4096, NULL, &res), PXS_ERR_AGAIN);
            CHECK(res.data == NULL);
        } else { /* a private buffer: its commit's put waits, then AGAIN */
            CHECK_OK(pxs_store_reserve(st, 4096, NULL, &res));
            CHECK(!res.in_arena);
            pxs_proxy_t q;
            CHECK_RC(pxs_store_commit(st, &res, &q), PXS_ERR_AGAIN);
        }
        detail_has("arena full");
        CHECK_OK(pxs_store_evict(st, &k[1]));
        CHECK_OK(pxs_store_reserve(st, cap / 4, NULL, &res));
        CHECK(res.in_arena == (pxs_test_connector() == PXS_CONN_RMA));
        /* the arena is full again (a reserved block is live space) */
        po.timeout = 0;
        pxs_proxy_t q;
        if (res.in_arena) {
            CHECK_RC(pxs_store_put(st, buf, 64, &po, &q), PXS_ERR_AGAIN);
            detail_has("1 reservation(s) of this rank outstanding");
            detail_has("arena full");
        }
        CHECK_OK(pxs_store_cancel(st, &res));
        for (int i = 0; i < 4; i++)
            if (i != 1)
                CHECK_OK(pxs_store_evict(st, &k[i]));
        free(buf);
        /* destroy with one outstanding: freed by destroy */
        CHECK_OK(pxs_store_reserve(st, 100000, NULL, &res));
    }
    MPI_Barrier(MPI_COMM_WORLD);
    CHECK_OK(pxs_store_destroy(st));
}

int
main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    CHECK(size >= 3);
    pxs_store_opts_t so;
    CHECK_OK(pxs_store_opts_init(&so));
    so.connector = pxs_test_connector();
    so.arena_bytes = 16u << 20;
    pxs_store_t *st, *other;
    CHECK_OK(pxs_store_create(MPI_COMM_WORLD, &so, &st));
    so.arena_bytes = 1u << 20;
    CHECK_OK(pxs_store_create(MPI_COMM_WORLD, &so, &other));

    for (size_t len = 1024; len <= ((size_t)4 << 20); len *= 8)
        roundtrip(st, len, len == 32768);
    roundtrip(st, 1000003, 1); /* odd size, checksum */
    held_block(st);
    bad_input(st, other);
    cancel_empty(st);
    MPI_Barrier(MPI_COMM_WORLD);
    CHECK_OK(pxs_store_destroy(other));
    CHECK_OK(pxs_store_destroy(st));
    full_arena();
    if (rank == 0)
        printf("reserve: ok\n");
    MPI_Finalize();
    return 0;
}
