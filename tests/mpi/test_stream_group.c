/* Work sharing: rank 0 produces N events on topic T; ranks 1..3 are one
 * work-sharing group "workers" on T, rank 3 deliberately slow; with 5 ranks,
 * rank 4 is also a plain subscriber of T (it must still see every event). Small mailboxes so
 * that credits, not luck, decide: the slow worker's mailbox stays full and the
 * bus gives the events to members with free credits.
 * Checks: each event handled by exactly one group member (union = all, no
 * duplicates), the plain subscriber sees all N in order, END reaches every
 * member, the slow worker handles fewer than each fast one, and each object
 * (budget: one group member + the plain subscriber if any) is reclaimed. */
#include <time.h>

#include "pxs_test.h"

enum { T = 9, N = 240, SLOW = 3, PLAIN = 4 };

int
main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    /* 4 ranks: producer + group of 3. 5 ranks: plus a plain subscriber. */
    CHECK(size == 4 || size == 5);
    const int plain = size == 5;

    pxs_store_opts_t so;
    CHECK_OK(pxs_store_opts_init(&so));
    so.arena_bytes = 8u << 20;
    pxs_store_t *store;
    CHECK_OK(pxs_store_create(MPI_COMM_WORLD, &so, &store));

    uint32_t pubs[1] = {T};
    pxs_subscription_t gsub[1] = {{.topic = T, .group = "workers"}};
    pxs_subscription_t psub[1] = {{.topic = T, .group = NULL}};
    pxs_bus_opts_t bo;
    CHECK_OK(pxs_bus_opts_init(&bo));
    bo.slots = 4;
    if (rank == 0) {
        bo.publish = pubs;
        bo.n_publish = 1;
    } else if (rank == PLAIN && plain) {
        bo.subscribe = psub;
        bo.n_subscribe = 1;
    } else {
        bo.subscribe = gsub;
        bo.n_subscribe = 1;
    }
    pxs_bus_t *bus;
    pxs_publisher_t *pub;
    pxs_subscriber_t *sub;
    pxs_test_bus(&bo, &bus, &pub, &sub);

    unsigned char seen[N];
    memset(seen, 0, sizeof seen);
    int handled = 0;
    unsigned char buf[4096];
    if (rank == 0) {
        pxs_producer_opts_t po;
        CHECK_OK(pxs_producer_opts_init(&po));
        po.resolves = plain ? 2 : 1;
        pxs_producer_t *prod;
        CHECK_OK(pxs_producer_create(store, pub, &po, &prod));
        for (uint32_t i = 0; i < N; i++) {
            pxs_test_fill(buf, sizeof buf, i);
            pxs_send_opts_t sop;
            CHECK_OK(pxs_send_opts_init(&sop));
            sop.meta = &i;
            sop.meta_len = sizeof i;
            CHECK_OK(pxs_producer_send(prod, T, buf, sizeof buf, &sop, NULL));
        }
        CHECK_OK(pxs_producer_destroy(prod)); /* close_on_destroy: END */
    } else {
        pxs_consumer_t *cons;
        CHECK_OK(pxs_consumer_create(store, sub, NULL, &cons));
        uint32_t last = 0;
        int first = 1;
        for (;;) {
            pxs_event_t ev;
            int rc = pxs_consumer_next(cons, &ev, 60.0);
            if (rc == PXS_END)
                break;
            CHECK_RC(rc, PXS_OK);
            uint32_t idx;
            memcpy(&idx, ev.meta, sizeof idx);
            CHECK(idx < N && !seen[idx]);
            CHECK(first || idx > last); /* FIFO within a member too */
            first = 0;
            last = idx;
            seen[idx] = 1;
            size_t len = 0;
            CHECK_OK(pxs_consumer_resolve(cons, &ev, buf, sizeof buf, &len));
            CHECK(len == sizeof buf && pxs_test_verify(buf, len, idx));
            handled++;
            if (rank == SLOW) {
                /* 3 ms of "work" per event, in slices that let MPI progress:
                 * under osc/ucx and osc/pt2pt the publisher's credit fetch on
                 * this rank's mailbox completes only when this rank is inside
                 * MPI; a worker that never enters MPI would stall the publisher
                 * on every visit and the group would degrade to round robin at
                 * the slow worker's pace (measured: 80/80/80, 10 s). */
                for (int k = 0; k < 6; k++) {
                    struct timespec ts = {0, 500000};
                    nanosleep(&ts, NULL);
                    int flag;
                    MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &flag,
                               MPI_STATUS_IGNORE);
                }
            }
        }
        CHECK_OK(pxs_consumer_destroy(cons));
    }
    /* Union over the group = every event exactly once. */
    unsigned char gseen[N];
    unsigned char mine[N];
    for (int i = 0; i < N; i++)
        mine[i] = (rank >= 1 && rank <= 3) ? seen[i] : 0;
    MPI_Reduce(mine, gseen, N, MPI_UNSIGNED_CHAR, MPI_SUM, 0, MPI_COMM_WORLD);
    int counts[5] = {0, 0, 0, 0, 0};
    MPI_Gather(&handled, 1, MPI_INT, counts, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (rank == 0) {
        for (int i = 0; i < N; i++)
            CHECK(gseen[i] == 1);
        CHECK(counts[1] + counts[2] + counts[3] == N);
        CHECK(!plain || counts[PLAIN] == N);
        printf("work sharing: fast %d, fast %d, slow %d (plain subscriber %d)\n", counts[1],
               counts[2], counts[3], plain ? counts[PLAIN] : -1);
        /* Balance is asserted under osc/sm, osc/rdma and osc/ucx. Under ucx
         * (software atomics: a fetch on a member's credit word completes only
         * when that member is in MPI) the group used to degrade to round
         * robin at the slow member's pace (80/80/80, 10 s); with the event
         * plane's sole-writer path (one producer per mailbox: credits tracked
         * locally, non-blocking refills) it balances: 10 runs each, 2 cores,
         * np4 fast ~110/108 slow 20-22 (24-27 with another test running),
         * np5 slow 30-35. osc/pt2pt is not measured: not asserted. */
        const char *osc = getenv("OMPI_MCA_osc");
        int passive = !(osc && strstr(osc, "pt2pt"));
        /* "Fewer": below its fair share and below the busiest fast member.
         * Not "below each fast member": on 2 oversubscribed cores a fast
         * member may not be scheduled for the whole (short) run. */
        int most = counts[1] > counts[2] ? counts[1] : counts[2];
        if (passive)
            CHECK(counts[SLOW] < N / 3 && counts[SLOW] < most);
        else
            printf("work sharing: osc %s: balance not asserted\n", osc);
        size_t used = 1, cap = 0;
        (void)pxs_store_progress(store);
        CHECK_OK(pxs_store_used(store, &used, &cap));
        CHECK(used == 0);
    }
    CHECK_OK(pxs_bus_destroy(bus));
    CHECK_OK(pxs_store_destroy(store));
    MPI_Finalize();
    return 0;
}
