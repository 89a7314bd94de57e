/* Batch-1 ping-pong without flush, over several rings (issue 12): rank 0
 * sends on topic 1 and waits for the reply on topic 2, rank 1 the other way
 * round; nobody ever calls pxs_publisher_flush. Each send must go out at
 * once, also where the sole writer's credit read needs the owner inside MPI
 * (MPICH, Open MPI osc/ucx): it hung on the very first send under MPICH (the
 * writer's credits started at 0 and the read was not complete at its first
 * MPI_Test, so the event stayed queued while its sender waited in recv), and
 * would have hung once a ring's credits were used. docs/DESIGN.md, section
 * "Sole-writer fast path". A reply that does not come within 30 s fails the
 * test (PXS_TIMEOUT) instead of hanging it. Args: [slots] [rounds]. */
#include "test_events_common.h"

int
main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    CHECK(size == 2);
    uint32_t slots = argc > 1 ? (uint32_t)atoi(argv[1]) : 16;
    int rounds = argc > 2 ? atoi(argv[2]) : 200; /* > 10 rings of 16 */
    uint32_t mine = rank == 0 ? 1 : 2, theirs = rank == 0 ? 2 : 1;
    pxs_subscription_t s = {.topic = theirs, .group = NULL};
    pxs_bus_opts_t o;
    CHECK_OK(pxs_bus_opts_init(&o));
    o.publish = &mine;
    o.n_publish = 1;
    o.subscribe = &s;
    o.n_subscribe = 1;
    o.slots = slots;
    o.batch = 1;
    pxs_bus_t *bus;
    pxs_publisher_t *pub;
    pxs_subscriber_t *sub;
    pxs_test_bus(&o, &bus, &pub, &sub);
    pxs_proxy_info_t pi;
    memset(&pi, 0, sizeof pi);
    pi.kind = PXS_CONN_RMA;
    pi.size = 1;
    pxs_proxy_t px;
    CHECK_OK(pxs_proxy_encode(&pi, &px));
    pxs_event_t ev;
    for (int i = 0; i < rounds; i++) {
        int meta = i;
        if (rank == 0)
            CHECK_OK(
                pxs_publisher_send(pub, mine, &px, &meta, sizeof meta, NULL));
        CHECK_OK(pxs_subscriber_recv(sub, &ev, 30.0));
        CHECK(ev.topic == theirs && ev.seq == (uint64_t)i &&
              ev.meta_len == sizeof meta);
        memcpy(&meta, ev.meta, sizeof meta);
        CHECK(meta == i);
        if (rank == 1)
            CHECK_OK(
                pxs_publisher_send(pub, mine, &px, &meta, sizeof meta, NULL));
    }
    CHECK_OK(pxs_publisher_close_topic(pub, mine));
    CHECK_RC(pxs_subscriber_recv(sub, &ev, 30.0), PXS_END);
    CHECK_OK(pxs_bus_destroy(bus));
    if (rank == 0)
        printf("pingpong: %d rounds, %u slots: OK\n", rounds, slots);
    MPI_Finalize();
    return 0;
}
