/* Bad input and malformed records: INVALID (NULL, bad opts, foreign handle,
 * reserved topic, long group name), NOT_FOUND (unknown topic), CLOSED (send
 * after close), TOO_BIG (metadata over capacity), CORRUPT (records injected
 * through the test hook), TIMEOUT from a poll. 3 ranks: 0 publishes topic 3,
 * 1 subscribes plainly, 2 subscribes in group "g". */
#include "test_events_common.h"

#include "pubsub/pubsub_int.h"

static pxs_bus_opts_t
base_opts(int rank)
{
    static uint32_t t3 = 3;
    static pxs_subscription_t s1 = {.topic = 3, .group = NULL}, s2 = {.topic = 3, .group = "g"};
    pxs_bus_opts_t o;
    CHECK_OK(pxs_bus_opts_init(&o));
    o.slots = 8;
    if (rank == 0) {
        o.publish = &t3;
        o.n_publish = 1;
    } else {
        o.subscribe = rank == 1 ? &s1 : &s2;
        o.n_subscribe = 1;
    }
    return o;
}

int
main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    CHECK(size == 3);
    pxs_bus_t *bus = NULL;
    pxs_bus_opts_t o;

    /* options */
    CHECK_RC(pxs_bus_opts_init_(NULL, sizeof o), PXS_ERR_INVALID);
    CHECK_RC(pxs_bus_opts_init_(&o, 0), PXS_ERR_INVALID);
    o = base_opts(rank);
    o.struct_size = 0;
    CHECK_RC(pxs_bus_create(MPI_COMM_WORLD, &o, &bus), PXS_ERR_INVALID);
    CHECK(bus == NULL);
    /* a bad declaration on one rank fails the collective on every rank */
    o = base_opts(rank);
    uint32_t all = PXS_TOPIC_ALL;
    if (rank == 2) {
        o.publish = &all;
        o.n_publish = 1;
    }
    CHECK_RC(pxs_bus_create(MPI_COMM_WORLD, &o, &bus), PXS_ERR_INVALID);
    o = base_opts(rank);
    pxs_subscription_t longname = {.topic = 3, .group = "a-group-name-that-is-far-too-long-for-us"};
    if (rank == 1)
        o.subscribe = &longname;
    CHECK_RC(pxs_bus_create(MPI_COMM_WORLD, &o, &bus), PXS_ERR_INVALID);
    o = base_opts(rank);
    o.n_subscribe = rank == 1 ? 2 : o.n_subscribe; /* count without array */
    if (rank == 1)
        o.subscribe = NULL;
    CHECK_RC(pxs_bus_create(MPI_COMM_WORLD, &o, &bus), PXS_ERR_INVALID);
    o = base_opts(rank);
    CHECK_RC(pxs_bus_create(MPI_COMM_WORLD, &o, NULL), PXS_ERR_INVALID);
    CHECK_RC(pxs_bus_create(MPI_COMM_NULL, &o, &bus), PXS_ERR_INVALID);
    CHECK(bus == NULL);

    /* a good bus */
    CHECK_OK(pxs_bus_create(MPI_COMM_WORLD, &o, &bus));
    pxs_publisher_t *pub;
    pxs_subscriber_t *sub;
    CHECK_RC(pxs_bus_publisher(NULL, &pub), PXS_ERR_INVALID);
    CHECK_RC(pxs_bus_publisher(bus, NULL), PXS_ERR_INVALID);
    CHECK_RC(pxs_bus_subscriber(NULL, &sub), PXS_ERR_INVALID);
    CHECK_RC(pxs_bus_rank(NULL), PXS_ERR_INVALID);
    CHECK_OK(pxs_bus_publisher(bus, &pub));
    CHECK_OK(pxs_bus_subscriber(bus, &sub));
    uint64_t fake[8] = {0};
    pxs_event_t ev;
    pxs_proxy_t px;
    unsigned char meta[PXS_EVENT_META_MAX + 8];
    memset(&px, 0, sizeof px);
    memset(meta, 7, sizeof meta);
    CHECK_RC(pxs_publisher_send(NULL, 3, &px, NULL, 0, NULL), PXS_ERR_INVALID);
    CHECK_RC(pxs_publisher_send((pxs_publisher_t *)(void *)fake, 3, &px, NULL, 0, NULL),
             PXS_ERR_INVALID);
    CHECK_RC(pxs_publisher_send(pub, 3, NULL, NULL, 0, NULL), PXS_ERR_INVALID);
    CHECK_RC(pxs_publisher_send(pub, PXS_TOPIC_ALL, &px, NULL, 0, NULL), PXS_ERR_INVALID);
    CHECK_RC(pxs_publisher_send(pub, 3, &px, NULL, 5, NULL), PXS_ERR_INVALID);
    CHECK_RC(pxs_publisher_send(pub, 3, &px, meta, PXS_EVENT_META_MAX + 1, NULL),
             PXS_ERR_TOO_BIG);
    /* a proxy that does not validate (all zero, or one flipped bit) is refused
     * with CORRUPT and not delivered (the good event below gets seq 0 and is
     * the first thing the subscribers see) */
    CHECK_RC(pxs_publisher_send(pub, 3, &px, meta, 4, NULL), PXS_ERR_CORRUPT);
    CHECK(strstr(pxs_last_error_detail(), "does not validate") != NULL);
    unsigned char meta2[PXS_EVENT_META_MAX];
    (void)ev_fill(0, 3, 0, &px, meta2);
    px.bytes[20] ^= 1;
    CHECK_RC(pxs_publisher_send(pub, 3, &px, meta, 4, NULL), PXS_ERR_CORRUPT);
    px.bytes[20] ^= 1; /* valid from here on */
    CHECK_RC(pxs_publisher_send(pub, 99, &px, meta, 4, NULL), PXS_ERR_NOT_FOUND);
    CHECK_RC(pxs_publisher_close_topic(pub, 99), PXS_ERR_NOT_FOUND);
    CHECK_RC(pxs_publisher_flush(NULL), PXS_ERR_INVALID);
    CHECK_RC(pxs_subscriber_recv(NULL, &ev, 0), PXS_ERR_INVALID);
    CHECK_RC(pxs_subscriber_recv(sub, NULL, 0), PXS_ERR_INVALID);
    CHECK_RC(pxs_subscriber_recv((pxs_subscriber_t *)(void *)fake, &ev, 0), PXS_ERR_INVALID);
    if (rank == 1)
        CHECK_RC(pxs_subscriber_recv(sub, &ev, 0), PXS_TIMEOUT);
    if (rank == 1)
        CHECK_RC(pxs_subscriber_recv(sub, &ev, 0.01), PXS_TIMEOUT);
    MPI_Barrier(MPI_COMM_WORLD);

    /* malformed records into rank 1's mailbox, then one good event */
    unsigned char rec[PXSI_REC_SIZE];
    if (rank == 0) {
        pxsi_rec_encode(rec, 99, 0, 0, 0, 0, &px, meta, 4); /* topic not subscribed */
        CHECK_OK(pxsi_bus_test_inject(bus, 1, rec));
        pxsi_rec_encode(rec, 3, 2, 0, 0, 0, &px, meta, 4); /* not a publisher of 3 */
        CHECK_OK(pxsi_bus_test_inject(bus, 1, rec));
        pxsi_rec_encode(rec, 3, 0, 0, 0, 0, &px, meta, 4);
        rec[PXSI_REC_O_MLEN] = 200; /* metadata length over capacity */
        CHECK_OK(pxsi_bus_test_inject(bus, 1, rec));
        pxsi_rec_encode(rec, 3, 0, 0, 5, 0, &px, meta, 4); /* link sequence gap */
        CHECK_OK(pxsi_bus_test_inject(bus, 1, rec));
        pxsi_rec_encode(rec, 3, 0, 3, 0, 0, &px, meta, 4); /* event sequence gap */
        CHECK_OK(pxsi_bus_test_inject(bus, 1, rec));
        pxsi_rec_encode(rec, 3, 0, 0, 0, 0x80, &px, meta, 4); /* unknown flag */
        CHECK_OK(pxsi_bus_test_inject(bus, 1, rec));
        pxsi_rec_encode(rec, 3, 99999, 0, 0, 0, &px, meta, 4); /* producer out of range */
        CHECK_OK(pxsi_bus_test_inject(bus, 1, rec));
    }
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 1) {
        for (int i = 0; i < 7; i++)
            CHECK_RC(pxs_subscriber_recv(sub, &ev, 10), PXS_ERR_CORRUPT);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 0) {
        uint64_t seq = 9;
        CHECK_OK(pxs_publisher_send(pub, 3, &px, meta, 3, &seq));
        CHECK(seq == 0);
        CHECK_OK(pxs_publisher_close_topic(pub, 3));
        CHECK_RC(pxs_publisher_send(pub, 3, &px, meta, 3, NULL), PXS_ERR_CLOSED);
        CHECK_RC(pxs_publisher_close_topic(pub, 3), PXS_ERR_CLOSED);
    } else {
        /* the stream is intact after the bad records */
        int rc = pxs_subscriber_recv(sub, &ev, 30);
        { /* rank 1 subscribes plainly; rank 2 is the group's only member: both
           * must get the single event before END */
            CHECK_OK(rc);
            CHECK(ev.seq == 0 && ev.producer == 0 && ev.meta_len == 3 && ev.meta[2] == 7);
            CHECK(memcmp(ev.proxy.bytes, px.bytes, sizeof px.bytes) == 0);
            rc = pxs_subscriber_recv(sub, &ev, 30);
        }
        CHECK_RC(rc, PXS_END);
        CHECK(ev.topic == 3);
        CHECK_RC(pxs_subscriber_recv(sub, &ev, 30), PXS_END);
        CHECK(ev.topic == PXS_TOPIC_ALL);
    }
    CHECK_OK(pxs_bus_destroy(bus));
    CHECK_OK(pxs_bus_destroy(NULL));
    MPI_Finalize();
    return 0;
}
