/* The store front end and the connector-common layer, one process:
 * - an optional connector op left NULL gives PXS_ERR_NOTSUP with a detail
 *   naming the op and the connector, and the connector is not called (the
 *   object's budget is untouched): the local connector's table is copied with
 *   optional ops set NULL and swapped into a live store (test hook);
 * - errors keep their cause: pxsi_err_prefix prefixes context to the detail,
 *   and a failed async resolve gives back its own cause at wait, whatever
 *   failed on the thread in between. */
#include <stdlib.h>

#include "pxs_test.h"
#include "store/store_int.h"
#include "util/util.h"

static void
detail_has(const char *a, const char *b)
{
    const char *d = pxs_last_error_detail();
    if (!strstr(d, a) || (b && !strstr(d, b))) {
        fprintf(stderr, "detail \"%s\" lacks \"%s\" / \"%s\"\n", d, a, b ? b : "");
        exit(1);
    }
}

/* Optional ops NULL -> NOTSUP naming op and connector; nothing consumed. */
static void
optional_ops(pxs_store_t *st)
{
    unsigned char data[256], buf[256];
    pxs_test_fill(data, sizeof data, 5);
    pxs_put_opts_t po;
    CHECK_OK(pxs_put_opts_init(&po));
    po.resolves = 1;
    pxs_proxy_t p;
    CHECK_OK(pxs_store_put(st, data, sizeof data, &po, &p));
    static pxsi_store_conn_ops_t t;
    t = pxsi_store_local_ops;
    t.view = NULL;
    t.drop = NULL;
    t.evict = NULL;
    t.resolve_start = NULL;
    t.progress = NULL;
    t.used = NULL;
    t.stats = NULL;
    const pxsi_store_conn_ops_t *old = pxsi_store_test_swap_ops(st, &t);
    size_t len = 0;
    if (!old) {
        printf("optional ops: test hooks not built, skipped\n");
        CHECK_OK(pxs_store_resolve(st, &p, buf, sizeof buf, &len));
        return;
    }
    CHECK(old == &pxsi_store_local_ops);
    pxs_view_t v;
    CHECK_RC(pxs_store_view(st, &p, &v), PXS_ERR_NOTSUP);
    detail_has("view", "\"local\" connector");
    CHECK_RC(pxs_store_drop(st, &p), PXS_ERR_NOTSUP);
    detail_has("drop", "\"local\"");
    CHECK_RC(pxs_store_evict(st, &p), PXS_ERR_NOTSUP);
    detail_has("evict", "\"local\"");
    pxs_request_t *rq = NULL;
    CHECK_RC(pxs_store_resolve_start(st, &p, buf, sizeof buf, &rq), PXS_ERR_NOTSUP);
    CHECK(rq == NULL);
    detail_has("resolve_start", "\"local\"");
    CHECK_RC(pxs_store_progress(st), PXS_ERR_NOTSUP);
    detail_has("progress", "\"local\"");
    size_t used = 0, cap = 0;
    CHECK_RC(pxs_store_used(st, &used, &cap), PXS_ERR_NOTSUP);
    detail_has("used", "\"local\"");
    pxsi_store_stats_t ss;
    CHECK_RC(pxsi_store_stats(st, &ss), PXS_ERR_NOTSUP);
    /* required ops still run; with budget 1 the resolve must be the first
     * use: none of the refused calls consumed it */
    CHECK_OK(pxs_store_resolve(st, &p, buf, sizeof buf, &len));
    CHECK(len == sizeof data && memcmp(buf, data, len) == 0);
    CHECK(pxsi_store_test_swap_ops(st, old) == &t);
    CHECK_RC(pxs_store_resolve(st, &p, buf, sizeof buf, &len), PXS_ERR_STALE);
}

int
main(void)
{
    pxs_store_opts_t so;
    CHECK_OK(pxs_store_opts_init(&so));
    so.connector = PXS_CONN_LOCAL;
    so.arena_bytes = 1 << 20;
    pxs_store_t *st = NULL;
    CHECK_OK(pxs_store_create(MPI_COMM_NULL, &so, &st));
    optional_ops(st);

    unsigned char data[256], buf[256];
    pxs_test_fill(data, sizeof data, 5);
    pxs_put_opts_t po;
    CHECK_OK(pxs_put_opts_init(&po));
    pxs_proxy_t p;
    size_t len = 0;
    pxs_request_t *rq = NULL;

    /* ---- pxsi_err_prefix keeps the cause */
    CHECK_RC(pxsi_err(PXS_ERR_MPI, "low", "root cause %d", 42), PXS_ERR_MPI);
    CHECK_RC(pxsi_err_prefix(PXS_ERR_AGAIN, "high", "while doing %s", "x"), PXS_ERR_AGAIN);
    CHECK(strcmp(pxs_last_error_detail(), "high: while doing x: low: root cause 42") == 0);

    /* ---- a failed async resolve keeps its own cause until wait */
    po.resolves = 1;
    CHECK_OK(pxs_store_put(st, data, sizeof data, &po, &p));
    CHECK_OK(pxs_store_resolve(st, &p, buf, sizeof buf, &len));      /* spends it */
    CHECK_OK(pxs_store_resolve_start(st, &p, buf, sizeof buf, &rq)); /* done: STALE */
    pxs_proxy_t bad;
    memset(&bad, 0, sizeof bad);
    CHECK_RC(pxs_store_resolve(st, &bad, buf, sizeof buf, &len), PXS_ERR_CORRUPT);
    CHECK_RC(pxs_store_resolve_wait(rq, &len), PXS_ERR_STALE);
    detail_has("async resolve failed", "resolve budget used up");
    /* a buffer too small: TRUNC with the sizes, after an unrelated failure */
    CHECK_OK(pxs_store_put(st, data, sizeof data, &po, &p));
    CHECK_OK(pxs_store_resolve_start(st, &p, buf, 10, &rq));
    CHECK_RC(pxs_store_resolve(st, &bad, buf, sizeof buf, &len), PXS_ERR_CORRUPT);
    int done = 0;
    CHECK_RC(pxs_store_resolve_test(rq, &done, &len), PXS_ERR_TRUNC);
    CHECK(done == 1 && len == sizeof data);
    detail_has("async resolve failed", "object is 256 bytes, buffer 10");
    CHECK_OK(pxs_store_evict(st, &p));

    CHECK_OK(pxs_store_destroy(st));
    printf("store ops: optional ops NOTSUP, errors keep their cause: ok\n");
    return 0;
}
