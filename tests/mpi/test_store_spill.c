/* Spill under pressure (docs/DESIGN.md, section "Spill"). 3 ranks, a
 * directory in argv[1]:
 *   rank 0 produces NCH chunks of CH bytes on topic 1 into an RMA store of
 *   ARENA bytes (room for 3 chunks) with spill_path; rank 1 consumes at
 *   once, rank 2 stalls until rank 0 finished sending. Every chunk is
 *   verified by both consumers; rank 0 spilled > 0 objects and its arena
 *   never held more than its size; spilled proxies are HDF5 proxies; a
 *   chunk larger than the arena spills too (TOO_BIG without spill).
 *   Without spill_path a full arena is still PXS_ERR_AGAIN (unchanged). */
#include <stdlib.h>
#include <unistd.h>

#include "pxs_test.h"

enum { NCH = 24, CH = 64 << 10, ARENA = 4 * CH, BIG = 6 * CH };
static int rank;

static void
consume(pxs_store_t *st, pxs_subscriber_t *sub, int *nspill)
{
    pxs_consumer_t *c;
    CHECK_OK(pxs_consumer_create(st, sub, NULL, &c));
    int n = 0;
    for (;;) {
        pxs_event_t ev;
        void *data = NULL;
        size_t len = 0;
        int rc = pxs_consumer_next_object(c, &ev, &data, &len, 60.0);
        if (rc == PXS_END)
            break;
        CHECK_RC(rc, PXS_OK);
        CHECK(ev.seq == (uint64_t)n);
        size_t want = ev.seq == NCH ? BIG : CH;
        CHECK(len == want && pxs_test_verify(data, len, 100 + ev.seq));
        pxs_proxy_info_t pi;
        CHECK_OK(pxs_proxy_decode(ev.proxy.bytes, PXS_PROXY_SIZE, &pi));
        if (pi.kind == PXS_CONN_HDF5) {
            (*nspill)++;
            /* a view of a spilled object, released through the RMA store */
            pxs_view_t v;
            CHECK_OK(pxs_store_view(st, &ev.proxy, &v));
            CHECK(v.len == want && pxs_test_verify(v.data, v.len, 100 + ev.seq));
            CHECK_OK(pxs_store_release(st, &v));
        }
        pxs_free(data);
        n++;
    }
    CHECK(n == NCH + 1);
    CHECK_OK(pxs_consumer_destroy(c));
}

int
main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    CHECK(argc == 2);
    char dir[2048];
    snprintf(dir, sizeof dir, "%s/spill", argv[1]);

    /* without spill_path: unchanged (a full arena fails the put) */
    pxs_store_opts_t so;
    CHECK_OK(pxs_store_opts_init(&so));
    so.arena_bytes = ARENA;
    so.put_timeout = 0;
    pxs_store_t *st = NULL;
    CHECK_OK(pxs_store_create(MPI_COMM_WORLD, &so, &st));
    unsigned char *buf = malloc(BIG);
    pxs_test_fill(buf, BIG, 1);
    pxs_proxy_t p;
    CHECK_RC(pxs_store_put(st, buf, BIG, NULL, &p), PXS_ERR_TOO_BIG);
    uint64_t no = 9, nb = 9;
    CHECK_OK(pxs_store_spilled(st, &no, &nb));
    CHECK(no == 0 && nb == 0);
    CHECK_OK(pxs_store_destroy(st));
    /* spill_path on another connector: refused on every rank */
    so.connector = PXS_CONN_LOCAL;
    so.spill_path = dir;
    CHECK_RC(pxs_store_create(MPI_COMM_SELF, &so, &st), PXS_ERR_INVALID);

    so.connector = PXS_CONN_RMA;
    so.spill_path = dir;
    so.spill_after = 0;
    so.put_timeout = 30;
    CHECK_OK(pxs_store_create(MPI_COMM_WORLD, &so, &st));

    pxs_bus_t *bus;
    pxs_publisher_t *pub;
    pxs_subscriber_t *sub;
    pxs_test_bus_one_to_all(NULL, &(pxs_subscription_t){.topic = 1}, &bus, &pub, &sub);
    if (rank == 0) {
        pxs_producer_t *prod;
        CHECK_OK(pxs_producer_create(st, pub, NULL, &prod));
        for (int i = 0; i <= NCH; i++) {
            size_t len = i == NCH ? BIG : CH;
            pxs_test_fill(buf, len, 100 + (uint64_t)i);
            CHECK_OK(pxs_producer_send(prod, 1, buf, len, NULL, NULL));
            size_t used = 0, cap = 0;
            CHECK_OK(pxs_store_used(st, &used, &cap));
            CHECK(used <= cap && cap <= ARENA);
        }
        CHECK_OK(pxs_producer_destroy(prod));
        uint64_t objs = 0, bytes = 0;
        CHECK_OK(pxs_store_spilled(st, &objs, &bytes));
        printf("spilled %llu objects, %llu bytes\n", (unsigned long long)objs,
               (unsigned long long)bytes);
        CHECK(objs > 0 && bytes >= (uint64_t)BIG);
        MPI_Send(&objs, 1, MPI_UINT64_T, 2, 7, MPI_COMM_WORLD);
    } else {
        if (rank == 2) { /* the stalled consumer: waits until all was sent */
            uint64_t objs = 0;
            MPI_Recv(&objs, 1, MPI_UINT64_T, 0, 7, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        }
        int nspill = 0;
        consume(st, sub, &nspill);
        CHECK(nspill > 0);
    }
    CHECK_OK(pxs_bus_destroy(bus));
    CHECK_OK(pxs_store_destroy(st));
    free(buf);
    if (rank == 0)
        printf("spill: OK\n");
    MPI_Finalize();
    return 0;
}
