/* A node-local exchange does not need the target inside MPI (docs/DESIGN.md,
 * section "Node ring"). 2 ranks on one node: rank 1 subscribes and then
 * waits, without any MPI call, on a flag in shared memory (a node segment of
 * the test's own); rank 0 sends K events to it (batch 1, or the batch in
 * argv[1]), flushes, and only then raises the flag. Under osc/ucx and pt2pt an append
 * through the MPI window would wait for rank 1 to enter MPI, which it does
 * not do before the flag: the appends must complete through the node ring.
 * (The wait is bounded: a regression fails after 60 s instead of hanging.)
 * Then rank 1 receives the K events, in order and intact. */
#include <time.h>

#include "pubsub/pubsub_int.h"
#include "test_events_common.h"
#include "util/shmseg.h"

enum { T = 3, K = 40 };

int
main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    CHECK(size == 2);
    pxsi_shmseg_t *seg = NULL;
    CHECK_OK(pxsi_shmseg_create(MPI_COMM_WORLD, 64, 1, "test", "flag segment", &seg));
    volatile int64_t *flag = pxsi_shmseg_base(seg, 1);
    CHECK(flag != NULL); /* one node */

    uint32_t pt[] = {T};
    pxs_subscription_t st[] = {{.topic = T, .group = NULL}};
    pxs_bus_opts_t o;
    CHECK_OK(pxs_bus_opts_init(&o));
    o.slots = 64;
    if (rank == 0) {
        o.publish = pt;
        o.n_publish = 1;
        o.batch = argc > 1 ? (uint32_t)atoi(argv[1]) : 1;
    } else {
        o.subscribe = st;
        o.n_subscribe = 1;
    }
    pxs_bus_t *bus;
    pxs_publisher_t *pub;
    pxs_subscriber_t *sub;
    pxs_test_bus(&o, &bus, &pub, &sub);
    pxs_proxy_t px;
    unsigned char meta[PXS_EVENT_META_MAX];
    if (rank == 0) {
        CHECK_RC(pxsi_bus_test_route(bus, 1), 1);
        for (uint64_t i = 0; i < K; i++) {
            size_t len = ev_fill(0, T, i, &px, meta);
            CHECK_OK(pxs_publisher_send(pub, T, &px, meta, len, NULL));
        }
        CHECK_OK(pxs_publisher_flush(pub));
        __atomic_store_n((int64_t *)flag, 1, __ATOMIC_RELEASE);
    } else {
        /* no MPI call until the flag is up (polite: 50 us naps, 60 s) */
        struct timespec nap = {0, 50000};
        for (long n = 0; n < 1200000 && !__atomic_load_n((int64_t *)flag, __ATOMIC_ACQUIRE); n++)
            nanosleep(&nap, NULL);
        CHECK(__atomic_load_n((int64_t *)flag, __ATOMIC_ACQUIRE) == 1);
        pxs_event_t ev;
        for (uint64_t i = 0; i < K; i++) {
            CHECK_OK(pxs_subscriber_recv(sub, &ev, 30));
            CHECK(ev.topic == T && ev.producer == 0 && ev.seq == i && ev_check(&ev, i));
        }
    }
    MPI_Barrier(MPI_COMM_WORLD);
    CHECK_OK(pxs_bus_destroy(bus));
    pxsi_shmseg_free(seg);
    if (rank == 0)
        printf("node-local appends without the target in MPI: OK\n");
    MPI_Finalize();
    return 0;
}
