/* END accounting with several producers, self-delivery, a publisher that
 * subscribes to nothing. 4 ranks:
 *   rank 0: publishes 5, subscribes nothing
 *   rank 1: publishes 5 and 6, subscribes 5 (gets its own events)
 *   rank 2: publishes 5 and 6
 *   rank 3: subscribes 5 and 6
 * Producers close at different times; END(5) comes only after all three
 * closed, END(6) after ranks 1 and 2, then END(ALL) forever. */
#include <unistd.h>

#include "test_events_common.h"

static uint64_t next_seq[3][2];
static uint64_t total;

static void
take(const pxs_event_t *ev)
{
    CHECK(ev->producer >= 0 && ev->producer <= 2);
    CHECK(ev->topic == 5 || ev->topic == 6);
    uint64_t *nx = &next_seq[ev->producer][ev->topic - 5];
    CHECK(ev->seq == *nx);
    CHECK(ev_check(ev, ev->seq));
    (*nx)++;
    total++;
}

int
main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    CHECK(size == 4);
    uint32_t p5[] = {5}, p56[] = {5, 6};
    pxs_subscription_t s5[] = {{.topic = 5, .group = NULL}}, s56[] = {{.topic = 5, .group = NULL}, {.topic = 6, .group = NULL}};
    pxs_bus_opts_t o;
    CHECK_OK(pxs_bus_opts_init(&o));
    o.slots = 256; /* rank 1 must hold what it sends itself while blocked */
    o.batch = 4;
    if (rank == 0) {
        o.publish = p5;
        o.n_publish = 1;
    } else if (rank == 1 || rank == 2) {
        o.publish = p56;
        o.n_publish = 2;
    }
    if (rank == 1) {
        o.subscribe = s5;
        o.n_subscribe = 1;
    } else if (rank == 3) {
        o.subscribe = s56;
        o.n_subscribe = 2;
    }
    pxs_bus_t *bus;
    pxs_publisher_t *pub;
    pxs_subscriber_t *sub;
    pxs_test_bus(&o, &bus, &pub, &sub);
    pxs_event_t ev;
    pxs_proxy_t px;
    unsigned char meta[PXS_EVENT_META_MAX];
    const uint64_t N = 50;

    if (rank == 0) {
        /* subscribes to nothing: its subscriber is over from the start */
        CHECK_RC(pxs_subscriber_recv(sub, &ev, 0), PXS_END);
        CHECK(ev.topic == PXS_TOPIC_ALL);
    }
    if (rank <= 2) {
        int n_sent = 0;
        for (uint64_t i = 0; i < N; i++) {
            size_t len = ev_fill(rank, 5, i, &px, meta);
            CHECK_OK(pxs_publisher_send(pub, 5, &px, meta, len, NULL));
            n_sent++;
            if (rank > 0) {
                len = ev_fill(rank, 6, i, &px, meta);
                CHECK_OK(pxs_publisher_send(pub, 6, &px, meta, len, NULL));
            }
            if (rank == 1) { /* self-delivery: drain own mailbox */
                int rc;
                while ((rc = pxs_subscriber_recv(sub, &ev, 0)) == PXS_OK)
                    take(&ev);
                CHECK(rc == PXS_TIMEOUT);
            }
        }
        usleep(20000 * (unsigned)rank); /* staggered closes */
        CHECK_OK(pxs_publisher_close_topic(pub, 5));
        CHECK_RC(pxs_publisher_close_topic(pub, 5), PXS_ERR_CLOSED);
        CHECK_RC(pxs_publisher_send(pub, 5, &px, meta, 0, NULL), PXS_ERR_CLOSED);
        if (rank > 0) {
            usleep(20000);
            CHECK_OK(pxs_publisher_close_topic(pub, 6));
        }
    }
    MPI_Barrier(MPI_COMM_WORLD); /* every close happened: END now in flight */
    if (rank == 1 || rank == 3) {
        int end5 = 0, end6 = 0;
        for (;;) {
            int rc = pxs_subscriber_recv(sub, &ev, 30);
            CHECK(rc == PXS_OK || rc == PXS_END);
            if (rc == PXS_END) {
                if (ev.topic == PXS_TOPIC_ALL)
                    break;
                if (ev.topic == 5)
                    end5++;
                else if (ev.topic == 6)
                    end6++;
                else
                    CHECK(0);
                continue;
            }
            take(&ev);
        }
        CHECK(end5 == 1);
        CHECK(end6 == (rank == 3));
        if (rank == 3) {
            CHECK(total == 5 * N);
            for (int p = 0; p < 3; p++)
                CHECK(next_seq[p][0] == N && next_seq[p][1] == (p ? N : 0));
        } else {
            for (int p = 0; p < 3; p++)
                CHECK(next_seq[p][0] == N);
        }
        for (int k = 0; k < 3; k++) {
            CHECK_RC(pxs_subscriber_recv(sub, &ev, 0), PXS_END);
            CHECK(ev.topic == PXS_TOPIC_ALL);
        }
    }
    CHECK_OK(pxs_bus_destroy(bus));
    MPI_Finalize();
    return 0;
}
