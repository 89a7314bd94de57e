/* Thread guards of a bus, deterministically: the test hook marks a side "in
 * use" as a thread inside it would, then the calls a second thread would
 * make are checked. Same side: PXS_ERR_BUSY. The other side of an MPI bus:
 * PXS_ERR_INVALID naming MPI_THREAD_MULTIPLE unless MPI provides it (args:
 * "multiple" initialises with MPI_Init_thread(MPI_THREAD_MULTIPLE)). After
 * the side is released, everything works (the guard left no state behind). */
#include "test_events_common.h"

#include <pthread.h>

#include "pubsub/pubsub_int.h"

/* Below MPI_THREAD_SERIALIZED only the main thread may call MPI: a bus call
 * from another thread is refused before it touches anything. */
struct other_call {
    pxs_publisher_t *pub;
    pxs_subscriber_t *sub;
    const pxs_proxy_t *px;
    const unsigned char *meta;
    size_t len;
    int send_rc, recv_rc;
    char detail[256];
};

static void *
other_thread(void *arg)
{
    struct other_call *a = arg;
    a->send_rc = pxs_publisher_send(a->pub, 1, a->px, a->meta, a->len, NULL);
    snprintf(a->detail, sizeof a->detail, "%s", pxs_last_error_detail());
    pxs_event_t ev;
    a->recv_rc = pxs_subscriber_recv(a->sub, &ev, 0);
    return NULL;
}

int
main(int argc, char **argv)
{
    int provided = MPI_THREAD_SINGLE;
    if (argc > 1 && !strcmp(argv[1], "multiple"))
        MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
    else
        MPI_Init(&argc, &argv);
    MPI_Query_thread(&provided);
    uint32_t t1 = 1;
    pxs_subscription_t s1 = {.topic = 1, .group = NULL};
    pxs_bus_opts_t o;
    CHECK_OK(pxs_bus_opts_init(&o));
    o.publish = &t1;
    o.n_publish = 1;
    o.subscribe = &s1;
    o.n_subscribe = 1;
    pxs_bus_t *bus;
    CHECK_OK(pxs_bus_create(MPI_COMM_SELF, &o, &bus));
    pxs_publisher_t *pub;
    pxs_subscriber_t *sub;
    CHECK_OK(pxs_bus_publisher(bus, &pub));
    CHECK_OK(pxs_bus_subscriber(bus, &sub));
    pxs_event_t ev;
    pxs_proxy_t px;
    unsigned char meta[PXS_EVENT_META_MAX];
    size_t len = ev_fill(0, 1, 0, &px, meta);

    /* the subscriber is busy in "another thread" */
    CHECK_OK(pxsi_bus_test_hold(bus, 1, 1));
    CHECK_RC(pxs_subscriber_recv(sub, &ev, 0), PXS_ERR_BUSY);
    CHECK(strstr(pxs_last_error_detail(), "subscriber of this bus is in use") != NULL);
    int rc = pxs_publisher_send(pub, 1, &px, meta, len, NULL);
    if (provided == MPI_THREAD_MULTIPLE) {
        CHECK_OK(rc);
    } else {
        CHECK_RC(rc, PXS_ERR_INVALID);
        CHECK(strstr(pxs_last_error_detail(), "MPI_THREAD_MULTIPLE") != NULL);
        CHECK_RC(pxs_publisher_flush(pub), PXS_ERR_INVALID);
        CHECK_RC(pxs_publisher_close_topic(pub, 1), PXS_ERR_INVALID);
        CHECK_OK(pxsi_bus_test_hold(bus, 1, 0));
        CHECK_OK(pxs_publisher_send(pub, 1, &px, meta, len, NULL)); /* not sent before */
        CHECK_OK(pxsi_bus_test_hold(bus, 1, 1));
    }
    CHECK_OK(pxsi_bus_test_hold(bus, 1, 0));

    /* the publisher is busy in "another thread" */
    CHECK_OK(pxsi_bus_test_hold(bus, 0, 1));
    CHECK_RC(pxs_publisher_send(pub, 1, &px, meta, len, NULL), PXS_ERR_BUSY);
    CHECK(strstr(pxs_last_error_detail(), "publisher of this bus is in use") != NULL);
    CHECK_RC(pxs_publisher_flush(pub), PXS_ERR_BUSY);
    CHECK_RC(pxs_publisher_close_topic(pub, 1), PXS_ERR_BUSY);
    rc = pxs_subscriber_recv(sub, &ev, 0);
    if (provided == MPI_THREAD_MULTIPLE)
        CHECK_OK(rc);
    else
        CHECK_RC(rc, PXS_ERR_INVALID);
    CHECK_OK(pxsi_bus_test_hold(bus, 0, 0));

    if (provided < MPI_THREAD_SERIALIZED) {
        struct other_call a = {.pub = pub, .sub = sub, .px = &px, .meta = meta, .len = len};
        pthread_t th;
        CHECK(pthread_create(&th, NULL, other_thread, &a) == 0);
        CHECK(pthread_join(th, NULL) == 0);
        CHECK_RC(a.send_rc, PXS_ERR_INVALID);
        CHECK(strstr(a.detail, "other than the main one") != NULL);
        CHECK_RC(a.recv_rc, PXS_ERR_INVALID);
    }

    /* released: exactly one event (seq 0) was accepted above, then END */
    CHECK_OK(pxs_publisher_close_topic(pub, 1));
    if (provided != MPI_THREAD_MULTIPLE) {
        CHECK_OK(pxs_subscriber_recv(sub, &ev, 30));
        CHECK(ev.seq == 0 && ev_check(&ev, 0));
    }
    CHECK_RC(pxs_subscriber_recv(sub, &ev, 30), PXS_END);
    CHECK(ev.topic == 1);
    CHECK_OK(pxs_bus_destroy(bus));
    printf("thread guards: MPI thread level %d checked\n", provided);
    MPI_Finalize();
    return 0;
}
