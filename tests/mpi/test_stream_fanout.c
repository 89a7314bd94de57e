/* Issue 8, np 4. (1) Default resolve budget = fan-out: rank 0 produces on T
 * with default options, ranks 1-3 subscribe plainly and each resolves every
 * object: all PXS_OK (with the old default budget of 1, two of three got
 * PXS_ERR_STALE), and the arena is empty afterwards. (2) Give-back at bus
 * destroy: rank 0 sends to rank 1's tiny mailbox, rank 1 never reads, the
 * producer's destroy returns PXS_ERR_AGAIN; after pxs_bus_destroy only the
 * delivered (unread) events' objects are still in rank 0's arena, not the
 * discarded ones. */
#include "pxs_test.h"

enum { T = 3, N = 24, SLOTS = 2, M = 12 };
#define CHUNK 2048

int
main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    CHECK(size == 4);
    pxs_store_opts_t so;
    CHECK_OK(pxs_store_opts_init(&so));
    so.arena_bytes = 1u << 20;
    pxs_store_t *store;
    CHECK_OK(pxs_store_create(MPI_COMM_WORLD, &so, &store));
    unsigned char buf[CHUNK];

    /* 1 */
    pxs_bus_t *bus;
    pxs_publisher_t *pub;
    pxs_subscriber_t *sub;
    pxs_test_bus_one_to_all(NULL, &(pxs_subscription_t){.topic = T}, &bus, &pub, &sub);
    if (rank == 0) {
        pxs_producer_t *prod;
        CHECK_OK(pxs_producer_create(store, pub, NULL, &prod));
        pxs_test_send_chunks(prod, T, N, buf, sizeof buf);
        CHECK_OK(pxs_producer_destroy(prod));
    } else {
        pxs_consumer_t *cons;
        CHECK_OK(pxs_consumer_create(store, sub, NULL, &cons));
        pxs_event_t ev;
        void *data;
        size_t len;
        int rc;
        uint32_t got = 0;
        while ((rc = pxs_consumer_next_object(cons, &ev, &data, &len, 60.0)) ==
               PXS_OK) {
            CHECK(ev.seq == got && len == CHUNK &&
                  pxs_test_verify(data, len, got));
            pxs_free(data);
            got++;
        }
        CHECK_RC(rc, PXS_END); /* a STALE resolve would stop the loop early */
        CHECK(got == N);
        CHECK_OK(pxs_consumer_destroy(cons));
    }
    MPI_Barrier(MPI_COMM_WORLD); /* every resolve done */
    size_t used = 1;
    CHECK_OK(pxs_store_used(store, &used, NULL));
    CHECK(used == 0); /* budget 3 spent by the 3 subscribers */
    CHECK_OK(pxs_bus_destroy(bus));

    /* 2 */
    uint32_t pubs[1] = {T};
    pxs_subscription_t subs[1] = {{.topic = T, .group = NULL}};
    pxs_bus_opts_t bo;
    CHECK_OK(pxs_bus_opts_init(&bo));
    bo.slots = SLOTS;
    bo.batch = 1;
    bo.send_timeout = 0.0;
    if (rank == 0) {
        bo.publish = pubs;
        bo.n_publish = 1;
    } else if (rank == 1) {
        bo.subscribe = subs;
        bo.n_subscribe = 1;
    }
    pxs_test_bus(&bo, &bus, &pub, &sub);
    if (rank == 0) {
        pxs_producer_t *prod;
        CHECK_OK(pxs_producer_create(store, pub, NULL, &prod));
        int accepted = 0;
        for (uint32_t i = 0; i < M; i++) {
            int rc = pxs_producer_send(prod, T, buf, sizeof buf, NULL, NULL);
            CHECK(rc == PXS_OK || rc == PXS_ERR_AGAIN);
            accepted += rc == PXS_OK;
        }
        CHECK(accepted > SLOTS);
        CHECK_OK(pxs_store_used(store, &used, NULL));
        CHECK(used == (size_t)accepted * CHUNK);
        CHECK_RC(pxs_producer_destroy(prod), PXS_ERR_AGAIN);
    }
    CHECK_OK(pxs_bus_destroy(bus));
    if (rank == 0) {
        CHECK_OK(pxs_store_used(store, &used, NULL));
        CHECK(used == (size_t)SLOTS * CHUNK); /* delivered, never read */
    }
    CHECK_OK(pxs_store_destroy(store));
    if (rank == 0)
        printf("stream fanout/giveback: OK\n");
    MPI_Finalize();
    return 0;
}
