/* Dropping events. Rank 0 produces, rank 1 consumes.
 *
 * Part 1 (claims): objects with a resolve budget of 2 go to two consumers,
 * one of them on the producer's (the owner's) rank 0, which gives up its
 * claim on every object (even ones dropped by its filter, odd ones with
 * pxs_consumer_discard) before rank 1 resolves any: rank 1 must still resolve
 * all of them (an owner-side evict would reclaim them and make rank 1's
 * resolves PXS_ERR_STALE), and afterwards every object is reclaimed.
 *
 * Part 2 (timeout): a filter that drops everything, slowly (0.5 ms per
 * event). Deterministic setup: the producer first fills the consumer's
 * mailbox (256 events, exactly its slots) and says so; then it keeps sending
 * until the consumer tells it to stop, so the stream never ends on its own.
 * Each pxs_consumer_next(0.1) must return PXS_TIMEOUT: a call that ignored
 * its timeout while dropping would never return (the test then hangs and
 * ctest fails it), and the first call starts with 256 events (>= 128 ms of
 * filtering) waiting, so it is cut by its deadline, not by an empty mailbox.
 * No assertion on how long a call took. */
#include <time.h>

#include "pxs_test.h"

enum { T1 = 31, T2 = 32, N1 = 16, CALLS = 5 };

static int
drop_even(const pxs_event_t *ev, void *arg)
{
    (void)arg;
    uint32_t idx;
    memcpy(&idx, ev->meta, sizeof idx);
    return idx % 2;
}

static int
drop_all_slowly(const pxs_event_t *ev, void *arg)
{
    (void)ev;
    (void)arg;
    struct timespec ts = {0, 500000};
    nanosleep(&ts, NULL);
    return 0;
}

static void
part_claims(pxs_store_t *store, int rank)
{
    uint32_t pubs[1] = {T1};
    pxs_subscription_t subs[1] = {{.topic = T1, .group = NULL}};
    pxs_bus_opts_t bo;
    CHECK_OK(pxs_bus_opts_init(&bo));
    if (rank == 0) {
        bo.publish = pubs;
        bo.n_publish = 1;
    }
    bo.subscribe = subs; /* both ranks subscribe; rank 0 owns the objects */
    bo.n_subscribe = 1;
    pxs_bus_t *bus;
    pxs_publisher_t *pub;
    pxs_subscriber_t *sub;
    pxs_test_bus(&bo, &bus, &pub, &sub);
    unsigned char buf[1024];
    pxs_consumer_opts_t co;
    CHECK_OK(pxs_consumer_opts_init(&co));
    if (rank == 0) {
        co.filter = drop_even;
        pxs_producer_opts_t po;
        CHECK_OK(pxs_producer_opts_init(&po));
        po.resolves = 2; /* two subscribers */
        pxs_producer_t *prod;
        CHECK_OK(pxs_producer_create(store, pub, &po, &prod));
        for (uint32_t i = 0; i < N1; i++) {
            pxs_test_fill(buf, sizeof buf, i);
            pxs_send_opts_t sop;
            CHECK_OK(pxs_send_opts_init(&sop));
            sop.meta = &i;
            sop.meta_len = sizeof i;
            CHECK_OK(pxs_producer_send(prod, T1, buf, sizeof buf, &sop, NULL));
        }
        CHECK_OK(pxs_producer_destroy(prod)); /* flush + END */
    }
    pxs_consumer_t *cons;
    CHECK_OK(pxs_consumer_create(store, sub, &co, &cons));
    if (rank == 1)
        MPI_Barrier(MPI_COMM_WORLD); /* rank 0 gives up its claims first */
    uint32_t got = 0;
    for (;;) {
        pxs_event_t ev;
        int rc = pxs_consumer_next(cons, &ev, 60.0);
        if (rc == PXS_END)
            break;
        CHECK_RC(rc, PXS_OK);
        uint32_t idx;
        memcpy(&idx, ev.meta, sizeof idx);
        if (rank == 0) {
            CHECK(idx % 2 == 1);
            CHECK_OK(pxs_consumer_discard(cons, &ev));
        } else {
            CHECK(idx == got);
            size_t len = 0;
            CHECK_OK(pxs_consumer_resolve(cons, &ev, buf, sizeof buf, &len));
            CHECK(len == sizeof buf && pxs_test_verify(buf, len, idx));
        }
        got++;
    }
    uint64_t delivered = 0, dropped = 0;
    CHECK_OK(pxs_consumer_stats(cons, &delivered, &dropped, NULL));
    if (rank == 0) {
        CHECK(got == N1 / 2 && delivered == N1 / 2 && dropped == N1 / 2);
        size_t used = 0, cap = 0;
        CHECK_OK(pxs_store_used(store, &used, &cap));
        CHECK(used > 0); /* rank 1's claims still hold every object */
        MPI_Barrier(MPI_COMM_WORLD);
    } else {
        CHECK(got == N1 && delivered == N1 && dropped == 0);
    }
    CHECK_OK(pxs_consumer_destroy(cons));
    pxs_test_check_reclaimed(store, rank);
    CHECK_OK(pxs_bus_destroy(bus));
}

static void
part_timeout(pxs_store_t *store, int rank)
{
    enum { SLOTS = 256, TAG_READY = 71, TAG_STOP = 72 };
    pxs_bus_opts_t bo;
    CHECK_OK(pxs_bus_opts_init(&bo));
    bo.slots = SLOTS;
    pxs_bus_t *bus;
    pxs_publisher_t *pub;
    pxs_subscriber_t *sub;
    pxs_test_bus_one_to_all(&bo, &(pxs_subscription_t){.topic = T2}, &bus, &pub, &sub);
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 0) {
        pxs_producer_t *prod;
        CHECK_OK(pxs_producer_create(store, pub, NULL, &prod));
        unsigned char buf[64];
        memset(buf, 7, sizeof buf);
        uint64_t sent = 0;
        for (; sent < SLOTS; sent++)
            CHECK_OK(pxs_producer_send(prod, T2, buf, sizeof buf, NULL, NULL));
        CHECK_OK(pxs_producer_flush(prod)); /* the mailbox now holds SLOTS events */
        MPI_Send(&sent, 1, MPI_UINT64_T, 1, TAG_READY, MPI_COMM_WORLD);
        for (;;) {
            int stop = 0;
            MPI_Iprobe(1, TAG_STOP, MPI_COMM_WORLD, &stop, MPI_STATUS_IGNORE);
            if (stop)
                break;
            CHECK_OK(pxs_producer_send(prod, T2, buf, sizeof buf, NULL, NULL));
            sent++;
        }
        MPI_Recv(NULL, 0, MPI_BYTE, 1, TAG_STOP, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        CHECK_OK(pxs_producer_destroy(prod)); /* flush + END */
        MPI_Send(&sent, 1, MPI_UINT64_T, 1, TAG_READY, MPI_COMM_WORLD);
    } else {
        uint64_t ready = 0, sent = 0;
        MPI_Recv(&ready, 1, MPI_UINT64_T, 0, TAG_READY, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        CHECK(ready == SLOTS);
        pxs_consumer_opts_t co;
        CHECK_OK(pxs_consumer_opts_init(&co));
        co.filter = drop_all_slowly;
        pxs_consumer_t *cons;
        CHECK_OK(pxs_consumer_create(store, sub, &co, &cons));
        pxs_event_t ev;
        uint64_t dropped = 0;
        double worst = 0;
        for (int k = 0; k < CALLS; k++) {
            double t0 = MPI_Wtime();
            CHECK_RC(pxs_consumer_next(cons, &ev, 0.1), PXS_TIMEOUT);
            double dt = MPI_Wtime() - t0;
            worst = dt > worst ? dt : worst;
            if (k == 0) {
                CHECK_OK(pxs_consumer_stats(cons, NULL, &dropped, NULL));
                CHECK(dropped > 0); /* events were there, and dropped */
            }
        }
        MPI_Send(NULL, 0, MPI_BYTE, 0, TAG_STOP, MPI_COMM_WORLD);
        printf("stream drop: %d x next(0.1) under a dropped stream that never ends on its own: "
               "worst %.3f s (informational)\n",
               CALLS, worst);
        int rc;
        while ((rc = pxs_consumer_next(cons, &ev, 60.0)) == PXS_TIMEOUT)
            ;
        CHECK_RC(rc, PXS_END);
        MPI_Recv(&sent, 1, MPI_UINT64_T, 0, TAG_READY, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        CHECK_OK(pxs_consumer_stats(cons, NULL, &dropped, NULL));
        CHECK(dropped == sent); /* every event examined and dropped, none lost */
        CHECK_OK(pxs_consumer_destroy(cons));
    }
    pxs_test_check_reclaimed(store, rank);
    CHECK_OK(pxs_bus_destroy(bus));
}

int
main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    CHECK(size == 2);
    pxs_store_t *store;
    CHECK_OK(pxs_store_create(MPI_COMM_WORLD, NULL, &store));
    part_claims(store, rank);
    part_timeout(store, rank);
    CHECK_OK(pxs_store_destroy(store));
    if (rank == 0)
        printf("stream drop: OK\n");
    MPI_Finalize();
    return 0;
}
