/* A filter that drops events. Rank 0 produces N chunks of 64 KiB into a
 * 1 MiB arena (N x 64 KiB is 12x the arena) with a resolve budget of 2;
 * rank 1 keeps only even chunks (and resolves them), rank 2 drops everything.
 * Dropped events are evicted (the consumer gives up its claim), so the arena
 * never fills: the producer's put timeout is short and would fail the test
 * with PXS_ERR_AGAIN otherwise. Both consumers still reach PXS_END. */
#include "pxs_test.h"

enum { T = 5, N = 192 };
#define CHUNK ((size_t)64 << 10)

static int
keep_even(const pxs_event_t *ev, void *arg)
{
    uint32_t idx;
    memcpy(&idx, ev->meta, sizeof idx);
    (*(int *)arg)++;
    return (idx % 2) == 0;
}

static int
drop_all(const pxs_event_t *ev, void *arg)
{
    (void)ev;
    (*(int *)arg)++;
    return 0;
}

int
main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    CHECK(size == 3);

    pxs_store_opts_t so;
    CHECK_OK(pxs_store_opts_init(&so));
    so.arena_bytes = 1u << 20;
    so.put_timeout = 20.0;
    pxs_store_t *store;
    CHECK_OK(pxs_store_create(MPI_COMM_WORLD, &so, &store));

    pxs_bus_t *bus;
    pxs_publisher_t *pub;
    pxs_subscriber_t *sub;
    pxs_test_bus_one_to_all(NULL, &(pxs_subscription_t){.topic = T}, &bus, &pub, &sub);

    unsigned char *buf = malloc(CHUNK);
    CHECK(buf);
    if (rank == 0) {
        pxs_producer_opts_t po;
        CHECK_OK(pxs_producer_opts_init(&po));
        po.resolves = 2; /* two subscribers, each resolves or drops once */
        po.put_timeout = 20.0;
        pxs_producer_t *prod;
        CHECK_OK(pxs_producer_create(store, pub, &po, &prod));
        for (uint32_t i = 0; i < N; i++) {
            pxs_test_fill(buf, CHUNK, i);
            pxs_send_opts_t sop;
            CHECK_OK(pxs_send_opts_init(&sop));
            sop.meta = &i;
            sop.meta_len = sizeof i;
            CHECK_OK(pxs_producer_send(prod, T, buf, CHUNK, &sop, NULL));
        }
        CHECK_OK(pxs_producer_close_topic(prod, T));
        CHECK_OK(pxs_producer_destroy(prod));
    } else {
        int calls = 0;
        pxs_consumer_opts_t co;
        CHECK_OK(pxs_consumer_opts_init(&co));
        co.filter = rank == 1 ? keep_even : drop_all;
        co.filter_arg = &calls;
        pxs_consumer_t *cons;
        CHECK_OK(pxs_consumer_create(store, sub, &co, &cons));
        uint32_t expect = 0;
        int got = 0;
        for (;;) {
            pxs_event_t ev;
            int rc = pxs_consumer_next(cons, &ev, 60.0);
            if (rc == PXS_END)
                break;
            CHECK_RC(rc, PXS_OK);
            CHECK(rank == 1);
            uint32_t idx;
            memcpy(&idx, ev.meta, sizeof idx);
            CHECK(idx == expect && idx % 2 == 0);
            expect += 2;
            size_t len = 0;
            CHECK_OK(pxs_consumer_resolve(cons, &ev, buf, CHUNK, &len));
            CHECK(len == CHUNK && pxs_test_verify(buf, len, idx));
            got++;
        }
        CHECK(calls == N);
        uint64_t delivered = 0, dropped = 0, rbytes = 0;
        CHECK_OK(pxs_consumer_stats(cons, &delivered, &dropped, &rbytes));
        if (rank == 1) {
            CHECK(got == N / 2 && delivered == N / 2 && dropped == N / 2);
            CHECK(rbytes == (uint64_t)(N / 2) * CHUNK);
        } else {
            CHECK(got == 0 && delivered == 0 && dropped == N);
        }
        CHECK_OK(pxs_consumer_destroy(cons));
    }
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 0) {
        size_t used = 1, cap = 0;
        (void)pxs_store_progress(store);
        CHECK_OK(pxs_store_used(store, &used, &cap));
        CHECK(used == 0); /* every object reclaimed: resolved or dropped+evicted */
        printf("stream filter: %d events through a %zu B arena, OK\n", N, cap);
    }
    free(buf);
    CHECK_OK(pxs_bus_destroy(bus));
    CHECK_OK(pxs_store_destroy(store));
    MPI_Finalize();
    return 0;
}
