/* Store reclamation over real ranks:
 *  - evict-after-N: the N+1-th resolve is PXS_ERR_STALE; keep-until-evict;
 *    owner evict; holder evict (budget unit; keep objects: a no-op);
 *  - drop: one budget unit from any rank, the owner's included (a consumer
 *    on the owner's rank must not end the object for the other holders);
 *    keep objects: a no-op; stale -> STALE, forged -> CORRUPT;
 *  - slot reuse under load: a producer streams through a tiny arena while
 *    consumers resolve; old proxies re-resolved after their slot was reused
 *    are STALE and never return the new object's bytes;
 *  - backpressure: arena full with a consumer that does not resolve -> put
 *    returns PXS_ERR_AGAIN after its timeout, memory bounded; a late
 *    consumer's resolves free space and a waiting put continues. */
#include <stdlib.h>
#include <unistd.h>

#include "pxs_test.h"
#include "store/store_int.h"

static int rank, size;

static void
put_obj(pxs_store_t *st, size_t len, uint64_t seed, uint32_t resolves, pxs_proxy_t *p)
{
    unsigned char *b = malloc(len ? len : 1);
    pxs_test_fill(b, len, seed);
    if (len >= 8)
        memcpy(b, &seed, 8); /* the object's identity in its first bytes */
    pxs_put_opts_t po;
    CHECK_OK(pxs_put_opts_init(&po));
    po.resolves = resolves;
    CHECK_OK(pxs_store_put(st, b, len, &po, p));
    free(b);
}

static void
evict_after_n(pxs_store_t *st)
{
    pxs_proxy_t p[6];
    if (rank == 0) {
        put_obj(st, 1000, 1, 3, &p[0]); /* N = 3 */
        put_obj(st, 1000, 2, 1, &p[1]); /* default N = 1 */
        put_obj(st, 1000, 3, 0, &p[2]); /* keep until the owner evicts */
        put_obj(st, 1000, 4, 2, &p[3]); /* holder evict counts one */
        put_obj(st, 1000, 5, 0, &p[4]); /* keep; a holder's evict does nothing */
        put_obj(st, 1000, 6, 1, &p[5]); /* owner evicts before any resolve */
    }
    MPI_Bcast(p, (int)sizeof p, MPI_BYTE, 0, MPI_COMM_WORLD);
    unsigned char buf[1000];
    size_t len = 0;
    if (rank == size - 1) {
        for (int i = 0; i < 3; i++)
            CHECK_OK(pxs_store_resolve(st, &p[0], buf, sizeof buf, &len));
        CHECK_RC(pxs_store_resolve(st, &p[0], buf, sizeof buf, &len), PXS_ERR_STALE);
        CHECK_OK(pxs_store_resolve(st, &p[1], buf, sizeof buf, &len));
        CHECK_RC(pxs_store_resolve(st, &p[1], buf, sizeof buf, &len), PXS_ERR_STALE);
        for (int i = 0; i < 5; i++)
            CHECK_OK(pxs_store_resolve(st, &p[2], buf, sizeof buf, &len));
        CHECK_OK(pxs_store_evict(st, &p[3]));
        CHECK_OK(pxs_store_resolve(st, &p[3], buf, sizeof buf, &len));
        CHECK_RC(pxs_store_resolve(st, &p[3], buf, sizeof buf, &len), PXS_ERR_STALE);
        CHECK_RC(pxs_store_evict(st, &p[3]), PXS_ERR_STALE);
        CHECK_OK(pxs_store_resolve(st, &p[4], buf, sizeof buf, &len));
        CHECK_OK(pxs_store_evict(st, &p[4])); /* a holder cannot end a keep object */
        CHECK_OK(pxs_store_evict(st, &p[4]));
        CHECK_OK(pxs_store_resolve(st, &p[4], buf, sizeof buf, &len));
    }
    if (rank == 0)
        CHECK_OK(pxs_store_evict(st, &p[5]));
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 0) {
        CHECK_OK(pxs_store_evict(st, &p[4])); /* its owner can */
        CHECK_RC(pxs_store_evict(st, &p[4]), PXS_ERR_STALE);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 0) {
        CHECK_OK(pxs_store_evict(st, &p[2])); /* the owner ends a keep object */
        CHECK_RC(pxs_store_evict(st, &p[2]), PXS_ERR_STALE);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == size - 1) {
        CHECK_RC(pxs_store_resolve(st, &p[2], buf, sizeof buf, &len), PXS_ERR_STALE);
        CHECK_RC(pxs_store_resolve(st, &p[5], buf, sizeof buf, &len), PXS_ERR_STALE);
        CHECK_RC(pxs_store_resolve(st, &p[4], buf, sizeof buf, &len), PXS_ERR_STALE);
        CHECK_RC(pxs_store_evict(st, &p[4]), PXS_ERR_STALE);
        pxs_view_t v;
        CHECK_RC(pxs_store_view(st, &p[2], &v), PXS_ERR_STALE);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 0) {
        size_t used = 1;
        CHECK_OK(pxs_store_used(st, &used, NULL));
        CHECK(used == 0);
    }
    MPI_Barrier(MPI_COMM_WORLD);
}

static pxs_proxy_t
forge_size(const pxs_proxy_t *p, uint64_t new_size)
{
    pxs_proxy_info_t pi;
    CHECK_OK(pxs_proxy_decode(p->bytes, 64, &pi));
    pi.size = new_size;
    pxs_proxy_t f;
    CHECK_OK(pxs_proxy_encode(&pi, &f));
    return f;
}

/* pxs_store_drop: a budget unit from any rank, the owner's included. */
static void
drop_semantics(pxs_store_t *st)
{
    pxs_proxy_t p[4];
    if (rank == 0) {
        put_obj(st, 1000, 21, 2, &p[0]); /* two uses: a drop and a resolve */
        put_obj(st, 1000, 22, 0, &p[1]); /* keep: drop is a no-op */
        put_obj(st, 1000, 23, 1, &p[2]); /* a holder's drop ends it */
        put_obj(st, 1000, 24, 3, &p[3]); /* forged drops change nothing */
    }
    MPI_Bcast(p, (int)sizeof p, MPI_BYTE, 0, MPI_COMM_WORLD);
    unsigned char buf[1000];
    size_t len = 0;
    const int other = size - 1, third = size > 2 ? 1 : size - 1;

    /* a consumer on the owner's rank drops p[0]: one unit, not the object */
    if (rank == 0)
        CHECK_OK(pxs_store_drop(st, &p[0]));
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == other) {
        CHECK_OK(pxs_store_resolve(st, &p[0], buf, sizeof buf, &len));
        CHECK(len == 1000);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == third)
        CHECK_RC(pxs_store_resolve(st, &p[0], buf, sizeof buf, &len), PXS_ERR_STALE);
    MPI_Barrier(MPI_COMM_WORLD);
    CHECK_RC(pxs_store_drop(st, &p[0]), PXS_ERR_STALE);

    /* keep object: every rank drops it (twice), it stays */
    CHECK_OK(pxs_store_drop(st, &p[1]));
    CHECK_OK(pxs_store_drop(st, &p[1]));
    MPI_Barrier(MPI_COMM_WORLD);
    CHECK_OK(pxs_store_resolve(st, &p[1], buf, sizeof buf, &len));
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 0)
        CHECK_OK(pxs_store_evict(st, &p[1]));
    MPI_Barrier(MPI_COMM_WORLD);
    CHECK_RC(pxs_store_drop(st, &p[1]), PXS_ERR_STALE);

    /* a holder's drop uses the only unit */
    if (rank == other)
        CHECK_OK(pxs_store_drop(st, &p[2]));
    MPI_Barrier(MPI_COMM_WORLD);
    CHECK_RC(pxs_store_resolve(st, &p[2], buf, sizeof buf, &len), PXS_ERR_STALE);
    CHECK_RC(pxs_store_drop(st, &p[2]), PXS_ERR_STALE);

    /* forged: CORRUPT from every rank, the budget untouched */
    pxs_proxy_t f = forge_size(&p[3], 999);
    for (int i = 0; i < 5; i++)
        CHECK_RC(pxs_store_drop(st, &f), PXS_ERR_CORRUPT);
    pxs_proxy_t fb = p[3];
    fb.bytes[30] ^= 4;
    CHECK_RC(pxs_store_drop(st, &fb), PXS_ERR_CORRUPT);
    CHECK_RC(pxs_store_drop(st, NULL), PXS_ERR_INVALID);
    CHECK_RC(pxs_store_drop(NULL, &p[3]), PXS_ERR_INVALID);
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == other) {
        for (int i = 0; i < 3; i++)
            CHECK_OK(pxs_store_resolve(st, &p[3], buf, sizeof buf, &len));
        CHECK_RC(pxs_store_resolve(st, &p[3], buf, sizeof buf, &len), PXS_ERR_STALE);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 0) {
        size_t used = 1;
        CHECK_OK(pxs_store_used(st, &used, NULL));
        CHECK(used == 0);
    }
    MPI_Barrier(MPI_COMM_WORLD);
}

/* Producer rank 0 streams ITER objects through a tiny arena; consumer c gets
 * object i when i % (size-1) == c-1 and re-resolves a few old proxies. */
static void
reuse_under_load(pxs_store_t *st, int iters)
{
    const size_t maxlen = 16384;
    unsigned char *buf = malloc(maxlen);
    if (rank == 0) {
        for (int i = 0; i < iters; i++) {
            pxs_proxy_t p;
            size_t len = 8 + (size_t)((i * 2654435761u) % (maxlen - 8));
            put_obj(st, len, (uint64_t)i + 1000, 1, &p);
            int c = 1 + i % (size - 1);
            MPI_Send(&p, 64, MPI_BYTE, c, 1, MPI_COMM_WORLD);
        }
        for (int c = 1; c < size; c++)
            MPI_Send(buf, 0, MPI_BYTE, c, 2, MPI_COMM_WORLD);
    } else {
        enum { KEEP = 8 };
        pxs_proxy_t old[KEEP];
        int nold = 0, got = 0, stale = 0, wc = 0;
        for (;;) {
            pxs_proxy_t p;
            MPI_Status stt;
            MPI_Recv(&p, 64, MPI_BYTE, 0, MPI_ANY_TAG, MPI_COMM_WORLD, &stt);
            if (stt.MPI_TAG == 2)
                break;
            pxs_proxy_info_t pi;
            CHECK_OK(pxs_proxy_decode(p.bytes, 64, &pi));
            size_t len = 0;
            CHECK_OK(pxs_store_resolve(st, &p, buf, maxlen, &len));
            uint64_t id;
            memcpy(&id, buf, 8);
            CHECK(len == pi.size);
            /* content is exactly object `id`'s, and id is this proxy's */
            int i = (int)(id - 1000);
            CHECK(i >= 0 && i < iters && len == 8 + (size_t)(((unsigned)i * 2654435761u) % (maxlen - 8)));
                        for (size_t k = 8; k < len; k++)
                CHECK(buf[k] == pxs_test_byte(id, k));
            got++;
            /* an old proxy (its slot has likely been reused by now) */
            if (nold) {
                pxs_proxy_t *q = &old[got % nold];
                memset(buf, 0, 8);
                int rc = pxs_store_resolve(st, q, buf, maxlen, &len);
                CHECK_RC(rc, PXS_ERR_STALE);
                pxs_view_t v;
                CHECK_RC(pxs_store_view(st, q, &v), PXS_ERR_STALE);
                stale++;
            }
            old[wc++ % KEEP] = p;
            if (nold < KEEP)
                nold++;
        }
        CHECK(stale > 0 || got <= 1);
    }
    free(buf);
    MPI_Barrier(MPI_COMM_WORLD);
    pxsi_store_stats_t s;
    CHECK_OK(pxsi_store_stats(st, &s));
    if (rank == 0)
        CHECK(s.reclaimed >= (uint64_t)iters - 64);
}

static void
backpressure(void)
{
    pxs_store_opts_t so;
    CHECK_OK(pxs_store_opts_init(&so));
    so.connector = pxs_test_connector();
    so.arena_bytes = 1 << 20;
    so.put_timeout = 0.2;
    pxs_store_t *st;
    CHECK_OK(pxs_store_create(MPI_COMM_WORLD, &so, &st));
    const size_t len = 64 << 10;
    enum { MAXP = 64 };
    pxs_proxy_t p[MAXP];
    int n = 0;
    if (rank == 0) {
        unsigned char *big = calloc(1, (1 << 20) + 1);
        pxs_put_opts_t po;
        CHECK_OK(pxs_put_opts_init(&po));
        CHECK_RC(pxs_store_put(st, big, (1 << 20) + 1, &po, &p[0]), PXS_ERR_TOO_BIG);
        free(big);
        int rc;
        double t0 = 0;
        for (;;) {
            CHECK(n < MAXP);
            unsigned char *b = malloc(len);
            pxs_test_fill(b, len, (uint64_t)n + 77);
            t0 = MPI_Wtime();
            rc = pxs_store_put(st, b, len, NULL, &p[n]);
            free(b);
            if (rc != PXS_OK)
                break;
            n++;
        }
        CHECK_RC(rc, PXS_ERR_AGAIN);
        CHECK(MPI_Wtime() - t0 >= 0.19);
        CHECK(n == (1 << 20) / (int)len); /* exactly full, never more */
        size_t used = 0, cap = 0;
        CHECK_OK(pxs_store_used(st, &used, &cap));
        CHECK(used <= cap && cap <= (1 << 20) && used == (size_t)n * len);
        /* timeout 0: fail at once */
        pxs_put_opts_t po0;
        CHECK_OK(pxs_put_opts_init(&po0));
        po0.timeout = 0;
        pxs_proxy_t x;
        CHECK_RC(pxs_store_put(st, p, 64, &po0, &x), PXS_ERR_AGAIN);
    }
    MPI_Bcast(&n, 1, MPI_INT, 0, MPI_COMM_WORLD);
    MPI_Bcast(p, n * 64, MPI_BYTE, 0, MPI_COMM_WORLD);
    if (rank == 0) {
        /* waits until the late consumer resolves */
        unsigned char *b = malloc(len);
        pxs_test_fill(b, len, 5);
        pxs_put_opts_t po;
        CHECK_OK(pxs_put_opts_init(&po));
        po.timeout = 30;
        pxs_proxy_t q;
        CHECK_OK(pxs_store_put(st, b, len, &po, &q));
        free(b);
        pxsi_store_stats_t s;
        CHECK_OK(pxsi_store_stats(st, &s));
        CHECK(s.put_waits >= 2);
    } else if (rank == size - 1) {
        usleep(300000);
        unsigned char *b = malloc(len);
        for (int i = 0; i < n; i++) {
            size_t l = 0;
            CHECK_OK(pxs_store_resolve(st, &p[i], b, len, &l));
            CHECK(l == len && pxs_test_verify(b, len, (uint64_t)i + 77));
        }
        free(b);
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
    CHECK(size >= 2);
    int iters = argc > 1 ? atoi(argv[1]) : 2000;

    pxs_store_opts_t so;
    CHECK_OK(pxs_store_opts_init(&so));
    so.connector = pxs_test_connector();
    so.arena_bytes = 1 << 20;
    so.put_timeout = 5;
    pxs_store_t *st;
    CHECK_OK(pxs_store_create(MPI_COMM_WORLD, &so, &st));
    evict_after_n(st);
    drop_semantics(st);
    CHECK_OK(pxs_store_destroy(st));

    /* tiny arena and slot table: slots and bytes are reused constantly */
    CHECK_OK(pxs_store_opts_init(&so));
    so.connector = pxs_test_connector();
    so.arena_bytes = 128 << 10;
    so.max_objects = 16;
    so.put_timeout = 30;
    CHECK_OK(pxs_store_create(MPI_COMM_WORLD, &so, &st));
    reuse_under_load(st, iters);
    CHECK_OK(pxs_store_destroy(st));

    backpressure();
    if (rank == 0)
        printf("store evict OK (%d ranks, %d iterations)\n", size, iters);
    MPI_Finalize();
    return 0;
}
