/* Bad input to producers and consumers: each returns its PXS_ERR_* and leaves
 * the stream usable. Rank 0 produces, rank 1 consumes. */
#include "pxs_test.h"
#include "stream/stream_internal.h"

enum { T = 3, T_OTHER = 4, T_UNDECLARED = 77 };

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
    uint32_t pubs[2] = {T, T_OTHER};
    pxs_subscription_t subs[2] = {{.topic = T, .group = NULL}, {.topic = T_OTHER, .group = NULL}};
    pxs_bus_opts_t bo;
    CHECK_OK(pxs_bus_opts_init(&bo));
    if (rank == 0) {
        bo.publish = pubs;
        bo.n_publish = 2;
    } else {
        bo.subscribe = subs;
        bo.n_subscribe = 2;
    }
    pxs_bus_t *bus;
    pxs_publisher_t *pub;
    pxs_subscriber_t *sub;
    pxs_test_bus(&bo, &bus, &pub, &sub);

    /* Arguments common to both sides. */
    pxs_producer_t *px = NULL;
    pxs_consumer_t *cx = NULL;
    CHECK_RC(pxs_producer_create(store, NULL, NULL, &px), PXS_ERR_INVALID);
    CHECK_RC(pxs_producer_create(store, pub, NULL, NULL), PXS_ERR_INVALID);
    CHECK_RC(pxs_consumer_create(store, NULL, NULL, &cx), PXS_ERR_INVALID);
    pxs_producer_opts_t bad;
    memset(&bad, 0, sizeof bad); /* struct_size 0: not initialised */
    CHECK_RC(pxs_producer_create(store, pub, &bad, &px), PXS_ERR_INVALID);
    CHECK(px == NULL);
    uint32_t reserved = PXS_TOPIC_ALL;
    pxs_producer_opts_t po;
    CHECK_OK(pxs_producer_opts_init(&po));
    po.topics = &reserved;
    po.n_topics = 1;
    CHECK_RC(pxs_producer_create(store, pub, &po, &px), PXS_ERR_INVALID);
    CHECK_RC(pxs_producer_opts_init_(&po, 0), PXS_ERR_INVALID);
    pxs_event_t ev;
    CHECK_RC(pxs_consumer_next(NULL, &ev, 0.0), PXS_ERR_INVALID);
    CHECK_RC(pxs_producer_send(NULL, T, "x", 1, NULL, NULL), PXS_ERR_INVALID);
    CHECK_RC(pxs_producer_flush(NULL), PXS_ERR_INVALID);
    CHECK_OK(pxs_producer_destroy(NULL));
    CHECK_OK(pxs_consumer_destroy(NULL));

    if (rank == 0) {
        unsigned char data[1000];
        pxs_test_fill(data, sizeof data, 42);
        size_t used0 = 0, used = 0, cap = 0;
        CHECK_OK(pxs_store_used(store, &used0, &cap));

        /* A producer without a topic list: the bus rejects an undeclared topic
         * and the object stored for it is evicted again. */
        pxs_producer_t *open;
        CHECK_OK(pxs_producer_opts_init(&po));
        po.close_on_destroy = 0;
        CHECK_OK(pxs_producer_create(store, pub, &po, &open));
        CHECK_RC(pxs_producer_send(open, T_UNDECLARED, data, sizeof data, NULL, NULL),
                 PXS_ERR_NOT_FOUND);
        (void)pxs_store_progress(store);
        CHECK_OK(pxs_store_used(store, &used, &cap));
        CHECK(used == used0);
        CHECK_RC(pxs_producer_send(open, PXS_TOPIC_ALL, data, 1, NULL, NULL), PXS_ERR_INVALID);
        /* Many distinct undeclared topics: each is refused and leaves nothing
         * behind, neither in the arena nor in the producer's topic table
         * (it used to gain an entry per topic tried). */
        for (uint32_t k = 0; k < 10000; k++) {
            uint32_t topic = 1000 + k;
            CHECK_RC(pxs_producer_send(open, topic, data, 100, NULL, NULL), PXS_ERR_NOT_FOUND);
            CHECK_RC(pxs_producer_close_topic(open, topic), PXS_ERR_NOT_FOUND);
        }
        CHECK(open->n_topics == 0 && open->cap_topics <= 8);
        (void)pxs_store_progress(store);
        CHECK_OK(pxs_store_used(store, &used, &cap));
        CHECK(used == used0);
        CHECK_OK(pxs_producer_destroy(open));

        /* The real producer owns T and T_OTHER. */
        CHECK_OK(pxs_producer_opts_init(&po));
        po.inline_max = 0; /* the arena checks below count stored objects */
        po.topics = pubs;
        po.n_topics = 2;
        pxs_producer_t *prod;
        CHECK_OK(pxs_producer_create(store, pub, &po, &prod));
        /* foreign handle: a producer is not a consumer */
        CHECK_RC(pxs_consumer_next((pxs_consumer_t *)(void *)prod, &ev, 0.0), PXS_ERR_INVALID);
        /* wrong topic: not one of this producer's: nothing stored */
        CHECK_RC(pxs_producer_send(prod, T_UNDECLARED, data, sizeof data, NULL, NULL),
                 PXS_ERR_NOT_FOUND);
        CHECK_RC(pxs_producer_close_topic(prod, T_UNDECLARED), PXS_ERR_NOT_FOUND);
        /* data NULL with a length */
        CHECK_RC(pxs_producer_send(prod, T, NULL, 10, NULL, NULL), PXS_ERR_INVALID);
        /* metadata too large */
        unsigned char meta[PXS_EVENT_META_MAX + 1];
        memset(meta, 1, sizeof meta);
        pxs_send_opts_t sop;
        CHECK_OK(pxs_send_opts_init(&sop));
        sop.meta = meta;
        sop.meta_len = sizeof meta;
        CHECK_RC(pxs_producer_send(prod, T, data, sizeof data, &sop, NULL), PXS_ERR_TOO_BIG);
        pxs_proxy_t good;
        sop.meta_len = PXS_EVENT_META_MAX; /* exactly the capacity is fine */
        CHECK_OK(pxs_producer_send(prod, T, data, sizeof data, &sop, &good));
        CHECK_RC(pxs_producer_send_proxy(prod, T, &good, meta, sizeof meta), PXS_ERR_TOO_BIG);
        sop.meta = NULL;
        sop.meta_len = 4;
        CHECK_RC(pxs_producer_send(prod, T, data, sizeof data, &sop, NULL), PXS_ERR_INVALID);
        (void)pxs_store_progress(store);
        CHECK_OK(pxs_store_used(store, &used, &cap));
        CHECK(used > used0); /* only `good` is stored */

        /* forged proxies in send_proxy */
        pxs_proxy_t forged;
        pxs_test_fill(forged.bytes, sizeof forged.bytes, 7);
        CHECK_RC(pxs_producer_send_proxy(prod, T_OTHER, &forged, NULL, 0), PXS_ERR_CORRUPT);
        forged = good;
        forged.bytes[20] ^= 0x10; /* offset bit flip: checksum no longer matches */
        CHECK_RC(pxs_producer_send_proxy(prod, T_OTHER, &forged, NULL, 0), PXS_ERR_CORRUPT);
        memset(&forged, 0, sizeof forged);
        CHECK_RC(pxs_producer_send_proxy(prod, T_OTHER, &forged, NULL, 0), PXS_ERR_CORRUPT);
        CHECK_RC(pxs_producer_send_proxy(prod, T_OTHER, NULL, NULL, 0), PXS_ERR_INVALID);
        /* the real one forwards fine (the consumer resolves it from T_OTHER) */
        CHECK_OK(pxs_producer_send_proxy(prod, T_OTHER, &good, "fwd", 3));

        /* send after close; close twice */
        CHECK_OK(pxs_producer_close_topic(prod, T));
        CHECK_RC(pxs_producer_send(prod, T, data, sizeof data, NULL, NULL), PXS_ERR_CLOSED);
        CHECK_RC(pxs_producer_send_proxy(prod, T, &good, NULL, 0), PXS_ERR_CLOSED);
        CHECK_RC(pxs_producer_close_topic(prod, T), PXS_ERR_CLOSED);
        uint64_t sent = 0, fwd = 0;
        CHECK_OK(pxs_producer_stats(prod, &sent, NULL, &fwd));
        CHECK(sent == 1 && fwd == 1);
        CHECK_OK(pxs_producer_destroy(prod)); /* closes T_OTHER */
    } else {
        pxs_consumer_opts_t co;
        CHECK_OK(pxs_consumer_opts_init(&co));
        co.drop_policy = 17;
        CHECK_RC(pxs_consumer_create(store, sub, &co, &cx), PXS_ERR_INVALID);
        pxs_consumer_t *cons;
        CHECK_OK(pxs_consumer_create(store, sub, NULL, &cons));
        CHECK_RC(pxs_consumer_next(cons, NULL, 0.0), PXS_ERR_INVALID);
        /* first event: `good` on T (with 96 B of metadata) */
        pxs_event_t ev2;
        CHECK_OK(pxs_consumer_next(cons, &ev, 60.0));
        CHECK_OK(pxs_consumer_next(cons, &ev2, 60.0));
        if (ev.topic == T_OTHER) { /* FIFO holds per topic, not across topics */
            pxs_event_t tmp = ev;
            ev = ev2;
            ev2 = tmp;
        }
        CHECK(ev.topic == T && ev.meta_len == PXS_EVENT_META_MAX);
        CHECK(ev2.topic == T_OTHER && ev2.meta_len == 3 && !memcmp(ev2.meta, "fwd", 3));
        CHECK(!memcmp(ev.proxy.bytes, ev2.proxy.bytes, PXS_PROXY_SIZE));
        unsigned char small[10];
        size_t len = 0;
        CHECK_RC(pxs_consumer_resolve(cons, &ev, small, sizeof small, &len), PXS_ERR_TRUNC);
        CHECK(len == 1000);
        unsigned char buf[1000];
        CHECK_OK(pxs_consumer_resolve(cons, &ev, buf, sizeof buf, &len));
        CHECK(len == 1000 && pxs_test_verify(buf, len, 42));
        /* budget 1: the forwarded copy of the same proxy is now stale */
        CHECK_RC(pxs_consumer_resolve(cons, &ev2, buf, sizeof buf, &len), PXS_ERR_STALE);
        CHECK_RC(pxs_consumer_next(cons, &ev, 60.0), PXS_END);
        CHECK_RC(pxs_consumer_next(cons, &ev, 0.0), PXS_END);
        /* a consumer without a store cannot resolve */
        pxs_consumer_t *nostore;
        CHECK_OK(pxs_consumer_create(NULL, sub, NULL, &nostore));
        CHECK_RC(pxs_consumer_resolve(nostore, &ev2, buf, sizeof buf, &len), PXS_ERR_INVALID);
        CHECK_OK(pxs_consumer_destroy(nostore));
        /* next on a destroyed consumer: the struct is poisoned but (test hook)
         * not freed yet, so the check reads legal memory */
        pxsi_consumer_poison(cons);
        CHECK_RC(pxs_consumer_next(cons, &ev, 0.0), PXS_ERR_INVALID);
        CHECK_RC(pxs_consumer_resolve(cons, &ev2, buf, sizeof buf, &len), PXS_ERR_INVALID);
        CHECK_RC(pxs_consumer_destroy(cons), PXS_ERR_INVALID);
        pxsi_consumer_free(cons);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    CHECK_OK(pxs_bus_destroy(bus));
    CHECK_OK(pxs_store_destroy(store));
    if (rank == 0)
        printf("stream bad input: OK\n");
    MPI_Finalize();
    return 0;
}
