/* Inline chunks through MPI (docs/DESIGN.md, section "Inline chunks").
 * 4 ranks: 0 generates on topic T1 (plain subscriber: rank 1) and TG (group
 * "g" of ranks 2 and 3); 1 resolves half of what it gets and forwards the
 * other half with send_proxy on TF (group "w" of ranks 2 and 3): the
 * forwarder forwards the payload of inline events, the proxy of stored
 * ones. Sizes 0, 1, 64, 65, inline_max and inline_max + 1 and more, inline
 * and stored chunks interleaved (order kept); inline chunks take no arena
 * space; resolve, resolve_alloc (next_object), view on inline events; the
 * sender's proxy and another process's copy of a proxy resolve to STALE;
 * END after inline events reaches everyone. */
#include "test_events_common.h"

enum { T1 = 1, TF = 2, TG = 3, NG = 40 };

static size_t
size_of(uint32_t i, uint32_t imax)
{
    static const size_t base[] = {0,   1,   64,   65, 0 /* imax */, 1 /* imax + 1 */,
                                  224, 225, 3000, 7,  100000,       0 /* imax */};
    const uint32_t nb = (uint32_t)(sizeof base / sizeof base[0]);
    uint32_t k = i % nb;
    if (k == 4 || k == nb - 1)
        return imax;
    if (k == 5)
        return (size_t)imax + 1;
    return base[k];
}

struct meta {
    uint32_t i;
    uint32_t topic;
    uint64_t len;
};

int
main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    CHECK(size == 4);
    const uint32_t N = ev_slow_osc() ? 24 : 48;

    pxs_store_opts_t sto;
    CHECK_OK(pxs_store_opts_init(&sto));
    sto.connector = pxs_test_connector();
    sto.arena_bytes = 4u << 20;
    pxs_store_t *store;
    CHECK_OK(pxs_store_create(MPI_COMM_WORLD, &sto, &store));

    static uint32_t p0[2] = {T1, TG}, p1 = TF;
    static pxs_subscription_t s1 = {.topic = T1},
                              s23[2] = {{.topic = TF, .group = "w"}, {.topic = TG, .group = "g"}};
    pxs_bus_opts_t bo;
    CHECK_OK(pxs_bus_opts_init(&bo));
    if (rank == 0) {
        bo.publish = p0;
        bo.n_publish = 2;
    } else if (rank == 1) {
        bo.subscribe = &s1;
        bo.n_subscribe = 1;
        bo.publish = &p1;
        bo.n_publish = 1;
    } else {
        bo.subscribe = s23;
        bo.n_subscribe = 2;
    }
    pxs_bus_t *bus;
    pxs_publisher_t *pub;
    pxs_subscriber_t *sub;
    pxs_test_bus(&bo, &bus, &pub, &sub);
    pxs_producer_opts_t po;
    CHECK_OK(pxs_producer_opts_init(&po));
    if (po.inline_max == 0)
        po.inline_max = 1024; /* PXS_INLINE_MAX=0 in the environment: test it on anyway */
    const uint32_t imax = po.inline_max;
    unsigned char *buf = malloc(100001), *out = malloc(100001);
    CHECK(buf && out);
    uint64_t forwarded = 0, got_w = 0, got_g = 0;

    if (rank == 0) {
        pxs_producer_t *prod;
        CHECK_OK(pxs_producer_create(store, pub, &po, &prod));
        size_t stored = 0;
        for (uint32_t i = 0; i < N; i++) {
            size_t len = size_of(i, imax);
            struct meta m = {i, T1, len};
            pxs_send_opts_t so;
            CHECK_OK(pxs_send_opts_init(&so));
            so.meta = &m;
            so.meta_len = sizeof m;
            pxs_test_fill(buf, len, i);
            pxs_proxy_t px;
            CHECK_OK(pxs_producer_send(prod, T1, buf, len, &so, &px));
            pxs_proxy_info_t pi;
            CHECK_OK(pxs_proxy_decode(px.bytes, PXS_PROXY_SIZE, &pi));
            CHECK((pi.kind == PXS_CONN_INLINE) == (len <= imax));
            if (len <= imax) {
                /* the sender's proxy names nothing */
                size_t l = 0;
                CHECK_RC(pxs_store_resolve(store, &px, out, 100001, &l), PXS_ERR_STALE);
            } else {
                stored += (len + 63) / 64 * 64;
            }
            if (i == 3) { /* sizes 0, 1, 64, 65 so far: nothing in the arena */
                size_t used = 1;
                CHECK_OK(pxs_store_used(store, &used, NULL));
                CHECK(used == 0);
            }
        }
        CHECK(stored > 0);
        for (uint32_t i = 0; i < NG; i++) {
            size_t len = 1 + (size_t)i * 37 % imax;
            struct meta m = {i, TG, len};
            pxs_send_opts_t so;
            CHECK_OK(pxs_send_opts_init(&so));
            so.meta = &m;
            so.meta_len = sizeof m;
            pxs_test_fill(buf, len, 1000 + i);
            CHECK_OK(pxs_producer_send(prod, TG, buf, len, &so, NULL));
        }
        CHECK_OK(pxs_producer_destroy(prod)); /* END on T1 and TG */
    } else if (rank == 1) {
        pxs_producer_t *fwd;
        CHECK_OK(pxs_producer_create(NULL, pub, &po, &fwd));
        pxs_consumer_t *cons;
        CHECK_OK(pxs_consumer_create(store, sub, NULL, &cons));
        pxs_event_t ev;
        pxs_proxy_t gift;
        int have_gift = 0;
        for (uint32_t i = 0; i < N; i++) {
            CHECK_OK(pxs_consumer_next(cons, &ev, 60));
            struct meta m;
            memcpy(&m, ev.meta, sizeof m);
            CHECK(m.i == i && ev.seq == i && m.len == size_of(i, imax)); /* order kept */
            pxs_proxy_info_t pi;
            CHECK_OK(pxs_proxy_decode(ev.proxy.bytes, PXS_PROXY_SIZE, &pi));
            CHECK((pi.kind == PXS_CONN_INLINE) == (m.len <= imax) && pi.size == m.len);
            size_t len = 0;
            if (i % 2 == 1) {
                CHECK_OK(pxs_producer_send_proxy(fwd, TF, &ev.proxy, ev.meta, ev.meta_len));
                forwarded++;
            } else if (i % 4 == 0) {
                CHECK_OK(pxs_consumer_resolve(cons, &ev, out, 100001, &len));
                CHECK(len == m.len && pxs_test_verify(out, len, i));
                if (pi.kind == PXS_CONN_INLINE && !have_gift) {
                    gift = ev.proxy; /* consumed here; rank 2 is another process anyway */
                    have_gift = 1;
                }
            } else {
                pxs_view_t v;
                CHECK_OK(pxs_store_view(store, &ev.proxy, &v));
                CHECK(v.len == m.len && pxs_test_verify(v.data, v.len, i));
                CHECK_OK(pxs_store_release(store, &v));
            }
        }
        CHECK_RC(pxs_consumer_next(cons, &ev, 60), PXS_END);
        CHECK(have_gift);
        MPI_Send(gift.bytes, PXS_PROXY_SIZE, MPI_BYTE, 2, 7, MPI_COMM_WORLD);
        CHECK_OK(pxs_producer_destroy(fwd)); /* END on TF */
        CHECK_OK(pxs_consumer_destroy(cons));
    } else {
        pxs_consumer_t *cons;
        CHECK_OK(pxs_consumer_create(store, sub, NULL, &cons));
        pxs_event_t ev;
        void *data = NULL;
        size_t len = 0;
        int rc;
        while ((rc = pxs_consumer_next_object(cons, &ev, &data, &len, 60)) == PXS_OK) {
            struct meta m;
            memcpy(&m, ev.meta, sizeof m);
            CHECK(m.topic == (ev.topic == TF ? T1 : TG) && len == m.len);
            CHECK(pxs_test_verify(data, len, ev.topic == TG ? 1000 + m.i : m.i));
            pxs_proxy_info_t pi;
            CHECK_OK(pxs_proxy_decode(ev.proxy.bytes, PXS_PROXY_SIZE, &pi));
            CHECK((pi.kind == PXS_CONN_INLINE) == (m.len <= imax));
            pxs_free(data);
            if (ev.topic == TF)
                got_w++;
            else
                got_g++;
        }
        CHECK_RC(rc, PXS_END);
        if (rank == 2) {
            /* another process's inline proxy: STALE, never bytes */
            pxs_proxy_t p;
            MPI_Recv(p.bytes, PXS_PROXY_SIZE, MPI_BYTE, 1, 7, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            CHECK_RC(pxs_store_resolve(store, &p, out, 100001, &len), PXS_ERR_STALE);
            CHECK(strstr(pxs_last_error_detail(), "another process") != NULL);
        }
        CHECK_OK(pxs_consumer_destroy(cons));
    }
    uint64_t mine[3] = {forwarded, got_w, got_g}, sum[3];
    MPI_Allreduce(mine, sum, 3, MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD);
    CHECK(sum[0] == N / 2 && sum[1] == sum[0] && sum[2] == NG);
    CHECK_OK(pxs_bus_destroy(bus));
    size_t used = 1;
    CHECK_OK(pxs_store_used(store, &used, NULL));
    CHECK(used == 0);
    CHECK_OK(pxs_store_destroy(store));
    free(buf);
    free(out);
    MPI_Finalize();
    if (rank == 0)
        printf("stream.inline: ok (inline_max %u)\n", imax);
    return 0;
}
