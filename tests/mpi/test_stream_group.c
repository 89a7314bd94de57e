/* Work sharing: rank 0 produces N events on topic T; ranks 1..3 are one
 * work-sharing group "workers" on T with default options (mailboxes of 1024
 * slots, default prefetch); with 5 ranks, rank 4 is also a plain subscriber
 * of T (it must still see every event).
 * Rank 3 is the busy worker, made deterministic: after its first event it
 * holds (asks for no next event) until ranks 1 and 2 have seen END and told
 * it so by MPI message; only then it drains. A member's prefetch credit comes
 * back when it asks for the next event, so the busy worker can have been
 * given at most PXS_PREFETCH_DEFAULT events in all (END follows every event,
 * so none arrive after the release): asserted exactly, no timing involved.
 * Checks: each event handled by exactly one group member (union = all, no
 * duplicates), FIFO per member, the plain subscriber sees all N, END reaches
 * every member, and each object (budget: one group member + the plain
 * subscriber if any) is reclaimed. */
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
    bo.send_timeout = 60;
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
    int handled = 0, calls = 0;
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
            if (rank == SLOW && calls == 1) {
                /* busy with the first event until the others are done */
                int tok;
                MPI_Recv(&tok, 1, MPI_INT, 1, 77, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
                MPI_Recv(&tok, 1, MPI_INT, 2, 77, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            }
            pxs_event_t ev;
            int rc = pxs_consumer_next(cons, &ev, 60.0);
            calls++;
            if (rc == PXS_END) {
                if (rank == 1 || rank == 2) {
                    int tok = 1;
                    MPI_Send(&tok, 1, MPI_INT, SLOW, 77, MPI_COMM_WORLD);
                }
                if (rank == SLOW && calls == 1) { /* got nothing at all */
                    int tok;
                    MPI_Recv(&tok, 1, MPI_INT, 1, 77, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
                    MPI_Recv(&tok, 1, MPI_INT, 2, 77, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
                }
                break;
            }
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
        printf("work sharing: %d, %d, busy %d (plain subscriber %d)\n", counts[1],
               counts[2], counts[3], plain ? counts[PLAIN] : -1);
        /* the busy worker: at most its prefetch, by construction */
        const char *pfe = getenv("PXS_PREFETCH");
        CHECK(counts[SLOW] <= (pfe ? atoi(pfe) : PXS_PREFETCH_DEFAULT));
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
