/* Issue 8: END for every declared topic. np 3: ranks 0 and 1 declare topic
 * T as published and create a producer with default options (no topic
 * list); rank 1 sends nothing. Rank 2 consumes. Before the fix, rank 1's
 * destroy skipped T (never used), rank 2 waited for its END forever and the
 * collective bus destroy hung. Then the same with the publisher used by two
 * producers on rank 0 (one sends, one does not). */
#include "pxs_test.h"

enum { T = 7, U = 8, N = 16 };
#define CHUNK 1024

int
main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    CHECK(size == 3);
    pxs_store_t *store;
    CHECK_OK(pxs_store_create(MPI_COMM_WORLD, NULL, &store));
    unsigned char buf[CHUNK];

    /* 1: two producer ranks, one sends nothing */
    uint32_t pubs[2] = {T, U};
    pxs_subscription_t subs[2] = {{.topic = T, .group = NULL}, {.topic = U, .group = NULL}};
    pxs_bus_opts_t bo;
    CHECK_OK(pxs_bus_opts_init(&bo));
    if (rank < 2) {
        bo.publish = pubs;
        bo.n_publish = 1;
    } else {
        bo.subscribe = subs;
        bo.n_subscribe = 1;
    }
    pxs_bus_t *bus;
    pxs_publisher_t *pub;
    pxs_subscriber_t *sub;
    pxs_test_bus(&bo, &bus, &pub, &sub);
    if (rank < 2) {
        pxs_producer_t *prod;
        CHECK_OK(pxs_producer_create(store, pub, NULL, &prod));
        pxs_test_send_chunks(prod, T, rank == 0 ? N : 0, buf, sizeof buf);
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
            CHECK(ev.producer == 0 && ev.seq == got && len == CHUNK);
            CHECK(pxs_test_verify(data, len, got));
            pxs_free(data);
            got++;
        }
        CHECK_RC(rc, PXS_END); /* not TIMEOUT: rank 1's END arrived */
        CHECK(got == N);
        CHECK_OK(pxs_consumer_destroy(cons));
    }
    CHECK_OK(pxs_bus_destroy(bus));

    /* 2: rank 0 declares T and U, two producers on its publisher: a sends on
     * T and is destroyed first (closes T), b sends nothing (its destroy, the
     * last on the publisher, ends U). Rank 1 declares U and sends nothing. */
    CHECK_OK(pxs_bus_opts_init(&bo));
    if (rank == 0) {
        bo.publish = pubs;
        bo.n_publish = 2;
    } else if (rank == 1) {
        bo.publish = &pubs[1];
        bo.n_publish = 1;
    } else {
        bo.subscribe = subs;
        bo.n_subscribe = 2;
    }
    pxs_test_bus(&bo, &bus, &pub, &sub);
    if (rank == 0) {
        pxs_producer_t *a, *b;
        CHECK_OK(pxs_producer_create(store, pub, NULL, &a));
        CHECK_OK(pxs_producer_create(store, pub, NULL, &b));
        pxs_test_send_chunks(a, T, N, buf, sizeof buf);
        CHECK_OK(pxs_producer_destroy(a));
        CHECK_OK(pxs_producer_destroy(b));
    } else if (rank == 1) {
        pxs_producer_t *p;
        CHECK_OK(pxs_producer_create(store, pub, NULL, &p));
        CHECK_OK(pxs_producer_destroy(p));
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
            CHECK(ev.topic == T && ev.producer == 0 &&
                  pxs_test_verify(data, len, got));
            pxs_free(data);
            got++;
        }
        CHECK_RC(rc, PXS_END);
        CHECK(got == N);
        CHECK_OK(pxs_consumer_destroy(cons));
    }
    CHECK_OK(pxs_bus_destroy(bus));
    CHECK_OK(pxs_store_destroy(store));
    if (rank == 0)
        printf("stream end: OK\n");
    MPI_Finalize();
    return 0;
}
