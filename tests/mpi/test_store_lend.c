/* Lent buffers (docs/DESIGN.md, section "Lent buffers"): pxs_store_put_ref
 * and pxs_store_ref_wait over real ranks. Rank 0 lends; every other rank
 * resolves. Whether the store lends is predicted from the run (every rank
 * on one node, PXS_SHM not 0, PXS_LEND not 0, no PXS_TEST_CMA_FAIL) and
 * asserted through lent_out; where it cannot lend, put_ref copies and
 * everything below still resolves the right bytes.
 *  - round trip 1 KiB .. 64 MiB, bytes checked on every reader (checksum on
 *    for one size); the owner's ref_wait(0) is AGAIN before the readers,
 *    OK after; a resolve after that is STALE;
 *  - a reader's view holds its claim: ref_wait stays AGAIN until it is
 *    released (barriers order the steps);
 *  - owner evict of a kept lent object: ref_wait OK, later resolves STALE;
 *  - a forged lent proxy (other address) is CORRUPT, never other bytes;
 *  - bounded: lent objects take slots; slot table full = AGAIN with the
 *    "slot table full" detail; a freed slot lets the next put_ref in;
 *  - bad input: NULL buf / proxy_out, size 0, ref_wait on NULL, on a plain
 *    put's proxy, on another rank's proxy, NaN timeout: PXS_ERR_INVALID
 *    with a detail. */
#include <math.h>
#include <stdlib.h>
#include <unistd.h>

#include "pxs_test.h"
#include "store/store_int.h"

static int rank, size;

static int
expect_lend(void)
{
    MPI_Comm node;
    int nsize = 0;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node);
    MPI_Comm_size(node, &nsize);
    MPI_Comm_free(&node);
    const char *l = getenv("PXS_LEND");
    return nsize == size && pxs_test_shm_expected() && !(l && strcmp(l, "0") == 0) &&
           !getenv("PXS_TEST_CMA_FAIL");
}

static void *
lend_buf(size_t len, uint64_t seed)
{
    void *b = NULL;
    CHECK(posix_memalign(&b, 4096, len) == 0);
    pxs_test_fill(b, len, seed);
    return b;
}

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
roundtrip(pxs_store_t *st, int lend, size_t len, int checksum)
{
    pxs_proxy_t p;
    void *b = NULL;
    int lent = -1;
    uint64_t seed = 1000 + len;
    if (rank == 0) {
        b = lend_buf(len, seed);
        pxs_put_opts_t po;
        CHECK_OK(pxs_put_opts_init(&po));
        po.resolves = (uint32_t)(size - 1);
        po.checksum = checksum;
        CHECK_OK(pxs_store_put_ref(st, b, len, &po, &p, &lent));
        CHECK(lent == lend);
        if (lent)
            CHECK_RC(pxs_store_ref_wait(st, &p, 0), PXS_ERR_AGAIN);
        else
            CHECK_RC(pxs_store_ref_wait(st, &p, 0), PXS_ERR_INVALID);
    }
    MPI_Bcast(&p, (int)sizeof p, MPI_BYTE, 0, MPI_COMM_WORLD);
    if (rank != 0) {
        void *r = NULL;
        size_t n = 0;
        CHECK_OK(pxs_store_resolve_alloc(st, &p, &r, &n));
        CHECK(n == len);
        CHECK(pxs_test_verify(r, n, seed));
        pxs_free(r);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 0) {
        if (lent) {
            CHECK_OK(pxs_store_ref_wait(st, &p, 30));
            memset(b, 0xee, len); /* the buffer is ours again */
        }
        free(b);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 1) {
        unsigned char x[16];
        size_t n = 0;
        void *r = malloc(len);
        CHECK_RC(pxs_store_resolve(st, &p, r, len, &n), PXS_ERR_STALE);
        free(r);
        (void)x;
    }
    MPI_Barrier(MPI_COMM_WORLD);
}

/* A reader's view pins the lent object: done only after its release. */
static void
view_pins(pxs_store_t *st, int lend)
{
    const size_t len = 1 << 20;
    pxs_proxy_t p;
    void *b = NULL;
    int lent = 0;
    if (rank == 0) {
        b = lend_buf(len, 77);
        pxs_put_opts_t po;
        CHECK_OK(pxs_put_opts_init(&po));
        po.resolves = 1;
        CHECK_OK(pxs_store_put_ref(st, b, len, &po, &p, &lent));
        CHECK(lent == lend);
    }
    MPI_Bcast(&p, (int)sizeof p, MPI_BYTE, 0, MPI_COMM_WORLD);
    pxs_view_t v;
    if (rank == 1)
        CHECK_OK(pxs_store_view(st, &p, &v)); /* the whole budget */
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 0 && lent)
        CHECK_RC(pxs_store_ref_wait(st, &p, 0.2), PXS_ERR_AGAIN); /* budget spent, claim held */
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 1) {
        CHECK(v.len == len && pxs_test_verify(v.data, v.len, 77));
        CHECK_OK(pxs_store_release(st, &v));
    }
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 0) {
        if (lent)
            CHECK_OK(pxs_store_ref_wait(st, &p, 30));
        free(b);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 2) {
        /* a buffer of the cap we pass: a remote resolve reads before it
         * knows the object is gone (docs/DESIGN.md, "Remote resolve in one
         * epoch") */
        unsigned char *buf = malloc(len);
        size_t n = 0;
        CHECK(buf != NULL);
        CHECK_RC(pxs_store_resolve(st, &p, buf, len, &n), PXS_ERR_STALE);
        free(buf);
    }
    MPI_Barrier(MPI_COMM_WORLD);
}

/* Owner evict of a kept lent object; a forged lent proxy. */
static void
evict_and_forged(pxs_store_t *st, int lend)
{
    const size_t len = 100000;
    pxs_proxy_t p;
    void *b = NULL, *other = NULL;
    int lent = 0;
    if (rank == 0) {
        b = lend_buf(len, 5);
        other = lend_buf(len, 6);
        pxs_put_opts_t po;
        CHECK_OK(pxs_put_opts_init(&po));
        po.resolves = 0; /* keep until evicted */
        CHECK_OK(pxs_store_put_ref(st, b, len, &po, &p, &lent));
        CHECK(lent == lend);
    }
    MPI_Bcast(&p, (int)sizeof p, MPI_BYTE, 0, MPI_COMM_WORLD);
    MPI_Bcast(&other, (int)sizeof other, MPI_BYTE, 0, MPI_COMM_WORLD);
    unsigned char *r = malloc(len);
    size_t n = 0;
    if (rank != 0) {
        for (int i = 0; i < 2; i++) {
            CHECK_OK(pxs_store_resolve(st, &p, r, len, &n));
            CHECK(n == len && pxs_test_verify(r, len, 5));
        }
        if (lend) {
            /* the same proxy naming rank 0's other buffer: the claim's
             * descriptor check refuses it */
            pxs_proxy_info_t pi;
            pxs_proxy_t f;
            CHECK_OK(pxs_proxy_decode(p.bytes, PXS_PROXY_SIZE, &pi));
            pi.offset = (uint64_t)(uintptr_t)other;
            CHECK_OK(pxs_proxy_encode(&pi, &f));
            CHECK_RC(pxs_store_resolve(st, &f, r, len, &n), PXS_ERR_CORRUPT);
        }
    }
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 0) {
        if (lent)
            CHECK_RC(pxs_store_ref_wait(st, &p, 0), PXS_ERR_AGAIN); /* kept */
        CHECK_OK(pxs_store_evict(st, &p));
        if (lent)
            CHECK_OK(pxs_store_ref_wait(st, &p, 30));
        free(b);
        free(other);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank != 0)
        CHECK_RC(pxs_store_resolve(st, &p, r, len, &n), PXS_ERR_STALE);
    free(r);
    MPI_Barrier(MPI_COMM_WORLD);
}

static void
bad_input(pxs_store_t *st, int lend)
{
    pxs_proxy_t p, q;
    unsigned char b[256];
    int lent = 7;
    memset(b, 1, sizeof b);
    CHECK_RC(pxs_store_put_ref(st, NULL, 10, NULL, &p, &lent), PXS_ERR_INVALID);
    detail_has("NULL");
    CHECK(lent == 0);
    CHECK_RC(pxs_store_put_ref(st, b, 10, NULL, NULL, NULL), PXS_ERR_INVALID);
    detail_has("proxy_out");
    CHECK_RC(pxs_store_put_ref(st, b, 0, NULL, &p, NULL), PXS_ERR_INVALID);
    detail_has("size 0");
    CHECK_RC(pxs_store_put_ref(NULL, b, 10, NULL, &p, NULL), PXS_ERR_INVALID);
    CHECK_RC(pxs_store_ref_wait(st, NULL, 0), PXS_ERR_INVALID);
    detail_has("NULL");
    /* a plain put's proxy is not lent */
    CHECK_OK(pxs_store_put(st, b, sizeof b, NULL, &q));
    CHECK_RC(pxs_store_ref_wait(st, &q, 0), PXS_ERR_INVALID);
    detail_has("not a lent object");
    CHECK_OK(pxs_store_evict(st, &q));
    /* another rank's lent proxy */
    if (rank == 0) {
        pxs_put_opts_t po;
        CHECK_OK(pxs_put_opts_init(&po));
        po.resolves = 0;
        CHECK_OK(pxs_store_put_ref(st, b, sizeof b, &po, &p, &lent));
        CHECK(lent == lend);
        CHECK_RC(pxs_store_ref_wait(st, &p, NAN), PXS_ERR_INVALID);
        detail_has("NaN");
    }
    MPI_Bcast(&p, (int)sizeof p, MPI_BYTE, 0, MPI_COMM_WORLD);
    if (rank == 1) {
        CHECK_RC(pxs_store_ref_wait(st, &p, 0), PXS_ERR_INVALID);
        detail_has(lend ? "not this rank's" : "not a lent object");
    }
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 0) {
        CHECK_OK(pxs_store_evict(st, &p));
        if (lend)
            CHECK_OK(pxs_store_ref_wait(st, &p, 30));
    }
    MPI_Barrier(MPI_COMM_WORLD);
}

/* Lent objects take slots: a store of few slots fills up (AGAIN after the
 * timeout, "slot table full"); an evict frees a slot for the next one. */
static void
bounded(int lend)
{
    pxs_store_opts_t so;
    CHECK_OK(pxs_store_opts_init(&so));
    so.connector = PXS_CONN_RMA;
    so.arena_bytes = 1 << 20;
    so.max_objects = 4;
    pxs_store_t *st;
    CHECK_OK(pxs_store_create(MPI_COMM_WORLD, &so, &st));
    if (rank == 0 && lend) {
        static unsigned char b[5][4096];
        pxs_proxy_t p[5];
        pxs_put_opts_t po;
        CHECK_OK(pxs_put_opts_init(&po));
        po.resolves = 0;
        po.timeout = 0.1;
        int lent = 0;
        for (int i = 0; i < 4; i++) {
            CHECK_OK(pxs_store_put_ref(st, b[i], sizeof b[i], &po, &p[i], &lent));
            CHECK(lent == 1);
        }
        CHECK_RC(pxs_store_put_ref(st, b[4], sizeof b[4], &po, &p[4], &lent), PXS_ERR_AGAIN);
        detail_has("slot table full");
        CHECK(lent == 0);
        CHECK_OK(pxs_store_evict(st, &p[1]));
        CHECK_OK(pxs_store_ref_wait(st, &p[1], 10));
        CHECK_OK(pxs_store_put_ref(st, b[4], sizeof b[4], &po, &p[4], &lent));
        CHECK(lent == 1);
        for (int i = 0; i < 5; i++)
            if (i != 1)
                CHECK_OK(pxs_store_evict(st, &p[i]));
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
    int lend = expect_lend();
    size_t maxlen = argc > 1 ? (size_t)strtoull(argv[1], NULL, 10) << 20 : (size_t)64 << 20;

    pxs_store_opts_t so;
    CHECK_OK(pxs_store_opts_init(&so));
    so.connector = PXS_CONN_RMA;
    so.arena_bytes = maxlen + (4u << 20); /* the copy fallback fits the largest */
    pxs_store_t *st;
    CHECK_OK(pxs_store_create(MPI_COMM_WORLD, &so, &st));

    for (size_t len = 1024; len <= maxlen; len *= 4)
        roundtrip(st, lend, len, len == 65536);
    view_pins(st, lend);
    evict_and_forged(st, lend);
    bad_input(st, lend);

    if (rank == 0) {
        pxsi_store_stats_t s;
        CHECK_OK(pxsi_store_stats(st, &s));
        CHECK(lend ? s.lent > 0 && s.lend_copied == 0 : s.lent == 0 && s.lend_copied > 0);
    }
    CHECK_OK(pxs_store_destroy(st));
    bounded(lend);
    if (rank == 0)
        printf("lend: %s\n", lend ? "lent" : "copied (store cannot lend here)");
    MPI_Finalize();
    return 0;
}
