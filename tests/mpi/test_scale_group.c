/* A work-sharing group larger than the probes of one flush pass (8;
 * docs/DESIGN.md "Scale model"): rank 0 publishes N events on topic 7 to
 * group "g" of S = size - 1 members, prefetch 1. Members 1..S-1 (holders)
 * take one recv call and then hold it until the last rank (the free member)
 * has received END, so from then on only the free member has room. The
 * publisher must find it among members that are all full: a pass probes at
 * most 8 of them, least recently probed first, so successive passes must
 * reach it (a pass that kept probing the same 8 would time out: AGAIN after
 * send_timeout). Checked: every event exactly once, a holder has at most
 * prefetch (1) events, the free member all the others, and the publisher's
 * counters: group probes per pick <= 8, records = N, bytes = records x 192. */
#include <stdlib.h>
#include <string.h>

#include "test_events_common.h"

#include "proxystream/stats.h"

enum { N = 120 };

int
main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    CHECK(size >= 11); /* at least 10 members: more than one pass of probes */
    const int FREE = size - 1;
    pxs_subscription_t sg = {.topic = 7, .group = "g", .prefetch = 1};
    pxs_bus_opts_t o;
    CHECK_OK(pxs_bus_opts_init(&o));
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
        pxs_bus_stats_t st;
        pxs_bus_stats_init(&st);
        CHECK_OK(pxs_bus_stats(bus, &st));
        printf("group of %d: %llu picks, %llu probes, %llu records\n", size - 1,
               (unsigned long long)st.group_picks, (unsigned long long)st.group_probes,
               (unsigned long long)st.records_appended);
        fflush(stdout);
        CHECK(st.group_picks > 0 && st.group_probes >= st.group_picks);
        CHECK(st.group_probes <= 8 * st.group_picks);
        /* N events to one member each, plus one END per member */
        CHECK(st.records_appended == (uint64_t)N + (uint64_t)(size - 1));
        /* every record through MPI only with PXS_SHM=0 (same-node appends
         * through the node ring put no MPI bytes: docs/DESIGN.md "Node ring") */
        const char *shm = getenv("PXS_SHM");
        if (shm && strcmp(shm, "0") == 0)
            CHECK(st.rma_bytes == st.records_appended * 192u);
        else
            CHECK(st.rma_bytes <= st.records_appended * 192u);
    } else {
        int calls = 0, released = rank == FREE;
        for (;;) {
            if (!released && calls == 1) {
                int tok;
                MPI_Recv(&tok, 1, MPI_INT, FREE, 99, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
                released = 1;
            }
            int rc = pxs_subscriber_recv(sub, &ev, 60);
            calls++;
            CHECK(rc == PXS_OK || rc == PXS_END);
            if (rc == PXS_END) {
                if (ev.topic == PXS_TOPIC_ALL)
                    break;
                if (rank == FREE) /* every event was placed: release the holders */
                    for (int r = 1; r < FREE; r++) {
                        int tok = 1;
                        MPI_Send(&tok, 1, MPI_INT, r, 99, MPI_COMM_WORLD);
                    }
                continue;
            }
            CHECK(ev.producer == 0 && ev.topic == 7 && ev.seq < (uint64_t)N);
            CHECK(ev_check(&ev, ev.seq));
            got[ev.seq]++;
            count++;
        }
        if (!released) { /* the first call was END ALL: still take the token */
            int tok;
            MPI_Recv(&tok, 1, MPI_INT, FREE, 99, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        }
    }
    int *sum = calloc(N, sizeof *sum), *counts = calloc((size_t)size, sizeof *counts);
    MPI_Reduce(got, sum, N, MPI_INT, MPI_SUM, 0, MPI_COMM_WORLD);
    MPI_Gather(&count, 1, MPI_INT, counts, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (rank == 0) {
        int tot = 0;
        for (int i = 0; i < N; i++)
            CHECK(sum[i] == 1);
        for (int r = 1; r < size; r++) {
            tot += counts[r];
            if (r != FREE)
                CHECK(counts[r] <= 1);
        }
        CHECK(tot == N);
        CHECK(counts[FREE] >= N - (size - 2));
        printf("free member %d got %d of %d events\n", FREE, counts[FREE], N);
    }
    free(sum);
    free(counts);
    CHECK_OK(pxs_bus_destroy(bus));
    MPI_Finalize();
    return 0;
}
