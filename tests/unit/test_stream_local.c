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

static pxs_store_t *
local_store(size_t arena)
{
    pxs_store_opts_t so;
    CHECK_OK(pxs_store_opts_init(&so));
    so.connector = PXS_CONN_LOCAL;
    so.arena_bytes = arena;
    so.put_timeout = 0.0;
    pxs_store_t *store;
    CHECK_OK(pxs_store_create(MPI_COMM_NULL, &so, &store));
    return store;
}

/* A hub of one participant that publishes and subscribes TA and TB. */
static void
solo_bus_ab(pxs_inproc_hub_t **hub, pxs_bus_t **bus, pxs_publisher_t **pub,
            pxs_subscriber_t **sub)
{
    CHECK_OK(pxs_inproc_hub_create(1, hub));
    uint32_t pubs[2] = {TA, TB};
    pxs_subscription_t subs[2] = {{.topic = TA, .group = NULL}, {.topic = TB, .group = NULL}};
    pxs_bus_opts_t bo;
    CHECK_OK(pxs_bus_opts_init(&bo));
    bo.publish = pubs;
    bo.n_publish = 2;
    bo.subscribe = subs;
    bo.n_subscribe = 2;
    CHECK_OK(pxs_inproc_bus_create(*hub, 0, &bo, bus));
    CHECK_OK(pxs_bus_publisher(*bus, pub));
    CHECK_OK(pxs_bus_subscriber(*bus, sub));
}

/* Issue 8: a consumer without a store cannot give dropped objects back, so
 * a filter with the default PXS_DROP_EVICT is refused at create. */
static void
test_null_store_filter(void)
{
    pxs_inproc_hub_t *hub;
    CHECK_OK(pxs_inproc_hub_create(1, &hub));
    pxs_subscription_t subs[1] = {{.topic = TA, .group = NULL}};
    pxs_bus_opts_t bo;
    CHECK_OK(pxs_bus_opts_init(&bo));
    bo.subscribe = subs;
    bo.n_subscribe = 1;
    pxs_bus_t *bus;
    CHECK_OK(pxs_inproc_bus_create(hub, 0, &bo, &bus));
    pxs_subscriber_t *sub;
    CHECK_OK(pxs_bus_subscriber(bus, &sub));
    pxs_consumer_opts_t co;
    CHECK_OK(pxs_consumer_opts_init(&co));
    co.filter = keep_even;
    pxs_consumer_t *cons = NULL;
    CHECK_RC(pxs_consumer_create(NULL, sub, &co, &cons), PXS_ERR_INVALID);
    CHECK(strstr(pxs_last_error_detail(), "PXS_DROP_IGNORE") != NULL);
    CHECK(cons == NULL);
    co.drop_policy = PXS_DROP_IGNORE; /* someone else evicts: allowed */
    CHECK_OK(pxs_consumer_create(NULL, sub, &co, &cons));
    CHECK_OK(pxs_consumer_destroy(cons));
    co.filter = NULL; /* no filter, no drops: allowed with the default */
    co.drop_policy = PXS_DROP_EVICT;
    CHECK_OK(pxs_consumer_create(NULL, sub, &co, &cons));
    CHECK_OK(pxs_consumer_destroy(cons));
    CHECK_OK(pxs_bus_destroy(bus));
    CHECK_OK(pxs_inproc_hub_destroy(hub));
}

/* Issue 8: N plain subscribers, default budget: every one resolves every
 * object (the budget follows the topic's fan-out; it was 1: N-1 STALE). A
 * group counts once. 4 participants: 0 produces; 1, 2, 3 subscribe plainly
 * to TA; 1 and 2 are also the two members of a group on TB. */
static void
test_fanout(void)
{
    enum { NP = 4, M = 8 };
    pxs_store_t *store = local_store(1u << 20);
    pxs_inproc_hub_t *hub;
    CHECK_OK(pxs_inproc_hub_create(NP, &hub));
    pxs_bus_t *bus[NP];
    pxs_subscriber_t *sub[NP];
    pxs_consumer_t *cons[NP] = {NULL};
    uint32_t pubs[2] = {TA, TB};
    for (int r = 0; r < NP; r++) {
        pxs_subscription_t subs[2] = {{.topic = TA, .group = NULL}, {.topic = TB, .group = "g"}};
        pxs_bus_opts_t bo;
        CHECK_OK(pxs_bus_opts_init(&bo));
        if (r == 0) {
            bo.publish = pubs;
            bo.n_publish = 2;
        } else {
            bo.subscribe = subs;
            bo.n_subscribe = r == 3 ? 1 : 2;
        }
        CHECK_OK(pxs_inproc_bus_create(hub, r, &bo, &bus[r]));
        CHECK_OK(pxs_bus_subscriber(bus[r], &sub[r]));
        if (r)
            CHECK_OK(pxs_consumer_create(store, sub[r], NULL, &cons[r]));
    }
    pxs_publisher_t *pub;
    CHECK_OK(pxs_bus_publisher(bus[0], &pub));
    pxs_producer_t *prod;
    CHECK_OK(pxs_producer_create(store, pub, NULL, &prod));
    unsigned char buf[CHUNK];
    for (uint32_t i = 0; i < M; i++) {
        pxs_test_fill(buf, sizeof buf, i);
        CHECK_OK(pxs_producer_send(prod, i % 2 ? TB : TA, buf, sizeof buf, NULL, NULL));
    }
    CHECK_OK(pxs_producer_destroy(prod));
    int on_tb = 0;
    for (int r = 1; r < NP; r++) {
        pxs_event_t ev;
        void *data;
        size_t len;
        int rc;
        while ((rc = pxs_consumer_next_object(cons[r], &ev, &data, &len, 5.0)) == PXS_OK) {
            uint32_t i = (uint32_t)ev.seq * 2 + (ev.topic == TB);
            CHECK(len == CHUNK && pxs_test_verify(data, len, i));
            pxs_free(data);
            on_tb += ev.topic == TB;
        }
        CHECK_RC(rc, PXS_END);
        uint64_t delivered = 0;
        CHECK_OK(pxs_consumer_stats(cons[r], &delivered, NULL, NULL));
        CHECK(delivered >= M / 2); /* every TA event (resolved: no STALE) */
        CHECK_OK(pxs_consumer_destroy(cons[r]));
    }
    CHECK(on_tb == M / 2); /* the group: each TB event once */
    size_t used = 1;
    CHECK_OK(pxs_store_used(store, &used, NULL));
    CHECK(used == 0); /* budget 3 on TA (3 plain), 1 on TB (1 group): all spent */
    for (int r = 0; r < NP; r++)
        CHECK_OK(pxs_bus_destroy(bus[r]));
    CHECK_OK(pxs_inproc_hub_destroy(hub));
    CHECK_OK(pxs_store_destroy(store));
}

/* Issue 8: a producer without a topic list that sends nothing still ends
 * every declared topic; two producers on one publisher: the last one
 * destroyed ends what the other did not close. */
static void
test_end_every_topic(void)
{
    pxs_inproc_hub_t *hub;
    pxs_bus_t *bus;
    pxs_publisher_t *pub;
    pxs_subscriber_t *sub;
    solo_bus_ab(&hub, &bus, &pub, &sub);
    pxs_consumer_t *cons;
    CHECK_OK(pxs_consumer_create(NULL, sub, NULL, &cons));
    pxs_event_t ev;

    /* one producer, nothing sent: END on both topics */
    pxs_producer_t *a, *b;
    CHECK_OK(pxs_producer_create(NULL, pub, NULL, &a));
    CHECK_OK(pxs_producer_destroy(a));
    CHECK_RC(pxs_consumer_next(cons, &ev, 1.0), PXS_END);
    CHECK_OK(pxs_consumer_destroy(cons));
    CHECK_OK(pxs_bus_destroy(bus));

    /* two producers on one publisher: a sends on TA, b on nothing; a's
     * destroy closes TA only (b is still live), b's closes TB */
    CHECK_OK(pxs_inproc_hub_destroy(hub));
    solo_bus_ab(&hub, &bus, &pub, &sub);
    CHECK_OK(pxs_consumer_create(NULL, sub, NULL, &cons));
    CHECK_OK(pxs_producer_create(NULL, pub, NULL, &a));
    CHECK_OK(pxs_producer_create(NULL, pub, NULL, &b));
    pxs_proxy_t px;
    {
        pxs_store_t *st = local_store(64 * 1024);
        CHECK_OK(pxs_store_put(st, "x", 1, NULL, &px));
        CHECK_OK(pxs_producer_send_proxy(a, TA, &px, NULL, 0));
        CHECK_OK(pxs_producer_destroy(a));
        CHECK_RC(pxs_consumer_next(cons, &ev, 1.0), PXS_OK);
        CHECK(ev.topic == TA);
        CHECK_RC(pxs_consumer_next(cons, &ev, 0.0), PXS_TIMEOUT); /* TB open: b lives */
        CHECK_OK(pxs_producer_send_proxy(b, TB, &px, NULL, 0));  /* b still sends */
        CHECK_OK(pxs_producer_destroy(b));
        CHECK_RC(pxs_consumer_next(cons, &ev, 1.0), PXS_OK);
        CHECK(ev.topic == TB);
        CHECK_RC(pxs_consumer_next(cons, &ev, 1.0), PXS_END);
        CHECK_OK(pxs_store_destroy(st));
    }
    CHECK_OK(pxs_consumer_destroy(cons));
    CHECK_OK(pxs_bus_destroy(bus));
    CHECK_OK(pxs_inproc_hub_destroy(hub));
}

/* Issue 8: events the bus discards at destroy (the producer's destroy
 * returned AGAIN: the consumer never read) give their objects back: only
 * the ones delivered to the mailbox remain, not every one sent. */
static void
test_giveback(void)
{
    enum { SLOTS = 2, M = 10 };
    pxs_store_t *store = local_store(1u << 20);
    pxs_inproc_hub_t *hub;
    CHECK_OK(pxs_inproc_hub_create(1, &hub));
    uint32_t pubs[1] = {TA};
    pxs_subscription_t subs[1] = {{.topic = TA, .group = NULL}};
    pxs_bus_opts_t bo;
    CHECK_OK(pxs_bus_opts_init(&bo));
    bo.publish = pubs;
    bo.n_publish = 1;
    bo.subscribe = subs;
    bo.n_subscribe = 1;
    bo.slots = SLOTS;
    bo.batch = 1;
    bo.send_timeout = 0.0;
    pxs_bus_t *bus;
    CHECK_OK(pxs_inproc_bus_create(hub, 0, &bo, &bus));
    pxs_publisher_t *pub;
    CHECK_OK(pxs_bus_publisher(bus, &pub));
    pxs_producer_t *prod;
    CHECK_OK(pxs_producer_create(store, pub, NULL, &prod));
    unsigned char buf[CHUNK];
    int accepted = 0;
    for (uint32_t i = 0; i < M; i++) {
        int rc = pxs_producer_send(prod, TA, buf, sizeof buf, NULL, NULL);
        CHECK(rc == PXS_OK || rc == PXS_ERR_AGAIN);
        accepted += rc == PXS_OK;
    }
    CHECK(accepted > SLOTS); /* some stay queued in the publisher */
    size_t used = 0;
    CHECK_OK(pxs_store_used(store, &used, NULL));
    CHECK(used == (size_t)accepted * CHUNK);
    CHECK_RC(pxs_producer_destroy(prod), PXS_ERR_AGAIN); /* END cannot go out */
    CHECK_OK(pxs_bus_destroy(bus));
    CHECK_OK(pxs_store_used(store, &used, NULL));
    CHECK(used == (size_t)SLOTS * CHUNK); /* the delivered, unread ones */
    CHECK_OK(pxs_inproc_hub_destroy(hub));
    CHECK_OK(pxs_store_destroy(store));
}

int
main(int argc, char **argv)
{
    /* an argument runs one of the issue 8 cases alone */
    const char *only = argc > 1 ? argv[1] : NULL;
#define RUN(f)                                                                 \
    if (!only || strcmp(only, #f) == 0)                                        \
        f();
    RUN(test_null_store_filter)
    RUN(test_fanout)
    RUN(test_end_every_topic)
    RUN(test_giveback)
    if (only)
        return 0;

    pxs_store_t *store = local_store(64 * 1024);

    pxs_inproc_hub_t *hub;
    pxs_bus_t *bus;
    pxs_publisher_t *pub;
    pxs_subscriber_t *sub;
    solo_bus_ab(&hub, &bus, &pub, &sub);

    pxs_producer_opts_t po;
    CHECK_OK(pxs_producer_opts_init(&po));
    CHECK(po.struct_size == sizeof po && po.resolves == 0 && po.close_on_destroy == 1);
    uint32_t pubs[2] = {TA, TB};
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
