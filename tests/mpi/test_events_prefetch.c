/* Group prefetch, deterministically (no timing): rank 0 publishes N events on
 * topic 7 and closes it; ranks 1, 2, 3 are group "workers". Rank 1 (the
 * holder) takes one recv call and then holds: it calls recv again only after
 * ranks 2 and 3 have received END (each tells it with an MPI message, sent
 * after END, so after the last event was placed). A member's group credits
 * come back only with its next recv call, so until the release the holder can
 * have been given at most `prefetch` events, and none arrive after it (END
 * follows every event): the holder's total is <= prefetch, by construction.
 * Without the prefetch bound it gets about a third (mailbox room, 1024 slots).
 * Also checked: every event exactly once across the group, FIFO per member.
 * args: prefetch field for the subscriptions (0 = default/env); the expected
 * bound is that value, else PXS_PREFETCH, else PXS_PREFETCH_DEFAULT. */
#include "test_events_common.h"

enum { N = 60, HOLDER = 1 };

int
main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    CHECK(size == 4);
    uint32_t pf = argc > 1 ? (uint32_t)atoi(argv[1]) : 0;
    uint32_t expect = pf;
    if (!expect)
        expect = getenv("PXS_PREFETCH") ? (uint32_t)atoi(getenv("PXS_PREFETCH"))
                                        : PXS_PREFETCH_DEFAULT;
    pxs_subscription_t sg = {.topic = 7, .group = "workers", .prefetch = pf};
    pxs_bus_opts_t o;
    CHECK_OK(pxs_bus_opts_init(&o));
    o.slots = 0; /* default: a big mailbox, so only the prefetch bound can hold */
    o.send_timeout = 60;
    pxs_bus_t *bus;
    pxs_publisher_t *pub;
    pxs_subscriber_t *sub;
    pxs_test_bus_one_to_all(&o, &sg, &bus, &pub, &sub); /* rank 0 publishes 7 */
    pxs_event_t ev;
    int got[N];
    memset(got, 0, sizeof got);
    int count = 0;

    if (rank == 0) {
        ev_publish_all(pub, 7, N);
    } else {
        uint64_t last = 0;
        int first = 1, end7 = 0, calls = 0;
        for (;;) {
            if (rank == HOLDER && calls == 1) {
                /* hold the event (or END) the first call returned until the
                 * other members are done */
                int tok;
                MPI_Recv(&tok, 1, MPI_INT, 2, 99, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
                MPI_Recv(&tok, 1, MPI_INT, 3, 99, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
                printf("prefetch %u: holder had %d event(s) at the release\n", expect, count);
                fflush(stdout);
            }
            int rc = pxs_subscriber_recv(sub, &ev, 60);
            calls++;
            CHECK(rc == PXS_OK || rc == PXS_END);
            if (rc == PXS_END) {
                if (ev.topic == PXS_TOPIC_ALL)
                    break;
                CHECK(ev.topic == 7);
                end7++;
                if (rank != HOLDER) {
                    int tok = 1;
                    MPI_Send(&tok, 1, MPI_INT, HOLDER, 99, MPI_COMM_WORLD);
                }
                continue;
            }
            CHECK(ev.producer == 0 && ev.topic == 7 && ev.seq < (uint64_t)N);
            CHECK(first || ev.seq > last);
            CHECK(ev_check(&ev, ev.seq));
            first = 0;
            last = ev.seq;
            got[ev.seq]++;
            count++;
        }
        CHECK(end7 == 1);
        if (rank == HOLDER && calls == 1) {
            /* the first call was END ALL: still answer the others */
            int tok;
            MPI_Recv(&tok, 1, MPI_INT, 2, 99, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            MPI_Recv(&tok, 1, MPI_INT, 3, 99, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        }
    }
    int sum[N];
    MPI_Reduce(got, sum, N, MPI_INT, MPI_SUM, 0, MPI_COMM_WORLD);
    int counts[4];
    MPI_Gather(&count, 1, MPI_INT, counts, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (rank == 0) {
        printf("prefetch %u: member counts %d (holder) %d %d\n", expect, counts[1], counts[2],
               counts[3]);
        for (int i = 0; i < N; i++)
            CHECK(sum[i] == 1);
        CHECK(counts[1] + counts[2] + counts[3] == N);
        CHECK(counts[HOLDER] <= (int)expect);
    }
    CHECK_OK(pxs_bus_destroy(bus));
    MPI_Finalize();
    return 0;
}
