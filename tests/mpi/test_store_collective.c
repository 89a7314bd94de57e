/* Store collectives fail together and say why; the thread guard; the
 * arena-full detail (issue 8, items 3, 6, 9):
 *  - an impossible arena (1 TiB per rank: beyond /dev/shm and memory) on
 *    every rank, through opts.arena_bytes and through PXS_ARENA_BYTES, and on
 *    one rank only: every rank gets PXS_ERR_NOMEM with a detail naming the
 *    size and the limit, nobody hangs, and a normal create works afterwards;
 *  - destroy while one rank holds a view (then an async request): EVERY rank
 *    gets PXS_ERR_BUSY, the others' detail names the busy rank, the store
 *    stays usable everywhere, and after the busy rank finishes, every rank
 *    calls destroy again and it succeeds (the documented retry loop);
 *  - the in-use guard: while a call is "running" (test hook), another call,
 *    from this thread or another one, is PXS_ERR_BUSY and touches nothing; a
 *    destroy that finds the guard held returns BUSY before any collective,
 *    and a retry joins the peers that are waiting;
 *  - fragmentation: 4 MiB free in two 2 MiB gaps refuses a 3 MiB put with
 *    PXS_ERR_AGAIN and a detail naming the free bytes and the largest gap.
 * MPI is initialised with MPI_THREAD_SERIALIZED (osc pt2pt refuses windows
 * under MPI_THREAD_MULTIPLE), or MPI_THREAD_FUNNELED with the argument
 * "funneled": then a call from another thread is PXS_ERR_INVALID. */
#include <pthread.h>
#include <stdlib.h>

#include "pxs_test.h"
#include "store/store_int.h"

static int rank, size, provided;

#define TIB ((size_t)1 << 40)

static void
check_detail_has(const char *what)
{
    const char *d = pxs_last_error_detail();
    if (!d || !strstr(d, what)) {
        fprintf(stderr, "[rank %d] detail \"%s\" lacks \"%s\"\n", rank, d ? d : "(null)", what);
        CHECK(0);
    }
}

static void
impossible_arena(void)
{
    pxs_store_opts_t so;
    pxs_store_t *st = NULL;

    /* every rank asks for 1 TiB */
    CHECK_OK(pxs_store_opts_init(&so));
    so.arena_bytes = TIB;
    CHECK_RC(pxs_store_create(MPI_COMM_WORLD, &so, &st), PXS_ERR_NOMEM);
    CHECK(st == NULL);
    check_detail_has("1 TiB");
    check_detail_has("exceeds");

    /* the same through the environment */
    CHECK(setenv("PXS_ARENA_BYTES", "1024G", 1) == 0);
    CHECK_OK(pxs_store_opts_init(&so));
    CHECK_RC(pxs_store_create(MPI_COMM_WORLD, &so, &st), PXS_ERR_NOMEM);
    CHECK(st == NULL);
    check_detail_has("1 TiB");
    CHECK(unsetenv("PXS_ARENA_BYTES") == 0);

    /* only the last rank asks for too much: all fail together */
    CHECK_OK(pxs_store_opts_init(&so));
    so.arena_bytes = rank == size - 1 ? TIB : (size_t)1 << 20;
    CHECK_RC(pxs_store_create(MPI_COMM_WORLD, &so, &st), PXS_ERR_NOMEM);
    CHECK(st == NULL);
    check_detail_has("1 TiB");

    /* and nobody was left behind in a collective */
    CHECK_OK(pxs_store_opts_init(&so));
    so.arena_bytes = (size_t)1 << 20;
    CHECK_OK(pxs_store_create(MPI_COMM_WORLD, &so, &st));
    CHECK_OK(pxs_store_destroy(st));
}

static pxs_store_t *
small_store(void)
{
    pxs_store_opts_t so;
    CHECK_OK(pxs_store_opts_init(&so));
    so.arena_bytes = (size_t)1 << 20;
    pxs_store_t *st = NULL;
    CHECK_OK(pxs_store_create(MPI_COMM_WORLD, &so, &st));
    return st;
}

/* Rank 0 puts a keep object; every rank gets its proxy. */
static pxs_proxy_t
shared_object(pxs_store_t *st, unsigned char *data, size_t len)
{
    pxs_put_opts_t po;
    CHECK_OK(pxs_put_opts_init(&po));
    po.resolves = 0;
    pxs_proxy_t p;
    memset(&p, 0, sizeof p);
    pxs_test_fill(data, len, 77);
    if (rank == 0)
        CHECK_OK(pxs_store_put(st, data, len, &po, &p));
    MPI_Bcast(&p, (int)sizeof p, MPI_BYTE, 0, MPI_COMM_WORLD);
    return p;
}

/* After a BUSY destroy the store works on every rank. */
static void
still_usable(pxs_store_t *st, const pxs_proxy_t *p, size_t len)
{
    unsigned char buf[4096];
    size_t n = 0;
    CHECK_OK(pxs_store_resolve(st, p, buf, sizeof buf, &n));
    CHECK(n == len && pxs_test_verify(buf, n, 77));
    MPI_Barrier(MPI_COMM_WORLD);
}

static void
destroy_busy_view(void)
{
    pxs_store_t *st = small_store();
    unsigned char data[3000];
    pxs_proxy_t p = shared_object(st, data, sizeof data);
    int busy_rank = size - 1;
    pxs_view_t v;
    if (rank == busy_rank)
        CHECK_OK(pxs_store_view(st, &p, &v));
    /* the documented loop: every rank calls destroy until it is not BUSY;
     * the busy rank releases its view when destroy says BUSY */
    int rounds = 0, rc;
    while ((rc = pxs_store_destroy(st)) == PXS_ERR_BUSY) {
        rounds++;
        CHECK(rounds == 1); /* only the first round is busy */
        check_detail_has("has 1 view(s) and 0 async request(s)");
        char who[32];
        snprintf(who, sizeof who, "rank %d", busy_rank);
        check_detail_has(who);
        still_usable(st, &p, sizeof data);
        if (rank == busy_rank) {
            CHECK(v.len == sizeof data && pxs_test_verify(v.data, v.len, 77));
            CHECK_OK(pxs_store_release(st, &v));
        }
    }
    CHECK_OK(rc);
    CHECK(rounds == 1);
}

static void
destroy_busy_request(void)
{
    pxs_store_t *st = small_store();
    unsigned char data[3000], buf[3000];
    pxs_proxy_t p = shared_object(st, data, sizeof data);
    int busy_rank = size > 2 ? 1 : 0;
    pxs_request_t *req = NULL;
    if (rank == busy_rank)
        CHECK_OK(pxs_store_resolve_start(st, &p, buf, sizeof buf, &req));
    CHECK_RC(pxs_store_destroy(st), PXS_ERR_BUSY);
    check_detail_has("has 0 view(s) and 1 async request(s)");
    still_usable(st, &p, sizeof data);
    if (rank == busy_rank) {
        size_t n = 0;
        CHECK_OK(pxs_store_resolve_wait(req, &n));
        CHECK(n == sizeof data && pxs_test_verify(buf, n, 77));
    }
    CHECK_OK(pxs_store_destroy(st));
}

typedef struct {
    pxs_store_t *st;
    int rc;
    char detail[512];
} thr_arg_t;

static void *
other_thread(void *arg)
{
    thr_arg_t *a = arg;
    size_t used = 0, cap = 0;
    a->rc = pxs_store_used(a->st, &used, &cap);
    snprintf(a->detail, sizeof a->detail, "%s", pxs_last_error_detail());
    return NULL;
}

static int
call_from_thread(pxs_store_t *st, char *detail, size_t n)
{
    thr_arg_t a = {st, -999, ""};
    pthread_t t;
    CHECK(pthread_create(&t, NULL, other_thread, &a) == 0);
    CHECK(pthread_join(t, NULL) == 0);
    if (detail)
        snprintf(detail, n, "%s", a.detail);
    return a.rc;
}

static void
thread_guard(void)
{
    pxs_store_t *st = small_store();
    unsigned char data[3000];
    pxs_proxy_t p = shared_object(st, data, sizeof data);
    char d[512];

    /* a call "running" (hook): every entry point is BUSY, nothing changes */
    CHECK_OK(pxsi_store_test_hold(st, 1));
    size_t used = 0, cap = 0;
    CHECK_RC(pxs_store_used(st, &used, &cap), PXS_ERR_BUSY);
    check_detail_has("store used from two threads at once");
    unsigned char buf[4096];
    size_t n = 0;
    CHECK_RC(pxs_store_resolve(st, &p, buf, sizeof buf, &n), PXS_ERR_BUSY);
    pxs_proxy_t q;
    CHECK_RC(pxs_store_put(st, data, 10, NULL, &q), PXS_ERR_BUSY);
    CHECK_RC(pxs_store_progress(st), PXS_ERR_BUSY);
    /* from another thread as well (returns before any MPI call) */
    CHECK(call_from_thread(st, d, sizeof d) == PXS_ERR_BUSY);
    CHECK(strstr(d, "two threads") != NULL);
    CHECK_OK(pxsi_store_test_hold(st, 0));

    /* not held: the call works (and nothing was consumed above: a keep
     * object, resolved now) */
    CHECK_OK(pxs_store_resolve(st, &p, buf, sizeof buf, &n));
    CHECK(n == sizeof data && pxs_test_verify(buf, n, 77));
    /* from another thread, one at a time: allowed with MPI_THREAD_SERIALIZED
     * or more, else PXS_ERR_INVALID naming the thread level */
    int rc = call_from_thread(st, d, sizeof d);
    if (provided >= MPI_THREAD_SERIALIZED) {
        CHECK_RC(rc, PXS_OK);
    } else {
        CHECK_RC(rc, PXS_ERR_INVALID);
        CHECK(strstr(d, "main") != NULL);
    }
    MPI_Barrier(MPI_COMM_WORLD);

    /* destroy with the guard held on rank 0: BUSY there at once (no
     * collective entered); the peers wait in destroy until rank 0 calls
     * again, and then all succeed */
    if (rank == 0) {
        CHECK_OK(pxsi_store_test_hold(st, 1));
        CHECK_RC(pxs_store_destroy(st), PXS_ERR_BUSY);
        check_detail_has("two threads");
        CHECK_OK(pxsi_store_test_hold(st, 0));
    }
    CHECK_OK(pxs_store_destroy(st));

    /* the local connector is thread-safe: no guard there */
    pxs_store_opts_t lo;
    CHECK_OK(pxs_store_opts_init(&lo));
    lo.connector = PXS_CONN_LOCAL;
    pxs_store_t *ls = NULL;
    CHECK_OK(pxs_store_create(MPI_COMM_SELF, &lo, &ls));
    CHECK_RC(pxsi_store_test_hold(ls, 1), PXS_ERR_INVALID);
    CHECK(call_from_thread(ls, NULL, 0) == PXS_OK);
    CHECK_OK(pxs_store_destroy(ls));
}

static void
fragmentation(void)
{
    pxs_store_opts_t so;
    CHECK_OK(pxs_store_opts_init(&so));
    so.arena_bytes = (size_t)8 << 20;
    pxs_store_t *st = NULL;
    CHECK_OK(pxs_store_create(MPI_COMM_WORLD, &so, &st));
    size_t two = (size_t)2 << 20;
    unsigned char *data = malloc((size_t)3 << 20);
    CHECK(data != NULL);
    pxs_test_fill(data, (size_t)3 << 20, 5);
    pxs_put_opts_t po;
    CHECK_OK(pxs_put_opts_init(&po));
    po.resolves = 0;
    po.timeout = 0;
    pxs_proxy_t p[4];
    for (int i = 0; i < 4; i++)
        CHECK_OK(pxs_store_put(st, data, two, &po, &p[i]));
    /* free the 2nd and 4th block: 4 MiB free in two 2 MiB gaps */
    CHECK_OK(pxs_store_evict(st, &p[1]));
    CHECK_OK(pxs_store_evict(st, &p[3]));
    size_t used = 0;
    CHECK_OK(pxs_store_used(st, &used, NULL));
    CHECK(used == 2 * two);
    pxs_proxy_t q;
    CHECK_RC(pxs_store_put(st, data, (size_t)3 << 20, &po, &q), PXS_ERR_AGAIN);
    check_detail_has("need 3145728 B, free 4194304 B in 2 gap(s), largest free block 2097152 B");
    /* what fits in a gap goes in */
    CHECK_OK(pxs_store_put(st, data, two, &po, &q));
    CHECK_OK(pxs_store_evict(st, &q));
    CHECK_OK(pxs_store_evict(st, &p[0]));
    CHECK_OK(pxs_store_evict(st, &p[2]));
    /* empty again: the 3 MiB object fits */
    CHECK_OK(pxs_store_put(st, data, (size_t)3 << 20, &po, &q));
    CHECK_OK(pxs_store_evict(st, &q));
    free(data);
    CHECK_OK(pxs_store_destroy(st));
}

int
main(int argc, char **argv)
{
    int want = argc > 1 && strcmp(argv[1], "funneled") == 0 ? MPI_THREAD_FUNNELED
                                                           : MPI_THREAD_SERIALIZED;
    MPI_Init_thread(&argc, &argv, want, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    impossible_arena();
    destroy_busy_view();
    destroy_busy_request();
    thread_guard();
    fragmentation();
    if (rank == 0)
        printf("store collectives OK (%d ranks, thread level %d)\n", size, provided);
    MPI_Finalize();
    return 0;
}
