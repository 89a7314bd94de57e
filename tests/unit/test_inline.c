/* Inline chunks over the in-process bus (docs/DESIGN.md, section "Inline
 * chunks"): sizes 0, 1, 64, 65, inline_max (inline) and inline_max + 1
 * (store) in one ordered stream with a store chunk between; next_object,
 * resolve, view/release and discard of inline events; no arena space used;
 * what an inline proxy means outside its event (the sender's proxy, a
 * forged or consumed one, another process's); resolve_start; a forward
 * through send_proxy carries the payload; END after inline events; the
 * table's bound (displaced entries resolve to STALE). */
#include "pxs_test.h"

enum { T = 1, TF = 2 };

static pxs_store_t *
local_store(void)
{
    pxs_store_opts_t so;
    CHECK_OK(pxs_store_opts_init(&so));
    so.connector = PXS_CONN_LOCAL;
    so.arena_bytes = 1 << 20;
    so.put_timeout = 0.0;
    pxs_store_t *store;
    CHECK_OK(pxs_store_create(MPI_COMM_NULL, &so, &store));
    return store;
}

static int
kind_of(const pxs_proxy_t *p)
{
    pxs_proxy_info_t pi;
    CHECK_OK(pxs_proxy_decode(p->bytes, PXS_PROXY_SIZE, &pi));
    return pi.kind;
}

/* A hub of three participants: 0 publishes T, 1 subscribes T and publishes
 * TF (forwarder), 2 subscribes TF. */
static pxs_inproc_hub_t *
make_buses2(pxs_bus_t *bus[3], uint32_t slots, uint32_t slots2)
{
    pxs_inproc_hub_t *hub;
    CHECK_OK(pxs_inproc_hub_create(3, &hub));
    static uint32_t pt = T, pf = TF;
    static pxs_subscription_t st = {.topic = T}, sf = {.topic = TF};
    for (int r = 0; r < 3; r++) {
        pxs_bus_opts_t bo;
        CHECK_OK(pxs_bus_opts_init(&bo));
        bo.slots = r == 2 ? slots2 : slots;
        bo.send_timeout = 5.0;
        if (r == 0) {
            bo.publish = &pt;
            bo.n_publish = 1;
        } else if (r == 1) {
            bo.subscribe = &st;
            bo.n_subscribe = 1;
            bo.publish = &pf;
            bo.n_publish = 1;
        } else {
            bo.subscribe = &sf;
            bo.n_subscribe = 1;
        }
        CHECK_OK(pxs_inproc_bus_create(hub, r, &bo, &bus[r]));
    }
    return hub;
}

static pxs_inproc_hub_t *
make_buses(pxs_bus_t *bus[3], uint32_t slots)
{
    return make_buses2(bus, slots, slots);
}

static void
destroy_buses(pxs_inproc_hub_t *hub, pxs_bus_t *bus[3])
{
    for (int r = 0; r < 3; r++)
        CHECK_OK(pxs_bus_destroy(bus[r]));
    CHECK_OK(pxs_inproc_hub_destroy(hub));
}

static void
test_roundtrip(void)
{
    pxs_store_t *store = local_store();
    pxs_bus_t *bus[3];
    pxs_inproc_hub_t *hub = make_buses(bus, 1024);
    pxs_publisher_t *pub0, *pub1;
    pxs_subscriber_t *sub1, *sub2;
    CHECK_OK(pxs_bus_publisher(bus[0], &pub0));
    CHECK_OK(pxs_bus_publisher(bus[1], &pub1));
    CHECK_OK(pxs_bus_subscriber(bus[1], &sub1));
    CHECK_OK(pxs_bus_subscriber(bus[2], &sub2));
    pxs_producer_opts_t po;
    CHECK_OK(pxs_producer_opts_init(&po));
    CHECK(po.inline_max <= 16384);
    po.inline_max = 1024;
    pxs_producer_t *prod, *fwd;
    CHECK_OK(pxs_producer_create(store, pub0, &po, &prod));
    CHECK_OK(pxs_producer_create(NULL, pub1, &po, &fwd));
    pxs_consumer_t *cons, *cons2;
    CHECK_OK(pxs_consumer_create(store, sub1, NULL, &cons));
    CHECK_OK(pxs_consumer_create(store, sub2, NULL, &cons2));

    const size_t sizes[] = {0, 1, 64, 65, 224, 225, 1024, 1025, 300, 4096, 7, 1024};
    const int n = (int)(sizeof sizes / sizeof sizes[0]);
    unsigned char *buf = malloc(8192), *out = malloc(8192);
    CHECK(buf && out);
    pxs_proxy_t sent_px[16];
    for (int i = 0; i < n; i++) {
        pxs_send_opts_t so;
        CHECK_OK(pxs_send_opts_init(&so));
        uint32_t idx = (uint32_t)i;
        so.meta = &idx;
        so.meta_len = sizeof idx;
        pxs_test_fill(buf, sizes[i], 100 + (uint64_t)i);
        CHECK_OK(pxs_producer_send(prod, T, buf, sizes[i], &so, &sent_px[i]));
        CHECK(kind_of(&sent_px[i]) == (sizes[i] <= 1024 ? PXS_CONN_INLINE : PXS_CONN_LOCAL));
        if (i == 7) {
            /* the inline ones took no arena space; the 1025 B one does */
            size_t used = 0, cap = 0;
            CHECK_OK(pxs_store_used(store, &used, &cap));
            CHECK(used == 1088);
        }
    }
    /* the sender's proxy of an inline send names nothing */
    size_t len = 0;
    CHECK_RC(pxs_store_resolve(store, &sent_px[1], out, 8192, &len), PXS_ERR_STALE);
    CHECK(strstr(pxs_last_error_detail(), "inside the event") != NULL);
    CHECK_OK(pxs_producer_close_topic(prod, T));

    pxs_event_t ev, keep_ev;
    for (int i = 0; i < n; i++) {
        void *data = NULL;
        if (i % 4 == 0) {
            CHECK_OK(pxs_consumer_next_object(cons, &ev, &data, &len, 5.0));
        } else {
            CHECK_OK(pxs_consumer_next(cons, &ev, 5.0));
        }
        uint32_t idx;
        memcpy(&idx, ev.meta, sizeof idx);
        CHECK(ev.meta_len == 4 && idx == (uint32_t)i && ev.seq == (uint64_t)i);
        CHECK(kind_of(&ev.proxy) == (sizes[i] <= 1024 ? PXS_CONN_INLINE : PXS_CONN_LOCAL));
        if (i % 4 == 0) {
            CHECK(len == sizes[i] && pxs_test_verify(data, len, 100 + (uint64_t)i));
            pxs_free(data);
        } else if (i % 4 == 1) {
            if (sizes[i] > 0) /* too small a buffer: TRUNC, nothing consumed */
                CHECK_RC(pxs_consumer_resolve(cons, &ev, out, sizes[i] - 1, &len), PXS_ERR_TRUNC);
            CHECK_OK(pxs_consumer_resolve(cons, &ev, out, 8192, &len));
            CHECK(len == sizes[i] && pxs_test_verify(out, len, 100 + (uint64_t)i));
            if (sizes[i] <= 1024) {
                /* consumed: a second resolve is STALE, never bytes */
                CHECK_RC(pxs_consumer_resolve(cons, &ev, out, 8192, &len), PXS_ERR_STALE);
                CHECK(strstr(pxs_last_error_detail(), "no longer held") != NULL);
            }
        } else if (i % 4 == 2) {
            pxs_view_t v, copy;
            CHECK_OK(pxs_store_view(store, &ev.proxy, &v));
            CHECK(v.len == sizes[i] && pxs_test_verify(v.data, v.len, 100 + (uint64_t)i));
            copy = v;
            CHECK_OK(pxs_store_release(store, &v));
            CHECK_RC(pxs_store_release(store, &copy), PXS_ERR_INVALID);
        } else if (sizes[i] <= 1024 && i != n - 1) {
            /* forward: the payload travels again, this copy is consumed */
            CHECK_OK(pxs_producer_send_proxy(fwd, TF, &ev.proxy, ev.meta, ev.meta_len));
            CHECK_RC(pxs_consumer_resolve(cons, &ev, out, 8192, &len), PXS_ERR_STALE);
            pxs_event_t fe;
            void *fd = NULL;
            CHECK_OK(pxs_consumer_next_object(cons2, &fe, &fd, &len, 5.0));
            CHECK(kind_of(&fe.proxy) == PXS_CONN_INLINE && len == sizes[i] &&
                  pxs_test_verify(fd, len, 100 + (uint64_t)i));
            pxs_free(fd);
        } else if (sizes[i] <= 1024) {
            keep_ev = ev; /* resolved below, after forgeries */
        } else {
            CHECK_OK(pxs_consumer_resolve(cons, &ev, out, 8192, &len));
        }
    }
    /* END after inline events */
    CHECK_RC(pxs_consumer_next(cons, &ev, 5.0), PXS_END);

    /* forged: a field changed (checksum recomputed) is CORRUPT; another
     * process's table (another nonce) is STALE; resolve_start NOTSUP */
    pxs_proxy_info_t pi;
    CHECK_OK(pxs_proxy_decode(keep_ev.proxy.bytes, PXS_PROXY_SIZE, &pi));
    pxs_proxy_t forged;
    pi.size += 1;
    CHECK_OK(pxs_proxy_encode(&pi, &forged));
    CHECK_RC(pxs_store_resolve(store, &forged, out, 8192, &len), PXS_ERR_CORRUPT);
    pi.size -= 1;
    pi.store_nonce ^= 1;
    CHECK_OK(pxs_proxy_encode(&pi, &forged));
    CHECK_RC(pxs_store_resolve(store, &forged, out, 8192, &len), PXS_ERR_STALE);
    CHECK(strstr(pxs_last_error_detail(), "another process") != NULL);
    pxs_request_t *req = NULL;
    CHECK_RC(pxs_store_resolve_start(store, &forged, out, 8192, &req), PXS_ERR_STALE);
    /* text form round trip in the same process still names the entry */
    char text[PXS_PROXY_TEXT_LEN];
    CHECK_OK(pxs_proxy_to_text(&keep_ev.proxy, text, sizeof text));
    CHECK_OK(pxs_proxy_from_text(text, &forged));
    CHECK_OK(pxs_store_resolve_start(store, &forged, out, 8192, &req)); /* done at start */
    int done = 0;
    CHECK_OK(pxs_store_resolve_test(req, &done, &len));
    CHECK(done && len == 1024 && pxs_test_verify(out, len, 100 + (uint64_t)(n - 1)));
    CHECK_RC(pxs_consumer_discard(cons, &keep_ev), PXS_ERR_STALE); /* consumed */

    CHECK_OK(pxs_producer_destroy(prod));
    CHECK_OK(pxs_producer_destroy(fwd));
    CHECK_RC(pxs_consumer_next(cons2, &ev, 5.0), PXS_END);
    CHECK_OK(pxs_consumer_destroy(cons));
    CHECK_OK(pxs_consumer_destroy(cons2));
    destroy_buses(hub, bus);
    size_t used = 1;
    CHECK_OK(pxs_store_used(store, &used, NULL));
    CHECK(used == 0);
    CHECK_OK(pxs_store_destroy(store));
    free(buf);
    free(out);
}

/* inline_max 0 turns it off; a mailbox too small for a run sends through
 * the store (slots 4, 2 publishers: runs of at most 2 records). */
static void
test_off_and_bound(void)
{
    pxs_store_t *store = local_store();
    pxs_bus_t *bus[3];
    pxs_inproc_hub_t *hub = make_buses(bus, 4);
    pxs_publisher_t *pub0;
    pxs_subscriber_t *sub1;
    CHECK_OK(pxs_bus_publisher(bus[0], &pub0));
    CHECK_OK(pxs_bus_subscriber(bus[1], &sub1));
    pxs_producer_opts_t po;
    CHECK_OK(pxs_producer_opts_init(&po));
    po.inline_max = 0;
    pxs_producer_t *off, *on;
    CHECK_OK(pxs_producer_create(store, pub0, &po, &off));
    po.inline_max = 1024;
    CHECK_OK(pxs_producer_create(store, pub0, &po, &on));
    unsigned char buf[400];
    pxs_proxy_t px;
    pxs_test_fill(buf, sizeof buf, 7);
    CHECK_OK(pxs_producer_send(off, T, buf, 10, NULL, &px));
    CHECK(kind_of(&px) == PXS_CONN_LOCAL);
    CHECK_OK(pxs_producer_send(on, T, buf, 224, NULL, &px)); /* 2 records: fits */
    CHECK(kind_of(&px) == PXS_CONN_INLINE);
    CHECK_OK(pxs_producer_send(on, T, buf, 225, NULL, &px)); /* 3 records: store */
    CHECK(kind_of(&px) == PXS_CONN_LOCAL);
    pxs_consumer_t *cons;
    CHECK_OK(pxs_consumer_create(store, sub1, NULL, &cons));
    const size_t want[3] = {10, 224, 225};
    for (int i = 0; i < 3; i++) {
        pxs_event_t ev;
        void *d;
        size_t len;
        CHECK_OK(pxs_consumer_next_object(cons, &ev, &d, &len, 5.0));
        CHECK(len == want[i] && pxs_test_verify(d, len, 7));
        pxs_free(d);
    }
    CHECK_OK(pxs_producer_destroy(off));
    CHECK_OK(pxs_producer_destroy(on));
    CHECK_OK(pxs_consumer_destroy(cons));
    destroy_buses(hub, bus);
    CHECK_OK(pxs_store_destroy(store));
}

/* The table is bounded: 4096 entries per process; the oldest unresolved
 * inline payload is displaced and resolves to STALE, never to other bytes. */
static void
test_table_bound(void)
{
    pxs_store_t *store = local_store();
    pxs_bus_t *bus[3];
    pxs_inproc_hub_t *hub = make_buses(bus, 64);
    pxs_publisher_t *pub0;
    pxs_subscriber_t *sub1;
    CHECK_OK(pxs_bus_publisher(bus[0], &pub0));
    CHECK_OK(pxs_bus_subscriber(bus[1], &sub1));
    pxs_producer_opts_t po;
    CHECK_OK(pxs_producer_opts_init(&po));
    po.inline_max = 64;
    pxs_producer_t *prod;
    CHECK_OK(pxs_producer_create(store, pub0, &po, &prod));
    pxs_consumer_t *cons;
    CHECK_OK(pxs_consumer_create(store, sub1, NULL, &cons));
    enum { M = 4096 + 8 };
    pxs_event_t first, last, ev;
    for (uint32_t i = 0; i < M; i++) {
        uint64_t v = i;
        CHECK_OK(pxs_producer_send(prod, T, &v, sizeof v, NULL, NULL));
        CHECK_OK(pxs_consumer_next(cons, &ev, 5.0));
        if (i == 0)
            first = ev;
        last = ev;
    }
    uint64_t v = 0;
    size_t len = 0;
    CHECK_RC(pxs_consumer_resolve(cons, &first, &v, sizeof v, &len), PXS_ERR_STALE);
    CHECK(strstr(pxs_last_error_detail(), "displaced") != NULL);
    CHECK_OK(pxs_consumer_resolve(cons, &last, &v, sizeof v, &len));
    CHECK(len == sizeof v && v == M - 1);
    CHECK_OK(pxs_producer_destroy(prod));
    CHECK_RC(pxs_consumer_next(cons, &ev, 5.0), PXS_END);
    CHECK_OK(pxs_consumer_destroy(cons));
    destroy_buses(hub, bus);
    CHECK_OK(pxs_store_destroy(store));
}

/* ... and 16 MiB: 1100 unresolved 16 KiB payloads displace the oldest. */
static void
test_table_bytes(void)
{
    pxs_store_t *store = local_store();
    pxs_bus_t *bus[3];
    /* 2 publishers: runs up to 128 records (16 KiB is 103) */
    pxs_inproc_hub_t *hub = make_buses(bus, 256);
    pxs_publisher_t *pub0;
    pxs_subscriber_t *sub1;
    CHECK_OK(pxs_bus_publisher(bus[0], &pub0));
    CHECK_OK(pxs_bus_subscriber(bus[1], &sub1));
    pxs_producer_opts_t po;
    CHECK_OK(pxs_producer_opts_init(&po));
    po.inline_max = 16384;
    pxs_producer_t *prod;
    CHECK_OK(pxs_producer_create(store, pub0, &po, &prod));
    pxs_consumer_t *cons;
    CHECK_OK(pxs_consumer_create(store, sub1, NULL, &cons));
    enum { M = 1100, L = 16384 };
    unsigned char *buf = malloc(L);
    CHECK(buf);
    pxs_event_t first, last, ev;
    for (uint32_t i = 0; i < M; i++) {
        pxs_proxy_t px;
        pxs_test_fill(buf, L, i);
        CHECK_OK(pxs_producer_send(prod, T, buf, L, NULL, &px));
        CHECK(kind_of(&px) == PXS_CONN_INLINE);
        CHECK_OK(pxs_consumer_next(cons, &ev, 5.0));
        if (i == 0)
            first = ev;
        last = ev;
    }
    size_t len = 0;
    CHECK_RC(pxs_consumer_resolve(cons, &first, buf, L, &len), PXS_ERR_STALE);
    CHECK(strstr(pxs_last_error_detail(), "displaced") != NULL);
    CHECK_OK(pxs_consumer_resolve(cons, &last, buf, L, &len));
    CHECK(len == L && pxs_test_verify(buf, len, M - 1));
    free(buf);
    CHECK_OK(pxs_producer_destroy(prod));
    CHECK_RC(pxs_consumer_next(cons, &ev, 5.0), PXS_END);
    CHECK_OK(pxs_consumer_destroy(cons));
    destroy_buses(hub, bus);
    CHECK_OK(pxs_store_destroy(store));
}

/* A forward whose destination's ring is too small for the run: without a
 * store the forwarder fails with PXS_ERR_TOO_BIG and the payload stays held
 * (it still resolves); with a store the chunk goes through it. resolve_alloc
 * without an output is INVALID and consumes nothing. */
static void
test_forward_too_big(void)
{
    pxs_store_t *store = local_store();
    pxs_bus_t *bus[3];
    /* rank 2: 4 slots, 2 publishers: runs of 2 */
    pxs_inproc_hub_t *hub = make_buses2(bus, 1024, 4);
    pxs_publisher_t *pub0, *pub1;
    pxs_subscriber_t *sub1, *sub2;
    CHECK_OK(pxs_bus_publisher(bus[0], &pub0));
    CHECK_OK(pxs_bus_publisher(bus[1], &pub1));
    CHECK_OK(pxs_bus_subscriber(bus[1], &sub1));
    CHECK_OK(pxs_bus_subscriber(bus[2], &sub2));
    pxs_producer_opts_t po;
    CHECK_OK(pxs_producer_opts_init(&po));
    po.inline_max = 1024;
    pxs_producer_t *prod, *fwd, *fwd_st;
    CHECK_OK(pxs_producer_create(store, pub0, &po, &prod));
    CHECK_OK(pxs_producer_create(NULL, pub1, &po, &fwd));
    CHECK_OK(pxs_producer_create(store, pub1, &po, &fwd_st));
    pxs_consumer_t *cons, *cons2;
    CHECK_OK(pxs_consumer_create(store, sub1, NULL, &cons));
    CHECK_OK(pxs_consumer_create(store, sub2, NULL, &cons2));
    unsigned char buf[1024];
    pxs_test_fill(buf, sizeof buf, 9);
    CHECK_OK(pxs_producer_send(prod, T, buf, sizeof buf, NULL, NULL));
    pxs_event_t ev;
    CHECK_OK(pxs_consumer_next(cons, &ev, 5.0));
    CHECK(kind_of(&ev.proxy) == PXS_CONN_INLINE);
    CHECK_RC(pxs_producer_send_proxy(fwd, TF, &ev.proxy, NULL, 0), PXS_ERR_TOO_BIG);
    CHECK(strstr(pxs_last_error_detail(), "bound at rank 2") != NULL);
    size_t len = 0;
    CHECK_RC(pxs_store_resolve_alloc(store, &ev.proxy, NULL, &len), PXS_ERR_INVALID);
    memset(buf, 0, sizeof buf);
    CHECK_OK(pxs_consumer_resolve(cons, &ev, buf, sizeof buf, &len));
    CHECK(len == sizeof buf && pxs_test_verify(buf, len, 9));
    /* again, forwarded by a producer with a store */
    pxs_test_fill(buf, sizeof buf, 10);
    CHECK_OK(pxs_producer_send(prod, T, buf, sizeof buf, NULL, NULL));
    CHECK_OK(pxs_consumer_next(cons, &ev, 5.0));
    CHECK_OK(pxs_producer_send_proxy(fwd_st, TF, &ev.proxy, ev.meta, ev.meta_len));
    CHECK_RC(pxs_consumer_resolve(cons, &ev, buf, sizeof buf, &len), PXS_ERR_STALE); /* given up */
    pxs_event_t fe;
    void *d = NULL;
    CHECK_OK(pxs_consumer_next_object(cons2, &fe, &d, &len, 5.0));
    CHECK(kind_of(&fe.proxy) == PXS_CONN_LOCAL && len == 1024 && pxs_test_verify(d, len, 10));
    pxs_free(d);
    pxs_producer_stats_t ps;
    CHECK_OK(pxs_producer_stats_init(&ps));
    CHECK_OK(pxs_producer_stats2(fwd_st, &ps));
    CHECK(ps.forwarded == 1 && ps.sent == 0 && ps.bytes == 0);
    CHECK_OK(pxs_producer_destroy(prod));
    CHECK_OK(pxs_producer_destroy(fwd));
    CHECK_OK(pxs_producer_destroy(fwd_st));
    CHECK_RC(pxs_consumer_next(cons, &ev, 5.0), PXS_END);
    CHECK_RC(pxs_consumer_next(cons2, &fe, 5.0), PXS_END);
    CHECK_OK(pxs_consumer_destroy(cons));
    CHECK_OK(pxs_consumer_destroy(cons2));
    destroy_buses(hub, bus);
    CHECK_OK(pxs_store_destroy(store));
}

int
main(void)
{
    test_roundtrip();
    test_off_and_bound();
    test_table_bound();
    test_table_bytes();
    test_forward_too_big();
    printf("inline: ok\n");
    return 0;
}
