/* Work-sharing group: rank 0 publishes topic 7; ranks 1, 2, 3 form group
 * "workers" on topic 7 (rank 3 is slow); rank 4 subscribes plainly.
 * Each event reaches exactly one group member, FIFO per member, END reaches
 * every member, the plain subscriber gets every event in order. How many the
 * slow member gets depends on scheduling and is only printed (no assertion
 * on timing; the balance is asserted deterministically by events.prefetch).
 * args: [batch] */
#include <unistd.h>

#include "test_events_common.h"

int
main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    CHECK(size == 5);
    uint32_t batch = argc > 1 ? (uint32_t)atoi(argv[1]) : 1;
    const int N = ev_slow_osc() ? 600 : 3000;
    uint32_t t7 = 7;
    pxs_subscription_t sg = {.topic = 7, .group = "workers"}, sp = {.topic = 7, .group = NULL};
    pxs_bus_opts_t o;
    CHECK_OK(pxs_bus_opts_init(&o));
    o.slots = 8;
    o.batch = batch;
    if (rank == 0) {
        o.publish = &t7;
        o.n_publish = 1;
    } else if (rank <= 3) {
        o.subscribe = &sg;
        o.n_subscribe = 1;
    } else {
        o.subscribe = &sp;
        o.n_subscribe = 1;
        o.slots = 64;
    }
    pxs_bus_t *bus;
    pxs_publisher_t *pub;
    pxs_subscriber_t *sub;
    pxs_test_bus(&o, &bus, &pub, &sub);
    pxs_event_t ev;
    int *got = calloc((size_t)N, sizeof *got);
    int count = 0;

    if (rank == 0) {
        ev_publish_all(pub, 7, N);
    } else {
        uint64_t last = 0;
        int first = 1, end7 = 0;
        for (;;) {
            if (rank == 3)
                usleep(2000); /* the slow worker */
            int rc = pxs_subscriber_recv(sub, &ev, 30);
            CHECK(rc == PXS_OK || rc == PXS_END);
            if (rc == PXS_END) {
                if (ev.topic == PXS_TOPIC_ALL)
                    break;
                CHECK(ev.topic == 7);
                end7++;
                continue;
            }
            CHECK(ev.producer == 0 && ev.topic == 7 && ev.seq < (uint64_t)N);
            if (rank == 4)
                CHECK(ev.seq == (uint64_t)count); /* plain: all, in order */
            else
                CHECK(first || ev.seq > last); /* group member: increasing */
            CHECK(ev_check(&ev, ev.seq));
            first = 0;
            last = ev.seq;
            got[ev.seq]++;
            count++;
        }
        CHECK(end7 == 1);
    }
    /* exactly once across the group */
    int *sum = calloc((size_t)N, sizeof *sum);
    int *grp = rank >= 1 && rank <= 3 ? got : calloc((size_t)N, sizeof *grp);
    MPI_Reduce(grp, sum, N, MPI_INT, MPI_SUM, 0, MPI_COMM_WORLD);
    int counts[5];
    MPI_Gather(&count, 1, MPI_INT, counts, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (rank == 0) {
        printf("group batch %u: member counts %d %d %d (slow), plain %d\n", batch, counts[1],
               counts[2], counts[3], counts[4]);
        fflush(stdout);
        for (int i = 0; i < N; i++)
            CHECK(sum[i] == 1);
        CHECK(counts[1] + counts[2] + counts[3] == N);
        CHECK(counts[4] == N);
    }
    if (grp != got)
        free(grp);
    free(sum);
    free(got);
    CHECK_OK(pxs_bus_destroy(bus));
    MPI_Finalize();
    return 0;
}
