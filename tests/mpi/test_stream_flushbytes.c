/* The producer's payload flush rule (docs/DESIGN.md, section "Batching"):
 * with a bus batch of 64 and no producer batch or max_delay, events wait in
 * the publisher until the batch fills or a flush, EXCEPT that the producer
 * flushes once the events it holds name 1 MiB of payload.
 * Deterministic: rank 0 sends two 600 KiB chunks (1.2 MiB held after the
 * second: flushed by the rule) and then blocks in MPI_Recv until rank 1 has
 * received both (without the rule they would never arrive: rank 1 times
 * out and the test fails). Then rank 0 sends one 1000 B chunk (far below
 * the rule) and blocks again: rank 1 must NOT get it while rank 0 is
 * blocked (PXS_TIMEOUT after 0.3 s: nothing can deliver it), and gets it
 * with the END once rank 0 closes the topic. A forwarded proxy counts its
 * object's size: rank 0 forwards a third 600 KiB object's proxy twice
 * (pxs_producer_send_proxy) and rank 1 gets both forwards while rank 0 is
 * blocked. */
#include <stdlib.h>

#include "pxs_test.h"

enum { T1 = 51, BIG = 600 * 1024, SMALL = 1000 };

static void
expect(pxs_consumer_t *cons, pxs_store_t *store, uint32_t idx, size_t len, unsigned char *buf)
{
    pxs_event_t ev;
    CHECK_RC(pxs_consumer_next(cons, &ev, 60.0), PXS_OK);
    uint32_t got;
    CHECK(ev.meta_len == sizeof got);
    memcpy(&got, ev.meta, sizeof got);
    CHECK(got == idx);
    size_t n = 0;
    CHECK_OK(pxs_store_resolve(store, &ev.proxy, buf, BIG, &n));
    CHECK(n == len && pxs_test_verify(buf, n, idx % 100));
}

int
main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    CHECK(size == 2);

    pxs_store_opts_t so;
    CHECK_OK(pxs_store_opts_init(&so));
    so.connector = pxs_test_connector();
    so.arena_bytes = 8u << 20;
    pxs_store_t *store;
    CHECK_OK(pxs_store_create(MPI_COMM_WORLD, &so, &store));

    pxs_bus_t *bus;
    pxs_publisher_t *pub;
    pxs_subscriber_t *sub;
    pxs_bus_opts_t bo;
    CHECK_OK(pxs_bus_opts_init(&bo));
    bo.batch = 64;
    pxs_test_bus_one_to_all(&bo, &(pxs_subscription_t){.topic = T1}, &bus, &pub, &sub);

    int token = 0;
    if (rank == 0) {
        pxs_producer_t *prod;
        pxs_producer_opts_t popt;
        CHECK_OK(pxs_producer_opts_init(&popt));
        CHECK_OK(pxs_producer_create(store, pub, &popt, &prod));
        unsigned char *src = malloc(BIG);
        pxs_send_opts_t sop;
        CHECK_OK(pxs_send_opts_init(&sop));
        for (uint32_t i = 0; i < 2; i++) {
            pxs_test_fill(src, BIG, i);
            sop.meta = &i;
            sop.meta_len = sizeof i;
            CHECK_OK(pxs_producer_send(prod, T1, src, BIG, &sop, NULL));
        }
        MPI_Recv(&token, 1, MPI_INT, 1, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        /* a forwarded proxy: its object's size counts */
        pxs_proxy_t px;
        pxs_test_fill(src, BIG, 2);
        pxs_put_opts_t po;
        CHECK_OK(pxs_put_opts_init(&po));
        po.resolves = 2; /* forwarded twice, resolved once per forward */
        CHECK_OK(pxs_store_put(store, src, BIG, &po, &px));
        uint32_t fwd = 2;
        CHECK_OK(pxs_producer_send_proxy(prod, T1, &px, &fwd, sizeof fwd));
        fwd = 102; /* the same object (fill index 102 % 100 = 2) */
        CHECK_OK(pxs_producer_send_proxy(prod, T1, &px, &fwd, sizeof fwd));
        MPI_Recv(&token, 1, MPI_INT, 1, 2, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        /* a small chunk stays coalesced until the close */
        uint32_t i = 3;
        pxs_test_fill(src, SMALL, i);
        sop.meta = &i;
        sop.meta_len = sizeof i;
        CHECK_OK(pxs_producer_send(prod, T1, src, SMALL, &sop, NULL));
        MPI_Recv(&token, 1, MPI_INT, 1, 3, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        CHECK_OK(pxs_producer_close_topic(prod, T1));
        CHECK_OK(pxs_producer_destroy(prod));
        free(src);
    } else {
        pxs_consumer_t *cons;
        CHECK_OK(pxs_consumer_create(store, sub, NULL, &cons));
        unsigned char *buf = malloc(BIG);
        expect(cons, store, 0, BIG, buf);
        expect(cons, store, 1, BIG, buf);
        MPI_Send(&token, 1, MPI_INT, 0, 1, MPI_COMM_WORLD);
        expect(cons, store, 2, BIG, buf);
        expect(cons, store, 102, BIG, buf);
        MPI_Send(&token, 1, MPI_INT, 0, 2, MPI_COMM_WORLD);
        /* rank 0 sends the small chunk, then waits for tag 3: until then
         * nothing flushes it. Rank 0 may not have sent it yet either: the
         * assertion is that it is not here, which holds in both cases. */
        pxs_event_t ev;
        CHECK_RC(pxs_consumer_next(cons, &ev, 0.3), PXS_TIMEOUT);
        MPI_Send(&token, 1, MPI_INT, 0, 3, MPI_COMM_WORLD);
        expect(cons, store, 3, SMALL, buf);
        CHECK_RC(pxs_consumer_next(cons, &ev, 60.0), PXS_END);
        free(buf);
        CHECK_OK(pxs_consumer_destroy(cons));
    }
    pxs_test_check_reclaimed(store, rank);
    MPI_Barrier(MPI_COMM_WORLD);
    CHECK_OK(pxs_bus_destroy(bus));
    CHECK_OK(pxs_store_destroy(store));
    MPI_Finalize();
    return 0;
}
