/* The arena allocator's real free space (issue 8, item 9): free bytes split
 * among gaps, the largest gap, and what the "arena full" detail says.
 *  - gaps and largest gap as blocks come and go (pxsi_arena_gaps);
 *  - the practical limits store.h states: objects up to half the arena
 *    stream (two in flight), larger ones go one at a time, and a long-lived
 *    block pins the largest gap below the free total;
 *  - a local store with 4 MiB free in two 2 MiB gaps refuses a 3 MiB put
 *    with PXS_ERR_AGAIN and a detail naming need, free, gaps, largest block;
 *  - hot reuse (issue 15): a stream with k objects in flight reuses the
 *    gaps just freed (its blocks stay within the first k), also behind a
 *    long-lived block; random alloc/free never overlaps two live blocks;
 *  - a local store streaming 4x its arena (each object resolved, never
 *    evicted by hand) reclaims early: every proxy's offset stays within
 *    the early-reclaim window plus the objects in flight. */
#include <stdlib.h>

#include "pxs_test.h"
#include "store/store_int.h"

static void
gaps_are(const pxsi_arena_t *a, uint32_t ng, uint64_t big)
{
    uint32_t n = 99;
    uint64_t b = 99;
    pxsi_arena_gaps(a, &n, &b);
    if (n != ng || b != big) {
        fprintf(stderr, "gaps %u largest %llu, expected %u / %llu\n", n, (unsigned long long)b,
                ng, (unsigned long long)big);
        CHECK(0);
    }
}

static void
allocator(void)
{
    pxsi_arena_t a;
    uint32_t s[8];
    uint64_t off;
    CHECK_OK(pxsi_arena_init(&a, 1024, 16));
    gaps_are(&a, 1, 1024);
    for (int i = 0; i < 4; i++)
        CHECK_OK(pxsi_arena_alloc(&a, 256, &s[i], &off));
    gaps_are(&a, 0, 0);
    pxsi_arena_free(&a, s[1]);
    pxsi_arena_free(&a, s[3]);
    gaps_are(&a, 2, 256);
    /* 512 free, but no gap of 512 */
    CHECK_RC(pxsi_arena_alloc(&a, 512, &s[4], &off), PXS_ERR_AGAIN);
    CHECK_OK(pxsi_arena_alloc(&a, 256, &s[4], &off));
    gaps_are(&a, 1, 256);
    pxsi_arena_free(&a, s[0]);
    pxsi_arena_free(&a, s[2]);
    pxsi_arena_free(&a, s[4]);
    gaps_are(&a, 1, 1024);

    /* half the arena: streams with two in flight */
    CHECK_OK(pxsi_arena_alloc(&a, 512, &s[0], &off));
    CHECK_OK(pxsi_arena_alloc(&a, 512, &s[1], &off));
    pxsi_arena_free(&a, s[0]);
    CHECK_OK(pxsi_arena_alloc(&a, 512, &s[2], &off));
    pxsi_arena_free(&a, s[1]);
    pxsi_arena_free(&a, s[2]);
    /* more than half: one at a time, the next waits for an empty arena */
    CHECK_OK(pxsi_arena_alloc(&a, 576, &s[0], &off));
    CHECK_RC(pxsi_arena_alloc(&a, 576, &s[1], &off), PXS_ERR_AGAIN);
    pxsi_arena_free(&a, s[0]);
    CHECK_OK(pxsi_arena_alloc(&a, 576, &s[1], &off));
    pxsi_arena_free(&a, s[1]);

    /* a long-lived block in the middle pins the largest gap */
    CHECK_OK(pxsi_arena_alloc(&a, 448, &s[0], &off));
    CHECK_OK(pxsi_arena_alloc(&a, 128, &s[1], &off)); /* at 448: "kept" */
    pxsi_arena_free(&a, s[0]);
    gaps_are(&a, 2, 448);
    CHECK(a.cap - a.used == 896);
    CHECK_RC(pxsi_arena_alloc(&a, 512, &s[2], &off), PXS_ERR_AGAIN);
    pxsi_arena_free(&a, s[1]);
    CHECK_OK(pxsi_arena_alloc(&a, 512, &s[2], &off));
    pxsi_arena_free(&a, s[2]);
    pxsi_arena_fini(&a);
}

static void
detail_has(const char *what)
{
    const char *d = pxs_last_error_detail();
    if (!d || !strstr(d, what)) {
        fprintf(stderr, "detail \"%s\" lacks \"%s\"\n", d ? d : "(null)", what);
        CHECK(0);
    }
}

static void
local_store_detail(void)
{
    pxs_store_opts_t so;
    CHECK_OK(pxs_store_opts_init(&so));
    so.connector = PXS_CONN_LOCAL;
    so.arena_bytes = (size_t)8 << 20;
    pxs_store_t *st = NULL;
    CHECK_OK(pxs_store_create(MPI_COMM_NULL, &so, &st));
    size_t two = (size_t)2 << 20, three = (size_t)3 << 20;
    unsigned char *data = calloc(1, three);
    CHECK(data != NULL);
    pxs_put_opts_t po;
    CHECK_OK(pxs_put_opts_init(&po));
    po.resolves = 0;
    po.timeout = 0;
    pxs_proxy_t p[4], q;
    for (int i = 0; i < 4; i++)
        CHECK_OK(pxs_store_put(st, data, two, &po, &p[i]));
    CHECK_RC(pxs_store_put(st, data, 10, &po, &q), PXS_ERR_AGAIN);
    detail_has("free 0 B in 0 gap(s), largest free block 0 B");
    CHECK_OK(pxs_store_evict(st, &p[1]));
    CHECK_OK(pxs_store_evict(st, &p[3]));
    CHECK_RC(pxs_store_put(st, data, three, &po, &q), PXS_ERR_AGAIN);
    detail_has("need 3145728 B, free 4194304 B in 2 gap(s), largest free block 2097152 B");
    CHECK_OK(pxs_store_put(st, data, two, &po, &q));
    free(data);
    CHECK_OK(pxs_store_destroy(st));
}

/* k in flight: free the oldest, put a new one; LIFO reuse keeps every block
 * in the first k slots' bytes (next-fit would walk the whole arena). */
static void
hot_stream(void)
{
    pxsi_arena_t a;
    const uint64_t B = 1024;
    CHECK_OK(pxsi_arena_init(&a, 64 * B, 128));
    uint32_t s[8];
    uint64_t off, top = 0;
    for (int k = 1; k <= 8; k++) {
        for (int i = 0; i < k; i++)
            CHECK_OK(pxsi_arena_alloc(&a, B, &s[i], &off));
        for (int n = 0; n < 1000; n++) {
            int i = n % k;
            pxsi_arena_free(&a, s[i]);
            CHECK_OK(pxsi_arena_alloc(&a, B, &s[i], &off));
            if (off + B > top)
                top = off + B;
        }
        CHECK(top <= (uint64_t)k * B);
        for (int i = 0; i < k; i++)
            pxsi_arena_free(&a, s[i]);
        CHECK(a.nlive == 0 && a.used == 0);
        top = 0;
    }
    /* behind a long-lived block at 0, the same holds (one block further) */
    uint32_t keep;
    CHECK_OK(pxsi_arena_alloc(&a, B, &keep, &off));
    for (int i = 0; i < 4; i++)
        CHECK_OK(pxsi_arena_alloc(&a, B, &s[i], &off));
    for (int n = 0; n < 1000; n++) {
        pxsi_arena_free(&a, s[n % 4]);
        CHECK_OK(pxsi_arena_alloc(&a, B, &s[n % 4], &off));
        CHECK(off >= B && off + B <= 5 * B);
    }
    pxsi_arena_fini(&a);
}

/* random sizes, random frees: the hint never hands out bytes of a live
 * block, and used/nlive stay exact */
static void
hot_random(void)
{
    pxsi_arena_t a;
    enum { N = 64 };
    const uint64_t cap = 256 * 1024;
    CHECK_OK(pxsi_arena_init(&a, cap, N));
    uint32_t slot[N];
    uint64_t off[N], len[N];
    int live[N] = {0};
    uint64_t used = 0;
    unsigned x = 12345;
    for (int n = 0; n < 200000; n++) {
        x = x * 1103515245u + 12345u;
        int i = (int)((x >> 8) % N);
        if (live[i]) {
            pxsi_arena_free(&a, slot[i]);
            live[i] = 0;
            used -= len[i];
            continue;
        }
        uint64_t sz = 1 + (x >> 12) % 16384;
        uint64_t o;
        int rc = pxsi_arena_alloc(&a, sz, &slot[i], &o);
        if (rc == PXS_ERR_AGAIN)
            continue;
        CHECK_OK(rc);
        uint64_t need = pxsi_arena_need(sz);
        CHECK(o % PXSI_ARENA_ALIGN == 0 && o + need <= cap);
        for (int j = 0; j < N; j++)
            if (live[j] && o < off[j] + len[j] && off[j] < o + need) {
                fprintf(stderr, "block %llu+%llu overlaps %llu+%llu\n", (unsigned long long)o,
                        (unsigned long long)need, (unsigned long long)off[j],
                        (unsigned long long)len[j]);
                CHECK(0);
            }
        off[i] = o;
        len[i] = need;
        live[i] = 1;
        used += need;
        CHECK(a.used == used);
    }
    pxsi_arena_fini(&a);
}

/* A local store of 16 MiB streams 64 MiB of 64 KiB objects (resolves = 1,
 * each resolved 4 puts later, none evicted by hand): the puts' early
 * reclaim gives the resolved objects' gaps back while hot, so every block
 * lies within PXSI_RECLAIM_EVERY + the objects in flight (+ one). */
static void
local_store_hot(void)
{
    pxs_store_opts_t so;
    CHECK_OK(pxs_store_opts_init(&so));
    so.connector = PXS_CONN_LOCAL;
    so.arena_bytes = (size_t)16 << 20;
    pxs_store_t *st = NULL;
    CHECK_OK(pxs_store_create(MPI_COMM_NULL, &so, &st));
    const size_t sz = (size_t)64 << 10;
    unsigned char *data = malloc(sz), *back = malloc(sz);
    CHECK(data && back);
    pxs_proxy_t p[5];
    uint64_t top = 0;
    for (int n = 0; n < 1024; n++) {
        memset(data, n & 0xff, sz);
        CHECK_OK(pxs_store_put(st, data, sz, NULL, &p[n % 5]));
        pxs_proxy_info_t pi;
        CHECK_OK(pxs_proxy_decode(p[n % 5].bytes, PXS_PROXY_SIZE, &pi));
        if (pi.offset + sz > top)
            top = pi.offset + sz;
        if (n >= 4) {
            size_t got = 0;
            CHECK_OK(pxs_store_resolve(st, &p[(n - 4) % 5], back, sz, &got));
            CHECK(got == sz && back[0] == ((n - 4) & 0xff) && back[sz - 1] == back[0]);
        }
    }
    if (top > PXSI_RECLAIM_EVERY + 6 * sz) {
        fprintf(stderr, "blocks reached %llu B of the arena\n", (unsigned long long)top);
        CHECK(0);
    }
    free(data);
    free(back);
    CHECK_OK(pxs_store_destroy(st));
}

int
main(void)
{
    allocator();
    local_store_detail();
    hot_stream();
    hot_random();
    local_store_hot();
    printf("store allocator OK\n");
    return 0;
}
