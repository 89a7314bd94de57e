/* Local connector (one process, no MPI): round trip, evict-after-N, keep and
 * evict, views, async, checksum mismatch, backpressure, forged proxies, a
 * producer thread against a consumer thread; drop (one budget unit, keep: a
 * no-op); releasing a view twice or a copy of it (PXS_ERR_INVALID, nothing
 * changes); views from several threads at once; PXS_ERR_NOMEM for an arena
 * that cannot be allocated; the thread's interrupt hook (pxs_interrupt_hook)
 * ending a put that waits forever on a full arena. */
#include <pthread.h>
#include <stdlib.h>

#include "pxs_test.h"
#include "store/store_int.h"

static pxs_store_t *
mk(size_t arena, double timeout)
{
    pxs_store_opts_t so;
    CHECK_OK(pxs_store_opts_init(&so));
    so.connector = PXS_CONN_LOCAL;
    so.arena_bytes = arena;
    so.put_timeout = timeout;
    pxs_store_t *st = NULL;
    CHECK_OK(pxs_store_create(MPI_COMM_NULL, &so, &st));
    return st;
}

static pxs_proxy_t
put(pxs_store_t *st, size_t len, uint64_t seed, uint32_t resolves, int ck)
{
    unsigned char *b = malloc(len ? len : 1);
    pxs_test_fill(b, len, seed);
    pxs_put_opts_t po;
    CHECK_OK(pxs_put_opts_init(&po));
    po.resolves = resolves;
    po.checksum = ck;
    pxs_proxy_t p;
    CHECK_OK(pxs_store_put(st, b, len, &po, &p));
    free(b);
    return p;
}

/* ASan: let the impossible malloc return NULL (PXS_ERR_NOMEM) instead of
 * reporting it; an ASAN_OPTIONS environment adds to this. */
const char *__asan_default_options(void);
const char *
__asan_default_options(void)
{
    return "allocator_may_return_null=1";
}

/* Threads sharing a handle: view/release (and a refused second release) */
static pxs_proxy_t vkeep;
static void *
viewer(void *arg)
{
    pxs_store_t *st = arg;
    for (int i = 0; i < 20000; i++) {
        pxs_view_t v;
        CHECK_OK(pxs_store_view(st, &vkeep, &v));
        pxs_view_t c = v;
        CHECK(v.len == 777 && pxs_test_verify(v.data, v.len, 55));
        CHECK_OK(pxs_store_release(st, &v));
        CHECK_RC(pxs_store_release(st, &c), PXS_ERR_INVALID);
    }
    return NULL;
}

static void
drop_and_release(void)
{
    pxs_store_t *st = mk(1 << 20, 1);
    unsigned char buf[1000];
    size_t len = 0, used = 1;
    /* drop: one unit of the budget */
    pxs_proxy_t p2 = put(st, 1000, 61, 2, 0);
    CHECK_OK(pxs_store_drop(st, &p2));
    CHECK_OK(pxs_store_resolve(st, &p2, buf, sizeof buf, &len));
    CHECK(len == 1000 && pxs_test_verify(buf, len, 61));
    CHECK_RC(pxs_store_resolve(st, &p2, buf, sizeof buf, &len), PXS_ERR_STALE);
    CHECK_RC(pxs_store_drop(st, &p2), PXS_ERR_STALE);
    pxs_proxy_t p1 = put(st, 1000, 62, 1, 0);
    CHECK_OK(pxs_store_drop(st, &p1)); /* the only unit: gone */
    CHECK_RC(pxs_store_resolve(st, &p1, buf, sizeof buf, &len), PXS_ERR_STALE);
    CHECK_OK(pxs_store_used(st, &used, NULL));
    CHECK(used == 0);
    /* keep: drop does nothing; evict (the owner, always, here) ends it */
    pxs_proxy_t pk = put(st, 1000, 63, 0, 1);
    for (int i = 0; i < 5; i++)
        CHECK_OK(pxs_store_drop(st, &pk));
    CHECK_OK(pxs_store_resolve(st, &pk, buf, sizeof buf, &len));
    /* forged */
    pxs_proxy_info_t pi;
    CHECK_OK(pxs_proxy_decode(pk.bytes, 64, &pi));
    pi.size = 999;
    pxs_proxy_t f;
    CHECK_OK(pxs_proxy_encode(&pi, &f));
    CHECK_RC(pxs_store_drop(st, &f), PXS_ERR_CORRUPT);
    CHECK_RC(pxs_store_evict(st, &f), PXS_ERR_CORRUPT);
    pi.size = 1000;
    pi.flags = 0; /* drops KEEP and CRC */
    CHECK_OK(pxs_proxy_encode(&pi, &f));
    CHECK_RC(pxs_store_drop(st, &f), PXS_ERR_CORRUPT);
    CHECK_RC(pxs_store_drop(st, NULL), PXS_ERR_INVALID);
    CHECK_RC(pxs_store_drop(NULL, &pk), PXS_ERR_INVALID);

    /* double release: the second (and a copy's) is refused, nothing moves */
    pxs_view_t v, c, w;
    CHECK_OK(pxs_store_view(st, &pk, &v));
    c = v;
    CHECK_OK(pxs_store_view(st, &pk, &w));
    CHECK_OK(pxs_store_release(st, &v));
    CHECK_RC(pxs_store_release(st, &v), PXS_ERR_INVALID);
    CHECK_RC(pxs_store_release(st, &c), PXS_ERR_INVALID);
    CHECK_RC(pxs_store_destroy(st), PXS_ERR_BUSY); /* w is still live */
    CHECK_OK(pxs_store_evict(st, &pk));
    CHECK_OK(pxs_store_used(st, &used, NULL));
    CHECK(used == 1024); /* pinned by w only */
    CHECK_OK(pxs_store_release(st, &w));
    CHECK_RC(pxs_store_release(st, &w), PXS_ERR_INVALID);
    CHECK_OK(pxs_store_used(st, &used, NULL));
    CHECK(used == 0); /* inflight back to exactly 0 */
    CHECK_RC(pxs_store_evict(st, &pk), PXS_ERR_STALE);

    /* views from several threads at once on one handle */
    vkeep = put(st, 777, 55, 0, 0);
    pthread_t th[3];
    for (int i = 0; i < 3; i++)
        pthread_create(&th[i], NULL, viewer, st);
    viewer(st);
    for (int i = 0; i < 3; i++)
        pthread_join(th[i], NULL);
    CHECK_OK(pxs_store_evict(st, &vkeep));
    CHECK_OK(pxs_store_used(st, &used, NULL));
    CHECK(used == 0);
    CHECK_OK(pxs_store_destroy(st)); /* no view left behind */

    /* an arena that cannot be allocated: PXS_ERR_NOMEM, no crash */
    pxs_store_opts_t so;
    CHECK_OK(pxs_store_opts_init(&so));
    so.connector = PXS_CONN_LOCAL;
    so.arena_bytes = (size_t)1 << 60;
    pxs_store_t *big = NULL;
    CHECK_RC(pxs_store_create(MPI_COMM_NULL, &so, &big), PXS_ERR_NOMEM);
    CHECK(big == NULL);
    so.arena_bytes = 1 << 20;
    CHECK_RC(pxs_store_create(MPI_COMM_NULL, &so, NULL), PXS_ERR_INVALID);
}

static int hook_n;
static int
stop_on_third(void *arg)
{
    (void)arg;
    return ++hook_n >= 3;
}
static int
never_stop(void *arg)
{
    (void)arg;
    hook_n++;
    return 0;
}

static void
interrupt_hook(void)
{
    pxs_store_t *st = mk(64 << 10, -1.0);             /* put_timeout: forever */
    pxs_proxy_t full = put(st, 64 << 10, 1, 0, 0), p; /* the whole arena, kept */
    unsigned char b[100] = {0};
    size_t used = 0;
    /* without the hook this put would wait forever: the hook is asked
     * until it says stop, then the put fails as its timeout would */
    hook_n = 0;
    CHECK_OK(pxs_interrupt_hook(stop_on_third, NULL));
    CHECK_RC(pxs_store_put(st, b, sizeof b, NULL, &p), PXS_ERR_AGAIN);
    CHECK(hook_n == 3);
    CHECK(strstr(pxs_last_error_detail(), "arena full") != NULL);
    /* latched: the next wait of this thread ends at once, no more asking */
    CHECK_RC(pxs_store_put(st, b, sizeof b, NULL, &p), PXS_ERR_AGAIN);
    CHECK(hook_n == 3);
    CHECK_OK(pxs_store_used(st, &used, NULL));
    CHECK(used == (64 << 10)); /* nothing stored */
    /* a hook that never says stop does not end a bounded wait early */
    hook_n = 0;
    CHECK_OK(pxs_interrupt_hook(never_stop, NULL));
    pxs_put_opts_t po;
    CHECK_OK(pxs_put_opts_init(&po));
    po.timeout = 0.2;
    CHECK_RC(pxs_store_put(st, b, sizeof b, &po, &p), PXS_ERR_AGAIN);
    CHECK(hook_n >= 1);
    /* removed: not asked any more */
    CHECK_OK(pxs_interrupt_hook(NULL, NULL));
    hook_n = 0;
    CHECK_RC(pxs_store_put(st, b, sizeof b, &po, &p), PXS_ERR_AGAIN);
    CHECK(hook_n == 0);
    CHECK_OK(pxs_store_evict(st, &full));
    p = put(st, 100, 2, 1, 0); /* room again */
    CHECK_OK(pxs_store_destroy(st));
}

#define NT 2000
static pxs_proxy_t q[NT];
static volatile int nq;
static pthread_mutex_t qm = PTHREAD_MUTEX_INITIALIZER;

static void *
consumer(void *arg)
{
    pxs_store_t *st = arg;
    unsigned char buf[8192];
    for (int i = 0; i < NT; i++) {
        for (;;) {
            pthread_mutex_lock(&qm);
            int n = nq;
            pthread_mutex_unlock(&qm);
            if (n > i)
                break;
            sched_yield();
        }
        size_t len = 0;
        CHECK_OK(pxs_store_resolve(st, &q[i], buf, sizeof buf, &len));
        CHECK(pxs_test_verify(buf, len, (uint64_t)i));
        if (i > 4) /* old proxy, slot probably reused: stale, never new bytes */
            CHECK_RC(pxs_store_resolve(st, &q[i - 4], buf, sizeof buf, &len), PXS_ERR_STALE);
    }
    return NULL;
}

int
main(void)
{
    /* round trip of many sizes */
    pxs_store_t *st = mk(8 << 20, 1);
    CHECK(pxs_store_rank(st) == 0);
    static const size_t sz[] = {0, 1, 63, 64, 65, 4096, 100000, 1 << 20, 5 << 20};
    unsigned char *buf = malloc(8 << 20);
    for (size_t i = 0; i < sizeof sz / sizeof sz[0]; i++) {
        pxs_proxy_t p = put(st, sz[i], i, 1, (int)(i % 2));
        size_t len = 99;
        CHECK_OK(pxs_store_resolve(st, &p, buf, 8 << 20, &len));
        CHECK(len == sz[i] && pxs_test_verify(buf, len, i));
        CHECK_RC(pxs_store_resolve(st, &p, buf, 8 << 20, &len), PXS_ERR_STALE);
    }
    size_t used = 1, cap = 0;
    CHECK_OK(pxs_store_used(st, &used, &cap));
    CHECK(used == 0 && cap == (8 << 20));

    /* evict-after-N, keep, evict */
    pxs_proxy_t p3 = put(st, 100, 3, 3, 0), pk = put(st, 100, 4, 0, 0);
    size_t len;
    for (int i = 0; i < 3; i++)
        CHECK_OK(pxs_store_resolve(st, &p3, buf, 100, &len));
    CHECK_RC(pxs_store_resolve(st, &p3, buf, 100, &len), PXS_ERR_STALE);
    for (int i = 0; i < 10; i++)
        CHECK_OK(pxs_store_resolve(st, &pk, buf, 100, &len));
    /* view pins the object across an evict */
    pxs_view_t v;
    CHECK_OK(pxs_store_view(st, &pk, &v));
    CHECK_RC(pxs_store_destroy(st), PXS_ERR_BUSY);
    CHECK_OK(pxs_store_evict(st, &pk));
    CHECK_RC(pxs_store_evict(st, &pk), PXS_ERR_STALE);
    CHECK_RC(pxs_store_resolve(st, &pk, buf, 100, &len), PXS_ERR_STALE);
    CHECK_OK(pxs_store_used(st, &used, NULL));
    CHECK(used == 128); /* still pinned by the view */
    CHECK(v.len == 100 && pxs_test_verify(v.data, v.len, 4));
    CHECK_OK(pxs_store_release(st, &v));
    CHECK_OK(pxs_store_used(st, &used, NULL));
    CHECK(used == 0);

    /* async */
    pxs_proxy_t pa = put(st, 5000, 7, 1, 1), pb = put(st, 6000, 8, 1, 0);
    pxs_request_t *ra, *rb;
    unsigned char *b2 = malloc(6000);
    CHECK_OK(pxs_store_resolve_start(st, &pa, buf, 5000, &ra));
    CHECK_OK(pxs_store_resolve_start(st, &pb, b2, 6000, &rb));
    int done = 0;
    CHECK_OK(pxs_store_resolve_test(rb, &done, &len));
    CHECK(done && len == 6000 && pxs_test_verify(b2, len, 8));
    CHECK_OK(pxs_store_resolve_wait(ra, &len));
    CHECK(len == 5000 && pxs_test_verify(buf, len, 7));
    free(b2);

    /* resolve_alloc + checksum mismatch through the test hook */
    pxs_proxy_t pc = put(st, 3000, 9, 0, 1);
    void *ab = NULL;
    CHECK_OK(pxs_store_resolve_alloc(st, &pc, &ab, &len));
    CHECK(len == 3000 && pxs_test_verify(ab, len, 9));
    pxs_free(ab);
    pxs_proxy_info_t ci;
    CHECK_OK(pxs_proxy_decode(pc.bytes, 64, &ci));
    CHECK_OK(pxsi_store_test_corrupt(st, ci.offset + 17));
    CHECK_RC(pxs_store_resolve(st, &pc, buf, 3000, &len), PXS_ERR_CORRUPT);
    CHECK_RC(pxs_store_view(st, &pc, &v), PXS_ERR_CORRUPT);
    CHECK_OK(pxs_store_evict(st, &pc));

    /* forged */
    pxs_proxy_t f = pc;
    f.bytes[20] ^= 1;
    CHECK_RC(pxs_store_resolve(st, &f, buf, 3000, &len), PXS_ERR_CORRUPT);
    ci.offset = 1ull << 40;
    CHECK_OK(pxs_proxy_encode(&ci, &f));
    CHECK_RC(pxs_store_resolve(st, &f, buf, 3000, &len), PXS_ERR_CORRUPT);
    CHECK_OK(pxs_proxy_decode(pc.bytes, 64, &ci));
    ci.kind = PXS_CONN_RMA;
    CHECK_OK(pxs_proxy_encode(&ci, &f));
    CHECK_RC(pxs_store_resolve(st, &f, buf, 3000, &len), PXS_ERR_CORRUPT);
    CHECK_OK(pxs_proxy_decode(pc.bytes, 64, &ci));
    ci.owner = 1;
    CHECK_OK(pxs_proxy_encode(&ci, &f));
    CHECK_RC(pxs_store_resolve(st, &f, buf, 3000, &len), PXS_ERR_CORRUPT);

    /* backpressure, TOO_BIG */
    CHECK_RC(pxs_store_put(st, buf, (8 << 20) + 1, NULL, &f), PXS_ERR_TOO_BIG);
    pxs_put_opts_t po;
    CHECK_OK(pxs_put_opts_init(&po));
    po.timeout = 0.05;
    pxs_proxy_t full[8];
    for (int i = 0; i < 8; i++)
        CHECK_OK(pxs_store_put(st, buf, 1 << 20, &po, &full[i]));
    CHECK_RC(pxs_store_put(st, buf, 1 << 20, &po, &f), PXS_ERR_AGAIN);
    CHECK_OK(pxs_store_resolve(st, &full[3], buf + (1 << 20), 1 << 20, &len));
    CHECK_OK(pxs_store_put(st, buf, 1 << 20, &po, &f)); /* space again */
    CHECK_OK(pxs_store_resolve(st, &f, buf + (1 << 20), 1 << 20, &len));
    for (int i = 0; i < 8; i++)
        if (i != 3)
            CHECK_OK(pxs_store_resolve(st, &full[i], buf + (1 << 20), 1 << 20, &len));
    CHECK_OK(pxs_store_destroy(st));

    /* threads: producer (main) streams through a small arena, consumer resolves */
    st = mk(64 << 10, 10);
    pthread_t th;
    pthread_create(&th, NULL, consumer, st);
    for (int i = 0; i < NT; i++) {
        pxs_proxy_t p = put(st, (size_t)(i * 37) % 8192, (uint64_t)i, 1, 0);
        pthread_mutex_lock(&qm);
        q[i] = p;
        nq = i + 1;
        pthread_mutex_unlock(&qm);
    }
    pthread_join(th, NULL);
    CHECK_OK(pxs_store_used(st, &used, NULL));
    CHECK(used == 0);
    CHECK_OK(pxs_store_destroy(st));
    free(buf);
    drop_and_release();
    interrupt_hook();
    printf("store local OK\n");
    return 0;
}
