/* Multi-producer, multi-topic streams with END.
 * Ranks 0 and 1 produce on topics A and B; rank 2 consumes A and B (one
 * consumer on two topics); rank 3 consumes B only. Producer 0 closes A early
 * (before sending its B events) to exercise per-topic END absorption.
 * Checks: every event exactly once, FIFO per (producer, topic), metadata and
 * payload intact, PXS_END only after all producers of all topics closed and on
 * every call after it, and the producers' arenas empty at the end (objects on
 * B carry a resolve budget of 2, one per subscriber). */
#include "pxs_test.h"

enum { TA = 11, TB = 12, K = 200, NPROD = 2 };

typedef struct meta {
    uint32_t prod, topic, idx, pad;
} meta_t;

static size_t
size_of(uint32_t prod, uint32_t idx)
{
    return 16 + (size_t)((idx * 7919u + prod * 104729u) % 20000u);
}

int
main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    CHECK(size == 4);

    pxs_store_opts_t so;
    CHECK_OK(pxs_store_opts_init(&so));
    so.arena_bytes = 4u << 20;
    pxs_store_t *store;
    CHECK_OK(pxs_store_create(MPI_COMM_WORLD, &so, &store));

    uint32_t pubs[2] = {TA, TB};
    pxs_subscription_t subs2[2] = {{.topic = TA, .group = NULL}, {.topic = TB, .group = NULL}};
    pxs_subscription_t subs1[1] = {{.topic = TB, .group = ""}};
    pxs_bus_opts_t bo;
    CHECK_OK(pxs_bus_opts_init(&bo));
    bo.batch = 4;
    if (rank < NPROD) {
        bo.publish = pubs;
        bo.n_publish = 2;
    } else if (rank == 2) {
        bo.subscribe = subs2;
        bo.n_subscribe = 2;
    } else {
        bo.subscribe = subs1;
        bo.n_subscribe = 1;
    }
    pxs_bus_t *bus;
    pxs_publisher_t *pub;
    pxs_subscriber_t *sub;
    pxs_test_bus(&bo, &bus, &pub, &sub);

    unsigned char *buf = malloc(32768);
    CHECK(buf);
    if (rank < NPROD) {
        pxs_producer_opts_t po;
        CHECK_OK(pxs_producer_opts_init(&po));
        po.topics = pubs;
        po.n_topics = 2;
        po.batch = 8;
        po.checksum = 1;
        pxs_producer_t *prod;
        CHECK_OK(pxs_producer_create(store, pub, &po, &prod));
        for (uint32_t t = 0; t < 2; t++) {
            uint32_t topic = t ? TB : TA;
            for (uint32_t i = 0; i < K; i++) {
                meta_t m = {(uint32_t)rank, topic, i, 0};
                size_t len = size_of((uint32_t)rank, i);
                pxs_test_fill(buf, len, (uint64_t)rank * 1000003u + topic * 7777u + i);
                pxs_send_opts_t sop;
                CHECK_OK(pxs_send_opts_init(&sop));
                sop.meta = &m;
                sop.meta_len = sizeof m;
                sop.resolves = topic == TB ? 2 : 1;
                pxs_proxy_t p;
                CHECK_OK(pxs_producer_send(prod, topic, buf, len, &sop, &p));
                CHECK_OK(pxs_proxy_validate(&p));
            }
            if (rank == 0 && topic == TA)
                CHECK_OK(pxs_producer_close_topic(prod, TA)); /* early close */
        }
        uint64_t sent = 0, bytes = 0;
        CHECK_OK(pxs_producer_stats(prod, &sent, &bytes, NULL));
        CHECK(sent == 2 * K);
        CHECK_OK(pxs_producer_destroy(prod)); /* closes what is still open */
    } else {
        pxs_consumer_t *cons;
        CHECK_OK(pxs_consumer_create(store, sub, NULL, &cons));
        uint32_t next[NPROD][2] = {{0}};
        int total = 0;
        for (;;) {
            pxs_event_t ev;
            void *data = NULL;
            size_t len = 0;
            int rc = pxs_consumer_next_object(cons, &ev, &data, &len, 30.0);
            if (rc == PXS_END)
                break;
            CHECK_RC(rc, PXS_OK);
            meta_t m;
            CHECK(ev.meta_len == sizeof m);
            memcpy(&m, ev.meta, sizeof m);
            CHECK(m.prod == (uint32_t)ev.producer && m.topic == ev.topic);
            CHECK(ev.producer >= 0 && ev.producer < NPROD);
            CHECK(ev.topic == TA || ev.topic == TB);
            CHECK(rank == 2 || ev.topic == TB);
            int ti = ev.topic == TB;
            CHECK(m.idx == next[ev.producer][ti]); /* FIFO, no loss, no dup */
            CHECK(ev.seq == m.idx);
            next[ev.producer][ti]++;
            CHECK(len == size_of(m.prod, m.idx));
            CHECK(pxs_test_verify(data, len, (uint64_t)m.prod * 1000003u + m.topic * 7777u + m.idx));
            pxs_free(data);
            total++;
        }
        for (int p = 0; p < NPROD; p++) {
            CHECK(next[p][1] == K);
            CHECK(next[p][0] == (rank == 2 ? (uint32_t)K : 0u));
        }
        CHECK(total == (rank == 2 ? 2 * NPROD * K : NPROD * K));
        /* END is sticky */
        pxs_event_t ev;
        CHECK_RC(pxs_consumer_next(cons, &ev, 0.0), PXS_END);
        CHECK(ev.topic == PXS_TOPIC_ALL);
        CHECK_RC(pxs_consumer_next(cons, &ev, 1.0), PXS_END);
        uint64_t delivered = 0, dropped = 1;
        CHECK_OK(pxs_consumer_stats(cons, &delivered, &dropped, NULL));
        CHECK(delivered == (uint64_t)total && dropped == 0);
        CHECK_OK(pxs_consumer_destroy(cons));
    }
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank < NPROD) {
        size_t used = 1, cap = 0;
        (void)pxs_store_progress(store);
        CHECK_OK(pxs_store_used(store, &used, &cap));
        CHECK(used == 0);
    }
    free(buf);
    CHECK_OK(pxs_bus_destroy(bus));
    CHECK_OK(pxs_store_destroy(store));
    if (rank == 0)
        printf("stream multi-producer/multi-topic: OK\n");
    MPI_Finalize();
    return 0;
}
