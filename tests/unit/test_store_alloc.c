/* The arena allocator's real free space (issue 8, item 9): free bytes split
 * among gaps, the largest gap, and what the "arena full" detail says.
 *  - gaps and largest gap as blocks come and go (pxsi_arena_gaps);
 *  - the practical limits store.h states: objects up to half the arena
 *    stream (two in flight), larger ones go one at a time, and a long-lived
 *    block pins the largest gap below the free total;
 *  - a local store with 4 MiB free in two 2 MiB gaps refuses a 3 MiB put
 *    with PXS_ERR_AGAIN and a detail naming need, free, gaps, largest block. */
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

int
main(void)
{
    allocator();
    local_store_detail();
    printf("store allocator OK\n");
    return 0;
}
