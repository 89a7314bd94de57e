/* Producer/consumer in one process: in-process bus + local store (no MPI).
 * Interleaved send/receive through a small arena with put timeout 0, so a
 * filtered event that was not evicted would fail the next put at once. */
#include "pxs_test.h"

enum { TA = 1, TB = 2, N = 64 };
#define CHUNK 4096

static int
keep_even(const pxs_event_t *ev, void *arg)
{
    (void)arg;
    uint32_t idx;
    memcpy(&idx, ev->meta, sizeof idx);
    return idx % 2 == 0;
}

int
main(void)
{
    pxs_store_opts_t so;
    CHECK_OK(pxs_store_opts_init(&so));
    so.connector = PXS_CONN_LOCAL;
    so.arena_bytes = 64 * 1024;
    so.put_timeout = 0.0;
    pxs_store_t *store;
    CHECK_OK(pxs_store_create(MPI_COMM_NULL, &so, &store));

    pxs_inproc_hub_t *hub;
    CHECK_OK(pxs_inproc_hub_create(1, &hub));
    uint32_t pubs[2] = {TA, TB};
    pxs_subscription_t subs[2] = {{.topic = TA, .group = NULL}, {.topic = TB, .group = NULL}};
    pxs_bus_opts_t bo;
    CHECK_OK(pxs_bus_opts_init(&bo));
    bo.publish = pubs;
    bo.n_publish = 2;
    bo.subscribe = subs;
    bo.n_subscribe = 2;
    pxs_bus_t *bus;
    CHECK_OK(pxs_inproc_bus_create(hub, 0, &bo, &bus));
    pxs_publisher_t *pub;
    pxs_subscriber_t *sub;
    CHECK_OK(pxs_bus_publisher(bus, &pub));
    CHECK_OK(pxs_bus_subscriber(bus, &sub));

    pxs_producer_opts_t po;
    CHECK_OK(pxs_producer_opts_init(&po));
    CHECK(po.struct_size == sizeof po && po.resolves == 1 && po.close_on_destroy == 1);
    po.topics = pubs;
    po.n_topics = 2;
    pxs_producer_t *prod;
    CHECK_OK(pxs_producer_create(store, pub, &po, &prod));
    pxs_consumer_opts_t co;
    CHECK_OK(pxs_consumer_opts_init(&co));
    co.filter = keep_even;
    pxs_consumer_t *cons;
    CHECK_OK(pxs_consumer_create(store, sub, &co, &cons));

    unsigned char buf[CHUNK];
    pxs_event_t ev;
    CHECK_RC(pxs_consumer_next(cons, &ev, 0.0), PXS_TIMEOUT);
    int got = 0;
    for (uint32_t i = 0; i < N; i++) {
        uint32_t topic = (i % 4 < 2) ? TA : TB;
        pxs_test_fill(buf, sizeof buf, i);
        pxs_send_opts_t sop;
        CHECK_OK(pxs_send_opts_init(&sop));
        sop.meta = &i;
        sop.meta_len = sizeof i;
        CHECK_OK(pxs_producer_send(prod, topic, buf, sizeof buf, &sop, NULL));
        CHECK_OK(pxs_producer_flush(prod));
        void *data = NULL;
        size_t len = 0;
        int rc = pxs_consumer_next_object(cons, &ev, &data, &len, 0.0);
        if (i % 2) {
            CHECK_RC(rc, PXS_TIMEOUT); /* dropped by the filter (and evicted) */
            continue;
        }
        CHECK_RC(rc, PXS_OK);
        uint32_t idx;
        memcpy(&idx, ev.meta, sizeof idx);
        CHECK(idx == i && ev.topic == topic && len == CHUNK);
        CHECK(pxs_test_verify(data, len, i));
        pxs_free(data);
        got++;
    }
    CHECK(got == N / 2);
    size_t used = 1, cap = 0;
    (void)pxs_store_progress(store);
    CHECK_OK(pxs_store_used(store, &used, &cap));
    CHECK(used == 0);
    CHECK_OK(pxs_producer_close_topic(prod, TA));
    CHECK_RC(pxs_consumer_next(cons, &ev, 0.0), PXS_TIMEOUT); /* TB still open */
    CHECK_OK(pxs_producer_destroy(prod));                      /* closes TB */
    CHECK_RC(pxs_consumer_next(cons, &ev, 1.0), PXS_END);
    CHECK(ev.topic == PXS_TOPIC_ALL);
    uint64_t delivered = 0, dropped = 0, rbytes = 0;
    CHECK_OK(pxs_consumer_stats(cons, &delivered, &dropped, &rbytes));
    CHECK(delivered == N / 2 && dropped == N / 2 && rbytes == (uint64_t)(N / 2) * CHUNK);
    CHECK_OK(pxs_consumer_destroy(cons));
    CHECK_OK(pxs_bus_destroy(bus));
    CHECK_OK(pxs_inproc_hub_destroy(hub));
    CHECK_OK(pxs_store_destroy(store));
    printf("unit stream local: OK\n");
    return 0;
}
