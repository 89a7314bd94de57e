/* Stress: P producers x S subscribers, every event checked exactly once per
 * subscriber, FIFO per (producer, topic), metadata and proxy intact, END.
 * args: P S events_per_producer batch slots [slow_div]
 * Ranks 0..P-1 publish topics 10 and 11 (alternately), ranks P..P+S-1
 * subscribe to both; extra ranks only take part in the collectives.
 * slow_div (default 1) divides the event count under osc ucx/pt2pt. */
#include "test_events_common.h"

int
main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    CHECK(argc >= 6);
    int P = atoi(argv[1]), S = atoi(argv[2]);
    uint64_t N = strtoull(argv[3], NULL, 10);
    uint32_t batch = (uint32_t)atoi(argv[4]), slots = (uint32_t)atoi(argv[5]);
    int div = argc > 6 ? atoi(argv[6]) : 1;
    if (ev_slow_osc() && div > 1)
        N /= (uint64_t)div;
    CHECK(P + S <= size);
    int is_pub = rank < P, is_sub = rank >= P && rank < P + S;

    uint32_t topics[2] = {10, 11};
    pxs_subscription_t subs[2] = {{.topic = 10, .group = NULL}, {.topic = 11, .group = ""}};
    pxs_bus_opts_t o;
    CHECK_OK(pxs_bus_opts_init(&o));
    if (is_pub) {
        o.publish = topics;
        o.n_publish = 2;
    }
    if (is_sub) {
        o.subscribe = subs;
        o.n_subscribe = 2;
    }
    o.batch = batch;
    o.slots = slots;
    o.send_timeout = 60;
    pxs_bus_t *bus;
    CHECK_OK(pxs_bus_create(MPI_COMM_WORLD, &o, &bus));
    CHECK(pxs_bus_rank(bus) == rank);
    pxs_publisher_t *pub;
    pxs_subscriber_t *sub;
    CHECK_OK(pxs_bus_publisher(bus, &pub));
    CHECK_OK(pxs_bus_subscriber(bus, &sub));
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = MPI_Wtime();

    if (is_pub) {
        pxs_proxy_t px;
        unsigned char meta[PXS_EVENT_META_MAX];
        for (uint64_t i = 0; i < N; i++) {
            uint32_t t = topics[i & 1];
            size_t len = ev_fill(rank, t, i / 2, &px, meta);
            uint64_t seq = ~0ull;
            CHECK_OK(pxs_publisher_send(pub, t, &px, meta, len, &seq));
            CHECK(seq == i / 2);
        }
        CHECK_OK(pxs_publisher_close_topic(pub, 10));
        CHECK_OK(pxs_publisher_flush(pub));
        CHECK_OK(pxs_publisher_close_topic(pub, 11));
    }
    if (is_sub) {
        uint64_t *next = calloc((size_t)P * 2, sizeof *next);
        uint64_t total = 0;
        int ended[2] = {0, 0};
        pxs_event_t ev;
        for (;;) {
            int rc = pxs_subscriber_recv(sub, &ev, 60.0);
            CHECK(rc == PXS_OK || rc == PXS_END);
            if (rc == PXS_END) {
                if (ev.topic == PXS_TOPIC_ALL)
                    break;
                CHECK(ev.topic == 10 || ev.topic == 11);
                CHECK(!ended[ev.topic - 10]);
                ended[ev.topic - 10] = 1;
                continue;
            }
            CHECK(ev.producer >= 0 && ev.producer < P);
            CHECK(ev.topic == 10 || ev.topic == 11);
            uint64_t *nx = &next[(size_t)ev.producer * 2 + (ev.topic - 10)];
            CHECK(ev.seq == *nx); /* FIFO per (producer, topic), once */
            CHECK(ev_check(&ev, ev.seq));
            (*nx)++;
            total++;
        }
        CHECK(ended[0] && ended[1]);
        CHECK(total == (uint64_t)P * N);
        for (int p = 0; p < P; p++) {
            CHECK(next[p * 2] == (N + 1) / 2);
            CHECK(next[p * 2 + 1] == N / 2);
        }
        /* END is sticky */
        CHECK_RC(pxs_subscriber_recv(sub, &ev, 0), PXS_END);
        CHECK(ev.topic == PXS_TOPIC_ALL);
        free(next);
        double dt = MPI_Wtime() - t0;
        if (rank == P)
            printf("stress %dx%d batch %u slots %u: %llu events per subscriber in %.3f s "
                   "(%.0f ev/s)\n",
                   P, S, batch, slots, (unsigned long long)total, dt, (double)total / dt);
    }
    CHECK_OK(pxs_bus_destroy(bus));
    MPI_Finalize();
    return 0;
}
