/* Statistics without MPI (docs/DESIGN.md, section "Logging and
 * statistics"): in-process bus + local store, one thread. Participant 0
 * produces N objects on topic T to participant 1 through a 4-slot queue
 * with send_timeout 0.05 s: the fifth send waits and fails (backpressure,
 * counted), the queue depth high-water is exactly 4. Then every counter is
 * checked after the stream, a second resolve of an object is STALE and
 * counted, the arena high-water holds the four objects, and the sized-struct
 * rule is checked on every stats call. */
#include <stddef.h>

#include "pxs_test.h"

enum { T = 3, N = 8, LEN = 200 };

int
main(void)
{
    pxs_store_opts_t so;
    CHECK_OK(pxs_store_opts_init(&so));
    so.connector = PXS_CONN_LOCAL;
    so.arena_bytes = 1u << 20;
    pxs_store_t *store;
    CHECK_OK(pxs_store_create(MPI_COMM_NULL, &so, &store));
    pxs_inproc_hub_t *hub;
    CHECK_OK(pxs_inproc_hub_create(2, &hub));
    uint32_t pubs[1] = {T};
    pxs_subscription_t subs[1] = {{.topic = T}};
    pxs_bus_t *bus[2];
    for (int r = 0; r < 2; r++) {
        pxs_bus_opts_t bo;
        CHECK_OK(pxs_bus_opts_init(&bo));
        bo.slots = 4;
        bo.batch = 1;
        bo.send_timeout = 0.05;
        if (r == 0) {
            bo.publish = pubs;
            bo.n_publish = 1;
        } else {
            bo.subscribe = subs;
            bo.n_subscribe = 1;
        }
        CHECK_OK(pxs_inproc_bus_create(hub, r, &bo, &bus[r]));
    }
    pxs_publisher_t *pub;
    pxs_subscriber_t *sub;
    CHECK_OK(pxs_bus_publisher(bus[0], &pub));
    CHECK_OK(pxs_bus_subscriber(bus[1], &sub));
    pxs_producer_t *prod;
    pxs_consumer_t *cons;
    CHECK_OK(pxs_producer_create(store, pub, NULL, &prod));
    CHECK_OK(pxs_consumer_create(store, sub, NULL, &cons));
    unsigned char buf[LEN];

    /* 4 fit the queue, the 5th is queued in the publisher (accepted), the
     * 6th waits for room: nobody reads, so AGAIN after 0.05 s */
    uint32_t sent = 0;
    for (; sent < 5; sent++) {
        pxs_test_fill(buf, sizeof buf, sent);
        CHECK_OK(pxs_producer_send(prod, T, buf, sizeof buf, NULL, NULL));
    }
    pxs_test_fill(buf, sizeof buf, sent);
    CHECK_RC(pxs_producer_send(prod, T, buf, sizeof buf, NULL, NULL), PXS_ERR_AGAIN);

    pxs_bus_stats_t bs;
    CHECK_OK(pxs_bus_stats_init(&bs));
    CHECK_OK(pxs_bus_stats(bus[0], &bs));
    CHECK(bs.events_sent == 5 && bs.records_appended == 4 && bs.backpressure_waits == 1);
    CHECK(bs.backpressure_seconds > 0.0 && bs.topics_published == 1 && bs.topics_closed == 0);
    CHECK_OK(pxs_bus_stats(bus[1], &bs));
    CHECK(bs.mailbox_slots == 4 && bs.depth_now == 4 && bs.depth_hwm == 0);

    /* read everything while sending the rest */
    pxs_event_t ev, first;
    size_t len = 0;
    uint32_t got = 0;
    while (got < N) {
        if (sent < N) {
            pxs_test_fill(buf, sizeof buf, sent);
            int rc = pxs_producer_send(prod, T, buf, sizeof buf, NULL, NULL);
            CHECK(rc == PXS_OK || rc == PXS_ERR_AGAIN);
            sent += rc == PXS_OK;
        } else {
            CHECK_OK(pxs_producer_flush(prod));
        }
        int rc = pxs_consumer_next(cons, &ev, 0.0);
        if (rc == PXS_TIMEOUT)
            continue;
        CHECK_OK(rc);
        CHECK(ev.seq == got);
        CHECK_OK(pxs_consumer_resolve(cons, &ev, buf, sizeof buf, &len));
        CHECK(len == LEN && pxs_test_verify(buf, len, got));
        if (got == 0)
            first = ev;
        got++;
    }
    CHECK_OK(pxs_producer_close_topic(prod, T));
    CHECK_RC(pxs_consumer_next(cons, &ev, 1.0), PXS_END);
    CHECK_RC(pxs_store_resolve(store, &first.proxy, buf, sizeof buf, &len), PXS_ERR_STALE);

    pxs_producer_stats_t ps;
    CHECK_OK(pxs_producer_stats_init(&ps));
    CHECK_OK(pxs_producer_stats2(prod, &ps));
    CHECK(ps.sent == N && ps.bytes == (uint64_t)N * LEN && ps.failed >= 1);
    CHECK(ps.topics == 1 && ps.topics_closed == 1 && ps.topics_closing == 0);
    pxs_consumer_stats_t cs;
    CHECK_OK(pxs_consumer_stats_init(&cs));
    CHECK_OK(pxs_consumer_stats2(cons, &cs));
    CHECK(cs.delivered == N && cs.resolves == N && cs.resolved_bytes == (uint64_t)N * LEN);
    CHECK(cs.topics_ended == 1 && cs.ended == 1 && cs.dropped == 0);

    CHECK_OK(pxs_bus_stats(bus[0], &bs));
    CHECK(bs.events_sent == N && bs.records_appended == N + 1 && bs.ends_sent == 1);
    CHECK(bs.topics_closed == 1 && bs.backpressure_waits >= 1);
    CHECK_OK(pxs_bus_stats(bus[1], &bs));
    CHECK(bs.events_received == N && bs.ends_received == 1 && bs.topics_ended == 1);
    CHECK(bs.depth_hwm == 4 && bs.depth_now == 0);

    CHECK_OK(pxs_store_progress(store)); /* reclaim what was resolved */
    pxs_store_stats_t ss;
    CHECK_OK(pxs_store_stats_init(&ss));
    CHECK_OK(pxs_store_stats(store, &ss));
    CHECK(ss.connector == PXS_CONN_LOCAL && ss.arena_bytes == (1u << 20));
    CHECK(ss.puts == ps.sent + ps.failed && ss.bytes_put == ss.puts * LEN);
    CHECK(ss.resolves == N && ss.bytes_resolved == (uint64_t)N * LEN && ss.resolves_self == N);
    CHECK(ss.stale == 1 && ss.corrupt == 0);
    CHECK(ss.arena_hwm >= 5 * 256 && ss.arena_hwm <= ss.arena_bytes); /* 200 B -> 256 B blocks */
    CHECK(ss.arena_used == 0 && ss.objects_live == 0 && ss.largest_free == ss.arena_bytes);
    CHECK(ss.spill_objects == 0 && ss.spill_bytes == 0 && ss.unspill_bytes == 0);

    /* the sized-struct rule on every call: a smaller struct gets the prefix */
    pxs_store_stats_t small;
    memset(&small, 0x5A, sizeof small);
    small.struct_size = offsetof(pxs_store_stats_t, resolves);
    CHECK_OK(pxs_store_stats(store, &small));
    CHECK(small.puts == ss.puts && small.bytes_put == ss.bytes_put);
    CHECK(((unsigned char *)&small.resolves)[0] == 0x5A);
    small.struct_size = 1;
    CHECK_RC(pxs_store_stats(store, &small), PXS_ERR_INVALID);
    pxs_producer_stats_t psmall;
    memset(&psmall, 0x5A, sizeof psmall);
    psmall.struct_size = offsetof(pxs_producer_stats_t, bytes);
    CHECK_OK(pxs_producer_stats2(prod, &psmall));
    CHECK(psmall.sent == N && ((unsigned char *)&psmall.bytes)[0] == 0x5A);
    pxs_consumer_stats_t csmall;
    memset(&csmall, 0x5A, sizeof csmall);
    csmall.struct_size = offsetof(pxs_consumer_stats_t, dropped);
    CHECK_OK(pxs_consumer_stats2(cons, &csmall));
    CHECK(csmall.delivered == N && ((unsigned char *)&csmall.dropped)[0] == 0x5A);
    CHECK_RC(pxs_consumer_stats2(cons, NULL), PXS_ERR_INVALID);
    CHECK_RC(pxs_producer_stats2(NULL, &ps), PXS_ERR_INVALID);
    CHECK_RC(pxs_bus_stats_init_(NULL, sizeof bs), PXS_ERR_INVALID);

    CHECK_OK(pxs_consumer_destroy(cons));
    CHECK_OK(pxs_producer_destroy(prod));
    CHECK_OK(pxs_bus_destroy(bus[0]));
    CHECK_OK(pxs_bus_destroy(bus[1]));
    CHECK_OK(pxs_inproc_hub_destroy(hub));
    CHECK_OK(pxs_store_destroy(store));
    printf("observe.local: ok\n");
    return 0;
}
