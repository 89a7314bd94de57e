/* Node-local and remote traffic in one bus (docs/DESIGN.md, section "Node
 * ring"). 4 ranks; on two emulated nodes (2 ranks each) every subscriber gets
 * events through its node ring (same-node publishers, itself included) and
 * through its MPI ring (the other node's publishers) at the same time.
 *   topic 1 (plain): published by every rank ("all") or by ranks 0 and 3
 *     ("two": on two nodes each ring then has one writer, the sole-writer
 *     path on both kinds of ring), subscribed by every rank;
 *   topic 2 (work-sharing group "g", members 1 and 2): published by ranks 0
 *     and 3; prefetch 1 in "all" (a member with both kinds of publishers
 *     splits it 1 + 1), the default in "two".
 * Checks: the ring each rank appends to at each target (test hook) is the
 * node ring exactly when the target shares its node and PXS_SHM is not 0;
 * every topic-1 event arrives once, in order per producer, intact; group
 * events are each delivered once (sum over members), in order per producer
 * at each member; END after every close. Args: all|two [events]. */
#include "pubsub/pubsub_int.h"
#include "test_events_common.h"

enum { T1 = 1, T2 = 2 };

int
main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    CHECK(size == 4);
    int two = argc > 1 && strcmp(argv[1], "two") == 0;
    uint64_t N = argc > 2 ? strtoull(argv[2], NULL, 10) : 300;
    if (ev_slow_osc())
        N = N / 4 + 1;
    /* which ranks share my node */
    MPI_Comm node;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node);
    int leader = rank, nodes[4];
    MPI_Bcast(&leader, 1, MPI_INT, 0, node);
    MPI_Allgather(&leader, 1, MPI_INT, nodes, 1, MPI_INT, MPI_COMM_WORLD);
    MPI_Comm_free(&node);
    int shm = pxs_test_shm_expected();

    int pub1 = !two || rank == 0 || rank == 3, pub2 = rank == 0 || rank == 3;
    int member = rank == 1 || rank == 2;
    uint32_t ptopics[2];
    size_t np = 0;
    if (pub1)
        ptopics[np++] = T1;
    if (pub2)
        ptopics[np++] = T2;
    pxs_subscription_t subs[2] = {{.topic = T1, .group = NULL},
                                  {.topic = T2, .group = "g", .prefetch = two ? 0 : 1}};
    pxs_bus_opts_t o;
    CHECK_OK(pxs_bus_opts_init(&o));
    o.publish = ptopics;
    o.n_publish = np;
    o.subscribe = subs;
    o.n_subscribe = member ? 2 : 1;
    o.slots = (uint32_t)(8 * N + 64); /* topic 1 never blocks a sender */
    o.batch = rank % 2 ? 1 : 8;       /* single appends and runs */
    o.send_timeout = 60;
    pxs_bus_t *bus;
    pxs_publisher_t *pub;
    pxs_subscriber_t *sub;
    pxs_test_bus(&o, &bus, &pub, &sub);

    int nlocal = 0, nremote = 0;
    for (int t = 0; t < size; t++) {
        int want = shm && nodes[t] == nodes[rank];
        CHECK_RC(pxsi_bus_test_route(bus, t), want);
        nlocal += nodes[t] == nodes[rank];
        nremote += nodes[t] != nodes[rank];
    }
    CHECK_RC(pxsi_bus_test_route(bus, -1), PXS_ERR_INVALID);

    pxs_proxy_t px;
    unsigned char meta[PXS_EVENT_META_MAX];
    if (pub1) {
        for (uint64_t i = 0; i < N; i++) {
            size_t len = ev_fill(rank, T1, i, &px, meta);
            CHECK_OK(pxs_publisher_send(pub, T1, &px, meta, len, NULL));
        }
        CHECK_OK(pxs_publisher_close_topic(pub, T1));
    }
    if (pub2) { /* members are receiving (they publish nothing to the group) */
        for (uint64_t i = 0; i < N; i++) {
            size_t len = ev_fill(rank, T2, i, &px, meta);
            CHECK_OK(pxs_publisher_send(pub, T2, &px, meta, len, NULL));
        }
        CHECK_OK(pxs_publisher_close_topic(pub, T2));
    }
    uint64_t next1[4] = {0}, last2[4] = {0}, got2 = 0;
    int seen2[4] = {0};
    pxs_event_t ev;
    for (;;) {
        int rc = pxs_subscriber_recv(sub, &ev, 60);
        CHECK(rc == PXS_OK || rc == PXS_END);
        if (rc == PXS_END) {
            if (ev.topic == PXS_TOPIC_ALL)
                break;
            continue;
        }
        CHECK(ev.producer >= 0 && ev.producer < size);
        if (ev.topic == T1) {
            CHECK(ev.seq == next1[ev.producer]);
            next1[ev.producer]++;
        } else {
            CHECK(ev.topic == T2 && member);
            CHECK(!seen2[ev.producer] || ev.seq > last2[ev.producer]);
            seen2[ev.producer] = 1;
            last2[ev.producer] = ev.seq;
            got2++;
        }
        CHECK(ev_check(&ev, ev.seq));
    }
    for (int p = 0; p < size; p++)
        CHECK(next1[p] == ((!two || p == 0 || p == 3) ? N : 0));
    uint64_t all2 = 0;
    MPI_Allreduce(&got2, &all2, 1, MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD);
    CHECK(all2 == 2 * N);
    pxs_bus_stats_t st;
    CHECK_OK(pxs_bus_stats_init(&st));
    CHECK_OK(pxs_bus_stats(bus, &st));
    CHECK(st.depth_now == 0);
    CHECK_OK(pxs_bus_destroy(bus));
    if (rank == 0)
        printf("nodelocal mixed (%s, %llu events, shm %d): %d same-node and %d remote "
               "targets here; OK\n",
               two ? "two" : "all", (unsigned long long)N, shm, nlocal, nremote);
    MPI_Finalize();
    return 0;
}
