/* Backpressure and retries: what a send or close that returned an error
 * means. Rank 0 produces, rank 1 consumes; the mailbox has 4 slots and the
 * consumer stays away (in a barrier) until the producer has run into it.
 *
 * Part 1 (send): producer batch 1, send_timeout 0.3 s. Each index is sent
 * once while the consumer is away (the first sends fill the mailbox, one is
 * queued in the publisher and its delivery fails, later ones are refused),
 * then every refused index is retried until accepted while the consumer
 * drains. The consumer must see every index exactly once, with the attempt
 * that returned PXS_OK: an accepted send is delivered even though its
 * delivery failed at first (no duplicate when the caller moves on), and a
 * send that returned PXS_ERR_AGAIN is never delivered (its object evicted),
 * and its detail keeps the mailbox's cause ("... full ...") behind the
 * producer's context ("publish on topic ...").
 *
 * Part 2 (close): send_timeout 1 s. Topic A: 4 events fill the mailbox, the
 * close returns AGAIN with END queued; topic B: its close returns AGAIN
 * before END is queued. Both refuse sends from then on. Once the consumer
 * drains, retrying close(A) returns OK then CLOSED, and destroy (with
 * close_on_destroy = 0) still delivers B's END: the consumer sees PXS_END. */
#include "pxs_test.h"

enum { T = 11, TA = 21, TB = 22, N = 8, MAXTRY = 200 };

static void
make_bus(int rank, const uint32_t *pubs, size_t npub, const pxs_subscription_t *subs,
         size_t nsub, double send_timeout, pxs_bus_t **bus, pxs_publisher_t **pub,
         pxs_subscriber_t **sub)
{
    pxs_bus_opts_t bo;
    CHECK_OK(pxs_bus_opts_init(&bo));
    bo.slots = 4;
    bo.send_timeout = send_timeout;
    if (rank == 0) {
        bo.publish = pubs;
        bo.n_publish = npub;
    } else {
        bo.subscribe = subs;
        bo.n_subscribe = nsub;
    }
    pxs_test_bus(&bo, bus, pub, sub);
}

static void
part_send(pxs_store_t *store, int rank)
{
    uint32_t pubs[1] = {T};
    pxs_subscription_t subs[1] = {{.topic = T, .group = NULL}};
    pxs_bus_t *bus;
    pxs_publisher_t *pub;
    pxs_subscriber_t *sub;
    make_bus(rank, pubs, 1, subs, 1, 0.3, &bus, &pub, &sub);
    int ok_attempt[N]; /* attempt (0, 1, ...) that returned PXS_OK */
    unsigned char buf[256];
    if (rank == 0) {
        pxs_producer_opts_t po;
        CHECK_OK(pxs_producer_opts_init(&po));
        po.inline_max = 0; /* slot and arena counting of the store path */
        po.batch = 1;
        pxs_producer_t *prod;
        CHECK_OK(pxs_producer_create(store, pub, &po, &prod));
        int n_ok = 0, n_again = 0;
        for (int i = 0; i < N; i++) {
            int meta[2] = {i, 0};
            pxs_send_opts_t sop;
            CHECK_OK(pxs_send_opts_init(&sop));
            sop.meta = meta;
            sop.meta_len = sizeof meta;
            pxs_test_fill(buf, sizeof buf, (uint64_t)i);
            int rc = pxs_producer_send(prod, T, buf, sizeof buf, &sop, NULL);
            CHECK(rc == PXS_OK || rc == PXS_ERR_AGAIN);
            ok_attempt[i] = rc == PXS_OK ? 0 : -1;
            if (rc == PXS_ERR_AGAIN) {
                /* errors keep their cause: the producer prefixes its context
                 * to the mailbox's "full" detail instead of replacing it */
                const char *d = pxs_last_error_detail();
                if (!strstr(d, "publish on topic") || !strstr(d, "full"))
                    fprintf(stderr, "detail: %s\n", d);
                CHECK(strstr(d, "publish on topic") != NULL);
                CHECK(strstr(d, "full") != NULL);
            }
            n_ok += rc == PXS_OK;
            n_again += rc == PXS_ERR_AGAIN;
        }
        /* 4 slots: 4 delivered + 1 queued (delivery failed) = 5 accepted */
        printf("stream retry: consumer away: %d accepted, %d refused\n", n_ok, n_again);
        CHECK(n_again > 0 && n_ok >= 4);
        MPI_Barrier(MPI_COMM_WORLD); /* the consumer drains from here on */
        for (int i = 0; i < N; i++) {
            for (int a = 1; ok_attempt[i] < 0; a++) {
                CHECK(a < MAXTRY);
                int meta[2] = {i, a};
                pxs_send_opts_t sop;
                CHECK_OK(pxs_send_opts_init(&sop));
                sop.meta = meta;
                sop.meta_len = sizeof meta;
                pxs_test_fill(buf, sizeof buf, (uint64_t)i);
                int rc = pxs_producer_send(prod, T, buf, sizeof buf, &sop, NULL);
                CHECK(rc == PXS_OK || rc == PXS_ERR_AGAIN);
                if (rc == PXS_OK)
                    ok_attempt[i] = a;
            }
        }
        int rc, a = 0;
        while ((rc = pxs_producer_close_topic(prod, T)) == PXS_ERR_AGAIN)
            CHECK(++a < MAXTRY);
        CHECK_OK(rc);
        CHECK_OK(pxs_producer_destroy(prod));
        MPI_Send(ok_attempt, N, MPI_INT, 1, 0, MPI_COMM_WORLD);
    } else {
        pxs_consumer_t *cons;
        CHECK_OK(pxs_consumer_create(store, sub, NULL, &cons));
        MPI_Barrier(MPI_COMM_WORLD);
        int got_attempt[N];
        for (int i = 0; i < N; i++)
            got_attempt[i] = -1;
        for (;;) {
            pxs_event_t ev;
            int rc = pxs_consumer_next(cons, &ev, 60.0);
            if (rc == PXS_END)
                break;
            CHECK_RC(rc, PXS_OK);
            int meta[2];
            CHECK(ev.meta_len == sizeof meta);
            memcpy(meta, ev.meta, sizeof meta);
            CHECK(meta[0] >= 0 && meta[0] < N);
            CHECK(got_attempt[meta[0]] < 0); /* no duplicate */
            got_attempt[meta[0]] = meta[1];
            size_t len = 0;
            CHECK_OK(pxs_consumer_resolve(cons, &ev, buf, sizeof buf, &len));
            CHECK(len == sizeof buf && pxs_test_verify(buf, len, (uint64_t)meta[0]));
        }
        MPI_Recv(ok_attempt, N, MPI_INT, 0, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        for (int i = 0; i < N; i++)
            CHECK(got_attempt[i] == ok_attempt[i]); /* the accepted attempt, only */
        CHECK_OK(pxs_consumer_destroy(cons));
    }
    pxs_test_check_reclaimed(store, rank); /* refused sends' objects were evicted */
    CHECK_OK(pxs_bus_destroy(bus));
}

static void
part_close(pxs_store_t *store, int rank)
{
    uint32_t pubs[2] = {TA, TB};
    pxs_subscription_t subs[2] = {{.topic = TA, .group = NULL}, {.topic = TB, .group = NULL}};
    pxs_bus_t *bus;
    pxs_publisher_t *pub;
    pxs_subscriber_t *sub;
    make_bus(rank, pubs, 2, subs, 2, 1.0, &bus, &pub, &sub);
    unsigned char buf[256];
    if (rank == 0) {
        pxs_producer_opts_t po;
        CHECK_OK(pxs_producer_opts_init(&po));
        po.inline_max = 0; /* slot and arena counting of the store path */
        po.topics = pubs;
        po.n_topics = 2;
        po.close_on_destroy = 0; /* a pending close is finished anyway */
        pxs_producer_t *prod;
        CHECK_OK(pxs_producer_create(store, pub, &po, &prod));
        pxs_test_send_chunks(prod, TA, 4, buf, sizeof buf);
        CHECK_RC(pxs_producer_close_topic(prod, TA), PXS_ERR_AGAIN); /* END queued */
        CHECK_RC(pxs_producer_close_topic(prod, TB), PXS_ERR_AGAIN); /* END not queued */
        CHECK_RC(pxs_producer_send(prod, TA, buf, sizeof buf, NULL, NULL), PXS_ERR_CLOSED);
        CHECK_RC(pxs_producer_send(prod, TB, buf, sizeof buf, NULL, NULL), PXS_ERR_CLOSED);
        MPI_Barrier(MPI_COMM_WORLD); /* the consumer drains from here on */
        int rc, a = 0;
        while ((rc = pxs_producer_close_topic(prod, TA)) == PXS_ERR_AGAIN)
            CHECK(++a < MAXTRY);
        CHECK_OK(rc);
        CHECK_RC(pxs_producer_close_topic(prod, TA), PXS_ERR_CLOSED);
        CHECK_OK(pxs_producer_destroy(prod)); /* delivers B's END */
    } else {
        pxs_consumer_t *cons;
        CHECK_OK(pxs_consumer_create(store, sub, NULL, &cons));
        MPI_Barrier(MPI_COMM_WORLD);
        int got = 0;
        for (;;) {
            pxs_event_t ev;
            int rc = pxs_consumer_next(cons, &ev, 60.0);
            if (rc == PXS_END)
                break;
            CHECK_RC(rc, PXS_OK);
            CHECK(ev.topic == TA && ev.seq == (uint64_t)got);
            size_t len = 0;
            CHECK_OK(pxs_consumer_resolve(cons, &ev, buf, sizeof buf, &len));
            CHECK(len == sizeof buf && pxs_test_verify(buf, len, (uint64_t)got));
            got++;
        }
        CHECK(got == 4);
        CHECK_OK(pxs_consumer_destroy(cons));
    }
    pxs_test_check_reclaimed(store, rank);
    CHECK_OK(pxs_bus_destroy(bus));
}

/* Part 3 (poll): send_timeout 0. A send on a full mailbox is a
 * non-blocking poll: it returns PXS_ERR_AGAIN at once, and the detail keeps
 * the mailbox's cause ("... full for 0 s") behind the producer's context. */
static void
part_poll(pxs_store_t *store, int rank)
{
    uint32_t pubs[1] = {T};
    pxs_subscription_t subs[1] = {{.topic = T, .group = NULL}};
    pxs_bus_t *bus;
    pxs_publisher_t *pub;
    pxs_subscriber_t *sub;
    make_bus(rank, pubs, 1, subs, 1, 0.0, &bus, &pub, &sub);
    unsigned char buf[64];
    int sent = 0;
    if (rank == 0) {
        pxs_producer_opts_t po;
        CHECK_OK(pxs_producer_opts_init(&po));
        po.inline_max = 0; /* slot and arena counting of the store path */
        po.batch = 1;
        pxs_producer_t *prod;
        CHECK_OK(pxs_producer_create(store, pub, &po, &prod));
        int rc = PXS_OK;
        for (int i = 0; i < 16 && rc == PXS_OK; i++) {
            pxs_test_fill(buf, sizeof buf, (uint64_t)i);
            rc = pxs_producer_send(prod, T, buf, sizeof buf, NULL, NULL);
            sent += rc == PXS_OK;
        }
        CHECK_RC(rc, PXS_ERR_AGAIN); /* 4 slots: full long before 16 */
        const char *d = pxs_last_error_detail();
        printf("stream retry: poll on a full mailbox: %s\n", d);
        CHECK(strstr(d, "publish on topic") != NULL);
        CHECK(strstr(d, "full for 0 s") != NULL);
        MPI_Barrier(MPI_COMM_WORLD); /* the consumer drains from here on */
        int a = 0;
        while ((rc = pxs_producer_close_topic(prod, T)) == PXS_ERR_AGAIN)
            CHECK(++a < 100000);
        CHECK_OK(rc);
        CHECK_OK(pxs_producer_destroy(prod));
        MPI_Send(&sent, 1, MPI_INT, 1, 1, MPI_COMM_WORLD);
    } else {
        pxs_consumer_t *cons;
        CHECK_OK(pxs_consumer_create(store, sub, NULL, &cons));
        MPI_Barrier(MPI_COMM_WORLD);
        int got = 0;
        for (;;) {
            pxs_event_t ev;
            int rc = pxs_consumer_next(cons, &ev, 60.0);
            if (rc == PXS_END)
                break;
            CHECK_RC(rc, PXS_OK);
            CHECK_OK(pxs_consumer_resolve(cons, &ev, buf, sizeof buf, NULL));
            got++;
        }
        MPI_Recv(&sent, 1, MPI_INT, 0, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        CHECK(got == sent); /* accepted sends only, each once */
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
    part_send(store, rank);
    part_close(store, rank);
    part_poll(store, rank);
    CHECK_OK(pxs_store_destroy(store));
    if (rank == 0)
        printf("stream retry: OK\n");
    MPI_Finalize();
    return 0;
}
