/* A broken bus stays broken, loudly, and nothing hangs. Rank 0 publishes
 * topic 1, rank 1 subscribes. For every step of an append (credits, ticket,
 * put, flush, sequence words) the test hook makes that step fail as an MPI
 * error would, once, in two ways:
 *  - batch 1: the failure hits the automatic flush inside pxs_publisher_send.
 *    The event was queued (accepted) before it: the send returns PXS_OK, the
 *    next call reports PXS_ERR_MPI;
 *  - batch 4: the event is queued, pxs_publisher_flush meets the failure and
 *    returns PXS_ERR_MPI.
 * Then every later call on rank 0 (send, flush, close, recv) returns
 * PXS_ERR_MPI with the injected cause in the detail; rank 1 gets the three
 * events sent before and then PXS_ERR_MPI naming rank 0 (the poison marker:
 * for the ticket, put, flush and sequence-word steps it would otherwise wait
 * on an unwritten ticket forever), sticky; pxs_bus_destroy returns on both
 * (PXS_ERR_MPI), i.e. no hang. Rank 2 publishes topic 2 to rank 0; after
 * rank 0 broke (an MPI barrier orders it), its flush fails with PXS_ERR_MPI
 * naming a broken rank instead of waiting for a mailbox that is never read.
 * Every bus is a fresh one. */
#include "test_events_common.h"

#include "pubsub/pubsub_int.h"

static const char *const step_name[] = {"", "credits", "ticket", "put", "flush",
                                        "sequence word"};

static void
has(const char *needle)
{
    const char *d = pxs_last_error_detail();
    if (!strstr(d, needle)) {
        fprintf(stderr, "detail \"%s\" lacks \"%s\"\n", d, needle);
        CHECK(0);
    }
}

int
main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    CHECK(size == 3);
    uint32_t t1 = 1, t2 = 2;
    pxs_subscription_t s1 = {.topic = 1, .group = NULL}, s2 = {.topic = 2, .group = NULL};
    for (int step = PXSI_FAIL_CREDITS; step < PXSI_FAIL_N_; step++)
        for (int mode = 0; mode < 2; mode++) {
            pxs_bus_opts_t o;
            CHECK_OK(pxs_bus_opts_init(&o));
            o.slots = 16;
            o.batch = mode == 0 ? 1 : 4;
            o.send_timeout = 60;
            if (rank == 0) {
                o.publish = &t1;
                o.n_publish = 1;
                o.subscribe = &s2;
                o.n_subscribe = 1;
            } else if (rank == 1) {
                o.subscribe = &s1;
                o.n_subscribe = 1;
            } else {
                o.publish = &t2;
                o.n_publish = 1;
            }
            pxs_bus_t *bus;
            pxs_publisher_t *pub;
            pxs_subscriber_t *sub;
            pxs_test_bus(&o, &bus, &pub, &sub);
            pxs_event_t ev;
            pxs_proxy_t px;
            unsigned char meta[PXS_EVENT_META_MAX];
            char cause[80];
            snprintf(cause, sizeof cause, "injected MPI failure at the %s step",
                     step_name[step]);
            if (rank == 0) {
                for (uint64_t i = 0; i < 3; i++) {
                    size_t len = ev_fill(0, 1, i, &px, meta);
                    CHECK_OK(pxs_publisher_send(pub, 1, &px, meta, len, NULL));
                }
                CHECK_OK(pxs_publisher_flush(pub));
                CHECK_OK(pxsi_bus_test_fail(bus, step));
                size_t len = ev_fill(0, 1, 3, &px, meta);
                /* accepted (queued) in both modes: OK */
                CHECK_OK(pxs_publisher_send(pub, 1, &px, meta, len, NULL));
                CHECK_RC(pxs_publisher_flush(pub), PXS_ERR_MPI);
                has(cause);
                /* sticky, with the original cause */
                CHECK_RC(pxs_publisher_send(pub, 1, &px, meta, len, NULL), PXS_ERR_MPI);
                has(cause);
                has("broken");
                CHECK_RC(pxs_publisher_flush(pub), PXS_ERR_MPI);
                has(cause);
                CHECK_RC(pxs_publisher_close_topic(pub, 1), PXS_ERR_MPI);
                has(cause);
                CHECK_RC(pxs_subscriber_recv(sub, &ev, 0), PXS_ERR_MPI);
                has(cause);
                MPI_Barrier(MPI_COMM_WORLD);
            } else if (rank == 1) {
                for (uint64_t i = 0; i < 3; i++) {
                    CHECK_OK(pxs_subscriber_recv(sub, &ev, 60));
                    CHECK(ev.seq == i && ev_check(&ev, i));
                }
                /* event 3 never completes; the poison ends the wait (a
                 * PXS_TIMEOUT after 60 s here would be the hang) */
                CHECK_RC(pxs_subscriber_recv(sub, &ev, 60), PXS_ERR_MPI);
                has("broke on rank 0");
                CHECK_RC(pxs_subscriber_recv(sub, &ev, 0), PXS_ERR_MPI);
                has("broke on rank 0");
                MPI_Barrier(MPI_COMM_WORLD);
            } else {
                MPI_Barrier(MPI_COMM_WORLD); /* rank 0 broke and marked us */
                size_t len = ev_fill(2, 2, 0, &px, meta);
                /* batch 1: accepted, then the automatic flush meets the
                 * marker; batch 4: queued. Either way OK, then the flush: */
                CHECK_OK(pxs_publisher_send(pub, 2, &px, meta, len, NULL));
                CHECK_RC(pxs_publisher_flush(pub), PXS_ERR_MPI);
                has("the bus broke on rank");
                CHECK_RC(pxs_publisher_close_topic(pub, 2), PXS_ERR_MPI);
                has("the bus broke on rank");
            }
            CHECK_RC(pxs_bus_destroy(bus), PXS_ERR_MPI);
            has(rank == 0 ? cause : rank == 1 ? "broke on rank 0" : "the bus broke on rank");
            if (rank == 0)
                printf("step %s, batch %u: broken, sticky, destroyed\n", step_name[step],
                       o.batch);
        }
    MPI_Finalize();
    return 0;
}
