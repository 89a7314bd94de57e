/* Reserved puts on the local connector (docs/DESIGN.md, section "Reserved
 * puts"): it hands out no arena memory, so reserve gives a private
 * page-aligned buffer (in_arena 0) and commit puts it: the bytes resolve,
 * the put options (budget, checksum) hold, a full arena is AGAIN at commit
 * (after the timeout), larger than the arena is TOO_BIG at reserve (no
 * private buffer for a put that cannot succeed); cancel and destroy free
 * the buffer (ASan/LSan builds check the leak); a second commit/cancel, a
 * zeroed reservation or one of another store is PXS_ERR_INVALID. */
#include <stdint.h>
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

int
main(void)
{
    pxs_store_t *st = mk(1 << 20, 0.1), *other = mk(1 << 20, 0.1);
    pxs_reservation_t res, copy, zero;
    pxs_proxy_t p;
    memset(&zero, 0, sizeof zero);

    /* round trip, budget 2, checksum */
    pxs_put_opts_t po;
    CHECK_OK(pxs_put_opts_init(&po));
    po.resolves = 2;
    po.checksum = 1;
    CHECK_OK(pxs_store_reserve(st, 100000, &po, &res));
    CHECK(res.in_arena == 0 && res.len == 100000 && ((uintptr_t)res.data & 4095) == 0);
    pxs_test_fill(res.data, res.len, 9);
    copy = res;
    CHECK_OK(pxs_store_commit(st, &res, &p));
    CHECK(res.data == NULL);
    unsigned char *b = malloc(100000);
    size_t n = 0;
    for (int i = 0; i < 2; i++) {
        CHECK_OK(pxs_store_resolve(st, &p, b, 100000, &n));
        CHECK(n == 100000 && pxs_test_verify(b, n, 9));
    }
    CHECK_RC(pxs_store_resolve(st, &p, b, 100000, &n), PXS_ERR_STALE);
    free(b);

    /* ended once */
    CHECK_RC(pxs_store_commit(st, &res, &p), PXS_ERR_INVALID);
    CHECK_RC(pxs_store_commit(st, &copy, &p), PXS_ERR_INVALID);
    CHECK_RC(pxs_store_cancel(st, &copy), PXS_ERR_INVALID);
    CHECK_RC(pxs_store_commit(st, &zero, &p), PXS_ERR_INVALID);
    CHECK_RC(pxs_store_reserve(st, 0, NULL, &res), PXS_ERR_INVALID);
    CHECK_OK(pxs_store_reserve(other, 64, NULL, &res));
    CHECK_RC(pxs_store_commit(st, &res, &p), PXS_ERR_INVALID);
    CHECK(strstr(pxs_last_error_detail(), "another store"));
    CHECK_OK(pxs_store_cancel(other, &res));
    CHECK_RC(pxs_store_cancel(other, &res), PXS_ERR_INVALID);

    /* beyond the arena: TOO_BIG at once, *res zeroed */
    CHECK_RC(pxs_store_reserve(st, (1 << 20) + 1, NULL, &res), PXS_ERR_TOO_BIG);
    CHECK(strstr(pxs_last_error_detail(), "> arena"));
    CHECK(res.data == NULL);
    CHECK_RC(pxs_store_reserve(st, SIZE_MAX, NULL, &res), PXS_ERR_TOO_BIG);

    /* full arena: the commit's put waits, then AGAIN (reservation ended) */
    po.resolves = 0;
    po.checksum = 0;
    pxs_proxy_t k;
    CHECK_OK(pxs_store_reserve(st, 1 << 20, &po, &res));
    memset(res.data, 1, res.len);
    CHECK_OK(pxs_store_commit(st, &res, &k)); /* the whole arena, kept */
    CHECK_OK(pxs_store_reserve(st, 4096, NULL, &res));
    CHECK_RC(pxs_store_commit(st, &res, &p), PXS_ERR_AGAIN);
    CHECK_RC(pxs_store_cancel(st, &res), PXS_ERR_INVALID);
    CHECK_OK(pxs_store_evict(st, &k));

    /* cancel frees; destroy frees what is outstanding */
    CHECK_OK(pxs_store_reserve(st, 5000, NULL, &res));
    CHECK_OK(pxs_store_cancel(st, &res));
    CHECK_OK(pxs_store_reserve(st, 5000, NULL, &res));
    CHECK_OK(pxs_store_reserve(other, 70000, NULL, &copy));
    CHECK_OK(pxs_store_destroy(st));
    CHECK_OK(pxs_store_destroy(other));
    printf("reserve (local): ok\n");
    return 0;
}
